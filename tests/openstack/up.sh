#!/usr/bin/env bash
# Bring up the OpenStack the tests talk to: a real Keystone
# (tests/keystone/up.sh), then a real Neutron that authenticates through it
# (tests/neutron/up.sh), both publishing their notifications in one RabbitMQ
# vhost (exchanges "keystone" and "neutron"), Neutron's URL in Keystone's
# catalog from the start.
#
#   eval "$(tests/openstack/up.sh)"  # exports KEYSTONE_*, OS_*, NEUTRON_*
#   tests/openstack/down.sh
#
# The knobs are those of the two scripts (OSLO_NAUTOBOT_KEYSTONE_* and
# OSLO_NAUTOBOT_NEUTRON_*: state directories, databases, the vhost, ports).
# For a second bring-up beside another on one machine, give it its own, e.g.
#   OSLO_NAUTOBOT_KEYSTONE_STATE=/tmp/mine-ks OSLO_NAUTOBOT_KEYSTONE_DB=mine_ks \
#   OSLO_NAUTOBOT_NEUTRON_STATE=/tmp/mine-nt OSLO_NAUTOBOT_NEUTRON_DB=mine_nt \
#   OSLO_NAUTOBOT_NEUTRON_VHOST=mine tests/openstack/up.sh
#
# stdout carries only `export NAME=value` lines; progress goes to stderr. On
# failure nothing is left running.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
t0=$SECONDS
log() { printf '[openstack up %3ds] %s\n' "$((SECONDS - t0))" "$*" >&2; }
die() { printf '[openstack up] ERROR: %s\n' "$*" >&2; exit 1; }
exec 3>&1 1>&2
note() { log "$*"; }
# shellcheck source=tests/lib/common.sh
. "$HERE/../lib/common.sh"

# Both ports now: Keystone's catalog names Neutron's before Neutron starts.
keystone_port=${OSLO_NAUTOBOT_KEYSTONE_PORT:-$(free_port)}
neutron_port=${OSLO_NAUTOBOT_NEUTRON_PORT:-}
while [ -z "$neutron_port" ] || [ "$neutron_port" = "$keystone_port" ]; do
    neutron_port=$(free_port)
done

stop_on_failure() {
    local rc=$?
    [ "$rc" = 0 ] || "$HERE/down.sh" || true
}
trap stop_on_failure EXIT

keystone_env=$(OSLO_NAUTOBOT_KEYSTONE_PORT=$keystone_port \
    OSLO_NAUTOBOT_KEYSTONE_NETWORK_URL=http://127.0.0.1:$neutron_port "$HERE/../keystone/up.sh") ||
    die "tests/keystone/up.sh could not start Keystone"
eval "$keystone_env"
neutron_env=$(OSLO_NAUTOBOT_NEUTRON_PORT=$neutron_port "$HERE/../neutron/up.sh") ||
    die "tests/neutron/up.sh could not start Neutron"
eval "$neutron_env"
log "Keystone at $KEYSTONE_URL, Neutron at $NEUTRON_URL (RabbitMQ vhost $NEUTRON_VHOST)"
printf '%s\n%s\n' "$keystone_env" "$neutron_env" >&3
