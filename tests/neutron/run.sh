#!/usr/bin/env bash
# Real Neutron in the loop: a real Neutron API server (tests/neutron/up.sh),
# behind a real Keystone (tests/keystone/up.sh), takes the API calls a user
# makes with a Keystone token, its notifications flow through RabbitMQ,
# the Sensor's logic and the binary (one process per event, then the
# `consume` service) into Nautobot, and Nautobot is compared with what
# Neutron says exists. See neutron_e2e.py for the scenario and the checks.
#
# Needs NAUTOBOT_URL and NAUTOBOT_TOKEN of a running Nautobot (tests/run.sh
# starts one; by hand: eval "$(tests/nautobot/up.sh)"). Uses the Keystone and
# Neutron of the environment when NEUTRON_URL and KEYSTONE_URL are set
# (tests/run.sh starts them once, with tests/openstack/up.sh); otherwise
# starts both itself (and MariaDB and RabbitMQ if they are down; installs
# what is missing) and stops them at the end. The knobs of
# tests/openstack/up.sh apply (state directories, databases, the vhost).
#
# Binaries: $OSLO_NAUTOBOT_NEUTRON_BIN, else the debug build of this work
# tree; for consume $OSLO_NAUTOBOT_NEUTRON_CONSUME_BIN, else
# `cargo build --features consume` into target/consume. OSLO_NAUTOBOT_NEUTRON_PATHS
# picks the paths (default "oneshot,consume"); OSLO_NAUTOBOT_NEUTRON_DEBUG=1 prints
# each call's timings on stderr.
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
note() { printf '[neutron %3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }

if [ -z "${NAUTOBOT_URL:-}" ] || [ -z "${NAUTOBOT_TOKEN:-}" ]; then
    fail "NAUTOBOT_URL and NAUTOBOT_TOKEN must be set: run tests/run.sh, or eval \"\$(tests/nautobot/up.sh)\" first"
fi
if ! command -v jq >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >&2
fi

# --- the binaries (a no-op when they are up to date) ----------------------------

bin=${OSLO_NAUTOBOT_NEUTRON_BIN:-}
if [ -z "$bin" ]; then
    note "cargo build"
    (cd "$repo" && cargo build --locked --quiet >&2) || fail "cargo build --locked"
    bin=$repo/target/debug/oslo-nautobot
fi
[ -x "$bin" ] || fail "no binary at $bin"
paths=${OSLO_NAUTOBOT_NEUTRON_PATHS:-oneshot,consume}
consume_bin=${OSLO_NAUTOBOT_NEUTRON_CONSUME_BIN:-}
if [ -z "$consume_bin" ] && [[ ",$paths," == *,consume,* ]] &&
    grep -Eq '^consume *=' "$repo/Cargo.toml"; then
    note "cargo build --features consume"
    (cd "$repo" && CARGO_TARGET_DIR=target/consume cargo build --locked --quiet --features consume >&2) ||
        fail "cargo build --locked --features consume"
    consume_bin=$repo/target/consume/debug/oslo-nautobot
fi

# --- Keystone and Neutron -----------------------------------------------------------

own_stack=
if [ -z "${NEUTRON_URL:-}" ] || [ -z "${KEYSTONE_URL:-}" ] || [ "${NEUTRON_AUTH:-}" != keystone ]; then
    own_stack=1
fi
# One run at a time per vhost: the test's queues live there (and, for a stack
# of our own, the state dirs and databases go with the vhost's knobs).
cache=${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}
mkdir -p "$cache"
if [ -n "$own_stack" ]; then
    lock_vhost=${OSLO_NAUTOBOT_NEUTRON_VHOST:-${OSLO_NAUTOBOT_KEYSTONE_VHOST:-oslo-nautobot-neutron}}
else
    lock_vhost=$NEUTRON_VHOST
fi
exec 8>"$cache/.neutron-run-$lock_vhost.lock"
flock 8

work=$(mktemp -d "${TMPDIR:-/tmp}/oslo-nautobot-neutron.XXXXXX")
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    [ -z "$own_stack" ] || "$here/../openstack/down.sh" || true
    rm -rf "$work"
}
trap cleanup EXIT
if [ -n "$own_stack" ]; then
    note "starting Keystone and Neutron (tests/openstack/up.sh)"
    env_lines=$("$here/../openstack/up.sh") || fail "tests/openstack/up.sh could not start Keystone and Neutron"
    eval "$env_lines"
else
    note "using the running Keystone and Neutron of the environment"
fi
note "Neutron at $NEUTRON_URL, Keystone at $KEYSTONE_URL"

# --- the test -------------------------------------------------------------------------

note "running neutron_e2e.py"
export PYTHONDONTWRITEBYTECODE=1 PYTHONWARNINGS=ignore
rc=0
"$NEUTRON_VENV/bin/python" "$here/neutron_e2e.py" --repo "$repo" --bin "$bin" \
    --consume-bin "$consume_bin" --jq "$(command -v jq)" --neutron "$NEUTRON_URL" --keystone "$KEYSTONE_URL" \
    --amqp "$NEUTRON_AMQP_URL" --work "$work" --paths "$paths" | tee "$work/out" ||
    rc=${PIPESTATUS[0]}
if ! tail -n 1 "$work/out" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
    fail "neutron_e2e.py stopped before its summary (exit $rc)"
fi
note "done in $((SECONDS - started)) s"
exit "$rc"
