#!/usr/bin/env bash
# Ingest on SQLite and on PostgreSQL, side by side, on the same box with the same payloads:
#
#   bench/postgres.sh [--duration S] [--connections N] [--payload P] [--nodes "1 3"]
#
# Starts a throwaway PostgreSQL server (initdb into $PEER_DIR/pg, a free loopback port, fsync and synchronous commit
# ON: the durability a real installation has), then, each with the same load (bench/ingest_bench.sh: wrk, closed loop,
# recorded SDK envelopes, a fresh event id per request):
#   1. one sentry node on SQLite (its own data directory), N connections;
#   2. one sentry node on PostgreSQL, N connections;
#   3. with "3" in --nodes: three sentry nodes on that one PostgreSQL database, N/3 connections to each, at once.
# For each cell: accepted/s and stored/s (stored = rows in the database), latency p50/p99, and PostgreSQL's own CPU
# time per stored event (user + system time of every PostgreSQL process, before and after), so that the capacity of
# a larger database can be predicted. A benchmark, not a test: it reports, nothing fails.
#
# Options:
#   --duration S      seconds of load per cell (default 20)
#   --connections N   connections in all per cell (default 64)
#   --payload P       exception (default) | message | transaction
#   --nodes "N.."     which PostgreSQL cells: "1", "3" or "1 3" (default "1 3")
#   --no-sqlite       skip the SQLite cell
#   -h, --help        this text
# Env: PEER_DIR (default /tmp/sentry-bench), SENTRY_BIN (default <repo>/target/release/sentry), PG_BIN (default: the
#      newest /usr/lib/postgresql/*/bin). Results: $PEER_DIR/results/pg-<UTC time>/results.jsonl and table.md.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export PEER_DIR="${PEER_DIR:-/tmp/sentry-bench}"
export QUIET_WAIT="${QUIET_WAIT:-0}"
DURATION=20 CONNS=64 PAYLOAD=exception NODES="1 3" SQLITE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2;;
    --connections) CONNS="$2"; shift 2;;
    --payload) PAYLOAD="$2"; shift 2;;
    --nodes) NODES="$2"; shift 2;;
    --no-sqlite) SQLITE=0; shift;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2;;
  esac
done

say() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }
SENTRY_BIN="${SENTRY_BIN:-$ROOT/target/release/sentry}"
[ -x "$SENTRY_BIN" ] || die "$SENTRY_BIN not found: run \`cargo build --release -p server\` first"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
[ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries not found (set PG_BIN, or run ./scripts/test.sh, which installs them)"
command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk; bench/run.sh installs it)"

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$PEER_DIR/results/pg-$STAMP"
WORK="$PEER_DIR/work/pg-$STAMP"
mkdir -p "$OUT" "$WORK"
RESULTS="$OUT/results.jsonl"
cp "$SENTRY_BIN" "$WORK/sentry"
SENTRY="$WORK/sentry"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---- PostgreSQL ------------------------------------------------------------------------------------------------
AS_PG=()
if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); chown postgres "$WORK"; fi
PG_PORT="$(free_port)"
PG_DATA="$WORK/pg"
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres >/dev/null
"${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -l "$WORK/pg.log" \
  -o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c shared_buffers=512MB -c max_connections=100" start >/dev/null
SERVERS=()
cleanup() {
  for p in "${SERVERS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
PSQL=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -XAtq)
PG_MAIN="$(head -n 1 "$PG_DATA/postmaster.pid")"
say "PostgreSQL on :$PG_PORT (pid $PG_MAIN), results in $OUT"

# CPU seconds (user + system) of every PostgreSQL process: the postmaster and its children, live and exited.
pg_cpu() {
  python3 - "$PG_MAIN" <<'PY'
import os, sys
main = sys.argv[1]
hz = os.sysconf("SC_CLK_TCK")
total = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    ppid = f[1]
    if pid == main or ppid == main:
        # utime, stime, and for the postmaster the reaped children's cutime, cstime
        total += int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if pid == main else 0)
print(total / hz)
PY
}

# start_node NAME BACKEND_TOML: starts a node on its own port and data dir; prints "PORT PID".
start_node() {
  local name="$1" store="$2" dir="$WORK/$1" port
  mkdir -p "$dir/data"
  port="$(free_port)"
  printf 'bind = "127.0.0.1:%s"\ndata_dir = "%s"\n%s\n' "$port" "$dir/data" "$store" > "$dir/sentry.toml"
  "$SENTRY" --config "$dir/sentry.toml" start --no-daemon > "$OUT/$name.server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 60); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break
    kill -0 "$pid" 2>/dev/null || die "$name exited at start: $(tail -n 5 "$OUT/$name.server.log")"
    sleep 0.5
  done
  echo "$port $pid"
}

