#!/usr/bin/env python3
"""Keystone projects → Nautobot tenants, against the real Keystone, Neutron and Nautobot.

Run through run.sh, which provides Keystone and Neutron (tests/openstack/up.sh,
or the running ones of tests/run.sh), the two binaries (the plain build and
the one with the consume feature), jq, and NAUTOBOT_URL / NAUTOBOT_TOKEN,
KEYSTONE_*, OS_* and NEUTRON_* in the environment.

Every change to Keystone and Neutron is a real API call with a real admin
token. Keystone publishes its notifications (exchange "keystone", routing key
notifications.info, in KEYSTONE_AMQP_VHOST); the suite takes them from a
durable queue of its own, declared and bound exactly as
sensors/eventsource-keystone.yaml declares the EventSource's (only the queue's
name differs), and picks each call's event by the project id it names
(payload.target.id in CADF, payload.resource_info in the basic format).
Neutron's events for the networks come the same way from a queue of its own
on the "neutron" exchange (sensors/eventsource.yaml).

The one-shot path is Argo's, emulated from the manifests as tests/e2e/e2e.py
does it (imported, not copied): the Sensor's jq transform and filters
(sensors/sensor-keystone.yaml for Keystone's events, sensor.yaml for
Neutron's), the Workflow's artifact, the container's command with the
ConfigMap's environment. With credentials the container also gets the OS_*
variables of the environment (admin; OS_CLOUD cleared); without, OS_CLOUD is
cleared and no OS_* variable is set.

Scenarios:
 1. CADF, one event per process, with credentials: a project created in the
    Default domain → its tenant (id = the project's UUID, name, description,
    tenant group "Default", the run's tag); renamed → renamed; a second
    domain with a project of the same name → "<domain>/<name>", both
    tenants side by side; the domain's own identity.project.updated (sent
    for every domain update) → skipped, nothing changes; deletes → gone.
    Requests per event are printed as FIGURE lines.
 2. The basic format (payload {"resource_info", "request_id"}), built for a
    real project as Keystone 30 builds it (the samples in
    /work/shared/events/keystone-30/basic): the same tenants.
 3. A placeholder replaced: a network of a fresh project applied without
    credentials → a tenant named by the 32-hex project id; the project's
    event with credentials → the same tenant, the real name.
 4. A project that still owns a network: its identity.project.deleted →
    exit 8, Nautobot's 409 names the dependent prefix and UCVNI, the tenant
    is unchanged; `reconcile` keeps it while the network exists; once the
    network is gone, `reconcile --prune` removes the network's objects and
    then the tenant.
 5. `oslo-nautobot consume --exchange keystone` with credentials: create,
    rename, delete, with Nautobot polled after each; interleaved events of
    two projects keep each project's order.
 6. Without credentials: created → a placeholder only, deleted → gone.

Isolation: names ten-<hex>-…, tag and UCVNI group ten-<hex>; everything the
run creates (Keystone projects and domains, Neutron networks, Nautobot
tenants, tenant groups, namespaces, prefixes, UCVNIs, the group and the tag,
RabbitMQ queues) is removed at the end, failed or not. What an earlier,
killed run left (names ten-…, queues oslo-nautobot-tenants-…) is removed at
the start: in Keystone, Neutron and RabbitMQ at once, in Nautobot (the tag
ten-<hex> and what carries it, its UCVNI group, the tenant groups ten-<hex>-…)
once the tag is older than OSLO_NAUTOBOT_TENANTS_LEFTOVER_MINUTES (15), so
that a run against the same Nautobot from another stack is left alone.

Prints one PASS/FAIL line per check, FIGURE lines, and last "N passed, M failed".
"""

import argparse
import copy
import ctypes
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
import types
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
import e2e  # noqa: E402 - the Argo emulation of the end-to-end test
from keystone_api import Keystone, KeystoneError  # noqa: E402
from testlib import AmqpChannel, Nautobot, Report, dashed, free_port  # noqa: E402

TENANTS = "/api/tenancy/tenants/"
TENANT_GROUPS = "/api/tenancy/tenant-groups/"
NAMESPACES = "/api/ipam/namespaces/"
PREFIXES = "/api/ipam/prefixes/"
UCVNIS = "/api/plugins/undercloud-vni/ucvnis/"
UCVNI_GROUPS = "/api/plugins/undercloud-vni/ucvni-groups/"
TAGS = "/api/extras/tags/"
QUEUE_PREFIX = "oslo-nautobot-tenants-"
RECEIVE_TIMEOUT = 15  # seconds for an API call's notification to arrive
CONSUME_TIMEOUT = 60  # seconds for the service to catch up


def note(text):
    print(f"[tenants.py {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def text_of(body):
    return body.decode() if isinstance(body, (bytes, bytearray)) else body


def decoded(msg):
    """The oslo message of a delivery (the envelope's "oslo.message" parsed)."""
    try:
        body = json.loads(text_of(msg.body))
        return json.loads(body["oslo.message"]) if "oslo.message" in body else body
    except (ValueError, KeyError, TypeError):
        return {}


def named_project(d):
    """The project (or domain) id a Keystone notification names."""
    p = d.get("payload") or {}
    return (p.get("target") or {}).get("id") or p.get("resource_info")


def keystone_event(event_type, project):
    return lambda d: d.get("event_type") == event_type and named_project(d) == project


def neutron_event(event_type, kind, id_):
    return lambda d: d.get("event_type") == event_type and ((d.get("payload") or {}).get(kind) or {}).get("id") == id_


def basic_delivery(event_type, project, publisher_id):
    """A delivery as Keystone 30 sends it with notification_format = basic
    (events/keystone-30/basic): payload resource_info and request_id only,
    no _context_* keys, the same envelope and properties as CADF's."""
    message = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": publisher_id,
        "event_type": event_type,
        "priority": "INFO",
        "payload": {"resource_info": project, "request_id": f"req-{uuid.uuid4()}"},
        "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "_unique_id": uuid.uuid4().hex,
    }
    body = json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(message)})
    return types.SimpleNamespace(
        body=body, delivery_info={"exchange": "keystone", "routing_key": "notifications.info"},
        properties={"content_type": "application/json", "content_encoding": "utf-8", "delivery_mode": 2,
                    "priority": 0, "application_headers": {}})


# --------------------------------------------------------------------------
# RabbitMQ: the suite's own queues, declared as the EventSources declare theirs


