#!/usr/bin/env bash
# Bring up a real OpenStack Neutron API server on loopback for the
# "real Neutron in the loop" end-to-end suite (tests/neutron/run.sh).
#
#   eval "$(tests/neutron/up.sh)"   # exports NEUTRON_URL, NEUTRON_AMQP_URL, ...
#   tests/neutron/down.sh
#
# What it does (a fresh machine is fine; everything missing is installed):
#   - MariaDB: installed with apt-get if absent, started if down; a database
#     of its own, recreated on every run (from a cached dump of the migrated
#     schema when there is one, else with neutron-db-manage, then dumped);
#   - RabbitMQ: installed if absent, started if down; a vhost of its own,
#     made anew on every run, with guest allowed everything in it. Neutron
#     publishes its notifications there with amqp_durable_queues = true, so
#     the "neutron" exchange is durable, as sensors/eventsource.yaml declares it;
#   - a virtualenv with the pinned neutron, PyMySQL and uWSGI, cached outside
#     the repository:
#       ${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}/neutron-venv-<version>
#   - the API (the WSGI app neutron.wsgi.api:application) under uWSGI on a
#     free loopback port, in a process group of its own (down.sh stops it).
#
# Authentication is test-only: no Keystone. The API trusts the caller's
# X-User-Id / X-Project-Id / X-Roles headers (Neutron's stock keystone
# pipeline without its authtoken filter), so a test can act as admin or as an
# ordinary project member. Never expose this server.
#
# stdout carries only `export NAME=value` lines; progress goes to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

VERSION=${OSLO_NAUTOBOT_NEUTRON_VERSION:-29.0.0}
CACHE=${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}
STATE=${OSLO_NAUTOBOT_NEUTRON_STATE:-/tmp/oslo-nautobot-neutron-api}
DB_NAME=${OSLO_NAUTOBOT_NEUTRON_DB:-oslo_nautobot_neutron}
VHOST=${OSLO_NAUTOBOT_NEUTRON_VHOST:-oslo-nautobot-neutron}
PORT=${OSLO_NAUTOBOT_NEUTRON_PORT:-}
START_TIMEOUT=${OSLO_NAUTOBOT_NEUTRON_START_TIMEOUT:-90}
VENV=$CACHE/neutron-venv-$VERSION
# Everything pinned: the same venv on every machine.
REQUIREMENTS="neutron==$VERSION PyMySQL==1.2.4 uWSGI==2.0.31"

t0=$SECONDS
log() { printf '[neutron up %3ds] %s\n' "$((SECONDS - t0))" "$*" >&2; }
die() { printf '[neutron up] ERROR: %s\n' "$*" >&2; exit 1; }

# Everything but the final export lines goes to stderr.
exec 3>&1 1>&2

# apt_install, shared with the other test scripts; it reports through note.
note() { log "$*"; }
# shellcheck source=tests/lib/common.sh
. "$HERE/../lib/common.sh"

command -v curl >/dev/null || apt_install curl
# uWSGI is built from source by pip.
if ! command -v gcc >/dev/null || ! python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    apt_install gcc python3-dev
fi

# --- MariaDB -------------------------------------------------------------------

if [ ! -x /usr/sbin/mariadbd ] || ! command -v mariadb >/dev/null; then
    apt_install mariadb-server
fi
db_up() { mariadb-admin --protocol=socket -u root ping >/dev/null 2>&1; }
if ! db_up; then
    log "starting MariaDB"
    install -d -o mysql -g mysql /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- \
        --user=mysql --bind-address=127.0.0.1
    for _ in $(seq 1 60); do db_up && break; sleep 0.5; done
    db_up || die "MariaDB did not come up"
fi
sql() { mariadb --protocol=socket -u root -N -B "$@"; }

# --- RabbitMQ ------------------------------------------------------------------

ensure_rabbitmq die

# --- an earlier server from this state dir --------------------------------------

OSLO_NAUTOBOT_NEUTRON_STATE=$STATE OSLO_NAUTOBOT_NEUTRON_VHOST=$VHOST "$HERE/down.sh"

