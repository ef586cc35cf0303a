#!/usr/bin/env bash
# Stop the Keystone API server started by tests/keystone/up.sh and remove its
# RabbitMQ vhost (with every exchange, queue and message in it; by default
# that is Neutron's vhost too: stop Neutron first, tests/openstack/down.sh
# does). MariaDB and RabbitMQ themselves stay up; the database is left for
# inspection (up.sh recreates it). Safe to run when nothing is running.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${OSLO_NAUTOBOT_KEYSTONE_STATE:-/tmp/oslo-nautobot-keystone}

note() { printf '[keystone down] %s\n' "$*" >&2; }
# shellcheck source=tests/lib/common.sh
. "$HERE/../lib/common.sh"

stop_group "$STATE/server.pid" "uwsgi --ini $STATE/" "the Keystone API (uWSGI)"
rm -f "$STATE/env"
# The vhost this state dir's Keystone published in (up.sh made it anew).
if [ -f "$STATE/vhost" ]; then
    vhost=$(cat "$STATE/vhost")
    if [ -n "$vhost" ] && command -v rabbitmqctl >/dev/null && rabbit_up; then
        drop_vhost "$vhost"
    fi
    rm -f "$STATE/vhost"
fi
