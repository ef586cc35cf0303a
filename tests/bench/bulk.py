#!/usr/bin/env python3
"""Big events against a live Nautobot: does a bulk create finish in one run,
and what does it cost beside Nautobot's own cost for the same writes?

Run through tests/bench/bulk.sh (which builds the binaries and provides
NAUTOBOT_URL and NAUTOBOT_TOKEN). Prints a Markdown report on stdout and
writes it to --out; progress goes to stderr. Asserts nothing: the figures are
for reading.

Two events, as Neutron's bulk creates send them:

- `subnet.create.end` with --subnets subnets (1000) of one network, whose
  namespace exists already (so that both sides write the same objects: the
  prefixes);
- `network.create.end` with --networks networks (500): a namespace and a
  UCVNI each.

For each: the floor, i.e. the same objects (other ids, a twin namespace or
UCVNI group) POSTed straight to Nautobot in bulk requests of the binary's
chunk size by this script over one kept-alive connection, nothing read; then
one run of the binary with its default flags (wall time, exit code, the
requests it reports, what Nautobot holds afterwards); then the same event
again (a rerun must only read). With --old-binary, the binary of an earlier
commit gets the same event (fresh ids) and two reruns, as Argo's retries
would give it.

Every object made is removed at the end.
"""

import argparse
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from testlib import KeptAliveApi, dashed  # noqa: E402


