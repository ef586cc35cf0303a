"""Checks of the consumer's monitoring (workflows/consume/monitoring/), run by
manifests.py: the PrometheusRule's alerts with promtool (check rules, and
test rules on prometheusrule.test.yaml beside this file), the PodMonitor
against the consumer Deployments, and the Grafana dashboard JSON.

Metric names are the consumer's contract (`oslo-nautobot consume`, /metrics):
only those may appear in an alert or a panel, and each should be exported by
src/ (METRICS_PENDING lists those it does not export yet).
"""

import copy
import glob
import json
import os
import re
import shutil
import subprocess

import yaml

MONITORING = "workflows/consume/monitoring"
TESTS = "prometheusrule.test.yaml"  # beside this file
# name: type
METRICS = {
    "oslo_nautobot_up": "gauge",
    "oslo_nautobot_active": "gauge",
    "oslo_nautobot_queue_messages": "gauge",
    "oslo_nautobot_in_flight": "gauge",
    "oslo_nautobot_held_events": "gauge",
    "oslo_nautobot_held_oldest_seconds": "gauge",
    "oslo_nautobot_retries_total": "counter",
    "oslo_nautobot_dead_letters_total": "counter",
    "oslo_nautobot_events_total": "counter",
    "oslo_nautobot_event_seconds": "histogram",
}
# Metrics of the contract that src/ does not export yet.
# lead: remove once src/consume/metrics.rs exports them
# (src/consume/metrics.rs exports all of them now.)
METRICS_PENDING = set()
SERIES = {f"{m}{suffix}" for m, t in METRICS.items()
          for suffix in (("_bucket", "_sum", "_count") if t == "histogram" else ("",))}
# The alerts the brief asks for, by what they watch.
REQUIRED_ALERTS = {
    "a consumer down, no replica up": {"OsloNautobotConsumerDown", "OsloNautobotConsumerAbsent"},
    "no active consumer while a backlog exists": {"OsloNautobotNoActiveConsumer"},
    "backlog growing": {"OsloNautobotBacklogGrowing"},
    "oldest held event too old": {"OsloNautobotHeldEventTooOld"},
    "failure rate (failed/total over 10m)": {"OsloNautobotFailureRate"},
    "dead letters published": {"OsloNautobotDeadLetters"},
}
GROUPING = {"namespace", "deployment"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
            "bool", "offset", "inf", "nan", "atan2",
            "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
            "count_values", "group", "limitk", "limit_ratio"}
GRAFANA_VARS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h",
                "namespace": "argo-events", "deployment": ".*"}


