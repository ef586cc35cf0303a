#!/usr/bin/env bash
# Bring up a real OpenStack Neutron API server on loopback for the
# "real Neutron in the loop" end-to-end suite (tests/neutron/run.sh),
# authenticating through the real Keystone of tests/keystone/up.sh.
#
#   eval "$(tests/keystone/up.sh)"  # first: KEYSTONE_URL, OS_*, the service user
#   eval "$(tests/neutron/up.sh)"   # exports NEUTRON_URL, NEUTRON_AMQP_URL, ...
#   tests/neutron/down.sh
#
# tests/openstack/up.sh and down.sh do both in one go.
#
# What it does (a fresh machine is fine; everything missing is installed):
#   - MariaDB: installed with apt-get if absent, started if down; a database
#     of its own, recreated on every run (from a cached dump of the migrated
#     schema when there is one, else with neutron-db-manage, then dumped);
#   - RabbitMQ: installed if absent, started if down. Neutron publishes its
#     notifications with amqp_durable_queues = true, so the "neutron"
#     exchange is durable, as sensors/eventsource.yaml declares it. The vhost
#     is Keystone's (KEYSTONE_AMQP_VHOST), kept as tests/keystone/up.sh made
#     it, unless OSLO_NAUTOBOT_NEUTRON_VHOST names another: then that one is
#     made anew, with guest allowed everything in it, and down.sh removes it;
#   - a virtualenv with the pinned neutron, PyMySQL and uWSGI, cached outside
#     the repository:
#       ${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}/neutron-venv-<version>
#   - the API (the WSGI app neutron.wsgi.api:application) under uWSGI on a
#     free loopback port (or OSLO_NAUTOBOT_NEUTRON_PORT), in a process group
#     of its own (down.sh stops it); its URL goes into Keystone's catalog as
#     the public, internal and admin endpoint of the "network" service.
#
# Authentication: auth_strategy = keystone, Neutron's stock paste pipeline,
# keystonemiddleware's authtoken with the service user "neutron" (from
# KEYSTONE_URL, KEYSTONE_NEUTRON_USER, KEYSTONE_NEUTRON_PASSWORD,
# KEYSTONE_SERVICE_PROJECT, OS_REGION_NAME; the catalog is written with the
# admin's OS_* credentials). Clients send X-Auth-Token. If Keystone is
# brought up again, bring Neutron up again too: it keeps the old Keystone's
# URL and service token, and refuses every new token.
#
# Without Keystone, OSLO_NAUTOBOT_NEUTRON_AUTH=headers makes the API trust
# the caller's X-User-Id / X-Project-Id / X-Roles headers instead (the stock
# keystone pipeline without authtoken): test-only. Never expose this server.
#
# Knobs: OSLO_NAUTOBOT_NEUTRON_VERSION (29.0.0), OSLO_NAUTOBOT_NEUTRON_STATE
# (/tmp/oslo-nautobot-neutron-api), OSLO_NAUTOBOT_NEUTRON_DB
# (oslo_nautobot_neutron), OSLO_NAUTOBOT_NEUTRON_VHOST, OSLO_NAUTOBOT_NEUTRON_PORT,
# OSLO_NAUTOBOT_NEUTRON_START_TIMEOUT (90 s), OSLO_NAUTOBOT_NEUTRON_AUTH.
#
# stdout carries only `export NAME=value` lines; progress goes to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

VERSION=${OSLO_NAUTOBOT_NEUTRON_VERSION:-29.0.0}
CACHE=${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}
STATE=${OSLO_NAUTOBOT_NEUTRON_STATE:-/tmp/oslo-nautobot-neutron-api}
DB_NAME=${OSLO_NAUTOBOT_NEUTRON_DB:-oslo_nautobot_neutron}
VHOST=${OSLO_NAUTOBOT_NEUTRON_VHOST:-${KEYSTONE_AMQP_VHOST:-oslo-nautobot-neutron}}
PORT=${OSLO_NAUTOBOT_NEUTRON_PORT:-}
START_TIMEOUT=${OSLO_NAUTOBOT_NEUTRON_START_TIMEOUT:-90}
if [ -n "${KEYSTONE_URL:-}" ]; then
    AUTH=${OSLO_NAUTOBOT_NEUTRON_AUTH:-keystone}
else
    AUTH=${OSLO_NAUTOBOT_NEUTRON_AUTH:-}
