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
cache=${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}
venv=$cache/e2e-venv
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

apt_updated=
apt_install() {
    if [ -z "$apt_updated" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        apt_updated=1
    fi
    note "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# --- RabbitMQ -----------------------------------------------------------------

rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! command -v rabbitmq-server >/dev/null || ! command -v rabbitmqctl >/dev/null; then
    apt_install rabbitmq-server
fi
if ! rabbit_up; then
    note "starting RabbitMQ"
    rabbitmq-server -detached >&2 || true
    for _ in $(seq 1 120); do rabbit_up && break; sleep 0.5; done
    rabbit_up || fail "RabbitMQ did not come up on 127.0.0.1:5672"
fi
rabbitmqctl -q await_startup --timeout 60 >/dev/null 2>&1 ||
    fail "rabbitmqctl await_startup: RabbitMQ is not ready"

# One run at a time: the vhost is shared.
mkdir -p "$cache"
exec 9>"$cache/.consume.lock"
flock 9

drop_vhost() { rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true; }
# Anything left by an earlier run (queues, exchanges, messages) goes with it.
drop_vhost
rabbitmqctl -q add_vhost "$vhost" >/dev/null || fail "rabbitmqctl add_vhost $vhost"
rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null ||
    fail "rabbitmqctl set_permissions -p $vhost guest"

work=$(mktemp -d "${TMPDIR:-/tmp}/oslo-nautobot-consume.XXXXXX")
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    # If the run stopped RabbitMQ's application and died before starting it
    # again, start it: other users share this broker.
    if ! rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1; then
        rabbitmqctl -q start_app >/dev/null 2>&1 || true
    fi
    drop_vhost
    rm -rf "$work"
}
trap cleanup EXIT

# --- tools ----------------------------------------------------------------------

# The same pinned list as tests/e2e/run.sh, so both share one venv.
requirements="oslo.messaging==18.3.1 oslo.context==6.5.0 pyyaml==6.0.3"
stamp=$venv/.oslo-nautobot-requirements
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$requirements" ]; then
    note "installing $requirements into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086 # word splitting of the list is intended
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $requirements >&2
    printf '%s' "$requirements" > "$stamp"
fi

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
