#!/usr/bin/env bash
# Sentry-envelope ingest benchmark for any Sentry-protocol server (ours, the ceiling, or a peer). bench/run.sh drives it;
# it can also be run on its own.
#
#   bench/ingest_bench.sh --url http://127.0.0.1:8000 --project 1 --key <public key> [options]
#
# POSTs the captured SDK envelope (bench/payloads/<payload>.envelope) to <url>/api/<project>/envelope/ with
# `X-Sentry-Auth: Sentry sentry_key=<key>, sentry_version=7, sentry_client=sentry.python/2.75.0`, closed loop, with
# wrk at --concurrency connections for --duration seconds. Every request carries a fresh event_id (servers dedupe on it).
#
# Options:
#   --payload exception|message|transaction   (default exception)
#   --concurrency N     connections (default 8)          --duration S   seconds of load (default 20, max 600)
#   --encoding gzip|identity|gzip-pool
#                       gzip (default) = as the SDK sends it (level 9), a fresh id per request without recompressing
#                       (lib/gzip_template.py: unbounded; bodies ~7-12% larger than one-shot gzip);
#                       identity = uncompressed, event_id substituted per request inside wrk (unbounded);
#                       gzip-pool = the older pool of pre-built unique one-shot gzip bodies (bounded by --pool)
#   --pool N            gzip-pool mode: number of unique bodies (default 50000; a wrap = duplicate ids, reported)
#   --rate R            pace the load at about R requests/s in total (default: as fast as the connections go)
#   --threads N         wrk threads (default 1; the client shares the box with the server)
#   --timeout S         per-request timeout in wrk (default 10)
#   --pids "P.."        root PIDs of the server (descendants included) for RSS/PSS/CPU sampling
#   --pids-cmd CMD      command printing those PIDs (evaluated right before the run)
#   --stored-cmd CMD    command printing "<stored events> [<queued>]"; enables stored/s + drain timing
#   --drain-timeout S   max seconds to wait for digestion after the load (default 300)
#   --stall S           give up draining when the stored count did not move for S seconds (default 30)
#   --label NAME        label in the results (default <payload>-c<concurrency>)
#   --out DIR           results dir (default $PEER_DIR/bench-results; results.jsonl is appended)
#   --extra JSON        object merged into the result record (e.g. '{"system": "sentry"}')
# Env: QUIET_MAX (default 10) / QUIET_WAIT (600): before the load, wait until the whole box is <= QUIET_MAX % busy.
#
# Reports: accepted/s (2xx), responses by status, socket errors, latency p50/p90/p99/max (wrk, coordinated-omission
# caveats apply: closed loop), stored/s = stored delta / (time from load start until the stored count reached its final
# value), digest lag after load end, peak RSS (sum over the process trees) and PSS, and CPU use, events stored per
# envelope (measured on the probe request), the machine's load average and busy % before the load.
# Only talks to the --url you give it; refuse anything that is not loopback.
set -euo pipefail

PEER_DIR="${PEER_DIR:-/tmp/sentry-bench}"
HERE="$(cd "$(dirname "$0")" && pwd)"
URL="" PROJECT="" KEY="" PAYLOAD=exception CONC=8 DUR=20 ENC=gzip POOL=50000 THREADS=1 TIMEOUT=10
PIDS="" PIDS_CMD="" STORED_CMD="" DRAIN_TIMEOUT=300 STALL=30 LABEL="" OUT="$PEER_DIR/bench-results" RATE="" EXTRA="{}"
while [ $# -gt 0 ]; do
  case "$1" in
    --url) URL="$2"; shift 2;;            --project) PROJECT="$2"; shift 2;;
    --key) KEY="$2"; shift 2;;            --payload) PAYLOAD="$2"; shift 2;;
    --concurrency) CONC="$2"; shift 2;;   --duration) DUR="$2"; shift 2;;
    --encoding) ENC="$2"; shift 2;;       --pool) POOL="$2"; shift 2;;
    --threads) THREADS="$2"; shift 2;;    --timeout) TIMEOUT="$2"; shift 2;;
    --pids) PIDS="$2"; shift 2;;          --pids-cmd) PIDS_CMD="$2"; shift 2;;
    --stored-cmd) STORED_CMD="$2"; shift 2;; --drain-timeout) DRAIN_TIMEOUT="$2"; shift 2;;
    --stall) STALL="$2"; shift 2;;        --label) LABEL="$2"; shift 2;;
    --out) OUT="$2"; shift 2;;            --rate) RATE="$2"; shift 2;;
    --extra) EXTRA="$2"; shift 2;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
