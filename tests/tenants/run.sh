#!/usr/bin/env bash
# Keystone projects → Nautobot tenants with a real Keystone in the loop: the
# projects are made, renamed and deleted through Keystone's API, Keystone's
# notifications flow through RabbitMQ (exchange "keystone") to the binary
# (one process per event, through the Sensor's and the Workflow's emulation,
# with and without OpenStack credentials), to `reconcile` and to the
# `consume` service, and Nautobot's tenants are compared with what Keystone
# says exists. See tenants.py for the scenarios and the checks.
#
# Needs NAUTOBOT_URL and NAUTOBOT_TOKEN of a running Nautobot (tests/run.sh
# starts one; by hand: eval "$(tests/nautobot/up.sh)"). Uses the Keystone and
# Neutron of the environment when KEYSTONE_URL, NEUTRON_URL and
# NEUTRON_AUTH=keystone are set (tests/run.sh starts them once, with
# tests/openstack/up.sh); otherwise starts both itself and stops them at the
# end (the knobs of tests/openstack/up.sh apply: state directories,
# databases, the vhost). Its queues live in Keystone's and Neutron's vhosts
# (oslo-nautobot-tenants-<run>-…) and are removed at the end.
#
# Binaries: $OSLO_NAUTOBOT_TENANTS_BIN, else the debug build of this work
# tree; for consume $OSLO_NAUTOBOT_TENANTS_CONSUME_BIN, else
# `CARGO_TARGET_DIR=target/consume cargo build --features consume`.
# OSLO_NAUTOBOT_TENANTS_LEFTOVER_MINUTES (15): what a killed earlier run left
# in Nautobot is removed once its tag is that old.
#
# Last line printed: "N passed, M failed"; exit status 1 on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))
started=$SECONDS

fail() {
    echo "FAIL: $*"
    echo "0 passed, 1 failed"
    exit 1
}
note() { printf '[tenants %3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"

if [ -z "${NAUTOBOT_URL:-}" ] || [ -z "${NAUTOBOT_TOKEN:-}" ]; then
    fail "NAUTOBOT_URL and NAUTOBOT_TOKEN must be set: run tests/run.sh, or eval \"\$(tests/nautobot/up.sh)\" first"
fi
if ! command -v jq >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >&2
fi

# --- the binaries (a no-op when they are up to date) ----------------------------

suite_binaries OSLO_NAUTOBOT_TENANTS "$repo" fail

# --- Keystone and Neutron -----------------------------------------------------------

own_stack=
if [ -z "${NEUTRON_URL:-}" ] || [ -z "${KEYSTONE_URL:-}" ] || [ "${NEUTRON_AUTH:-}" != keystone ]; then
    own_stack=1
fi
# One run at a time per vhost: at the start a run removes what a killed
# earlier one left (projects, networks and queues named ten-…).
cache=${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}
mkdir -p "$cache"
if [ -n "$own_stack" ]; then
    lock_vhost=${OSLO_NAUTOBOT_KEYSTONE_VHOST:-${OSLO_NAUTOBOT_NEUTRON_VHOST:-oslo-nautobot-neutron}}
else
    lock_vhost=${KEYSTONE_AMQP_VHOST:-$NEUTRON_VHOST}
fi
exec 8>"$cache/.tenants-run-$lock_vhost.lock"
flock 8

work=$(mktemp -d "${TMPDIR:-/tmp}/oslo-nautobot-tenants.XXXXXX")
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    [ -z "$own_stack" ] || "$here/../openstack/down.sh" || true
    rm -rf "$work"
}
trap cleanup EXIT
if [ -n "$own_stack" ]; then
    note "starting Keystone and Neutron (tests/openstack/up.sh)"
    env_lines=$("$here/../openstack/up.sh" 8>&-) || fail "tests/openstack/up.sh could not start Keystone and Neutron"
    eval "$env_lines"
else
    note "using the running Keystone and Neutron of the environment"
fi
for var in KEYSTONE_AMQP_URL KEYSTONE_AMQP_VHOST NEUTRON_AMQP_URL NEUTRON_VENV OS_AUTH_URL; do
    [ -n "${!var:-}" ] || fail "$var is not set (the exports of tests/openstack/up.sh)"
done
note "Keystone at $KEYSTONE_URL (notifications in vhost $KEYSTONE_AMQP_VHOST), Neutron at $NEUTRON_URL"

# --- the test -------------------------------------------------------------------------

note "running tenants.py"
export PYTHONDONTWRITEBYTECODE=1 PYTHONWARNINGS=ignore
rc=0
"$NEUTRON_VENV/bin/python" "$here/tenants.py" --repo "$repo" --bin "$bin" --consume-bin "$consume_bin" \
    --jq "$(command -v jq)" --keystone "$KEYSTONE_URL" --neutron "$NEUTRON_URL" \
    --keystone-amqp "$KEYSTONE_AMQP_URL" --neutron-amqp "$NEUTRON_AMQP_URL" --work "$work" | tee "$work/out" ||
    rc=${PIPESTATUS[0]}
if ! tail -n 1 "$work/out" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
    fail "tenants.py stopped before its summary (exit $rc)"
fi
note "done in $((SECONDS - started)) s"
exit "$rc"