class Listener:
    """A durable queue of the suite's own, declared and bound as the
    EventSource of `m` declares its queue (only the name differs), and a
    backlog of what came in but was not asked for yet."""

    def __init__(self, url, m, queue):
        self.m = copy.copy(m)
        self.m.source = copy.deepcopy(m.source)
        self.m.source.setdefault("queueDeclare", {})["name"] = queue
        self.queue = queue
        self.consumer = e2e.Consumer(url, self.m)
        self.backlog = []
        self.order = []  # every decoded message, in arrival order

    def take(self, predicate, timeout=RECEIVE_TIMEOUT):
        """The first message (delivery, decoded) the predicate accepts, or
        (None, None) once nothing more came within the timeout."""
        for i, (msg, d) in enumerate(self.backlog):
            if predicate(d):
                del self.backlog[i]
                return msg, d
        deadline = time.monotonic() + timeout
        while True:
            msg = self.consumer.receive(timeout=max(0.05, deadline - time.monotonic()))
            if msg is None:
                return None, None
            d = decoded(msg)
            self.order.append(d)
            if predicate(d):
                return msg, d
            self.backlog.append((msg, d))
            if time.monotonic() > deadline:
                return None, None

    def close(self):
        try:
            self.consumer.ch.queue_delete(self.queue)
        except Exception as e:  # noqa: BLE001 - reported by the clean-up check
            note(f"deleting queue {self.queue}: {e}")
        self.consumer.close()


