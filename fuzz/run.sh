#!/usr/bin/env bash
# Run every fuzz target (or those named) for SECONDS_PER_TARGET seconds each, one after the
# other, one process and one job at a time, and print each target's executions, run time,
# corpus size and crashes.
#
#   fuzz/run.sh                      # every target, 300 s each
#   SECONDS_PER_TARGET=600 fuzz/run.sh answer zone
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Each target's working
# corpus is fuzz/corpus/<target> (ignored by git), started from the kept inputs in
# fuzz/regressions/<target>; crash inputs land in fuzz/artifacts/<target>. Logs go to
# fuzz/logs/<target>.log. The bodies' scratch files go to a temporary folder removed at the end.
# To keep a crash input once its bug is fixed: copy it to fuzz/regressions/<target>/crash-<what>
# (tests/fuzz_corpus.rs then runs it under `cargo test`). To shrink a working corpus before
# keeping any of it: cargo +nightly fuzz cmin <target>.
set -euo pipefail
cd "$(dirname "$0")"

secs="${SECONDS_PER_TARGET:-300}"
# libFuzzer's limits: a single input that runs longer than this is a hang (reported as a crash).
timeout="${TIMEOUT_PER_INPUT:-10}"
rss="${RSS_LIMIT_MB:-2048}"
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(query answer zone config policy)

# How each target is built. The policy engine is safe Rust that spends its time in the decision
# tables' geometries (259,200 cells each): AddressSanitizer and comparison tracing made it run
# at 1 input/s, so it is built without them (debug assertions and overflow checks stay on), in
# a target folder of its own so that the two builds do not undo each other.
build_flags() {
    case "$1" in
        policy) echo "--sanitizer none --no-trace-compares --target-dir target/plain" ;;
        *) echo "" ;;
    esac
}
for t in "${targets[@]}"; do
    # shellcheck disable=SC2046
    if ! out=$(cargo +nightly fuzz build $(build_flags "$t") "$t" 2>&1); then
        printf '%s\n' "$out" >&2
        exit 1
    fi
done

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p logs

printf '%-8s %12s %10s %8s %8s %8s %s\n' target executions "run (s)" "exec/s" corpus failures artifacts
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    cp -n regressions/"$t"/* "corpus/$t/" 2>/dev/null || true
    touch "$scratch/started-$t"
    start=$(date +%s)
    # One process, one thread: libFuzzer's default, and cargo-fuzz's `--jobs` default of 1.
    # (libFuzzer's -jobs=1 -workers=1 would add a supervising process and move the output,
    # final statistics included, to fuzz-0.log.) A crash stops the run; the script reports it
    # and moves on to the next target.
    # shellcheck disable=SC2046
    TMPDIR="$scratch" cargo +nightly fuzz run $(build_flags "$t") "$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout="$timeout" -rss_limit_mb="$rss" \
        -print_final_stats=1 >"logs/$t.log" 2>&1 || true
    end=$(date +%s)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log" | tail -1)
    # Crashes, hangs, out-of-memory and leaks (not libFuzzer's slow-unit notes).
    new=$(find "artifacts/$t" -type f -newer "$scratch/started-$t" \
        \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
    corpus=$(find "corpus/$t" -type f | wc -l)
    printf '%-8s %12s %10s %8s %8s %8s %s\n' "$t" "${execs:-?}" "$((end - start))" "${rate:-?}" \
        "$corpus" "$(printf '%s' "$new" | grep -c . || true)" "$(echo $new)"
done