fi
VENV=$CACHE/neutron-venv-$VERSION
# Everything pinned: the same venv on every machine.
REQUIREMENTS="neutron==$VERSION PyMySQL==1.2.4 uWSGI==2.0.31"

t0=$SECONDS
log() { printf '[neutron up %3ds] %s\n' "$((SECONDS - t0))" "$*" >&2; }
die() { printf '[neutron up] ERROR: %s\n' "$*" >&2; exit 1; }

# Everything but the final export lines goes to stderr.
exec 3>&1 1>&2

# apt_install and the rest, shared with the other test scripts; they report
# through note.
note() { log "$*"; }
# shellcheck source=tests/lib/common.sh
. "$HERE/../lib/common.sh"
KEYSTONE_API=$HERE/../lib/keystone_api.py

case $AUTH in
keystone)
    for var in KEYSTONE_URL KEYSTONE_NEUTRON_USER KEYSTONE_NEUTRON_PASSWORD KEYSTONE_SERVICE_PROJECT \
        OS_REGION_NAME OS_USERNAME OS_PASSWORD OS_PROJECT_NAME; do
        [ -n "${!var:-}" ] || die "$var is not set: eval \"\$(tests/keystone/up.sh)\" first (or use tests/openstack/up.sh)"
    done
    ;;
headers) ;;
"") die "no Keystone (KEYSTONE_URL is not set): eval \"\$(tests/keystone/up.sh)\" first, use tests/openstack/up.sh, or set OSLO_NAUTOBOT_NEUTRON_AUTH=headers" ;;
*) die "OSLO_NAUTOBOT_NEUTRON_AUTH: keystone or headers, not $AUTH" ;;
esac
# Keystone's own vhost is Keystone's to make and remove.
shared_vhost=
[ "$AUTH" = keystone ] && [ "$VHOST" = "${KEYSTONE_AMQP_VHOST:-}" ] && shared_vhost=1

command -v curl >/dev/null || apt_install curl
# uWSGI is built from source by pip.
ensure_build_tools
ensure_mariadb die
sql() { mariadb --protocol=socket -u root -N -B "$@"; }
ensure_rabbitmq die

# --- an earlier server from this state dir --------------------------------------

# A vhost an earlier run made is removed with it, unless it is Keystone's now.
if [ -n "$shared_vhost" ] && [ "$(cat "$STATE/vhost" 2>/dev/null || true)" = "$VHOST" ]; then
    rm -f "$STATE/vhost"
fi
OSLO_NAUTOBOT_NEUTRON_STATE=$STATE "$HERE/down.sh"

mkdir -p "$STATE"
# One bring-up at a time per cache (the venv and the dump are shared).
lock_cache neutron

# --- virtualenv ------------------------------------------------------------------

# shellcheck disable=SC2086 # the list is meant to split
frozen_venv "$VENV" $REQUIREMENTS
venv_hash=$(sha256sum <"$VENV/.complete" | cut -c1-8)

# --- configuration ----------------------------------------------------------------

if [ -z "$PORT" ]; then
    PORT=$(free_port)
fi
URL=http://127.0.0.1:$PORT
db_password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
vhost_url=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$VHOST")
mkdir -p "$STATE/etc/plugins/ml2" "$STATE/lib" "$STATE/lock" "$STATE/log"
if [ "$AUTH" = keystone ]; then
    keystone_conf="[keystone_authtoken]
# keystonemiddleware: validates each request's X-Auth-Token with Keystone,
# as the service user neutron (admin on project $KEYSTONE_SERVICE_PROJECT).
# No memcached: tokens are cached in the process.
www_authenticate_uri = $KEYSTONE_URL
auth_url = $KEYSTONE_URL
auth_type = password
username = $KEYSTONE_NEUTRON_USER
password = $KEYSTONE_NEUTRON_PASSWORD
project_name = $KEYSTONE_SERVICE_PROJECT
user_domain_name = ${OS_USER_DOMAIN_NAME:-Default}
project_domain_name = ${OS_PROJECT_DOMAIN_NAME:-Default}
region_name = $OS_REGION_NAME
interface = public
# A validated token is trusted this long (300 s by default) even once it is
# revoked; tests/reconcile waits that out to see a renewal, so keep it short.
token_cache_time = 30"
    auth_comment="# Neutron's stock keystone pipeline (authtoken, keystonecontext)."
else
    keystone_conf=
    auth_comment="# Trust the X-* identity headers (the pipeline \"headers\" in api-paste.ini)."
