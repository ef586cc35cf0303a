#!/usr/bin/env bash
# Bring up a real OpenStack Keystone (identity API v3) on loopback, for the
# tests that authenticate as OpenStack users do, and for the real Neutron
# (tests/neutron/up.sh authenticates its API through it).
#
#   eval "$(tests/keystone/up.sh)"   # exports KEYSTONE_URL, OS_AUTH_URL, ...
#   tests/keystone/down.sh
#
# tests/openstack/up.sh starts Keystone and then Neutron in one go.
#
# What it does (a fresh machine is fine; everything missing is installed):
#   - MariaDB: installed with apt-get if absent, started if down; a database
#     of its own, recreated on every run from a cached dump of the migrated
#     schema (made with keystone-manage db_sync when there is none);
#   - RabbitMQ: installed if absent, started if down; the vhost Keystone
#     publishes its notifications in is made anew (by default Neutron's vhost,
#     so one AMQP connection reaches both the "neutron" and the "keystone"
#     exchange; tests/neutron/up.sh then keeps it as it is);
#   - a virtualenv with the pinned keystone, PyMySQL and uWSGI, cached outside
#     the repository:
#       ${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}/keystone-venv-<version>
#   - fresh fernet and credential keys, `keystone-manage bootstrap` (user and
#     project admin with a random password, roles reader ⊂ member ⊂ manager ⊂
#     admin, region RegionOne, the identity endpoints);
#   - the API (the WSGI app keystone.wsgi.api:application) under uWSGI on a
#     free loopback port, in a process group of its own (down.sh stops it),
#     with fernet tokens, an in-memory cache and notifications on RabbitMQ;
#   - then, through the API (provision.py): project "service" with user
#     "neutron" (admin there), the "network" service and its public, internal
#     and admin endpoints, project "demo" with a member user and a reader user
#     (random passwords), an application credential of admin's and one of the
#     demo member's, and a clouds.yaml in the state directory.
#
# If Keystone is brought up again (a new database, new keys), a Neutron that
# authenticated through the old one refuses every token: start it again.
#
# Knobs (environment):
#   OSLO_NAUTOBOT_KEYSTONE_VERSION   keystone on PyPI (30.0.0)
#   OSLO_NAUTOBOT_KEYSTONE_STATE     state directory (/tmp/oslo-nautobot-keystone)
#   OSLO_NAUTOBOT_KEYSTONE_DB        MariaDB database and user (oslo_nautobot_keystone)
#   OSLO_NAUTOBOT_KEYSTONE_VHOST     RabbitMQ vhost of the notifications
#                                    ($OSLO_NAUTOBOT_NEUTRON_VHOST, else oslo-nautobot-neutron)
#   OSLO_NAUTOBOT_KEYSTONE_PORT      the API's port (a free one)
#   OSLO_NAUTOBOT_KEYSTONE_NOTIFICATION_FORMAT  cadf (default) or basic
#   OSLO_NAUTOBOT_KEYSTONE_NETWORK_URL  the network service's endpoint URL
#                                    (default a placeholder, http://127.0.0.1:9696,
#                                    that tests/neutron/up.sh replaces with its own)
#   OSLO_NAUTOBOT_KEYSTONE_START_TIMEOUT  seconds for the API to answer (60)
#
# Test-only: the passwords and secrets are random and kept in the state
# directory. Never expose this server.
#
# stdout carries only `export NAME=value` lines; progress goes to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

VERSION=${OSLO_NAUTOBOT_KEYSTONE_VERSION:-30.0.0}
STATE=${OSLO_NAUTOBOT_KEYSTONE_STATE:-/tmp/oslo-nautobot-keystone}
DB_NAME=${OSLO_NAUTOBOT_KEYSTONE_DB:-oslo_nautobot_keystone}
VHOST=${OSLO_NAUTOBOT_KEYSTONE_VHOST:-${OSLO_NAUTOBOT_NEUTRON_VHOST:-oslo-nautobot-neutron}}
PORT=${OSLO_NAUTOBOT_KEYSTONE_PORT:-}
FORMAT=${OSLO_NAUTOBOT_KEYSTONE_NOTIFICATION_FORMAT:-cadf}
NETWORK_URL=${OSLO_NAUTOBOT_KEYSTONE_NETWORK_URL:-http://127.0.0.1:9696}
START_TIMEOUT=${OSLO_NAUTOBOT_KEYSTONE_START_TIMEOUT:-60}
REGION=RegionOne

t0=$SECONDS
log() { printf '[keystone up %3ds] %s\n' "$((SECONDS - t0))" "$*" >&2; }
die() { printf '[keystone up] ERROR: %s\n' "$*" >&2; exit 1; }

# Everything but the final export lines goes to stderr.
exec 3>&1 1>&2

note() { log "$*"; }
# shellcheck source=tests/lib/common.sh
. "$HERE/../lib/common.sh"
CACHE=$oslo_cache
VENV=$CACHE/keystone-venv-$VERSION
# Everything pinned: the same venv on every machine. uWSGI as for Neutron.
REQUIREMENTS=("keystone==$VERSION" PyMySQL==1.2.4 uWSGI==2.0.31)

case $FORMAT in cadf | basic) ;; *) die "OSLO_NAUTOBOT_KEYSTONE_NOTIFICATION_FORMAT: cadf or basic, not $FORMAT" ;; esac