project_of() {  # project_of CONFIG -> "ID KEY" (creates project "bench" unless it exists)
  "$SENTRY" --config "$1" project create bench --json 2>/dev/null > "$WORK/project.json" || \
    "$SENTRY" --config "$1" project list --json | python3 -c 'import json,sys; print(json.dumps([p for p in json.load(sys.stdin) if p["slug"]=="bench"][0]))' > "$WORK/project.json"
  python3 -c '
import json, sys, urllib.parse
d = json.load(open(sys.argv[1])); u = urllib.parse.urlsplit(d["dsn"])
print(d["id"], u.username)' "$WORK/project.json"
}

# cell LABEL STORED_CMD "PORT PID"...: the load spread over the nodes at once, then one summary record.
cell() {
  local label="$1" stored_cmd="$2"; shift 2
  local n=$# per=$((CONNS / $#)) cpu0 cpu1 s0 s1 i=0 pids=()
  cpu0="$(pg_cpu)"; s0="$(eval "$stored_cmd" | awk '{print $1}')"
  local t0; t0="$(date +%s.%N)"
  for node in "$@"; do
    read -r port pid <<<"$node"
    pids+=("$pid")
    i=$((i + 1))
    "$HERE/ingest_bench.sh" --label "$label-n$i" --duration "$DURATION" --concurrency "$per" --payload "$PAYLOAD" \
      --url "http://127.0.0.1:$port" --project "$PROJECT" --key "$KEY" --pids "$pid" --stored-cmd "$stored_cmd" \
      --out "$OUT" > "$OUT/$label-n$i.log" 2>&1 &
  done
  wait "${!}" 2>/dev/null || true
  wait || true
  s1="$(eval "$stored_cmd" | awk '{print $1}')"; cpu1="$(pg_cpu)"
  python3 - "$label" "$n" "$per" "$s0" "$s1" "$cpu0" "$cpu1" "$RESULTS" "$DURATION" <<'PY' | tee -a "$RESULTS"
import json, sys
label, n, per, s0, s1, c0, c1, results, dur = sys.argv[1:]
cells = [json.loads(l) for l in open(results) if l.startswith("{") and json.loads(l).get("label", "").startswith(label + "-n")]
stored = int(float(s1)) - int(float(s0))
pg_cpu = float(c1) - float(c0)
acc = sum(c.get("accepted_per_s", 0) for c in cells)
# Every node's run counts the rows of the one database over its own window: each sees the total.
sto = max(((c.get("stored") or {}).get("stored_per_s") or 0 for c in cells), default=0)
p99 = max((c.get("latency_ms", {}).get("p99", 0) for c in cells), default=0)
p50 = max((c.get("latency_ms", {}).get("p50", 0) for c in cells), default=0)
print(json.dumps({"kind": "pg_cell", "label": label, "nodes": int(n), "connections_per_node": int(per),
                  "accepted_per_s": round(acc, 1), "stored_per_s": sto, "stored_events": stored,
                  "stored_per_s_over_load": round(stored / float(dur), 1), "p50_ms": p50, "p99_ms": p99,
                  "pg_cpu_s": round(pg_cpu, 2), "pg_cpu_us_per_event": round(pg_cpu * 1e6 / stored, 1) if stored else None}))
PY
}

if [ "$SQLITE" = 1 ]; then
  read -r port pid < <(start_node sqlite "")
  SERVERS+=("$pid")
  read -r PROJECT KEY < <(project_of "$WORK/sqlite/sentry.toml")
  STORED="curl -s http://127.0.0.1:$port/metrics | awk '/^sentry_events_stored_total /{s=\$2} END{print s+0}'"
  cell "sqlite-1node" "$STORED" "$port $pid"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
fi

"${PSQL[@]}" -d postgres -c "CREATE DATABASE sentry" >/dev/null
PG_STORE="[store]
backend = \"postgres\"
postgres_url = \"postgres://postgres@127.0.0.1:$PG_PORT/sentry\""
STORED_PG="${PSQL[*]} -d sentry -c 'SELECT count(*) FROM event_ids'"
for nodes in $NODES; do
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS sentry" -c "CREATE DATABASE sentry" >/dev/null
  started=()
  for i in $(seq 1 "$nodes"); do
    read -r port pid < <(start_node "pg-$nodes-$i" "$PG_STORE")
    SERVERS+=("$pid"); started+=("$port $pid")
  done
  read -r PROJECT KEY < <(project_of "$WORK/pg-$nodes-1/sentry.toml")
  sleep 2
  cell "postgres-${nodes}node" "$STORED_PG" "${started[@]}"
  for node in "${started[@]}"; do read -r _ pid <<<"$node"; kill -TERM "$pid" 2>/dev/null || true; done
  for node in "${started[@]}"; do read -r _ pid <<<"$node"; wait "$pid" 2>/dev/null || true; done
done

python3 - "$RESULTS" <<'PY' | tee "$OUT/table.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"pg_cell"' in l]
print("| cell | nodes | accepted/s | stored/s | p50 ms | p99 ms | PostgreSQL CPU µs / stored event |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    print(f"| {r['label']} | {r['nodes']} | {r['accepted_per_s']} | {r['stored_per_s']} "
          f"| {r['p50_ms']} | {r['p99_ms']} | {r['pg_cpu_us_per_event'] if r['label'].startswith('postgres') else '-'} |")
PY