fi
cat >"$STATE/etc/neutron.conf" <<EOF
# Written by oslo-nautobot tests/neutron/up.sh on every run.
[DEFAULT]
core_plugin = ml2
service_plugins =
$auth_comment
auth_strategy = $AUTH
transport_url = rabbit://guest:guest@127.0.0.1:5672/$vhost_url
# publisher_id of the notifications: network.oslo-nautobot-neutron
host = oslo-nautobot-neutron
state_path = $STATE/lib
log_file = $STATE/log/neutron-api.log
debug = false
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
dhcp_agent_notification = false

[database]
connection = mysql+pymysql://$DB_NAME:$db_password@127.0.0.1/$DB_NAME?charset=utf8mb4

[oslo_concurrency]
lock_path = $STATE/lock

[oslo_messaging_notifications]
driver = messagingv2

[oslo_messaging_rabbit]
# The "neutron" exchange is declared durable: as sensors/eventsource.yaml
# (exchangeDeclare.durable) and "consume --exchange-durable true" declare it.
amqp_durable_queues = true

$keystone_conf
EOF
# It holds the service user's password.
chmod 600 "$STATE/etc/neutron.conf"
cat >"$STATE/etc/plugins/ml2/ml2_conf.ini" <<'EOF'
[ml2]
type_drivers = vxlan,flat,vlan
project_network_types = vxlan
mechanism_drivers =
extension_drivers = port_security

[ml2_type_vxlan]
# 2000 VNIs: room for the 1000 networks of tests/bench/reconcile.sh and the
# ones it creates before deleting others (a freed VNI is not reused then).
vni_ranges = 5000:6999

[ml2_type_flat]
flat_networks = *

[ml2_type_vlan]
network_vlan_ranges = physnet1:100:199
EOF
# The package's own api-paste.ini, plus a pipeline "headers" (used only with
# auth_strategy = headers): the stock keystone pipeline without authtoken, so
# keystonecontext builds the request context from the X-* headers the client
# sends.
paste_src=$(find "$VENV" -path '*/etc/neutron/api-paste.ini' -print -quit)
[ -n "$paste_src" ] || paste_src=$(find "$VENV" -name api-paste.ini -path '*neutron*' -print -quit)
[ -n "$paste_src" ] || die "no api-paste.ini in $VENV"
"$VENV/bin/python" - "$paste_src" "$STATE/etc/api-paste.ini" <<'EOF'
import configparser
import sys

src, dst = sys.argv[1:]
paste = configparser.RawConfigParser()
paste.optionxform = str  # keys are case-sensitive
paste.read(src)
app = paste["composite:neutronapi_v2_0"]
stock = app["keystone"].split()
if "authtoken" not in stock or "keystonecontext" not in stock:
    sys.exit(f"{src}: unexpected keystone pipeline: {app['keystone']}")
app["headers"] = " ".join(f for f in stock if f != "authtoken")
versions = paste["composite:neutronversions_composite"]
versions["headers"] = " ".join(f for f in versions["keystone"].split() if f != "authtoken")
with open(dst, "w", encoding="utf-8") as f:
    f.write("# Written by oslo-nautobot tests/neutron/up.sh from " + src + "\n")
    paste.write(f)
EOF
neutron_conf=(--config-file "$STATE/etc/neutron.conf" --config-file "$STATE/etc/plugins/ml2/ml2_conf.ini")

# --- database: restore the cached dump, or migrate and make one ------------------

log "recreating MariaDB database $DB_NAME"
mariadb_fresh_db "$DB_NAME" "$db_password"
DUMP=$CACHE/db-neutron-$VERSION-venv-$venv_hash.sql
if [ -f "$DUMP" ]; then
    log "restoring $DUMP"
    sql "$DB_NAME" <"$DUMP"
else
    log "migrating the empty database (neutron-db-manage upgrade heads)"
    "$VENV/bin/neutron-db-manage" "${neutron_conf[@]}" upgrade heads >"$STATE/log/db-manage.log" 2>&1 ||
        { tail -n 40 "$STATE/log/db-manage.log"; die "neutron-db-manage failed (log: $STATE/log/db-manage.log)"; }
    mariadb-dump --protocol=socket -u root --single-transaction --skip-comments "$DB_NAME" >"$DUMP.tmp.$$"
    mv "$DUMP.tmp.$$" "$DUMP"
    log "cached the migrated schema as $DUMP"
