#!/usr/bin/env bash
# Stop what tests/openstack/up.sh started: Neutron first (it authenticates
# through Keystone and shares its vhost), then Keystone, which removes the
# vhost. Same knobs as up.sh. Safe to run when nothing is running.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rc=0
"$HERE/../neutron/down.sh" || rc=1
"$HERE/../keystone/down.sh" || rc=1
exit "$rc"
