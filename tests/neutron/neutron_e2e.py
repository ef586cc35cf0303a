#!/usr/bin/env python3
"""oslo-nautobot with a real Neutron in the loop: OpenStack API → RabbitMQ → binary → Nautobot.

Run through run.sh, which starts Keystone and Neutron (tests/openstack/up.sh)
unless they are up, builds the binaries and passes the paths. Every step is a
real call to the Neutron API with a real Keystone token (X-Auth-Token,
from POST /v3/auth/tokens with a password): as admin in project admin, or
as the ordinary member of project demo (and Keystone's catalog must list
Neutron's URL); each call is sent with its own X-OpenStack-Request-ID.
Neutron publishes its notifications on RabbitMQ; the test takes every one
of them from a queue declared exactly as sensors/eventsource.yaml declares
it and finds the call's events by that request id (they carry it as
_context_global_request_id). Then, after every call, it reads back what
Neutron says exists and what Nautobot holds, and compares them.

The same scenario runs twice, on fresh Neutron objects each time:

1. one event per process, as Argo runs it: each message through the
   Sensor's jq transform and filters (sensors/sensor.yaml, Debian's jq), the
   trigger parameter into the WorkflowTemplate's raw artifact, the
   container's command and args with the ConfigMap's environment and the
   token file (the emulation in tests/e2e/e2e.py is imported, not copied);
2. `oslo-nautobot consume`, the long-running service, on a durable queue of
   its own bound to the same exchange in Neutron's vhost. The test waits on
   its /metrics until it has handled as many messages as the EventSource
   queue received.

What Nautobot must hold for a network Neutron has (read back as admin): a
namespace named by the network id; a UCVNI (name, VNI = segmentation id,
the run's UCVNI group, tenant = project, Active) only for an overlay network
whose last create or update event carried its provider:* keys, i.e. was
made by an admin; a member's own create and update events carry none, so a
member's network has its namespace and prefixes but no UCVNI, although
Neutron has given it a VNI; per subnet a prefix (id, CIDR, tenant, Active) in
the network's namespace, or in Global for a router:external network, and no
other prefix in the namespace. For a network Neutron does not have: no
namespace, no UCVNI, and none of its subnets' prefixes anywhere.

Credentials (environment, as tests/keystone/up.sh exports them): OS_USERNAME,
OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME,
OS_REGION_NAME for admin; KEYSTONE_MEMBER_USER, KEYSTONE_MEMBER_PASSWORD and
KEYSTONE_DEMO_PROJECT_ID for the member.

Prints one PASS/FAIL line per check, a "covered:" line with the counts, and
last "N passed, M failed".
"""

import argparse
import ipaddress
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
import e2e  # noqa: E402 - the Argo emulation of the existing end-to-end test
from keystone_api import Keystone, KeystoneError  # noqa: E402

RECEIVE_TIMEOUT = 15  # seconds for a call's notifications to arrive
QUIET = 0.4           # seconds without a message before "nothing else came"
CONSUME_TIMEOUT = 60  # seconds for the service to catch up
OVERLAY = ("vxlan", "geneve", "gre")


def pair(resource, action):
    return (f"{resource}.{action}.start", f"{resource}.{action}.end")


NETWORK_CREATE, NETWORK_UPDATE, NETWORK_DELETE = (pair("network", a) for a in ("create", "update", "delete"))
SUBNET_CREATE, SUBNET_UPDATE, SUBNET_DELETE = (pair("subnet", a) for a in ("create", "update", "delete"))


def dashed(project):
    return str(uuid.UUID(project))


def same_cidr(a, b):
    try:
        return ipaddress.ip_network(a, strict=False) == ipaddress.ip_network(b, strict=False)
    except ValueError:
        return False


class Stats:
    def __init__(self):
        self.writes = self.reads = self.events = self.admitted = self.binary_runs = 0
        self.consumed = 0
        self.by_status = {}


# --------------------------------------------------------------------------
# Neutron's API


class Who:
    """A user with a real Keystone token, scoped to one project: `project`
    and `user` are Keystone's ids (32 hex digits)."""

    def __init__(self, role, token):
        self.role = role
        self.token = token
        self.project = token.project_id
        self.user = token.user_id
        self.roles = token.roles


def identities(keystone):
    """(admin, member): fresh password tokens of the admin in project admin
    and of the demo project's member."""
    env = os.environ
    admin = keystone.password_token(env["OS_USERNAME"], env["OS_PASSWORD"], project_name=env["OS_PROJECT_NAME"],
                                    user_domain=env.get("OS_USER_DOMAIN_NAME", "Default"),
                                    project_domain=env.get("OS_PROJECT_DOMAIN_NAME", "Default"))
    member = keystone.password_token(env["KEYSTONE_MEMBER_USER"], env["KEYSTONE_MEMBER_PASSWORD"],
                                     project_id=env["KEYSTONE_DEMO_PROJECT_ID"])
    return Who("admin", admin), Who("member", member)


