#!/usr/bin/env bash
# Ingest benchmark of the real `sentry` binary, side by side with a bare-HTTP ceiling and (optionally) Bugsink.
#
#   bench/run.sh [--quick] [--duration S] [--with-bugsink] [options]
#
# For each payload (exception, message, transaction: envelopes recorded from the real Python SDK, a fresh event id
# per request, gzip as the SDK sends it) it starts target/release/sentry on a FRESH data directory (its own config,
# 127.0.0.1:<free port>, a project made with `sentry project create bench --json`), measures its idle RSS, drives it
# with bench/ingest_bench.sh (wrk, closed loop) at 1, 8 and 64 connections, then measures idle RSS again and the bytes
# on disk per stored event, and stops it. For the exception payload it also runs 64 connections paced at 80% of the
# accepted/s just measured (the "p99 at 80% of max throughput" goal). Then the ceiling server (bench/ceiling: axum,
# reads the body, answers 200) with the same generator at 8 and 64 connections, and with --with-bugsink the Bugsink
# peer (../shared/bench/peers/bugsink) on the exception payload at 8 connections. Prints a table with ratios and the
# machine's load; everything measured goes to <out>/results.jsonl, the table to <out>/table.md.
#
# Options:
#   --quick               5 s per cell (same as --duration 5)
#   --duration S          seconds of load per cell (default 20)
#   --payloads "P.."      default "exception message transaction"
#   --connections "N.."   connections for sentry (default "1 8 64")
#   --ceiling-connections "N.."  default "8 64"; --no-ceiling skips the ceiling
#   --no-at80             skip the paced runs at 80% and 50% of the exception c=64 throughput
#   --with-bugsink        also run Bugsink (installs it in $PEER_DIR/bugsink-venv with pip on first use)
#   --bugsink-connections "N.."  default "8"
#   --bugsink-dir DIR     default <repo>/../shared/bench/peers/bugsink
#   --encoding E          gzip (default) | identity   (see bench/ingest_bench.sh --help)
#   --build               run `cargo build --release -p server -p ceiling` first (default: build nothing)
#   --shield              run everything at nice -20 in its own scheduler autogroup (bench/lib/shield.sh; needs root):
#                         on a box shared with builds this gives the benchmark priority, at the others' expense
#   --out DIR             results directory (default $PEER_DIR/results/<UTC time>)
#   --keep                keep the servers' data directories (default: deleted after each payload)
#   -h, --help            this text
# Env: PEER_DIR (default /tmp/sentry-bench: results, data dirs, the Bugsink venv), SENTRY_BIN (default
#      <repo>/target/release/sentry), CEILING_BIN (default <repo>/target/release/ceiling, else
#      /tmp/ceiling-target/release/ceiling), QUIET_MAX/QUIET_WAIT (wait for an idle box before each cell; default
#      QUIET_WAIT=0 here: the box is shared, so we run anyway and record how busy it was).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export PEER_DIR="${PEER_DIR:-/tmp/sentry-bench}"
export QUIET_WAIT="${QUIET_WAIT:-0}"
DURATION=20 PAYLOADS="exception message transaction" CONNS="1 8 64" CEIL_CONNS="8 64" CEILING=1 AT80=1
BUGSINK=0 BUG_CONNS="8" BUGSINK_DIR="$ROOT/../shared/bench/peers/bugsink" ENCODING=gzip BUILD=0 SHIELD=0 OUT="" KEEP=0
ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DURATION=5; shift;;
    --duration) DURATION="$2"; shift 2;;
    --payloads) PAYLOADS="$2"; shift 2;;
    --connections) CONNS="$2"; shift 2;;
    --ceiling-connections) CEIL_CONNS="$2"; shift 2;;
    --no-ceiling) CEILING=0; shift;;
    --no-at80) AT80=0; shift;;
    --with-bugsink) BUGSINK=1; shift;;
    --bugsink-connections) BUG_CONNS="$2"; shift 2;;
    --bugsink-dir) BUGSINK_DIR="$2"; shift 2;;
    --encoding) ENCODING="$2"; shift 2;;
    --build) BUILD=1; shift;;
    --shield) SHIELD=1; shift;;
    --out) OUT="$2"; shift 2;;
    --keep) KEEP=1; shift;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2;;
  esac
done

if [ "$SHIELD" = 1 ] && [ -z "${BENCH_SHIELDED:-}" ]; then
  export BENCH_SHIELDED=1
  exec "$HERE/lib/shield.sh" "$0" "${ARGS[@]}"
fi

say() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