[ -n "$URL" ] && [ -n "$PROJECT" ] && [ -n "$KEY" ] || { echo "need --url --project --key" >&2; exit 2; }
case "$URL" in
  http://127.*|http://localhost*|http://\[::1\]*) ;;
  *) echo "refusing non-loopback target $URL" >&2; exit 2;;
esac
[ "$DUR" -le 600 ] || { echo "--duration capped at 600" >&2; exit 2; }
[ "$THREADS" -le "$CONC" ] || THREADS="$CONC"
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 2; }
LABEL="${LABEL:-$PAYLOAD-c$CONC}"
URL="${URL%/}"

META="$HERE/payloads/payloads.json"
PLACEHOLDER_KEY="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["public_key_placeholder"])' "$META")"
EVENT_ID="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["payloads"][sys.argv[2]]["event_id"])' "$META" "$PAYLOAD")"
UA="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sdk"])' "$META")"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ingest_bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
# body template with the target key in place of the capture key (same length, item length headers stay valid)
sed "s/$PLACEHOLDER_KEY/$KEY/g" "$HERE/payloads/$PAYLOAD.envelope" > "$WORK/template.envelope"

export BENCH_PATH="/api/$PROJECT/envelope/"
export BENCH_AUTH="Sentry sentry_key=$KEY, sentry_version=7, sentry_client=$UA"
export BENCH_UA="$UA" BENCH_EVENT_ID="$EVENT_ID" BENCH_THREADS="$THREADS" BENCH_RESULT="$WORK/wrk.json"
export BENCH_NONCE="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
export BENCH_RATE="$RATE"
BODY_BYTES="$(wc -c < "$WORK/template.envelope")"
case "$ENC" in
  gzip)
    python3 "$HERE/lib/gzip_template.py" "$WORK/template.envelope" "$EVENT_ID" "$WORK/spec.bin" 2>/dev/null
    BODY_BYTES="$(python3 -c 'import sys; f=open(sys.argv[1],"rb"); n=int(f.read(8)); print(f.read(n).split()[2].decode())' "$WORK/spec.bin")"
    export BENCH_MODE=gzip-template BENCH_BODY="$WORK/spec.bin" BENCH_ENCODING=gzip;;
  gzip-pool)
    python3 "$HERE/lib/make_pool.py" "$WORK/template.envelope" "$EVENT_ID" "$POOL" "$WORK/pool.bin"
    BODY_BYTES="$(head -c 8 "$WORK/pool.bin" | sed 's/^0*//')"
    export BENCH_MODE=pool BENCH_BODY="$WORK/pool.bin" BENCH_ENCODING=gzip;;
  identity)
    export BENCH_MODE=template BENCH_BODY="$WORK/template.envelope" BENCH_ENCODING=identity;;
  *) echo "unknown --encoding $ENC" >&2; exit 2;;
esac

stored() { if [ -n "$STORED_CMD" ]; then bash -c "$STORED_CMD"; else echo "0 0"; fi; }
settle() {  # wait (max 60 s) until the stored count stops moving
  local prev="" cur; for _ in $(seq 1 60); do cur="$(stored)"; [ "$cur" = "$prev" ] && break; prev="$cur"; sleep 1; done
}
[ -n "$STORED_CMD" ] && settle
read -r STORED_PRE _ <<<"$(stored) 0"

# sanity: one request must be accepted before we start (also warms up the server); not counted
[ "$ENC" = identity ] && CE=() || CE=(-H "Content-Encoding: gzip")
python3 "$HERE/lib/gzip_template.py" "$WORK/template.envelope" "$EVENT_ID" --one "$WORK/one.gz"
if [ "$ENC" = identity ]; then gzip -dc "$WORK/one.gz" > "$WORK/one.env"; BODY1="$WORK/one.env"; else BODY1="$WORK/one.gz"; fi
CODE="$(curl -s -o "$WORK/probe.out" -w '%{http_code}' --max-time 30 -X POST "$URL$BENCH_PATH" \
  -H "Content-Type: application/x-sentry-envelope" -H "X-Sentry-Auth: $BENCH_AUTH" "${CE[@]}" --data-binary "@$BODY1")"
