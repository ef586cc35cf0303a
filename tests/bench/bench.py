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

Many events (BENCH_MANY networks, 20 by default; 0 leaves this out): the
same lifecycles for that many networks at once, 6 events each, every
network's create first, then every subnet's create, and so on. Applied one
process per event as above; by `oslo-nautobot replay` from one JSON-lines
file (the `ms` of each result line is the event's latency); and, with
--consume-binary, by `oslo-nautobot consume` at --concurrency 1 and 4: the
events are published with oslo.messaging into the consumer's queue
(declared here first) before the consumer starts, so it works through a
backlog; it is stopped once /metrics counts them all, and its -v log tells
when each event was started and applied. Every run on fresh networks,
BENCH_MANY_REPEATS (3) runs of each mode, taking turns. One table: events/s,
per-event latency, requests per event.
"""

import argparse
import datetime
import http.client
import http.server
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import testlib  # noqa: E402 - standard library only; what needs the venv is imported where used
from testlib import free_port  # noqa: E402

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


class Nautobot(testlib.Nautobot):
    def __init__(self, url, token):
        # Straight to Nautobot, whatever http_proxy says (as the binary and curl, run without it).
        super().__init__(url, token, timeout=60, direct=True)

    def namespace_id(self, name):
        ns = self.namespace(name)
        return ns["id"] if ns else None


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


# --- many events in one process: replay and consume ---------------------------

EXCHANGE = "neutron"
ROUTING_KEY = "notifications.info"
CONSUME_QUEUE = "oslo-nautobot-bench"
CONSUME_PREFETCH = 32  # the consumer's default, given explicitly
# env_logger's line: "[2026-11-27T02:57:01.123Z INFO  oslo_nautobot::consume] text"
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z\s+([A-Z]+)\s+(\S+)\] (.*)$")
# What a worker logs as it starts applying an event (-v).
STARTING = re.compile(r"^([a-z_]+\.[a-z_]+\.[a-z_]+) \(message (\S+)\)$")


def log_time(stamp):
    """An env_logger timestamp (UTC), as seconds since the epoch."""
    return datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc).timestamp()


def nearest_rank(values, fraction):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


class ManyRun:
    """One mode's figures. Times in ms."""

    def __init__(self, mode, wall, latencies, requests, types, cpu, rss, notes=None):
        self.mode = mode
        self.wall = wall
        self.latencies = latencies
        self.requests = requests
        self.types = types  # event type of each latency
        self.cpu = cpu  # the process's CPU time, all events
        self.rss = rss  # KiB
        self.notes = notes or {}

    @property
    def events(self):
        return len(self.latencies)

    @staticmethod
    def pool(runs):
        """Runs of one mode as one: their events, times and counts added up."""
        notes = {}
        if runs[0].notes:
            notes = {"startup": [x for r in runs for x in r.notes["startup"]]}
            for key in ("active", "receipt_sum", "receipt_count"):
                notes[key] = sum(r.notes[key] for r in runs)
            notes["buckets"] = {b: sum(r.notes["buckets"].get(b, 0) for r in runs) for b in runs[0].notes["buckets"]}
        return ManyRun(
            runs[0].mode,
            sum(r.wall for r in runs),
            [x for r in runs for x in r.latencies],
            [x for r in runs for x in r.requests],
            [x for r in runs for x in r.types],
            sum(r.cpu for r in runs),
            max(r.rss for r in runs),
            notes,
        )


class Publisher(testlib.AmqpChannel):
    """Neutron's side: oslo.messaging's Notifier set up as neutron.conf sets
    it up (driver messagingv2, topics notifications, control_exchange
    neutron, amqp_durable_queues true), and a plain AMQP channel of the
    benchmark's own that declares the consumer's queue before the consumer
    runs (so that the published events wait in it) and counts its messages.
    Needs the venv with oslo.messaging (tests/bench/run.sh runs this script
    with its python)."""

    def __init__(self, vhost, project, work):
        import amqp
        from oslo_context import context

        super().__init__(vhost)
        # What a broker going away raises here.
        self.errors = (OSError, amqp.exceptions.AMQPError)
        self.context = context
        self.project = project
        url = f"rabbit://guest:guest@127.0.0.1:5672/{urllib.parse.quote(vhost, safe='')}"
        self.transport, self.notifier = testlib.neutron_notifier(work, url, EXCHANGE, True,
                                                                 "network.neutron-server-0")

    def fresh_queue(self, queue):
        """An empty queue, with the exchange and binding, declared exactly as
        the consumer declares them."""
        ch = self.channel()
        ch.queue_delete(queue)
        ch.exchange_declare(EXCHANGE, "topic", durable=True, auto_delete=False)
        ch.queue_declare(queue, durable=True, auto_delete=False)
        ch.queue_bind(queue, EXCHANGE, ROUTING_KEY)

    def ready(self, queue):
        _, count, _ = self.channel().queue_declare(queue, passive=True)
        return count

    def publish(self, notification):
        ctx = self.context.RequestContext(
            user_id=uuid.uuid4().hex,
            project_id=self.project,
            request_id=f"req-{uuid.uuid4()}",
            is_admin=True,
            roles=["admin", "member", "reader"],
        )
        self.notifier.info(ctx, notification["event_type"], notification["payload"])

    def close(self):
        self.reset()
        self.transport.cleanup()


class Disturbed(Exception):
    """RabbitMQ went away during a consume run (it is shared: another
    suite's restart, say): the run's figures are not kept."""


def consumer_metrics(port):
    """{'name{labels}': value} of the consumer's /metrics; {} when unreachable."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def events_total(metrics, outcome=None):
    return int(
        sum(
            v
            for k, v in metrics.items()
            if k.startswith("oslo_nautobot_events_total{") and (outcome is None or f'outcome="{outcome}"' in k)
        )
    )


def process_usage(pid):
    """CPU time (ms, user + system) and peak RSS (KiB) of a running process.
    The CPU time is the sum of its threads' schedstat (nanoseconds), or,
    where that is missing, /proc/PID/stat's clock ticks (10 ms steps)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")  # utime, stime
    try:
        ns = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                ns += int(f.read().split()[0])
        cpu = ns / 1e6
    except (OSError, ValueError, IndexError):
        pass
    rss = float("nan")
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1])
    return cpu, rss


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
        # The many-events section: networks that exist at the same time, so
        # each its own segmentation id, clear of the rounds' one.
        self.many_vni = self.vni + 1 if self.vni < 8_000_000 else self.vni - 10_000
        self.many_lifecycles = []

    # Every object the run may have made, whatever happened.
    def cleanup(self):
        shutil.rmtree(self.work, ignore_errors=True)
        left = []
        for lc in self.lifecycles:
            try:
                self.remove(lc, left)
            except Exception as e:  # keep going: remove what can be removed
                left.append(f"network {lc.net} ({e})")
        try:
            self.sweep(self.many_lifecycles, left)
        except Exception as e:  # noqa: BLE001
            left.append(f"the many-events networks ({e})")
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

    def sweep(self, lifecycles, left):
        """What is left of many lifecycles, found with a few list requests
        (normally nothing), then removed lifecycle by lifecycle."""
        dirty = set()
        for i in range(0, len(lifecycles), 50):
            chunk = lifecycles[i : i + 50]
            by_id = {x: lc for lc in chunk for x in (lc.net, lc.sub)}
            for path, key, ids in (
                ("/api/ipam/namespaces/", "name", [lc.net for lc in chunk]),
                ("/api/plugins/undercloud-vni/ucvnis/", "id", [lc.net for lc in chunk]),
                ("/api/ipam/prefixes/", "id", [lc.sub for lc in chunk]),
            ):
                query = urllib.parse.urlencode({key: ids, "limit": 1000}, doseq=True)
                status, body = self.nb.call("GET", f"{path}?{query}")
                if status != 200:
                    dirty.update(chunk)  # cannot tell: look at each
                    continue
                for obj in body["results"]:
                    lc = by_id.get(obj.get(key))
                    if lc:
                        dirty.add(lc)
        for lc in dirty:
            self.remove(lc, left)

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

    # --- many events: replay and consume ---------------------------------------

    def many_batch(self):
        """BENCH_MANY fresh lifecycles, and their events in publishing order:
        every network's create, then every subnet's create, and so on
        through the six event types, as a burst of many networks would come."""
        lcs = []
        for i in range(self.args.many):
            self.many_vni += 1
            lcs.append(Lifecycle(self.group_bin, self.project, self.many_vni, f"10.251.{i % 256}.0/24"))
        self.many_lifecycles += lcs
        return [lc.event(t, n) for n, t in enumerate(EVENTS) for lc in lcs]

    def run_processes(self):
        """The batch, one process of the release binary per event, one after
        another, as the rounds run them."""
        events = self.many_batch()
        paths = []
        for i, e in enumerate(events):
            paths.append(os.path.join(self.work, f"event-{i}.json"))
            with open(paths[-1], "w") as f:
                json.dump(e, f)
        env = {"NAUTOBOT_URL": self.url, "NAUTOBOT_TOKEN": self.token}
        runs = []
        for e, path in zip(events, paths, strict=True):
            m = self.launcher.run([self.args.binary, "--ucvni-group", self.group_bin, "--file", path], env)
            if m.code != 0:
                raise RuntimeError(f"{e['event_type']}: exit {m.code}\n{m.stderr}{m.stdout}")
            m.summary = json.loads(m.stdout.strip().splitlines()[-1])
            runs.append(m)
        for path in paths:
            os.unlink(path)
        good_rss = [m.rss for m in runs if m.rss < IMPLAUSIBLE_RSS_KIB]
        return ManyRun(
            "one process per event",
            sum(m.wall for m in runs),
            [m.wall for m in runs],
            [m.summary["requests"] for m in runs],
            [e["event_type"] for e in events],
            sum(m.cpu for m in runs),
            statistics.median(good_rss) if good_rss else float("nan"),
        )

    def run_replay(self):
        events = self.many_batch()
        path = os.path.join(self.work, "events.jsonl")
        with open(path, "w") as f:
            for e in events:
                f.write(json.dumps(e) + "\n")
        env = {"NAUTOBOT_URL": self.url, "NAUTOBOT_TOKEN": self.token}
        m = self.launcher.run([self.args.binary, "--ucvni-group", self.group_bin, "replay", path], env)
        lines = [json.loads(x) for x in m.stdout.splitlines() if x.strip()]
        results = [x for x in lines if not x.get("summary")]
        failed = [x for x in results if x.get("exit") != 0]
        if m.code != 0 or failed or len(results) != len(events):
            raise RuntimeError(
                f"replay: exit {m.code}, {len(results)} results for {len(events)} events, "
                f"{len(failed)} failed: {failed[:3]}\n{m.stderr[-2000:]}"
            )
        return ManyRun(
            "`replay FILE`",
            m.wall,
            [x["ms"] for x in results],
            [x["requests"] for x in results],
            [x["event_type"] for x in results],
            m.cpu,
            m.rss,
        )

    def run_consume(self, publisher, concurrency):
        a = self.args
        events = self.many_batch()
        try:
            publisher.fresh_queue(CONSUME_QUEUE)
            t = time.monotonic()
            for e in events:
                publisher.publish(e)
            deadline = time.monotonic() + 30
            while publisher.ready(CONSUME_QUEUE) < len(events) and time.monotonic() < deadline:
                time.sleep(0.05)
            backlog = publisher.ready(CONSUME_QUEUE)
        except publisher.errors as e:
            raise Disturbed(f"publishing: {e!r}") from e
        if backlog != len(events):
            raise RuntimeError(f"published {len(events)} events, the queue holds {backlog}")
        log(f"published {len(events)} events with oslo.messaging in {time.monotonic() - t:.1f} s; starting consume")

        port = free_port()
        log_path = os.path.join(self.work, f"consume-{concurrency}.log")
        vhost = urllib.parse.quote(a.amqp_vhost, safe="")
        argv = [
            a.consume_binary, "consume", "-v",
            "--amqp-url", f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
            "--queue", CONSUME_QUEUE,
            "--exchange", EXCHANGE,
            "--exchange-durable", "true",
            "--concurrency", str(concurrency),
            "--prefetch", str(CONSUME_PREFETCH),
            "--metrics-addr", f"127.0.0.1:{port}",
        ]  # fmt: skip
        env = {"NAUTOBOT_URL": self.url, "NAUTOBOT_TOKEN": self.token, "UCVNI_GROUP_NAME": self.group_bin}

        def tail():
            with open(log_path, errors="replace") as f:
                return "".join(f.readlines()[-30:])

        with open(log_path, "w") as out:
            spawned = time.time()
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 60 + 2 * len(events)
            while True:
                m = consumer_metrics(port)
                if m and events_total(m) >= len(events) and m.get("oslo_nautobot_in_flight") == 0:
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"consume exited with {proc.returncode}:\n{tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"consume: {events_total(m)} of {len(events)} events after the timeout:\n{tail()}"
                    )
                # Not often: every answer costs the consumer a little CPU,
                # and the times come from its log, not from this loop.
                time.sleep(0.2)
            cpu, rss = process_usage(proc.pid)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        with open(log_path, errors="replace") as f:
            lost = [line for line in f if "lost RabbitMQ" in line or "reconnecting in" in line]
        if lost:
            raise Disturbed(lost[0].strip())
        if events_total(m, "failed"):
            raise RuntimeError(f"consume: {events_total(m, 'failed')} events failed:\n{tail()}")
        if proc.returncode != 0:
            raise RuntimeError(f"consume: exit {proc.returncode} on SIGTERM:\n{tail()}")

        # The log: when the consumer was consuming, and for every event
        # when its worker started applying it and when it was applied.
        consuming, started, applied = None, {}, []
        with open(log_path, errors="replace") as f:
            for line in f:
                match = LOG_LINE.match(line.rstrip("\n"))
                if not match:
                    continue
                at, text = log_time(match.group(1)), match.group(4)
                if consuming is None and text.startswith(f"consuming {CONSUME_QUEUE} "):
                    consuming = at
                elif s := STARTING.match(text):
                    started.setdefault(s.group(2), at)
                elif text.startswith("{"):
                    try:
                        summary = json.loads(text)
                    except ValueError:
                        continue
                    if isinstance(summary, dict) and "results" in summary:
                        applied.append((at, summary))
        missing = [x["message_id"] for _, x in applied if x.get("message_id") not in started]
        if len(applied) != len(events) or missing or consuming is None:
            raise RuntimeError(
                f"consume log: {len(applied)} applied events for {len(events)}, {len(missing)} without a start "
                f"line, consuming line {'found' if consuming else 'missing'}:\n{tail()}"
            )
        latencies = [(at - started[x["message_id"]]) * 1000 for at, x in applied]
        buckets = {
            float(k.split('le="')[1].split('"')[0]): v
            for k, v in m.items()
            if k.startswith("oslo_nautobot_event_seconds_bucket{")
        }
        return ManyRun(
            f"`consume --concurrency {concurrency}`",
            (max(at for at, _ in applied) - spawned) * 1000,
            latencies,
            [x["requests"] for _, x in applied],
            [x["event_type"] for _, x in applied],
            cpu,
            rss,
            {
                "startup": [(consuming - spawned) * 1000],
                # Consuming, until the last event was applied.
                "active": (max(at for at, _ in applied) - consuming) * 1000,
                # The histogram: receipt to acknowledgement.
                "receipt_sum": m.get("oslo_nautobot_event_seconds_sum", 0) * 1000,
                "receipt_count": m.get("oslo_nautobot_event_seconds_count", 0),
                "buckets": buckets,
            },
        )

    def consume_undisturbed(self, publisher, concurrency, attempts=3):
        """run_consume, again (fresh networks, the queue emptied) when
        RabbitMQ went away during the run."""
        for attempt in range(1, attempts + 1):
            try:
                return self.run_consume(publisher, concurrency)
            except Disturbed as e:
                log(f"RabbitMQ went away during the run ({e}); not counted" + ("; again" if attempt < attempts else ""))
                publisher.reset()
                deadline = time.monotonic() + 120
                while True:  # until the broker is back
                    try:
                        publisher.channel()
                        break
                    except publisher.errors:
                        publisher.reset()
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(1)
        raise RuntimeError(f"RabbitMQ went away during {attempts} consume runs in a row")

    def many(self):
        """The many-events section: one process per event, replay, consume
        at concurrency 1 and at 4, each on fresh networks, the whole set
        BENCH_MANY_REPEATS times, the order rotating so that no mode always
        comes first (other work on the machine comes and goes). Returns
        every run, in the order they ran."""
        a = self.args
        n = a.many * len(EVENTS)
        modes = ["processes", "replay"] + ([1, 4] if a.consume_binary else [])
        runs = []
        publisher = Publisher(a.amqp_vhost, self.project, self.work) if a.consume_binary else None
        try:
            for repeat in range(a.many_repeats):
                turn = repeat % len(modes)
                for concurrency in modes[turn:] + modes[:turn]:
                    step = f"{repeat + 1}/{a.many_repeats}"
                    if concurrency == "processes":
                        log(f"one process per event, {step}: {n} events")
                        runs.append(self.run_processes())
                    elif concurrency == "replay":
                        log(f"replay, {step}: {n} events in one process")
                        runs.append(self.run_replay())
                    else:
                        log(f"consume --concurrency {concurrency}, {step}: {n} events")
                        runs.append(self.consume_undisturbed(publisher, concurrency))
        finally:
            if publisher:
                publisher.close()
        return runs

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

        many = self.many() if a.many else []

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
                for k, run in enumerate(many):
                    for i, latency in enumerate(run.latencies):
                        row = {"many": run.mode, "run": k + 1, "index": i + 1, "event": run.types[i]}
                        f.write(json.dumps({**row, "latency_ms": latency, "requests": run.requests[i]}) + "\n")
                    notes = {**run.notes, "buckets": {str(b): v for b, v in run.notes.get("buckets", {}).items()}}
                    row = {"many": run.mode, "run": k + 1, "events": run.events, "wall_ms": run.wall}
                    f.write(json.dumps({**row, "cpu_ms": run.cpu, "rss_kib": run.rss, **notes}) + "\n")
        return self.report(
            machine, load_start, os.getloadavg(), started, floor, cold, templates, samples, dry, mismatches, many
        )

    # --- the report ---------------------------------------------------------

    def report(self, machine, load_start, load_end, started, floor, cold, templates, samples, dry, mismatches, many):
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
        ]
        if many:
            out += self.many_report(many) + [""]
        out += [
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

    def many_report(self, runs):
        """The many-events table: one process per event, replay, consume
        (each mode's runs added up)."""
        a = self.args
        modes = list(dict.fromkeys(r.mode for r in runs))
        many = [ManyRun.pool([r for r in runs if r.mode == mode]) for mode in modes]
        repeats = len(runs) // len(modes)

        def ms(x):
            return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"

        def wall(x):
            return f"{x / 1000:.2f} s" if x >= 1000 else f"{x:.0f} ms"

        n = a.many * len(EVENTS)
        out = [
            f"Many events, on the same Nautobot: {a.many} networks with one subnet each, fresh UUIDs, one UCVNI "
            f"group, their {n} events (the six above, every network's create, then every subnet's create, and so "
            f"on) given one by one to the one-shot command, one process each, or to `oslo-nautobot replay` in "
            f"one JSON-lines file, or published with oslo.messaging for `oslo-nautobot consume`; fresh networks "
            f"for each run, "
            + (
                f"{repeats} runs of each mode, taking turns (the figures add them up):"
                if repeats > 1
                else "one run of each mode:"
            ),
            "",
            "| mode | events | wall | events/s | per-event latency: min / median / p95 / max "
            "| requests/event | CPU/event | peak RSS |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in many:
            lat = r.latencies
            out.append(
                f"| {r.mode} | {r.events} | {wall(r.wall)} | {r.events / (r.wall / 1000):.1f} "
                f"| {ms(min(lat))} / **{ms(statistics.median(lat))}** / {ms(nearest_rank(lat, 0.95))} "
                f"/ {ms(max(lat))} ms "
                f"| {statistics.mean(r.requests):.2f} | {ms(r.cpu / r.events)} ms | {r.rss / 1024:.1f} MiB |"
            )
        notes = [
            "*one process per event*: the release binary, as in the rounds above, one process after another; "
            "wall: the sum of their wall times; latency: each process's, spawn to exit. "
            "*replay*: one process, spawn to exit; latency: the `ms` of each result line (one event decoded and "
            "applied). "
        ]
        consume = [r for r in many if r.notes]
        if consume:
            startups = [x for r in consume for x in r.notes["startup"]]

            def receipt(r):
                count = r.notes["receipt_count"]
                if not count:
                    return "none counted"
                bound = min((b for b, v in r.notes["buckets"].items() if v >= count / 2), default=math.inf)
                return f"mean {r.notes['receipt_sum'] / count:.0f} ms, median ≤ {bound * 1000:.0f} ms"

            notes.append(
                f"*consume*: the events are published (oslo.messaging's Notifier, set up as Neutron's) into "
                f"the consumer's queue before the consumer starts, so it works through a backlog of {n}: a "
                f"measure of throughput (`--prefetch {CONSUME_PREFETCH}`, the default); wall: from its spawn to "
                f"the last event applied, its start (connecting to RabbitMQ, declaring the queue) included "
                f"({ms(min(startups))}–{ms(max(startups))} ms); latency: from its `-v` log, a worker's line as it "
                f"starts applying an event to the event's summary line (millisecond timestamps). Its "
                f"`oslo_nautobot_event_seconds` histogram (receipt to acknowledgement) also counts the wait "
                f"behind the prefetched backlog: "
                + "; ".join(f"{receipt(r)} at {r.mode.strip('`').split(' ', 1)[1]}" for r in consume)
                + ". "
            )
            for r in consume:
                c = int(r.mode.split()[-1].rstrip("`"))
                if c == 1:
                    gap = (r.wall - sum(r.notes["startup"]) - sum(r.latencies)) / r.events
                    notes.append(
                        f"At concurrency 1 the events' latencies add up to the wall time but for "
                        f"{ms(gap)} ms per event (acknowledging one, taking the next). "
                    )
                else:
                    notes.append(
                        f"At concurrency {c}, {sum(r.latencies) / r.notes['active']:.1f} workers were applying "
                        f"an event at once, on average. "
                    )
        notes.append(
            "*events/s*: events / wall. *CPU/event*: the process's user + system time over its events "
            "(the consumer's read from `/proc` before it is stopped). *peak RSS*: the process's maximum "
            "resident set (one process per event: the median)."
        )
        return out + ["", "".join(notes).rstrip()]

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
    ap.add_argument(
        "--many",
        type=int,
        default=int(os.environ.get("BENCH_MANY", "20")),
        help="networks for replay and consume (6 events each); 0 leaves the section out",
    )
    ap.add_argument(
        "--many-repeats",
        type=int,
        default=int(os.environ.get("BENCH_MANY_REPEATS", "3")),
        help="runs of each mode of the many-events section, taking turns",
    )
    ap.add_argument("--consume-binary", help="oslo-nautobot built with --features consume; none: no consume runs")
    ap.add_argument("--amqp-vhost", default="oslo-nautobot-bench", help="an empty RabbitMQ vhost, guest allowed")
    ap.add_argument("--revision", default="", help="what was built, for the report")
    ap.add_argument("--out", help="also write the report here")
    ap.add_argument("--raw", default=os.environ.get("BENCH_RAW"), help="write every sample here, as JSON lines")
    a = ap.parse_args()
    for var in ("NAUTOBOT_URL", "NAUTOBOT_TOKEN"):
        if not os.environ.get(var):
            raise SystemExit(f"{var} is not set: run through tests/bench/run.sh")
    if a.rounds < 1:
        raise SystemExit("BENCH_ROUNDS must be at least 1")
    if not 0 <= a.many <= 1000:
        raise SystemExit("BENCH_MANY must be 0 to 1000")
    if a.many_repeats < 1:
        raise SystemExit("BENCH_MANY_REPEATS must be at least 1")
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
