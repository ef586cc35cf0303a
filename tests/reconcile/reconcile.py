#!/usr/bin/env python3
"""`oslo-nautobot reconcile`, and events that read Neutron's current state,
against the real Keystone, Neutron and Nautobot.

Run through run.sh, which provides Keystone and Neutron (tests/openstack/up.sh,
or the running ones of tests/run.sh), the two binaries (the plain build and the
one with the consume feature), a RabbitMQ vhost of this suite's own, and
NAUTOBOT_URL / NAUTOBOT_TOKEN, KEYSTONE_*, OS_* and NEUTRON_* in the
environment.

Every change to Neutron is a real API call with a real Keystone token (the
admin in project admin, or the demo project's member). Then the binary runs
(reconcile, or one event with OpenStack credentials), and Nautobot is compared
with Neutron object by object: a namespace per network, named by its id, with
the run's tag; a UCVNI per VXLAN network (id, name, ucvni_id = the
segmentation id, the run's group, tenant = the project, Active, no tag); a
prefix per subnet (id, CIDR, in the network's namespace or in Global for a
router:external network, tenant, Active, the run's tag); and nothing tagged,
or in the group, that Neutron does not have.

Isolation: the run's own UCVNI group and tag (rec-<hex>), so that what other
suites wrote (with the default tag) is never this run's to prune; Neutron
objects named rec-<hex>-…, removed at the start (an earlier run's) and at the
end; and at the end everything in Nautobot that carries the run's tag, the
group's UCVNIs, the group and the tags go.

Nautobot's writes are counted exactly: the binary reaches Nautobot through a
small HTTP proxy of this test that forwards every request (kept-alive
connections included) and records its method; Nautobot's object-change log is
a second witness for the "writes nothing" checks.

Credentials reach the binary as the OS_* variables in some scenarios and as
OS_CLOUD + OS_CLIENT_CONFIG_FILE (the clouds.yaml of tests/keystone/up.sh)
in others, with every OS_* variable removed from the child's environment.

Scenarios: (a) missed creates, (b) a rerun writes nothing, (c) a missed
rename, (d) hand edits in Nautobot, (e) missed deletes: orphans reported,
then pruned, (f) a late create after the delete, (g) a rename overtaken by its
create, (h) a member's network without provider:* keys, (i) untagged
look-alikes left alone, (j) --max-prune refusing, (k) `consume` renewing a
revoked token, (l) Keystone down and bad credentials, (m) an application
credential from clouds.yaml, (n) a VNI and an external CIDR that Neutron
reuses after a missed delete. Last, (o): a tenant made by one event carries
the tag. OSLO_NAUTOBOT_RECONCILE_ONLY=n,o (letters) runs only those
scenarios, after the setup.

About (k): Neutron's keystonemiddleware keeps a token it has validated in its
in-process cache for token_cache_time (300 s by default, 30 s as
tests/neutron/up.sh sets it), and does not see a revocation before the entry
expires.
So the second event is sent once Neutron really refuses a token revoked with
the service's: the scenario starts first and ends last, and waits for the rest
if the other scenarios took less.

Prints one PASS/FAIL line per check, a table of the reconcile runs, the wall
time, and last "N passed, M failed".
"""

import argparse
import ctypes
import datetime
import importlib.util
import ipaddress
import json
import os
import random
import re
import secrets
import signal
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
from testlib import AmqpChannel, CountingProxy, Nautobot, Report, dashed, free_port, wait_for  # noqa: E402

UCVNIS = "/api/plugins/undercloud-vni/ucvnis/"
GROUPS = "/api/plugins/undercloud-vni/ucvni-groups/"
NAMESPACES = "/api/ipam/namespaces/"
PREFIXES = "/api/ipam/prefixes/"
TENANTS = "/api/tenancy/tenants/"
TAGS = "/api/extras/tags/"
CHANGES = "/api/extras/object-changes/"
OS_VARS = ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_USER_DOMAIN_NAME",
           "OS_PROJECT_DOMAIN_NAME", "OS_REGION_NAME", "OS_INTERFACE", "OS_IDENTITY_API_VERSION")
OVERLAY = ("vxlan",)
QUEUE = "oslo-nautobot-reconcile"
EXCHANGE = "neutron"
ROUTING_KEY = "notifications.info"
# Names of this suite's Neutron objects: rec-<run>-<what>.
LEFTOVER = re.compile(r"^rec-[0-9a-f]{6}-")
RUN_TAG = re.compile(r"^rec-[0-9a-f]{6}$")


