#!/usr/bin/env bash
# Fuzz oslo-nautobot's decoder and planner (tests/fuzz) for a bounded time.
#
#   tests/hostile/fuzz.sh                # 60 s
#   FUZZ_SECONDS=600 tests/hostile/fuzz.sh
#
# Installs cargo-fuzz from crates.io when it is missing. Uses the nightly
# toolchain with AddressSanitizer when there is one; otherwise the stable
# toolchain without a sanitizer (RUSTC_BOOTSTRAP lets cargo-fuzz's flags
# through). Seeds: the sample events and the bad-input corpus; what the
# fuzzer learns goes to tests/fuzz/corpus/ (not committed) and a crashing
# input to tests/fuzz/artifacts/, libFuzzer's output to tests/fuzz/last-run.log.
# The last line is "N passed, M failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds="${FUZZ_SECONDS:-60}"
target=decode_and_plan
result() { echo "$1 passed, $2 failed"; exit "$3"; }
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "FUZZ_SECONDS must be a whole number of seconds above 0, not '$seconds'" >&2
    result 0 1 1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked >&2 || { echo "cannot install cargo-fuzz" >&2; result 0 1 1; }
fi

if cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
    sanitizer=address
else
    echo "no nightly toolchain: fuzzing on stable without a sanitizer" >&2
    toolchain=()
    sanitizer=none
    export RUSTC_BOOTSTRAP=1
fi

corpus="tests/fuzz/corpus/$target"
log=tests/fuzz/last-run.log
mkdir -p "$corpus"
# libFuzzer writes new inputs to the first directory and only reads the others.
# Its line per new input goes to the log; the summary is printed below.
echo "fuzzing $target for ${seconds}s (sanitizer: $sanitizer; log: $log)" >&2
# The fuzz build (instrumented, minutes from scratch) is cached outside the
# repository, like the test suite's other slow steps.
target_dir="${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}/fuzz-target"
cargo "${toolchain[@]}" fuzz run --fuzz-dir tests/fuzz --target-dir "$target_dir" --sanitizer "$sanitizer" "$target" \
    "$corpus" tests/fixtures tests/inputs -- \
    -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -dict=tests/fuzz/json.dict -print_final_stats=1 >"$log" 2>&1
rc=$?
grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb))' "$log" >&2
if [ "$rc" -eq 0 ]; then
    echo "no crash in ${seconds}s; corpus: $(find "$corpus" -type f | wc -l) inputs" >&2
    result 1 0 0
fi
tail -n 60 "$log" >&2
echo "the fuzzer failed (exit $rc); crashing inputs, if any, are in tests/fuzz/artifacts/$target/" >&2
result 0 1 1
