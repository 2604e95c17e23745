#!/usr/bin/env bash
# Runs the crash-durability test N times and sums up what it saw:
#
#   scripts/kill_loop.sh [N]          # default 20
#
# The test (crates/server/tests/it/durability.rs,
# durability::acknowledged_events_survive_kill_9_exactly_once) loads a server with 8 writers,
# kill -9s it mid-load, restarts it, and checks that every acknowledged event is stored exactly
# once. Each run prints `kill -9: S sent, A acknowledged, F stored after restart`; the test fails
# if an acknowledged event is missing ("N of M acknowledged events are missing") or stored twice
# ("events stored twice: [...]"). This script collects those lines and messages.
#
# It builds the test binary once (`cargo test -p server --test it --no-run`, which also builds
# the `sentry` binary) and then runs that binary directly, as `cargo test -p server --test it
# durability::acknowledged_events_survive_kill_9_exactly_once -- --exact --nocapture` would,
# so that edits made to the tree while the loop runs do not trigger rebuilds halfway. (The test
# starts target/debug/sentry, so a concurrent `cargo build` of the workspace still replaces the
# server under test.)
#
# Logs: one file per run in $KILL_LOOP_LOGS (default: a new directory under ${TMPDIR:-/tmp}),
# kept and printed for failed runs.
#
# Exit status: 0 when every run passed, 1 when any failed, 2 when the build failed.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-20}
if [[ ! $N =~ ^[0-9]+$ || $N -lt 1 ]]; then
    echo "usage: $0 [N]" >&2
    exit 2
fi
TEST=durability::acknowledged_events_survive_kill_9_exactly_once
LOGS=${KILL_LOOP_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/kill_loop.XXXXXX")}
mkdir -p "$LOGS"

echo "== building (cargo test -p server --test it --no-run)"
BIN=$(cargo test -p server --test it --no-run --message-format=json-render-diagnostics |
    grep '"kind":\["test"\]' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
build=$? # with pipefail: cargo's status, unless cargo succeeded
if [[ $build -ne 0 || -z $BIN || ! -x $BIN ]]; then
    echo "build failed" >&2
    exit 2
fi
echo "   test binary: $BIN"
echo "   logs: $LOGS"

runs=0 passed=0 failed=0
sum_sent=0 sum_acked=0 sum_stored=0 sum_lost=0 sum_dups=0
unknown_lost=0 unknown_dups=0
printf '\n%4s %6s %8s %8s %13s %5s %5s %7s  %s\n' run result sent acked stored lost dups seconds note
for i in $(seq 1 "$N"); do
    log=$LOGS/run-$i.log
    start=$(date +%s)
    # The test binary expects to run in its package directory, as cargo runs it.
    (cd "$ROOT/crates/server" && "$BIN" --exact "$TEST" --nocapture --test-threads=1) >"$log" 2>&1
    status=$?
    secs=$(($(date +%s) - start))
    runs=$((runs + 1))

    # (With one test thread, libtest's `test NAME ... ` comes first on the same line.)
    line=$(grep -m1 -oE 'kill -9: [0-9]+ sent, [0-9]+ acknowledged, [0-9]+ stored after restart' "$log")
    sent=- acked=- stored=-
    if [[ -n $line ]]; then
        read -r sent acked stored < <(sed -E 's/^kill -9: ([0-9]+) sent, ([0-9]+) acknowledged, ([0-9]+) stored.*/\1 \2 \3/' <<<"$line")
        sum_sent=$((sum_sent + sent))
        sum_acked=$((sum_acked + acked))
        sum_stored=$((sum_stored + stored))
    fi

    # The missing-events check runs right after the `kill -9:` line is printed, the duplicates
    # check right after that. Lost: the test's count when it failed on missing events, else 0
    # once the line is printed. Duplicates: the entries of `events stored twice: [("id", 2), ..]`,
    # else 0 once the missing-events check passed. `?` when the run never got that far.
    missing=$(sed -nE 's/^(.*[^0-9])?([0-9]+) of [0-9]+ acknowledged events are missing.*/\2/p' "$log" | head -1)
    twice=$(grep -m1 -o 'events stored twice: \[.*\]' "$log")
    lost=? dups=?
    if [[ -n $line ]]; then
        lost=${missing:-0}
        if [[ -n $twice ]]; then
            dups=$(grep -o '("' <<<"$twice" | wc -l)
        elif [[ -z $missing ]]; then
            dups=0
        fi
    fi
    note=
    if [[ $status -eq 0 ]]; then
        result=ok
        passed=$((passed + 1))
    else
        result=FAIL
        failed=$((failed + 1))
        # The first line of the panic message says which check failed.
        note=$(grep -m1 -A1 'panicked at' "$log" | tail -1 | cut -c1-100)
        [[ -n $note ]] || note="exit status $status, no panic message"
    fi
    if [[ $lost == "?" ]]; then unknown_lost=$((unknown_lost + 1)); else sum_lost=$((sum_lost + lost)); fi
    if [[ $dups == "?" ]]; then unknown_dups=$((unknown_dups + 1)); else sum_dups=$((sum_dups + dups)); fi
    printf '%4s %6s %8s %8s %13s %5s %5s %7s  %s\n' "$i" "$result" "$sent" "$acked" "$stored" "$lost" "$dups" "$secs" "$note"
    if [[ $status -eq 0 ]]; then rm -f "$log"; fi
done

echo
echo "runs:                            $runs"
echo "passed:                          $passed"
echo "failed:                          $failed"
echo "total sent:                      $sum_sent"
echo "total acknowledged:              $sum_acked"
echo "total stored after restart:      $sum_stored"
echo "total lost (acked, not stored):  $sum_lost$([[ $unknown_lost -gt 0 ]] && echo " (+ $unknown_lost runs that failed before the check)")"
echo "duplicates (stored twice):       $sum_dups$([[ $unknown_dups -gt 0 ]] && echo " (+ $unknown_dups runs that failed before the check)")"
if [[ $failed -gt 0 ]]; then
    echo "logs of the failed runs: $LOGS"
    exit 1
fi
rmdir "$LOGS" 2>/dev/null || true
exit 0