mkdir -p "$CACHE" "$STATE"
# One bring-up at a time per cache (the venv and the dump are shared).
exec 9>"$CACHE/.neutron.lock"
flock 9

# --- virtualenv ------------------------------------------------------------------

if [ ! -f "$VENV/.complete" ] || [ "$(head -n 1 "$VENV/.complete")" != "$REQUIREMENTS" ]; then
    log "creating $VENV ($REQUIREMENTS; about a minute, uWSGI is compiled)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086 # the list is meant to split
    "$VENV/bin/pip" install -q --disable-pip-version-check $REQUIREMENTS
    # The first line is what was asked for; the rest (pip freeze) keys the dump.
    { echo "$REQUIREMENTS"; "$VENV/bin/pip" freeze --disable-pip-version-check; } >"$VENV/.complete.tmp"
    mv "$VENV/.complete.tmp" "$VENV/.complete"
fi
venv_hash=$(sha256sum <"$VENV/.complete" | cut -c1-8)

# --- configuration ----------------------------------------------------------------

db_password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
mkdir -p "$STATE/etc/plugins/ml2" "$STATE/lib" "$STATE/lock" "$STATE/log"
cat >"$STATE/etc/neutron.conf" <<EOF
# Written by oslo-nautobot tests/neutron/up.sh on every run.
[DEFAULT]
core_plugin = ml2
service_plugins =
# Trust the X-* identity headers (the pipeline "headers" in api-paste.ini).
auth_strategy = headers
transport_url = rabbit://guest:guest@127.0.0.1:5672/$VHOST
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
EOF
cat >"$STATE/etc/plugins/ml2/ml2_conf.ini" <<'EOF'
[ml2]
type_drivers = vxlan,flat,vlan
project_network_types = vxlan
mechanism_drivers =
extension_drivers = port_security

[ml2_type_vxlan]
vni_ranges = 5000:5999

[ml2_type_flat]
flat_networks = *

[ml2_type_vlan]
network_vlan_ranges = physnet1:100:199
EOF
# The package's own api-paste.ini, plus a pipeline "headers": the stock
# keystone pipeline without authtoken, so keystonecontext builds the request
# context from the X-* headers the client sends.
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
sql <<EOF
DROP DATABASE IF EXISTS \`$DB_NAME\`;
CREATE DATABASE \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE OR REPLACE USER '$DB_NAME'@'127.0.0.1' IDENTIFIED BY '$db_password';
CREATE OR REPLACE USER '$DB_NAME'@'localhost' IDENTIFIED BY '$db_password';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_NAME'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_NAME'@'localhost';
EOF
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

# --- RabbitMQ vhost: new on every run --------------------------------------------

rabbitmqctl -q add_vhost "$VHOST" >/dev/null
rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null

# --- the API under uWSGI ------------------------------------------------------------

if [ -z "$PORT" ]; then
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
URL=http://127.0.0.1:$PORT
cat >"$STATE/etc/uwsgi.ini" <<EOF
[uwsgi]
http-socket = 127.0.0.1:$PORT
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
    [ "$rc" = 0 ] || OSLO_NAUTOBOT_NEUTRON_STATE=$STATE OSLO_NAUTOBOT_NEUTRON_VHOST=$VHOST "$HERE/down.sh"
}
trap stop_on_failure EXIT

deadline=$((SECONDS + START_TIMEOUT))
while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 \
        -H 'X-User-Id: up' -H 'X-Project-Id: up' -H 'X-Roles: admin,member,reader' \
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
log "Neutron $VERSION is up at $URL (RabbitMQ vhost $VHOST)"

vhost_url=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$VHOST")
{
    echo "NEUTRON_URL=$URL"
    echo "NEUTRON_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/$vhost_url"
    echo "NEUTRON_VHOST=$VHOST"
    echo "NEUTRON_VENV=$VENV"
    echo "NEUTRON_STATE=$STATE"
} >"$STATE/env"
sed 's/^/export /' "$STATE/env" >&3
