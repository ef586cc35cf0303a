#!/usr/bin/env python3
"""`oslo-nautobot reconcile` at scale: a thousand networks in a real Neutron,
what the first sync, a rerun and a rerun after 1 % drift cost.

Run through tests/bench/reconcile.sh, which builds the release binary and
provides Nautobot (NAUTOBOT_URL, NAUTOBOT_TOKEN), Keystone and Neutron
(KEYSTONE_URL, NEUTRON_URL and the admin's OS_* variables). Prints a
Markdown report on stdout and writes it to --out; progress goes to stderr.
Asserts nothing, except that a rerun with nothing to do writes nothing,
which it reports.

1. Neutron gets --networks networks (1000) and --subnets subnets (2000),
   made with Neutron's bulk API (`{"networks": [...]}`, `{"subnets": [...]}`,
   100 to a call) as the admin: VXLAN networks of the admin's project, and
   one external flat network holding --external-subnets of the subnets (their
   prefixes go to Global).
2. The floor: Nautobot's own cost for the same writes, i.e. as many
   namespaces, prefixes and UCVNIs (other names, ids and CIDRs, another tag
   and UCVNI group) POSTed in bulk requests of the binary's --bulk-size (25)
   over one kept-alive connection, nothing read.
3. `reconcile` (default flags, a fresh tag and UCVNI group): the first sync,
   then a rerun with nothing to do, timed straight to Nautobot, and that
   rerun once more through a proxy of this script that counts its requests
   by method (a rerun must send no write); Nautobot's object-change log
   counts what each run changed.
4. Drift of about 1 %: --drift (10) networks created in Neutron (with two
   subnets each) that Nautobot missed, as many renamed, as many deleted with
   their subnets, and as many hand edits in Nautobot (UCVNI names, prefix
   statuses, a prefix's tags replaced by a foreign one); then `reconcile`
   (default flags: the orphans are reported), `reconcile --prune`, and a
   last rerun through the proxy.

The new networks are created before the others are deleted, so that
Neutron cannot give a new network the VNI of a deleted one whose UCVNI is
still in Nautobot (reconcile stops at such a conflict, see the report).
Everything made is removed at the end, in Neutron and in Nautobot.
"""

import argparse
import concurrent.futures
import datetime
import http.client
import json
import os
import platform
import random
import resource
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from keystone_api import Keystone  # noqa: E402
from testlib import CountingProxy, KeptAliveApi, dashed  # noqa: E402

UCVNIS = "/api/plugins/undercloud-vni/ucvnis/"
GROUPS = "/api/plugins/undercloud-vni/ucvni-groups/"
NAMESPACES = "/api/ipam/namespaces/"
PREFIXES = "/api/ipam/prefixes/"
TENANTS = "/api/tenancy/tenants/"
TAGS = "/api/extras/tags/"
CHANGES = "/api/extras/object-changes/"
CHUNK = 100  # objects per Neutron bulk call


def log(msg):
    print(f"[bench reconcile {datetime.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def chunks(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def loadavg():
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


class Neutron:
    def __init__(self, url, token):
        self.url = url.rstrip("/")
        self.token = token
        self.calls = 0

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/v2.0{path}", data=data, method=method, headers={
            "X-Auth-Token": self.token, "Accept": "application/json", "Content-Type": "application/json"})
        self.calls += 1
        for attempt in range(3):
            try:
                with urllib.request.urlopen(req, timeout=600) as resp:
                    text = resp.read()
                    return resp.status, (json.loads(text) if text else None)
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode(errors="replace")
            except (OSError, http.client.HTTPException):
                # Only reads are retried: a write may have been done.
                if method != "GET" or attempt == 2:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")

    def ok(self, method, path, body=None, expect=(200, 201, 204)):
        status, answer = self.call(method, path, body)
        if status not in expect:
            raise RuntimeError(f"Neutron {method} {path}: {status} {str(answer)[:400]}")
        return answer

    def listing(self, collection, *fields):
        rows, marker = [], None
        while True:
            q = [("limit", 1000)] + [("fields", f) for f in fields] + ([("marker", marker)] if marker else [])
            answer = self.ok("GET", f"/{collection}?{urllib.parse.urlencode(q)}")
            page = answer[collection]
            rows += page
            more = any(link.get("rel") == "next" for link in answer.get(f"{collection}_links", []))
            if not (more and page) or page[-1]["id"] == marker:
                return rows
            marker = page[-1]["id"]