fi

# --- RabbitMQ vhost -----------------------------------------------------------------

if [ -n "$shared_vhost" ]; then
    rabbitmqctl -q list_vhosts name 2>/dev/null | grep -qxF -- "$VHOST" ||
        die "Keystone's vhost $VHOST does not exist: is Keystone up (tests/keystone/up.sh)?"
else
    # Made anew on every run; down.sh removes it.
    fresh_vhost "$VHOST" die
    echo "$VHOST" >"$STATE/vhost"
fi

# --- Keystone's catalog: this API is the network service ---------------------------

if [ "$AUTH" = keystone ]; then
    log "Keystone's catalog: network endpoints (public, internal, admin) at $URL"
    python3 "$KEYSTONE_API" set-endpoints network neutron "$URL" ||
        die "could not register $URL in Keystone's catalog ($KEYSTONE_URL)"
fi

# --- the API under uWSGI ------------------------------------------------------------
cat >"$STATE/etc/uwsgi.ini" <<EOF
[uwsgi]
http11-socket = 127.0.0.1:$PORT
module = neutron.wsgi.api:application
env = OS_NEUTRON_CONFIG_DIR=$STATE/etc
env = OS_NEUTRON_CONFIG_FILES=neutron.conf;plugins/ml2/ml2_conf.ini
master = true
processes = 1
threads = 2
lazy-apps = true
die-on-term = true
need-app = true
buffer-size = 65535
EOF
log "starting the Neutron $VERSION API (uWSGI) on $URL"
: >"$STATE/log/uwsgi.log"
: >"$STATE/log/neutron-api.log"
# setsid: a process group of its own, which down.sh stops. It must not keep
# fd 3 (our stdout), the lock on fd 9 or run.sh's lock on fd 8.
setsid "$VENV/bin/uwsgi" --ini "$STATE/etc/uwsgi.ini" >>"$STATE/log/uwsgi.log" 2>&1 </dev/null 3>&- 8>&- 9>&- &
echo $! >"$STATE/server.pid"
stop_on_failure() {
    local rc=$?
    [ "$rc" = 0 ] || OSLO_NAUTOBOT_NEUTRON_STATE=$STATE "$HERE/down.sh"
}
trap stop_on_failure EXIT

# Ready once an authenticated list of networks answers 200: as the service
# user through Keystone, or with the headers.
if [ "$AUTH" = keystone ]; then
    token=$(OS_AUTH_URL=$KEYSTONE_URL OS_USERNAME=$KEYSTONE_NEUTRON_USER OS_PASSWORD=$KEYSTONE_NEUTRON_PASSWORD \
        OS_PROJECT_NAME=$KEYSTONE_SERVICE_PROJECT python3 "$KEYSTONE_API" token) ||
        die "Keystone gives the service user $KEYSTONE_NEUTRON_USER no token"
    auth_headers=(-H "X-Auth-Token: $token")
else
    auth_headers=(-H 'X-User-Id: up' -H 'X-Project-Id: up' -H 'X-Roles: admin,member,reader')
fi
deadline=$((SECONDS + START_TIMEOUT))
while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "${auth_headers[@]}" \
        "$URL/v2.0/networks?limit=1" || true)
    [ "$code" = 200 ] && break
    if ! ps -o stat= -p "$(cat "$STATE/server.pid")" 2>/dev/null | grep -qv '^Z'; then
        tail -n 60 "$STATE/log/uwsgi.log" "$STATE/log/neutron-api.log" 2>/dev/null
        die "uWSGI exited during start-up (logs: $STATE/log/)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        tail -n 60 "$STATE/log/uwsgi.log" "$STATE/log/neutron-api.log" 2>/dev/null
        die "no 200 from $URL/v2.0/networks within ${START_TIMEOUT}s (last: ${code:-none}; logs: $STATE/log/)"
    fi
    sleep 0.5
done
log "Neutron $VERSION is up at $URL (auth: $AUTH; RabbitMQ vhost $VHOST)"

{
    echo "NEUTRON_URL=$URL"
    echo "NEUTRON_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/$vhost_url"
    echo "NEUTRON_VHOST=$VHOST"
    echo "NEUTRON_VENV=$VENV"
    echo "NEUTRON_STATE=$STATE"
    echo "NEUTRON_AUTH=$AUTH"
} >"$STATE/env"
sed 's/^/export /' "$STATE/env" >&3
