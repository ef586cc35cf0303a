#!/usr/bin/env bash
# Big events against a live Nautobot: a bulk create of BENCH_SUBNETS (1000)
# subnets of one network and of BENCH_NETWORKS (500) networks, each in one
# run of the release binary with its default flags, then rerun, beside
# Nautobot's own cost for the same writes:
#
#   bash tests/bench/bulk.sh
#   BENCH_OLD_REV=<commit> bash tests/bench/bulk.sh   # and an older binary too
#
# Uses NAUTOBOT_URL and NAUTOBOT_TOKEN when both are set; otherwise starts
# tests/nautobot/up.sh and stops it on exit. The report goes to stdout and
# to tests/bench/bulk.md. Asserts nothing. About 10 minutes with the
# defaults (Nautobot spends ~150 ms per prefix); not part of the test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export CARGO_TERM_COLOR=never
# shellcheck source=tests/lib/common.sh
. tests/lib/common.sh
note() { echo "[bulk] $*" >&2; }

note "building the release binary"
cargo build --quiet --release --locked
old=()
if [ -n "${BENCH_OLD_REV:-}" ]; then
    dir=target/bench/old-$BENCH_OLD_REV
    if [ ! -x "$dir/target/release/oslo-nautobot" ]; then
        note "building $BENCH_OLD_REV into $dir"
        rm -rf "$dir"
        git worktree add --detach -f "$dir" "$BENCH_OLD_REV" >&2
        (cd "$dir" && cargo build --quiet --release --locked)
    fi
    old=(--old-binary "$dir/target/release/oslo-nautobot" --old-revision "$BENCH_OLD_REV")
fi

cleanup=()
# shellcheck disable=SC2317 # run by the EXIT trap
on_exit() {
    local step
    for step in "${cleanup[@]}"; do eval "$step" || true; done
}
trap on_exit EXIT
if [ -z "${NAUTOBOT_URL:-}" ] || [ -z "${NAUTOBOT_TOKEN:-}" ]; then
    note "NAUTOBOT_URL/NAUTOBOT_TOKEN not set: starting tests/nautobot/up.sh"
    cleanup+=(tests/nautobot/down.sh)
    eval "$(tests/nautobot/up.sh)"
fi
export NAUTOBOT_URL NAUTOBOT_TOKEN

revision="built from $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
[ -z "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] || revision="$revision with uncommitted changes"
PYTHONDONTWRITEBYTECODE=1 python3 tests/bench/bulk.py --binary target/release/oslo-nautobot "${old[@]}" \
    --subnets "${BENCH_SUBNETS:-1000}" --networks "${BENCH_NETWORKS:-500}" \
    --revision "$revision" --out tests/bench/bulk.md