def note(text):
    print(f"[reconcile.py {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def same_cidr(a, b):
    try:
        return ipaddress.ip_network(a, strict=False) == ipaddress.ip_network(b, strict=False)
    except (TypeError, ValueError):
        return False


def die_with_parent():
    """In a child: SIGTERM when this test dies, however it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


# --------------------------------------------------------------------------
# Neutron's API with Keystone tokens


class Neutron:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.calls = 0

    def call(self, token, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/v2.0{path}", data=data, method=method, headers={
            "X-Auth-Token": token.id if hasattr(token, "id") else token, "Accept": "application/json",
            "Content-Type": "application/json", "X-OpenStack-Request-ID": f"req-{uuid.uuid4()}"})
        self.calls += 1
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                status, text = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        try:
            return status, (json.loads(text) if text else None)
        except ValueError:
            return status, text.decode(errors="replace")

    def must(self, token, method, path, body=None, ok=(200, 201, 204)):
        status, answer = self.call(token, method, path, body)
        if status not in ok:
            raise RuntimeError(f"Neutron {method} {path}: {status} {str(answer)[:400]}")
        return answer

    def networks(self, token):
        return self.must(token, "GET", "/networks")["networks"]

    def subnets(self, token):
        return self.must(token, "GET", "/subnets")["subnets"]

    def network(self, token, id_):
        status, answer = self.call(token, "GET", f"/networks/{id_}")
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"Neutron GET /networks/{id_}: {status} {answer}")
        return answer["network"]


def notification(event_type, payload, project, admin=True):
    """A notification as Neutron's messagingv2 driver sends it."""
    return {"message_id": str(uuid.uuid4()), "publisher_id": "network.oslo-nautobot-neutron",
            "event_type": event_type, "priority": "INFO", "payload": payload,
            "timestamp": utcnow().strftime("%Y-%m-%d %H:%M:%S.%f"),
            "_context_project_id": project, "_context_tenant_id": project, "_context_is_admin": admin,
            "_context_roles": ["admin", "member", "reader"] if admin else ["member", "reader"],
            "_context_global_request_id": f"req-{uuid.uuid4()}"}


# --------------------------------------------------------------------------
# One run of the binary


class Run:
    def __init__(self, label, code, stdout, stderr, requests, wall):
        self.label, self.code, self.stdout, self.stderr = label, code, stdout, stderr
        self.requests, self.wall = requests, wall
        self.lines = []
        for line in stdout.splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                self.lines.append(value)
        self.summary = next((x for x in reversed(self.lines) if x.get("summary") is True),
                            self.lines[-1] if self.lines else {})
        self.changes = [x for x in self.lines if "action" in x]

    @property
    def writes(self):
        return [(m, p, s) for m, p, s in self.requests if m != "GET"]

    def actions(self, action, kind=None):
        return [x for x in self.changes if x.get("action") == action and (kind is None or x.get("kind") == kind)]

    def keys(self, action, kind):
        """The ids (names for namespaces) of the lines of one action and kind."""
        return {x.get("name") if kind == "namespace" else x.get("id") for x in self.actions(action, kind)}

    def detail(self):
        out = [f"exit {self.code}; {len(self.requests)} Nautobot requests, writes: "
               + (", ".join(f"{m} {p} {s}" for m, p, s in self.writes[:12]) or "none")]
        out += [f"stdout: {line}" for line in self.stdout.splitlines()[:25]]
        out += [f"stderr: {line}" for line in self.stderr.strip().splitlines()[-12:]]
        return "\n".join(out)


class Suite:
    def __init__(self, args):
        self.args = args
        self.r = Report()
        env = os.environ
        self.env = env
        self.run_id = secrets.token_hex(3)
        self.tag = f"rec-{self.run_id}"
        self.group = f"rec-{self.run_id}"
        self.foreign_tag = f"rec-{self.run_id}-foreign"
        self.nb = Nautobot(env["NAUTOBOT_URL"], env["NAUTOBOT_TOKEN"], direct=True)
        self.proxy = CountingProxy(env["NAUTOBOT_URL"])
        self.keystone = Keystone(env["KEYSTONE_URL"])
        self.neutron = Neutron(env["NEUTRON_URL"])
        self.admin = self.keystone.password_token(
            env["OS_USERNAME"], env["OS_PASSWORD"], project_name=env["OS_PROJECT_NAME"],
            user_domain=env.get("OS_USER_DOMAIN_NAME", "Default"),
            project_domain=env.get("OS_PROJECT_DOMAIN_NAME", "Default"))
        self.member = self.keystone.password_token(env["KEYSTONE_MEMBER_USER"], env["KEYSTONE_MEMBER_PASSWORD"],
                                                   project_id=env["KEYSTONE_DEMO_PROJECT_ID"])
        self.admin_project = self.admin.project_id
        self.demo_project = self.member.project_id
        self.runs = []  # every reconcile Run, for the table
        self.extra = {"namespaces": [], "prefixes": [], "tenants": []}  # made by hand, or untagged
        self.tenants_before = set()
        self.mirror_user = None
        self.consume = None
        self.o2 = random.randrange(100, 250)
        self.o3 = random.randrange(0, 200)
        self.started = time.monotonic()

    # --- helpers -------------------------------------------------------------------

    def name(self, what):
        return f"rec-{self.run_id}-{what}"

    def cidr4(self, i):
        return f"10.{self.o2}.{self.o3 + i}.0/24"

    def cidr6(self, i):
        return f"fd{self.o2:02x}:{self.o3:04x}:{i:x}::/64"

    def os_creds(self, **override):
        creds = {k: self.env[k] for k in OS_VARS if self.env.get(k)}
        creds.update(override)
        return creds

    def cloud_creds(self, cloud, path=None):
        return {"OS_CLOUD": cloud, "OS_CLIENT_CONFIG_FILE": path or self.env["KEYSTONE_CLOUDS_YAML"]}

    def child_env(self, creds, extra=None, nautobot_url=None):
        """The binary's environment: nothing of the caller's OS_*, Nautobot or
        planning variables, only what is given here."""
        env = {k: v for k, v in self.env.items()
               if not k.startswith(("OS_", "NAUTOBOT_", "UCVNI_", "TRUST_", "RECONCILE_", "AMQP_", "CONSUME_",
                                    "METRICS_", "RUST_LOG", "NO_CREATE"))}
        env.update({"NAUTOBOT_URL": nautobot_url or self.proxy.url, "NAUTOBOT_TOKEN": self.env["NAUTOBOT_TOKEN"],
                    "UCVNI_GROUP_NAME": self.group, "NAUTOBOT_TAG": self.tag})
        env.update(creds)
        env.update(extra or {})
        return env

    def binary(self, label, argv, creds, stdin=None, extra=None, timeout=300):
        mark = self.proxy.mark()
        started = time.monotonic()
        try:
            proc = subprocess.run([self.args.bin, *argv], input=stdin, capture_output=True,
                                  env=self.child_env(creds, extra), timeout=timeout)
            code, out, err = proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired as e:
            code, out, err = "timeout", (e.stdout or b"").decode(errors="replace"), \
                (e.stderr or b"").decode(errors="replace")
        return Run(label, code, out, err, self.proxy.since(mark), time.monotonic() - started)

    def reconcile(self, label, *flags, creds=None, extra=None):
        run = self.binary(label, ["reconcile", *flags], self.os_creds() if creds is None else creds, extra=extra)
        self.runs.append(run)
        s = run.summary
        req = s.get("requests") or {}
        note(f"{label}: exit {run.code}, created {s.get('created')} updated {s.get('updated')} deleted "
             f"{s.get('deleted')} unchanged {s.get('unchanged')} orphans {s.get('orphans')}, requests neutron "
             f"{req.get('neutron')} nautobot {req.get('nautobot')} ({len(run.writes)} writes), {s.get('seconds')} s")
        return run

    def event(self, label, event, creds, *flags, extra=None):
        return self.binary(label, list(flags), creds, stdin=json.dumps(event).encode(), extra=extra)

    def check(self, name, ok, detail=""):
        return self.r.check(name, ok, detail)

    def check_summary(self, label, run, code=0, **expected):
        """Exit code, a summary line with every key, the expected counts, and
        the binary's count of Nautobot requests equal to the proxy's."""
        s = run.summary
        keys = {"summary", "created", "updated", "deleted", "unchanged", "orphans", "requests", "seconds", "exit"}
        ok = run.code == code and s.get("summary") is True and keys <= set(s) and s.get("exit") == code
        wrong = {k: (s.get(k), v) for k, v in expected.items() if s.get(k) != v}
        counted = (s.get("requests") or {}).get("nautobot")
        self.check(f"{label}: exit {code}, summary line {', '.join(f'{k} {v}' for k, v in expected.items())}",
                   ok and not wrong, f"differs (got, wanted): {wrong}\n{run.detail()}")
        self.check(f"{label}: the summary counts {counted} Nautobot requests, the proxy saw {len(run.requests)}",
                   counted == len(run.requests), run.detail())
        lines_ok = all(isinstance(x.get("kind"), str) and x.get("action") in ("create", "update", "delete", "orphan")
                       and (x.get("id") or x.get("name")) for x in run.changes)
        counts = {a: len(run.actions(a)) for a in ("create", "update", "delete", "orphan")}
        if s.get("dry_run"):
            # A dry run prints what --prune would delete as "delete" lines.
            agrees = counts["create"] == s.get("created") and counts["update"] == s.get("updated")
        else:
            agrees = (counts["create"], counts["update"], counts["delete"], counts["orphan"]) == \
                (s.get("created"), s.get("updated"), s.get("deleted"), s.get("orphans"))
        self.check(f"{label}: one line per change ({counts}), each with action, kind and id or name, as the summary "
                   "counts them", lines_ok and agrees, run.detail())

    def no_writes(self, label, run, since):
        changes = self.changes_since(since)
        self.check(f"{label}: Nautobot got no write ({len(run.requests)} requests, all GET, through the proxy; "
                   f"object-change log: {len(changes)} changes)", not run.writes and not changes,
                   run.detail() + "\n" + "\n".join(str(c) for c in changes[:10]))

    def changes_since(self, since):
        q = urllib.parse.urlencode({"time__gte": since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "limit": 1000})
        status, body = self.nb.call("GET", f"{CHANGES}?{q}")
        if status != 200:
            return [f"GET {CHANGES}: {status} {str(body)[:200]}"]
        return [f"{c.get('action', {}).get('value')} {c.get('changed_object_type')} {c.get('object_repr')}"
                for c in body["results"]]

    # --- Nautobot's view -------------------------------------------------------------

    def nb_list(self, path, **query):
        rows, page = [], f"{path}?{urllib.parse.urlencode({**query, 'limit': 1000, 'depth': 1})}"
        while page:
            status, body = self.nb.call("GET", page)
            if status != 200:
                raise RuntimeError(f"GET {page}: {status} {str(body)[:300]}")
            rows += body["results"]
            nxt = body.get("next")
            page = nxt[nxt.index("/api/"):] if nxt else None
        return rows

    def tagged(self, path):
        status, body = self.nb.call("GET", f"{TAGS}?name={urllib.parse.quote(self.tag)}")
        if status != 200 or not body["results"]:
            return []
        return self.nb_list(path, tags=self.tag)

    def group_ucvnis(self):
        status, body = self.nb.call("GET", f"{GROUPS}?name={urllib.parse.quote(self.group)}")
        if status != 200 or not body["results"]:
            return []
        return self.nb_list(UCVNIS, ucvni_group=self.group)

    def namespace(self, name):
        return self.nb.namespace(name)

    def compare(self, label, orphans=()):
        """Nautobot against Neutron, every object; `orphans` are keys
        (network ids, subnet ids) Nautobot may still hold although Neutron
        no longer does (reported, not yet pruned)."""
        networks = self.neutron.networks(self.admin)
        subnets = self.neutron.subnets(self.admin)
        namespaces = {n["name"]: n for n in self.tagged(NAMESPACES)}
        prefixes = {p["id"]: p for p in self.tagged(PREFIXES)}
        ucvnis = {u["id"]: u for u in self.group_ucvnis()}
        external = {n["id"]: bool(n.get("router:external")) for n in networks}
        problems = []

        def tags(obj):
            return {t.get("name") for t in obj.get("tags") or []}

        def ref_id(v):
            return (v or {}).get("id") if isinstance(v, dict) else v

        for n in networks:
            nid, project = n["id"], n.get("project_id") or n.get("tenant_id")
            if nid not in namespaces:
                other = self.namespace(nid)
                problems.append(f"network {n['name']} {nid}: no namespace tagged {self.tag}"
                                + (f" (one exists with tags {sorted(tags(other))})" if other else ""))
            if n.get("provider:network_type") in OVERLAY and n.get("provider:segmentation_id"):
                u = ucvnis.get(nid)
                if u is None:
                    problems.append(f"network {n['name']} {nid}: no UCVNI in group {self.group}")
                    continue
                want = {"name": n["name"], "ucvni_id": n["provider:segmentation_id"], "group": self.group,
                        "tenant": dashed(project), "status": "Active", "tags": set()}
                have = {"name": u.get("name"), "ucvni_id": u.get("ucvni_id"),
                        "group": (u.get("ucvni_group") or {}).get("name"), "tenant": ref_id(u.get("tenant")),
                        "status": (u.get("status") or {}).get("name"), "tags": tags(u)}
                if want != have:
                    problems.append(f"UCVNI {nid}: {have} instead of {want}")
            elif nid in ucvnis:
                problems.append(f"network {n['name']} {nid} ({n.get('provider:network_type')}): a UCVNI, "
                                "although it is no VXLAN network")
        for s in subnets:
            p = prefixes.get(s["id"])
            if p is None:
                problems.append(f"subnet {s['cidr']} {s['id']}: no prefix tagged {self.tag}")
                continue
            project = s.get("project_id") or s.get("tenant_id")
            namespace = "Global" if external.get(s["network_id"]) else s["network_id"]
            ok = (same_cidr(p.get("prefix"), s["cidr"]) and (p.get("namespace") or {}).get("name") == namespace
                  and ref_id(p.get("tenant")) == dashed(project) and (p.get("status") or {}).get("name") == "Active")
            if not ok:
                problems.append(f"prefix {s['id']}: {p.get('prefix')} in {(p.get('namespace') or {}).get('name')}, "
                                f"tenant {ref_id(p.get('tenant'))}, {(p.get('status') or {}).get('name')}; wanted "
                                f"{s['cidr']} in {namespace}, tenant {dashed(project)}, Active")
        known = {n["id"] for n in networks} | {s["id"] for s in subnets}
        for name in namespaces:
            if _is_uuid(name) and name not in known and name not in orphans:
                problems.append(f"namespace {name} (tagged) stands for no Neutron network")
        for pid, p in prefixes.items():
            if pid not in known and pid not in orphans:
                problems.append(f"prefix {p.get('prefix')} {pid} (tagged) stands for no Neutron subnet")
        for uid in ucvnis:
            if uid not in known and uid not in orphans:
                problems.append(f"UCVNI {uid} (group {self.group}) stands for no Neutron network")
        self.check(f"{label}: Nautobot mirrors Neutron ({len(networks)} networks, {len(subnets)} subnets: "
                   f"{len(namespaces)} tagged namespaces, {len(prefixes)} tagged prefixes, {len(ucvnis)} UCVNIs)",
                   not problems, "\n".join(problems))
        return not problems

    # --- Neutron objects of this suite ---------------------------------------------------

    def create_network(self, token, what, **fields):
        body = {"network": {"name": self.name(what), **fields}}
        return self.neutron.must(token, "POST", "/networks", body)["network"]

    def create_subnet(self, token, net, cidr, version=4):
        body = {"subnet": {"network_id": net["id"], "ip_version": version, "cidr": cidr,
                           "name": self.name(f"sub-{cidr}")}}
        return self.neutron.must(token, "POST", "/subnets", body)["subnet"]

    def delete_network(self, id_):
        self.neutron.must(self.admin, "DELETE", f"/networks/{id_}", ok=(204, 404))

    def clean_neutron(self, pattern):
        gone = 0
        for n in self.neutron.networks(self.admin):
            if pattern(n.get("name") or ""):
                self.delete_network(n["id"])
                gone += 1
        return gone

    # --- the scenarios -------------------------------------------------------------------

    def setup(self):
        left = self.clean_neutron(LEFTOVER.match)
        if left:
            note(f"deleted {left} network(s) an earlier run left in Neutron")
        for t in self.nb_list(TAGS):
            if RUN_TAG.match(t["name"]) and t["name"] != self.tag:
                note(f"removing what an earlier run left in Nautobot (tag and group {t['name']})")
                self.clean_nautobot(t["name"], t["name"], quiet=True)
        for project in (self.admin_project, self.demo_project):
            if self.nb.get(f"{TENANTS}{dashed(project)}/") is not None:
                self.tenants_before.add(dashed(project))
        run = self.binary("setup", ["setup"], {})
        outcomes = {(x.get("kind"), x.get("result")) for x in run.lines}
        self.check(f"setup: creates tag {self.tag} and UCVNI group {self.group}",
                   run.code == 0 and {("tag", "created"), ("ucvni-group", "created")} <= outcomes, run.detail())
        since = utcnow()
        run = self.binary("setup again", ["setup"], {})
        outcomes = {(x.get("kind"), x.get("result")) for x in run.lines}
        self.check("setup again: both unchanged", run.code == 0 and outcomes ==
                   {("tag", "unchanged"), ("ucvni-group", "unchanged")}, run.detail())
        changes = self.changes_since(since)
        done = [(m, path, status) for m, path, status in run.writes if status < 400]
        self.check(f"setup again changes nothing: no write accepted ({len(run.writes)} refused: "
                   f"{', '.join(f'{m} {path} {status}' for m, path, status in run.writes) or 'none'}), object-change "
                   f"log: {len(changes)} changes", not done and not changes, run.detail())

    def scenario_a(self):
        A, M = self.admin, self.member
        a1 = self.create_network(A, "a1")
        a1_v4 = self.create_subnet(A, a1, self.cidr4(1))
        a1_v6 = self.create_subnet(A, a1, self.cidr6(1), 6)
        a2 = self.create_network(A, "a2")
        a2_v4 = self.create_subnet(A, a2, self.cidr4(2))
        vlan = self.create_network(A, "vlan", **{"provider:network_type": "vlan",
                                                 "provider:physical_network": "physnet1"})
        vlan_v4 = self.create_subnet(A, vlan, self.cidr4(3))
        ext = self.create_network(A, "ext", **{"provider:network_type": "flat",
                                               "provider:physical_network": f"rec{self.run_id}",
                                               "router:external": True})
        ext_v4 = self.create_subnet(A, ext, self.cidr4(4))
        mnet = self.create_network(M, "member")
        m_v4 = self.create_subnet(M, mnet, self.cidr4(5))
        self.nets = {"a1": a1, "a2": a2, "vlan": vlan, "ext": ext, "member": mnet}
        self.subs = {"a1_v4": a1_v4, "a1_v6": a1_v6, "a2_v4": a2_v4, "vlan_v4": vlan_v4, "ext_v4": ext_v4,
                     "m_v4": m_v4}
        seen = self.neutron.network(A, mnet["id"])
        self.check(f"(a) Neutron: the member's network has VNI {seen.get('provider:segmentation_id')} (admin's "
                   "view), the member's own view has no provider:* keys",
                   seen.get("provider:network_type") == "vxlan" and seen.get("provider:segmentation_id")
                   and not [k for k in self.neutron.network(M, mnet["id"]) if k.startswith("provider:")], seen)
        self.check(f"(a) Neutron: VLAN network (VLAN {vlan.get('provider:segmentation_id')}) and external flat "
                   "network made by admin", vlan.get("provider:network_type") == "vlan"
                   and ext.get("router:external") is True, f"{vlan}\n{ext}")

        run = self.reconcile("(a) missed creates", creds=self.os_creds())
        created = run.summary.get("created") or 0
        self.check_summary("(a) reconcile", run, deleted=0, orphans=0)
        # A tenant made as a placeholder by (k)'s event gets its real name.
        others = [x for x in run.actions("update") if x.get("kind") != "tenant"]
        self.check("(a) nothing updated but placeholder tenants (named from Keystone): "
                   f"{len(run.actions('update')) - len(others)} tenant(s)", not others, run.detail())
        want_ns = {n["id"] for n in self.nets.values()}
        want_prefixes = {s["id"] for s in self.subs.values()}
        want_ucvnis = {a1["id"], a2["id"], mnet["id"]}
        self.check(f"(a) reconcile creates the {len(want_ns)} namespaces, {len(want_prefixes)} prefixes and "
                   f"{len(want_ucvnis)} UCVNIs (VXLAN only: none for the VLAN and the flat network); "
                   f"{created} created in all",
                   want_ns <= run.keys("create", "namespace") and want_prefixes <= run.keys("create", "prefix")
                   and run.keys("create", "ucvni") >= want_ucvnis
                   and not run.keys("create", "ucvni") & {vlan["id"], ext["id"]}, run.detail())
        writes = {m for m, _, _ in run.writes}
        self.check(f"(a) the writes are bulk POSTs ({len(run.writes)} writes for {created} objects)",
                   writes <= {"POST", "PATCH"} and len(run.writes) < created, run.detail())
        self.compare("(a) after reconcile")
        u = self.nb.ucvni(mnet["id"])
        self.check(f"(a) the member's network has its UCVNI (VNI {seen.get('provider:segmentation_id')}, "
                   "tenant the demo project), Neutron read as admin",
                   u is not None and u.get("ucvni_id") == seen.get("provider:segmentation_id")
                   and (u.get("tenant") or {}).get("id") == dashed(self.demo_project), u)
        p = self.nb.prefix(ext_v4["id"])
        self.check("(a) the external network's prefix is in Global",
                   p is not None and p["namespace"]["name"] == "Global", p)

    def scenario_b(self):
        since = utcnow()
        run = self.reconcile("(b) rerun right after")
        self.check_summary("(b) reconcile", run, created=0, updated=0, deleted=0, orphans=0)
        self.check(f"(b) nothing to do: no change line, {run.summary.get('unchanged')} unchanged",
                   not run.changes and (run.summary.get("unchanged") or 0) >= 14, run.detail())
        self.no_writes("(b) rerun", run, since)

    def scenario_c(self):
        a1 = self.nets["a1"]
        new = self.name("a1-renamed")
        self.neutron.must(self.admin, "PUT", f"/networks/{a1['id']}", {"network": {"name": new}})
        run = self.reconcile("(c) missed rename", creds=self.cloud_creds("oslo-admin"))
        self.check_summary("(c) reconcile (OS_CLOUD=oslo-admin, no OS_* variable)", run, created=0, updated=1,
                           deleted=0, orphans=0)
        line = next(iter(run.actions("update", "ucvni")), {})
        self.check(f"(c) one update line: UCVNI {a1['id'][:8]}… fields name from {a1['name']} to {new}",
                   line.get("id") == a1["id"] and line.get("fields") == {"name": {"from": a1["name"], "to": new}},
                   run.detail())
        self.check(f"(c) one write ({run.writes[:1]})", len(run.writes) == 1 and run.writes[0][0] == "PATCH",
                   run.detail())
        self.compare("(c) after reconcile")
        self.nets["a1"] = self.neutron.network(self.admin, a1["id"])

    def scenario_d(self):
        nb = self.nb
        mnet, ext_v4, a1_v4 = self.nets["member"], self.subs["ext_v4"], self.subs["a1_v4"]
        status, body = nb.call("POST", TAGS, {"name": self.foreign_tag, "content_types": ["ipam.prefix"]})
        ok = status == 201
        status2, body2 = nb.call("PATCH", f"{UCVNIS}{mnet['id']}/", {"name": "edited by hand"})
        status3, body3 = nb.call("PATCH", f"{PREFIXES}{ext_v4['id']}/", {"status": {"name": "Reserved"}})
        status4, body4 = nb.call("PATCH", f"{PREFIXES}{a1_v4['id']}/", {"tags": [{"name": self.foreign_tag}]})
        held = nb.prefix(a1_v4["id"])
        self.check("(d) by hand: a UCVNI renamed, a prefix Reserved, a prefix's tags replaced by "
                   f"{self.foreign_tag} only", ok and (status2, status3, status4) == (200, 200, 200)
                   and {t["name"] for t in held["tags"]} == {self.foreign_tag},
                   f"{status} {body}\n{status2} {body2}\n{status3} {body3}\n{status4} {body4}")
        run = self.reconcile("(d) hand edits")
        self.check_summary("(d) reconcile", run, created=0, updated=3, deleted=0, orphans=0)
        by_id = {x.get("id"): x for x in run.actions("update")}
        u, s, t = (by_id.get(mnet["id"], {}), by_id.get(ext_v4["id"], {}), by_id.get(a1_v4["id"], {}))
        self.check("(d) update lines: UCVNI name back, prefix status back to Active, our tag back",
                   u.get("fields", {}).get("name") == {"from": "edited by hand", "to": mnet["name"]}
                   and s.get("fields", {}).get("status", {}).get("to") == "Active"
                   and "tags" in t.get("fields", {}), run.detail())
        held = nb.prefix(a1_v4["id"])
        self.check(f"(d) the re-tagged prefix carries both tags, {self.tag} and the foreign {self.foreign_tag}",
                   held is not None and {x["name"] for x in held["tags"]} == {self.tag, self.foreign_tag}, held)
        self.compare("(d) after reconcile")

    def scenario_e(self):
        a1_v6, a2, a2_v4 = self.subs["a1_v6"], self.nets["a2"], self.subs["a2_v4"]
        self.neutron.must(self.admin, "DELETE", f"/subnets/{a1_v6['id']}")
        self.delete_network(a2["id"])
        expect = {("prefix", a1_v6["id"]), ("prefix", a2_v4["id"]), ("namespace", a2["id"]), ("ucvni", a2["id"])}
        since = utcnow()
        run = self.reconcile("(e) missed deletes, no --prune")
        self.check_summary("(e) reconcile", run, created=0, updated=0, deleted=0, orphans=4)
        got = {(x["kind"], x.get("name") if x["kind"] == "namespace" else x.get("id")) for x in run.actions("orphan")}
        self.check("(e) orphan lines: the deleted subnet's prefix, the deleted network's prefix, namespace and "
                   "UCVNI", got == expect, f"got {sorted(got)}\nwanted {sorted(expect)}\n{run.detail()}")
        self.no_writes("(e) without --prune", run, since)
        self.check("(e) without --prune: the orphans are still in Nautobot",
                   self.nb.prefix(a2_v4["id"]) and self.nb.prefix(a1_v6["id"]) and self.namespace(a2["id"])
                   and self.nb.ucvni(a2["id"]))
        self.compare("(e) without --prune", orphans={a1_v6["id"], a2_v4["id"], a2["id"]})
        run = self.reconcile("(e) --prune", "--prune")
        self.check_summary("(e) reconcile --prune", run, created=0, updated=0, deleted=4, orphans=0)
        got = {(x["kind"], x.get("name") if x["kind"] == "namespace" else x.get("id")) for x in run.actions("delete")}
        self.check("(e) --prune: delete lines for the same four", got == expect, run.detail())
        self.check("(e) --prune: the prefixes, the namespace and the UCVNI are gone",
                   not (self.nb.prefix(a2_v4["id"]) or self.nb.prefix(a1_v6["id"]) or self.namespace(a2["id"])
                        or self.nb.ucvni(a2["id"])))
        self.compare("(e) after --prune")
        del self.nets["a2"], self.subs["a2_v4"], self.subs["a1_v6"]

    def scenario_f(self):
        f = self.create_network(self.admin, "f")
        event = notification("network.create.end", {"network": f}, self.admin_project)
        self.delete_network(f["id"])
        run = self.event("(f) stale create", event, self.os_creds())
        s = run.summary
        self.check("(f) a network.create.end after the network's delete, with OpenStack credentials (OS_*): "
                   "exit 0, read_from neutron", run.code == 0 and s.get("read_from") == "neutron", run.detail())
        self.check("(f) Nautobot ends without it: no namespace, no UCVNI",
                   self.namespace(f["id"]) is None and self.nb.ucvni(f["id"]) is None, run.detail())
        run = self.event("(f) stale create, --trust-events", event, self.os_creds(), "--trust-events")
        self.check("(f) with --trust-events the same event is taken as it is: read_from event, namespace and "
                   "UCVNI written back", run.code == 0 and run.summary.get("read_from") == "event"
                   and self.namespace(f["id"]) is not None and self.nb.ucvni(f["id"]) is not None, run.detail())
        run = self.reconcile("(f) --prune after the late create", "--prune")
        self.check_summary("(f) reconcile --prune", run, created=0, updated=0, deleted=2, orphans=0)
        self.check("(f) reconcile --prune removes the namespace and the UCVNI the late create wrote",
                   run.keys("delete", "namespace") == {f["id"]} and run.keys("delete", "ucvni") == {f["id"]}
                   and self.namespace(f["id"]) is None and self.nb.ucvni(f["id"]) is None, run.detail())
        self.compare("(f) after --prune")

    def scenario_g(self):
        g = self.create_network(self.admin, "g")
        create = notification("network.create.end", {"network": g}, self.admin_project)
        new = self.name("g-renamed")
        updated = self.neutron.must(self.admin, "PUT", f"/networks/{g['id']}", {"network": {"name": new}})["network"]
        update = notification("network.update.end", {"network": updated}, self.admin_project)
        creds = self.cloud_creds("oslo-admin")
        first = self.event("(g) update", update, creds)
        second = self.event("(g) stale create", create, creds)
        u = self.nb.ucvni(g["id"])
        self.check("(g) network.update.end (new name), then the stale network.create.end (old name), with "
                   "OS_CLOUD=oslo-admin: both exit 0, read_from neutron",
                   first.code == 0 and second.code == 0 and first.summary.get("read_from") == "neutron"
                   and second.summary.get("read_from") == "neutron", first.detail() + "\n" + second.detail())
        self.check(f"(g) the UCVNI has the current name {new} (not {g['name']})",
                   u is not None and u.get("name") == new, u)
        self.nets["g"] = self.neutron.network(self.admin, g["id"])

    def scenario_h(self):
        h = self.create_network(self.member, "h")
        view = self.neutron.network(self.member, h["id"])
        admin_view = self.neutron.network(self.admin, h["id"])
        event = notification("network.create.end", {"network": view}, self.demo_project, admin=False)
        self.check("(h) the member's event carries no provider:* keys",
                   not [k for k in view if k.startswith("provider:")], sorted(view))
        trusted = self.event("(h) member's create, --trust-events", event, self.os_creds(), "--trust-events")
        results = {(x.get("kind"), x.get("result")) for x in trusted.summary.get("results", [])}
        self.check("(h) taken as it is (--trust-events): namespace created, UCVNI skipped",
                   trusted.code == 0 and ("namespace", "created") in results and ("ucvni", "skipped") in results
                   and self.nb.ucvni(h["id"]) is None, trusted.detail())
        run = self.event("(h) member's create, with credentials", event, self.os_creds())
        u = self.nb.ucvni(h["id"])
        vni = admin_view.get("provider:segmentation_id")
        self.check(f"(h) with credentials: read_from neutron, UCVNI present with Neutron's VNI {vni}, tenant the "
                   "demo project", run.code == 0 and run.summary.get("read_from") == "neutron" and u is not None
                   and u.get("ucvni_id") == vni and (u.get("tenant") or {}).get("id") == dashed(self.demo_project),
                   f"{u}\n{run.detail()}")
        self.nets["h"] = admin_view
        since = utcnow()
        run = self.reconcile("(f-h) after the events")
        self.check_summary("(f-h) reconcile after the events", run, created=0, updated=0, deleted=0, orphans=0)
        self.no_writes("(f-h) what the events wrote is what reconcile wants", run, since)
        self.compare("(f-h) after reconcile")

    def scenario_i(self):
        nb = self.nb
        ns_name = str(uuid.uuid4())
        status, body = nb.call("POST", NAMESPACES, {"name": ns_name})
        self.extra["namespaces"].append(ns_name)
        pid = str(uuid.uuid4())
        cidr = f"10.{self.o2}.{self.o3 + 40}.0/24"
        status2, body2 = nb.call("POST", PREFIXES, {"id": pid, "prefix": cidr, "namespace": {"name": "Global"},
                                                    "status": {"name": "Active"}})
        self.extra["prefixes"].append(pid)
        self.check(f"(i) by hand, without a tag: namespace {ns_name[:8]}… and prefix {cidr} in Global",
                   (status, status2) == (201, 201), f"{status} {body}\n{status2} {body2}")
        since = utcnow()
        run = self.reconcile("(i) untagged look-alikes, --prune", "--prune")
        self.check_summary("(i) reconcile --prune", run, created=0, updated=0, deleted=0, orphans=0)
        named = [x for x in run.changes if ns_name in (x.get("name"), x.get("id")) or pid == x.get("id")]
        self.check("(i) neither is an orphan: no line names them, both still there",
                   not named and self.namespace(ns_name) is not None and nb.prefix(pid) is not None, run.detail())
        self.no_writes("(i) reconcile --prune", run, since)

    def scenario_j(self):
        names = [str(uuid.uuid4()) for _ in range(3)]
        made = [self.nb.call("POST", NAMESPACES, {"name": n, "tags": [{"name": self.tag}]})[0] for n in names]
        self.check(f"(j) by hand: 3 namespaces named by UUIDs no network has, tagged {self.tag}",
                   made == [201] * 3, made)
        since = utcnow()
        run = self.reconcile("(j) --prune --max-prune 2", "--prune", "--max-prune", "2")
        self.check_summary("(j) reconcile --prune --max-prune 2", run, code=7, created=0, updated=0, deleted=0,
                           orphans=3)
        self.check("(j) refused: the 3 orphans are listed, the message names --max-prune",
                   run.keys("orphan", "namespace") == set(names) and "--max-prune" in run.stderr, run.detail())
        self.no_writes("(j) --max-prune 2", run, since)
        self.check("(j) the 3 namespaces are still there", all(self.namespace(n) for n in names))
        run = self.reconcile("(j) --prune --max-prune 3", "--prune", "--max-prune", "3")
        self.check_summary("(j) reconcile --prune --max-prune 3", run, created=0, updated=0, deleted=3, orphans=0)
        self.check("(j) --max-prune 3: the 3 are deleted",
                   run.keys("delete", "namespace") == set(names) and not any(self.namespace(n) for n in names),
                   run.detail())
        self.compare("(j) after --prune")

    def scenario_l(self):
        port = free_port()
        closed = f"http://127.0.0.1:{port}/v3"
        quick = {"NAUTOBOT_ATTEMPTS": "2", "NAUTOBOT_CONNECT_TIMEOUT": "2"}
        net = self.nets["a1"]
        event = notification("network.update.end", {"network": net}, self.admin_project)
        since = utcnow()
        run = self.event("(l) event, Keystone down", event, self.os_creds(OS_AUTH_URL=closed), extra=quick)
        self.check(f"(l) Keystone down (OS_AUTH_URL {closed}, nothing listening): the event exits 75",
                   run.code == 75, run.detail())
        self.check("(l) the event sent Nautobot no request", not run.requests, run.detail())
        rec = self.reconcile("(l) Keystone down", creds=self.os_creds(OS_AUTH_URL=closed), extra=quick)
        self.check("(l) reconcile exits 75, nothing written",
                   rec.code == 75 and not rec.writes and not self.changes_since(since), rec.detail())
        real = self.env["OS_PASSWORD"]
        for label, creds, cloud in (
                ("OS_* variables", self.os_creds(OS_PASSWORD=f"wrong-{secrets.token_hex(12)}"), "OS_* environment"),
                ("clouds.yaml", self.cloud_creds("rec-bad", self.bad_clouds_yaml()), "rec-bad")):
            wrong = creds.get("OS_PASSWORD") or self.bad_password
            auth_url = self.env["OS_AUTH_URL"]
            since = utcnow()
            ev = self.event(f"(l) event, wrong password ({label})", event, creds)
            rec = self.reconcile(f"(l) wrong password ({label})", creds=creds)
            for what, run in (("the event", ev), ("reconcile", rec)):
                text = run.stdout + run.stderr
                self.check(f"(l) wrong password ({label}): {what} exits 7, the message names the cloud "
                           f"({cloud}) and the auth URL", run.code == 7 and cloud in run.stderr
                           and auth_url.rstrip("/") in run.stderr, run.detail())
                self.check(f"(l) wrong password ({label}): {what} shows neither the wrong nor the real password",
                           wrong not in text and real not in text, run.detail())
                self.check(f"(l) wrong password ({label}): {what} wrote nothing", not run.writes, run.detail())
            self.check(f"(l) wrong password ({label}): the object-change log is empty", not self.changes_since(since))

    def bad_clouds_yaml(self):
        """A copy of the admin cloud with a wrong password, as cloud rec-bad."""
        with open(self.env["KEYSTONE_CLOUDS_YAML"], encoding="utf-8") as f:
            text = f.read()
        doc = json.loads(text[text.index("{"):])
        cloud = json.loads(json.dumps(doc["clouds"]["oslo-admin"]))
        self.bad_password = f"wrong-{secrets.token_hex(12)}"
        cloud["auth"]["password"] = self.bad_password
        path = os.path.join(self.args.work, "bad-clouds.yaml")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"clouds": {"rec-bad": cloud}}, f, indent=2)
        return path

    def scenario_m(self):
        mnet = self.create_network(self.admin, "m")
        msub = self.create_subnet(self.admin, mnet, self.cidr4(6))
        creds = self.cloud_creds("oslo-appcred")
        since = utcnow()
        run = self.reconcile("(m) OS_CLOUD=oslo-appcred, --dry-run", "--dry-run", creds=creds)
        self.check_summary("(m) reconcile --dry-run with an application credential", run, created=3, updated=0,
                           deleted=0, orphans=0)
        self.check("(m) the dry run's lines: create the namespace, the prefix and the UCVNI; dry_run true",
                   run.summary.get("dry_run") is True and mnet["id"] in run.keys("create", "namespace")
                   and msub["id"] in run.keys("create", "prefix") and mnet["id"] in run.keys("create", "ucvni")
                   and (run.summary.get("requests") or {}).get("neutron", 0) > 0, run.detail())
        self.no_writes("(m) --dry-run", run, since)
        self.check("(m) --dry-run: Nautobot has nothing of the new network",
                   self.namespace(mnet["id"]) is None and self.nb.ucvni(mnet["id"]) is None)
        run = self.reconcile("(m) OS_CLOUD=oslo-appcred", creds=creds)
        self.check_summary("(m) reconcile with the application credential", run, created=3, updated=0, deleted=0,
                           orphans=0)
        self.compare("(m) after reconcile")

    def scenario_n(self):
        """A missed delete, then Neutron gives a new object what the gone one
        held (a VNI; an external CIDR): reconcile --prune must create the new
        one and prune the orphan. Failed up to this suite's first commit
        (exit 8, nothing pruned, every run again: the create met the orphan's
        value, and a run with errors never prunes)."""
        A = self.admin
        vni = random.randrange(16_000_000, 16_700_000)  # admins may pick VNIs outside vni_ranges
        old = self.create_network(A, "n-old", **{"provider:network_type": "vxlan", "provider:segmentation_id": vni})
        ext = self.nets["ext"]
        cidr = f"10.{self.o2}.{self.o3 + 50}.0/24"
        old_sub = self.create_subnet(A, ext, cidr)
        run = self.reconcile("(n) before the missed delete")
        self.check(f"(n) reconcile mirrors a network with VNI {vni} and an external subnet {cidr}",
                   run.code == 0 and self.nb.ucvni(old["id"]) is not None and self.nb.prefix(old_sub["id"]) is not None,
                   run.detail())
        self.delete_network(old["id"])
        self.neutron.must(A, "DELETE", f"/subnets/{old_sub['id']}")
        new = self.create_network(A, "n-new", **{"provider:network_type": "vxlan", "provider:segmentation_id": vni})
        new_sub = self.create_subnet(A, ext, cidr)
        run = self.reconcile("(n) VNI and CIDR reused, --prune", "--prune")
        self.check_summary("(n) reconcile --prune", run, created=3, updated=0, deleted=3, orphans=0)
        u = self.nb.ucvni(new["id"])
        self.check(f"(n) the new network has VNI {vni}, the new subnet {cidr} in Global, the orphans are gone",
                   u is not None and u.get("ucvni_id") == vni and self.nb.prefix(new_sub["id"]) is not None
                   and self.nb.ucvni(old["id"]) is None and self.nb.prefix(old_sub["id"]) is None
                   and self.namespace(old["id"]) is None, run.detail())
        self.compare("(n) after --prune")
        # Whatever happened, the scenario leaves nothing for the next: both
        # gone from Neutron, and a prune without anything to create.
        self.delete_network(new["id"])
        self.neutron.must(A, "DELETE", f"/subnets/{new_sub['id']}", ok=(204, 404))
        self.binary("(n) clean-up", ["reconcile", "--prune"], self.os_creds())

    def scenario_o(self):
        """A tenant made by one event carries the run's tag, as the namespace
        does (README: every tenant the tool creates carries the tag). It
        failed up to b99f486 (the tenant had no tag)."""
        project, net = uuid.uuid4().hex, str(uuid.uuid4())
        self.extra["tenants"].append(dashed(project))
        self.extra["namespaces"].append(net)
        # A VXLAN network: its UCVNI needs the tenant.
        event = notification("network.create.end", {"network": {
            "id": net, "name": self.name("o"), "project_id": project, "tenant_id": project,
            "provider:network_type": "vxlan", "provider:segmentation_id": random.randrange(16_000_000, 16_700_000),
            "router:external": False, "subnets": []}}, project)
        run = self.event("(o) event of a project that is no tenant yet", event, {}, "--trust-events")
        tenant = self.nb.get(f"{TENANTS}{dashed(project)}/")
        ns = next(iter(self.nb_list(NAMESPACES, name=net)), None)
        tags = lambda o: sorted(t["name"] for t in (o or {}).get("tags") or [])  # noqa: E731
        self.check(f"(o) one event makes the namespace and the tenant, both tagged {self.tag} (namespace "
                   f"{tags(ns)}, tenant {tags(tenant) if tenant else 'missing'})", run.code == 0 and tenant is not None
                   and tags(ns) == [self.tag] and tags(tenant) == [self.tag], run.detail())
        # No network stands for them: not to be taken for orphans later.
        self.nb.call("DELETE", f"{UCVNIS}{net}/")
        if ns:
            self.nb.call("DELETE", f"{NAMESPACES}{ns['id']}/")
        self.nb.call("DELETE", f"{TENANTS}{dashed(project)}/")

    # --- (k) consume renews a revoked token --------------------------------------------

    def scenario_k_start(self):
        if not self.args.consume_bin:
            self.check("(k) a binary with the consume feature", False, "none given")
            return
        if importlib.util.find_spec("amqp") is None:
            self.check("(k) py-amqp importable (run.sh runs this with the Keystone venv's python)", False)
            return
        ks, admin = self.keystone, self.admin
        roles = {r["name"]: r["id"] for r in ks.must(admin, "GET", "/roles")["roles"]}
        password = secrets.token_hex(16)
        user = ks.must(admin, "POST", "/users", {"user": {
            "name": self.name("mirror"), "domain_id": "default", "password": password, "enabled": True}})["user"]
        self.mirror_user = user["id"]
        ks.must(admin, "PUT", f"/projects/{self.admin_project}/users/{user['id']}/roles/{roles['admin']}")
        self.k_net = self.create_network(admin, "k")
        creds = {"OS_AUTH_URL": self.env["OS_AUTH_URL"], "OS_USERNAME": user["name"], "OS_PASSWORD": password,
                 "OS_PROJECT_NAME": self.env["OS_PROJECT_NAME"], "OS_USER_DOMAIN_NAME": "Default",
                 "OS_PROJECT_DOMAIN_NAME": "Default", "OS_REGION_NAME": self.env.get("OS_REGION_NAME", "RegionOne"),
                 "OS_INTERFACE": "public"}
        self.k_password = password
        self.metrics_port = free_port()
        pw_file = os.path.join(self.args.work, "rabbitmq-password")
        with open(pw_file, "w", encoding="utf-8") as f:
            f.write("guest\n")
        self.consume_log = os.path.join(self.args.work, "consume.log")
        argv = [self.args.consume_bin, "consume", "-v", "--amqp-url", "amqp://127.0.0.1:5672/",
                "--amqp-vhost", self.args.vhost, "--amqp-username", "guest", "--amqp-password-file", pw_file,
                "--queue", QUEUE, "--concurrency", "1", "--max-backoff", "2",
                "--metrics-addr", f"127.0.0.1:{self.metrics_port}"]
        with open(self.consume_log, "w", encoding="utf-8") as log:
            self.consume = subprocess.Popen(argv, env=self.child_env(creds, nautobot_url=self.env["NAUTOBOT_URL"]),
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            preexec_fn=die_with_parent)
        self.broker = AmqpChannel(self.args.vhost)
        up = wait_for(lambda: self.metrics_get("/healthz")[0] == 200, 30)
        self.check(f"(k) consume runs with user {user['name']} (admin on project admin) as OS_* credentials, "
                   f"on queue {QUEUE} of vhost {self.args.vhost}", up, self.log_tail())
        if not up:
            return
        self.publish(notification("network.create.end", {"network": self.k_net}, self.admin_project))
        done = wait_for(lambda: self.applied() >= 1, 60)
        u = self.nb.ucvni(self.k_net["id"])
        self.check("(k) first event applied: the UCVNI is there", done and u is not None
                   and u.get("name") == self.k_net["name"], f"{u}\n{self.log_tail()}")
        self.k_first = time.monotonic()
        # A token of the same user, used at Neutron now: its cache entry there
        # expires after the service's.
        self.k_probe = ks.password_token(user["name"], password, project_name=self.env["OS_PROJECT_NAME"])
        probe_ok = self.neutron.call(self.k_probe, "GET", "/networks?limit=1")[0]
        disabled = ks.call(admin, "PATCH", f"/users/{user['id']}", {"user": {"enabled": False}})[0]
        enabled = ks.call(admin, "PATCH", f"/users/{user['id']}", {"user": {"enabled": True}})[0]
        req = urllib.request.Request(f"{self.env['KEYSTONE_URL']}/auth/tokens", method="GET",
                                     headers={"X-Auth-Token": admin.id, "X-Subject-Token": self.k_probe.id})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status = resp.status
        except urllib.error.HTTPError as e:
            status = e.code
        self.check(f"(k) the user's tokens revoked: disabled ({disabled}) and enabled again ({enabled}); Keystone "
                   f"now refuses a token issued before ({status})", probe_ok == 200 and disabled == 200
                   and enabled == 200 and status == 404, f"probe at Neutron {probe_ok}")

    def scenario_k_finish(self):
        if self.consume is None or self.consume.poll() is not None:
            if self.consume is not None:
                self.check("(k) consume still running", False, self.log_tail())
            return
        cache = self.args.token_cache_time
        wait = self.k_first + cache - time.monotonic()
        if wait > 0:
            note(f"(k) waiting {wait:.0f} s more: Neutron's keystonemiddleware trusts a token it has validated "
                 f"for {cache} s (token_cache_time)")
            time.sleep(wait)
        refused = wait_for(lambda: self.neutron.call(self.k_probe, "GET", "/networks?limit=1")[0] == 401, 90, 2)
        self.check(f"(k) Neutron refuses the revoked tokens now ({time.monotonic() - self.k_first:.0f} s after "
                   "the first event)", refused)
        new = self.name("k-renamed")
        renamed = self.neutron.must(self.admin, "PUT", f"/networks/{self.k_net['id']}",
                                    {"network": {"name": new}})["network"]
        self.publish(notification("network.update.end", {"network": renamed}, self.admin_project))
        done = wait_for(lambda: self.applied() >= 2, 60)
        u = self.nb.ucvni(self.k_net["id"])
        self.check(f"(k) second event applied after the revocation: the UCVNI is renamed {new}",
                   done and u is not None and u.get("name") == new, f"{u}\n{self.log_tail()}")
        failed = self.metric_sum('outcome="failed"')
        log = self.log_tail(400)
        self.check("(k) the service log shows the renewal: \"token refused (401); authenticating again\"",
                   "token refused (401); authenticating again" in log, log[-3000:])
        self.check(f"(k) no event failed ({failed}), the password is not in the log",
                   failed == 0 and self.k_password not in log, log[-2000:])
        self.consume.send_signal(signal.SIGTERM)
        try:
            code = self.consume.wait(30)
        except subprocess.TimeoutExpired:
            self.consume.kill()
            code = self.consume.wait()
        self.check(f"(k) SIGTERM: consume exits 0 ({code})", code == 0, self.log_tail())
        self.consume = None
        self.nets["k"] = renamed
        self.compare("(k) after the events")

    def metrics_get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""
        except OSError:
            return None, ""

    def metric_sum(self, label):
        _, text = self.metrics_get("/metrics")
        total = 0.0
        for line in text.splitlines():
            if line.startswith("oslo_nautobot_events_total{") and label in line:
                total += float(line.rpartition(" ")[2])
        return int(total)

    def applied(self):
        return self.metric_sum('outcome="applied"')

    def publish(self, event):
        import amqp
        body = json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(event)})
        msg = amqp.Message(body, content_type="application/json", delivery_mode=2)
        self.broker.channel().basic_publish(msg, exchange=EXCHANGE, routing_key=ROUTING_KEY)

    def log_tail(self, lines=40):
        try:
            with open(self.consume_log, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except (OSError, AttributeError):
            return ""

    # --- clean-up ------------------------------------------------------------------------

    def clean_nautobot(self, tag, group, quiet=False):
        """Everything carrying the tag (objects that also carry someone
        else's tag only lose ours), the group's UCVNIs, the group, the tag."""
        nb = self.nb
        mine = {tag, f"{tag}-foreign"}
        left = []

        def ok(status, what):
            if status not in (200, 204, 404):
                left.append(f"{what}: {status}")

        status, body = nb.call("GET", f"{GROUPS}?name={urllib.parse.quote(group)}")
        groups = body["results"] if status == 200 else []
        if groups:
            ids = [{"id": u["id"]} for u in self.nb_list(UCVNIS, ucvni_group=group)]
            for i in range(0, len(ids), 200):
                ok(nb.call("DELETE", UCVNIS, ids[i:i + 200])[0], "UCVNIs")
        status, body = nb.call("GET", f"{TAGS}?name={urllib.parse.quote(tag)}")
        if status == 200 and body["results"]:
            for kind in (PREFIXES, NAMESPACES, TENANTS):
                for obj in self.nb_list(kind, tags=tag):
                    others = [t["name"] for t in obj.get("tags") or [] if t["name"] not in mine]
                    if others:
                        ok(nb.call("PATCH", f"{kind}{obj['id']}/",
                                   {"tags": [{"name": t} for t in others]})[0], f"untag {kind}{obj['id']}")
                    elif kind == NAMESPACES:
                        inside = [{"id": p["id"]} for p in self.nb_list(PREFIXES, namespace=obj["id"])]
                        for i in range(0, len(inside), 200):
                            ok(nb.call("DELETE", PREFIXES, inside[i:i + 200])[0], "prefixes")
                        ok(nb.call("DELETE", f"{kind}{obj['id']}/")[0], f"namespace {obj['name']}")
                    elif kind == TENANTS:
                        if obj["id"] not in self.tenants_before:
                            status, answer = nb.call("DELETE", f"{kind}{obj['id']}/")
                            if status not in (204, 404):
                                left.append(f"tenant {obj['id']}: {status} {str(answer)[:300]}")
                    else:
                        ok(nb.call("DELETE", f"{kind}{obj['id']}/")[0], f"prefix {obj['id']}")
        for name in self.extra["namespaces"] if not quiet else ():
            ns = self.namespace(name)
            if ns:
                ok(nb.call("DELETE", f"{NAMESPACES}{ns['id']}/")[0], f"namespace {name}")
        for pid in self.extra["prefixes"] if not quiet else ():
            ok(nb.call("DELETE", f"{PREFIXES}{pid}/")[0], f"prefix {pid}")
        if not quiet:
            # Tenants this run made, tagged or not (up to b99f486 a single
            # event made its tenant without the tag).
            for t in [dashed(self.admin_project), dashed(self.demo_project)] + self.extra.get("tenants", []):
                if t not in self.tenants_before:
                    status, answer = nb.call("DELETE", f"{TENANTS}{t}/")
                    if status not in (204, 404):
                        left.append(f"tenant {t}: {status} {str(answer)[:300]}")
        for g in groups:
            ok(nb.call("DELETE", f"{GROUPS}{g['id']}/")[0], f"group {group}")
        status, body = nb.call("GET", f"{TAGS}?name={urllib.parse.quote(tag)}")
        if status == 200 and body["results"]:
            for kind in (PREFIXES, NAMESPACES):
                for obj in self.nb_list(kind, tags=tag):
                    if not [t for t in obj.get("tags") or [] if t["name"] not in mine]:
                        left.append(f"{kind} {obj.get('name') or obj.get('prefix')} {obj['id']} still there")
        for name in (tag, f"{tag}-foreign"):
            status, body = nb.call("GET", f"{TAGS}?name={urllib.parse.quote(name)}")
            for t in body["results"] if status == 200 else []:
                ok(nb.call("DELETE", f"{TAGS}{t['id']}/")[0], f"tag {name}")
        return left

    def cleanup(self):
        if self.consume is not None and self.consume.poll() is None:
            self.consume.kill()
            self.consume.wait()
        try:
            gone = self.clean_neutron(lambda n: n.startswith(f"rec-{self.run_id}-"))
            left = [n["name"] for n in self.neutron.networks(self.admin) if n["name"].startswith(f"rec-{self.run_id}-")]
            self.check(f"clean-up: Neutron has no network of this run ({gone} deleted)", not left, left)
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            self.check(f"clean-up of Neutron ({type(e).__name__}: {e})", False)
        if self.mirror_user:
            status, _ = self.keystone.call(self.admin, "DELETE", f"/users/{self.mirror_user}")
            self.check(f"clean-up: the Keystone user {self.name('mirror')} deleted", status == 204, status)
        try:
            problems = self.clean_nautobot(self.tag, self.group)
            status, body = self.nb.call("GET", f"{GROUPS}?name={self.group}")
            extra = [n for n in self.extra["namespaces"] if self.namespace(n)] + \
                [p for p in self.extra["prefixes"] if self.nb.prefix(p)]
            ours = [n for n in getattr(self, "nets", {}).values() if self.namespace(n["id"]) or self.nb.ucvni(n["id"])]
            ours += [{"id": f"tenant {t}"} for t in (dashed(self.admin_project), dashed(self.demo_project))
                     if t not in self.tenants_before and self.nb.get(f"{TENANTS}{t}/") is not None]
            self.check(f"clean-up: Nautobot holds nothing of this run (tag {self.tag}, group {self.group}, the "
                       "objects made by hand)", not problems and not extra and not ours and status == 200
                       and not body["results"] and not self.tag_exists(),
                       f"{problems} {extra} {[n['id'] for n in ours]} {body}")
        except Exception as e:  # noqa: BLE001
            self.check(f"clean-up of Nautobot ({type(e).__name__}: {e})", False)
        self.proxy.close()

    def tag_exists(self):
        status, body = self.nb.call("GET", f"{TAGS}?name={urllib.parse.quote(self.tag)}")
        return status == 200 and bool(body["results"])

    def table(self):
        print("reconcile runs:", flush=True)
        print("  | run | exit | created | updated | deleted | unchanged | orphans | Neutron requests | "
              "Nautobot requests | writes | seconds (summary) | wall |", flush=True)
        for run in self.runs:
            s = run.summary
            req = s.get("requests") or {}

            def v(x):
                return "–" if x is None else x
            print(f"  | {run.label} | {run.code} | {v(s.get('created'))} | {v(s.get('updated'))} | "
                  f"{v(s.get('deleted'))} | {v(s.get('unchanged'))} | {v(s.get('orphans'))} | {v(req.get('neutron'))} | "
                  f"{v(req.get('nautobot'))} | {len(run.writes)} | {v(s.get('seconds'))} | {run.wall:.2f} |", flush=True)


def _is_uuid(text):
    try:
        return str(uuid.UUID(text)) == text.lower()
    except (ValueError, AttributeError, TypeError):
        return False


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True, help="the oslo-nautobot binary")
    p.add_argument("--consume-bin", default="", help="a build with the consume feature")
    p.add_argument("--vhost", required=True, help="a RabbitMQ vhost of this suite's own (guest may use it)")
    p.add_argument("--work", required=True, help="scratch directory")
    p.add_argument("--token-cache-time", type=int, default=300,
                   help="Neutron's keystonemiddleware token_cache_time, in seconds")
    args = p.parse_args()
    started = time.monotonic()
    r = None
    missing = [v for v in ("NAUTOBOT_URL", "NAUTOBOT_TOKEN", "KEYSTONE_URL", "NEUTRON_URL", "OS_AUTH_URL",
                           "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "KEYSTONE_MEMBER_USER",
                           "KEYSTONE_MEMBER_PASSWORD", "KEYSTONE_DEMO_PROJECT_ID", "KEYSTONE_CLOUDS_YAML")
               if not os.environ.get(v)]
    if missing:
        r = Report()
        r.check(f"environment: {', '.join(missing)} set", False)
        r.summary()
        return 1
    try:
        suite = Suite(args)
    except Exception as e:  # noqa: BLE001
        r = Report()
        r.check(f"Keystone gives the admin and the demo member tokens ({type(e).__name__}: {e})", False)
        r.summary()
        return 1
    r = suite.r
    note(f"run {suite.run_id}: tag {suite.tag}, group {suite.group}, Nautobot through {suite.proxy.url}")
    steps = [suite.setup, suite.scenario_k_start, suite.scenario_a, suite.scenario_b, suite.scenario_c,
             suite.scenario_d, suite.scenario_e, suite.scenario_f, suite.scenario_g, suite.scenario_h,
             suite.scenario_i, suite.scenario_j, suite.scenario_l, suite.scenario_m, suite.scenario_n,
             suite.scenario_o, suite.scenario_k_finish]
    only = os.environ.get("OSLO_NAUTOBOT_RECONCILE_ONLY", "")
    if only:
        chosen = {f"scenario_{x.strip()}" for x in only.split(",")}
        steps = [s for s in steps if s == suite.setup or s.__name__ in chosen
                 or s.__name__.startswith(tuple(f"{c}_" for c in chosen))]
    try:
        for step in steps:
            note(step.__name__)
            try:
                step()
            except Exception as e:  # noqa: BLE001 - a crash is one failed check; later steps may still run
                import traceback
                r.check(f"{step.__name__} ran to the end ({type(e).__name__}: {e})", False, traceback.format_exc())
                if step in (suite.setup, suite.scenario_a):
                    break
    finally:
        suite.cleanup()
    suite.table()
    print(f"wall time: {time.monotonic() - started:.0f} s; {len(suite.runs)} reconcile runs, "
          f"{sum(len(x.requests) for x in suite.runs)} Nautobot requests, "
          f"{sum(len(x.writes) for x in suite.runs)} writes", flush=True)
    r.summary()
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
