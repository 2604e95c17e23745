#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (a cargo workspace of its own) for a fixed time and prints,
# per target, how many inputs were executed and how many crashes were found.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     # default: 60 s, every target
#
# Targets: envelope, store_body, auth, event, sql (see fuzz/fuzz_targets/*.rs).
#
# Toolchain. Only stable Rust is installed. What works here (rustc 1.95, cargo-fuzz 0.13):
#   - `cargo fuzz run -s none TARGET` builds and runs on stable: libFuzzer with coverage
#     instrumentation, debug assertions and overflow checks, no sanitizer. The default here.
#   - AddressSanitizer needs `-Zsanitizer=address`, a nightly flag; stable ships the ASan runtime
#     (librustc-stable_rt.asan.a), so `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET` works. Opt in
#     with SANITIZER=address (built in fuzz/target/asan so the two builds do not evict each
#     other). About 4x fewer executions per second; worth it only for unsafe code, and the
#     product crates deny unsafe_code (the C in zstd is not instrumented either way).
#   - `--build-std` / `--careful` need the rust-src component, which is not installed.
#   Install cargo-fuzz with `cargo install cargo-fuzz --locked`.
#
# Environment:
#   SANITIZER=none|address   (default none)
#   FUZZ_TIMEOUT=10          libFuzzer -timeout: seconds one input may take before it is a hang
#   FUZZ_MAX_RESTARTS=3      after a crash, restart the target (same time budget) this many times
#   FUZZ_ARGS="..."          extra libFuzzer flags, e.g. "-max_len=65536 -dict=..."
#
# Seeds: fuzz/corpus/<target>/seed-* are committed (written from the recorded real requests by
# `cargo run --manifest-path fuzz/Cargo.toml --example seeds`); this script writes them if a
# target has none. libFuzzer adds what it finds to the same directory (ignored by git), so later
# runs start from there. Crashes land in fuzz/artifacts/<target>/crash-<sha1> (also ignored);
# reproduce one with `cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/crash-...`. The timed
# runs start the built binaries (fuzz/target/<host>/release/<target>) directly, with the flags
# `cargo fuzz run` would pass, so that edits to the product crates during a run rebuild nothing.
# Logs: fuzz/logs/<target>.log.
#
# Exit status: 0 when no target crashed, 1 when one did, 2 on a setup or build failure.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ=$ROOT/fuzz
ALL_TARGETS=(envelope store_body auth event sql)

SECONDS_PER_TARGET=${1:-60}
if [[ $# -gt 0 ]]; then shift; fi
if [[ ! $SECONDS_PER_TARGET =~ ^[0-9]+$ || $SECONDS_PER_TARGET -lt 1 ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL_TARGETS[@]}")

SANITIZER=${SANITIZER:-none}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
FUZZ_MAX_RESTARTS=${FUZZ_MAX_RESTARTS:-3}
read -r -a EXTRA <<<"${FUZZ_ARGS:-}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
case $SANITIZER in
    none)
        BUILD=(-s none)
        BIN_DIR=$FUZZ/target/$TRIPLE/release
        ;;
    address)
        export RUSTC_BOOTSTRAP=1
        BUILD=(-s address --target-dir "$FUZZ/target/asan")
        BIN_DIR=$FUZZ/target/asan/$TRIPLE/release
        ;;
    *) echo "SANITIZER must be none or address, not $SANITIZER" >&2; exit 2 ;;
esac

# Seeds, once.
need_seeds=0
for t in "${TARGETS[@]}"; do
    compgen -G "$FUZZ/corpus/$t/seed-*" >/dev/null || need_seeds=1
done
if [[ $need_seeds == 1 ]]; then
    echo "== writing seed corpora"
    cargo run --quiet --manifest-path "$FUZZ/Cargo.toml" --example seeds || exit 2
fi

# Build every target once (release, debug assertions on), so that the timed runs only fuzz.
echo "== building fuzz targets (sanitizer: $SANITIZER)"
for t in "${TARGETS[@]}"; do
    cargo fuzz build "${BUILD[@]}" "$t" || exit 2
    [[ -x $BIN_DIR/$t ]] || { echo "no fuzz binary at $BIN_DIR/$t" >&2; exit 2; }
done