# ---- prerequisites ---------------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && cargo build --release -p server -p ceiling)
fi
SENTRY_BIN="${SENTRY_BIN:-$ROOT/target/release/sentry}"
[ -x "$SENTRY_BIN" ] || die "$SENTRY_BIN not found: run \`cargo build --release -p server\` first (or pass --build)"
if [ "$CEILING" = 1 ]; then
  if [ -z "${CEILING_BIN:-}" ]; then
    for c in "$ROOT/target/release/ceiling" /tmp/ceiling-target/release/ceiling; do
      [ -x "$c" ] && { CEILING_BIN="$c"; break; }
    done
  fi
  [ -n "${CEILING_BIN:-}" ] && [ -x "$CEILING_BIN" ] || \
    die "the ceiling server is not built: run \`cargo build --release -p ceiling\` (or pass --no-ceiling)"
fi
for tool in curl python3; do command -v "$tool" >/dev/null || die "$tool is needed"; done
if ! command -v wrk >/dev/null; then
  say "installing wrk (apt)"
  { apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }; } || \
    die "could not install wrk (apt-get install wrk)"
fi
for p in $PAYLOADS; do [ -f "$HERE/payloads/$p.envelope" ] || die "unknown payload $p"; done

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${OUT:-$PEER_DIR/results/$STAMP}"
WORKDIR="$PEER_DIR/work/$STAMP"
mkdir -p "$OUT" "$WORKDIR"
RESULTS="$OUT/results.jsonl"
say "results in $OUT"
# one run, one binary: a copy, so a rebuild of target/release meanwhile does not mix versions
cp "$SENTRY_BIN" "$WORKDIR/sentry"
SENTRY_SRC="$SENTRY_BIN" SENTRY_BIN="$WORKDIR/sentry"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_mb() { python3 "$HERE/lib/monitor.py" rss "$1"; }
bytes_of() { local t=0 f; for f in "$@"; do [ -f "$f" ] && t=$((t + $(stat -c %s "$f"))); done; echo "$t"; }
record() { python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])))' "$1" >> "$RESULTS"; }

# processes this script started (killed by pid on exit)
SERVER_PID="" CEILING_PID="" BUGSINK_UP=0
cleanup() {
  for p in $SERVER_PID $CEILING_PID; do kill -TERM "$p" 2>/dev/null || true; done
  [ "$BUGSINK_UP" = 1 ] && "$BUGSINK_DIR/stop.sh" >/dev/null 2>&1 || true
  [ "$KEEP" = 1 ] || rm -rf "$WORKDIR"
}
trap cleanup EXIT

last_result() { tail -n 1 "$RESULTS"; }
bench() {  # bench LABEL EXTRA_JSON ingest_bench args...
  local label="$1" extra="$2"; shift 2
  say "$label"
  if "$HERE/ingest_bench.sh" --label "$label" --extra "$extra" --encoding "$ENCODING" --duration "$DURATION" \
       --out "$OUT" "$@" > "$OUT/$label.log" 2>&1; then
    grep '^SUMMARY' "$OUT/$label.log" >&2 || true
  else
    say "$label FAILED:"; tail -n 5 "$OUT/$label.log" >&2
    return 1
  fi
}

GIT_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
GIT_DIRTY="$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | wc -l)"
record "$(python3 - "$SENTRY_SRC" "$GIT_REV" "$GIT_DIRTY" "$DURATION" "$ENCODING" "$(uptime)" "$WORKDIR" <<'PY'
import json, os, sys, time
b, rev, dirty, dur, enc, up, work = sys.argv[1:]
# fdatasync latency where the data dirs live: with ack-after-commit, c connections can't exceed c / commit time
fn = os.path.join(work, "fsync-probe")
fd = os.open(fn, os.O_WRONLY | os.O_CREAT, 0o644)
ts = []
for i in range(100):
    os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
    t = time.perf_counter(); os.fdatasync(fd); ts.append((time.perf_counter() - t) * 1000)
os.close(fd); os.unlink(fn); ts.sort()
print(json.dumps({"kind": "run", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "git_rev": rev,
                  "git_modified_files": int(dirty), "sentry_bin": b,
                  "sentry_bin_built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.stat(b).st_mtime)),
                  "duration_s": int(dur), "encoding": enc, "nproc": os.cpu_count(), "uptime_start": up.strip(),
                  "fdatasync_ms": {"p50": round(ts[50], 2), "p99": round(ts[98], 2)}}))
PY
)"
say "machine: $(nproc) cores, $(uptime)"

# ---- our server ------------------------------------------------------------------------------------------------
STORED_TOTAL_CMD() { echo "curl -s --max-time 10 http://127.0.0.1:$1/metrics | awk '/^sentry_events_stored_total /{s=\$2} /^sentry_ingest_queued_events /{q=\$2} END{print s+0, q+0}'"; }

for payload in $PAYLOADS; do
  dir="$WORKDIR/sentry-$payload"
  mkdir -p "$dir/data"
  port="$(free_port)"
  cat > "$dir/sentry.toml" <<EOF
