#!/usr/bin/env bash
# End to end: Neutron-like notifications published with the real oslo.messaging
# on the local RabbitMQ, consumed from a queue declared as sensors/eventsource.yaml
# declares it, put through the Sensor's jq transform, filters and trigger
# parameters (sensors/sensor.yaml), handed to the real binary as the
# WorkflowTemplate does (workflows/), and checked in a real Nautobot.
# See e2e.py for the steps and checks.
#
# Needs NAUTOBOT_URL and NAUTOBOT_TOKEN of a running Nautobot (tests/run.sh
# starts one; by hand: eval "$(tests/nautobot/up.sh)"). Starts RabbitMQ on
# 127.0.0.1:5672 if it is down (installs it if missing) and works in a vhost
# of its own, oslo-nautobot-e2e, made anew on every run and removed at the end.
#
# oslo.messaging goes to a venv outside the repository:
#   ${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}/e2e-venv
# The binary: $OSLO_NAUTOBOT_E2E_BIN, else the debug build of this work tree.
#
# Last line printed: "N passed, M failed"; exit status 1 on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"
venv=$oslo_messaging_venv
vhost=oslo-nautobot-e2e
started=$SECONDS

fail() {
    echo "FAIL: $*"
    echo "0 passed, 1 failed"
    exit 1
}
note() { printf '[e2e %3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }

if [ -z "${NAUTOBOT_URL:-}" ] || [ -z "${NAUTOBOT_TOKEN:-}" ]; then
    fail "NAUTOBOT_URL and NAUTOBOT_TOKEN must be set: run tests/run.sh, or eval \"\$(tests/nautobot/up.sh)\" first"
fi

# Debian's jq runs the Sensor's transform.
command -v jq >/dev/null || apt_install jq

# --- RabbitMQ -----------------------------------------------------------------

ensure_rabbitmq fail

# One run at a time: the vhost is shared.
lock_cache e2e
fresh_vhost "$vhost" fail

work=$(mktemp -d "${TMPDIR:-/tmp}/oslo-nautobot-e2e.XXXXXX")
trap 'rm -rf "$work"; drop_vhost "$vhost"' EXIT

# --- tools ----------------------------------------------------------------------

venv_with "$venv" "${oslo_messaging_requirements[@]}"

# The binary under test: $OSLO_NAUTOBOT_E2E_BIN, else the debug build of this
# work tree, brought up to date (a no-op when tests/run.sh has just built it).
bin=${OSLO_NAUTOBOT_E2E_BIN:-}
if [ -z "$bin" ]; then
    (cd "$repo" && cargo build --locked --quiet >&2) || fail "cargo build --locked"
    bin=$repo/target/debug/oslo-nautobot
fi
[ -x "$bin" ] || fail "no binary at $bin"
note "binary: $bin"

# --- the test ---------------------------------------------------------------------

note "running e2e.py"
export PYTHONDONTWRITEBYTECODE=1 PYTHONWARNINGS=ignore
rc=0
"$venv/bin/python" "$here/e2e.py" --repo "$repo" --bin "$bin" --jq "$(command -v jq)" \
    --amqp "amqp://guest:guest@127.0.0.1:5672/$vhost" --work "$work" | tee "$work/out" ||
    rc=${PIPESTATUS[0]}
# A crash before the summary still ends with one.
if ! tail -n 1 "$work/out" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
    fail "e2e.py stopped before its summary (exit $rc)"
fi
exit "$rc"