def run_binary(binary, argv, env, nautobot_url=None):
    env = dict(env)
    if nautobot_url:
        env["NAUTOBOT_URL"] = nautobot_url
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run([binary, *argv], capture_output=True, env=env)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    summary = next((x for x in reversed(lines) if isinstance(x, dict) and x.get("summary")), {})
    err = proc.stderr.decode(errors="replace").strip().splitlines()
    return {"exit": proc.returncode, "wall": wall, "cpu": cpu, "summary": summary, "lines": lines,
            "error": err[-1][:300] if err and proc.returncode else ""}


class Bench:
    def __init__(self, args):
        self.args = args
        env = os.environ
        self.run_id = secrets.token_hex(3)
        self.tag = f"recbench-{self.run_id}"
        self.group = f"recbench-{self.run_id}"
        self.floor_tag = f"recbench-{self.run_id}-floor"
        self.floor_group = f"recbench-{self.run_id}-floor"
        self.foreign_tag = f"recbench-{self.run_id}-foreign"
        self.api = KeptAliveApi(env["NAUTOBOT_URL"], env["NAUTOBOT_TOKEN"])
        ks = Keystone(env["KEYSTONE_URL"])
        self.admin = ks.password_token(env["OS_USERNAME"], env["OS_PASSWORD"], project_name=env["OS_PROJECT_NAME"],
                                       user_domain=env.get("OS_USER_DOMAIN_NAME", "Default"),
                                       project_domain=env.get("OS_PROJECT_DOMAIN_NAME", "Default"))
        self.project = self.admin.project_id
        self.neutron = Neutron(env["NEUTRON_URL"], self.admin.id)
        base = {k: v for k, v in env.items()
                if not k.startswith(("OS_", "NAUTOBOT_", "UCVNI_", "TRUST_", "RECONCILE_", "RUST_LOG"))}
        base.update({k: v for k, v in env.items() if k in (
            "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_USER_DOMAIN_NAME",
            "OS_PROJECT_DOMAIN_NAME", "OS_REGION_NAME", "OS_INTERFACE")})
        base.update({"NAUTOBOT_URL": env["NAUTOBOT_URL"], "NAUTOBOT_TOKEN": env["NAUTOBOT_TOKEN"],
                     "UCVNI_GROUP_NAME": self.group, "NAUTOBOT_TAG": self.tag})
        self.env = base
        self.proxy = CountingProxy(env["NAUTOBOT_URL"])
        self.tenant_made = False
        self.quota, self.quota_set = None, False
        self.nets, self.ext, self.subnets = [], None, []
        self.ext_base = random.randrange(16, 31)
        self.rows = {}
        self.load = [loadavg()]
        self.started = time.monotonic()

    def name(self, what):
        return f"recbench-{self.run_id}-{what}"

    # --- Neutron ----------------------------------------------------------------------------

    def neutron_setup(self):
        a = self.args
        n_vxlan = a.networks - 1
        # Neutron's default quotas (100 networks, 100 subnets a project) would
        # refuse the rest: unlimited for the run, as they were afterwards.
        custom = [q for q in self.neutron.ok("GET", "/quotas")["quotas"]
                  if (q.get("project_id") or q.get("tenant_id")) == self.project]
        self.quota = self.neutron.ok("GET", f"/quotas/{self.project}")["quota"] if custom else None
        self.quota_set = True
        self.neutron.ok("PUT", f"/quotas/{self.project}", {"quota": {"network": -1, "subnet": -1}})
        log(f"Neutron: {n_vxlan} VXLAN networks and 1 external network, in bulk calls of {CHUNK}")
        t = time.monotonic()
        calls0 = self.neutron.calls
        self.ext = self.neutron.ok("POST", "/networks", {"network": {
            "name": self.name("external"), "provider:network_type": "flat",
            "provider:physical_network": f"recbench{self.run_id}", "router:external": True}})["network"]
        names = [self.name(f"net-{i:04d}") for i in range(n_vxlan)]
        for chunk in chunks(names, CHUNK):
            self.nets += self.neutron.ok("POST", "/networks", {"networks": [{"name": n} for n in chunk]})["networks"]
        net_wall, net_calls = time.monotonic() - t, self.neutron.calls - calls0
        vxlan = [n for n in self.nets if n.get("provider:network_type") == "vxlan"]
        log(f"Neutron: {len(self.nets)} networks ({len(vxlan)} VXLAN) in {net_wall:.0f} s; now {a.subnets} subnets")
        bodies = []
        for k in range(a.subnets - a.external_subnets):
            i, j = k % n_vxlan, k // n_vxlan
            bodies.append({"network_id": self.nets[i]["id"], "ip_version": 4,
                           "cidr": f"10.{100 + i // 250}.{i % 250}.{j * 64}/26", "name": self.name(f"sub-{i}-{j}")})
        for k in range(a.external_subnets):
            bodies.append({"network_id": self.ext["id"], "ip_version": 4,
                           "cidr": f"172.{self.ext_base}.{k % 256}.{(k // 256) * 64}/26",
                           "name": self.name(f"ext-{k}")})
        t = time.monotonic()
        calls0 = self.neutron.calls
        for chunk in chunks(bodies, CHUNK):
            self.subnets += self.neutron.ok("POST", "/subnets", {"subnets": chunk})["subnets"]
        sub_wall, sub_calls = time.monotonic() - t, self.neutron.calls - calls0
        log(f"Neutron: {len(self.subnets)} subnets in {sub_wall:.0f} s")
        self.rows["neutron"] = (net_wall, net_calls, sub_wall, sub_calls)

    # --- the floor -------------------------------------------------------------------------

    def floor(self):
        api, size = self.api, self.args.bulk_size
        api.ok("POST", TAGS, {"name": self.floor_tag, "content_types": ["ipam.namespace", "ipam.prefix",
                                                                         "tenancy.tenant"]})
        api.ok("POST", GROUPS, {"name": self.floor_group})
        if api.first(TENANTS, id=dashed(self.project)) is None:
            # The binary makes the same tenant (tagged) when it is missing:
            # made here first, neither side pays for it.
            api.ok("POST", TENANTS, {"id": dashed(self.project), "name": self.project})
            self.tenant_made = True
        twins = {n["id"]: str(uuid.uuid4()) for n in self.nets}
        tenant = {"id": dashed(self.project)}
        tag = [{"name": self.floor_tag}]
        namespaces = [{"name": twins[n["id"]], "tags": tag} for n in self.nets] + \
            [{"name": str(uuid.uuid4()), "tags": tag}]
        prefixes = []
        for s in self.subnets:
            if s["network_id"] == self.ext["id"]:
                cidr = s["cidr"].replace(f"172.{self.ext_base}.", f"172.{self.ext_base + 1}.", 1)
                ns = {"name": "Global"}
            else:
                cidr, ns = s["cidr"], {"name": twins[s["network_id"]]}
            prefixes.append({"id": str(uuid.uuid4()), "prefix": cidr, "namespace": ns, "status": {"name": "Active"},
                             "tenant": tenant, "tags": tag})
        ucvnis = [{"id": str(uuid.uuid4()), "name": n["name"], "ucvni_id": n["provider:segmentation_id"],
                   "ucvni_group": {"name": self.floor_group}, "tenant": tenant, "status": {"name": "Active"}}
                  for n in self.nets if n.get("provider:network_type") == "vxlan"]
        out = {}
        for kind, path, bodies in (("namespaces", NAMESPACES, namespaces), ("prefixes", PREFIXES, prefixes),
                                   ("UCVNIs", UCVNIS, ucvnis)):
            log(f"floor: {len(bodies)} {kind} in bulk POSTs of {size}")
            before, t = api.requests, time.monotonic()
            for chunk in chunks(bodies, size):
                api.ok("POST", path, chunk, expect=(201,))
            out[kind] = (len(bodies), api.requests - before, time.monotonic() - t)
        self.rows["floor"] = out

    # --- the binary ------------------------------------------------------------------------

    def reconcile(self, label, *flags, counted=False):
        since = utcnow()
        mark = self.proxy.mark()
        r = run_binary(self.args.binary, ["reconcile", *flags], self.env,
                       nautobot_url=self.proxy.url if counted else None)
        time.sleep(0.2)
        r["changes"] = self.api.changes_since(since)
        if counted:
            seen = self.proxy.since(mark)
            r["proxy"] = len(seen)
            r["methods"] = {}
            for m, _, _ in seen:
                r["methods"][m] = r["methods"].get(m, 0) + 1
        s = r["summary"]
        log(f"{label}: exit {r['exit']} in {r['wall']:.1f} s (CPU {r['cpu']:.2f} s); created {s.get('created')} updated {s.get('updated')} "
            f"deleted {s.get('deleted')} unchanged {s.get('unchanged')} orphans {s.get('orphans')}; requests "
            f"{s.get('requests')}; {r['changes']} object changes" + (f"; proxy {r['methods']}" if counted else "")
            + (f"; {r['error']}" if r["error"] else ""))
        self.rows.setdefault("runs", []).append((label, r))
        return r

    def drift(self):
        a, api = self.args, self.api
        n = a.drift
        with_two = [x for x in self.nets if len([s for s in self.subnets if s["network_id"] == x["id"]]) >= 2]
        random.shuffle(with_two)
        renamed, deleted = with_two[:n], with_two[n:2 * n]
        edited = with_two[2 * n:3 * n]
        log(f"drift: {n} networks created (2 subnets each), {n} renamed, {n} deleted, {n} hand edits")
        t = time.monotonic()
        new = self.neutron.ok("POST", "/networks", {"networks": [{"name": self.name(f"new-{i}")}
                                                                 for i in range(n)]})["networks"]
        self.nets += new
        subs = [{"network_id": x["id"], "ip_version": 4, "cidr": f"10.99.{i}.{j * 64}/26"}
                for i, x in enumerate(new) for j in range(2)]
        self.subnets += self.neutron.ok("POST", "/subnets", {"subnets": subs})["subnets"]
        for x in renamed:
            self.neutron.ok("PUT", f"/networks/{x['id']}", {"network": {"name": x["name"] + "-renamed"}})
        for x in deleted:
            self.neutron.ok("DELETE", f"/networks/{x['id']}")
        gone = {x["id"] for x in deleted}
        self.nets = [x for x in self.nets if x["id"] not in gone]
        api.ok("POST", TAGS, {"name": self.foreign_tag, "content_types": ["ipam.prefix"]})
        edits = {"UCVNI names": 0, "prefix statuses": 0, "prefix tags": 0}
        for i, x in enumerate(edited):
            sub = next(s for s in self.subnets if s["network_id"] == x["id"])
            if i % 5 in (0, 1):
                api.ok("PATCH", f"{UCVNIS}{x['id']}/", {"name": "edited by hand"})
                edits["UCVNI names"] += 1
            elif i % 5 in (2, 3):
                api.ok("PATCH", f"{PREFIXES}{sub['id']}/", {"status": {"name": "Reserved"}})
                edits["prefix statuses"] += 1
            else:
                api.ok("PATCH", f"{PREFIXES}{sub['id']}/", {"tags": [{"name": self.foreign_tag}]})
                edits["prefix tags"] += 1
        self.rows["drift"] = {"created": n, "renamed": n, "deleted": n, "edits": edits,
                              "seconds": time.monotonic() - t}

    # --- clean-up ------------------------------------------------------------------------

    def cleanup(self):
        log("removing what the benchmark made: Neutron")
        prefix = f"recbench-{self.run_id}-"
        try:
            ids = [n["id"] for n in self.neutron.listing("networks", "id", "name") if n["name"].startswith(prefix)]
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda i: self.neutron.call("DELETE", f"/networks/{i}"), ids))
            left = [n for n in self.neutron.listing("networks", "id", "name") if n["name"].startswith(prefix)]
            log(f"Neutron: {len(ids)} networks deleted, {len(left)} left")
        except Exception as e:  # noqa: BLE001 - clean up Nautobot all the same
            log(f"Neutron clean-up failed: {type(e).__name__}: {e}")
        if self.quota_set:
            if self.quota is None:
                self.neutron.call("DELETE", f"/quotas/{self.project}")
            else:
                self.neutron.call("PUT", f"/quotas/{self.project}", {"quota": {
                    "network": self.quota["network"], "subnet": self.quota["subnet"]}})
        log("removing what the benchmark made: Nautobot")
        api = self.api
        for tag, group in ((self.tag, self.group), (self.floor_tag, self.floor_group)):
            if api.first(GROUPS, name=group):
                ids = [{"id": u["id"]} for u in api.all(UCVNIS, ucvni_group=group)]
                for chunk in chunks(ids, 500):
                    api.ok("DELETE", UCVNIS, chunk)
            if api.first(TAGS, name=tag):
                namespaces = api.all(NAMESPACES, tags=tag)
                ids = [{"id": p["id"]} for p in api.all(PREFIXES, tags=tag)]
                for chunk in chunks(ids, 500):
                    api.ok("DELETE", PREFIXES, chunk)
                for ns in namespaces:  # prefixes without our tag in our namespaces
                    inside = api.ok("GET", f"{PREFIXES}?namespace={ns['id']}&limit=1000")["results"]
                    if inside:
                        api.ok("DELETE", PREFIXES, [{"id": p["id"]} for p in inside])
                for chunk in chunks([{"id": ns["id"]} for ns in namespaces], 500):
                    api.ok("DELETE", NAMESPACES, chunk)
        if self.tenant_made:
            api.call("DELETE", f"{TENANTS}{dashed(self.project)}/")
        for group in (self.group, self.floor_group):
            g = api.first(GROUPS, name=group)
            if g:
                api.ok("DELETE", f"{GROUPS}{g['id']}/")
        for tag in (self.tag, self.floor_tag, self.foreign_tag):
            t = api.first(TAGS, name=tag)
            if t:
                api.ok("DELETE", f"{TAGS}{t['id']}/")
        self.proxy.close()
        log("clean-up done")

    # --- the report ----------------------------------------------------------------------

    def report(self):
        a = self.args
        runs = dict(self.rows.get("runs", []))
        lines = ["# `oslo-nautobot reconcile` at scale", "",
                 f"{datetime.date.today()}, {a.revision or 'this work tree'}; {platform.node()} with "
                 f"{os.cpu_count()} CPUs; Keystone, Neutron and Nautobot on the same machine; load average "
                 f"{' → '.join(self.load)}; {time.monotonic() - self.started:.0f} s in all (clean-up not included). "
                 "Release binary, default flags (`--bulk-size 25`, `--max-prune 50`), a fresh tag and UCVNI group.",
                 ""]
        if "neutron" in self.rows:
            nw, nc, sw, sc = self.rows["neutron"]
            lines += [f"**Neutron**: {a.networks} networks ({a.networks - 1} VXLAN of the admin's project, 1 external "
                      f"flat) in {nc} API calls (bulk creates of up to {CHUNK}), {nw:.0f} s; {a.subnets} subnets "
                      f"({a.external_subnets} in the external network, so in Global) in {sc} calls, {sw:.0f} s. "
                      f"Nautobot should then hold "
                      f"{a.networks} namespaces, {a.subnets} prefixes and {a.networks - 1} UCVNIs "
                      f"({a.networks - 1 + a.networks + a.subnets} objects).", ""]
        floor = self.rows.get("floor")
        first = runs.get("first sync")
        if floor:
            total_objects = sum(x[0] for x in floor.values())
            total_requests = sum(x[1] for x in floor.values())
            total_wall = sum(x[2] for x in floor.values())
            lines += ["**First sync**, beside Nautobot alone writing the same objects:", "",
                      "| run | wall | binary CPU | requests (Neutron / Nautobot) | written | exit | vs Nautobot alone |",
                      "|---|---:|---:|---:|---|---:|---:|"]
            for kind, (count, requests, wall) in floor.items():
                lines.append(f"| Nautobot alone: {count} {kind}, bulk POSTs of {a.bulk_size} | {wall:.1f} s | | "
                             f"– / {requests} | {count} | | |")
            lines.append(f"| **Nautobot alone, in all** | **{total_wall:.1f} s** | | – / {total_requests} | "
                         f"{total_objects} objects | | 100 % |")
            if first:
                lines.append(self.run_row("**reconcile, first sync**", first, total_wall))
            lines.append("")
        if "rerun, nothing to do" in runs:
            lines += ["**Reruns**:", "",
                      "| run | wall | binary CPU | requests (Neutron / Nautobot) | result | writes | exit |",
                      "|---|---:|---:|---:|---|---|---:|"]
            for label in ("rerun, nothing to do", "rerun, nothing to do, through the proxy"):
                r = runs.get(label)
                if r:
                    lines.append(self.rerun_row(label, r))
            lines.append("")
        drift = self.rows.get("drift")
        if drift:
            e = drift["edits"]
            lines += [f"**After 1 % drift**: in Neutron, {drift['created']} networks created with 2 subnets each "
                      f"(missed creates: {drift['created']} namespaces, {2 * drift['created']} prefixes, "
                      f"{drift['created']} UCVNIs), {drift['renamed']} renamed, {drift['deleted']} deleted with their "
                      f"2 subnets each; in Nautobot, {sum(e.values())} hand edits ({e['UCVNI names']} UCVNI names, "
                      f"{e['prefix statuses']} prefix statuses, {e['prefix tags']} prefixes' tags replaced by a foreign "
                      f"tag). Expected: {4 * drift['created']} created, {drift['renamed'] + sum(e.values())} updated, "
                      f"{4 * drift['deleted']} orphans.", "",
                      "| run | wall | binary CPU | requests (Neutron / Nautobot) | created / updated / deleted / "
                      "unchanged / orphans | object changes | exit |", "|---|---:|---:|---:|---|---:|---:|"]
            for label in ("after drift", "after drift, --prune", "after --prune, rerun through the proxy"):
                r = runs.get(label)
                if r:
                    s = r["summary"]
                    req = s.get("requests") or {}
                    lines.append(f"| {label} | {r['wall']:.1f} s | {r['cpu']:.2f} s | {req.get('neutron')} / {req.get('nautobot')} | "
                                 f"{s.get('created')} / {s.get('updated')} / {s.get('deleted')} / {s.get('unchanged')}"
                                 f" / {s.get('orphans')} | {r['changes']}"
                                 + (f" (proxy: {fmt_methods(r)})" if "methods" in r else "") + f" | {r['exit']} |")
            lines.append("")
        lines += ["*wall*: spawn to exit. *binary CPU*: the binary's user + system time (the rest of the wall time "
                  "is spent waiting for Neutron and Nautobot). *requests*: as the binary's summary line counts them (Neutron includes "
                  "Keystone's token request). *written*: for Nautobot alone the objects POSTed; *object changes*: the "
                  "object-change records Nautobot logged during the run (one per object created, updated or deleted). *through the proxy*: the run "
                  "again with Nautobot behind this benchmark's counting proxy, which sees every request by method "
                  "(the timed runs go straight to Nautobot)."]
        return "\n".join(lines) + "\n"

    def run_row(self, label, r, floor_wall):
        s = r["summary"]
        req = s.get("requests") or {}
        return (f"| {label} | **{r['wall']:.1f} s** | {r['cpu']:.2f} s | {req.get('neutron')} / {req.get('nautobot')} | "
                f"{s.get('created')} created ({r['changes']} object changes) | {r['exit']} | "
                f"{r['wall'] / floor_wall * 100:.0f} % |")

    def rerun_row(self, label, r):
        s = r["summary"]
        req = s.get("requests") or {}
        writes = (f"{sum(v for k, v in r['methods'].items() if k != 'GET')} writes of {r['proxy']} requests "
                  f"({fmt_methods(r)}); " if "methods" in r else "") + f"{r['changes']} object changes"
        return (f"| {label} | {r['wall']:.2f} s | {r['cpu']:.2f} s | {req.get('neutron')} / {req.get('nautobot')} | "
                f"{s.get('unchanged')} unchanged, {s.get('created')} created, {s.get('updated')} updated | {writes} | "
                f"{r['exit']} |")


