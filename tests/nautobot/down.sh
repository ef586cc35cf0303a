#!/usr/bin/env bash
# Stop the Nautobot web server started by tests/nautobot/up.sh.
# PostgreSQL and Redis stay up. Safe to run when nothing is running.
set -euo pipefail

STATE="${OSLO_NAUTOBOT_STATE:-/tmp/oslo-nautobot-nautobot}"
PIDFILE="$STATE/server.pid"

# Live (non-zombie) members of process group $1: an exited server whose parent
# is gone can sit as a zombie until PID 1 reaps it (pgrep would count those).
# shellcheck disable=SC2009
group_alive() { ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'; }

[ -f "$PIDFILE" ] || exit 0
pid="$(cat "$PIDFILE")"
# Only a group still led by our nautobot-server: a stale pidfile must not make
# us signal whatever later got the same number.
if [[ "$pid" =~ ^[0-9]+$ ]] && ps -o args= -p "$pid" 2>/dev/null | grep -q 'nautobot-server' &&
    group_alive "$pid"; then
    echo "[nautobot down] stopping nautobot-server (process group $pid)" >&2
    # up.sh started the server with setsid, so its pid is also its process
    # group: uWSGI's master, workers and HTTP router stop together.
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
        group_alive "$pid" || break
        sleep 0.1
    done
    if group_alive "$pid"; then
        echo "[nautobot down] still running after 15s, sending SIGKILL" >&2
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
fi
rm -f "$PIDFILE" "$STATE/env" "$STATE/port"
