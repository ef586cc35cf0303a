#!/usr/bin/env bash
# Stop the Neutron API server started by tests/neutron/up.sh and remove its
# RabbitMQ vhost (with every exchange, queue and message in it). MariaDB and
# RabbitMQ themselves stay up; the database is left for inspection (up.sh
# recreates it). Safe to run when nothing is running.
set -euo pipefail

STATE=${OSLO_NAUTOBOT_NEUTRON_STATE:-/tmp/oslo-nautobot-neutron-api}
VHOST=${OSLO_NAUTOBOT_NEUTRON_VHOST:-oslo-nautobot-neutron}
PIDFILE=$STATE/server.pid

# Live (non-zombie) members of process group $1.
# shellcheck disable=SC2009
group_alive() { ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'; }

if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    # Only a group still led by our uWSGI: a stale pidfile must not make us
    # signal whatever later got the same number.
    if [[ "$pid" =~ ^[0-9]+$ ]] && ps -o args= -p "$pid" 2>/dev/null | grep -q "uwsgi --ini $STATE/" &&
        group_alive "$pid"; then
        echo "[neutron down] stopping the Neutron API (uWSGI, process group $pid)" >&2
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            group_alive "$pid" || break
            sleep 0.1
        done
        if group_alive "$pid"; then
            echo "[neutron down] still running after 10s, sending SIGKILL" >&2
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$PIDFILE"
fi
rm -f "$STATE/env"

if command -v rabbitmqctl >/dev/null && (exec 4<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    rabbitmqctl -q delete_vhost "$VHOST" >/dev/null 2>&1 || true
fi