def fmt_methods(r):
    return ", ".join(f"{k} {v}" for k, v in sorted(r["methods"].items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--revision", default="")
    ap.add_argument("--networks", type=int, default=1000, help="networks in Neutron, the external one included")
    ap.add_argument("--subnets", type=int, default=2000)
    ap.add_argument("--external-subnets", type=int, default=50)
    ap.add_argument("--drift", type=int, default=10, help="networks created, renamed, deleted; hand edits")
    ap.add_argument("--bulk-size", type=int, default=25, help="the binary's default --bulk-size")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    b = Bench(args)
    log(f"run {b.run_id}: tag {b.tag}, group {b.group}")
    try:
        b.neutron_setup()
        b.load.append(loadavg())
        setup = run_binary(args.binary, ["setup"], b.env)
        if setup["exit"] != 0:
            raise RuntimeError(f"oslo-nautobot setup: exit {setup['exit']}: {setup['error']}")
        b.floor()
        b.load.append(loadavg())
        b.reconcile("first sync")
        b.load.append(loadavg())
        b.reconcile("rerun, nothing to do")
        b.reconcile("rerun, nothing to do, through the proxy", counted=True)
        b.drift()
        b.reconcile("after drift")
        b.reconcile("after drift, --prune", "--prune")
        b.reconcile("after --prune, rerun through the proxy", counted=True)
        b.load.append(loadavg())
    finally:
        text = b.report()
        b.cleanup()
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
