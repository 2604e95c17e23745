#!/usr/bin/env bash
# The dashboard's stream page while ingest runs at half its maximum rate (benchmark, not a test).
set -euo pipefail

usage() {
  cat <<'TXT'
Times the dashboard's project stream page over HTTP on a large data file, first with no ingest, then while ingest
runs at a fraction (default 50%) of the maximum rate measured on the same server.

  bench/stream_under_load.sh [--events N] [--duration S] [--fraction F] [--rounds R]

1. Loads N events (default 1,000,000) in 10,000 groups with realistic tags into a fresh data file, with the stream
   benchmark's loader (`STREAM_BENCH_KEEP=… cargo bench -p store --bench stream`).
2. Starts target/release/sentry on that file, makes a dashboard user and a client key.
3. Times `/p/bench/?sort=…&interval=…&fragment=1` for every sort, without and with a tag filter, over every interval
   (bench/lib/stream_timer.py: R runs each; p50 / p95 / max).
4. Measures the maximum ingest rate (exception envelope, 64 connections, 5 s), then runs ingest paced at F × that
   for S seconds (default 60) and times the stream page again meanwhile.
Prints one table. Needs `cargo build --release -p server` first. Working files go under $PEER_DIR (/tmp/sentry-bench).
TXT
}

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
EVENTS=1000000 DURATION=60 FRACTION=0.5 ROUNDS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --events) EVENTS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --fraction) FRACTION="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
SENTRY_BIN="${SENTRY_BIN:-$REPO/target/release/sentry}"
[ -x "$SENTRY_BIN" ] || { echo "no $SENTRY_BIN: run cargo build --release -p server first" >&2; exit 1; }
PEER_DIR="${PEER_DIR:-/tmp/sentry-bench}"
WORK="$PEER_DIR/stream-under-load"
OUT="$PEER_DIR/results/stream-$(date -u +%Y%m%dT%H%M%SZ)"
rm -rf "$WORK"; mkdir -p "$WORK/data" "$OUT"
say() { echo "[stream-under-load $(date -u +%H:%M:%S)] $*" >&2; }

say "loading $EVENTS events (store benchmark loader)"
(cd "$REPO" && STREAM_BENCH_EVENTS="$EVENTS" STREAM_BENCH_KEEP="$WORK/data/sentry.db" cargo bench -q -p store --bench stream) >&2

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat > "$WORK/sentry.toml" <<TOML
bind = "127.0.0.1:$port"
data_dir = "$WORK/data"
TOML
CONF=(--config "$WORK/sentry.toml")
"$SENTRY_BIN" "${CONF[@]}" upgrade >/dev/null
EMAIL=bench@example.com PASSWORD=bench-password-123
echo "$PASSWORD" | "$SENTRY_BIN" "${CONF[@]}" user create "$EMAIL" --password-stdin >/dev/null
read -r PROJECT KEY < <("$SENTRY_BIN" "${CONF[@]}" key create --project bench --json | python3 -c '
import json, sys, urllib.parse
d = json.load(sys.stdin); u = urllib.parse.urlsplit(d["dsn"])
print(u.path.strip("/"), u.username)')
"$SENTRY_BIN" "${CONF[@]}" start --no-daemon > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.5; done
URL="http://127.0.0.1:$port"
timer() { python3 "$HERE/lib/stream_timer.py" --url "$URL" --email "$EMAIL" --password "$PASSWORD" --rounds "$ROUNDS" --label "$1"; }
STORED_CMD="curl -s --max-time 10 $URL/metrics | awk '/^sentry_events_stored_total /{s=\$2} END{print s+0, 0}'"

say "stream page, no ingest"
timer idle > "$OUT/stream.jsonl"
say "maximum ingest rate (exception, 64 connections, 5 s)"
QUIET_WAIT=0 "$HERE/ingest_bench.sh" --url "$URL" --project "$PROJECT" --key "$KEY" --concurrency 64 --duration 5 \
  --label max --out "$OUT" --pids "$SERVER_PID" --stored-cmd "$STORED_CMD" > "$OUT/max.log" 2>&1
MAX="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["accepted_per_s"])' "$OUT/results.jsonl")"
RATE="$(python3 -c "print(int($FRACTION * $MAX))")"
say "ingest at $RATE/s ($FRACTION of $MAX/s) for $DURATION s, stream page timed meanwhile"
QUIET_WAIT=0 "$HERE/ingest_bench.sh" --url "$URL" --project "$PROJECT" --key "$KEY" --concurrency 64 --rate "$RATE" \
  --duration "$DURATION" --label "at-$FRACTION" --out "$OUT" --pids "$SERVER_PID" --stored-cmd "$STORED_CMD" \
  > "$OUT/load.log" 2>&1 &
LOAD_PID=$!
sleep 3
timer "under load" >> "$OUT/stream.jsonl"
kill -0 $LOAD_PID 2>/dev/null || say "warning: the ingest load ended before the stream timing did; raise --duration"
wait $LOAD_PID || true

python3 - "$OUT" "$RATE" "$MAX" <<'PY'
import json, sys
out, rate, mx = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(f"{out}/stream.jsonl")]
load = [json.loads(l) for l in open(f"{out}/results.jsonl")][-1]
idle = {(r["sort"], r["filter"]): r for r in rows if r["label"] == "idle"}
busy = {(r["sort"], r["filter"]): r for r in rows if r["label"] == "under load"}
lines = [f"# Stream page while ingest runs at {rate}/s ({float(rate)/float(mx):.0%} of {mx}/s measured)", "",
         f"ingest during the timing: {load.get('accepted_per_s')} accepted/s, p99 {load.get('latency_ms', {}).get('p99')} ms", "",
         "| sort | tag filter | idle p50 / p95 ms | under load p50 / p95 ms | under load max ms |", "|---|---|---|---|---|"]
worst = 0.0
for k, b in busy.items():
    i = idle.get(k, {})
    worst = max(worst, b["p95_ms"])
    lines.append(f"| {k[0]} | {k[1]} | {i.get('p50_ms')} / {i.get('p95_ms')} | {b['p50_ms']} / {b['p95_ms']} | {b['max_ms']} |")
lines += ["", f"worst p95 under load: {worst} ms (goal: under 50 ms)"]
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
say "results: $OUT"