[ "${CODE:0:1}" = 2 ] || { echo "probe request failed: HTTP $CODE $(cat "$WORK/probe.out")" >&2; exit 1; }

# let the probe be digested so it does not count in the run; what it added = events stored per envelope
[ -n "$STORED_CMD" ] && { sleep 0.3; settle; }
read -r STORED0 QUEUED0 _ <<<"$(stored) 0"
EVENTS_PER_ENVELOPE=$((STORED0 - STORED_PRE))

[ -n "$PIDS_CMD" ] && PIDS="$(bash -c "$PIDS_CMD")"

# The box must be otherwise idle: wait (bounded) until machine-wide busy% over 3 s is <= QUIET_MAX (default 10)
QUIET_MAX="${QUIET_MAX:-10}" QUIET_WAIT="${QUIET_WAIT:-600}"
quiet_t0="$(date +%s)"
while :; do
  BUSY_BEFORE="$(python3 "$HERE/lib/monitor.py" quiet 3)"
  awk "BEGIN{exit !($BUSY_BEFORE <= $QUIET_MAX)}" && break
  if [ $(( $(date +%s) - quiet_t0 )) -ge "$QUIET_WAIT" ]; then
    echo "WARNING: box still ${BUSY_BEFORE}% busy after ${QUIET_WAIT}s; running anyway (results flagged)" >&2; break
  fi
  echo "box ${BUSY_BEFORE}% busy (other workloads?); waiting for <= ${QUIET_MAX}%" >&2
  sleep 5
done

read -r LOAD1 LOAD5 LOAD15 _ < /proc/loadavg
T0="$(date +%s.%N)"
timeout -k 5 $((DUR + 60)) wrk -t"$THREADS" -c"$CONC" -d"${DUR}s" --timeout "${TIMEOUT}s" --latency \
  -s "$HERE/lib/envelope.lua" "$URL$BENCH_PATH" > "$WORK/wrk.out" 2>&1 &
WRK_PID=$!
if [ -n "$PIDS" ]; then
  python3 "$HERE/lib/monitor.py" sample --pids "$PIDS" --client-pid "$WRK_PID" --out "$WORK/samples.jsonl" \
    --stop-file "$WORK/stop" --max-seconds $((DUR + DRAIN_TIMEOUT + 120)) &
  MON_PID=$!
fi
wait "$WRK_PID" || { echo "wrk failed:"; cat "$WORK/wrk.out"; exit 1; }
T1="$(date +%s.%N)"
read -r STORED1 QUEUED1 _ <<<"$(stored) 0"
ACCEPTED="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(v for k,v in d["by_status"].items() if k.startswith("2")))' "$WORK/wrk.json")"

# drain: wait until every accepted event is stored (or no progress for $STALL s, or $DRAIN_TIMEOUT)
T2="$T1"; STORED2="$STORED1"; QUEUED2="$QUEUED1"; DRAIN_STATUS="n/a"
if [ -n "$STORED_CMD" ]; then
  DRAIN_STATUS="complete"; last_change="$(date +%s.%N)"; T2="$T1"
  while :; do
    read -r s q _ <<<"$(stored) 0"
    now="$(date +%s.%N)"
    if [ "$s" != "$STORED2" ]; then STORED2="$s"; T2="$now"; last_change="$now"; fi
    QUEUED2="$q"
    # done when every accepted event is stored, the queue (if reported) is empty, and nothing moved for 2 s
    # (requests still in flight when wrk stopped are processed by the server but not counted by wrk)
    if [ $((STORED2 - STORED0)) -ge "$ACCEPTED" ] && [ "${q:-0}" = 0 ] && awk "BEGIN{exit !($now - $last_change > 2)}"; then break; fi
    if awk "BEGIN{exit !($now - $last_change > $STALL)}"; then DRAIN_STATUS="stalled"; break; fi
    if awk "BEGIN{exit !($now - $T1 > $DRAIN_TIMEOUT)}"; then DRAIN_STATUS="timeout"; break; fi
    sleep 0.5
  done