command -v curl >/dev/null || apt_install curl
ensure_build_tools
ensure_mariadb die
ensure_rabbitmq die

# --- an earlier server from this state dir ------------------------------------------

OSLO_NAUTOBOT_KEYSTONE_STATE=$STATE "$HERE/down.sh"
install -d -m 700 "$STATE"
# One bring-up at a time per cache (the venv and the dump are shared).
lock_cache keystone

# --- virtualenv -------------------------------------------------------------------------

frozen_venv "$VENV" "${REQUIREMENTS[@]}"
venv_hash=$(sha256sum <"$VENV/.complete" | cut -c1-8)

# --- configuration ----------------------------------------------------------------------

[ -n "$PORT" ] || PORT=$(free_port)
URL=http://127.0.0.1:$PORT/v3
db_password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
admin_password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
vhost_url=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$VHOST")
rm -rf "${STATE:?}/etc" "${STATE:?}/keys" "${STATE:?}/log"
mkdir -p "$STATE/etc" "$STATE/keys" "$STATE/log"
chmod 700 "$STATE/keys"
cat >"$STATE/etc/keystone.conf" <<EOF
# Written by oslo-nautobot tests/keystone/up.sh on every run.
[DEFAULT]
log_file = $STATE/log/keystone.log
debug = false
# cadf: the payload is a CADF event (typeURI, action, target, ...);
# basic: only resource_info and request_id.
notification_format = $FORMAT
transport_url = rabbit://guest:guest@127.0.0.1:5672/$vhost_url

[database]
connection = mysql+pymysql://$DB_NAME:$db_password@127.0.0.1/$DB_NAME?charset=utf8mb4

[token]
provider = fernet

[identity]
# bcrypt's fewest rounds: every password check (each password token) costs
# some 0.3 s at the default 12. Test-only.
password_hash_rounds = 4

[fernet_tokens]
key_repository = $STATE/keys/fernet

[fernet_receipts]
key_repository = $STATE/keys/receipts

[credential]
key_repository = $STATE/keys/credential

# Without it every authenticated request runs some 180 SQL queries (a
# Neutron call behind keystonemiddleware takes 0.7 s instead of 0.02 s).
# One uWSGI process: the memory cache is the only one, and revocations take
# effect at once.
[cache]
enabled = true
backend = dogpile.cache.memory

[oslo_messaging_notifications]
driver = messagingv2
# A notification that cannot be sent after this many more tries is dropped
# (with a log line): a broker outage slows requests down, never hangs them.
retry = 2

[oslo_messaging_rabbit]
# The "keystone" exchange and the notifications.info queue are durable, as
# Neutron's are in the same vhost (they share that queue name).
amqp_durable_queues = true
rabbit_retry_interval = 1
rabbit_retry_backoff = 1
rabbit_interval_max = 2
EOF
ks_manage() { "$VENV/bin/keystone-manage" --config-file "$STATE/etc/keystone.conf" "$@"; }

# --- database: restore the cached dump, or migrate and make one ----------------------

log "recreating MariaDB database $DB_NAME"
mariadb_fresh_db "$DB_NAME" "$db_password"
DUMP=$CACHE/db-keystone-$VERSION-venv-$venv_hash.sql
if [ -f "$DUMP" ]; then
    log "restoring $DUMP"
    mariadb --protocol=socket -u root "$DB_NAME" <"$DUMP"
else
    log "migrating the empty database (keystone-manage db_sync)"
    ks_manage db_sync >"$STATE/log/db-sync.log" 2>&1 ||
        { tail -n 40 "$STATE/log/db-sync.log"; die "keystone-manage db_sync failed (log: $STATE/log/db-sync.log)"; }
    mariadb-dump --protocol=socket -u root --single-transaction --skip-comments "$DB_NAME" >"$DUMP.tmp.$$"
    mv "$DUMP.tmp.$$" "$DUMP"
    log "cached the migrated schema as $DUMP"
