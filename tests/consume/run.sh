#!/usr/bin/env bash
# `oslo-nautobot consume` against the real RabbitMQ and a live Nautobot:
# notifications published with the real oslo.messaging are all applied; two
# replicas on one single-active-consumer quorum queue, one standing by, take
# over from each other on kill -9 and SIGTERM with nothing lost and every
# network's order kept; one sick network holds back only its own events;
# --give-up-after dead-letters with confirms, or keeps the message; hostile
# event types leave /metrics parseable. See consume.py for the scenarios and
# checks; FIGURE lines carry the measured takeover and hold times.
#
# Needs NAUTOBOT_URL and NAUTOBOT_TOKEN of a running Nautobot (tests/run.sh
# starts one; by hand: eval "$(tests/nautobot/up.sh)"). Starts RabbitMQ on
# 127.0.0.1:5672 if it is down (installs it if missing) and works in a vhost
# of its own, $OSLO_NAUTOBOT_CONSUME_VHOST (default oslo-nautobot-consume),
# made anew on every run and removed at the end.
#
# One scenario restarts the RabbitMQ application (stop_app/start_app, a few
# seconds): every client of the broker, in every vhost, sees its connection
# drop. It runs only with OSLO_NAUTOBOT_CONSUME_BROKER_RESTART=1, and then
# only while no client of another vhost is connected (=force: even then; 0:
# never). Unset, it is 1 when this script is run by tests/run.sh (whose
# Neutron and Keystone, in $NEUTRON_VHOST and $KEYSTONE_AMQP_VHOST, do not
# count as another's), 0 otherwise: an engineer running this suite by hand on
# a shared broker restarts nobody's RabbitMQ.
#
# OSLO_NAUTOBOT_CONSUME_AMQP_PORT (default 5672): a RabbitMQ node of your own
# on another loopback port (rabbitmqctl then needs RABBITMQ_NODENAME).
#
# oslo.messaging and prometheus_client come from a venv of this suite's own
# (the pinned oslo.messaging list tests/e2e/run.sh uses, and the Prometheus
# text parser), made if missing:
#   ${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}/consume-venv
# The binary: $OSLO_NAUTOBOT_CONSUME_BIN, else this work tree built with
#   CARGO_TARGET_DIR=target/consume cargo build --locked --features consume
#
# Last line printed: "N passed, M failed"; exit status 1 on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"
venv=$oslo_cache/consume-venv
vhost=${OSLO_NAUTOBOT_CONSUME_VHOST:-oslo-nautobot-consume}
amqp_port=${OSLO_NAUTOBOT_CONSUME_AMQP_PORT:-5672}
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

# The same pinned oslo.messaging list as tests/e2e/run.sh, and a real
# Prometheus text parser for /metrics.
venv_with "$venv" "${oslo_messaging_requirements[@]}" prometheus-client==0.26.0

bin=${OSLO_NAUTOBOT_CONSUME_BIN:-}
if [ -z "$bin" ]; then
    note "cargo build --features consume"
    (cd "$repo" && CARGO_TARGET_DIR=target/consume cargo build --locked --quiet --features consume >&2) ||
        fail "cargo build --locked --features consume"
    bin=$repo/target/consume/debug/oslo-nautobot
fi
[ -x "$bin" ] || fail "no binary at $bin"
note "binary: $bin"

# --- the broker restart scenario: only where this run owns the broker -----------

# tests/run.sh, which owns the machine's broker while it runs, sets it to 1;
# by hand it is off unless asked for.
OSLO_NAUTOBOT_CONSUME_BROKER_RESTART=${OSLO_NAUTOBOT_CONSUME_BROKER_RESTART:-0}
export OSLO_NAUTOBOT_CONSUME_BROKER_RESTART
note "RabbitMQ restart scenario: OSLO_NAUTOBOT_CONSUME_BROKER_RESTART=$OSLO_NAUTOBOT_CONSUME_BROKER_RESTART"

# --- the test ---------------------------------------------------------------------

note "running consume.py"
export PYTHONDONTWRITEBYTECODE=1 PYTHONWARNINGS=ignore
rc=0
"$venv/bin/python" "$here/consume.py" --bin "$bin" --vhost "$vhost" --amqp-port "$amqp_port" --work "$work" |
    tee "$work/out" ||
    rc=${PIPESTATUS[0]}
# A crash before the summary still ends with one.
if ! tail -n 1 "$work/out" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
    fail "consume.py stopped before its summary (exit $rc)"
fi
note "done"
exit "$rc"