class Neutron:
    def __init__(self, url, stats):
        self.url = url.rstrip("/")
        self.stats = stats

    def call(self, who, method, path, body=None):
        """Returns (status, parsed body, request id)."""
        request_id = f"req-{uuid.uuid4()}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/v2.0{path}", data=data, method=method, headers={
            "X-Auth-Token": who.token.id, "X-OpenStack-Request-ID": request_id, "Accept": "application/json",
            "Content-Type": "application/json"})
        if method == "GET":
            self.stats.reads += 1
        else:
            self.stats.writes += 1
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, text = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        if method != "GET":
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text.decode(errors="replace")
        return status, parsed, request_id

    def network(self, admin, id_):
        status, body, _ = self.call(admin, "GET", f"/networks/{id_}")
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"GET /networks/{id_}: {status} {body}")
        return body["network"]

    def subnets(self, admin, network_id):
        status, body, _ = self.call(admin, "GET", f"/subnets?network_id={network_id}")
        if status != 200:
            raise RuntimeError(f"GET /subnets: {status} {body}")
        return body["subnets"]

    def networks_of(self, admin, project):
        status, body, _ = self.call(admin, "GET", f"/networks?project_id={project}")
        if status != 200:
            raise RuntimeError(f"GET /networks: {status} {body}")
        return body["networks"]


# --------------------------------------------------------------------------
# The two ways from the queue into Nautobot