mkdir -p "$FUZZ/logs"
declare -A EXECS CRASHES OTHER RUNS SECS CORPUS
ANY_CRASH=0

count_new() { # count_new DIR PATTERN STAMP: artifacts matching PATTERN newer than STAMP
    find "$1" -maxdepth 1 -type f -name "$2" -newer "$3" 2>/dev/null | wc -l
}

for t in "${TARGETS[@]}"; do
    artifacts=$FUZZ/artifacts/$t
    mkdir -p "$artifacts" "$FUZZ/corpus/$t"
    stamp=$(mktemp)
    log=$FUZZ/logs/$t.log
    : >"$log"
    start=$(date +%s)
    deadline=$((start + SECONDS_PER_TARGET))
    execs=0 runs=0 restarts=0
    echo "== $t: ${SECONDS_PER_TARGET}s"
    while :; do
        left=$((deadline - $(date +%s)))
        [[ $left -ge 1 ]] || break
        runs=$((runs + 1))
        run_log=$(mktemp)
        set +e
        # The binary `cargo fuzz run` would start, started directly so that an edit to the
        # product crates during the loop does not rebuild inside the timed window.
        "$BIN_DIR/$t" -artifact_prefix="$artifacts/" \
            -max_total_time="$left" -timeout="$FUZZ_TIMEOUT" -print_final_stats=1 \
            "${EXTRA[@]}" "$FUZZ/corpus/$t" >"$run_log" 2>&1
        status=$?
        set -e
        cat "$run_log" >>"$log"
        # Executions: the final stats line; a run that died without it falls back to the last
        # status line (`#N DONE`, `#N NEW`, `#N pulse`).
        n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$run_log" | tail -1)
        if [[ -z $n ]]; then
            n=$(sed -n 's/^#\([0-9][0-9]*\)[[:space:]].*/\1/p' "$run_log" | tail -1)
        fi
        execs=$((execs + ${n:-0}))
        rm -f "$run_log"
        [[ $status -eq 0 ]] && break
        if [[ $(count_new "$artifacts" '*-*' "$stamp") -eq 0 ]]; then
            echo "   $t: exited $status without an artifact; see $log" >&2
            ANY_CRASH=1
            break
        fi
        restarts=$((restarts + 1))
        [[ $restarts -le $FUZZ_MAX_RESTARTS ]] || break
        echo "   $t: crashed; restarting ($restarts/$FUZZ_MAX_RESTARTS)"
    done
    EXECS[$t]=$execs
    RUNS[$t]=$runs
    SECS[$t]=$(($(date +%s) - start))
    CRASHES[$t]=$(count_new "$artifacts" 'crash-*' "$stamp")
    OTHER[$t]=$(( $(count_new "$artifacts" 'timeout-*' "$stamp") + $(count_new "$artifacts" 'oom-*' "$stamp") + $(count_new "$artifacts" 'leak-*' "$stamp") ))
    CORPUS[$t]=$(find "$FUZZ/corpus/$t" -maxdepth 1 -type f | wc -l)
    if [[ ${CRASHES[$t]} -gt 0 || ${OTHER[$t]} -gt 0 ]]; then
        ANY_CRASH=1
        echo "   $t: new artifacts (panic messages are in $log):"
        find "$artifacts" -maxdepth 1 -type f -newer "$stamp" | while read -r f; do
            echo "     $f"
            if [[ $(stat -c %s "$f") -le 4096 ]]; then
                echo "       base64: $(base64 -w0 "$f")"
            fi
        done
        # The panic location and the line after it (the message), for the first few crashes.
        grep -m3 -A1 "panicked at" "$log" | sed 's/^/       /' || true
    fi
    rm -f "$stamp"
done

echo
printf '%-11s %7s %5s %14s %9s %8s %14s %7s\n' target seconds runs executions exec/s crashes timeouts/ooms corpus
for t in "${TARGETS[@]}"; do
    s=${SECS[$t]}
    printf '%-11s %7s %5s %14s %9s %8s %14s %7s\n' "$t" "$s" "${RUNS[$t]}" "${EXECS[$t]}" \
        "$((EXECS[$t] / (s > 0 ? s : 1)))" "${CRASHES[$t]}" "${OTHER[$t]}" "${CORPUS[$t]}"
done
exit $ANY_CRASH
