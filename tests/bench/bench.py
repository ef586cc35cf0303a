#!/usr/bin/env python3
"""The cost of one oslo-nautobot event, against a live Nautobot.

Run through tests/bench/run.sh, which builds the binaries and the launcher and
provides NAUTOBOT_URL and NAUTOBOT_TOKEN. Prints a Markdown report on stdout
(and writes it to --out); progress goes to stderr. Asserts nothing about
timings: the figures are for reading.

Each round is the lifecycle of one network with one subnet, with fresh UUIDs:

    network.create.end  subnet.create.end  network.update.end
    subnet.update.end   subnet.delete.end  network.delete.end

every event one process of the release binary, started by the launcher
(tests/bench/measure.rs) which reports wall time, CPU time and peak RSS.

The Nautobot side: before the measured rounds, one round goes through a
recording proxy (in this script) that notes each request the binary makes
(method, path with query, body, status). In every measured round a twin
network, in a UCVNI group of its own, goes through the same lifecycle, its
requests replayed from that recording by ONE curl process per event over one
connection, right after (or, every other round, right before) the binary's
event, so both meet the same objects in the same state. The sum of curl's
`time_total` is Nautobot's part; curl's wall time is what a general-purpose
client costs for the same requests; the binary's wall time minus curl's
estimates what the binary adds (roughly: it carries Nautobot's jitter). The
binary's CPU time is the direct measure of the time spent inside it.

All rounds use one Keystone project: its tenant is created by the first
event of the first (cold) round, which is reported separately and also
serves as warm-up. The recording round is not counted either.
"""

import argparse
import http.client
import http.server
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

EVENTS = [
    "network.create.end",
    "subnet.create.end",
    "network.update.end",
    "subnet.update.end",
    "subnet.delete.end",
    "network.delete.end",
]
# A peak RSS above this is a reading error, not a measurement (seen now
# and then on the kernel this was written on), and is left out.
IMPLAUSIBLE_RSS_KIB = 1 << 20
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- Nautobot, for setup, lookups and cleanup (never timed) -----------------


class Nautobot:
    def __init__(self, url, token):
        self.url = url.rstrip("/")
        self.token = token
        # Straight to Nautobot, whatever http_proxy says (as the binary and curl, run without it).
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Token {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self.opener.open(req, timeout=60) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def namespace_id(self, name):
        status, body = self.call("GET", "/api/ipam/namespaces/?name=" + urllib.parse.quote(name))
        if status != 200:
            raise RuntimeError(f"namespace lookup {name}: {status} {body}")
        return body["results"][0]["id"] if body["results"] else None


# --- events -----------------------------------------------------------------


class Lifecycle:
    """One network with one subnet, in one UCVNI group."""

    def __init__(self, group, project, vni, cidr):
        self.net = str(uuid.uuid4())
        self.sub = str(uuid.uuid4())
        self.group = group
        self.project = project
        self.vni = vni
        self.cidr = cidr

    def event(self, event_type, n):
        """The decoded notification, as the Argo Sensor hands it over."""
        p = self.project
        if event_type.startswith("network."):
            payload = {
                "network": {
                    "id": self.net,
                    "name": f"bench-{self.net}" + ("-renamed" if event_type != "network.create.end" else ""),
                    "tenant_id": p,
                    "project_id": p,
                    "admin_state_up": True,
                    "mtu": 1450,
                    "status": "ACTIVE",
                    # The subnet exists between its create and its delete.
                    "subnets": [self.sub] if event_type == "network.update.end" else [],
                    "shared": False,
                    "router:external": False,
                    "provider:network_type": "vxlan",
                    "provider:physical_network": None,
                    "provider:segmentation_id": self.vni,
                    "description": "",
                    "tags": [],
                    "revision_number": n,
                }
            }
            if event_type == "network.delete.end":
                payload["network_id"] = self.net
        else:
            gateway = self.cidr.split("/")[0].rsplit(".", 1)[0]
            payload = {
                "subnet": {
                    "id": self.sub,
                    "name": "bench-v4" + ("-renamed" if event_type != "subnet.create.end" else ""),
                    "tenant_id": p,
                    "project_id": p,
                    "network_id": self.net,
                    "ip_version": 4,
                    "cidr": self.cidr,
                    "gateway_ip": gateway + ".1",
                    "allocation_pools": [{"start": gateway + ".2", "end": gateway + ".254"}],
                    "enable_dhcp": True,
                    "router:external": False,
                    "description": "",
                    "tags": [],
                    "revision_number": n,
                }
            }
            if event_type == "subnet.delete.end":
                payload["subnet_id"] = self.sub
        return {
            "message_id": str(uuid.uuid4()),
            "publisher_id": "network.neutron-server-0",
            "event_type": event_type,
            "priority": "INFO",
            "payload": payload,
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime()),
            "_unique_id": uuid.uuid4().hex,
            "_context_request_id": f"req-{uuid.uuid4()}",
            "_context_project_id": p,
            "_context_user_name": "bench",
            "_context_is_admin": True,
            "_context_roles": ["admin", "member", "reader"],
            "_context_auth_token": None,
        }


