#!/usr/bin/env bash
# The whole test suite, on a fresh machine as on a developer's:
#   lint → unit and stand-in-server tests → a real Nautobot → a real Keystone
#   and Neutron → the live suite → manifest validation → end to end through
#   RabbitMQ → the real Neutron in the loop.
# Nautobot, Keystone and Neutron are started once, and stopped when this
# script exits; their exports (NAUTOBOT_*, KEYSTONE_*, OS_*, NEUTRON_*) are
# in the environment of every suite after them.
# Installs and starts what it needs; caches slow things outside the repo
# (see tests/nautobot/README.md). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TERM_COLOR=never

started=$SECONDS
log="$(mktemp -d)/results"
step() { printf '\n== %s (%ds)\n' "$*" "$((SECONDS - started))"; }

# Every `cargo test` result line, for the total printed at the end.
cargo_test() {
    cargo test --locked "$@" 2>&1 | tee -a "$log"
    return "${PIPESTATUS[0]}"
}

step "toolchain"
if ! command -v cargo >/dev/null; then
    echo "cargo is not installed: this suite needs the machine's Rust toolchain" >&2
    exit 1
fi
cargo --version
for tool in curl jq; do
    if ! command -v "$tool" >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool"
    fi
done

step "format and lint"
cargo fmt --check
# Both builds: the one-shot binary, and the consume-enabled one the image ships.
cargo clippy --locked --all-targets -- -D warnings
cargo clippy --locked --all-targets --all-features -- -D warnings

step "unit tests and the binary against a scripted stand-in server"
cargo_test --lib --bins --test cli
cargo_test --lib --bins --all-features

step "a real Nautobot"
eval "$(tests/nautobot/up.sh)"
trap 'tests/nautobot/down.sh' EXIT
export NAUTOBOT_URL NAUTOBOT_TOKEN

step "a real Keystone, and a real Neutron that authenticates through it"
# Stopped on exit, Neutron and Keystone before Nautobot; if the bring-up
# fails, up.sh has already stopped whatever it started.
trap 'tests/openstack/down.sh || true; tests/nautobot/down.sh' EXIT
openstack_env=$(tests/openstack/up.sh)
eval "$openstack_env"
echo "Keystone at $KEYSTONE_URL, Neutron at $NEUTRON_URL (RabbitMQ vhost $NEUTRON_VHOST)"

step "live suite against $NAUTOBOT_URL"
cargo_test --test live -- --include-ignored --test-threads 4

step "hostile conditions against $NAUTOBOT_URL"
cargo_test --test hostile -- --include-ignored

step "fuzzing the decoder and planner"
bash tests/hostile/fuzz.sh 2>&1 | tee -a "$log"

# The consume suite may restart RabbitMQ: this run owns the machine's broker.
export OSLO_NAUTOBOT_CONSUME_BROKER_RESTART=1
for suite in tests/static/chroot.sh tests/manifests/validate.sh tests/e2e/run.sh tests/consume/run.sh \
    tests/neutron/run.sh tests/reconcile/run.sh tests/tenants/run.sh; do
    step "$suite"
    # A suite that is missing or fails fails the run: nothing is skipped.
    bash "$suite" 2>&1 | tee -a "$log" || { echo "$suite failed" >&2; exit 1; }
done

step "done"
echo "wall time: $((SECONDS - started)) s"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