fi

# --- RabbitMQ vhost: new on every run (bootstrap publishes already) ------------------

fresh_vhost "$VHOST" die
# down.sh removes it.
echo "$VHOST" >"$STATE/vhost"

# --- keys and bootstrap ------------------------------------------------------------------

log "fresh fernet, receipt and credential keys; bootstrap (admin, $REGION, identity endpoints)"
# What keystone-manage fernet_setup, receipt_setup and credential_setup make,
# without three interpreter start-ups of keystone-manage (some 3 s each
# here): a repository of Fernet keys, 0 the staged key and 1 the primary.
"$VENV/bin/python" - "$STATE/keys" <<'PY'
import os
import sys

from cryptography.fernet import Fernet

for repo in ("fernet", "receipts", "credential"):
    path = os.path.join(sys.argv[1], repo)
    os.makedirs(path, mode=0o700)
    for index in ("0", "1"):
        fd = os.open(os.path.join(path, index), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
PY
OS_BOOTSTRAP_PASSWORD=$admin_password ks_manage bootstrap \
    --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
    --bootstrap-service-name keystone --bootstrap-region-id "$REGION" \
    --bootstrap-admin-url "$URL/" --bootstrap-public-url "$URL/" --bootstrap-internal-url "$URL/" \
    >>"$STATE/log/manage.log" 2>&1 ||
    { tail -n 20 "$STATE/log/manage.log"; die "keystone-manage bootstrap failed"; }

# --- the API under uWSGI ---------------------------------------------------------------

cat >"$STATE/etc/uwsgi.ini" <<EOF
[uwsgi]
http11-socket = 127.0.0.1:$PORT
module = keystone.wsgi.api:application
env = OS_KEYSTONE_CONFIG_DIR=$STATE/etc
env = OS_KEYSTONE_CONFIG_FILES=keystone.conf
master = true
# One process: dogpile's memory cache lives in it.
processes = 1
threads = 4
lazy-apps = true
die-on-term = true
need-app = true
buffer-size = 65535
EOF
log "starting the Keystone $VERSION API (uWSGI) on $URL"
: >"$STATE/log/uwsgi.log"
# setsid: a process group of its own, which down.sh stops. It must not keep
# fd 3 (our stdout), the lock on fd 9 or a caller's lock on fd 8.
setsid "$VENV/bin/uwsgi" --ini "$STATE/etc/uwsgi.ini" >>"$STATE/log/uwsgi.log" 2>&1 </dev/null 3>&- 8>&- 9>&- &
echo $! >"$STATE/server.pid"
stop_on_failure() {
    local rc=$?
    [ "$rc" = 0 ] || OSLO_NAUTOBOT_KEYSTONE_STATE=$STATE "$HERE/down.sh"
}
trap stop_on_failure EXIT

deadline=$((SECONDS + START_TIMEOUT))
while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$URL/" || true)
    [ "$code" = 200 ] && break
    if ! ps -o stat= -p "$(cat "$STATE/server.pid")" 2>/dev/null | grep -qv '^Z'; then
        tail -n 60 "$STATE/log/uwsgi.log" "$STATE/log/keystone.log" 2>/dev/null
        die "uWSGI exited during start-up (logs: $STATE/log/)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        tail -n 60 "$STATE/log/uwsgi.log" "$STATE/log/keystone.log" 2>/dev/null
        die "no 200 from $URL/ within ${START_TIMEOUT}s (last: ${code:-none}; logs: $STATE/log/)"
    fi
    sleep 0.3
done
log "Keystone answers at $URL; provisioning"

# --- projects, users, the network service, application credentials -------------------

python3 "$HERE/provision.py" --url "$URL" --admin-password "$admin_password" --region "$REGION" \
    --network-url "$NETWORK_URL" --state "$STATE" >"$STATE/provisioned.env" ||
    die "provisioning through the API failed (logs: $STATE/log/)"

{
    cat "$STATE/provisioned.env"
    echo "KEYSTONE_STATE=$STATE"
    echo "KEYSTONE_VENV=$VENV"
    echo "KEYSTONE_AMQP_VHOST=$VHOST"
    echo "KEYSTONE_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/$vhost_url"
    echo "KEYSTONE_NOTIFICATION_FORMAT=$FORMAT"
} >"$STATE/env.tmp"
mv "$STATE/env.tmp" "$STATE/env"
rm -f "$STATE/provisioned.env"
log "Keystone $VERSION is up at $URL (notifications: $FORMAT, RabbitMQ vhost $VHOST)"
sed 's/^/export /' "$STATE/env" >&3
