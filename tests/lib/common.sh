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

# suite_binaries PREFIX REPO FAIL: sets `bin` and `consume_bin`, the plain
# build and the one with the consume feature: $PREFIX_BIN and
# $PREFIX_CONSUME_BIN when set, else cargo builds of the work tree REPO (a
# no-op when they are up to date).
suite_binaries() {
    local prefix=$1 repo=$2 on_fail=$3 given
    given=${prefix}_BIN
    bin=${!given:-}
    if [ -z "$bin" ]; then
        note "cargo build"
        (cd "$repo" && cargo build --locked --quiet >&2) || "$on_fail" "cargo build --locked"
        bin=$repo/target/debug/oslo-nautobot
    fi
    [ -x "$bin" ] || "$on_fail" "no binary at $bin"
    given=${prefix}_CONSUME_BIN
    consume_bin=${!given:-}
    if [ -z "$consume_bin" ]; then
        note "cargo build --features consume"
        (cd "$repo" && CARGO_TARGET_DIR=target/consume cargo build --locked --quiet --features consume >&2) ||
            "$on_fail" "cargo build --locked --features consume"
        consume_bin=$repo/target/consume/debug/oslo-nautobot
    fi
    [ -x "$consume_bin" ] || "$on_fail" "no binary at $consume_bin"
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

# --- pinned venvs whose freeze keys a cache --------------------------------------

# frozen_venv VENV REQUIREMENT...: VENV made (again) unless it was made from
# exactly these requirements. Its stamp, VENV/.complete, holds the list on
# its first line and `pip freeze` after it, so `sha256sum <VENV/.complete`
# can key what is cached from the venv (a migrated database dump, say).
frozen_venv() {
    local venv=$1
    shift
    local requirements="$*"
    if [ ! -f "$venv/.complete" ] || [ "$(head -n 1 "$venv/.complete")" != "$requirements" ]; then
        note "creating $venv ($requirements)"
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "$@" >&2
        { echo "$requirements"; "$venv/bin/pip" freeze --disable-pip-version-check; } >"$venv/.complete.tmp"
        mv "$venv/.complete.tmp" "$venv/.complete"
    fi
}

# ensure_build_tools: gcc and the Python headers, for what pip compiles
# (uWSGI).
ensure_build_tools() {
    if ! command -v gcc >/dev/null || ! python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
        apt_install gcc python3-dev
    fi
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- MariaDB on the local socket ----------------------------------------------------

mariadb_up() { mariadb-admin --protocol=socket -u root ping >/dev/null 2>&1; }

# ensure_mariadb FAIL: installs MariaDB if it is missing, starts it if it is
# down (listening on 127.0.0.1 only), and waits until it answers.
ensure_mariadb() {
    local fail=$1
    if [ ! -x /usr/sbin/mariadbd ] || ! command -v mariadb >/dev/null; then
        apt_install mariadb-server
    fi
    if ! mariadb_up; then
        note "starting MariaDB"
        install -d -o mysql -g mysql /run/mysqld
        [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- \
            --user=mysql --bind-address=127.0.0.1
        for _ in $(seq 1 60); do mariadb_up && break; sleep 0.5; done
        mariadb_up || "$fail" "MariaDB did not come up"
    fi
}

# mariadb_fresh_db NAME PASSWORD: database NAME (utf8mb4) made anew, and a
# user NAME with PASSWORD allowed everything in it, from 127.0.0.1 and the
# socket.
mariadb_fresh_db() {
    local name=$1 password=$2
    mariadb --protocol=socket -u root -N -B <<SQL
DROP DATABASE IF EXISTS \`$name\`;
CREATE DATABASE \`$name\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE OR REPLACE USER '$name'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE OR REPLACE USER '$name'@'localhost' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON \`$name\`.* TO '$name'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`$name\`.* TO '$name'@'localhost';
SQL
}

# --- servers in a process group of their own ------------------------------------------

# stop_group PIDFILE PATTERN NAME: stops the process group led by the pid in
# PIDFILE, only if that process's command line still contains PATTERN (a
# stale pidfile must not make us signal whatever later got the same number):
# SIGTERM, then SIGKILL after 10 s. Removes PIDFILE. NAME is for the messages.
stop_group() {
    local pidfile=$1 pattern=$2 name=$3 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [[ "$pid" =~ ^[0-9]+$ ]] && ps -o args= -p "$pid" 2>/dev/null | grep -qF -- "$pattern" &&
        group_alive "$pid"; then
        note "stopping $name (process group $pid)"
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            group_alive "$pid" || break
            sleep 0.1
        done
        if group_alive "$pid"; then
            note "$name still running after 10 s, sending SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

# Live (non-zombie) members of process group $1: an exited server whose
# parent is gone can sit as a zombie until PID 1 reaps it.
# shellcheck disable=SC2009
group_alive() { ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'; }