# bench/run.sh: a fresh server for the $payload payload
bind = "127.0.0.1:$port"
data_dir = "$dir/data"
EOF
  "$SENTRY_BIN" --config "$dir/sentry.toml" project create bench --json > "$dir/project.json"
  read -r PROJECT KEY < <(python3 -c '
import json, sys, urllib.parse
d = json.load(open(sys.argv[1])); u = urllib.parse.urlsplit(d["dsn"])
print(d["id"], u.username)' "$dir/project.json")
  "$SENTRY_BIN" --config "$dir/sentry.toml" start --no-daemon > "$OUT/sentry-$payload.server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 60); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "sentry exited at start: $(tail -n 5 "$OUT/sentry-$payload.server.log")"
    sleep 0.5
  done
  sleep 2
  IDLE_BEFORE="$(rss_mb "$SERVER_PID")"
  say "sentry ($payload) up on :$port, pid $SERVER_PID, idle RSS $IDLE_BEFORE MB"
  STORED_CMD="$(STORED_TOTAL_CMD "$port")"
  # sentry_bench LABEL EXTRA ARGS...: one cell, and its apply lag (acknowledged -> stored) from /metrics.
  sentry_bench() {
    local label="$1" extra="$2"; shift 2
    curl -s --max-time 10 "http://127.0.0.1:$port/metrics" > "$OUT/$label.metrics-before" || true
    bench "$label" "$extra" --url "http://127.0.0.1:$port" --project "$PROJECT" --key "$KEY" --payload "$payload" \
      --pids "$SERVER_PID" --stored-cmd "$STORED_CMD" "$@" || true
    curl -s --max-time 10 "http://127.0.0.1:$port/metrics" > "$OUT/$label.metrics-after" || true
    record "$(python3 "$HERE/lib/apply_lag.py" "$label" "$OUT/$label.metrics-before" "$OUT/$label.metrics-after")"
  }
  for c in $CONNS; do
    sentry_bench "sentry-$payload-c$c" "{\"system\": \"sentry\", \"idle_rss_mb_before_load\": $IDLE_BEFORE}" --concurrency "$c"
    if [ "$payload" = exception ] && [ "$c" = 64 ] && [ "$AT80" = 1 ]; then
      max="$(tail -n 2 "$RESULTS" | head -n 1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["accepted_per_s"] if d.get("label","").endswith("c64") else 0)')"
      for pct in 80 50; do
        rate="$(python3 -c "print(int($pct / 100 * float('$max')))")"
        if [ "$rate" -gt 0 ]; then
          sentry_bench "sentry-$payload-c64-at$pct" "{\"system\": \"sentry\", \"paced_from_max_per_s\": $max, \"paced_pct\": $pct}" \
            --concurrency 64 --rate "$rate"
        fi
      done
    fi
  done
  sleep 3
  IDLE_AFTER="$(rss_mb "$SERVER_PID")"
  METRICS="$(curl -s --max-time 10 "http://127.0.0.1:$port/metrics")"
  DB_RUN="$(bytes_of "$dir/data/sentry.db")" WAL_RUN="$(bytes_of "$dir/data/sentry.db-wal")"
  DU_RUN="$(du -cB1 "$dir/data/sentry.db" "$dir/data/sentry.db-wal" 2>/dev/null | tail -n 1 | cut -f1)"
  kill -TERM "$SERVER_PID"
  for _ in $(seq 1 120); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then say "sentry did not stop in 60 s; killing it"; kill -KILL "$SERVER_PID"; fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  DB_STOP="$(bytes_of "$dir/data/sentry.db")" WAL_STOP="$(bytes_of "$dir/data/sentry.db-wal")"
  record "$(python3 - "$payload" "$IDLE_BEFORE" "$IDLE_AFTER" "$DB_RUN" "$WAL_RUN" "$DU_RUN" "$DB_STOP" "$WAL_STOP" "$METRICS" <<'PY'
import json, re, sys
payload, idle0, idle1, db, wal, du, db2, wal2, metrics = sys.argv[1:]
stored = int(float(re.search(r"^sentry_events_stored_total (\S+)", metrics, re.M).group(1)))
statuses = {m.group(1): int(float(m.group(2))) for m in
            re.finditer(r'^sentry_ingest_requests_total\{status="([^"]+)"\} (\S+)', metrics, re.M)}
per = lambda b: round(int(b) / stored, 1) if stored else None
print(json.dumps({"kind": "server", "system": "sentry", "payload": payload,
                  "idle_rss_mb_before_load": float(idle0), "idle_rss_mb_after_load": float(idle1),
                  "stored_events": stored, "server_statuses": {k: v for k, v in statuses.items() if v},
                  "db_bytes": int(db), "wal_bytes": int(wal), "du_db_wal_bytes": int(du),
                  "bytes_per_event": per(int(db) + int(wal)), "db_bytes_after_stop": int(db2),
                  "wal_bytes_after_stop": int(wal2), "bytes_per_event_after_stop": per(int(db2) + int(wal2))}))
PY
)"
  say "sentry ($payload): idle RSS after load $IDLE_AFTER MB; $(last_result | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("%d events stored, %s B/event on disk (db+wal), %s B/event after stop; statuses %s" % (d["stored_events"], d["bytes_per_event"], d["bytes_per_event_after_stop"], d["server_statuses"]))')"
  [ "$KEEP" = 1 ] || rm -rf "$dir/data"
