#!/usr/bin/env python3
"""oslo-nautobot end to end: RabbitMQ → (Argo, emulated from the manifests) → binary → Nautobot.

Run through run.sh, which provides RabbitMQ (an empty vhost of this test's
own), a venv with oslo.messaging, jq, the built binary and the paths.

1. Publish: a real oslo_messaging.Notifier, configured as Neutron configures
   it (a neutron.conf-like file: transport_url, control_exchange neutron,
   driver messagingv2, topics notifications, amqp_durable_queues as the
   EventSource declares the exchange), with a real oslo.context
   RequestContext, sends each notification with publisher_id network.e2e.
2. EventSource (sensors/eventsource.yaml): exchange, queue, binding and
   consumer are declared exactly as the YAML says (py-amqp, the client
   library under kombu, one call per AMQP method as Argo makes them). Each
   delivery becomes Argo's AMQP event data {"contentType", ..., "body": <the
   body parsed as JSON (jsonBody)>}.
3. Sensor (sensors/sensor.yaml): its transform.jq, run with Debian's jq; its
   data filters (path lookup, each value a Go regexp; Python's re.search means
   the same for these patterns); its trigger parameters resolved as Argo does
   (dataKey: an object or array gives the raw JSON as Go's encoding/json wrote
   it, a string gives the string itself), applied to the Workflow in the
   trigger.
4. Workflow (workflows/workflowtemplate.yaml, configmap.yaml): the workflow
   argument fills the entrypoint's input parameter, which fills the raw input
   artifact; its text is written where the artifact's path points (under a
   temp dir). A text holding "{{" fails the test; a naive stand-in for Argo's
   later substitution pass then replaces {{workflow.name}} in it. The
   container's command and args run with the binary in place of the image's
   path, the artifact and the token volume mapped to the temp dir, and the
   ConfigMap's and the container's environment (NAUTOBOT_URL and
   UCVNI_GROUP_NAME set to the live ones), nothing else.
5. Nautobot is checked through its REST API after each step.

The story: network create, subnet create, network update (renamed), subnet
update (after the prefix was changed by hand), then events that must not
reach the binary (network.create.start and port.create.end, dropped by the
filter; an ERROR-priority notification, routed elsewhere; one from a Notifier
whose amqp_durable_queues disagrees with the exchange, refused by RabbitMQ),
a network named "<b> & {{workflow.name}}" that must keep its name, subnet
delete and both networks' delete. Also checked: what RabbitMQ holds after the
EventSource's declarations, and what oslo.messaging puts on the wire.

Every run makes its own objects (fresh UUIDs, UCVNI group, project) and
removes them. Prints one PASS/FAIL line per check and, last,
"N passed, M failed".
"""

import argparse
import copy
import datetime
import json
import logging
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid

import amqp
import yaml
from amqp import spec
from oslo_context import context as oslo_context

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from testlib import Nautobot, Report, dashed, nautobot_env_missing, neutron_notifier  # noqa: E402

RECEIVE_TIMEOUT = 15  # seconds to wait for a published notification


class Unsupported(Exception):
    """The manifests use an Argo feature this emulation does not model."""


# --------------------------------------------------------------------------
# What Go does to JSON


def go_marshal(value):
    """JSON text as Go's encoding/json Marshal writes a decoded value: compact,
    map keys sorted, <, >, & and U+2028/U+2029 escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def go_time(ts):
    """Go's time.Time.String() of an AMQP timestamp (zero when absent), as a
    pod in UTC prints it."""
    if ts is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    if isinstance(ts, (int, float)):
        ts = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return ts.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


_MISSING = object()


def lookup(data, path):
    """A gjson path of plain keys and array indices (a.b.0.c)."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def gjson_text(value):
    """The text Argo Events takes for a dataKey: raw JSON for an object or
    array (and null), the string itself for a string."""
    if isinstance(value, str):
        return value
    return go_marshal(value)


def set_path(obj, path, value):
    """sjson-style set of a dotted path with array indices."""
    parts = path.split(".")
    cur = obj
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(cur, list):
            idx = int(part)
            while len(cur) <= idx:
                cur.append({})
            if last:
                cur[idx] = value
            else:
                cur = cur[idx]
        else:
            if last:
                cur[part] = value
            else:
                cur = cur.setdefault(part, [] if parts[i + 1].isdigit() else {})


# --------------------------------------------------------------------------
# The manifests, and Argo emulated from them


