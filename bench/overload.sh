#!/usr/bin/env bash
# Overload at scale: the release `sentry` binary with a tight memory budget and queue, driven by
# far more connections than it can serve, then by a normal load to show that it recovers at
# once. Reports statuses (200 vs 503), peak RSS against the configured bound, and the latency
# of the accepted requests. A measurement, not a test.
#
#   bench/overload.sh [--connections N] [--duration S] [--budget BYTES] [--queue N]
#
# Needs target/release/sentry (cargo build --release -p server) and wrk (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
conns=512 duration=10 budget=$((8 * 1024 * 1024)) queue=256
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) conns=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --queue) queue=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
bin=target/release/sentry
[ -x "$bin" ] || { echo "build it first: cargo build --release -p server" >&2; exit 1; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
work=$(mktemp -d /tmp/sentry-overload.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/sentry.toml" <<TOML
bind = "127.0.0.1:$port"
data_dir = "$work/data"
[ingest]
max_inflight_bytes = $budget
queue_capacity = $queue
TOML
key=$("$bin" --config "$work/sentry.toml" project create overload --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["dsn"].split("//")[1].split("@")[0])')
"$bin" --config "$work/sentry.toml" start --no-daemon > "$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
echo "budget $budget bytes, queue $queue events, $conns connections for ${duration}s, then 8 connections for 5s"
peak=0
( while kill -0 $pid 2>/dev/null; do r=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0); echo "$r"; sleep 0.2; done ) > "$work/rss" &
sampler=$!
run() {
  QUIET_MAX=100 bench/ingest_bench.sh --url "http://127.0.0.1:$port" --project 1 --key "$key" --payload exception \
    --concurrency "$1" --duration "$2" --label "overload-c$1" --out "$work/results" 2>&1 | grep SUMMARY || true
}
run "$conns" "$duration"
run 8 5
kill $sampler 2>/dev/null || true
peak=$(sort -n "$work/rss" | tail -1)
echo "server-side: 200: $(metric 'sentry_ingest_requests_total{status="200"}')  503: $(metric 'sentry_ingest_requests_total{status="503"}')  stored: $(metric sentry_events_stored_total)"
echo "peak RSS $((peak / 1024)) MiB (memory budget $((budget / 1024 / 1024)) MiB); memory held now: $(metric sentry_ingest_memory_bytes) bytes"