done

# ---- the bare-HTTP ceiling -------------------------------------------------------------------------------------
if [ "$CEILING" = 1 ]; then
  port="$(free_port)"
  "$CEILING_BIN" "127.0.0.1:$port" > "$OUT/ceiling.server.log" 2>&1 &
  CEILING_PID=$!
  for _ in $(seq 1 40); do grep -q listening "$OUT/ceiling.server.log" && break; sleep 0.25; done
  sleep 1
  IDLE="$(rss_mb "$CEILING_PID")"
  say "ceiling up on :$port, pid $CEILING_PID, idle RSS $IDLE MB"
  for c in $CEIL_CONNS; do
    bench "ceiling-exception-c$c" "{\"system\": \"ceiling\", \"idle_rss_mb_before_load\": $IDLE}" \
      --url "http://127.0.0.1:$port" --project 1 --key 0123456789abcdef0123456789abcdef --payload exception \
      --concurrency "$c" --pids "$CEILING_PID" || true
  done
  kill -TERM "$CEILING_PID"; wait "$CEILING_PID" 2>/dev/null || true
  CEILING_PID=""
fi

# ---- the Bugsink peer (optional) -------------------------------------------------------------------------------
if [ "$BUGSINK" = 1 ]; then
  if [ ! -x "$BUGSINK_DIR/setup.sh" ]; then
    say "Bugsink skipped: $BUGSINK_DIR/setup.sh not found"
  else
    export BUGSINK_PORT="$(free_port)"
    for c in $BUG_CONNS; do
      say "Bugsink setup (fresh data dir; pip install into $PEER_DIR/bugsink-venv on first use)"
      if ! timeout 900 "$BUGSINK_DIR/setup.sh" > "$OUT/bugsink-setup-c$c.log" 2>&1; then
        say "Bugsink setup failed, skipped: $(tail -n 3 "$OUT/bugsink-setup-c$c.log")"; break
      fi
      # shellcheck disable=SC1091
      source "$PEER_DIR/bugsink-data/dsn.env"
      "$BUGSINK_DIR/start.sh" >> "$OUT/bugsink-setup-c$c.log" 2>&1 || { say "Bugsink did not start"; break; }
      BUGSINK_UP=1
      sleep 2
      IDLE="$(rss_mb "$("$BUGSINK_DIR/pids.sh")")"
      bench "bugsink-exception-c$c" "{\"system\": \"bugsink\", \"idle_rss_mb_before_load\": $IDLE}" \
        --url "$BUGSINK_BASE_URL" --project "$BUGSINK_PROJECT_ID" --key "$BUGSINK_KEY" --payload exception \
        --concurrency "$c" --pids-cmd "$BUGSINK_DIR/pids.sh" --stored-cmd "$BUGSINK_DIR/stored_count.sh" \
        --drain-timeout 400 || true
      D="$PEER_DIR/bugsink-data"
      read -r BSTORED _ <<<"$("$BUGSINK_DIR/stored_count.sh") 0"
      record "{\"kind\": \"server\", \"system\": \"bugsink\", \"payload\": \"exception\", \"connections\": $c,
        \"idle_rss_mb_before_load\": $IDLE, \"stored_events\": $BSTORED,
        \"db_bytes\": $(bytes_of "$D/db.sqlite3"), \"wal_bytes\": $(bytes_of "$D/db.sqlite3-wal"),
        \"bytes_per_event\": $(python3 -c "print(round(($(bytes_of "$D/db.sqlite3" "$D/db.sqlite3-wal")) / $BSTORED, 1) if $BSTORED else 'null')")}"
      cp "$D/gunicorn.log" "$OUT/bugsink-gunicorn-c$c.log" 2>/dev/null || true
      "$BUGSINK_DIR/stop.sh" >> "$OUT/bugsink-setup-c$c.log" 2>&1 || true
      BUGSINK_UP=0
    done
  fi
fi

record "$(python3 -c 'import json,sys; print(json.dumps({"kind": "run_end", "uptime_end": sys.argv[1].strip()}))' "$(uptime)")"
python3 "$HERE/lib/results_table.py" "$RESULTS" | tee "$OUT/table.md"
say "results: $RESULTS, table: $OUT/table.md"
