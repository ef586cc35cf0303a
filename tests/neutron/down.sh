#!/usr/bin/env bash
# Stop the Neutron API server started by tests/neutron/up.sh and, if up.sh
# made the RabbitMQ vhost (one of Neutron's own, not Keystone's), remove it
# with every exchange, queue and message in it. MariaDB and RabbitMQ
# themselves stay up; the database is left for inspection (up.sh recreates
# it). Safe to run when nothing is running.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${OSLO_NAUTOBOT_NEUTRON_STATE:-/tmp/oslo-nautobot-neutron-api}

note() { printf '[neutron down] %s\n' "$*" >&2; }
# shellcheck source=tests/lib/common.sh
. "$HERE/../lib/common.sh"

stop_group "$STATE/server.pid" "uwsgi --ini $STATE/" "the Neutron API (uWSGI)"
rm -f "$STATE/env"
if [ -f "$STATE/vhost" ]; then
    vhost=$(cat "$STATE/vhost")
    if [ -n "$vhost" ] && command -v rabbitmqctl >/dev/null && rabbit_up; then
        drop_vhost "$vhost"
    fi
    rm -f "$STATE/vhost"
fi
