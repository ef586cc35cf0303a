#!/usr/bin/env bash
# The container's promise without a container engine: the binary is built
# statically (as the Containerfile's musl stage does), needs nothing from the
# filesystem, and does its job from an empty root directory, as in a
# `scratch` image, against the live Nautobot (NAUTOBOT_URL, NAUTOBOT_TOKEN).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
: "${NAUTOBOT_URL:?run through tests/run.sh}" "${NAUTOBOT_TOKEN:?run through tests/run.sh}"

passed=0 failed=0
check() {  # check NAME COMMAND...
    local name=$1; shift
    if "$@"; then echo "PASS: $name"; passed=$((passed + 1)); else echo "FAIL: $name"; failed=$((failed + 1)); fi
}

target=x86_64-unknown-linux-gnu
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release --locked --target "$target"
bin=target/$target/release/oslo-nautobot

# A static executable has no program interpreter and needs no shared library.
check "static: no ELF interpreter" bash -c "! readelf -lW '$bin' | grep -q 'Requesting program interpreter'"
check "static: no shared libraries" bash -c "! readelf -dW '$bin' | grep -q '(NEEDED)'"
size=$(stat -c %s "$bin")
echo "static binary: $size bytes"
check "static: under 8 MiB" test "$size" -lt $((8 << 20))

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -m 0755 "$bin" "$root/oslo-nautobot"
# Only the binary and the event inside: no libc, no /etc, no /dev, no CA bundle.
net=$(cat /proc/sys/kernel/random/uuid) sub=$(cat /proc/sys/kernel/random/uuid)
project=$(cat /proc/sys/kernel/random/uuid | tr -d -)
event() {
    jq -cn --arg t "$1" --arg net "$net" --arg sub "$sub" --arg p "$project" \
        '{event_type: $t, message_id: "chroot", payload: {subnet: {id: $sub, network_id: $net, project_id: $p,
          ip_version: 4, cidr: "10.99.0.0/24", "router:external": false}}}'
}
event subnet.create.end > "$root/create.json"
event subnet.delete.end > "$root/delete.json"
# The chroot reaches Nautobot by address: there is no /etc/hosts in it.
url=${NAUTOBOT_URL/localhost/127.0.0.1}
# An empty environment too, as in a pod: only what the run needs.
chroot_bin=$(command -v chroot)
run() { env -i NAUTOBOT_TOKEN="$NAUTOBOT_TOKEN" "$chroot_bin" "$root" /oslo-nautobot --nautobot-url "$url" "$@"; }

run --help >/dev/null && rc=0 || rc=$?
check "chroot: --help exits 0" test "$rc" = 0
plan=$(run --dry-run --file /create.json) || true
check "chroot: dry run plans the prefix" grep -q '"action":"write"' <<<"$plan"
get_prefix() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Token $NAUTOBOT_TOKEN" "$NAUTOBOT_URL/api/ipam/prefixes/$sub/"; }
out=$(run --file /create.json) && rc=0 || rc=$?
check "chroot: subnet.create.end exits 0 ($rc)" test "$rc" = 0
check "chroot: the prefix exists in Nautobot" test "$(get_prefix)" = 200
echo "$out"
out=$(run --file /delete.json) && rc=0 || rc=$?
check "chroot: subnet.delete.end exits 0 ($rc)" test "$rc" = 0
check "chroot: the prefix is gone" test "$(get_prefix)" = 404
# Leave nothing behind: the namespace and tenant the create made.
ns=$(curl -s -H "Authorization: Token $NAUTOBOT_TOKEN" "$NAUTOBOT_URL/api/ipam/namespaces/?name=$net" | jq -r '.results[0].id // empty')
[ -z "$ns" ] || curl -s -o /dev/null -X DELETE -H "Authorization: Token $NAUTOBOT_TOKEN" "$NAUTOBOT_URL/api/ipam/namespaces/$ns/"
tenant=${project:0:8}-${project:8:4}-${project:12:4}-${project:16:4}-${project:20:12}
curl -s -o /dev/null -X DELETE -H "Authorization: Token $NAUTOBOT_TOKEN" "$NAUTOBOT_URL/api/tenancy/tenants/$tenant/"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