def metric_names(expr):
    """The metric names a PromQL expression selects (a small tokenizer:
    strings, label matchers, ranges and grouping clauses removed; names
    followed by "(" are functions, KEYWORDS are operators)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", r" \1 ", text)
    names = set()
    for m in re.finditer(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-z]*|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = m.group(1), m.group(2)
        if name and not call and name.lower() not in KEYWORDS:
            names.add(name)
    return names


def grouping_clauses(expr):
    """The label lists of every by (...) and on (...) clause."""
    return [{x.strip() for x in m.group(2).split(",") if x.strip()}
            for m in re.finditer(r"\b(by|on)\s*\(([^()]*)\)", expr)]


def grafana_to_promql(expr):
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace("${%s}" % var, value).replace("$" + var, value)
    return expr


def run(cmd, cwd=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    return proc.returncode, proc.stdout + proc.stderr


def src_exports(repo):
    text = ""
    for f in glob.glob(os.path.join(repo, "src", "**", "*.rs"), recursive=True):
        with open(f, encoding="utf-8") as fh:
            text += fh.read()
    return {m for m in METRICS if re.search(rf'"(# (HELP|TYPE) )?{m}\b', text)}


def check_monitoring(r, args, mon, consume, work, promtool):
    def one(kind):
        found = [o for o in mon.values() if o.get("kind") == kind]
        return found[0] if len(found) == 1 else None

    rule = one("PrometheusRule")
    podmon = one("PodMonitor")
    r.check(f"{MONITORING}: one PrometheusRule and one PodMonitor", rule is not None and podmon is not None)
    outdir = os.path.join(work, "monitoring")
    os.makedirs(outdir, exist_ok=True)

    exported = src_exports(args.repo)
    missing = sorted(m for m in METRICS if m not in exported and m not in METRICS_PENDING)
    r.check(f"metrics of the consumer's contract exported by src/ ({len(exported)} of {len(METRICS)}; "
            f"pending: {', '.join(sorted(METRICS_PENDING - exported)) or 'none'})", not missing, missing)
    for m in sorted(METRICS_PENDING & exported):
        print(f"NOTE: {m} is exported by src/ now: remove it from METRICS_PENDING (tests/manifests/monitoring.py)")

    if rule is not None:
        check_rules(r, args, rule, outdir, promtool)
    if podmon is not None:
        check_podmonitor(r, podmon, consume)
    check_dashboard(r, args, outdir, promtool)


def alerts_of(rule):
    return [x for g in rule["spec"]["groups"] for x in g.get("rules", []) if "alert" in x]


def check_rules(r, args, rule, outdir, promtool):
    alerts = alerts_of(rule)
    names = [a["alert"] for a in alerts]
    r.check("PrometheusRule: alert names unique", len(names) == len(set(names)), names)
    for what, wanted in REQUIRED_ALERTS.items():
        r.check(f"PrometheusRule: alerts on {what} ({', '.join(sorted(wanted))})", wanted <= set(names),
                sorted(wanted - set(names)))
    bad_meta, bad_names, bad_grouping = [], [], []
    for a in alerts:
        ann = a.get("annotations", {})
        if a.get("labels", {}).get("severity") not in ("critical", "warning") or not ann.get("summary") \
                or not ann.get("description"):
            bad_meta.append(a["alert"])
        foreign = metric_names(str(a["expr"])) - SERIES
        if foreign or not metric_names(str(a["expr"])):
            bad_names.append(f"{a['alert']}: {sorted(foreign) or 'no metric'}")
        if "absent(" not in a["expr"]:
            clauses = grouping_clauses(a["expr"])
            if not clauses or any(c != GROUPING for c in clauses):
                bad_grouping.append(f"{a['alert']}: {clauses}")
    r.check("PrometheusRule: every alert has a severity (critical or warning), a summary and a description",
            not bad_meta, bad_meta)
    r.check(f"PrometheusRule: every alert reads only the consumer's metrics ({len(METRICS)} names)",
            not bad_names, bad_names)
    r.check("PrometheusRule: every alert (but the absent() one) is per namespace and deployment "
            "(by/on (namespace, deployment), the labels podmonitor.yaml gives)", not bad_grouping, bad_grouping)
    by_name = {a["alert"]: a for a in alerts}
    fr = by_name.get("OsloNautobotFailureRate", {}).get("expr", "")
    r.check("PrometheusRule: the failure rate is failed/total of oslo_nautobot_events_total over 10m",
            'outcome="failed"' in fr and fr.count("oslo_nautobot_events_total") >= 2 and "[10m]" in fr
            and "/" in fr, fr)

    if not r.check("promtool is installed (validate.sh installs Debian's prometheus package)",
                   bool(promtool), "promtool not found"):
        return
    rules_file = os.path.join(outdir, "prometheusrule.rules.yaml")
    with open(rules_file, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": rule["spec"]["groups"]}, f, sort_keys=False)
    rc, out = run([promtool, "check", "rules", rules_file])
    r.check(f"promtool check rules on the PrometheusRule's groups ({len(alerts)} alerts)", rc == 0, out)

    tests_src = os.path.join(args.here, TESTS)
    if not r.check(f"tests/manifests/{TESTS}: present", os.path.exists(tests_src)):
        return
    with open(tests_src, encoding="utf-8") as f:
        tests = yaml.safe_load(f)
    r.check(f"{TESTS}: reads the rules extracted from the PrometheusRule",
            tests.get("rule_files") == [os.path.basename(rules_file)], tests.get("rule_files"))
    tests_file = os.path.join(outdir, TESTS)
    shutil.copyfile(tests_src, tests_file)
    rc, out = run([promtool, "test", "rules", TESTS], cwd=outdir)
    r.check(f"promtool test rules {TESTS}: every case passes", rc == 0, out)

    fires, quiet = set(), set()
    for case in tests.get("tests", []):
        for t in case.get("alert_rule_test", []):
            (fires if t.get("exp_alerts") else quiet).add(t.get("alertname"))
    r.check(f"{TESTS}: every alert has a case where it fires and one where it does not",
            set(names) <= fires and set(names) <= quiet,
            f"never firing: {sorted(set(names) - fires)}; never quiet: {sorted(set(names) - quiet)}")
    unknown = (fires | quiet) - set(names)
    r.check(f"{TESTS}: tests only alerts of the PrometheusRule", not unknown, sorted(unknown))

    # Negative self-tests: the unit tests must notice an alert that never
    # fires, and promtool must refuse a broken expression.
    still_pass = []
    for name in names:
        groups = copy.deepcopy(rule["spec"]["groups"])
        for g in groups:
            for x in g.get("rules", []):
                if x.get("alert") == name:
                    x["expr"] = "vector(0) > 1"
        neg_dir = os.path.join(outdir, f"never-{name}")
        os.makedirs(neg_dir, exist_ok=True)
        with open(os.path.join(neg_dir, os.path.basename(rules_file)), "w", encoding="utf-8") as f:
            yaml.safe_dump({"groups": groups}, f, sort_keys=False)
        shutil.copyfile(tests_src, os.path.join(neg_dir, TESTS))
        rc, _ = run([promtool, "test", "rules", TESTS], cwd=neg_dir)
        if rc == 0:
            still_pass.append(name)
    r.check(f"NEGATIVE {TESTS} fails when any one alert never fires ({len(names)} copies)",
            names and not still_pass, f"tests still pass without: {still_pass}")
    groups = copy.deepcopy(rule["spec"]["groups"])
    groups[0]["rules"][0]["expr"] = str(groups[0]["rules"][0]["expr"]) + " )"
    broken = os.path.join(outdir, "broken.rules.yaml")
    with open(broken, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    rc, _ = run([promtool, "check", "rules", broken])
    r.check("NEGATIVE promtool check rules refuses a rule with a broken expression", rc != 0)


def check_podmonitor(r, podmon, consume):
    spec = podmon["spec"]
    deps = {o["metadata"]["name"]: o for o in consume.values() if o.get("kind") == "Deployment"}
    selected, missed = [], []
    for name, d in deps.items():
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        (selected if selects(spec.get("selector", {}), labels) else missed).append(name)
    others = [o["metadata"]["name"] for o in consume.values() if o.get("kind") == "CronJob"
              and selects(spec.get("selector", {}),
                          o["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {}))]
    r.check("PodMonitor: selects the pods of every consumer Deployment and nothing else of the path",
            deps and not missed and not others, f"missed {missed}, also {others}")
    r.check("PodMonitor: in its own namespace (the consumers')",
            not spec.get("namespaceSelector") or spec["namespaceSelector"].get("any") is not True)
    eps = spec.get("podMetricsEndpoints", [])
    r.check("PodMonitor: one endpoint, the port named metrics, /metrics", len(eps) == 1
            and eps[0].get("port") == "metrics" and eps[0].get("path", "/metrics") == "/metrics", eps)
    for name in selected:
        c = deps[name]["spec"]["template"]["spec"]["containers"]
        r.check(f"PodMonitor: Deployment {name} has the port metrics",
                any(p.get("name") == "metrics" for x in c for p in x.get("ports", [])))
    relabel = [x for ep in eps for x in ep.get("relabelings", [])
               if x.get("targetLabel") == "deployment"
               and x.get("sourceLabels") == ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"]
               and x.get("action", "replace").lower() == "replace"]
    r.check("PodMonitor: the label deployment from the pod's app.kubernetes.io/instance",
            len(relabel) == 1, eps)


def selects(selector, labels):
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        key, op, values = e.get("key"), e.get("operator"), e.get("values", [])
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) \
                or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return bool(selector)


def check_dashboard(r, args, outdir, promtool):
    path = os.path.join(args.repo, MONITORING, "dashboard.json")
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        r.check(f"{MONITORING}/dashboard.json: valid JSON", False, e)
        return
    r.check(f"{MONITORING}/dashboard.json: valid JSON", True)
    panels = dash.get("panels", [])
    r.check("dashboard: uid, title, schemaVersion, panels",
            isinstance(dash.get("uid"), str) and dash.get("title") and isinstance(dash.get("schemaVersion"), int)
            and panels and "__inputs" not in dash)
    variables = dash.get("templating", {}).get("list", [])
    ds_vars = [v for v in variables if v.get("type") == "datasource" and v.get("query") == "prometheus"]
    r.check("dashboard: a Prometheus data source variable", len(ds_vars) == 1, variables)
    ds_name = ds_vars[0]["name"] if ds_vars else "datasource"
    templated = {f"${{{ds_name}}}", f"${ds_name}"}

    def ds_ok(ds):
        if isinstance(ds, str):
            return ds in templated
        return isinstance(ds, dict) and ds.get("uid") in templated and ds.get("type", "prometheus") == "prometheus"

    bad_ds, exprs = [], []  # exprs: (where, expr)
    for p in panels:
        if not ds_ok(p.get("datasource")):
            bad_ds.append(f"panel {p.get('id')} {p.get('title')}: {p.get('datasource')}")
        for t in p.get("targets", []):
            if "datasource" in t and not ds_ok(t["datasource"]):
                bad_ds.append(f"panel {p.get('id')} target {t.get('refId')}: {t['datasource']}")
            if t.get("expr"):
                exprs.append((f"panel {p.get('id')} ({p.get('title')}) target {t.get('refId')}", t["expr"]))
    for v in variables:
        if v.get("type") == "query":
            if not ds_ok(v.get("datasource")):
                bad_ds.append(f"variable {v.get('name')}: {v.get('datasource')}")
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"\s*label_values\((.*),\s*[a-zA-Z_]\w*\s*\)\s*", q or "")
            exprs.append((f"variable {v.get('name')}", m.group(1) if m else q or ""))
    r.check("dashboard: every panel, target and query variable uses the templated data source",
            not bad_ds, bad_ds)
    ids = [p.get("id") for p in panels]
    grid = [p.get("gridPos", {}) for p in panels]
    r.check("dashboard: unique panel ids, every panel placed within 24 columns, with a query",
            len(ids) == len(set(ids)) and all(g.get("x", -1) >= 0 and g.get("x", 0) + g.get("w", 0) <= 24
                                              and g.get("w", 0) > 0 and g.get("h", 0) > 0 for g in grid)
            and all(any(t.get("expr") for t in p.get("targets", [])) for p in panels), ids)
    foreign = []
    used = set()
    for where, e in exprs:
        names = metric_names(grafana_to_promql(e))
        used |= names
        if names - SERIES or not names:
            foreign.append(f"{where}: {sorted(names - SERIES) or 'no metric'}")
    r.check(f"dashboard: every query reads only the consumer's metrics ({len(exprs)} queries)",
            not foreign, foreign)
    # A panel per metric of the brief's list.
    shown = {m for m in METRICS if any(s in used for s in SERIES if s.startswith(m))}
    r.check("dashboard: a panel for every metric (up, active, backlog, in flight, held events and oldest "
            "held age, events, retries, dead letters, latency)", shown == set(METRICS),
            sorted(set(METRICS) - shown))
    texts = [e for _, e in exprs]
    r.check("dashboard: up and active per pod, events/s by outcome and by type, latency quantiles "
            "from the histogram",
            any("oslo_nautobot_up" in e and "pod" in e for e in texts)
            and any("oslo_nautobot_active" in e and "pod" in e for e in texts)
            and any("oslo_nautobot_events_total" in e and "outcome" in e and "rate(" in e for e in texts)
            and any("oslo_nautobot_events_total" in e and "event_type" in e and "rate(" in e for e in texts)
            and any("histogram_quantile(" in e and "oslo_nautobot_event_seconds_bucket" in e for e in texts))
    # The tokenizer must catch a foreign name (self-test).
    probe = 'sum by (pod) (rate(node_cpu_seconds_total{namespace="$namespace"}[5m])) / oslo_nautobot_up'
    r.check("NEGATIVE dashboard metric check: a query reading another metric is caught",
            metric_names(grafana_to_promql(probe)) - SERIES == {"node_cpu_seconds_total"},
            metric_names(probe))
    if not promtool:
        return  # reported by check_rules
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(e)} for i, (_, e) in enumerate(exprs)]}]}
    qfile = os.path.join(outdir, "dashboard.rules.yaml")
    with open(qfile, "w", encoding="utf-8") as f:
        yaml.safe_dump(rules, f, sort_keys=False)
    rc, out = run([promtool, "check", "rules", qfile])
    r.check(f"dashboard: every query parses (promtool check rules, Grafana variables replaced; {len(exprs)} "
            f"queries)", rc == 0, out)
