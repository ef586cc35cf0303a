# shellcheck shell=bash
# Shared by the test scripts; sourced, never run:
#
#   . "$repo/tests/lib/common.sh"
#
# The cache directory, venvs kept up to date with a pinned requirement list,
# the one pinned oslo.messaging list (tests/e2e, tests/consume and tests/bench
# share its venv), apt-get, and RabbitMQ with a vhost of the caller's own.
#
# The sourcing script defines `note MESSAGE` (progress, on stderr); the
# functions here report through it. Those that can fail take the name of a
# function to call with the reason (the caller's `fail`, say), which is
# expected to exit.

# Venvs, dumps and locks live here, outside the repository.
oslo_cache=${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}

# oslo.messaging brings kombu and py-amqp; oslo.context makes the request
# context; PyYAML reads the manifests. One venv from this list serves the
# suites that publish with oslo.messaging:
#   venv_with "$oslo_messaging_venv" "${oslo_messaging_requirements[@]}"
# shellcheck disable=SC2034 # used by the sourcing scripts
oslo_messaging_requirements=(oslo.messaging==18.3.1 oslo.context==6.5.0 pyyaml==6.0.3)
# shellcheck disable=SC2034 # used by the sourcing scripts
oslo_messaging_venv=$oslo_cache/e2e-venv

# venv_with VENV REQUIREMENT...
# Makes VENV (again) unless it was made from exactly these requirements: the
# list is kept in a stamp file beside it.
venv_with() {
    local venv=$1
    shift
    local requirements="$*"
    local stamp=$venv/.oslo-nautobot-requirements
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$requirements" ]; then
        note "installing $requirements into $venv"
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2
        printf '%s' "$requirements" >"$stamp"
    fi
}

# apt_install PACKAGE...: apt-get update once per script, then install.
apt_updated=
apt_install() {
    if [ -z "$apt_updated" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        apt_updated=1
    fi
    note "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# --- RabbitMQ on 127.0.0.1:5672 ------------------------------------------------

rabbit_up() { (exec 4<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

# ensure_rabbitmq FAIL: installs RabbitMQ if it is missing, starts it if it
# is down, and waits until it is ready.
ensure_rabbitmq() {
    local fail=$1
    if ! command -v rabbitmq-server >/dev/null || ! command -v rabbitmqctl >/dev/null; then
        apt_install rabbitmq-server
    fi
    if ! rabbit_up; then
        note "starting RabbitMQ"
        rabbitmq-server -detached >&2 || true
        for _ in $(seq 1 120); do rabbit_up && break; sleep 0.5; done
        rabbit_up || "$fail" "RabbitMQ did not come up on 127.0.0.1:5672"
    fi
    rabbitmqctl -q await_startup --timeout 60 >/dev/null 2>&1 ||
        "$fail" "rabbitmqctl await_startup: RabbitMQ is not ready"
}

# lock_cache NAME: one run at a time of whatever holds $oslo_cache/.NAME.lock
# (on fd 9, until the script exits).
lock_cache() {
    mkdir -p "$oslo_cache"
    exec 9>"$oslo_cache/.$1.lock"
    flock 9
}

# drop_vhost VHOST: the vhost goes, with all its queues, exchanges and messages.
drop_vhost() { rabbitmqctl -q delete_vhost "$1" >/dev/null 2>&1 || true; }

# fresh_vhost VHOST FAIL: VHOST made anew (anything an earlier run left there
# goes with the old one), guest allowed everything in it.
fresh_vhost() {
    local vhost=$1 fail=$2
    drop_vhost "$vhost"
    rabbitmqctl -q add_vhost "$vhost" >/dev/null || "$fail" "rabbitmqctl add_vhost $vhost"
    rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null ||
        "$fail" "rabbitmqctl set_permissions -p $vhost guest"
}