class OneShot:
    """Argo, emulated from the manifests: Sensor, Workflow, one process per event."""

    name = "one event per process"

    def __init__(self, args, m, nb, r, stats, group):
        self.args, self.m, self.nb, self.r, self.stats, self.group = args, m, nb, r, stats, group
        self.pod = e2e.Pod(m, os.path.join(args.work, "pod"), nb.token)

    def start(self):
        self.pod.mount_secrets()

    def handle(self, label, transformed):
        """An admitted event: the Workflow, its artifact, the container."""
        pod = f"oslo-nautobot-{uuid.uuid4().hex[:5]}"
        wf = self.m.workflow(transformed, pod)
        for path, (text, mode) in self.m.artifacts(wf).items():
            if "{{" in text:
                self.r.check(f"{label}: the artifact text holds no '{{{{'", False, text[:300])
            self.pod.write_artifact(path, text, mode)
        self.stats.binary_runs += 1
        # Events taken as they come (the ConfigMap's OS_CLOUD cleared): this
        # suite checks what each event itself carries; reading Neutron's
        # current state is tests/reconcile's.
        overrides = {"NAUTOBOT_URL": self.nb.url, "UCVNI_GROUP_NAME": self.group, "OS_CLOUD": ""}
        proc, took, summary = self.pod.run(self.args.bin, overrides)
        self.r.check(f"{label}: {transformed['body']['event_type']}: the binary exits 0 ({took * 1000:.0f} ms)",
                     proc.returncode == 0,
                     f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
        return [(x.get("kind"), x.get("result")) for x in summary.get("results", [])]

    def settled(self, label, messages):
        return True

    def stop(self):
        pass


class Consume:
    """`oslo-nautobot consume` on a queue of its own in Neutron's vhost."""

    name = "consume"
    queue = "oslo-nautobot-consume"

    def __init__(self, args, m, nb, r, stats, group):
        self.args, self.m, self.nb, self.r, self.stats, self.group = args, m, nb, r, stats, group
        self.proc = None
        self.seen = 0  # messages the EventSource queue got since the service started
        self.last = {}

    def start(self):
        x = self.m.exchange()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.metrics_addr = f"127.0.0.1:{s.getsockname()[1]}"
        s.close()
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        env.update(self.m.configmap.get("data", {}))
        env.update(NAUTOBOT_URL=self.nb.url, NAUTOBOT_TOKEN=self.nb.token, UCVNI_GROUP_NAME=self.group,
                   OS_CLOUD="")
        self.log_path = os.path.join(self.args.work, "consume.log")
        self.log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [self.args.consume_bin, "consume", "--amqp-url", self.args.amqp, "--queue", self.queue,
             "--exchange", x["name"], "--exchange-durable", str(x["durable"]).lower(),
             "--routing-key", self.m.source["routingKey"], "--metrics-addr", self.metrics_addr, "-v"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        up = False
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.http("/healthz")[0] == 200:
                up = True
                break
            time.sleep(0.2)
        self.r.check(f"[consume] the service is up and connected (/healthz 200 on {self.metrics_addr})", up,
                     self.tail())
        if not up:
            raise RuntimeError("oslo-nautobot consume did not start")
        vhost = urllib.parse.unquote(urllib.parse.urlsplit(self.args.amqp).path[1:]) or "/"
        rows = json.loads(subprocess.run(
            ["rabbitmqctl", "-q", "-p", vhost, "list_bindings", "source_name", "destination_name",
             "routing_key", "--formatter", "json"], capture_output=True, text=True, check=True).stdout)
        binds = [(b["source_name"], b["routing_key"]) for b in rows
                 if b["destination_name"] == self.queue and b["source_name"]]
        self.r.check(f"[consume] its queue {self.queue} is bound to {x['name']} with "
                     f"{self.m.source['routingKey']}", binds == [(x["name"], self.m.source["routingKey"])],
                     binds)
        self.last = self.metrics()[0]

    def http(self, path):
        try:
            with urllib.request.urlopen(f"http://{self.metrics_addr}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""
        except OSError:
            return None, ""

    def metrics(self):
        """({(event_type, code): count}, in_flight)."""
        _, text = self.http("/metrics")
        events, in_flight = {}, None
        for line in text.splitlines():
            if line.startswith("oslo_nautobot_events_total{"):
                labels, value = line[len("oslo_nautobot_events_total{"):].rsplit("} ", 1)
                kv = dict(part.split("=", 1) for part in labels.split(","))
                key = (kv["event_type"].strip('"'), int(kv["code"].strip('"')))
                events[key] = int(float(value))
            elif line.startswith("oslo_nautobot_in_flight "):
                in_flight = int(float(line.split()[1]))
        return events, in_flight

    def tail(self):
        try:
            with open(self.log_path, encoding="utf-8") as f:
                return "".join(f.readlines()[-30:])
        except OSError:
            return ""

    def handle(self, label, transformed):
        return None

    def settled(self, label, messages):
        """Waits until the service has handled every message so far; checks
        each .end was applied (exit code 0) and nothing else failed."""
        self.seen += len(messages)
        deadline = time.monotonic() + CONSUME_TIMEOUT
        while True:
            events, in_flight = self.metrics()
            if sum(events.values()) >= self.seen and in_flight == 0:
                break
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.r.check(f"{label}: consume handled the call's {len(messages)} message(s) within "
                             f"{CONSUME_TIMEOUT} s", False,
                             f"handled {sum(events.values())} of {self.seen}, in flight {in_flight}\n"
                             f"{self.tail()}")
                self.last = events
                return False
            time.sleep(0.05)
        delta = {k: v - self.last.get(k, 0) for k, v in events.items() if v != self.last.get(k, 0)}
        self.last = events
        self.stats.consumed += sum(delta.values())
        want = {}
        for d in messages:
            t = d.get("event_type", "-")
            code = 0 if t.endswith(".end") and t.split(".")[0] in ("network", "subnet") else 6
            # The metrics name only the event types consume handles; the
            # rest (the .start events here) share the label "other".
            t = t if code == 0 else "other"
            want[(t, code)] = want.get((t, code), 0) + 1
        if any(code == 0 for _, code in want):
            what = "consume applied the .end (exit code 0), had no handler for the .start (6)"
        elif want:
            what = "consume had no handler for the .start (exit code 6): nothing applied"
        else:
            what = "consume received nothing"
        return self.r.check(f"{label}: {what}", delta == want, f"got  {delta}\nwant {want}\n{self.tail()}")

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.r.check("[consume] the service stops on SIGTERM with exit 0", rc == 0, f"exit {rc}\n{self.tail()}")
        self.log.close()
        vhost = urllib.parse.unquote(urllib.parse.urlsplit(self.args.amqp).path[1:]) or "/"
        subprocess.run(["rabbitmqctl", "-q", "-p", vhost, "delete_queue", self.queue],
                       capture_output=True, text=True)


# --------------------------------------------------------------------------
# The scenario


class Scenario:
    def __init__(self, args, m, nb, neutron, queue, r, stats, path_cls, tag, who):
        self.args, self.m, self.nb, self.neutron, self.queue, self.r, self.stats = (
            args, m, nb, neutron, queue, r, stats)
        self.tag = tag
        self.sfx = uuid.uuid4().hex[:6]
        self.group = f"neutron-e2e-{self.sfx}"
        self.group_id = None
        self.admin, self.member = who
        self.path = path_cls(args, m, nb, r, stats, self.group)
        # network id → {"by": who made its last create/update event, "subnets": ids ever seen}
        self.nets = {}
        self.extra_namespaces = []

    # A call and its notifications ------------------------------------------------------

    def api(self, label, who, method, path, body=None, status=200, events=()):
        """One Neutron API call; waits for its notifications and puts each
        through the path under test. `events`: the event types the call must
        emit, in order (a successful call: .start and .end; a refused one: its
        .start only, or nothing). Returns (response body, the decoded .end or
        None, the binary's results for it or None)."""
        t0 = time.monotonic()
        got, resp, rid = self.neutron.call(who, method, path, body)
        label = f"[{self.tag}] {label}"
        self.r.check(f"{label}: Neutron answers {method} {path.split('?')[0]} with {status}", got == status,
                     f"{got} {resp}")
        end = next((e for e in events if e.endswith(".end")), None)
        messages, admitted = [], []
        end_msg, results = None, None
        deadline = time.monotonic() + RECEIVE_TIMEOUT
        while True:
            # Until the call's last expected event is in, then a quiet spell
            # to see that nothing else follows.
            types = [d.get("event_type") for d in messages]
            done = not events or events[-1] in types
            timeout = QUIET if done else max(0.05, deadline - time.monotonic())
            msg = self.queue.receive(timeout=timeout)
            if msg is None:
                break
            data = self.m.event_data(msg)
            if data is None:
                self.r.check(f"{label}: every message on the queue is JSON", False, msg.body[:300])
                continue
            transformed, err = self.m.transform(self.args.jq, data)
            if transformed is None:
                self.r.check(f"{label}: the Sensor's jq transform succeeds", False, err)
                continue
            d = transformed["body"]
            self.stats.events += 1
            messages.append(d)
            if self.m.admitted(transformed):
                self.stats.admitted += 1
                admitted.append(d.get("event_type"))
                out = self.path.handle(label, transformed)
                if d.get("event_type") == end and d.get("_context_global_request_id") == rid:
                    end_msg, results = d, out
        types = [d.get("event_type") for d in messages]
        self.r.check(f"{label}: the queue got exactly {', '.join(events) or 'nothing'}, "
                     "with this call's request id",
                     types == list(events) and all(d.get("_context_global_request_id") == rid for d in messages),
                     f"got {[(d.get('event_type'), d.get('_context_global_request_id')) for d in messages]}, "
                     f"request id {rid}")
        self.r.check(f"{label}: the Sensor passes {end or 'none of them'}{' only' if end else ''}",
                     admitted == ([end] if end else []), admitted)
        t = time.monotonic()
        self.path.settled(label, messages)
        if os.environ.get("OSLO_NAUTOBOT_NEUTRON_DEBUG"):
            print(f"  {label}: call+queue {t - t0:.2f}s settle {time.monotonic() - t:.2f}s", file=sys.stderr)
        return resp, end_msg, results

    # Nautobot against Neutron ------------------------------------------------------------

    def track(self, net, by):
        info = self.nets.setdefault(net["id"], {"by": by, "subnets": set(), "name": net["name"]})
        info["by"] = by
        info["name"] = net["name"]
        info["subnets"].update(net.get("subnets", []))

    def expected_ucvni(self, net):
        """Neutron's network → the UCVNI Nautobot must hold (None: none)."""
        info = self.nets[net["id"]]
        seg = net.get("provider:segmentation_id")
        if net.get("provider:network_type") not in OVERLAY or seg is None or info["by"] != "admin":
            return None
        return {"name": net["name"], "ucvni_id": seg, "group": self.group, "status": "Active",
                "tenant": dashed(net["project_id"])}

    def mismatches(self, net_id):
        """What differs between Neutron and Nautobot for one network."""
        info = self.nets[net_id]
        net = self.neutron.network(self.admin, net_id)
        out = []
        ns = self.nb.namespace(net_id)
        u = self.nb.ucvni(net_id)
        if net is None:
            if ns is not None:
                out.append("Neutron has no such network, Nautobot still has its namespace")
            if u is not None:
                out.append("Neutron has no such network, Nautobot still has its UCVNI")
            for sid in sorted(info["subnets"]):
                p = self.nb.prefix(sid)
                if p is not None:
                    out.append(f"Neutron has no such network, Nautobot still has prefix {sid} "
                               f"{p.get('prefix')} in {(p.get('namespace') or {}).get('name')}")
            return out, None
        if ns is None:
            out.append("no namespace named by the network id")
        want_u = self.expected_ucvni(net)
        got_u = None if u is None else {
            "name": u.get("name"), "ucvni_id": u.get("ucvni_id"),
            "group": (u.get("ucvni_group") or {}).get("name"), "status": (u.get("status") or {}).get("name"),
            "tenant": (u.get("tenant") or {}).get("id")}
        if got_u != want_u:
            out.append(f"UCVNI: Nautobot {got_u}, expected {want_u} (Neutron: "
                       f"{net.get('provider:network_type')} {net.get('provider:segmentation_id')}, "
                       f"last written by {info['by']})")
        subnets = self.neutron.subnets(self.admin, net_id)
        info["subnets"].update(s["id"] for s in subnets)
        live = {s["id"] for s in subnets}
        external = bool(net.get("router:external"))
        want_ns = "Global" if external else net_id
        for s in subnets:
            p = self.nb.prefix(s["id"])
            if p is None:
                out.append(f"subnet {s['id']} {s['cidr']}: no prefix")
                continue
            got = {"prefix": p.get("prefix"), "namespace": (p.get("namespace") or {}).get("name"),
                   "status": (p.get("status") or {}).get("name"), "tenant": (p.get("tenant") or {}).get("id")}
            want = {"prefix": s["cidr"], "namespace": want_ns, "status": "Active",
                    "tenant": dashed(s["project_id"])}
            if not same_cidr(got["prefix"], want["prefix"]):
                out.append(f"subnet {s['id']}: prefix {got['prefix']}, Neutron's cidr {s['cidr']}")
            got.pop("prefix")
            want.pop("prefix")
            if got != want:
                out.append(f"subnet {s['id']} {s['cidr']}: Nautobot {got}, expected {want}")
        for sid in sorted(info["subnets"] - live):
            if self.nb.prefix(sid) is not None:
                out.append(f"subnet {sid} is gone from Neutron, its prefix is still in Nautobot")
        if ns is not None:
            status, body = self.nb.call("GET", f"/api/ipam/prefixes/?namespace={ns['id']}&limit=1000")
            held = {p["id"] for p in (body or {}).get("results", [])} if status == 200 else None
            want_held = set() if external else live
            if held != want_held:
                out.append(f"namespace holds prefixes {sorted(held or [])}, Neutron's subnets there: "
                           f"{sorted(want_held)}")
        return out, net

    def compare(self, label, *net_ids):
        for net_id in net_ids:
            diff, net = self.mismatches(net_id)
            name = self.nets[net_id]["name"] if net is None else net["name"]
            what = "gone from both" if net is None else "Nautobot matches Neutron"
            self.r.check(f"[{self.tag}] {label}: {what}: network {name} ({net_id[:8]}…)", not diff,
                         "\n".join(diff))

    def snapshot(self):
        """Counts of what Nautobot holds (namespaces, prefixes, UCVNIs, tenants)."""
        out = {}
        for path in ("/api/ipam/namespaces/", "/api/ipam/prefixes/", "/api/plugins/undercloud-vni/ucvnis/",
                     "/api/tenancy/tenants/"):
            status, body = self.nb.call("GET", f"{path}?limit=1")
            out[path] = (body or {}).get("count") if status == 200 else status
        return out

    # The steps -----------------------------------------------------------------------------

    def run(self):
        r, A, M = self.r, self.admin, self.member
        status, body = self.nb.call("POST", "/api/plugins/undercloud-vni/ucvni-groups/", {"name": self.group})
        r.check(f"[{self.tag}] Nautobot: UCVNI group {self.group} created", status == 201, f"{status} {body}")
        self.group_id = (body or {}).get("id") if status == 201 else None
        self.path.start()
        o2, o3 = random.randrange(0, 256), random.randrange(0, 256)
        v6 = f"fd{random.randrange(0, 256):02x}:{random.randrange(0, 65536):x}"

        # --- as admin ---------------------------------------------------------------
        net, end, res = self.api("admin: create an overlay network", A, "POST", "/networks",
                                 {"network": {"name": f"ne-{self.sfx}-overlay"}}, 201, NETWORK_CREATE)
        net = net["network"]
        self.track(net, "admin")
        if end:
            p = end["payload"]["network"]
            r.check(f"[{self.tag}] admin's network.create.end carries provider:* (vxlan, VNI "
                    f"{net['provider:segmentation_id']})", p.get("provider:network_type") == "vxlan"
                    and p.get("provider:segmentation_id") == net["provider:segmentation_id"], p)
        if res is not None:
            r.check(f"[{self.tag}] binary: namespace created, UCVNI created", ("namespace", "created") in res
                    and ("ucvni", "created") in res, res)
        self.compare("overlay network created", net["id"])

        s4, _, _ = self.api("admin: IPv4 subnet", A, "POST", "/subnets",
                            {"subnet": {"network_id": net["id"], "ip_version": 4, "name": "v4",
                                        "cidr": f"10.{o2}.{o3}.0/24"}}, 201, SUBNET_CREATE)
        s4 = s4["subnet"]
        s6, _, _ = self.api("admin: IPv6 subnet", A, "POST", "/subnets",
                            {"subnet": {"network_id": net["id"], "ip_version": 6, "name": "v6",
                                        "cidr": f"{v6}::/64"}}, 201, SUBNET_CREATE)
        s6 = s6["subnet"]
        self.compare("IPv4 and IPv6 subnets created", net["id"])

        self.api("admin: rename the network", A, "PUT", f"/networks/{net['id']}",
                 {"network": {"name": f"ne-{self.sfx}-overlay-renamed"}}, 200, NETWORK_UPDATE)
        # Drift made by hand in Nautobot: the comparison sees it, and the next
        # event of that subnet puts it back.
        status, body = self.nb.call("PATCH", f"/api/ipam/prefixes/{s4['id']}/", {"status": {"name": "Reserved"}})
        diff, _ = self.mismatches(net["id"])
        r.check(f"[{self.tag}] control: a prefix set to Reserved by hand is a mismatch the comparison reports",
                status == 200 and any("Reserved" in d for d in diff), f"{status} {body}\n{diff}")
        self.api("admin: rename the IPv4 subnet", A, "PUT", f"/subnets/{s4['id']}",
                 {"subnet": {"name": "v4-renamed"}}, 200, SUBNET_UPDATE)
        self.compare("network and subnet renamed", net["id"])

        vlan, _, res = self.api("admin: VLAN provider network", A, "POST", "/networks",
                                {"network": {"name": f"ne-{self.sfx}-vlan", "provider:network_type": "vlan",
                                             "provider:physical_network": "physnet1"}}, 201, NETWORK_CREATE)
        vlan = vlan["network"]
        self.track(vlan, "admin")
        if res is not None:
            r.check(f"[{self.tag}] binary: VLAN network → namespace, UCVNI skipped",
                    ("namespace", "created") in res and ("ucvni", "skipped") in res, res)
        self.compare(f"VLAN network (VLAN {vlan['provider:segmentation_id']}) created", vlan["id"])

        ext, _, res = self.api("admin: external flat network", A, "POST", "/networks",
                               {"network": {"name": f"ne-{self.sfx}-external", "router:external": True,
                                            "provider:network_type": "flat",
                                            "provider:physical_network": f"ext-{self.sfx}"}},
                               201, NETWORK_CREATE)
        ext = ext["network"]
        self.track(ext, "admin")
        ext_sub, end, _ = self.api("admin: subnet of the external network", A, "POST", "/subnets",
                                   {"subnet": {"network_id": ext["id"], "ip_version": 4, "name": "ext",
                                               "cidr": f"198.{18 + o2 % 2}.{o3}.0/24"}}, 201, SUBNET_CREATE)
        ext_sub = ext_sub["subnet"]
        if end:
            r.check(f"[{self.tag}] the external subnet's event says router:external true",
                    end["payload"]["subnet"].get("router:external") is True, end["payload"]["subnet"])
        self.compare("external network and subnet created (prefix in Global)", ext["id"])

        bulk, end, _ = self.api("admin: bulk create of two networks", A, "POST", "/networks",
                                {"networks": [{"name": f"ne-{self.sfx}-bulk-a"},
                                              {"name": f"ne-{self.sfx}-bulk-b"}]},
                                201, NETWORK_CREATE)
        bulk = bulk["networks"]
        for n in bulk:
            self.track(n, "admin")
        if end:
            r.check(f"[{self.tag}] bulk network.create.end: one event, payload networks[2]",
                    len(end["payload"].get("networks", [])) == 2, list(end["payload"]))
        bsubs, end, _ = self.api("admin: bulk create of two subnets", A, "POST", "/subnets",
                                 {"subnets": [{"network_id": bulk[0]["id"], "ip_version": 4,
                                               "cidr": f"10.{o2}.{(o3 + 1) % 256}.0/24"},
                                              {"network_id": bulk[1]["id"], "ip_version": 6,
                                               "cidr": f"{v6}:1::/64"}]}, 201, SUBNET_CREATE)
        if end:
            r.check(f"[{self.tag}] bulk subnet.create.end: one event, payload subnets[2]",
                    len(end["payload"].get("subnets", [])) == 2, list(end["payload"]))
        self.compare("bulk creates", *(n["id"] for n in bulk))

        # --- as an ordinary project member ------------------------------------------
        mnet, end, res = self.api("member: create a network", M, "POST", "/networks",
                                  {"network": {"name": f"ne-{self.sfx}-member"}}, 201, NETWORK_CREATE)
        mnet = mnet["network"]
        self.track(mnet, "member")
        if end:
            p = end["payload"]["network"]
            r.check(f"[{self.tag}] member's network.create.end has no provider:* keys",
                    not [k for k in p if k.startswith("provider:")], sorted(p))
        if res is not None:
            r.check(f"[{self.tag}] binary: member's network → namespace, UCVNI skipped",
                    ("namespace", "created") in res and ("ucvni", "skipped") in res, res)
        seen = self.neutron.network(A, mnet["id"])
        r.check(f"[{self.tag}] Neutron (admin view) gave the member's network VNI "
                f"{seen.get('provider:segmentation_id')}, Nautobot holds no UCVNI for it",
                seen.get("provider:network_type") == "vxlan" and seen.get("provider:segmentation_id")
                and self.nb.ucvni(mnet["id"]) is None, seen)
        msub, _, _ = self.api("member: create a subnet", M, "POST", "/subnets",
                              {"subnet": {"network_id": mnet["id"], "ip_version": 4,
                                          "cidr": f"10.{o2}.{(o3 + 2) % 256}.0/24"}}, 201, SUBNET_CREATE)
        msub = msub["subnet"]
        self.api("member: rename the network", M, "PUT", f"/networks/{mnet['id']}",
                 {"network": {"name": f"ne-{self.sfx}-member-renamed"}}, 200, NETWORK_UPDATE)
        self.compare("member's network and subnet (namespace and prefix, no UCVNI)", mnet["id"])

        # --- calls Neutron refuses change nothing -----------------------------------
        # A namespace named by a network id Neutron does not know: a delete of
        # that missing network must leave it alone.
        ghost = str(uuid.uuid4())
        status, body = self.nb.call("POST", "/api/ipam/namespaces/", {"name": ghost})
        self.extra_namespaces.append(ghost)
        r.check(f"[{self.tag}] Nautobot: a namespace named by a network id Neutron does not know",
                status == 201, f"{status} {body}")
        before = self.snapshot()
        self.api("member: provider network (refused by policy)", M, "POST", "/networks",
                 {"network": {"name": f"ne-{self.sfx}-denied", "provider:network_type": "vlan",
                              "provider:physical_network": "physnet1"}}, 403, NETWORK_CREATE[:1])
        self.api("member: delete the admin's VLAN network (another project's)", M, "DELETE",
                 f"/networks/{vlan['id']}", None, 404, NETWORK_DELETE[:1])
        self.api("admin: delete a missing network", A, "DELETE", f"/networks/{ghost}", None, 404,
                 NETWORK_DELETE[:1])
        self.api("admin: subnet with an invalid CIDR (rejected before any event)", A, "POST", "/subnets",
                 {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/33"}}, 400, ())
        after = self.snapshot()
        r.check(f"[{self.tag}] refused calls: Nautobot's namespaces, prefixes, UCVNIs and tenants unchanged",
                after == before, f"before {before}\nafter  {after}")
        r.check(f"[{self.tag}] refused delete of a missing network: the namespace named by its id is untouched",
                self.nb.namespace(ghost) is not None)
        r.check(f"[{self.tag}] refused calls: Neutron has no network named ne-{self.sfx}-denied",
                not [n for n in self.neutron.networks_of(A, M.project) if n["name"].endswith("-denied")])
        self.compare("after the refused calls", vlan["id"], mnet["id"], net["id"])

        # --- an admin updates the member's network: now its event has provider:* ---
        self.api("admin: rename the member's network", A, "PUT", f"/networks/{mnet['id']}",
                 {"network": {"name": f"ne-{self.sfx}-member-by-admin"}}, 200, NETWORK_UPDATE)
        self.track(self.neutron.network(A, mnet["id"]), "admin")
        self.compare("member's network updated by an admin (UCVNI, tenant = the member's project)", mnet["id"])

        # --- member deletes ------------------------------------------------------------
        self.api("member: delete the subnet", M, "DELETE", f"/subnets/{msub['id']}", None, 204,
                 SUBNET_DELETE)
        self.compare("member's subnet deleted", mnet["id"])
        _, end, _ = self.api("member: delete the network", M, "DELETE", f"/networks/{mnet['id']}", None, 204,
                             NETWORK_DELETE)
        if end:
            p = end["payload"]["network"]
            r.check(f"[{self.tag}] member's network.delete.end snapshot carries provider:* keys",
                    "provider:segmentation_id" in p, sorted(p))
        self.compare("member's network deleted", mnet["id"])

        # --- admin deletes: subnets, then networks ----------------------------------
        for sub, what in ((s6, "IPv6"), (s4, "IPv4")):
            self.api(f"admin: delete the {what} subnet", A, "DELETE", f"/subnets/{sub['id']}", None, 204,
                     SUBNET_DELETE)
        self.compare("subnets deleted", net["id"])
        self.api("admin: delete the emptied network", A, "DELETE", f"/networks/{net['id']}", None, 204,
                 NETWORK_DELETE)
        self.compare("network deleted", net["id"])

        # --- networks that still have subnets: no subnet events at all -------------
        bsubs = bsubs["subnets"]
        for n, sub, what in ((bulk[0], bsubs[0], "bulk network A with its IPv4 subnet"),
                             (bulk[1], bsubs[1], "bulk network B with its IPv6 subnet"),
                             (ext, ext_sub, "external network with its subnet (prefix in Global)")):
            _, end, _ = self.api(f"admin: delete the {what}", A, "DELETE", f"/networks/{n['id']}", None, 204,
                                 NETWORK_DELETE)
            if end:
                listed = end["payload"]["network"].get("subnets")
                r.check(f"[{self.tag}] its network.delete.end still lists the subnet", listed == [sub["id"]],
                        listed)
            self.compare(f"{what} deleted", n["id"])
        r.check(f"[{self.tag}] Global holds no prefix {ext_sub['cidr']} any more",
                self.nb.prefix(ext_sub["id"]) is None)
        self.api("admin: delete the VLAN network", A, "DELETE", f"/networks/{vlan['id']}", None, 204,
                 NETWORK_DELETE)

        # --- the end: both sides empty -------------------------------------------------
        self.compare("the end", *self.nets)
        left = self.neutron.networks_of(A, A.project) + self.neutron.networks_of(A, M.project)
        r.check(f"[{self.tag}] the end: Neutron has no network of either project", not left, left)
        held = []
        for who in (A, M):
            for path in ("/api/ipam/prefixes/", "/api/plugins/undercloud-vni/ucvnis/"):
                status, body = self.nb.call("GET", f"{path}?tenant_id={dashed(who.project)}")
                if status == 400 and "tenant_id" in (body or {}):
                    continue  # not even the tenant exists
                if status != 200 or body.get("count"):
                    held.append(f"{path} tenant {who.role}: {status} {(body or {}).get('count', body)}")
        r.check(f"[{self.tag}] the end: Nautobot holds no prefix and no UCVNI of either project", not held,
                "\n".join(held))

    # Clean-up --------------------------------------------------------------------------------

    def cleanup_neutron(self):
        """Neutron objects a failed run left (their events go through the path)."""
        for who in (self.member, self.admin):
            try:
                for n in self.neutron.networks_of(self.admin, who.project):
                    self.api(f"clean-up: delete {n['name']}", self.admin, "DELETE", f"/networks/{n['id']}",
                             None, 204, NETWORK_DELETE)
            except Exception as e:  # noqa: BLE001 - best effort
                self.r.check(f"[{self.tag}] clean-up of Neutron ({type(e).__name__}: {e})", False)

    def cleanup_nautobot(self):
        nb = self.nb
        for who in (self.admin, self.member):
            tenant = dashed(who.project)
            for path in ("/api/ipam/prefixes/", "/api/plugins/undercloud-vni/ucvnis/"):
                _, body = nb.call("GET", f"{path}?tenant_id={tenant}&limit=1000")
                for o in (body or {}).get("results", []):
                    nb.call("DELETE", f"{path}{o['id']}/")
        for name in list(self.nets) + self.extra_namespaces:
            ns = nb.namespace(name)
            if ns:
                _, body = nb.call("GET", f"/api/ipam/prefixes/?namespace={ns['id']}&limit=1000")
                for p in (body or {}).get("results", []):
                    nb.call("DELETE", f"/api/ipam/prefixes/{p['id']}/")
                nb.call("DELETE", f"/api/ipam/namespaces/{ns['id']}/")
            if nb.ucvni(name):
                nb.call("DELETE", f"/api/plugins/undercloud-vni/ucvnis/{name}/")
        for who in (self.admin, self.member):
            nb.call("DELETE", f"/api/tenancy/tenants/{dashed(who.project)}/")
        if self.group_id:
            nb.call("DELETE", f"/api/plugins/undercloud-vni/ucvni-groups/{self.group_id}/")
        left = [n for n in list(self.nets) + self.extra_namespaces if nb.namespace(n)]
        self.r.check(f"[{self.tag}] clean-up: the run's objects are gone from Nautobot", not left, left)


def keystone_ready(keystone, args, r):
    """The identities the scenario acts as, and Neutron in the catalog."""
    try:
        admin, member = identities(keystone)
    except (KeystoneError, OSError) as e:
        r.check(f"Keystone issues password tokens to admin and to the demo member ({e})", False)
        return False
    demo = os.environ["KEYSTONE_DEMO_PROJECT_ID"]
    ok = r.check(f"Keystone: admin's token is scoped to project admin ({admin.project[:8]}…) with role admin",
                 "admin" in admin.roles
                 and admin.token.body.get("project", {}).get("name") == os.environ["OS_PROJECT_NAME"],
                 admin.token.body.get("project"))
    ok &= r.check(f"Keystone: the member's token is scoped to project demo ({demo[:8]}…), roles member and "
                  "reader, not admin", member.project == demo and {"member", "reader"} <= set(member.roles)
                  and "admin" not in member.roles, f"{member.project} {member.roles}")
    region = os.environ.get("OS_REGION_NAME")
    listed = {i: admin.token.endpoint("network", i, region) for i in ("public", "internal", "admin")}
    ok &= r.check(f"Keystone's catalog lists Neutron at {args.neutron} (network: public, internal, admin)",
                  all(url and url.rstrip("/") == args.neutron.rstrip("/") for url in listed.values()), listed)
    status, body, _ = Neutron(args.neutron, Stats()).call(admin, "GET", "/networks?limit=1")
    ok &= r.check("Neutron accepts admin's Keystone token (GET /v2.0/networks: 200)", status == 200,
                  f"{status} {body}\n(a Neutron started before Keystone was brought up again refuses every "
                  "token: bring Neutron up again, tests/neutron/up.sh or tests/openstack/up.sh)")
    return ok


def leftovers(neutron, keystone):
    """Networks an earlier run left in either project (on a Neutron that
    outlived it) are deleted before anything listens."""
    admin, member = identities(keystone)
    for who in (member, admin):
        for n in neutron.networks_of(admin, who.project):
            status, _, _ = neutron.call(admin, "DELETE", f"/networks/{n['id']}")
            print(f"note: deleted {n['name']} ({n['id']}), left by an earlier run: {status}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True)
    p.add_argument("--bin", required=True, help="the built oslo-nautobot binary")
    p.add_argument("--consume-bin", default="", help="a build with the consume feature (empty: skip that path)")
    p.add_argument("--jq", required=True, help="Debian's jq")
    p.add_argument("--neutron", required=True, help="Neutron API base URL (as up.sh reports it)")
    p.add_argument("--keystone", required=True, help="Keystone's identity API, http://HOST:PORT/v3")
    p.add_argument("--amqp", required=True, help="amqp://user:pass@host:port/vhost of Neutron's notifications")
    p.add_argument("--work", required=True, help="scratch directory")
    p.add_argument("--paths", default="oneshot,consume")
    args = p.parse_args()

    r = e2e.Report()
    stats = Stats()
    t0 = time.monotonic()
    for var in ("NAUTOBOT_URL", "NAUTOBOT_TOKEN", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME",
                "KEYSTONE_MEMBER_USER", "KEYSTONE_MEMBER_PASSWORD", "KEYSTONE_DEMO_PROJECT_ID"):
        if not os.environ.get(var):
            r.check(f"{var} is set", False)
            r.summary()
            return 1
    nb = e2e.Nautobot(os.environ["NAUTOBOT_URL"], os.environ["NAUTOBOT_TOKEN"])
    keystone = Keystone(args.keystone)
    queue = None
    try:
        if not keystone_ready(keystone, args, r):
            raise RuntimeError("no usable Keystone identities (see the failed checks above)")
        neutron = Neutron(args.neutron, stats)
        leftovers(Neutron(args.neutron, Stats()), keystone)
        m = e2e.Manifests(args.repo)
        # The EventSource's queue: every path reads Neutron's notifications
        # from it (consume reads its own copy too).
        queue = e2e.Consumer(args.amqp, m)
        paths = []
        for name in args.paths.split(","):
            if name == "oneshot":
                paths.append((OneShot, "one-shot"))
            elif name == "consume":
                if args.consume_bin:
                    paths.append((Consume, "consume"))
                else:
                    print("SKIP: consume path: no build with the consume feature", flush=True)
        for cls, tag in paths:
            s = Scenario(args, m, nb, neutron, queue, r, stats, cls, tag, identities(keystone))
            try:
                s.run()
            except e2e.Unsupported as e:
                r.check(f"[{tag}] the manifests use an Argo feature this test does not emulate: {e}", False)
            except Exception as e:  # noqa: BLE001 - a crash is one failed check
                import traceback
                r.check(f"[{tag}] the scenario ran to the end ({type(e).__name__}: {e})", False,
                        traceback.format_exc())
            finally:
                s.cleanup_neutron()
                s.path.stop()
                s.cleanup_nautobot()
    except Exception as e:  # noqa: BLE001
        import traceback
        r.check(f"neutron_e2e.py ran ({type(e).__name__}: {e})", False, traceback.format_exc())
    finally:
        if queue is not None:
            queue.close()
    codes = ", ".join(f"{n}×{c}" for c, n in sorted(stats.by_status.items()))
    print(f"covered: {stats.writes} Neutron API calls ({codes}), {stats.reads} Neutron reads, "
          f"{stats.events} notifications ({stats.admitted} passed the Sensor; {stats.binary_runs} binary runs, "
          f"{stats.consumed} handled by consume) in {time.monotonic() - t0:.0f} s", flush=True)
    r.summary()
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