def die_with_parent():
    """In the child, before exec: SIGTERM when this test dies (Linux
    prctl PR_SET_PDEATHSIG), so that no service outlives a killed run."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def rabbit_queues(vhost):
    out = subprocess.run(["rabbitmqctl", "-q", "-p", vhost, "list_queues", "name", "--formatter", "json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return [q["name"] for q in json.loads(out.stdout or "[]")]


# --------------------------------------------------------------------------
# The binary


class Run:
    def __init__(self, proc, took, summary):
        self.code = proc.returncode
        self.stdout, self.stderr = proc.stdout, proc.stderr
        self.took = took
        self.summary = summary
        self.results = [(x.get("kind"), x.get("result")) for x in summary.get("results", [])]

    def detail(self):
        return f"exit {self.code}\nstdout: {self.stdout.strip()[-1500:]}\nstderr: {self.stderr.strip()[-1500:]}"


class Suite:
    def __init__(self, args, r):
        self.args, self.r = args, r
        self.env = os.environ
        self.sfx = uuid.uuid4().hex[:8]
        self.tag = self.group = f"ten-{self.sfx}"
        self.nb = Nautobot(self.env["NAUTOBOT_URL"], self.env["NAUTOBOT_TOKEN"])
        self.keystone = Keystone(args.keystone)
        self.admin = self.keystone.password_token(
            self.env["OS_USERNAME"], self.env["OS_PASSWORD"], project_name=self.env["OS_PROJECT_NAME"],
            user_domain=self.env.get("OS_USER_DOMAIN_NAME", "Default"),
            project_domain=self.env.get("OS_PROJECT_DOMAIN_NAME", "Default"))
        self.ks_vhost = self.env["KEYSTONE_AMQP_VHOST"]
        self.nt_vhost = urllib.parse.unquote(urllib.parse.urlsplit(args.neutron_amqp).path[1:]) or "/"
        # What the run made, for the clean-up.
        self.projects, self.domains, self.networks, self.subnets = [], [], [], []
        self.domain_groups = []
        self.queues = []
        self.listeners = []
        self.consume = None
        self.group_id = None
        self.figures = []
        self.publisher_id = None
        self.last_msg = None
        self.started = None  # Nautobot's clock, when the run began
        self.default_group_before = None

    def check(self, name, ok, detail=""):
        return self.r.check(name, ok, detail)

    def name(self, what):
        return f"ten-{self.sfx}-{what}"

    # Keystone and Neutron ----------------------------------------------------------------

    def ks(self, method, path, body=None, ok=(200, 201, 204)):
        return self.keystone.must(self.admin, method, path, body, ok=ok)

    def create_project(self, what, domain="default", description=None):
        p = self.ks("POST", "/projects", {"project": {
            "name": self.name(what), "domain_id": domain, "enabled": True,
            "description": description if description is not None else f"the {what} team of run {self.sfx}"}})
        self.projects.append(p["project"]["id"])
        return p["project"]

    def neutron(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.args.neutron.rstrip('/')}/v2.0{path}", data=data, method=method,
                                     headers={"X-Auth-Token": self.admin.id, "Accept": "application/json",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, text = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        return status, (json.loads(text) if text else None)

    # Nautobot --------------------------------------------------------------------------------

    def tenant(self, project):
        t = self.nb.get(f"{TENANTS}{dashed(project)}/")
        if t is None:
            return None
        return {"id": t["id"], "name": t["name"], "description": t.get("description"),
                "group": (t.get("tenant_group") or {}).get("name"),
                "tags": sorted(x["name"] for x in t.get("tags") or [])}

    def want_tenant(self, project, name, description, group="Default"):
        return {"id": dashed(project), "name": name, "description": description, "group": group,
                "tags": [self.tag]}

    def placeholder(self, project):
        return {"id": dashed(project), "name": project, "description": "", "group": None, "tags": [self.tag]}

    def by_name(self, path, name):
        status, body = self.nb.call("GET", f"{path}?name={urllib.parse.quote(name)}")
        if status != 200:
            raise RuntimeError(f"GET {path}?name={name}: {status} {body}")
        return body["results"][0] if body["results"] else None

    # The one-shot path: Sensor, Workflow, container ----------------------------------------

    def overrides(self, creds):
        o = {"NAUTOBOT_URL": self.nb.url, "NAUTOBOT_TAG": self.tag, "UCVNI_GROUP_NAME": self.group, "OS_CLOUD": ""}
        if creds:
            o.update({k: v for k, v in self.env.items() if k.startswith("OS_") and k != "OS_CLOUD"})
        return o

    def oneshot(self, label, m, pod, msg, creds, code=0):
        """One delivery through the Sensor and the Workflow's container.
        Returns the Run, or None when the Sensor did not admit it."""
        transformed, err = m.transform(self.args.jq, m.event_data(msg))
        if not self.check(f"{label}: the Sensor's jq transform succeeds", transformed is not None, err):
            return None
        event_type = transformed["body"].get("event_type")
        if not self.check(f"{label}: the Sensor admits {event_type}", m.admitted(transformed)):
            return None
        wf = m.workflow(transformed, f"oslo-nautobot-{uuid.uuid4().hex[:5]}")
        for path, (text, mode) in m.artifacts(wf).items():
            pod.write_artifact(path, text, mode)
        proc, took, summary = pod.run(self.args.bin, self.overrides(creds))
        run = Run(proc, took, summary)
        self.check(f"{label}: {event_type} {'with' if creds else 'without'} credentials: the binary exits {code} "
                   f"({took * 1000:.0f} ms)", run.code == code, run.detail())
        return run

    def replay(self, label, msg):
        """A delivery once more through the one-shot path, with credentials;
        the exit code is the caller's to judge."""
        transformed, _ = self.mk.transform(self.args.jq, self.mk.event_data(msg))
        wf = self.mk.workflow(transformed, f"oslo-nautobot-{uuid.uuid4().hex[:5]}")
        for path, (text, mode) in self.mk.artifacts(wf).items():
            self.pod_ks.write_artifact(path, text, mode)
        return Run(*self.pod_ks.run(self.args.bin, self.overrides(True)))

    def ks_event(self, label, event_type, project, creds, fmt="cadf", code=0, figure=True):
        """Keystone's notification for this project (or, for the basic
        format, the one built for it), through the one-shot path."""
        if fmt == "basic":
            msg = basic_delivery(event_type, project, self.publisher_id or "identity.localhost")
        else:
            msg, d = self.kl.take(keystone_event(event_type, project))
            if not self.check(f"{label}: Keystone published {event_type} naming {project[:8]}…", msg is not None,
                              f"backlog: {[(x.get('event_type'), named_project(x)) for _, x in self.kl.backlog]}"):
                return None
            self.publisher_id = self.publisher_id or d.get("publisher_id")
        self.last_msg = msg
        run = self.oneshot(label, self.mk, self.pod_ks, msg, creds, code)
        if run is not None and figure:
            s = run.summary
            self.figures.append((f"{event_type} ({fmt}, {'with' if creds else 'without'} credentials) {label}",
                                 s.get("requests"), s.get("openstack_requests", 0), s.get("read_from"), run.took))
            print(f"FIGURE: {event_type} [{fmt}, {'credentials' if creds else 'no credentials'}] {label}: "
                  f"Nautobot requests {s.get('requests')}, OpenStack requests {s.get('openstack_requests', 0)}, "
                  f"read_from {s.get('read_from')}, {run.took * 1000:.0f} ms", flush=True)
        return run

    def read_from(self, label, run, want):
        if run is not None:
            self.check(f"{label}: the summary's read_from is {want!r}", run.summary.get("read_from") == want,
                       run.summary)

    # Setup -----------------------------------------------------------------------------------

    def setup(self):
        self.leftovers()
        self.started = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=2)
        self.default_group_before = self.by_name(TENANT_GROUPS, "Default")
        status, body = self.nb.call("POST", UCVNI_GROUPS, {"name": self.group})
        self.check(f"Nautobot: UCVNI group {self.group} created", status == 201, f"{status} {body}")
        self.group_id = (body or {}).get("id") if status == 201 else None
        # The Keystone EventSource and Sensor under the names e2e.Manifests
        # reads; the WorkflowTemplate and ConfigMap are the shared ones.
        view = os.path.join(self.args.work, "keystone-manifests")
        os.makedirs(os.path.join(view, "sensors"))
        os.symlink(os.path.join(self.args.repo, "workflows"), os.path.join(view, "workflows"))
        for src, dst in (("eventsource-keystone.yaml", "eventsource.yaml"), ("sensor-keystone.yaml", "sensor.yaml")):
            os.symlink(os.path.join(self.args.repo, "sensors", src), os.path.join(view, "sensors", dst))
        self.mk = e2e.Manifests(view)
        self.mn = e2e.Manifests(self.args.repo)
        x = self.mk.exchange()
        self.check("the Keystone EventSource binds the exchange keystone (topic, durable like Keystone's "
                   "amqp_durable_queues = true) with notifications.info",
                   (x["name"], x["type"], x["durable"], self.mk.source["routingKey"])
                   == ("keystone", "topic", True, "notifications.info"), x)
        for m, url, what in ((self.mk, self.args.keystone_amqp, "keystone"), (self.mn, self.args.neutron_amqp,
                                                                             "neutron")):
            queue = f"{QUEUE_PREFIX}{self.sfx}-{what}"
            self.queues.append((self.ks_vhost if what == "keystone" else self.nt_vhost, queue))
            self.listeners.append(Listener(url, m, queue))
        self.kl, self.nl = self.listeners
        self.pod_ks = e2e.Pod(self.mk, os.path.join(self.args.work, "pod-keystone"), self.nb.token)
        self.pod_nt = e2e.Pod(self.mn, os.path.join(self.args.work, "pod-neutron"), self.nb.token)
        self.pod_ks.mount_secrets()
        self.pod_nt.mount_secrets()

    def leftovers(self):
        """What an earlier run of this suite (killed before its clean-up)
        left in Keystone, Neutron and RabbitMQ."""
        for p in self.ks("GET", "/projects?is_domain=false")["projects"]:
            if re.match(r"^ten-[0-9a-f]{8}-", p["name"]):
                self.ks("DELETE", f"/projects/{p['id']}", ok=(204, 404))
                note(f"deleted Keystone project {p['name']}, left by an earlier run")
        for d in self.ks("GET", "/domains")["domains"]:
            if re.match(r"^ten-[0-9a-f]{8}-", d["name"]):
                self.ks("PATCH", f"/domains/{d['id']}", {"domain": {"enabled": False}})
                self.ks("DELETE", f"/domains/{d['id']}", ok=(204, 404))
                note(f"deleted Keystone domain {d['name']}, left by an earlier run")
        status, body = self.neutron("GET", "/networks?fields=id&fields=name")
        for n in (body or {}).get("networks", []) if status == 200 else []:
            if re.match(r"^ten-[0-9a-f]{8}-", n["name"] or ""):
                self.neutron("DELETE", f"/networks/{n['id']}")
                note(f"deleted Neutron network {n['name']}, left by an earlier run")
        # Nautobot: the runs' tags (and UCVNI groups) older than any run.
        minutes = float(os.environ.get("OSLO_NAUTOBOT_TENANTS_LEFTOVER_MINUTES", "15"))
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes)
        for t in self.nb.all(TAGS, name__re=r"^ten-[0-9a-f]{8}$"):
            if self.created(t) is not None and self.created(t) < old:
                left = self.sweep(t["name"], lambda o, n=t["name"]: o["name"].startswith(f"{n}-")
                                  or re.fullmatch(r"[0-9a-f]{32}", o["name"]) is not None
                                  or f"/{n}-" in o["name"], [])
                left += self.sweep_end(t["name"])
                note(f"removed what an earlier run left in Nautobot (tag {t['name']}){': ' if left else ''}"
                     f"{', '.join(left)}")
        for vhost in sorted({self.ks_vhost, self.nt_vhost}):
            for q in rabbit_queues(vhost) or []:
                if q.startswith(QUEUE_PREFIX):
                    subprocess.run(["rabbitmqctl", "-q", "-p", vhost, "delete_queue", q], capture_output=True)
                    note(f"deleted RabbitMQ queue {q} in {vhost}, left by an earlier run")

    # 1. CADF, one event per process, with credentials -----------------------------------------

    def cadf(self):
        c = self.check
        label = "(1) cadf"
        web = self.create_project("web")
        pid, name = web["id"], web["name"]
        run = self.ks_event(f"{label} create", "identity.project.created", pid, creds=True)
        # What Keystone put on the wire, as the samples show it.
        d = next((x for x in reversed(self.kl.order) if keystone_event("identity.project.created", pid)(x)), {})
        p = d.get("payload") or {}
        c(f"{label}: the CADF payload names the project in target.id and resource_info "
          "(typeURI data/security/project, action created.project), no _context_* keys",
          p.get("target") == {"id": pid, "typeURI": "data/security/project"} and p.get("resource_info") == pid
          and p.get("action") == "created.project" and not [k for k in d if k.startswith("_context_")], d)
        self.read_from(f"{label} create", run, "keystone")
        want = self.want_tenant(pid, name, web["description"])
        got = self.tenant(pid)
        c(f"{label} create: tenant {want['id']} named {name}, its description, group Default, tag {self.tag}",
          got == want, f"got  {got}\nwant {want}")
        if run is not None:
            c(f"{label} create: the results say tenant created", ("tenant", "created") in run.results, run.results)
        # The same delivery again (an Argo retry, a redelivery): nothing to write.
        run = self.replay(f"{label} create, delivered again", self.last_msg)
        if run is not None:
            c(f"{label} create delivered again: exit 0, tenant unchanged",
              run.code == 0 and self.tenant(pid) == want, run.detail())
            print(f"FIGURE: identity.project.created [cadf, credentials] {label} create delivered again: "
                  f"Nautobot requests "
                  f"{run.summary.get('requests')}, OpenStack requests {run.summary.get('openstack_requests', 0)}, "
                  f"{run.took * 1000:.0f} ms", flush=True)

        renamed = f"{name}-renamed"
        self.ks("PATCH", f"/projects/{pid}", {"project": {"name": renamed, "description": "renamed by the suite"}})
        run = self.ks_event(f"{label} rename", "identity.project.updated", pid, creds=True)
        self.read_from(f"{label} rename", run, "keystone")
        want = self.want_tenant(pid, renamed, "renamed by the suite")
        got = self.tenant(pid)
        c(f"{label} rename: the tenant is renamed {renamed}, new description, same id", got == want,
          f"got  {got}\nwant {want}")

        # A second domain, a project of the same name in it.
        dom = self.ks("POST", "/domains", {"domain": {"name": self.name("acme"), "enabled": True,
                                                      "description": "a second domain"}})["domain"]
        self.domains.append(dom["id"])
        self.domain_groups.append(dom["name"])
        msg, _ = self.kl.take(keystone_event("identity.domain.created", dom["id"]))
        if c(f"{label} domain: Keystone published identity.domain.created", msg is not None):
            t, _ = self.mk.transform(self.args.jq, self.mk.event_data(msg))
            c(f"{label} domain: the Sensor drops identity.domain.created", t is not None and not self.mk.admitted(t))
        twin = self.ks("POST", "/projects", {"project": {"name": renamed, "domain_id": dom["id"], "enabled": True,
                                                         "description": "the same name, another domain"}})["project"]
        self.projects.append(twin["id"])
        run = self.ks_event(f"{label} other domain", "identity.project.created", twin["id"], creds=True)
        self.read_from(f"{label} other domain", run, "keystone")
        want_twin = self.want_tenant(twin["id"], f"{dom['name']}/{renamed}", twin["description"], group=dom["name"])
        got = self.tenant(twin["id"])
        c(f"{label} other domain: tenant {dom['name']}/{renamed} in tenant group {dom['name']}", got == want_twin,
          f"got  {got}\nwant {want_twin}")
        c(f"{label} other domain: the Default domain's {renamed} keeps its tenant (names do not clash)",
          self.tenant(pid) == want, self.tenant(pid))

        # The domain's own identity.project.updated: skipped after reading Keystone.
        before = (self.tenant(pid), self.tenant(twin["id"]))
        self.ks("PATCH", f"/domains/{dom['id']}", {"domain": {"description": "updated by the suite"}})
        run = self.ks_event(f"{label} domain update", "identity.project.updated", dom["id"], creds=True)
        self.read_from(f"{label} domain update", run, "keystone")
        if run is not None:
            c(f"{label} domain update: its identity.project.updated is skipped (a domain, not a project)",
              run.results == [("tenant", "skipped")], run.detail())
        msg, _ = self.kl.take(keystone_event("identity.domain.updated", dom["id"]))
        if c(f"{label} domain update: Keystone also published identity.domain.updated", msg is not None):
            t, _ = self.mk.transform(self.args.jq, self.mk.event_data(msg))
            c(f"{label} domain update: the Sensor drops identity.domain.updated",
              t is not None and not self.mk.admitted(t))
        c(f"{label} domain update: no tenant for the domain, both tenants unchanged",
          self.tenant(dom["id"]) is None and (self.tenant(pid), self.tenant(twin["id"])) == before,
          f"{self.tenant(dom['id'])}\n{before}")

        # Deletes.
        self.ks("DELETE", f"/projects/{pid}")
        run = self.ks_event(f"{label} delete", "identity.project.deleted", pid, creds=True)
        self.read_from(f"{label} delete", run, "event")
        c(f"{label} delete: the tenant is gone, the other domain's is still there",
          self.tenant(pid) is None and self.tenant(twin["id"]) == want_twin, self.tenant(twin["id"]))
        self.ks("DELETE", f"/projects/{twin['id']}")
        run = self.ks_event(f"{label} other domain delete", "identity.project.deleted", twin["id"], creds=True)
        c(f"{label} other domain delete: the tenant is gone", self.tenant(twin["id"]) is None)
        # Disabling a domain is one more domain update; deleting it sends
        # identity.project.deleted of the domain's id: nothing to delete.
        self.ks("PATCH", f"/domains/{dom['id']}", {"domain": {"enabled": False}})
        self.kl.take(keystone_event("identity.project.updated", dom["id"]))
        self.ks("DELETE", f"/domains/{dom['id']}")
        run = self.ks_event(f"{label} domain delete", "identity.project.deleted", dom["id"], creds=True)
        if run is not None:
            c(f"{label} domain delete: its identity.project.deleted finds no tenant (absent), exit 0",
              run.results == [("tenant", "absent")], run.detail())

    # 2. The basic format -----------------------------------------------------------------------

    def basic(self):
        c = self.check
        label = "(2) basic"
        p = self.create_project("basic")
        pid = p["id"]
        run = self.ks_event(f"{label} create", "identity.project.created", pid, creds=True, fmt="basic")
        self.read_from(f"{label} create", run, "keystone")
        want = self.want_tenant(pid, p["name"], p["description"])
        got = self.tenant(pid)
        c(f"{label} create: the tenant as from the CADF event", got == want, f"got  {got}\nwant {want}")
        self.ks("PATCH", f"/projects/{pid}", {"project": {"name": f"{p['name']}-renamed"}})
        run = self.ks_event(f"{label} rename", "identity.project.updated", pid, creds=True, fmt="basic")
        want["name"] = f"{p['name']}-renamed"
        got = self.tenant(pid)
        c(f"{label} rename: the tenant is renamed", got == want, f"got  {got}\nwant {want}")
        self.ks("DELETE", f"/projects/{pid}")
        run = self.ks_event(f"{label} delete", "identity.project.deleted", pid, creds=True, fmt="basic")
        c(f"{label} delete: the tenant is gone", self.tenant(pid) is None)

    # 3 and 4. A project with a network ----------------------------------------------------------

    def with_network(self):
        c = self.check
        label3, label4 = "(3) placeholder", "(4) project with a network"
        p = self.create_project("net")
        pid = p["id"]
        created, _ = self.kl.take(keystone_event("identity.project.created", pid))
        c(f"{label3}: Keystone published identity.project.created", created is not None)
        status, body = self.neutron("POST", "/networks", {"network": {"name": self.name("net"), "project_id": pid}})
        if not c(f"{label3}: Neutron creates a network owned by the project (admin, project_id in the body)",
                 status == 201 and body["network"]["project_id"] == pid, f"{status} {body}"):
            return
        net = body["network"]
        self.networks.append(net["id"])
        msg, _ = self.nl.take(neutron_event("network.create.end", "network", net["id"]))
        if not c(f"{label3}: Neutron published network.create.end", msg is not None):
            return
        run = self.oneshot(f"{label3} network", self.mn, self.pod_nt, msg, creds=False)
        self.read_from(f"{label3} network", run, "event")
        got = self.tenant(pid)
        want_ph = self.placeholder(pid)
        c(f"{label3}: without credentials the network's tenant is a placeholder named {pid}",
          got is not None and {k: v for k, v in got.items() if k != "tags"}
          == {k: v for k, v in want_ph.items() if k != "tags"}, f"got  {got}\nwant {want_ph}")
        c(f"{label3}: the placeholder made for the network's UCVNI carries the run's tag",
          got is not None and got["tags"] == want_ph["tags"], f"got  {got}\nwant {want_ph}")
        u = self.nb.ucvni(net["id"])
        c(f"{label3}: the network's UCVNI (VNI {net.get('provider:segmentation_id')}) refers to the tenant",
          u is not None and (u.get("tenant") or {}).get("id") == dashed(pid), u)
        c(f"{label3}: the network's namespace exists", self.nb.namespace(net["id"]) is not None)
        if created is not None:
            run = self.oneshot(f"{label3} project", self.mk, self.pod_ks, created, creds=True)
            self.read_from(f"{label3} project", run, "keystone")
        want = self.want_tenant(pid, p["name"], p["description"])
        got = self.tenant(pid)
        c(f"{label3}: the project's event with credentials gives the same tenant ({dashed(pid)}) its real name",
          got == want, f"got  {got}\nwant {want}")
        if created is not None:
            self.oneshot(f"{label3} project again", self.mk, self.pod_ks, created, creds=False)
            c(f"{label3}: the same event without credentials leaves the named tenant as it is",
              self.tenant(pid) == want, self.tenant(pid))

        status, body = self.neutron("POST", "/subnets", {"subnet": {
            "network_id": net["id"], "ip_version": 4, "project_id": pid,
            "cidr": f"10.{uuid.uuid4().int % 256}.{uuid.uuid4().int % 256}.0/24"}})
        if not c(f"{label4}: Neutron creates a subnet of the project", status == 201, f"{status} {body}"):
            return
        sub = body["subnet"]
        self.subnets.append(sub["id"])
        msg, _ = self.nl.take(neutron_event("subnet.create.end", "subnet", sub["id"]))
        if c(f"{label4}: Neutron published subnet.create.end", msg is not None):
            run = self.oneshot(f"{label4} subnet", self.mn, self.pod_nt, msg, creds=True)
            self.read_from(f"{label4} subnet", run, "neutron")
        pr = self.nb.prefix(sub["id"])
        c(f"{label4}: the prefix {sub['cidr']} refers to the tenant",
          pr is not None and (pr.get("tenant") or {}).get("id") == dashed(pid), pr)

        self.ks("DELETE", f"/projects/{pid}")
        run = self.ks_event(f"{label4} delete", "identity.project.deleted", pid, creds=True, code=8)
        if run is not None:
            err = run.stderr
            note(f"{label4} delete: stderr: {err.strip()[:400]}")
            ucvni_named = net["id"] in err or net["name"] in err
            c(f"{label4} delete: stderr carries Nautobot's 409 naming the dependent prefix and UCVNI",
              "409" in err and "dependent objects" in err and (sub["id"] in err or sub["cidr"] in err)
              and ucvni_named, run.detail())
            c(f"{label4} delete: the summary reports exit 8", run.summary.get("exit") == 8, run.summary)
        got = self.tenant(pid)
        c(f"{label4} delete: the tenant is unchanged", got == want, f"got  {got}\nwant {want}")

        run = self.reconcile(f"{label4} reconcile")
        mentions = [x for x in run["lines"] if x.get("kind") == "tenant" and x.get("id") == dashed(pid)]
        c(f"{label4} reconcile: exit 0, the tenant of the vanished project is kept while its network exists",
          run["code"] == 0 and not mentions and self.tenant(pid) == want, run["detail"])
        c(f"{label4} reconcile: no orphan", run["summary"].get("orphans") == 0, run["detail"])

        status, _ = self.neutron("DELETE", f"/networks/{net['id']}")
        c(f"{label4}: Neutron deletes the network (its subnet with it); its events are not applied", status == 204,
          status)
        run = self.reconcile(f"{label4} reconcile --prune", "--prune")
        deleted = [(x.get("kind"), x.get("id") or x.get("name")) for x in run["lines"] if x.get("action") == "delete"]
        want_deleted = {("prefix", sub["id"]), ("namespace", net["id"]), ("ucvni", net["id"]),
                        ("tenant", dashed(pid))}
        c(f"{label4} reconcile --prune: exit 0, deletes the prefix, the namespace, the UCVNI and the tenant",
          run["code"] == 0 and set(deleted) == want_deleted, f"deleted {deleted}\n{run['detail']}")
        c(f"{label4} reconcile --prune: the tenant goes last", deleted[-1:] == [("tenant", dashed(pid))], deleted)
        c(f"{label4} reconcile --prune: Nautobot holds none of them any more",
          self.tenant(pid) is None and self.nb.prefix(sub["id"]) is None and self.nb.ucvni(net["id"]) is None
          and self.nb.namespace(net["id"]) is None)

    def reconcile(self, label, *flags):
        env = {k: v for k, v in self.env.items() if k in ("PATH", "HOME", "LANG", "TMPDIR") or k.startswith("OS_")}
        env.update(NAUTOBOT_URL=self.nb.url, NAUTOBOT_TOKEN=self.nb.token, NAUTOBOT_TAG=self.tag,
                   UCVNI_GROUP_NAME=self.group, OS_CLOUD="")
        t0 = time.monotonic()
        proc = subprocess.run([self.args.bin, "reconcile", *flags], env=env, capture_output=True, text=True,
                              timeout=120)
        lines = []
        for line in proc.stdout.splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
        summary = next((x for x in lines if x.get("summary")), {})
        took = time.monotonic() - t0
        note(f"{label}: exit {proc.returncode}, {summary}, {took:.2f} s")
        return {"code": proc.returncode, "lines": [x for x in lines if not x.get("summary")], "summary": summary,
                "detail": f"exit {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-1500:]}"}

    # 5. consume --------------------------------------------------------------------------------

    def consume_path(self):
        c = self.check
        label = "(5) consume"
        queue = f"{QUEUE_PREFIX}{self.sfx}-consume"
        self.queues.append((self.ks_vhost, queue))
        metrics_addr = f"127.0.0.1:{free_port()}"
        env = {k: v for k, v in self.env.items() if k in ("PATH", "HOME", "LANG", "TMPDIR") or k.startswith("OS_")}
        env.update(NAUTOBOT_URL=self.nb.url, NAUTOBOT_TOKEN=self.nb.token, NAUTOBOT_TAG=self.tag,
                   UCVNI_GROUP_NAME=self.group, OS_CLOUD="")
        log_path = os.path.join(self.args.work, "consume.log")
        self.consume_log = open(log_path, "w", encoding="utf-8")
        self.consume = subprocess.Popen(
            [self.args.consume_bin, "consume", "--amqp-url", self.args.keystone_amqp, "--queue", queue,
             "--exchange", "keystone", "--exchange-durable", "true", "--routing-key", "notifications.info",
             # Two workers, two lanes at a time. Each worker keeps a
             # keep-alive connection to Keystone, and the test Keystone
             # (uWSGI, 1 process, 4 threads, http11-socket) gives each such
             # connection a thread until it closes: 4 workers would leave
             # none for the suite's own calls (each then waits 1-2 s).
             "--concurrency", "2", "--metrics-addr", metrics_addr, "-v"],
            env=env, stdout=self.consume_log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)

        def tail():
            with open(log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-30:])

        def http(path):
            try:
                with urllib.request.urlopen(f"http://{metrics_addr}{path}", timeout=5) as resp:
                    return resp.status, resp.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, ""
            except OSError:
                return None, ""

        deadline = time.monotonic() + 30
        up = False
        while time.monotonic() < deadline and self.consume.poll() is None:
            if http("/healthz")[0] == 200:
                up = True
                break
            time.sleep(0.1)
        if not c(f"{label}: the service is up and connected (/healthz 200 on {metrics_addr})", up, tail()):
            return
        rows = subprocess.run(["rabbitmqctl", "-q", "-p", self.ks_vhost, "list_bindings", "source_name",
                               "destination_name", "routing_key", "--formatter", "json"],
                              capture_output=True, text=True)
        binds = [(b["source_name"], b["routing_key"]) for b in json.loads(rows.stdout or "[]")
                 if b["destination_name"] == queue and b["source_name"]] if rows.returncode == 0 else rows.stderr
        c(f"{label}: its queue {queue} is bound to keystone with notifications.info",
          binds == [("keystone", "notifications.info")], binds)
        note(f"{label}: the service is up")

        def poll(what, predicate):
            deadline = time.monotonic() + CONSUME_TIMEOUT
            t0 = time.monotonic()
            while True:
                value = predicate()
                if value or time.monotonic() > deadline:
                    c(f"{label}: {what} (after {time.monotonic() - t0:.1f} s)", value, tail())
                    return value
                time.sleep(0.1)

        p = self.create_project("consume")
        pid = p["id"]
        want = self.want_tenant(pid, p["name"], p["description"])
        poll(f"create: tenant {p['name']} in Nautobot", lambda: self.tenant(pid) == want)
        self.ks("PATCH", f"/projects/{pid}", {"project": {"name": f"{p['name']}-renamed"}})
        want["name"] = f"{p['name']}-renamed"
        poll("rename: the tenant is renamed", lambda: self.tenant(pid) == want)

        # Two projects' events interleaved, as fast as Keystone takes them.
        q = self.create_project("order")
        qid = q["id"]
        names = {pid: [], qid: []}
        for i in range(4):
            for x, base in ((pid, p["name"]), (qid, q["name"])):
                new = f"{base}-{i}"
                self.ks("PATCH", f"/projects/{x}", {"project": {"name": new}})
                names[x].append(new)
        self.ks("DELETE", f"/projects/{qid}")
        want["name"] = names[pid][-1]
        poll("interleaved renames of two projects, then one deleted: the last name, and the deleted one gone",
             lambda: self.tenant(pid) == want and self.tenant(qid) is None)
        self.ks("DELETE", f"/projects/{pid}")
        poll("delete: the tenant is gone", lambda: self.tenant(pid) is None)

        # Order: per project, the service applied its events in the order
        # Keystone published them (the suite's own queue got the same).
        def published(project):
            self.kl.take(lambda d: False, timeout=0.3)  # take in what has arrived
            return [d.get("message_id") for d in self.kl.order
                    if d.get("event_type", "").startswith("identity.project.") and named_project(d) == project]

        note(f"{label}: the tenants are as Keystone has them; checking the order")
        # An update applied after the project's delete reads Keystone's 404
        # and removes the tenant too: the tenant can be gone before the
        # delete event itself is applied. Wait for every event in the log.
        pubs = {x: published(x) for x in (pid, qid)}

        def applied():
            with open(log_path, encoding="utf-8", errors="replace") as f:
                found = re.findall(r"(identity\.project\.\w+) \(message ([0-9a-f-]+)\)", f.read())
            ids = {mid for _, mid in found}
            return found if all(m in ids for pub in pubs.values() for m in pub) else None

        applied = poll("every event of the two projects was applied", applied) or []
        for x, what in ((pid, "renamed 6 times, deleted"), (qid, "created, renamed 4 times, deleted")):
            pub = pubs[x]
            seen = []
            for _, mid in applied:
                if mid in pub and (not seen or seen[-1] != mid):
                    seen.append(mid)
            c(f"{label}: order: project {x[:8]}… ({what}): the service applied its {len(pub)} events in "
              "Keystone's order", pub and seen == pub, f"published {pub}\napplied   {seen}")
        note(f"{label}: order checked; reading the metrics")
        status, text = http("/metrics")
        counts = {}
        for line in text.splitlines():
            m = re.match(r'oslo_nautobot_events_total\{event_type="([^"]*)",outcome="[^"]*",code="(\d+)"\} (\S+)',
                         line)
            if m:
                counts[(m.group(1), int(m.group(2)))] = int(float(m.group(3)))
        bad = {k: v for k, v in counts.items() if k[1] not in (0, 6)}
        ours = sum(v for (t, code), v in counts.items() if t.startswith("identity.project.") and code == 0)
        c(f"{label}: metrics: {ours} project events applied (exit 0), nothing failed (others: no handler, 6)",
          ours >= 12 and not bad, counts)
        note(f"{label}: checked; stopping the service")
        self.stop_consume()

    def stop_consume(self):
        if self.consume is None:
            return
        self.consume.send_signal(signal.SIGTERM)
        try:
            rc = self.consume.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.consume.kill()
            rc = self.consume.wait()
        self.check("(5) consume: the service stops on SIGTERM with exit 0", rc == 0, f"exit {rc}")
        self.consume = None
        self.consume_log.close()

    # 6. Without credentials ----------------------------------------------------------------------

    def trusted(self):
        c = self.check
        label = "(6) no credentials"
        p = self.create_project("plain")
        pid = p["id"]
        run = self.ks_event(f"{label} create", "identity.project.created", pid, creds=False)
        self.read_from(f"{label} create", run, "event")
        got = self.tenant(pid)
        c(f"{label} create: only a placeholder tenant, named {pid}", got == self.placeholder(pid),
          f"got  {got}\nwant {self.placeholder(pid)}")
        self.ks("DELETE", f"/projects/{pid}")
        run = self.ks_event(f"{label} delete", "identity.project.deleted", pid, creds=False)
        c(f"{label} delete: the tenant is gone", self.tenant(pid) is None)

    # Clean-up ----------------------------------------------------------------------------------

    def sweep(self, tag, made_by, tenants):
        """A run's objects in Nautobot (its tag, and its UCVNI group of the
        same name): the group's UCVNIs; what carries the tag (a reconcile
        run mirrors every network Neutron has) goes, or, when it also
        carries someone else's tag or is a tenant the run did not make,
        only loses the tag; then the given tenants (by id) and the tenant
        groups named <tag>-…. Returns the problems met."""
        nb, problems = self.nb, []

        def ok(status, what):
            if status not in (200, 204, 404):
                problems.append(f"{what}: {status}")

        for u in nb.all(UCVNIS, ucvni_group=tag) if self.by_name(UCVNI_GROUPS, tag) else []:
            ok(nb.call("DELETE", f"{UCVNIS}{u['id']}/")[0], f"UCVNI {u['id']}")
        if self.by_name(TAGS, tag):
            for kind in (PREFIXES, NAMESPACES, TENANTS):
                for obj in nb.all(kind, tags=tag):
                    others = [t["name"] for t in obj.get("tags") or [] if t["name"] != tag]
                    if others or (kind == TENANTS and not made_by(obj)):
                        ok(nb.call("PATCH", f"{kind}{obj['id']}/", {"tags": [{"name": t} for t in others]})[0],
                           f"untag {kind}{obj['id']}")
                    elif kind == NAMESPACES:
                        for p in nb.all(PREFIXES, namespace=obj["id"]):
                            ok(nb.call("DELETE", f"{PREFIXES}{p['id']}/")[0], f"prefix {p['id']}")
                        ok(nb.call("DELETE", f"{NAMESPACES}{obj['id']}/")[0], f"namespace {obj['name']}")
                    else:
                        ok(nb.call("DELETE", f"{kind}{obj['id']}/")[0], f"{kind}{obj['id']}")
        for tid in tenants:
            ok(nb.call("DELETE", f"{TENANTS}{tid}/")[0], f"tenant {tid}")
        for g in nb.all(TENANT_GROUPS, name__isw=f"{tag}-"):
            ok(nb.call("DELETE", f"{TENANT_GROUPS}{g['id']}/")[0], f"tenant group {g['name']}")
        return problems

    def sweep_end(self, tag):
        """The run's UCVNI group and tag, once nothing is left in them."""
        problems = []
        for path in (UCVNI_GROUPS, TAGS):
            obj = self.by_name(path, tag)
            if obj:
                status = self.nb.call("DELETE", f"{path}{obj['id']}/")[0]
                if status not in (204, 404):
                    problems.append(f"{path} {tag}: {status}")
        return problems

    def made_by_run(self, obj):
        """A tenant of this run's projects, or one created since the run
        began (by an event or a reconcile run of this run's): else it was
        someone else's before, and only loses the run's tag."""
        if obj["id"] in {dashed(p) for p in self.projects}:
            return True
        created = self.created(obj)
        return created is not None and self.started is not None and created >= self.started

    @staticmethod
    def created(obj):
        try:
            return datetime.datetime.fromisoformat(obj["created"].replace("Z", "+00:00"))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def cleanup(self):
        problems = []

        def ok(status, what):
            if status not in (200, 204, 404):
                problems.append(f"{what}: {status}")

        if self.consume is not None:
            self.consume.kill()
            self.consume.wait()
            self.consume = None
        for pid in self.projects:
            try:
                self.keystone.call(self.admin, "DELETE", f"/projects/{pid}")
            except OSError as e:
                problems.append(f"Keystone project {pid}: {e}")
        for did in self.domains:
            try:
                self.keystone.call(self.admin, "PATCH", f"/domains/{did}", {"domain": {"enabled": False}})
                self.keystone.call(self.admin, "DELETE", f"/domains/{did}")
            except OSError as e:
                problems.append(f"Keystone domain {did}: {e}")
        for nid in self.networks:
            try:
                self.neutron("DELETE", f"/networks/{nid}")
            except OSError as e:
                problems.append(f"Neutron network {nid}: {e}")
        for listener in self.listeners:
            listener.close()
        amqp_channels = {}
        for vhost, queue in self.queues:
            try:
                ch = amqp_channels.setdefault(vhost, AmqpChannel(vhost))
                ch.channel().queue_delete(queue)
            except Exception:  # noqa: BLE001 - already gone (or checked below)
                amqp_channels.pop(vhost).reset()
        for ch in amqp_channels.values():
            ch.reset()

        nb = self.nb
        for nid in self.networks:
            ns = nb.namespace(nid)
            if ns:
                for p in nb.all(PREFIXES, namespace=ns["id"]):
                    ok(nb.call("DELETE", f"{PREFIXES}{p['id']}/")[0], f"prefix {p['id']}")
                ok(nb.call("DELETE", f"{NAMESPACES}{ns['id']}/")[0], f"namespace {nid}")
            ok(nb.call("DELETE", f"{UCVNIS}{nid}/")[0], f"UCVNI {nid}")
        for sid in self.subnets:
            ok(nb.call("DELETE", f"{PREFIXES}{sid}/")[0], f"prefix {sid}")
        problems += self.sweep(self.tag, self.made_by_run, [dashed(p) for p in self.projects])
        if self.default_group_before is None:
            # Made by this run's events: removed unless others' tenants use it by now.
            g = self.by_name(TENANT_GROUPS, "Default")
            if g and not nb.all(TENANTS, tenant_group=g["id"]):
                ok(nb.call("DELETE", f"{TENANT_GROUPS}{g['id']}/")[0], "tenant group Default")
        problems += self.sweep_end(self.tag)

        # Nothing of the run is left anywhere.
        left = list(problems)
        left += [f"Keystone project {p['name']}" for p in self.ks("GET", "/projects")["projects"]
                 if p["name"].startswith(f"ten-{self.sfx}-")]
        left += [f"Keystone domain {d['name']}" for d in self.ks("GET", "/domains")["domains"]
                 if d["name"].startswith(f"ten-{self.sfx}-")]
        status, body = self.neutron("GET", "/networks?fields=id&fields=name")
        left += [f"Neutron network {n['name']}" for n in (body or {}).get("networks", [])
                 if (n["name"] or "").startswith(f"ten-{self.sfx}-")]
        left += [f"tenant {pid}" for pid in self.projects if self.tenant(pid) is not None]
        left += [f"namespace {nid}" for nid in self.networks if nb.namespace(nid)]
        left += [f"UCVNI {nid}" for nid in self.networks if nb.ucvni(nid)]
        left += [f"prefix {sid}" for sid in self.subnets if nb.prefix(sid)]
        left += [f"tenant group {n}" for n in self.domain_groups if self.by_name(TENANT_GROUPS, n)]
        if self.by_name(TAGS, self.tag):
            left.append(f"tag {self.tag}")
        if self.by_name(UCVNI_GROUPS, self.group):
            left.append(f"UCVNI group {self.group}")
        for vhost in sorted({v for v, _ in self.queues}):
            queues = rabbit_queues(vhost)
            if queues is None:
                left.append(f"rabbitmqctl list_queues -p {vhost} failed")
            left += [f"queue {q} in {vhost}" for q in queues or [] if q.startswith(f"{QUEUE_PREFIX}{self.sfx}")]
        self.check("clean-up: nothing of this run is left in Keystone, Neutron, Nautobot or RabbitMQ", not left,
                   "\n".join(left))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True)
    p.add_argument("--bin", required=True, help="the built oslo-nautobot binary")
    p.add_argument("--consume-bin", required=True, help="a build with the consume feature")
    p.add_argument("--jq", required=True, help="Debian's jq")
    p.add_argument("--keystone", required=True, help="Keystone's identity API, http://HOST:PORT/v3")
    p.add_argument("--neutron", required=True, help="Neutron's API base URL")
    p.add_argument("--keystone-amqp", required=True, help="amqp://…/vhost of Keystone's notifications")
    p.add_argument("--neutron-amqp", required=True, help="amqp://…/vhost of Neutron's notifications")
    p.add_argument("--work", required=True, help="scratch directory")
    args = p.parse_args()

    r = Report()
    t0 = time.monotonic()
    # A SIGTERM (a timeout of the caller) still runs the clean-up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for var in ("NAUTOBOT_URL", "NAUTOBOT_TOKEN", "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME",
                "KEYSTONE_AMQP_VHOST"):
        if not os.environ.get(var):
            r.check(f"{var} is set", False)
            r.summary()
            return 1
    suite = None
    try:
        suite = Suite(args, r)
        suite.setup()
        for name, step in (("cadf", suite.cadf), ("basic", suite.basic), ("network", suite.with_network),
                           ("consume", suite.consume_path), ("no credentials", suite.trusted)):
            t = time.monotonic()
            try:
                step()
            except Exception as e:  # noqa: BLE001 - a crash is one failed check
                import traceback
                r.check(f"scenario {name} ran to the end ({type(e).__name__}: {e})", False, traceback.format_exc())
            note(f"scenario {name}: {time.monotonic() - t:.1f} s")
    except (KeystoneError, OSError, RuntimeError, e2e.Unsupported) as e:
        import traceback
        r.check(f"tenants.py set up ({type(e).__name__}: {e})", False, traceback.format_exc())
    except (KeyboardInterrupt, SystemExit):
        r.check("tenants.py ran to the end (interrupted: SIGINT or SIGTERM)", False)
    finally:
        if suite is not None:
            try:
                if suite.consume is not None:
                    suite.stop_consume()
                suite.cleanup()
            except Exception as e:  # noqa: BLE001
                import traceback
                r.check(f"clean-up ran ({type(e).__name__}: {e})", False, traceback.format_exc())
    if suite is not None and suite.figures:
        print("requests per Keystone event (one-shot):", flush=True)
        for what, nb, os_, src, took in suite.figures:
            print(f"  {what}: Nautobot {nb}, OpenStack {os_}, read_from {src}, {took * 1000:.0f} ms", flush=True)
    print(f"wall time of tenants.py: {time.monotonic() - t0:.0f} s", flush=True)
    r.summary()
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