def log(msg):
    print(f"[bulk {datetime.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def chunks(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


class World:
    """A project, a UCVNI group, and everything made in them, for removal."""

    def __init__(self, api, project, name):
        self.api = api
        self.project = project
        self.group = f"bench-bulk-{name}-{uuid.uuid4().hex[:6]}"
        api.ok("POST", "/api/plugins/undercloud-vni/ucvni-groups/", {"name": self.group})
        self.namespaces = []

    def namespace(self, name):
        self.api.ok("POST", "/api/ipam/namespaces/", {"name": name})
        self.namespaces.append(name)

    def cleanup(self):
        api = self.api
        for name in self.namespaces:
            found = api.ok("GET", f"/api/ipam/namespaces/?name={name}")["results"]
            if not found:
                continue
            ns = found[0]["id"]
            ids = [{"id": p["id"]} for p in api.all(f"/api/ipam/prefixes/?namespace={ns}")]
            for chunk in chunks(ids, 500):
                api.ok("DELETE", "/api/ipam/prefixes/", chunk)
            api.ok("DELETE", f"/api/ipam/namespaces/{ns}/", expect=(204, 404))
        ucvnis = [{"id": u["id"]} for u in api.all(f"/api/plugins/undercloud-vni/ucvnis/?ucvni_group={self.group}")]
        for chunk in chunks(ucvnis, 500):
            api.ok("DELETE", "/api/plugins/undercloud-vni/ucvnis/", chunk)
        groups = api.ok("GET", f"/api/plugins/undercloud-vni/ucvni-groups/?name={self.group}")["results"]
        for g in groups:
            api.ok("DELETE", f"/api/plugins/undercloud-vni/ucvni-groups/{g['id']}/", expect=(204, 404))


def subnet_event(project, network, n, base):
    subnets = []
    for i in range(n):
        cidr = f"10.{base + i // 256}.{i % 256}.0/24"
        subnets.append({"id": str(uuid.uuid4()), "name": f"bulk-{i}", "tenant_id": project, "project_id": project,
                        "network_id": network, "ip_version": 4, "cidr": cidr, "enable_dhcp": True,
                        "router:external": False, "description": "", "tags": [], "revision_number": 0})
    return notification("subnet.create.end", {"subnets": subnets}, project)


def network_event(project, n, vni_base):
    networks = []
    for i in range(n):
        nid = str(uuid.uuid4())
        networks.append({"id": nid, "name": f"bulk-net-{i}", "tenant_id": project, "project_id": project,
                         "admin_state_up": True, "mtu": 1450, "status": "ACTIVE", "subnets": [], "shared": False,
                         "router:external": False, "provider:network_type": "vxlan",
                         "provider:physical_network": None, "provider:segmentation_id": vni_base + i,
                         "description": "", "tags": [], "revision_number": 0})
    return notification("network.create.end", {"networks": networks}, project)


def notification(event_type, payload, project):
    return {"message_id": str(uuid.uuid4()), "publisher_id": "network.neutron-server-0", "event_type": event_type,
            "priority": "INFO", "payload": payload, "timestamp": time.strftime("%Y-%m-%d %H:%M:%S.000000"),
            "_context_project_id": project, "_context_is_admin": True}


def run_binary(binary, event, group, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NAUTOBOT_BULK", "NAUTOBOT_RETRY", "NAUTOBOT_ATTEMPTS", "NAUTOBOT_TIMEOUT"))}
    env["UCVNI_GROUP_NAME"] = group
    env.update(env_extra or {})
    started = time.monotonic()
    proc = subprocess.run([binary], input=json.dumps(event).encode(), capture_output=True, env=env)
    wall = time.monotonic() - started
    summary = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        try:
            summary = json.loads(line)
        except ValueError:
            pass
    results = summary.get("results", [])
    counts = {}
    for r in results:
        counts[r["result"]] = counts.get(r["result"], 0) + 1
    err = proc.stderr.decode(errors="replace").strip().splitlines()
    return {"exit": proc.returncode, "wall": wall, "requests": summary.get("requests"), "results": counts,
            "error": err[-1][:300] if err and proc.returncode else ""}


def floor(api, kind, bodies, size):
    """Nautobot's own cost: the same objects POSTed in bulk, nothing read."""
    before = api.requests
    started = time.monotonic()
    for chunk in chunks(bodies, size):
        api.ok("POST", kind, chunk, expect=(201,))
    return {"wall": time.monotonic() - started, "requests": api.requests - before}


def count_prefixes(api, namespace):
    ns = api.ok("GET", f"/api/ipam/namespaces/?name={namespace}")["results"]
    return len(api.all(f"/api/ipam/prefixes/?namespace={ns[0]['id']}")) if ns else 0


def count_ucvnis(api, group):
    return len(api.all(f"/api/plugins/undercloud-vni/ucvnis/?ucvni_group={group}"))


def subnets_part(args, api, project, worlds):
    n, size = args.subnets, args.bulk_size
    rows = []
    # The floor: a twin network's namespace, the same CIDRs, other ids.
    w = World(api, project, "subnets")
    worlds.append(w)
    twin = str(uuid.uuid4())
    w.namespace(twin)
    event = subnet_event(project, twin, n, 100)
    bodies = [{"id": s["id"], "prefix": s["cidr"], "namespace": {"name": twin}, "status": {"name": "Active"},
               "tenant": {"id": dashed(project)}} for s in event["payload"]["subnets"]]
    log(f"floor: {n} prefixes in bulk requests of {size}")
    fl = floor(api, "/api/ipam/prefixes/", bodies, size)
    rows.append(("Nautobot alone: bulk POSTs of the same prefixes", fl["requests"], fl["wall"], "", f"{n} prefixes"))
    net = str(uuid.uuid4())
    w.namespace(net)
    event = subnet_event(project, net, n, 100)
    for label in ("oslo-nautobot, first run", "oslo-nautobot, rerun"):
        log(f"{label}: {n} subnets")
        r = run_binary(args.binary, event, w.group)
        held = count_prefixes(api, net)
        rows.append((label, r["requests"], r["wall"], r["exit"], f"{held} of {n} prefixes; {fmt_results(r)}"))
    if args.old_binary:
        old_net = str(uuid.uuid4())
        w.namespace(old_net)
        old_event = subnet_event(project, old_net, n, 100)
        for label in ("older binary, first run", "older binary, rerun", "older binary, second rerun"):
            log(f"{label}: {n} subnets")
            r = run_binary(args.old_binary, old_event, w.group)
            held = count_prefixes(api, old_net)
            rows.append((label, r["requests"], r["wall"], r["exit"], f"{held} of {n} prefixes" +
                         (f"; {r['error']}" if r["error"] else "")))
    return rows, fl


def networks_part(args, api, project, worlds):
    n, size = args.networks, args.bulk_size
    rows = []
    twin = World(api, project, "nets-floor")
    worlds.append(twin)
    vni_base = random.randrange(100_000, 15_000_000)
    event = network_event(project, n, vni_base)
    nets = event["payload"]["networks"]
    twin.namespaces += [x["id"] for x in nets]
    log(f"floor: {n} namespaces and {n} UCVNIs in bulk requests of {size}")
    a = floor(api, "/api/ipam/namespaces/", [{"name": x["id"]} for x in nets], size)
    b = floor(api, "/api/plugins/undercloud-vni/ucvnis/",
              [{"id": x["id"], "name": x["name"], "status": {"name": "Active"}, "tenant": {"id": dashed(project)},
                "ucvni_group": {"name": twin.group}, "ucvni_id": x["provider:segmentation_id"]} for x in nets], size)
    fl = {"wall": a["wall"] + b["wall"], "requests": a["requests"] + b["requests"]}
    rows.append(("Nautobot alone: bulk POSTs of the same namespaces and UCVNIs", fl["requests"], fl["wall"], "",
                 f"{n} + {n} objects"))
    w = World(api, project, "nets")
    worlds.append(w)
    event = network_event(project, n, vni_base)
    w.namespaces += [x["id"] for x in event["payload"]["networks"]]
    for label in ("oslo-nautobot, first run", "oslo-nautobot, rerun"):
        log(f"{label}: {n} networks")
        r = run_binary(args.binary, event, w.group)
        rows.append((label, r["requests"], r["wall"], r["exit"],
                     f"{count_ucvnis(api, w.group)} of {n} UCVNIs; {fmt_results(r)}"))
    if args.old_binary:
        o = World(api, project, "nets-old")
        worlds.append(o)
        old_event = network_event(project, n, vni_base)
        o.namespaces += [x["id"] for x in old_event["payload"]["networks"]]
        for label in ("older binary, first run", "older binary, rerun", "older binary, second rerun"):
            log(f"{label}: {n} networks")
            r = run_binary(args.old_binary, old_event, o.group)
            rows.append((label, r["requests"], r["wall"], r["exit"], f"{count_ucvnis(api, o.group)} of {n} UCVNIs" +
                         (f"; {r['error']}" if r["error"] else "")))
    return rows, fl


def fmt_results(r):
    return ", ".join(f"{v} {k}" for k, v in sorted(r["results"].items())) or "no results"


def table(title, rows, fl):
    out = [f"**{title}**", "", "| run | requests | wall | vs Nautobot alone | exit | Nautobot afterwards |",
           "|---|---:|---:|---:|---:|---|"]
    for label, requests, wall, code, note in rows:
        ratio = "" if code == "" else f"{wall / fl['wall'] * 100:.0f} %"
        out.append(f"| {label} | {requests if requests is not None else '-'} | {wall:.1f} s | {ratio} | {code} | {note} |")
    return out


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--old-binary", default="")
    ap.add_argument("--old-revision", default="")
    ap.add_argument("--revision", default="")
    ap.add_argument("--subnets", type=int, default=1000)
    ap.add_argument("--networks", type=int, default=500)
    ap.add_argument("--bulk-size", type=int, default=25, help="the binary's default --bulk-size")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    api = KeptAliveApi(os.environ["NAUTOBOT_URL"], os.environ["NAUTOBOT_TOKEN"])
    project = uuid.uuid4().hex
    api.ok("POST", "/api/tenancy/tenants/", {"id": dashed(project), "name": f"bench-bulk-{project[:8]}"})
    worlds = []
    load = [loadavg()]
    started = time.monotonic()
    try:
        subnet_rows, subnet_floor = subnets_part(args, api, project, worlds) if args.subnets else ([], None)
        load.append(loadavg())
        network_rows, network_floor = networks_part(args, api, project, worlds) if args.networks else ([], None)
        load.append(loadavg())
    finally:
        log("removing what the benchmark made")
        for w in worlds:
            w.cleanup()
        api.ok("DELETE", f"/api/tenancy/tenants/{dashed(project)}/", expect=(204, 404))
    lines = [f"Bulk events ({datetime.date.today()}, {args.revision or 'this work tree'}"
             + (f", older binary {args.old_revision}" if args.old_binary else "")
             + f"), {platform.node()} with {os.cpu_count()} CPUs, Nautobot on the same machine,"
             + f" load average {' → '.join(load)}; {time.monotonic() - started:.0f} s in all.", ""]
    if subnet_rows:
        lines += table(f"`subnet.create.end` with {args.subnets} subnets of one network", subnet_rows, subnet_floor)
        lines.append("")
    if network_rows:
        lines += table(f"`network.create.end` with {args.networks} networks", network_rows, network_floor)
        lines.append("")
    lines += ["*requests*: as the binary reports them (retries included); for Nautobot alone, the bulk POSTs. "
              "*vs Nautobot alone*: the run's wall time over the floor's. Default flags (`--bulk-size 25`, "
              "`--retry-budget 30`, `--timeout 20`)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
