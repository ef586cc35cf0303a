#!/usr/bin/env bash
# `oslo-nautobot reconcile`, and events that read Neutron's current state,
# against the real Keystone, Neutron and Nautobot: Neutron changed through
# its API with real tokens, the binary run (reconcile, one-shot events with
# OpenStack credentials, the consume service), Nautobot compared with
# Neutron object by object. See reconcile.py for the scenarios and checks.
#
# Needs NAUTOBOT_URL and NAUTOBOT_TOKEN of a running Nautobot (tests/run.sh
# starts one; by hand: eval "$(tests/nautobot/up.sh)"). Uses the Keystone and
# Neutron of the environment when NEUTRON_URL, KEYSTONE_URL and
# NEUTRON_AUTH=keystone are set (tests/run.sh starts them with
# tests/openstack/up.sh); otherwise starts both itself and stops them at the
# end (the knobs of tests/openstack/up.sh apply). Works in a RabbitMQ vhost of
# its own, oslo-nautobot-reconcile, made anew and removed at the end.
#
# Binaries: $OSLO_NAUTOBOT_RECONCILE_BIN, else `cargo build --locked` of this
# work tree; for consume $OSLO_NAUTOBOT_RECONCILE_CONSUME_BIN, else
# `CARGO_TARGET_DIR=target/consume cargo build --locked --features consume`.
#
# One scenario waits for Neutron's keystonemiddleware to forget a revoked
# token (token_cache_time: 30 s as tests/neutron/up.sh sets it, 300 s by default): it starts
# first and ends last, so the suite takes at least that long.
# OSLO_NAUTOBOT_RECONCILE_ONLY=a,n runs only those scenarios (after the
# setup; most build on what (a) made).
#
# Last line printed: "N passed, M failed"; exit status 1 on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))
started=$SECONDS
vhost=oslo-nautobot-reconcile

fail() {
    echo "FAIL: $*"
    echo "0 passed, 1 failed"
    exit 1
}
note() { printf '[reconcile %3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"

if [ -z "${NAUTOBOT_URL:-}" ] || [ -z "${NAUTOBOT_TOKEN:-}" ]; then
    fail "NAUTOBOT_URL and NAUTOBOT_TOKEN must be set: run tests/run.sh, or eval \"\$(tests/nautobot/up.sh)\" first"
fi

# --- the binaries (a no-op when they are up to date) ----------------------------

suite_binaries OSLO_NAUTOBOT_RECONCILE "$repo" fail

# --- Keystone and Neutron, RabbitMQ ---------------------------------------------------

own_stack=
if [ -z "${NEUTRON_URL:-}" ] || [ -z "${KEYSTONE_URL:-}" ] || [ "${NEUTRON_AUTH:-}" != keystone ]; then
    own_stack=1
fi
# One run at a time: the vhost and the queue are this suite's.
lock_cache reconcile
work=$(mktemp -d "${TMPDIR:-/tmp}/oslo-nautobot-reconcile.XXXXXX")
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    drop_vhost "$vhost"
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
ensure_rabbitmq fail
fresh_vhost "$vhost" fail

# Neutron's keystonemiddleware token cache, as its configuration sets it.
cache_time=300
conf=${NEUTRON_STATE:-}/etc/neutron.conf
if [ -n "${NEUTRON_STATE:-}" ] && [ -r "$conf" ]; then
    set_time=$(sed -n 's/^[[:space:]]*token_cache_time[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "$conf" | tail -n 1)
    [ -z "$set_time" ] || cache_time=$set_time
fi

# The Keystone venv has py-amqp (oslo.messaging's); the suite imports only the
# standard library and tests/lib otherwise.
python=python3
for venv in "${KEYSTONE_VENV:-}" "${NEUTRON_VENV:-}"; do
    if [ -n "$venv" ] && "$venv/bin/python" -c 'import amqp' 2>/dev/null; then
        python=$venv/bin/python
        break
    fi
done

# --- the test -------------------------------------------------------------------------

note "running reconcile.py (binary $bin; consume $consume_bin)"
export PYTHONDONTWRITEBYTECODE=1 PYTHONWARNINGS=ignore
rc=0
"$python" "$here/reconcile.py" --bin "$bin" --consume-bin "$consume_bin" --vhost "$vhost" --work "$work" \
    --token-cache-time "$cache_time" | tee "$work/out" || rc=${PIPESTATUS[0]}
if ! tail -n 1 "$work/out" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
    fail "reconcile.py stopped before its summary (exit $rc)"
fi
note "done in $((SECONDS - started)) s"
exit "$rc"
