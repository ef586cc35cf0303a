#!/usr/bin/env bash
# `oslo-nautobot consume` against the real RabbitMQ and a live Nautobot:
# notifications published with the real oslo.messaging are all applied; a
# kill -9 mid-stream, a RabbitMQ restart, a stopped Nautobot and a SIGTERM
# lose nothing; one network's events keep their order under concurrency.
# See consume.py for the scenarios and checks.
#
# Needs NAUTOBOT_URL and NAUTOBOT_TOKEN of a running Nautobot (tests/run.sh
# starts one; by hand: eval "$(tests/nautobot/up.sh)"). Starts RabbitMQ on
# 127.0.0.1:5672 if it is down (installs it if missing) and works in a vhost
# of its own, oslo-nautobot-consume, made anew on every run and removed at the
# end. One scenario restarts the RabbitMQ application (stop_app/start_app, a
# few seconds): other vhosts' clients on this broker see their connections
# drop once.
#
# oslo.messaging comes from the venv tests/e2e/run.sh uses (same pinned
# requirements, made here if missing):
#   ${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}/e2e-venv
# The binary: $OSLO_NAUTOBOT_CONSUME_BIN, else this work tree built with
#   CARGO_TARGET_DIR=target/consume cargo build --locked --features consume
#
# Last line printed: "N passed, M failed"; exit status 1 on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"
venv=$oslo_messaging_venv
vhost=oslo-nautobot-consume
started=$SECONDS

fail() {
    echo "FAIL: $*"
    echo "0 passed, 1 failed"
    exit 1
}
note() { printf '[consume %3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }

if [ -z "${NAUTOBOT_URL:-}" ] || [ -z "${NAUTOBOT_TOKEN:-}" ]; then
    fail "NAUTOBOT_URL and NAUTOBOT_TOKEN must be set: run tests/run.sh, or eval \"\$(tests/nautobot/up.sh)\" first"
fi

# --- RabbitMQ -----------------------------------------------------------------

ensure_rabbitmq fail

# One run at a time: the vhost is shared.
lock_cache consume
fresh_vhost "$vhost" fail

work=$(mktemp -d "${TMPDIR:-/tmp}/oslo-nautobot-consume.XXXXXX")
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    # If the run stopped RabbitMQ's application and died before starting it
    # again, start it: other users share this broker.
    if ! rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1; then
        rabbitmqctl -q start_app >/dev/null 2>&1 || true
    fi
    drop_vhost "$vhost"
    rm -rf "$work"
}
trap cleanup EXIT

# --- tools ----------------------------------------------------------------------

# The same pinned list as tests/e2e/run.sh, so both share one venv.
venv_with "$venv" "${oslo_messaging_requirements[@]}"

bin=${OSLO_NAUTOBOT_CONSUME_BIN:-}
if [ -z "$bin" ]; then
    note "cargo build --features consume"
    (cd "$repo" && CARGO_TARGET_DIR=target/consume cargo build --locked --quiet --features consume >&2) ||
        fail "cargo build --locked --features consume"
    bin=$repo/target/consume/debug/oslo-nautobot
fi
[ -x "$bin" ] || fail "no binary at $bin"
note "binary: $bin"

# --- the test ---------------------------------------------------------------------

note "running consume.py"
export PYTHONDONTWRITEBYTECODE=1 PYTHONWARNINGS=ignore
rc=0
"$venv/bin/python" "$here/consume.py" --bin "$bin" --vhost "$vhost" --work "$work" | tee "$work/out" ||
    rc=${PIPESTATUS[0]}
# A crash before the summary still ends with one.
if ! tail -n 1 "$work/out" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
    fail "consume.py stopped before its summary (exit $rc)"
fi
note "done"
exit "$rc"
