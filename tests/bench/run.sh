#!/usr/bin/env bash
# The cost of one oslo-nautobot event, against a live Nautobot, and of many
# events in one process (replay, consume):
#
#   bash tests/bench/run.sh
#
# Uses NAUTOBOT_URL and NAUTOBOT_TOKEN when both are set (plain http://, as
# tests/nautobot/up.sh serves it); otherwise starts that Nautobot here and
# stops it on exit. Builds the release binary, the static binary, the
# consume-enabled release binary and the launcher, then runs
# tests/bench/bench.py: a Markdown report on stdout, also written to
# tests/bench/latest.md. Asserts nothing: the figures are for reading.
#
# Knobs: BENCH_ROUNDS (15), BENCH_DRY_RUNS (60), BENCH_MANY (20 networks,
# 6 events each, for replay and consume; 0 leaves them out),
# BENCH_MANY_REPEATS (3 runs of each), BENCH_CONSUME (1; 0 leaves consume
# out, and with it RabbitMQ and oslo.messaging). About 3 minutes with the
# defaults once everything is built; BENCH_ROUNDS=3 BENCH_MANY=5
# BENCH_MANY_REPEATS=1 BENCH_DRY_RUNS=12 for a quick look.
#
# consume needs RabbitMQ on 127.0.0.1:5672 (guest/guest; started if down,
# installed if missing) and works in a vhost of its own, oslo-nautobot-bench,
# made anew and removed at the end. oslo.messaging comes from the venv that
# tests/e2e/run.sh uses (same pinned requirements, made here if missing):
#   ${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}/e2e-venv
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export CARGO_TERM_COLOR=never
many=${BENCH_MANY:-20}
consume=${BENCH_CONSUME:-1}
[ "$many" = 0 ] && consume=0
vhost=oslo-nautobot-bench
# shellcheck source=tests/lib/common.sh
. tests/lib/common.sh
note() { echo "[bench] $*" >&2; }
die() {
    note "$*"
    exit 1
}
for tool in curl python3; do
    command -v "$tool" >/dev/null || apt_install "$tool"
done

echo "[bench] building the release binary, the static binary and the launcher" >&2
cargo build --quiet --release --locked
target=x86_64-unknown-linux-gnu
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release --locked --target "$target"
mkdir -p target/bench
rustc --edition 2024 -C opt-level=2 -o target/bench/measure tests/bench/measure.rs

python=python3
consume_args=()
cleanup=()
# shellcheck disable=SC2317 # run by the EXIT trap
on_exit() {
    local step
    for step in "${cleanup[@]}"; do eval "$step" || true; done
}
trap on_exit EXIT

if [ "$consume" != 0 ]; then
    echo "[bench] building the consume-enabled release binary" >&2
    CARGO_TARGET_DIR=target/consume cargo build --quiet --release --locked --features consume

    # RabbitMQ, as tests/e2e/run.sh and tests/consume/run.sh provide it.
    ensure_rabbitmq die

    # One run at a time: the vhost is the benchmark's.
    lock_cache bench
    fresh_vhost "$vhost" die
    cleanup+=("drop_vhost $vhost")

    # The same pinned list and venv as tests/e2e/run.sh.
    venv_with "$oslo_messaging_venv" "${oslo_messaging_requirements[@]}"
    python=$oslo_messaging_venv/bin/python
    consume_args=(--consume-binary target/consume/release/oslo-nautobot --amqp-vhost "$vhost")
fi

if [ -z "${NAUTOBOT_URL:-}" ] || [ -z "${NAUTOBOT_TOKEN:-}" ]; then
    echo "[bench] NAUTOBOT_URL/NAUTOBOT_TOKEN not set: starting tests/nautobot/up.sh" >&2
    cleanup+=(tests/nautobot/down.sh)
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

PYTHONDONTWRITEBYTECODE=1 PYTHONWARNINGS=ignore "$python" tests/bench/bench.py \
    --binary target/release/oslo-nautobot \
    --static-binary "target/$target/release/oslo-nautobot" \
    --launcher target/bench/measure \
    --curl "$(command -v curl)" \
    --many "$many" \
    --many-repeats "${BENCH_MANY_REPEATS:-3}" \
    "${consume_args[@]}" \
    --revision "$revision" \
    --out tests/bench/latest.md