fi
T3="$(date +%s.%N)"
if [ -n "$PIDS" ]; then
  touch "$WORK/stop"; wait "$MON_PID" || true
  python3 "$HERE/lib/monitor.py" summarize "$WORK/samples.jsonl" "$T0" "$T1" "$T2" > "$WORK/mon.json"
else
  echo '{}' > "$WORK/mon.json"
fi

python3 - "$WORK/wrk.json" "$WORK/mon.json" "$OUT/results.jsonl" "$EXTRA" <<PY
import json, sys, time
wrk = json.load(open(sys.argv[1])); mon = json.load(open(sys.argv[2]))
T0, T1, T2 = $T0, $T1, $T2
acc = $ACCEPTED
stored_delta = $STORED2 - $STORED0
res = {
  "label": "$LABEL", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0)), "url": "$URL",
  "payload": "$PAYLOAD", "encoding": "$ENC", "concurrency": $CONC, "duration_s": $DUR, "wrk_threads": $THREADS,
  "requests": wrk["requests"], "accepted_2xx": acc, "by_status": wrk["by_status"],
  "socket_errors": wrk["socket_errors"], "pool_wraps": wrk["pool_wraps"],
  "accepted_per_s": round(acc / wrk["duration_s"], 1),
  "latency_ms": wrk["latency_ms"],
  "stored": {"before": $STORED0, "at_load_end": $STORED1, "after": $STORED2, "delta": stored_delta,
             "queued_at_load_end": $QUEUED1, "queued_after": $QUEUED2, "drain": "$DRAIN_STATUS",
             "stored_during_load_per_s": round(($STORED1 - $STORED0) / (T1 - T0), 1),
             "seconds_until_all_stored": round(T2 - T0, 2), "digest_lag_after_load_s": round(T2 - T1, 2),
             "stored_per_s": round(stored_delta / (T2 - T0), 1) if T2 > T0 else None,
             # digestion rate once the load stopped (backlog drain, no ingest competing for CPU)
             "drain_only_per_s": round(($STORED2 - $STORED1) / (T2 - T1), 1) if T2 - T1 > 1 else None},
  "machine_busy_before_pct": $BUSY_BEFORE, "loadavg_before": [$LOAD1, $LOAD5, $LOAD15],
  "target_rate_per_s": float("$RATE") if "$RATE" else None, "body_bytes": $BODY_BYTES,
  "resources": mon,
}
if "$STORED_CMD" == "":
    res["stored"] = None
else:
    epe = $EVENTS_PER_ENVELOPE
    res["stored"]["events_per_envelope"] = epe if epe > 0 else None
    res["stored"]["envelopes_per_s"] = round(res["stored"]["stored_per_s"] / epe, 1) if epe > 0 and res["stored"]["stored_per_s"] is not None else None
res.update(json.loads(sys.argv[4]))
with open(sys.argv[3], "a") as f:
    f.write(json.dumps(res) + "\n")
print(json.dumps(res, indent=1))
s = res["stored"] or {}
r = mon.get("load") or {}
print("SUMMARY %s: accepted %.1f/s (%d of %d req; status %s; sock err %s) | p50 %.1f ms p99 %.1f ms | "
      "stored %s events/s = %s envelopes/s (%s in %ss, lag %ss, %s) | peak RSS %s MB (PSS %s) | CPU (%% of one core) "
      "server %s client %s other %s (irq+softirq %s, other procs %s) | load avg %s, busy before %s%%"
      % (res["label"], res["accepted_per_s"], acc, wrk["requests"], wrk["by_status"],
         {k: v for k, v in wrk["socket_errors"].items() if v}, wrk["latency_ms"]["p50"], wrk["latency_ms"]["p99"],
         s.get("stored_per_s"), s.get("envelopes_per_s"), s.get("delta"), s.get("seconds_until_all_stored"),
         s.get("digest_lag_after_load_s"), s.get("drain"), mon.get("peak_rss_mb"), mon.get("peak_pss_mb"),
         r.get("server_cpu_pct_of_one_core"), r.get("client_cpu_pct_of_one_core"), r.get("other_cpu_pct_of_one_core"),
         r.get("irq_softirq_pct_of_one_core"), r.get("other_processes_pct_of_one_core"), res["loadavg_before"],
         res["machine_busy_before_pct"]))
PY