# --- running a process under the launcher -----------------------------------


class Measured:
    def __init__(self, code, wall_ns, user_us, sys_us, rss_kib, stdout, stderr):
        self.code = code
        self.wall = wall_ns / 1e6  # ms
        self.cpu = (user_us + sys_us) / 1e3  # ms
        self.rss = rss_kib
        self.stdout = stdout
        self.stderr = stderr


class Launcher:
    def __init__(self, path, workdir):
        self.path = path
        self.result = os.path.join(workdir, "measure.out")

    def run(self, argv, env):
        proc = subprocess.run([self.path, self.result, *argv], env=env, stdin=subprocess.DEVNULL, capture_output=True)
        with open(self.result) as f:
            code, wall, user, system, rss = (int(x) for x in f.read().split())
        os.unlink(self.result)
        return Measured(code, wall, user, system, rss, proc.stdout.decode(), proc.stderr.decode())


# --- the recording proxy ----------------------------------------------------


class Recorder(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream):
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http":
            raise SystemExit("the recording proxy speaks plain HTTP: NAUTOBOT_URL must be http://")
        self.upstream = (parsed.hostname, parsed.port or 80)
        self.prefix = parsed.path.rstrip("/")
        self.requests = []
        self.lock = threading.Lock()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}{self.prefix}"

    def take(self):
        with self.lock:
            taken, self.requests = self.requests, []
        return taken


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        conn = http.client.HTTPConnection(*self.server.upstream, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept", "content-type")}
        conn.request(self.command, self.path, body=body if length else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        with self.server.lock:
            self.server.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "accept": self.headers.get("Accept"),
                    "content_type": self.headers.get("Content-Type"),
                    "body": body.decode() if length else None,
                    "status": resp.status,
                }
            )
        self.send_response(resp.status)
        if resp.getheader("Content-Type"):
            self.send_header("Content-Type", resp.getheader("Content-Type"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

    def log_message(self, *args):
        pass


# --- curl replay ---------------------------------------------------------------


def curl_quote(value):
    """A double-quoted value for a curl config file (its escapes: \\ \" \\t \\n \\r)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped + '"'


def curl_config(origin, token, requests):
    """One curl config: every request, one after another (`next`), one connection."""
    lines = []
    for i, r in enumerate(requests):
        if i:
            lines.append("next")
        lines += [
            "url = " + curl_quote(origin + r["path"]),
            "request = " + curl_quote(r["method"]),
            "header = " + curl_quote(f"Authorization: Token {token}"),
            "header = " + curl_quote(f"Accept: {r['accept']}"),
            "header = " + curl_quote("Expect:"),
            "silent",
            "show-error",
            "output = /dev/null",
            "write-out = " + curl_quote("%{http_code} %{time_total}\\n"),
        ]
        if r["body"] is not None:
            lines.append("header = " + curl_quote(f"Content-Type: {r['content_type']}"))
            lines.append("data-binary = " + curl_quote(r["body"]))
    return "\n".join(lines) + "\n"


def substitute(requests, mapping):
    out = []
    for r in requests:
        r = dict(r)
        for old, new in mapping.items():
            r["path"] = r["path"].replace(old, new)
            if r["body"] is not None:
                r["body"] = r["body"].replace(old, new)
        out.append(r)
    return out


# --- the benchmark ------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.url = os.environ["NAUTOBOT_URL"].rstrip("/")
        # Recorded paths carry any path prefix of the URL already.
        parts = urllib.parse.urlsplit(self.url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.token = os.environ["NAUTOBOT_TOKEN"]
        self.nb = Nautobot(self.url, self.token)
        self.work = tempfile.mkdtemp(prefix="oslo-nautobot-bench-")
        self.launcher = Launcher(args.launcher, self.work)
        self.curl = args.curl
        tag = uuid.uuid4().hex[:8]
        self.group_bin = f"bench-{tag}-binary"
        self.group_curl = f"bench-{tag}-curl"
        self.groups = []
        self.project = uuid.uuid4().hex
        self.tenant = str(uuid.UUID(self.project))
        self.vni = random.randrange(100_000, 16_000_000)
        self.lifecycles = []

    # Every object the run may have made, whatever happened.
    def cleanup(self):
        shutil.rmtree(self.work, ignore_errors=True)
        left = []
        for lc in self.lifecycles:
            try:
                self.remove(lc, left)
            except Exception as e:  # keep going: remove what can be removed
                left.append(f"network {lc.net} ({e})")
        for gid, name in self.groups:
            status, _ = self.nb.call("DELETE", f"/api/plugins/undercloud-vni/ucvni-groups/{gid}/")
            if status not in (204, 404):
                left.append(f"UCVNI group {name}")
        status, _ = self.nb.call("DELETE", f"/api/tenancy/tenants/{self.tenant}/")
        if status not in (204, 404):
            left.append(f"tenant {self.tenant}")
        if left:
            log("WARNING: could not remove: " + ", ".join(left))
        else:
            log("cleaned up every object the benchmark made")

    def remove(self, lc, left):
        """Whatever is left of one lifecycle (normally nothing)."""
        self.nb.call("DELETE", f"/api/ipam/prefixes/{lc.sub}/")
        ns = self.nb.namespace_id(lc.net)
        if ns:
            status, body = self.nb.call("GET", f"/api/ipam/prefixes/?namespace={ns}&limit=1000")
            for p in (body or {}).get("results", []):
                self.nb.call("DELETE", f"/api/ipam/prefixes/{p['id']}/")
            status, _ = self.nb.call("DELETE", f"/api/ipam/namespaces/{ns}/")
            if status not in (204, 404):
                left.append(f"namespace {lc.net}")
        status, _ = self.nb.call("DELETE", f"/api/plugins/undercloud-vni/ucvnis/{lc.net}/")
        if status not in (204, 404):
            left.append(f"UCVNI {lc.net}")

    def write_event(self, lc, event_type, n):
        path = os.path.join(self.work, f"{event_type}.json")
        with open(path, "w") as f:
            json.dump(lc.event(event_type, n), f)
        return path

    def run_binary(self, binary, url, lc, event_type, n):
        path = self.write_event(lc, event_type, n)
        env = {"NAUTOBOT_URL": url, "NAUTOBOT_TOKEN": self.token}
        m = self.launcher.run([binary, "--ucvni-group", lc.group, "--file", path], env)
        if m.code != 0:
            raise RuntimeError(f"{event_type}: exit {m.code}\n{m.stderr}{m.stdout}")
        m.summary = json.loads(m.stdout.strip().splitlines()[-1])
        return m

    def run_curl(self, requests):
        path = os.path.join(self.work, "curl.conf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(curl_config(self.origin, self.token, requests))
        m = self.launcher.run([self.curl, "--config", path], {})
        if m.code != 0:
            raise RuntimeError(f"curl exit {m.code}: {m.stderr}")
        answers = [line.split() for line in m.stdout.splitlines() if line.strip()]
        m.statuses = [int(a[0]) for a in answers]
        m.server = sum(float(a[1]) for a in answers) * 1000  # ms
        return m

    def make_group(self, name):
        status, body = self.nb.call("POST", "/api/plugins/undercloud-vni/ucvni-groups/", {"name": name})
        if status != 201:
            raise RuntimeError(f"cannot create UCVNI group {name}: {status} {body}")
        self.groups.append((body["id"], name))

    def machine(self):
        cpu = "unknown CPU"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        status, body = self.nb.call("GET", "/api/status/")
        nautobot = body.get("nautobot-version", "?") if status == 200 else f"? (status {status})"
        return {
            "cpu": cpu,
            "nproc": os.cpu_count(),
            "mem": f"{mem_kib / (1 << 20):.1f} GiB",
            "kernel": f"Linux {platform.release()}",
            "nautobot": nautobot,
        }

    def dry_runs(self, binaries, count):
        """Dry runs: no server, no token. Cycles through the six events, the
        binaries (and /bin/true) taking turns so that all see the same load."""
        lc = Lifecycle("bench", self.project, self.vni, "10.250.0.0/24")
        paths = [self.write_event(lc, t, 1) for t in EVENTS]
        argv = {
            key: [[binary, "--dry-run", "--ucvni-group", "bench", "--file", p] for p in paths]
            for key, binary in binaries.items()
        }
        argv["floor"] = [["/bin/true"]]  # the launcher's floor, under the same load
        for runs in argv.values():  # warm the page cache; not counted
            for args in runs:
                self.launcher.run(args, {})
        out = {key: [] for key in argv}
        for i in range(count):
            for key, runs in argv.items():
                m = self.launcher.run(runs[i % len(runs)], {})
                if m.code != 0:
                    raise RuntimeError(f"dry run exit {m.code}: {m.stderr}")
                out[key].append(m)
        return out

    def run(self):
        a = self.args
        load_start = os.getloadavg()
        started = time.time()
        machine = self.machine()
        log(f"Nautobot {machine['nautobot']} at {self.url}; {a.rounds} rounds")

        self.make_group(self.group_bin)
        self.make_group(self.group_curl)

        # Round 0, cold: the project's tenant does not exist yet.
        log("cold round (the project is new)")
        lc = Lifecycle(self.group_bin, self.project, self.vni, "10.250.0.0/24")
        self.lifecycles.append(lc)
        cold = {}
        for n, t in enumerate(EVENTS):
            cold[t] = self.run_binary(a.binary, self.url, lc, t, n)

        # Round 1, recording: the same lifecycle through the recording proxy.
        log("recording round (through the recording proxy)")
        rec = Recorder(self.url)
        threading.Thread(target=rec.serve_forever, daemon=True).start()
        lc = Lifecycle(self.group_bin, self.project, self.vni, "10.250.0.0/24")
        self.lifecycles.append(lc)
        templates = {}
        rec_ns = None
        for n, t in enumerate(EVENTS):
            if t == "network.delete.end":
                rec_ns = self.nb.namespace_id(lc.net)
            rec.take()
            m = self.run_binary(a.binary, rec.url, lc, t, n)
            templates[t] = rec.take()
            if m.summary["requests"] != len(templates[t]):
                raise RuntimeError(
                    f"{t}: the binary reports {m.summary['requests']} requests, the proxy saw {len(templates[t])}"
                )
        rec.shutdown()
        recorded = lc

        samples = {t: [] for t in EVENTS}
        mismatches = []
        for r in range(a.rounds):
            log(f"round {r + 1}/{a.rounds}")
            lc = Lifecycle(self.group_bin, self.project, self.vni, "10.250.0.0/24")
            twin = Lifecycle(self.group_curl, self.project, self.vni, "10.250.0.0/24")
            self.lifecycles += [lc, twin]
            for n, t in enumerate(EVENTS):
                # The recorded requests, made for the twin's objects.
                mapping = {recorded.net: twin.net, recorded.sub: twin.sub, self.group_bin: self.group_curl}
                if rec_ns and any(rec_ns in x["path"] + (x["body"] or "") for x in templates[t]):
                    # Nautobot's own id. The same lookup for the binary's
                    # network too, so that neither side finds a warmer server.
                    self.nb.namespace_id(lc.net)
                    mapping[rec_ns] = self.nb.namespace_id(twin.net)
                replay = substitute(templates[t], mapping)

                def binary():
                    return self.run_binary(a.binary, self.url, lc, t, n)

                def curl():
                    return self.run_curl(replay)

                if r % 2 == 0:
                    mb, mc = binary(), curl()
                else:
                    mc, mb = curl(), binary()
                expected = [x["status"] for x in templates[t]]
                if mc.statuses != expected:
                    mismatches.append(f"round {r + 1} {t}: curl got {mc.statuses}, the recording {expected}")
                if mb.summary["requests"] != len(expected):
                    mismatches.append(
                        f"round {r + 1} {t}: the binary made {mb.summary['requests']} requests, "
                        f"the recording {len(expected)}"
                    )
                mb.first = r % 2 == 0
                samples[t].append((mb, mc))

        log(f"dry runs ({a.dry_runs} per binary)")
        binaries = {"release": a.binary}
        if a.static_binary:
            binaries["static"] = a.static_binary
        dry = self.dry_runs(binaries, a.dry_runs)
        floor = dry.pop("floor")

        if a.raw:
            with open(a.raw, "w") as f:
                for t in EVENTS:
                    for r, (b, c) in enumerate(samples[t]):
                        row = {
                            "round": r + 1,
                            "event": t,
                            "binary_first": b.first,
                            "requests": b.summary["requests"],
                            "binary": {"wall_ms": b.wall, "cpu_ms": b.cpu, "rss_kib": b.rss},
                            "curl": {
                                "wall_ms": c.wall,
                                "cpu_ms": c.cpu,
                                "rss_kib": c.rss,
                                "nautobot_ms": c.server,
                                "statuses": c.statuses,
                            },
                        }
                        f.write(json.dumps(row) + "\n")
                for key, runs in dry.items():
                    for m in runs:
                        f.write(json.dumps({"dry_run": key, "wall_ms": m.wall, "cpu_ms": m.cpu, "rss_kib": m.rss}) + "\n")
        return self.report(
            machine, load_start, os.getloadavg(), started, floor, cold, templates, samples, dry, mismatches
        )

    # --- the report ---------------------------------------------------------

    def report(self, machine, load_start, load_end, started, floor, cold, templates, samples, dry, mismatches):
        a = self.args
        med = statistics.median

        def ms(x):
            return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"

        def mib(kib):
            return f"{kib / 1024:.1f} MiB"

        def rss_of(runs):
            good = [m.rss for m in runs if m.rss < IMPLAUSIBLE_RSS_KIB]
            return med(good) if good else float("nan"), len(runs) - len(good)

        def size(path):
            n = os.stat(path).st_size
            return f"{n / (1 << 20):.2f} MiB ({n:,} bytes)".replace(",", " ")

        def binary_minus_curl(pairs):
            # Whichever runs first pays for Nautobot still busy with the
            # previous event: the median difference in each order, averaged.
            by_order = [[b.wall - c.wall for b, c in pairs if b.first == first] for first in (True, False)]
            return statistics.mean(med(d) for d in by_order if d)

        def spread(values):
            return f"{ms(min(values))} / **{ms(med(values))}** / {ms(max(values))} ms"

        version = subprocess.run([a.binary, "--version"], capture_output=True, text=True).stdout.strip()
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
        busy = load_start[0] > 1.0
        out = [
            f"Measured {when}, {version}" + (f" ({a.revision})" if a.revision else "") + f", {a.rounds} rounds.",
            "",
            f"Machine: {machine['cpu']}, {machine['nproc']} CPUs, {machine['mem']} RAM, {machine['kernel']}. "
            f"Nautobot {machine['nautobot']} on the same machine (the test suite's: uWSGI 2 processes × 2 threads, "
            f"PostgreSQL, Redis; plain HTTP on loopback). Load average {load_start[0]:.2f} at the start, "
            f"{load_end[0]:.2f} at the end"
            + (": other work was running, so the wall times are noisier than on an idle machine." if busy else "."),
            "",
            "| event | requests | wall: min / median / max | Nautobot answering | curl, same requests "
            "| binary − curl | binary CPU | peak RSS |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        rss_discarded = 0
        shares = []
        for t in EVENTS:
            pairs = samples[t]
            bins = [b for b, _ in pairs]
            curls = [c for _, c in pairs]
            rss, bad = rss_of(bins)
            rss_discarded += bad
            reqs = "/".join(str(x) for x in sorted({b.summary["requests"] for b in bins}))
            shares.append(med(b.cpu for b in bins) / med(b.wall for b in bins))
            out.append(
                f"| `{t}` | {reqs} | {spread([b.wall for b in bins])} "
                f"| {ms(med(c.server for c in curls))} ms "
                f"| {ms(med(c.wall for c in curls))} ms "
                f"| {ms(binary_minus_curl(pairs))} ms "
                f"| {ms(med(b.cpu for b in bins))} ms "
                f"| {mib(rss)} |"
            )
        every_curl = [c for t in EVENTS for _, c in samples[t]]
        every_bin = [b for t in EVENTS for b, _ in samples[t]]
        curl_rss, _ = rss_of(every_curl)
        c = cold["network.create.end"]
        out += [
            "",
            "Medians over the rounds unless min / max. *requests*: the binary's own count (its summary). "
            "*Nautobot answering*: the sum of curl's `time_total` over the same requests. *curl, same requests*: "
            "one curl process making the binary's requests (same method, path and body, recorded through a proxy) "
            "over one connection, against a twin network in the same state, process start included. "
            "*binary − curl*: the per-round difference in wall time (median in each order, binary first or curl "
            "first, averaged), an estimate of what the binary adds over curl; it carries Nautobot's jitter, and is "
            "negative where the binary costs less than curl. "
            "*binary CPU*: user + system time of the process, the part spent inside the binary. "
            "*peak RSS*: the process's maximum resident set.",
            "",
            f"The binary's own CPU time is {min(shares):.1%}–{max(shares):.1%} of an event's median wall time: "
            f"the rest is waiting for Nautobot. curl itself, "
            f"for comparison: {ms(med(c.cpu for c in every_curl))} ms CPU and {mib(curl_rss)} peak RSS per process "
            f"(the binary: {ms(med(b.cpu for b in every_bin))} ms, {mib(rss_of(every_bin)[0])}).",
            "",
            f"Cold: the first event of a project that is not a tenant yet (`network.create.end`, which then "
            f"creates the tenant): {c.summary['requests']} requests, {ms(c.wall)} ms (one run).",
            "",
            "Without a server:",
            "",
            "| binary | size | dry run: min / median / max | dry-run CPU | dry-run peak RSS |",
            "|---|---:|---:|---:|---:|",
        ]
        labels = {
            "release": ("`target/release/oslo-nautobot` (dynamic, glibc)", a.binary),
            "static": ("static (`+crt-static`, glibc), `target/x86_64-unknown-linux-gnu/release/`", a.static_binary),
        }
        for key, runs in dry.items():
            label, path = labels[key]
            rss, bad = rss_of(runs)
            rss_discarded += bad
            out.append(
                f"| {label} | {size(path)} | {spread([m.wall for m in runs])} "
                f"| {ms(med(m.cpu for m in runs))} ms | {mib(rss)} |"
            )
        floor_rss, _ = rss_of(floor)
        out += [
            "",
            f"{len(next(iter(dry.values())))} dry runs per binary, over the six events. Every process is started "
            f"by a small launcher (`tests/bench/measure.rs`) that times it from spawn to exit and reads its peak RSS "
            f"from `wait4`; for `/bin/true` it reports {ms(med(m.wall for m in floor))} ms and {mib(floor_rss)}, "
            f"the floor of both.",
        ]
        if rss_discarded:
            out += ["", f"{rss_discarded} implausible peak-RSS reading(s) (over 1 GiB) left out."]
        if mismatches:
            out += ["", "The replay did not match the binary here (those figures compare less well):", ""]
            out += [f"- {m}" for m in mismatches]
        out += ["", "The requests of each event, as recorded (steady state):", ""]
        for t in EVENTS:
            seq = ", ".join(f"`{r['method']} {r['path']}` {r['status']}" for r in templates[t])
            out.append(f"- `{t}`: {self.redact(seq)}")
        return "\n".join(out) + "\n"

    def redact(self, text):
        """This run's UUIDs, shown generically."""
        for lc in self.lifecycles:
            text = text.replace(lc.net, "{network}").replace(lc.sub, "{subnet}")
        return UUID_RE.sub("{id}", text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--static-binary")
    ap.add_argument("--launcher", required=True)
    ap.add_argument("--curl", default="/usr/bin/curl")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "15")))
    ap.add_argument("--dry-runs", type=int, default=int(os.environ.get("BENCH_DRY_RUNS", "60")))
    ap.add_argument("--revision", default="", help="what was built, for the report")
    ap.add_argument("--out", help="also write the report here")
    ap.add_argument("--raw", default=os.environ.get("BENCH_RAW"), help="write every sample here, as JSON lines")
    a = ap.parse_args()
    for var in ("NAUTOBOT_URL", "NAUTOBOT_TOKEN"):
        if not os.environ.get(var):
            raise SystemExit(f"{var} is not set: run through tests/bench/run.sh")
    if a.rounds < 1:
        raise SystemExit("BENCH_ROUNDS must be at least 1")
    bench = Bench(a)
    try:
        report = bench.run()
    finally:
        bench.cleanup()
    sys.stdout.write(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
