#!/usr/bin/env bash
# `oslo-nautobot reconcile` at scale: BENCH_NETWORKS (1000) networks and
# BENCH_SUBNETS (2000) subnets made in a real Neutron with its bulk API, then
# the first sync (beside Nautobot's own cost for the same writes), a rerun
# with nothing to do (which must write nothing: counted), and a rerun after
# 1 % drift (BENCH_DRIFT, 10: networks created, renamed and deleted in
# Neutron, hand edits in Nautobot):
#
#   bash tests/bench/reconcile.sh
#
# Uses NAUTOBOT_URL and NAUTOBOT_TOKEN when both are set, otherwise starts
# tests/nautobot/up.sh; uses the Keystone and Neutron of the environment when
# NEUTRON_URL, KEYSTONE_URL and NEUTRON_AUTH=keystone are set, otherwise
# starts tests/openstack/up.sh (its knobs apply). What it started it stops.
# The binary: $OSLO_NAUTOBOT_BENCH_BIN, else `cargo build --release --locked`.
# The report goes to stdout and to tests/bench/reconcile.md. About half an
# hour with the defaults on 2 cores (Nautobot spends ~150 ms per prefix
# written, Neutron's bulk creates and the clean-up take minutes); not part of
# the test suite. Everything it makes is removed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export CARGO_TERM_COLOR=never
note() { echo "[bench reconcile] $*" >&2; }

binary=${OSLO_NAUTOBOT_BENCH_BIN:-}
if [ -z "$binary" ]; then
    note "building the release binary"
    cargo build --quiet --release --locked
    binary=target/release/oslo-nautobot
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
if [ -z "${NEUTRON_URL:-}" ] || [ -z "${KEYSTONE_URL:-}" ] || [ "${NEUTRON_AUTH:-}" != keystone ]; then
    note "no Keystone and Neutron in the environment: starting tests/openstack/up.sh"
    cleanup+=(tests/openstack/down.sh)
    eval "$(tests/openstack/up.sh)"
fi
export NAUTOBOT_URL NAUTOBOT_TOKEN

revision="built from $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
[ -z "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] || revision="$revision with uncommitted changes"
[ -z "${OSLO_NAUTOBOT_BENCH_BIN:-}" ] || revision="${OSLO_NAUTOBOT_BENCH_REVISION:-$binary}"
PYTHONDONTWRITEBYTECODE=1 python3 tests/bench/reconcile.py --binary "$binary" \
    --networks "${BENCH_NETWORKS:-1000}" --subnets "${BENCH_SUBNETS:-2000}" \
    --external-subnets "${BENCH_EXTERNAL_SUBNETS:-50}" --drift "${BENCH_DRIFT:-10}" \
    --revision "$revision" --out tests/bench/reconcile.md