class Manifests:
    def __init__(self, repo):
        def load(rel):
            with open(os.path.join(repo, rel), encoding="utf-8") as f:
                return yaml.safe_load(f)

        self.eventsource = load("sensors/eventsource.yaml")
        self.sensor = load("sensors/sensor.yaml")
        self.wft = load("workflows/workflowtemplate.yaml")
        self.configmap = load("workflows/configmap.yaml")

        self.dep = self.sensor["spec"]["dependencies"][0]
        if self.dep["eventSourceName"] != self.eventsource["metadata"]["name"]:
            raise Unsupported("the Sensor's dependency names another EventSource")
        self.source = self.eventsource["spec"]["amqp"][self.dep["eventName"]]
        triggers = [t["template"] for t in self.sensor["spec"]["triggers"]
                    if t["template"].get("conditions", self.dep["name"]) == self.dep["name"]]
        if len(triggers) != 1 or "argoWorkflow" not in triggers[0]:
            raise Unsupported("expected one argoWorkflow trigger for the dependency")
        self.trigger = triggers[0]["argoWorkflow"]
        spec_ = self.wft["spec"]
        self.entry = next(t for t in spec_["templates"] if t["name"] == spec_["entrypoint"])
        self.container = self.entry["container"]

    # EventSource ------------------------------------------------------------

    def exchange(self):
        # Argo's defaults for an absent exchangeDeclare: durable, not
        # auto-deleted, not internal.
        d = self.source.get("exchangeDeclare", {})
        return {"name": self.source["exchangeName"], "type": self.source["exchangeType"],
                "durable": d.get("durable", True), "autoDelete": d.get("autoDelete", False),
                "internal": d.get("internal", False), "noWait": d.get("noWait", False)}

    def queue(self):
        d = self.source.get("queueDeclare", {})
        args = d.get("arguments")
        return {"name": d.get("name", ""), "durable": d.get("durable", False),
                "autoDelete": d.get("autoDelete", False), "exclusive": d.get("exclusive", False),
                "noWait": d.get("noWait", False), "arguments": json.loads(args) if args else None}

    def event_data(self, message):
        """Argo's AMQP event data for one delivery; None when the EventSource
        cannot marshal it (jsonBody with a body that is not JSON)."""
        p = message.properties
        d = message.delivery_info
        if self.source.get("jsonBody"):
            try:
                body = json.loads(message.body)
            except ValueError:
                return None
        else:
            raise Unsupported("jsonBody is not true: the body would be base64 bytes")
        data = {
            "contentType": p.get("content_type") or "",
            "contentEncoding": p.get("content_encoding") or "",
            "deliveryMode": p.get("delivery_mode") or 0,
            "priority": p.get("priority") or 0,
            "correlationId": p.get("correlation_id") or "",
            "replyTo": p.get("reply_to") or "",
            "expiration": p.get("expiration") or "",
            "messageId": p.get("message_id") or "",
            "timestamp": go_time(p.get("timestamp")),
            "type": p.get("type") or "",
            "appId": p.get("app_id") or "",
            "exchange": d.get("exchange", ""),
            "routingKey": d.get("routing_key", ""),
            "body": body,
        }
        if self.source.get("metadata"):
            data["metadata"] = self.source["metadata"]
        return data

    # Sensor -----------------------------------------------------------------

    def transform(self, jq, data):
        """The dependency's jq transform on the event data as dispatched
        (Go-marshalled); returns (transformed data, error text)."""
        t = self.dep.get("transform", {})
        if set(t) - {"jq"}:
            raise Unsupported(f"transform {sorted(t)}")
        if "jq" not in t:
            return data, None
        proc = subprocess.run([jq, "-c", t["jq"]], input=go_marshal(data),
                              capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode != 0 or not lines:
            return None, proc.stderr.strip() or "no output"
        out = json.loads(lines[0])  # Argo takes the first result
        if not isinstance(out, dict):
            return None, "the transform's result is not an object"
        # Argo marshals the result again: its data is what Go writes.
        return json.loads(go_marshal(out)), None

    def admitted(self, data):
        """The dependency's filters on the transformed data."""
        filters = self.dep.get("filters", {})
        if set(filters) - {"data"} or self.dep.get("filtersLogicalOperator", "and") != "and":
            raise Unsupported(f"filters {sorted(filters)}")
        results = []
        for f in filters.get("data", []):
            if f.get("type") != "string" or f.get("comparator", "=") != "=" or f.get("template"):
                raise Unsupported(f"data filter {f}")
            value = lookup(data, f["path"])
            results.append(isinstance(value, str)
                           and any(re.search(v, value) for v in f.get("value", [])))
        if filters.get("dataLogicalOperator", "and") == "or":
            return any(results)
        return all(results)

    def workflow(self, data, name):
        """The Workflow the trigger submits for this transformed data."""
        wf = copy.deepcopy(self.trigger["source"]["resource"])
        for p in self.trigger.get("parameters", []):
            src = p["src"]
            if set(src) - {"dependencyName", "dataKey", "value"} or p.get("operation"):
                raise Unsupported(f"trigger parameter {p}")
            value = lookup(data, src["dataKey"])
            if value is _MISSING:
                if "value" not in src:
                    raise ValueError(f"trigger parameter: no {src['dataKey']} in the event data")
                text = src["value"]
            else:
                text = gjson_text(value)
            set_path(wf, p["dest"], text)
        wf.setdefault("metadata", {})["name"] = name
        ref = wf["spec"].get("workflowTemplateRef", {}).get("name")
        if ref != self.wft["metadata"]["name"]:
            raise Unsupported(f"workflowTemplateRef {ref}")
        return wf

    # Workflow ---------------------------------------------------------------

    def artifacts(self, wf):
        """First substitution pass: each raw input artifact of the entrypoint
        with {{inputs.parameters.X}} / {{workflow.parameters.X}} filled in
        from the Workflow's arguments. Returns {path: (text, mode)}."""
        args = {p["name"]: p.get("value") for p in wf["spec"].get("arguments", {}).get("parameters", [])}
        for p in self.wft["spec"].get("arguments", {}).get("parameters", []):
            args.setdefault(p["name"], p.get("value"))
        inputs = {p["name"]: args.get(p["name"], p.get("value"))
                  for p in self.entry.get("inputs", {}).get("parameters", [])}
        out = {}
        for a in self.entry.get("inputs", {}).get("artifacts", []):
            if "raw" not in a:
                raise Unsupported(f"artifact {a['name']} is not raw")
            text = a["raw"]["data"]
            for k, v in inputs.items():
                text = text.replace("{{inputs.parameters.%s}}" % k, v)
            for k, v in args.items():
                text = text.replace("{{workflow.parameters.%s}}" % k, v)
            out[a["path"]] = (text, a.get("mode", 0o644))
        return out

    def volume_mounts(self):
        """{mount path: secret items} of the container's volumes."""
        vols = {v["name"]: v for v in self.wft["spec"].get("volumes", []) + self.entry.get("volumes", [])}
        out = {}
        for vm in self.container.get("volumeMounts", []):
            vol = vols[vm["name"]]
            if "secret" not in vol:
                raise Unsupported(f"volume {vm['name']}")
            out[vm["mountPath"]] = vol["secret"]
        return out

    def environment(self):
        env = {}
        for e in self.container.get("envFrom", []):
            ref = e.get("configMapRef", {}).get("name")
            if ref != self.configmap["metadata"]["name"]:
                raise Unsupported(f"envFrom {e}")
            env.update(self.configmap.get("data", {}))
        for e in self.container.get("env", []):
            if "value" not in e:
                raise Unsupported(f"env {e['name']}")
            env[e["name"]] = e["value"]
        return env


# --------------------------------------------------------------------------
# RabbitMQ: the EventSource's side


class Consumer:
    """Declares and consumes exactly as the EventSource would."""

    def __init__(self, url, m):
        u = urllib.parse.urlsplit(url)
        self.conn = amqp.Connection(host=f"{u.hostname}:{u.port or 5672}", userid=u.username,
                                    password=u.password, virtual_host=urllib.parse.unquote(u.path[1:]) or "/")
        self.conn.connect()
        ch = self.ch = self.conn.channel()
        x, q = m.exchange(), m.queue()
        # exchange.declare with every flag the YAML sets (py-amqp's helper
        # would always send internal=false).
        ch.send_method(spec.Exchange.Declare, "BssbbbbbF",
                       (0, x["name"], x["type"], False, x["durable"], x["autoDelete"],
                        x["internal"], x["noWait"], None),
                       wait=None if x["noWait"] else spec.Exchange.DeclareOk)
        name, _, _ = ch.queue_declare(q["name"], passive=False, durable=q["durable"],
                                      exclusive=q["exclusive"], auto_delete=q["autoDelete"],
                                      nowait=q["noWait"], arguments=q["arguments"]) or (q["name"], 0, 0)
        self.queue = name
        b = m.source.get("queueBind", {})
        ch.queue_bind(name, x["name"], m.source["routingKey"], nowait=b.get("noWait", False),
                      arguments=json.loads(b["arguments"]) if b.get("arguments") else None)
        ch.queue_purge(name)
        c = m.source.get("consume", {})
        self.auto_ack = c.get("autoAck", False)
        self.pending = []
        ch.basic_consume(name, consumer_tag=c.get("consumerTag", ""), no_local=c.get("noLocal", False),
                         no_ack=self.auto_ack, exclusive=c.get("exclusive", False),
                         nowait=c.get("noWait", False), callback=self.pending.append)

    def receive(self, timeout=RECEIVE_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                self.conn.drain_events(timeout=left)
            except socket.timeout:
                return None
        msg = self.pending.pop(0)
        if not self.auto_ack:
            self.ch.basic_ack(msg.delivery_tag)
        return msg

    def close(self):
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - best effort at the end
            pass


# --------------------------------------------------------------------------
# oslo.messaging: Neutron's side


class Logs(logging.Handler):
    """Keeps what oslo.messaging logs (a failed publish is only a log line)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def text(self, start=0):
        out = []
        for r in self.records[start:]:
            out.append(r.getMessage())
            if r.exc_info and r.exc_info[1] is not None:
                out.append(str(r.exc_info[1]))
        return "\n".join(out)


# --------------------------------------------------------------------------
# The run


class Pod:
    """One Workflow pod, emulated from the WorkflowTemplate under a directory of
    its own: the token Secret mounted as files, the raw input artifacts written
    where the template puts them, and the container's command and args run with
    the ConfigMap's environment (container paths mapped into the directory)."""

    def __init__(self, m, root, token):
        self.m, self.root, self.token = m, root, token

    def mount_secrets(self):
        """The token Secret as the kubelet mounts it: one file per item."""
        for mount, secret in self.m.volume_mounts().items():
            for item in secret.get("items", []):
                if item["key"] != "token":
                    raise Unsupported(f"secret key {item['key']}")
                host = self.host_path(os.path.join(mount, item["path"]))
                os.makedirs(os.path.dirname(host), exist_ok=True)
                with open(host, "w", encoding="utf-8") as f:
                    f.write(self.token)
                os.chmod(host, item.get("mode", secret.get("defaultMode", 0o644)))

    def host_path(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def mapped(self, value):
        """A container path under an artifact or a mounted volume → the directory."""
        roots = [a["path"] for a in self.m.entry.get("inputs", {}).get("artifacts", [])]
        roots += list(self.m.volume_mounts())
        for root in roots:
            if value == root or value.startswith(root.rstrip("/") + "/"):
                return self.host_path(value)
        return value

    def write_artifact(self, path, text, mode):
        host = self.host_path(path)
        os.makedirs(os.path.dirname(host), exist_ok=True)
        if os.path.exists(host):
            os.chmod(host, 0o600)
        with open(host, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(host, mode)

    def run(self, binary, env_overrides):
        """Runs the container; returns (process, seconds, the stdout summary or {})."""
        c = self.m.container
        command = [binary] + [self.mapped(a) for a in c.get("command", [])[1:]]
        command += [self.mapped(a) for a in c.get("args", [])]
        env = {k: self.mapped(v) for k, v in self.m.environment().items()}
        env.update(env_overrides)
        deadline = int(self.m.entry.get("activeDeadlineSeconds", 120))
        t0 = time.monotonic()
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=deadline)
        took = time.monotonic() - t0
        try:
            summary = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            summary = {}
        return proc, took, summary


class E2E:
    def __init__(self, args, r):
        self.args, self.r = args, r
        self.m = Manifests(args.repo)
        self.nb = Nautobot(os.environ["NAUTOBOT_URL"], os.environ["NAUTOBOT_TOKEN"])
        suffix = uuid.uuid4().hex[:8]
        self.group = f"e2e-{suffix}"
        self.project = uuid.uuid4().hex
        self.tenant = dashed(self.project)
        self.request_id = f"req-{uuid.uuid4()}"
        self.secret = f"e2e-secret-{uuid.uuid4().hex}"
        self.binary_runs = 0
        self.namespaces, self.prefixes, self.ucvnis = [], [], []
        self.group_id = None
        self.pod = Pod(self.m, os.path.join(args.work, "pod"), self.nb.token)

    # Building blocks ----------------------------------------------------------

    def network(self, name, vni):
        id_ = str(uuid.uuid4())
        self.namespaces.append(id_)
        self.ucvnis.append(id_)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"id": id_, "name": name, "tenant_id": self.project, "project_id": self.project,
                "admin_state_up": True, "mtu": 1450, "status": "ACTIVE", "subnets": [],
                "shared": False, "port_security_enabled": True, "router:external": False,
                "provider:network_type": "vxlan", "provider:physical_network": None,
                "provider:segmentation_id": vni, "availability_zone_hints": [],
                "availability_zones": [], "ipv4_address_scope": None, "ipv6_address_scope": None,
                "description": "", "tags": [], "created_at": now, "updated_at": now,
                "revision_number": 1}

    def subnet(self, net, cidr):
        id_ = str(uuid.uuid4())
        self.prefixes.append(id_)
        base = cidr.split("/")[0].rsplit(".", 1)[0]
        return {"id": id_, "name": f"e2e-sub-{id_[:4]}", "tenant_id": self.project,
                "project_id": self.project, "network_id": net["id"], "ip_version": 4,
                "subnetpool_id": None, "enable_dhcp": True, "ipv6_ra_mode": None,
                "ipv6_address_mode": None, "gateway_ip": f"{base}.1", "cidr": cidr,
                "allocation_pools": [{"start": f"{base}.2", "end": f"{base}.254"}],
                "host_routes": [], "dns_nameservers": [], "description": "",
                "service_types": [], "tags": [], "router:external": False, "revision_number": 0}

    def context(self):
        return oslo_context.RequestContext(
            user_id=uuid.uuid4().hex, project_id=self.project, request_id=self.request_id,
            is_admin=True, roles=["admin", "member", "reader"], auth_token=self.secret)

    def publish(self, event_type, payload, priority="info"):
        # Neutron sends its *.start and *.end notifications at INFO.
        getattr(self.notifier, priority)(self.context(), event_type, payload)

    # Argo, then the binary -------------------------------------------------------

    def deliver(self, label, event_type, expect_admitted=True):
        """Receive the next message and take it through EventSource, Sensor
        and Workflow. Returns a dict describing what happened."""
        r = self.r
        msg = self.consumer.receive()
        if not r.check(f"{label}: delivered to queue {self.consumer.queue}", msg is not None,
                       f"nothing within {RECEIVE_TIMEOUT} s"):
            return None
        data = self.m.event_data(msg)
        if not r.check(f"{label}: the EventSource makes event data of it (JSON body)", data is not None):
            return None
        body = data["body"]
        decoded = None
        if isinstance(body, dict) and isinstance(body.get("oslo.message"), str):
            decoded = json.loads(body["oslo.message"])
        r.check(f"{label}: on the wire an oslo 2.0 envelope holding {event_type}",
                body.get("oslo.version") == "2.0" and decoded is not None
                and decoded.get("event_type") == event_type, json.dumps(body)[:500])
        transformed, err = self.m.transform(self.args.jq, data)
        if not r.check(f"{label}: the Sensor's jq transform succeeds", transformed is not None, err):
            return None
        r.check(f"{label}: transformed .body is the decoded notification",
                transformed.get("body") == decoded)
        admitted = self.m.admitted(transformed)
        what = "passes" if expect_admitted else "drops it"
        r.check(f"{label}: the Sensor's data filter {what}", admitted == expect_admitted,
                f"admitted={admitted}")
        out = {"decoded": decoded, "transformed": transformed, "admitted": admitted}
        if not admitted:
            return out

        pod = f"oslo-nautobot-{''.join(random.choices('bcdfghjklmnpqrstvwxz2456789', k=5))}"
        wf = self.m.workflow(transformed, pod)
        labels = wf["metadata"].get("labels", {})
        r.check(f"{label}: Workflow label oslo-nautobot/event-type = {event_type}",
                labels.get("oslo-nautobot/event-type") == event_type, labels)
        arts = self.m.artifacts(wf)
        texts = {p: t for p, (t, _) in arts.items()}
        r.check(f"{label}: the artifact text holds no '{{{{' (Argo would substitute tags in it)",
                texts and all("{{" not in t for t in texts.values()),
                "\n".join(t[:300] for t in texts.values()))
        ok = True
        for t in texts.values():
            try:
                ok = ok and json.loads(t) == decoded
            except ValueError:
                ok = False
        r.check(f"{label}: the artifact text decodes to the notification", ok)

        # Argo's later pass over the pod spec, naively: only this one tag.
        for path, (text, mode) in arts.items():
            self.pod.write_artifact(path, text.replace("{{workflow.name}}", pod), mode)
        out.update(self.run_binary(label))
        out["artifact"] = next(iter(texts.values()), "")
        out["pod"] = pod
        return out

    def run_binary(self, label):
        self.binary_runs += 1
        # No OpenStack here: the ConfigMap's OS_CLOUD would look for a
        # clouds.yaml; events are taken as they come.
        overrides = {"NAUTOBOT_URL": self.nb.url, "UCVNI_GROUP_NAME": self.group, "OS_CLOUD": ""}
        proc, took, summary = self.pod.run(self.args.bin, overrides)
        self.r.check(f"{label}: the binary exits 0 ({took * 1000:.0f} ms)", proc.returncode == 0,
                     f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
        return {"rc": proc.returncode, "summary": summary, "stderr": proc.stderr}

    def results(self, out):
        return [(x.get("kind"), x.get("result")) for x in out.get("summary", {}).get("results", [])]

    # Nautobot checks ---------------------------------------------------------

    def check_network(self, label, net):
        r, nb = self.r, self.nb
        ns = nb.namespace(net["id"])
        r.check(f"{label}: namespace {net['id'][:8]}… exists", ns is not None)
        u = nb.ucvni(net["id"])
        if not r.check(f"{label}: UCVNI {net['id'][:8]}… exists", u is not None):
            return
        got = {"name": u.get("name"), "ucvni_id": u.get("ucvni_id"),
               "group": (u.get("ucvni_group") or {}).get("name"),
               "status": (u.get("status") or {}).get("name"),
               "tenant": (u.get("tenant") or {}).get("id")}
        want = {"name": net["name"], "ucvni_id": net["provider:segmentation_id"], "group": self.group,
                "status": "Active", "tenant": self.tenant}
        r.check(f"{label}: UCVNI name {net['name']!r}, VNI, group, status Active, tenant", got == want,
                f"got  {got}\nwant {want}")

    def check_network_gone(self, label, net):
        self.r.check(f"{label}: namespace and UCVNI removed",
                     self.nb.namespace(net["id"]) is None and self.nb.ucvni(net["id"]) is None)

    def check_prefix(self, label, sub):
        p = self.nb.prefix(sub["id"])
        if not self.r.check(f"{label}: prefix {sub['id'][:8]}… exists", p is not None):
            return
        got = {"prefix": p.get("prefix"), "namespace": (p.get("namespace") or {}).get("name"),
               "status": (p.get("status") or {}).get("name"), "tenant": (p.get("tenant") or {}).get("id")}
        want = {"prefix": sub["cidr"], "namespace": sub["network_id"], "status": "Active",
                "tenant": self.tenant}
        self.r.check(f"{label}: prefix {sub['cidr']} in the network's namespace, Active, tenant",
                     got == want, f"got  {got}\nwant {want}")

    # Scenario ---------------------------------------------------------------------

    def setup(self):
        status, body = self.nb.call("POST", "/api/plugins/undercloud-vni/ucvni-groups/",
                                    {"name": self.group})
        self.r.check(f"Nautobot: UCVNI group {self.group} created", status == 201, f"{status} {body}")
        self.group_id = (body or {}).get("id") if status == 201 else None
        x = self.m.exchange()
        self.consumer = Consumer(self.args.amqp, self.m)
        self.check_broker()
        self.pod.mount_secrets()
        self.logs = Logs()
        logging.getLogger().addHandler(self.logs)
        logging.getLogger().setLevel(logging.WARNING)
        url = self.args.amqp.replace("amqp://", "rabbit://", 1)
        self.transport, self.notifier = neutron_notifier(self.args.work, url, x["name"], x["durable"],
                                                         "network.e2e", "neutron-e2e.conf")

    def check_broker(self):
        """What RabbitMQ now holds is what the EventSource's YAML declares."""
        vhost = urllib.parse.unquote(urllib.parse.urlsplit(self.args.amqp).path[1:]) or "/"

        def listing(what, *fields):
            proc = subprocess.run(["rabbitmqctl", "-q", "-p", vhost, what, *fields, "--formatter", "json"],
                                  capture_output=True, text=True, check=True)
            rows = json.loads(proc.stdout)
            for row in rows:
                if "arguments" in row:  # [[key, type, value], ...]
                    row["arguments"] = {k: v for k, _, v in row["arguments"]}
            return rows

        x, q = self.m.exchange(), self.m.queue()
        ex = [e for e in listing("list_exchanges", "name", "type", "durable", "auto_delete", "internal")
              if e["name"] == x["name"]]
        want = {"name": x["name"], "type": x["type"], "durable": x["durable"],
                "auto_delete": x["autoDelete"], "internal": x["internal"]}
        self.r.check(f"RabbitMQ: exchange {x['name']} as the EventSource declares it "
                     f"({x['type']}, durable={x['durable']})", ex == [want], f"got  {ex}\nwant {[want]}")
        qs = [e for e in listing("list_queues", "name", "durable", "auto_delete", "exclusive", "arguments")
              if e["name"] == self.consumer.queue]
        want = {"name": self.consumer.queue, "durable": q["durable"], "auto_delete": q["autoDelete"],
                "exclusive": q["exclusive"], "arguments": q["arguments"] or {}}
        self.r.check(f"RabbitMQ: queue {self.consumer.queue} as the EventSource declares it "
                     f"(durable={q['durable']})", qs == [want], f"got  {qs}\nwant {[want]}")
        binds = [(b["source_name"], b["routing_key"])
                 for b in listing("list_bindings", "source_name", "destination_name", "destination_kind",
                                  "routing_key")
                 if b["destination_kind"] == "queue" and b["destination_name"] == self.consumer.queue
                 and b["source_name"]]
        want = [(x["name"], self.m.source["routingKey"])]
        self.r.check(f"RabbitMQ: queue bound to {x['name']} with {self.m.source['routingKey']} only",
                     binds == want, binds)

    def run(self):
        r = self.r
        vni = random.randrange(1000, 15_000_000)
        third = random.randrange(0, 256)

        # 1. network.create.end
        net = self.network(f"e2e-net-{uuid.uuid4().hex[:6]}", vni)
        self.publish("network.create.end", {"network": net})
        out = self.deliver("network.create.end", "network.create.end")
        if out:
            d = out["decoded"]
            r.check("wire: publisher_id network.e2e, priority INFO, routing key notifications.info",
                    d.get("publisher_id") == "network.e2e" and d.get("priority") == "INFO"
                    and out["transformed"].get("routingKey") == "notifications.info", d.get("publisher_id"))
            t = out["transformed"]
            props = (t.get("contentType"), t.get("contentEncoding"), t.get("deliveryMode"),
                     t.get("messageId"))
            r.check("wire: AMQP properties content_type application/json, content_encoding utf-8, "
                    "delivery_mode 2 (persistent), no AMQP message_id",
                    props == ("application/json", "utf-8", 2, ""), props)
            r.check("wire: the request context travels as _context_* keys",
                    d.get("_context_request_id") == self.request_id
                    and d.get("_context_project_id") == self.project,
                    sorted(k for k in d if k.startswith("_context")))
            r.check("wire: the context's auth token is not sent", self.secret not in json.dumps(d))
            r.check("binary: its summary names this notification's message_id",
                    out["summary"].get("message_id") == d.get("message_id"), out["summary"])
            r.check("network.create.end: namespace, tenant (a new project) and UCVNI created",
                    self.results(out) == [("namespace", "created"), ("tenant", "created"),
                                          ("ucvni", "created")], self.results(out))
        self.check_network("network.create.end", net)

        # 2. subnet.create.end
        sub = self.subnet(net, f"10.{random.randrange(64, 128)}.{third}.0/24")
        self.publish("subnet.create.end", {"subnet": sub})
        out = self.deliver("subnet.create.end", "subnet.create.end")
        if out:
            r.check("subnet.create.end: prefix created", self.results(out) == [("prefix", "created")],
                    self.results(out))
        self.check_prefix("subnet.create.end", sub)

        # 3. network.update.end: renamed
        net = dict(net, name=net["name"] + "-renamed", subnets=[sub["id"]], revision_number=3)
        self.publish("network.update.end", {"network": net})
        out = self.deliver("network.update.end", "network.update.end")
        if out:
            r.check("network.update.end: UCVNI updated", ("ucvni", "updated") in self.results(out),
                    self.results(out))
        self.check_network("network.update.end", net)

        # 4. subnet.update.end: the prefix was changed in Nautobot meanwhile;
        #    the event puts it back in line.
        status, body = self.nb.call("PATCH", f"/api/ipam/prefixes/{sub['id']}/",
                                    {"status": {"name": "Reserved"}})
        r.check("Nautobot: prefix status set to Reserved by hand (drift)", status == 200, f"{status} {body}")
        sub = dict(sub, name=sub["name"] + "-renamed", revision_number=1)
        self.publish("subnet.update.end", {"subnet": sub})
        out = self.deliver("subnet.update.end", "subnet.update.end")
        if out:
            r.check("subnet.update.end: prefix updated", self.results(out) == [("prefix", "updated")],
                    self.results(out))
        self.check_prefix("subnet.update.end", sub)

        # 5. Dropped by the Sensor: never reach the binary, change nothing.
        other = self.network(f"e2e-never-{uuid.uuid4().hex[:6]}", vni + 1)
        port = {"id": str(uuid.uuid4()), "network_id": net["id"], "project_id": self.project,
                "tenant_id": self.project,
                "fixed_ips": [{"subnet_id": sub["id"], "ip_address": sub["gateway_ip"][:-1] + "5"}]}
        runs = self.binary_runs
        self.publish("network.create.start", {"network": {"name": other["name"], "id": other["id"]}})
        self.deliver("network.create.start", "network.create.start", expect_admitted=False)
        self.publish("port.create.end", {"port": port})
        self.deliver("port.create.end", "port.create.end", expect_admitted=False)
        r.check("dropped events: the binary never ran for them", self.binary_runs == runs,
                f"{self.binary_runs - runs} runs")
        r.check("dropped events: nothing written for them", self.nb.namespace(other["id"]) is None)

        # 6. Not INFO: routed to notifications.error, never to the queue.
        self.publish("network.create.end", {"network": other}, priority="error")

        # 7. A Notifier whose amqp_durable_queues disagrees with the exchange
        #    loses its notification (PRECONDITION_FAILED, only logged).
        x = self.m.exchange()
        url = self.args.amqp.replace("amqp://", "rabbit://", 1)
        bad_transport, bad = neutron_notifier(self.args.work, url, x["name"], not x["durable"],
                                              "network.e2e", "neutron-mismatch.conf")
        before = len(self.logs.records)
        bad.info(self.context(), "network.create.end", {"network": other})
        bad_transport.cleanup()
        logged = self.logs.text(before)
        r.check(f"durability mismatch (amqp_durable_queues={not x['durable']}): publish fails with "
                f"PRECONDITION_FAILED, only logged", len(self.logs.records) > before
                and "PRECONDITION_FAILED" in logged, logged[-800:])

        # 8. A name with markup and an Argo tag arrives intact.
        odd = self.network("<b> & {{workflow.name}}", vni + 2)
        self.publish("network.create.end", {"network": odd})
        out = self.deliver("network.create.end {{workflow.name}}", "network.create.end")
        if out:
            r.check("ERROR-priority and mismatched-durability notifications did not reach the queue: "
                    "the next delivery is this one", out["decoded"]["payload"]["network"]["id"] == odd["id"],
                    out["decoded"]["payload"]["network"]["id"])
            old = gjson_text(out["transformed"]["body"])  # what dataKey: body would pass on
            r.check("control: the decoded body as Argo would pass it still holds {{workflow.name}}, "
                    "which Argo's pass would replace", "{{workflow.name}}" in old
                    and old.replace("{{workflow.name}}", out["pod"]) != old, old[:300])
            r.check("{{workflow.name}}: the artifact text writes it as {\\u007bworkflow.name}}",
                    "{\\u007bworkflow.name}}" in out.get("artifact", ""), out.get("artifact", "")[:300])
        self.check_network("network.create.end {{workflow.name}}", odd)
        self.r.check("Nautobot: no namespace for the ERROR-priority or mismatched notifications",
                     self.nb.namespace(other["id"]) is None)

        # 9. subnet.delete.end
        self.publish("subnet.delete.end", {"subnet": sub, "subnet_id": sub["id"]})
        out = self.deliver("subnet.delete.end", "subnet.delete.end")
        if out:
            r.check("subnet.delete.end: prefix deleted", self.results(out) == [("prefix", "deleted")],
                    self.results(out))
        r.check("subnet.delete.end: prefix removed, namespace kept",
                self.nb.prefix(sub["id"]) is None and self.nb.namespace(net["id"]) is not None)

        # 10. network.delete.end, for both networks
        for n, label in ((net, "network.delete.end"), (odd, "network.delete.end {{workflow.name}}")):
            n = dict(n, subnets=[], revision_number=n["revision_number"] + 1)
            self.publish("network.delete.end", {"network": n, "network_id": n["id"]})
            out = self.deliver(label, "network.delete.end")
            if out:
                r.check(f"{label}: namespace and UCVNI deleted",
                        ("namespace", "deleted") in self.results(out)
                        and ("ucvni", "deleted") in self.results(out), self.results(out))
            self.check_network_gone(label, n)

        # Nothing else arrived.
        stray = self.consumer.receive(timeout=1)
        r.check("RabbitMQ: no other message reached the queue", stray is None,
                stray.body[:300] if stray is not None else "")

    def cleanup(self):
        nb = self.nb
        for id_ in self.prefixes:
            nb.call("DELETE", f"/api/ipam/prefixes/{id_}/")
        for name in self.namespaces:
            ns = nb.namespace(name)
            if ns:
                _, body = nb.call("GET", f"/api/ipam/prefixes/?namespace={ns['id']}")
                for p in (body or {}).get("results", []):
                    nb.call("DELETE", f"/api/ipam/prefixes/{p['id']}/")
                nb.call("DELETE", f"/api/ipam/namespaces/{ns['id']}/")
        for id_ in self.ucvnis:
            nb.call("DELETE", f"/api/plugins/undercloud-vni/ucvnis/{id_}/")
        nb.call("DELETE", f"/api/tenancy/tenants/{self.tenant}/")
        if self.group_id:
            nb.call("DELETE", f"/api/plugins/undercloud-vni/ucvni-groups/{self.group_id}/")
        left = [n for n in self.namespaces if nb.namespace(n)] + [u for u in self.ucvnis if nb.ucvni(u)]
        self.r.check("cleanup: the run's objects are gone from Nautobot", not left, left)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True)
    p.add_argument("--bin", required=True, help="the built oslo-nautobot binary")
    p.add_argument("--jq", required=True, help="Debian's jq")
    p.add_argument("--amqp", required=True, help="amqp://user:pass@host:port/vhost")
    p.add_argument("--work", required=True, help="scratch directory")
    args = p.parse_args()
    if nautobot_env_missing():
        return 1

    r = Report()
    e2e = None
    try:
        e2e = E2E(args, r)
        e2e.setup()
        e2e.run()
    except Unsupported as e:
        r.check(f"the manifests use an Argo feature this test does not emulate: {e}", False)
    except Exception as e:  # noqa: BLE001 - any crash is one failed check
        import traceback
        r.check(f"e2e.py ran to the end ({type(e).__name__}: {e})", False, traceback.format_exc())
    finally:
        if e2e is not None:
            try:
                e2e.cleanup()
            except Exception as e:  # noqa: BLE001
                r.check(f"cleanup ({type(e).__name__}: {e})", False)
            if getattr(e2e, "consumer", None):
                e2e.consumer.close()
            if getattr(e2e, "transport", None):
                e2e.transport.cleanup()
    r.summary()
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
