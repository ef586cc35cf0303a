#!/usr/bin/env bash
# The cost of one oslo-nautobot event, against a live Nautobot:
#
#   bash tests/bench/run.sh
#
# Uses NAUTOBOT_URL and NAUTOBOT_TOKEN when both are set (plain http://, as
# tests/nautobot/up.sh serves it); otherwise starts that Nautobot here and
# stops it on exit. Builds the release binary, the static binary and the
# launcher, then runs tests/bench/bench.py: a Markdown report on stdout,
# also written to tests/bench/latest.md. Knobs: BENCH_ROUNDS (15),
# BENCH_DRY_RUNS (60). Asserts nothing: the figures are for reading.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export CARGO_TERM_COLOR=never

for tool in curl python3; do
    if ! command -v "$tool" >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool"
    fi
done

echo "[bench] building the release binary, the static binary and the launcher" >&2
cargo build --quiet --release --locked
target=x86_64-unknown-linux-gnu
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release --locked --target "$target"
mkdir -p target/bench
rustc --edition 2024 -C opt-level=2 -o target/bench/measure tests/bench/measure.rs

if [ -z "${NAUTOBOT_URL:-}" ] || [ -z "${NAUTOBOT_TOKEN:-}" ]; then
    echo "[bench] NAUTOBOT_URL/NAUTOBOT_TOKEN not set: starting tests/nautobot/up.sh" >&2
    trap 'tests/nautobot/down.sh' EXIT
    eval "$(tests/nautobot/up.sh)"
fi
export NAUTOBOT_URL NAUTOBOT_TOKEN

# What was measured: the commit, and whether the sources differed from it.
revision=""
if rev=$(git rev-parse --short HEAD 2>/dev/null); then
    revision="built from $rev"
    if [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
        revision="$revision with uncommitted changes"
    fi
fi

python3 tests/bench/bench.py \
    --binary target/release/oslo-nautobot \
    --static-binary "target/$target/release/oslo-nautobot" \
    --launcher target/bench/measure \
    --curl "$(command -v curl)" \
    --revision "$revision" \
    --out tests/bench/latest.md
