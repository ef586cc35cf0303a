#!/usr/bin/env python3
"""oslo-nautobot consume: the service against the real RabbitMQ and a live Nautobot.

Run through run.sh, which provides RabbitMQ (an empty vhost of this test's
own), the venv with oslo.messaging and prometheus_client, the binary built
with the consume feature, and NAUTOBOT_URL / NAUTOBOT_TOKEN in the
environment.

The service runs as the Deployment runs it (workflows/consume/deployment.yaml):
its own queue (durable, quorum, single active consumer), the AMQP password
and the Nautobot token from files, /healthz and /metrics on a port of its
own, nothing of the caller's environment (no OS_* variables: events are
taken as they come, Neutron is not read). It reaches Nautobot through a small
HTTP proxy of this test that can refuse connections (Nautobot down), slow
every request down, and answer 503 to the requests that match a rule (one
network's UUID, one event's name, one kind of request), so that "Nautobot is
down", "one network is sick" and "the service is busy" are under the test's
control.

Notifications are published as Neutron publishes them: a real
oslo_messaging.Notifier set up from a neutron.conf-like file (driver
messagingv2, topics notifications, control_exchange neutron,
amqp_durable_queues true), with a real oslo.context RequestContext.

RabbitMQ's statistics of a quorum queue (rabbitmqctl list_queues: ready,
unacknowledged, consumers) are refreshed every few seconds: the broker's view
is polled with a deadline, never read once. A passive queue.declare (exact
count of ready messages) and rabbitmqctl list_consumers (who is subscribed,
who is the single active consumer) answer at once.

Scenarios, each ending with Nautobot's state read back through its REST API
and compared with what the published events imply, the queue drained, and
the service's metrics counting what it did:

 1. all applied: networks created, given subnets, renamed; a malformed body
    (event_type "other") and an invalid network.create.end go to the
    dead-letter exchange, confirmed and counted; events of other kinds are
    acknowledged and ignored; /healthz "standing by" before the first
    delivery, "active" after.
 2. kill -9 mid-stream (one replica), then a restart: nothing lost.
 3. RabbitMQ restart (stop_app/start_app) while the service runs. Only with
    OSLO_NAUTOBOT_CONSUME_BROKER_RESTART=1 (run.sh sets it when run by
    tests/run.sh) and no client of another vhost connected (=force: even
    then); skipped otherwise.
 4. Nautobot unreachable: every lane held (not applied, not acknowledged,
    retries counted, held_events), then all applied once Nautobot is back.
 5. SIGTERM while busy, while retrying, and while a subnet create is
    retried: exit 0 at once; what it started it finished and acknowledged,
    what it had not started is back in the queue (exact counts); a held
    subnet create and the delete behind it come back together, in order.
 6. Two replicas on one queue: exactly one active, the other standing by;
    events of 30 networks (create, a subnet, three renames each) published
    while the active one works; it is killed (SIGKILL once, SIGTERM four
    times) mid-stream; the standby takes over. From the -v logs of both
    processes (one line per event started, one summary per event applied,
    timestamped) and Nautobot's change log: no event lost, none applied out
    of its network's order, never two of one network at once, several
    networks at once; the takeover time (FIGURE lines). This supersedes the
    single-replica order scenario of the earlier suite: same checks, more
    networks, across takeovers.
 7. Per-network holds: the proxy answers 503 to one network's requests; the
    events of 20 other networks are applied meanwhile; held_events and
    held_oldest_seconds show the hold; when the fault clears the sick
    network's events land, in order.
 8. --give-up-after 3: the sick event is dead-lettered (the copy on the
    dead-letter queue byte for byte the published message), its lane goes
    on; with a dead-letter exchange that routes to no queue the message is
    kept (unacknowledged, held) until a queue is bound. Without
    --dead-letter-exchange: exit 7 at start.
 9. No UCVNI group: a network event with a VNI is held with its lane (not
    dead-lettered, not acknowledged), subnets of other networks are applied;
    after a restart with the group it is applied. `consume --dry-run` exits 2
    and touches neither the queue nor Nautobot.
10. 200 hostile event types (quotes, newlines, backslashes, look-alikes of
    handled types) and non-string ones: /metrics stays parseable by
    prometheus_client, event_type stays within the 9 handled types and
    "other".
11. The queue declared with other arguments (the classic queue of the
    single-replica version; the quorum queue with --queue-type classic):
    exit 7 with how to migrate, the queue untouched. --queue-type classic on
    a classic single-active-consumer queue works, active and standby.

Every run makes its own objects (fresh UUIDs, UCVNI group, project) and
removes them. Prints one PASS/FAIL line per check (SKIP for a scenario that
may not run here), FIGURE lines with the measured figures, and, last,
"N passed, M failed".
"""

import argparse
import concurrent.futures
import ctypes
import datetime
import http.client
import http.server
import json
import logging
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import amqp
from oslo_context import context as oslo_context
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from testlib import (  # noqa: E402
    AmqpChannel, Nautobot, Report, dashed, free_port, nautobot_env_missing, neutron_notifier, wait_for)

EXCHANGE = "neutron"
ROUTING_KEY = "notifications.info"
QUEUE = "oslo-nautobot-consume"  # the Deployment's queue, not the EventSource's
DLX = "oslo-nautobot-consume-dlx"
DEAD = "oslo-nautobot-consume-dead"
DRAIN_TIMEOUT = 60  # seconds for a batch to be applied
STATS_TIMEOUT = 12  # quorum queue statistics are refreshed every ~5 s
# The event types with a label value of their own in /metrics.
HANDLED = ("network.create.end", "network.update.end", "network.delete.end",
           "subnet.create.end", "subnet.update.end", "subnet.delete.end",
           "identity.project.created", "identity.project.updated", "identity.project.deleted")
LABEL_VALUES = set(HANDLED) | {"other"}
# What /metrics may hold: family name -> type.
FAMILIES = {
    "oslo_nautobot_up": "gauge", "oslo_nautobot_active": "gauge", "oslo_nautobot_in_flight": "gauge",
    "oslo_nautobot_queue_messages": "gauge", "oslo_nautobot_held_events": "gauge",
    "oslo_nautobot_held_oldest_seconds": "gauge", "oslo_nautobot_retries": "counter",
    "oslo_nautobot_dead_letters": "counter", "oslo_nautobot_events": "counter",
    "oslo_nautobot_event_seconds": "histogram",
}
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (\w+)\s+(\S+)\] (.*)$")


def note(text):
    print(f"[consume.py {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def figure(text):
    """A measured figure, on a line of its own that is easy to copy."""
    print(f"FIGURE: {text}", flush=True)


def log_time(stamp):
    """A log line's UTC timestamp (2026-12-02T16:05:22.605Z) as epoch seconds."""
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in stamp else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.datetime.strptime(stamp, fmt).replace(tzinfo=datetime.timezone.utc).timestamp()


# --------------------------------------------------------------------------
# An HTTP proxy between the service and Nautobot, with faults on demand


HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
              "upgrade", "content-length", "date", "server"}


class FaultProxy:
    """Listens on a fixed loopback port and forwards every HTTP request to
    Nautobot (keep-alive on both sides). stop() closes the listener and
    every open connection (the service then gets "connection refused");
    start() listens again on the same port. `delay` seconds are waited
    before forwarding each request. A request that matches a rule (see
    fail_on) gets a 503 from the proxy itself: Nautobot overloaded for that
    network, that event or that kind of request only."""

    def __init__(self, target):
        u = urllib.parse.urlsplit(target)
        self.target = (u.hostname, u.port or 80)
        self.port = free_port()
        self.delay = 0.0
        self.lock = threading.Lock()
        self.rules = {}  # name -> (predicate(method, path, body), hits)
        self.server = None
        self.connections = set()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def fail_on(self, name, *tokens, method=None, path_prefix=None):
        """503 for every request whose path or body contains one of tokens
        (bytes), or with this method and path prefix."""
        def predicate(m, path, body):
            if tokens and any(t in path or t in body for t in tokens):
                return True
            return bool(method and m == method and path.startswith(path_prefix.encode()))
        with self.lock:
            self.rules[name] = [predicate, 0]

    def clear(self, name=None):
        with self.lock:
            if name is None:
                self.rules.clear()
            else:
                self.rules.pop(name, None)

    def hits(self, name):
        with self.lock:
            return self.rules.get(name, [None, 0])[1]

    def _match(self, method, path, body):
        with self.lock:
            for rule in self.rules.values():
                if rule[0](method, path, body):
                    rule[1] += 1
                    return True
        return False

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            upstream = None

            def setup(self):
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with proxy.lock:
                    proxy.connections.add(self.connection)

            def finish(self):
                try:
                    super().finish()
                finally:
                    with proxy.lock:
                        proxy.connections.discard(self.connection)
                    if self.upstream is not None:
                        self.upstream.close()

            def log_message(self, *args):
                pass

            def _body(self):
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        chunk = self.rfile.read(size + 2)[:size]
                        if not size:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return data
                        data += chunk
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _answer(self, status, reason, headers, data):
                # One write for the head and the body: two would meet
                # Nagle and the client's delayed ACK (40 ms a request).
                head = [f"HTTP/1.1 {status} {reason}", f"Date: {self.date_time_string()}",
                        f"Content-Length: {len(data)}"]
                head += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
                self.wfile.flush()

            def _forward(self, method, body):
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                for attempt in (1, 2):
                    fresh = self.upstream is None
                    if fresh:
                        self.upstream = http.client.HTTPConnection(*proxy.target, timeout=60)
                    try:
                        self.upstream.request(method, self.path, body=body or None, headers=headers)
                        resp = self.upstream.getresponse()
                        return resp.status, resp.reason, resp.getheaders(), resp.read()
                    except (http.client.HTTPException, OSError):
                        self.upstream.close()
                        self.upstream = None
                        # A kept-alive connection Nautobot closed meanwhile:
                        # once more on a new one.
                        if fresh or attempt == 2:
                            raise
                raise AssertionError("unreachable")

            def _any(self):
                body = self._body()
                if proxy.delay:
                    time.sleep(proxy.delay)
                if proxy._match(self.command, self.path.encode(), body):
                    self._answer(503, "Service Unavailable", [("Content-Type", "text/plain")],
                                 b"the test's proxy: this one is sick\n")
                    return
                try:
                    status, reason, headers, data = self._forward(self.command, body)
                except (http.client.HTTPException, OSError) as e:
                    self._answer(502, "Bad Gateway", [], f"the test's proxy: {e}\n".encode())
                    return
                self._answer(status, reason, headers, data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _any

        class Server(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True
            request_queue_size = 64

            def handle_error(self, request, client_address):
                # A service killed mid-request: nothing to say.
                if not isinstance(sys.exc_info()[1], OSError):
                    super().handle_error(request, client_address)

        server = Server(("127.0.0.1", self.port), Handler)
        with self.lock:
            self.server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def stop(self):
        with self.lock:
            server, self.server = self.server, None
            open_ = list(self.connections)
            self.connections.clear()
        if server is not None:
            server.shutdown()
            server.server_close()
        for c in open_:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# --------------------------------------------------------------------------
# The service under test


def die_with_parent():
    """In the child: SIGTERM when this test process dies, however it dies
    (Linux prctl PR_SET_PDEATHSIG), so no service outlives the run."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


# Nothing of the caller's environment configures the service: only what the
# test sets. OS_* would make events read Neutron (tests/run.sh exports a
# real cloud's).
FOREIGN_ENV = ("NAUTOBOT_", "AMQP_", "CONSUME_", "METRICS_", "UCVNI_", "RUST_LOG", "OS_", "NO_CREATE_TENANTS",
               "TRUST_EVENTS", "RECONCILE_", "SSL_CERT_FILE", "http_proxy", "https_proxy", "HTTP_PROXY",
               "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")


class Metrics(dict):
    """/metrics read with prometheus_client's parser: {(sample name,
    frozenset of labels): value}; empty when unreachable or unparseable."""

    @classmethod
    def parse(cls, text):
        out = cls()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[s.name, frozenset(s.labels.items())] = s.value
        return out

    def value(self, name, default=None):
        return self.get((name, frozenset()), default)

    def events(self, outcome=None, event_type=None, code=None):
        """Sum of oslo_nautobot_events_total over the matching label values."""
        total = 0
        for (name, labels), v in self.items():
            if name != "oslo_nautobot_events_total":
                continue
            d = dict(labels)
            if (outcome and d.get("outcome") != outcome) or (event_type and d.get("event_type") != event_type) \
                    or (code is not None and d.get("code") != str(code)):
                continue
            total += v
        return int(total)

    def event_rows(self):
        return {tuple(sorted(dict(labels).items())): v for (name, labels), v in self.items()
                if name == "oslo_nautobot_events_total"}


class Service:
    """One `oslo-nautobot consume` process (one replica), started, signalled
    and restarted by the test; its log (-v: one line per event started, one
    JSON summary per event applied) in work/NAME.log."""

    def __init__(self, test, name, group=True, extra=(), env=None, queue=QUEUE, dlx=DLX, register=True):
        self.test, self.name = test, name
        args = test.args
        self.bin = args.bin
        self.metrics_port = free_port()
        self.log_path = os.path.join(args.work, f"{name}.log")
        self.env = test.child_env(group=group, extra=env)
        self.argv = [
            self.bin, "consume", "-v",
            "--amqp-url", f"amqp://127.0.0.1:{args.amqp_port}/",
            "--amqp-vhost", args.vhost,
            "--amqp-username", "guest",
            "--amqp-password-file", test.password_file,
            "--queue", queue,
            "--concurrency", "4",
            "--prefetch", "32",
            "--max-backoff", "2",
            *(["--dead-letter-exchange", dlx] if dlx else []),
            "--metrics-addr", f"127.0.0.1:{self.metrics_port}",
            *extra,
        ]
        self.proc = None
        self.starts = 0
        if register:  # stopped at the end, its log shown on failure
            test.services.append(self)

    def start(self):
        self.starts += 1
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"===== start {self.starts} =====\n")
            log.flush()
            self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, preexec_fn=die_with_parent)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Exit code, or None if still running after timeout seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL after timeout seconds; returns the exit code."""
        if self.proc is None:
            return None
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.proc.kill()
        return self.proc.wait()

    def http(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return None, ""

    def healthz(self):
        """(status, body): (200, "active"), (200, "standing by"), (503, …)."""
        status, body = self.http("/healthz")
        return status, body.strip()

    def metrics(self):
        status, text = self.http("/metrics")
        if status != 200:
            return Metrics()
        try:
            return Metrics.parse(text)
        except ValueError:
            return Metrics()

    def applied(self):
        return self.metrics().events(outcome="applied")

    # The log ---------------------------------------------------------------

    def offset(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def records(self, since=0):
        """[(epoch or None, level, module, text)] of the log from byte `since`."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                data = f.read().decode(errors="replace")
        except OSError:
            return []
        out = []
        for line in data.splitlines():
            m = LOG_LINE.match(line)
            if m:
                out.append((log_time(m.group(1)), m.group(2), m.group(3), m.group(4)))
            else:
                out.append((None, None, None, line))
        return out

    def summaries(self, since=0):
        """[(epoch, summary)]: the events this process applied (exit 0)."""
        out = []
        for ts, _, module, text in self.records(since):
            if module == "oslo_nautobot::consume" and text.startswith("{"):
                try:
                    out.append((ts, json.loads(text)))
                except ValueError:
                    pass
        return out

    def started_events(self, since=0):
        """[(epoch, event type)]: the events this process started applying."""
        out = []
        for ts, _, module, text in self.records(since):
            m = re.match(r"^(\S+) \(message [^)]*\)$", text)
            if module == "oslo_nautobot::mirror" and m:
                out.append((ts, m.group(1)))
        return out

    def intervals(self, since=0):
        """[(start, end, summary)]: each applied event from the moment this
        process started it (its last start before the summary) to its summary."""
        starts, out = {}, []
        for ts, _, module, text in self.records(since):
            m = re.match(r"^\S+ \(message ([^)]*)\)$", text)
            if module == "oslo_nautobot::mirror" and m:
                starts[m.group(1)] = ts
            elif module == "oslo_nautobot::consume" and text.startswith("{"):
                try:
                    summary = json.loads(text)
                except ValueError:
                    continue
                start = starts.pop(summary.get("message_id"), None)
                if start is not None:
                    out.append((start, ts, summary))
        return out

    def log_lines(self, since=0):
        return [text for _, _, _, text in self.records(since)]

    def log_tail(self, lines=60):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


# --------------------------------------------------------------------------
# RabbitMQ: the test's own view


class Broker(AmqpChannel):
    def __init__(self, vhost, port):
        super().__init__(vhost)
        self.port = port

    def channel(self):
        if self.ch is None:
            self.conn = amqp.Connection(host=f"127.0.0.1:{self.port}", userid="guest", password="guest",
                                        virtual_host=self.vhost)
            self.conn.connect()
            self.ch = self.conn.channel()
        return self.ch

    def ready(self, queue=QUEUE):
        """Messages ready in the queue (a passive declare: exact, at once), or None."""
        try:
            _, count, _ = self.channel().queue_declare(queue, passive=True)
            return count
        except Exception:  # noqa: BLE001 - broker restarting, queue missing
            self.reset()
            return None

    def ctl(self, *argv, check=True):
        proc = subprocess.run(["rabbitmqctl", "-q", *argv], capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def listing(self, what, *fields):
        return json.loads(self.ctl("-p", self.vhost, what, *fields, "--formatter", "json") or "[]")

    def queue(self, name=QUEUE):
        """{messages_ready, messages_unacknowledged, consumers, type, arguments, …} per
        rabbitmqctl (for a quorum queue, as of its last statistics tick)."""
        rows = [q for q in self.listing("list_queues", "name", "durable", "auto_delete", "exclusive", "type",
                                        "arguments", "messages_ready", "messages_unacknowledged", "consumers")
                if q["name"] == name]
        if not rows:
            return None
        q = rows[0]
        q["arguments"] = {a[0]: a[2] for a in q.get("arguments") or []}
        return q

    def wait_queue(self, predicate, timeout=STATS_TIMEOUT, name=QUEUE):
        """Polls rabbitmqctl list_queues until predicate(queue) holds; the last queue row."""
        last = [None]

        def probe():
            last[0] = self.queue(name)
            return last[0] is not None and predicate(last[0])
        wait_for(probe, timeout, interval=0.5)
        return last[0]

    def consumers(self, name=QUEUE):
        """The queue's consumers per rabbitmqctl list_consumers (at once):
        [{"active": bool, "activity_status": …}]."""
        return [c for c in self.listing("list_consumers", "queue_name", "channel_pid", "consumer_tag", "active",
                                        "activity_status")
                if c["queue_name"] == name]

    def declare_dead_letter(self, exchange=DLX, queue=DEAD):
        ch = self.channel()
        ch.exchange_declare(exchange, "fanout", durable=True, auto_delete=False)
        if queue:
            ch.queue_declare(queue, durable=True, auto_delete=False)
            ch.queue_bind(queue, exchange, "")

    def publish_raw(self, body, exchange=EXCHANGE, routing_key=ROUTING_KEY):
        """A message straight to the exchange, not through oslo.messaging."""
        msg = amqp.Message(body, content_type="application/json", delivery_mode=2)
        self.channel().basic_publish(msg, exchange=exchange, routing_key=routing_key)

    def take_all(self, queue):
        """Every message of the queue, removed: [amqp.Message]."""
        out = []
        ch = self.channel()
        while True:
            msg = ch.basic_get(queue, no_ack=True)
            if msg is None:
                return out
            if not isinstance(msg.body, bytes):
                msg.body = msg.body.encode()
            out.append(msg)

    def foreign_vhosts(self, ours):
        """vhosts other than `ours` with a client connected right now."""
        rows = json.loads(self.ctl("list_connections", "vhost", "--formatter", "json") or "[]")
        return sorted({r["vhost"] for r in rows} - set(ours))


# --------------------------------------------------------------------------
# The run


class World:
    """What the published events imply for Nautobot, and each network's
    events in publishing order (for the order checks)."""

    def __init__(self):
        self.networks = {}  # id -> {"name", "vni", "exists"}
        self.subnets = {}  # id -> {"cidr", "network", "exists"}
        self.sequence = {}  # network id -> [(event type, name or subnet id)]

    def track(self, network, event_type, key):
        self.sequence.setdefault(network, []).append((event_type, key))

    def event_of(self, summary):
        """(network id, position in its network's sequence) of an applied
        event's summary, or None for an event this run does not track."""
        event_type = summary.get("event_type")
        for result in summary.get("results") or []:
            if result.get("kind") == "ucvni" and event_type.startswith("network."):
                net, key = result.get("id"), result.get("name")
            elif result.get("kind") == "prefix" and event_type.startswith("subnet."):
                sub = self.subnets.get(result.get("id"))
                if sub is None:
                    continue
                net, key = sub["network"], result.get("id")
            else:
                continue
            seq = self.sequence.get(net) or []
            if (event_type, key) in seq:
                return net, seq.index((event_type, key))
        return None


class Test:
    def __init__(self, args, r):
        self.args, self.r = args, r
        self.nb = Nautobot(os.environ["NAUTOBOT_URL"], os.environ["NAUTOBOT_TOKEN"], direct=True)
        suffix = uuid.uuid4().hex[:8]
        self.group = f"consume-{suffix}"
        self.group_id = None
        self.project = uuid.uuid4().hex
        self.tenant = dashed(self.project)
        self.world = World()
        self.vni = random.randrange(100_000, 15_000_000)
        self.octets = iter((a, b) for a in range(random.randrange(0, 60), 256) for b in range(256))
        self.broker = Broker(args.vhost, args.amqp_port)
        self.proxy = FaultProxy(self.nb.url)
        self.services = []
        self.service = None  # the replica the scenarios talk to
        self.transport = self.notifier = None
        self.token_file = os.path.join(args.work, "nb-token")
        self.password_file = os.path.join(args.work, "rabbitmq-password")
        for path, text in ((self.token_file, os.environ["NAUTOBOT_TOKEN"] + "\n"),
                           (self.password_file, "guest\n")):
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(path, 0o600)
        self.some_networks = []  # networks of scenario 1, for later subnets
        self.takeover_figures = []
        self.misnamed = 0

    def child_env(self, group=True, extra=None):
        """The environment of a service: the caller's without anything that
        configures the binary, then what the Deployment sets."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
        env.update({
            "NAUTOBOT_URL": self.proxy.url,
            "NAUTOBOT_TOKEN_FILE": self.token_file,
            # A down Nautobot is noticed quickly and retried by the service
            # (whose retries the metrics count), not inside one request.
            "NAUTOBOT_ATTEMPTS": "2",
            "NAUTOBOT_RETRY_BUDGET": "5",
            "NAUTOBOT_CONNECT_TIMEOUT": "2",
            "NAUTOBOT_TIMEOUT": "10",
        })
        if group:
            env["UCVNI_GROUP_NAME"] = self.group if group is True else group
        env.update(extra or {})
        return env

    # Building blocks ----------------------------------------------------------

    def network(self, name):
        id_ = str(uuid.uuid4())
        self.vni += 1
        self.world.networks[id_] = {"name": name, "vni": self.vni, "exists": True}
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"id": id_, "name": name, "tenant_id": self.project, "project_id": self.project,
                "admin_state_up": True, "mtu": 1450, "status": "ACTIVE", "subnets": [],
                "shared": False, "port_security_enabled": True, "router:external": False,
                "provider:network_type": "vxlan", "provider:physical_network": None,
                "provider:segmentation_id": self.vni, "availability_zone_hints": [],
                "availability_zones": [], "ipv4_address_scope": None, "ipv6_address_scope": None,
                "description": "", "tags": [], "created_at": now, "updated_at": now,
                "revision_number": 1}

    def subnet(self, net):
        id_ = str(uuid.uuid4())
        a, b = next(self.octets)
        cidr = f"10.{a}.{b}.0/24"
        self.world.subnets[id_] = {"cidr": cidr, "network": net["id"], "exists": True}
        return {"id": id_, "name": f"consume-sub-{id_[:4]}", "tenant_id": self.project,
                "project_id": self.project, "network_id": net["id"], "ip_version": 4,
                "subnetpool_id": None, "enable_dhcp": True, "ipv6_ra_mode": None,
                "ipv6_address_mode": None, "gateway_ip": f"10.{a}.{b}.1", "cidr": cidr,
                "allocation_pools": [{"start": f"10.{a}.{b}.2", "end": f"10.{a}.{b}.254"}],
                "host_routes": [], "dns_nameservers": [], "description": "",
                "service_types": [], "tags": [], "router:external": False, "revision_number": 0}

    def context(self):
        return oslo_context.RequestContext(
            user_id=uuid.uuid4().hex, project_id=self.project, request_id=f"req-{uuid.uuid4()}",
            is_admin=True, roles=["admin", "member", "reader"], auth_token=uuid.uuid4().hex)

    def publish(self, event_type, payload):
        self.notifier.info(self.context(), event_type, payload)

    def publish_network(self, net):
        """network.create.end of a network made with network()."""
        self.world.track(net["id"], "network.create.end", net["name"])
        self.publish("network.create.end", {"network": dict(net)})

    def create_network(self, name):
        net = self.network(name)
        self.publish_network(net)
        return net

    def rename(self, net, name):
        net.update(name=name, revision_number=net["revision_number"] + 1)
        self.world.networks[net["id"]]["name"] = name
        self.world.track(net["id"], "network.update.end", name)
        self.publish("network.update.end", {"network": dict(net)})

    def create_subnet(self, net):
        sub = self.subnet(net)
        net["subnets"].append(sub["id"])
        self.world.track(net["id"], "subnet.create.end", sub["id"])
        self.publish("subnet.create.end", {"subnet": sub})
        return sub

    def delete_subnet(self, net, sub):
        net["subnets"].remove(sub["id"])
        self.world.subnets[sub["id"]]["exists"] = False
        self.world.track(net["id"], "subnet.delete.end", sub["id"])
        self.publish("subnet.delete.end", {"subnet": sub, "subnet_id": sub["id"]})

    # Waiting and checking ----------------------------------------------------------

    def drained(self, service=None, timeout=DRAIN_TIMEOUT):
        """Waits until the queue has nothing ready (passive declare, exact)
        and the service nothing in flight (received, not acknowledged)."""
        service = service or self.service

        def empty():
            return self.broker.ready() == 0 and service.metrics().value("oslo_nautobot_in_flight") == 0
        return wait_for(empty, timeout, interval=0.3)

    def check_drained(self, label, service=None, timeout=DRAIN_TIMEOUT):
        service = service or self.service
        t0 = time.monotonic()
        ok = self.drained(service, timeout)
        took = time.monotonic() - t0
        return self.r.check(f"{label}: queue empty, nothing in flight ({took:.1f} s)", ok,
                            f"ready {self.broker.ready()}, metrics in flight "
                            f"{service.metrics().value('oslo_nautobot_in_flight')}\n"
                            f"service log:\n{service.log_tail(30)}")

    def check_unacked(self, label, want, name=QUEUE, timeout=STATS_TIMEOUT):
        """The broker's own view: `want` unacknowledged, none ready (polled:
        quorum queue statistics lag)."""
        q = self.broker.wait_queue(lambda q: q["messages_unacknowledged"] == want and q["messages_ready"] == 0,
                                   timeout, name)
        return self.r.check(f"{label}: RabbitMQ shows {want} unacknowledged, 0 ready", q is not None
                            and q["messages_unacknowledged"] == want and q["messages_ready"] == 0, q)

    def check_world(self, label, networks, subnets):
        """Nautobot holds exactly what the events on these networks/subnets
        imply."""
        r, nb, w = self.r, self.nb, self.world
        names = sorted(set(networks))
        subnets = list(subnets)
        ucvnis, namespaces, prefixes = {}, set(), {}
        misnamed = []
        # By id and name, 40 at a time (uWSGI's 4 KiB request line).
        for i in range(0, len(names), 40):
            ucvnis.update((u["id"], u) for u in nb.all("/api/plugins/undercloud-vni/ucvnis/", id=names[i:i + 40])
                          if (u.get("ucvni_group") or {}).get("name") == self.group)
            namespaces |= {ns["name"] for ns in nb.all("/api/ipam/namespaces/", name=names[i:i + 40])}
        for i in range(0, len(subnets), 40):
            prefixes.update((p["id"], p) for p in nb.all("/api/ipam/prefixes/", id=subnets[i:i + 40]))
        wrong = []
        for id_ in networks:
            want = w.networks[id_]
            u = ucvnis.get(id_)
            if not want["exists"]:
                if u is not None or id_ in namespaces:
                    wrong.append(f"network {id_}: still in Nautobot")
                continue
            if id_ not in namespaces:
                wrong.append(f"network {id_}: no namespace")
            if u is None:
                wrong.append(f"network {id_}: no UCVNI")
                continue
            got = (u.get("ucvni_id"), (u.get("status") or {}).get("name"), (u.get("tenant") or {}).get("id"))
            exp = (want["vni"], "Active", self.tenant)
            if got != exp:
                wrong.append(f"network {id_}: UCVNI {got}, want {exp}")
            if u.get("name") != want["name"]:
                misnamed.append(f"network {id_}: UCVNI named {u.get('name')!r}, want {want['name']!r} (its last)")
        for id_ in subnets:
            want = w.subnets[id_]
            p = prefixes.get(id_)
            if not want["exists"]:
                if p is not None:
                    wrong.append(f"subnet {id_}: prefix {p.get('prefix')} still there")
                continue
            if p is None:
                wrong.append(f"subnet {id_} ({want['cidr']}): no prefix")
                continue
            got = (p.get("prefix"), (p.get("namespace") or {}).get("name"), (p.get("status") or {}).get("name"))
            exp = (want["cidr"], want["network"], "Active")
            if got != exp:
                wrong.append(f"subnet {id_}: prefix {got}, want {exp}")
        live_nets = sum(1 for n in networks if w.networks[n]["exists"])
        live_subs = sum(1 for s in subnets if w.subnets[s]["exists"])
        self.misnamed = len(misnamed)
        wrong += misnamed
        return r.check(f"{label}: Nautobot matches the events ({live_nets} UCVNIs and namespaces, "
                       f"{live_subs} prefixes, {len(subnets) - live_subs} deleted)", not wrong,
                       "\n".join(wrong))

    def changes(self, ids):
        """Nautobot's change log of these objects, oldest first."""
        out = []
        ids = list(ids)
        for i in range(0, len(ids), 25):  # uWSGI's 4 KiB request line
            out += self.nb.all("/api/extras/object-changes/", changed_object_id=ids[i:i + 25])
        out.sort(key=lambda c: c["time"])
        return out

    def changelog_order(self, networks):
        """Networks whose UCVNI and prefixes Nautobot's change log shows
        written out of publishing order: {network: [positions]}."""
        w = self.world
        subnet_ids = [s for s, v in w.subnets.items() if v["network"] in set(networks)]
        per = {n: [] for n in networks}
        for c in self.changes(list(networks) + subnet_ids):
            action = (c.get("action") or {}).get("value")
            if action not in ("create", "update"):
                continue
            oid = c.get("changed_object_id")
            seq = w.sequence.get(oid) if oid in per else None
            if seq is not None:  # the network's UCVNI: its name says which event
                name = (c.get("object_data") or {}).get("name")
                pos = [i for i, (t, k) in enumerate(seq) if t.startswith("network.") and k == name]
                if pos:
                    per[oid].append(pos[-1])
            elif oid in w.subnets:
                net = w.subnets[oid]["network"]
                seq = w.sequence.get(net) or []
                if action == "create" and ("subnet.create.end", oid) in seq:
                    per[net].append(seq.index(("subnet.create.end", oid)))
        return {n: p for n, p in per.items() if p != sorted(p)}, per

    def log_order(self, logs, networks):
        """From the -v logs of several processes ([(service, offset)]): the
        events each applied, merged by timestamp. Returns (applied:
        {(network, position)}, broken: {network: positions in applied
        order}, by_service: {name: {(network, position)}})."""
        rows, by_service = [], {}
        wanted = set(networks)
        for service, since in logs:
            mine = by_service.setdefault(service.name, set())
            for ts, summary in service.summaries(since):
                ev = self.world.event_of(summary)
                if ev and ev[0] in wanted:
                    rows.append((ts, ev))
                    mine.add(ev)
        rows.sort(key=lambda row: row[0])
        per = {}
        for _, (net, pos) in rows:
            per.setdefault(net, []).append(pos)
        broken = {n: p for n, p in per.items() if p != sorted(p)}
        return {ev for _, ev in rows}, broken, by_service

    def start_service(self, service, label, expect=None):
        """Starts it and waits for /healthz 200; expect: the body wanted."""
        service.start()
        ok = wait_for(lambda: service.healthz()[0] == 200 or not service.running(), 20)
        status, body = service.healthz()
        ok = ok and status == 200 and (expect is None or body == expect)
        return self.r.check(f"{label}: service up, /healthz 200" + (f" \"{expect}\"" if expect else ""), ok,
                            f"{status} {body!r}\n{service.log_tail(30)}")

    def stop_service(self, service, label):
        t0 = time.monotonic()
        rc = service.stop()
        return self.r.check(f"{label}: SIGTERM, exit 0 in {time.monotonic() - t0:.1f} s", rc == 0,
                            f"exit {rc}\n{service.log_tail(20)}")

    def sac_state(self, expect_consumers, queue=QUEUE):
        """Polls list_consumers until the queue has this many consumers with
        exactly one active; the rows."""
        rows = [None]

        def probe():
            rows[0] = self.broker.consumers(queue)
            active = sum(1 for c in rows[0] if c["active"])
            return len(rows[0]) == expect_consumers and active == min(1, expect_consumers)
        wait_for(probe, 10, interval=0.3)
        return rows[0]

    def returned(self, timeout=10):
        """Once the queue has no consumer left: how many messages are back
        in it, ready (exact), or None."""
        if not wait_for(lambda: not self.broker.consumers(), timeout):
            return None
        time.sleep(0.3)
        return self.broker.ready()

    def run_binary(self, argv, env, timeout=30):
        try:
            return subprocess.run([self.args.bin, *argv], env=env, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(e.cmd, None, e.stdout or "", e.stderr or "")

    # Scenarios ---------------------------------------------------------------------

    def setup(self):
        r = self.r
        status, body = self.nb.call("POST", "/api/plugins/undercloud-vni/ucvni-groups/", {"name": self.group})
        r.check(f"Nautobot: UCVNI group {self.group} created", status == 201, f"{status} {body}")
        self.group_id = (body or {}).get("id") if status == 201 else None
        # The ownership tag, as an operator makes it before the first event
        # (README: "oslo-nautobot setup"); a fresh Nautobot has none.
        env = self.child_env()
        env["NAUTOBOT_URL"] = self.nb.url
        p = self.run_binary(["setup"], env)
        r.check("oslo-nautobot setup: the tag and the UCVNI group exist", p.returncode == 0,
                f"exit {p.returncode}\n{p.stdout}\n{p.stderr}")
        self.proxy.start()
        self.broker.declare_dead_letter()
        self.service = Service(self, "main")
        if not self.start_service(self.service, "start", expect="standing by"):
            raise RuntimeError("the service did not start")
        m = self.service.metrics()
        r.check("before its first delivery: oslo_nautobot_up 1, oslo_nautobot_active 0",
                m.value("oslo_nautobot_up") == 1 and m.value("oslo_nautobot_active") == 0, m)
        # What the service declared: the exchange as Neutron's (durable
        # topic), its own durable quorum queue with single active consumer,
        # bound with notifications.info only.
        ex = [e for e in self.broker.listing("list_exchanges", "name", "type", "durable") if e["name"] == EXCHANGE]
        r.check("RabbitMQ: exchange neutron declared durable, topic",
                ex == [{"name": EXCHANGE, "type": "topic", "durable": True}], ex)
        q = self.broker.queue()
        r.check(f"RabbitMQ: queue {QUEUE} durable, quorum, x-single-active-consumer, not exclusive or "
                f"auto-delete", q is not None and q["durable"] and not q["exclusive"] and not q["auto_delete"]
                and q["type"] == "quorum" and q["arguments"].get("x-single-active-consumer") is True, q)
        consumers = self.sac_state(1)
        r.check("RabbitMQ: one consumer, the single active one", len(consumers) == 1 and consumers[0]["active"],
                consumers)
        binds = [(b["source_name"], b["routing_key"])
                 for b in self.broker.listing("list_bindings", "source_name", "destination_name",
                                              "destination_kind", "routing_key")
                 if b["destination_kind"] == "queue" and b["destination_name"] == QUEUE and b["source_name"]]
        r.check(f"RabbitMQ: {QUEUE} bound to neutron with notifications.info only",
                binds == [(EXCHANGE, ROUTING_KEY)], binds)
        url = f"rabbit://guest:guest@127.0.0.1:{self.args.amqp_port}/{self.args.vhost}"
        self.transport, self.notifier = neutron_notifier(self.args.work, url, EXCHANGE, True,
                                                         "network.consume-test")

    def scenario_all_applied(self):
        r = self.r
        note("1. all applied")
        nets, subs = [], []
        dead0 = self.service.metrics().value("oslo_nautobot_dead_letters_total", 0)
        for i in range(5):
            net = self.create_network(f"consume-all-{i}")
            nets.append(net["id"])
            self.some_networks.append(net)
            subs += [self.create_subnet(net)["id"] for _ in range(2)]
            self.rename(net, f"consume-all-{i}-renamed")
        # Not for this service: acknowledged, ignored, not dead-lettered.
        other = self.network("consume-never")
        del self.world.networks[other["id"]]
        self.publish("network.create.start", {"network": {"id": other["id"], "name": other["name"]}})
        self.publish("port.create.end", {"port": {"id": str(uuid.uuid4()), "network_id": nets[0]}})
        # Permanently bad: acknowledged and dead-lettered.
        bad = {"network": {"name": "no id"}}
        self.publish("network.create.end", bad)
        self.broker.publish_raw(b"this is not JSON")
        if not self.check_drained("all applied"):
            return
        self.check_world("all applied", nets, subs)
        m = self.service.metrics()
        counts = {t: m.events(outcome="applied", event_type=t)
                  for t in ("network.create.end", "subnet.create.end", "network.update.end")}
        r.check("metrics: 5 network.create.end, 10 subnet.create.end, 5 network.update.end applied",
                counts == {"network.create.end": 5, "subnet.create.end": 10, "network.update.end": 5}, counts)
        r.check("metrics: the 2 notifications of other kinds counted as event_type \"other\", code 6",
                m.events(code=6) == 2 and m.events(event_type="other", code=6) == 2, m.event_rows())
        # The malformed body has no event type: "other", not "-" as before
        # (label values are bounded to the handled types and "other").
        r.check("metrics: the malformed body counted as event_type \"other\", code 5; 2 failed with code 5",
                m.events(event_type="other", code=5) >= 1 and m.events(outcome="failed", code=5) == 2,
                m.event_rows())
        r.check("metrics: the invalid notification counted as its own event type, "
                  "network.create.end, code 5", m.events(event_type="network.create.end", code=5) == 1,
                  m.event_rows())
        dead = self.broker.take_all(DEAD)
        bodies = []
        for msg in dead:
            try:
                bodies.append(json.loads(json.loads(msg.body)["oslo.message"])["payload"])
            except (ValueError, KeyError, TypeError):
                bodies.append(msg.body)
        r.check("dead-letter exchange: got exactly the invalid notification and the malformed body, "
                "unchanged", sorted(map(str, bodies)) == sorted(map(str, [bad, b"this is not JSON"])),
                bodies)
        r.check("metrics: oslo_nautobot_dead_letters_total counts the 2 confirmed dead letters",
                m.value("oslo_nautobot_dead_letters_total", 0) - dead0 == 2, m)
        r.check("metrics: oslo_nautobot_up 1, in flight 0, latency histogram counts every event",
                m.value("oslo_nautobot_up") == 1 and m.value("oslo_nautobot_in_flight") == 0
                and m.value("oslo_nautobot_event_seconds_count") == m.events(), m)
        status, body = self.service.healthz()
        r.check("after its first delivery: oslo_nautobot_active 1, /healthz 200 \"active\"",
                m.value("oslo_nautobot_active") == 1 and (status, body) == (200, "active"), (status, body))

    def scenario_kill(self):
        r = self.r
        note("2. kill -9 mid-stream")
        nets, subs = [], []
        self.proxy.delay = 0.05
        base = self.service.applied()
        for i in range(10):
            net = self.create_network(f"consume-kill-{i}")
            nets.append(net["id"])
            subs += [self.create_subnet(net)["id"] for _ in range(3)]
        wait_for(lambda: self.service.applied() - base >= 8, 30, interval=0.05)
        before = self.service.applied() - base
        self.service.signal(signal.SIGKILL)
        rc = self.service.wait(10)
        self.proxy.delay = 0
        r.check(f"kill -9 after {before} of 40 events applied: the service is gone",
                rc == -signal.SIGKILL and 0 < before < 40, f"exit {rc}, applied {before}")
        # The broker takes every unacknowledged message back at once (exact:
        # a passive declare and list_consumers answer without lag).
        left = self.returned()
        r.check(f"kill -9: no consumer, the {left} events not acknowledged are back in the queue "
                f"(40 - {before} applied, give or take the ones in flight)",
                left is not None and 0 < left and 40 - before - 4 <= left <= 40 - before + 4, left)
        if not self.start_service(self.service, "restart after kill -9"):
            return
        if not self.check_drained("after kill -9 and restart"):
            return
        self.check_world("after kill -9 and restart: nothing lost", nets, subs)
        again = self.service.applied()
        r.check(f"metrics: the restarted service applied the {left} events left ({again})",
                left is not None and again >= left, again)

    def broker_restart_allowed(self):
        """(allowed, why not): the restart is for runs that own the broker."""
        mode = os.environ.get("OSLO_NAUTOBOT_CONSUME_BROKER_RESTART", "0").strip().lower()
        if mode not in ("1", "force"):
            return False, ("OSLO_NAUTOBOT_CONSUME_BROKER_RESTART is not 1 (tests/run.sh turns it on; "
                           "it restarts the RabbitMQ application under every vhost)")
        if mode == "force":
            return True, ""
        # This run's own, and those of the Keystone and Neutron that
        # tests/run.sh started for this run (they reconnect by themselves).
        ours = {self.args.vhost, os.environ.get("NEUTRON_VHOST", ""), os.environ.get("KEYSTONE_AMQP_VHOST", "")}
        others = self.broker.foreign_vhosts(ours)
        if others:
            return False, (f"clients of other vhosts are connected ({', '.join(others)}): not restarting "
                           f"RabbitMQ under them (OSLO_NAUTOBOT_CONSUME_BROKER_RESTART=force would)")
        return True, ""

    def scenario_rabbitmq_restart(self):
        r = self.r
        allowed, why = self.broker_restart_allowed()
        if not allowed:
            print(f"SKIP: 3. RabbitMQ restart: {why}", flush=True)
            return
        note("3. RabbitMQ restart")
        nets, subs = [], []

        def batch(tag, n):
            for i in range(n):
                net = self.create_network(f"consume-rmq-{tag}-{i}")
                nets.append(net["id"])
                subs.append(self.create_subnet(net)["id"])

        batch("before", 4)
        self.check_drained("before the RabbitMQ restart")
        during = threading.Thread(target=batch, args=("during", 4))
        t0 = time.monotonic()
        self.broker.reset()
        try:
            self.broker.ctl("stop_app")
            down = wait_for(lambda: self.service.healthz()[0] == 503, 15)
            up_metric = self.service.metrics().value("oslo_nautobot_up")
            active_metric = self.service.metrics().value("oslo_nautobot_active")
            r.check("RabbitMQ stopped: /healthz 503, oslo_nautobot_up 0, oslo_nautobot_active 0",
                    down and up_metric == 0 and active_metric == 0,
                    f"healthz {self.service.healthz()}, up {up_metric}, active {active_metric}")
            # Published while the broker is down: oslo.messaging retries
            # until it is back.
            during.start()
            time.sleep(1)
        finally:
            self.broker.ctl("start_app")
            self.broker.ctl("await_startup", "--timeout", "60")
        outage = time.monotonic() - t0
        during.join(120)
        r.check(f"notifications published while RabbitMQ was down reached it ({outage:.1f} s outage)",
                not during.is_alive())
        back = wait_for(lambda: self.service.healthz()[0] == 200, 60)
        r.check(f"the service reconnected by itself: /healthz 200 "
                f"({time.monotonic() - t0 - outage:.1f} s after RabbitMQ was back)", back,
                self.service.log_tail(20))
        batch("after", 4)
        if not self.check_drained("after the RabbitMQ restart"):
            return
        self.check_world("after the RabbitMQ restart: every event before, during and after applied",
                         nets, subs)
        consumers = self.sac_state(1)
        r.check("RabbitMQ restart: the service consumes again (one consumer, active), /healthz \"active\"",
                len(consumers) == 1 and consumers[0]["active"] and self.service.healthz() == (200, "active"),
                f"{consumers} {self.service.healthz()}")

    def scenario_nautobot_down(self):
        r = self.r
        note("4. Nautobot unreachable")
        nets, subs = [], []
        m0 = self.service.metrics()
        self.proxy.stop()
        try:
            for i in range(4):
                net = self.create_network(f"consume-down-{i}")
                nets.append(net["id"])
                subs.append(self.create_subnet(net)["id"])
            wait_for(lambda: self.service.metrics().value("oslo_nautobot_retries_total", 0)
                     >= m0.value("oslo_nautobot_retries_total", 0) + 4, 20)
            # Each network's create fails and holds its lane; its subnet
            # waits behind it: 8 held, all received, none acknowledged.
            self.check_unacked("Nautobot down: the 8 events held", 8)
            m = self.service.metrics()
            r.check("Nautobot down: none applied, none failed (let go)",
                    m.events() == m0.events(), m.event_rows())
            retries = m.value("oslo_nautobot_retries_total", 0) - m0.value("oslo_nautobot_retries_total", 0)
            r.check(f"Nautobot down: oslo_nautobot_retries_total grows ({retries:.0f}), in flight "
                    f"{m.value('oslo_nautobot_in_flight')}, held_events {m.value('oslo_nautobot_held_events')}",
                    retries >= 4 and m.value("oslo_nautobot_in_flight") == 8
                    and m.value("oslo_nautobot_held_events") == 8, m)
            r.check("Nautobot down: /healthz stays 200 \"active\" (RabbitMQ is fine)",
                    self.service.healthz() == (200, "active"), self.service.healthz())
        finally:
            self.proxy.start()
        t0 = time.monotonic()
        if not self.check_drained("Nautobot back"):
            return
        self.check_world(f"Nautobot back: every held event applied ({time.monotonic() - t0:.1f} s)", nets, subs)
        m = self.service.metrics()
        r.check("metrics: the 8 events applied once Nautobot was back, no failure, nothing held",
                m.events(outcome="applied") - m0.events(outcome="applied") == 8
                and m.events(outcome="failed") == m0.events(outcome="failed")
                and m.value("oslo_nautobot_held_events") == 0, m.event_rows())

    def scenario_sigterm(self):
        r = self.r
        note("5. SIGTERM")
        svc = self.service
        nets, subs = [], []
        # a) Busy: slow requests, many events queued.
        self.proxy.delay = 0.1
        base = svc.applied()
        off = svc.offset()
        for i in range(6):
            net = self.create_network(f"consume-term-{i}")
            nets.append(net["id"])
            subs += [self.create_subnet(net)["id"] for _ in range(3)]
        wait_for(lambda: svc.applied() - base >= 3, 30, interval=0.05)
        before = svc.applied() - base
        t0 = time.monotonic()
        svc.signal(signal.SIGTERM)
        rc = svc.wait(15)
        took = time.monotonic() - t0
        self.proxy.delay = 0
        r.check(f"SIGTERM while busy ({before} of 24 applied): exit 0 in {took:.1f} s", rc == 0 and took < 10,
                f"exit {rc}\n{svc.log_tail(20)}")
        if rc is None:
            svc.proc.kill()
            svc.wait(10)
        # What it started it finished, logged and acknowledged; what it had
        # not started is back in the queue: exactly 24 minus the applied.
        done = len(svc.summaries(off))
        started = len(svc.started_events(off))
        left = self.returned()
        r.check(f"SIGTERM: every event it started it finished ({started} started, {done} applied); the "
                f"{left} others are back in the queue, no consumer left",
                started == done and left == 24 - done, f"started {started}, applied {done}, ready {left}")
        # b) Retrying: Nautobot unreachable, events held in their lanes.
        self.proxy.stop()
        try:
            if not self.start_service(svc, "restart after SIGTERM, Nautobot unreachable"):
                return
            m0 = svc.metrics()
            for i in range(3):
                net = self.create_network(f"consume-term-retry-{i}")
                nets.append(net["id"])
            wait_for(lambda: svc.metrics().value("oslo_nautobot_retries_total", 0)
                     > m0.value("oslo_nautobot_retries_total", 0), 20)
            t0 = time.monotonic()
            svc.signal(signal.SIGTERM)
            rc = svc.wait(15)
            took = time.monotonic() - t0
            r.check(f"SIGTERM while events are retried: exit 0 in {took:.1f} s", rc == 0 and took < 10,
                    f"exit {rc}\n{svc.log_tail(20)}")
            if rc is None:
                svc.proc.kill()
                svc.wait(10)
            left = self.returned()
            r.check("SIGTERM while retrying: the 18 left and the 3 held events are back in the queue, "
                    "none acknowledged", left == 24 - done + 3, left)
        finally:
            self.proxy.start()
        if not self.start_service(svc, "restart after SIGTERM"):
            return
        if not self.check_drained("after SIGTERM and restart"):
            return
        self.check_world("after SIGTERM and restart: everything applied", nets, subs)
        # c) Order across a stop: a subnet create keeps failing (503 on POST
        #    prefixes only), its delete waits behind it. On SIGTERM the
        #    create goes back to the queue; the delete must not be applied
        #    before it, or the restarted service re-creates a deleted subnet.
        net = self.create_network("consume-term-order")
        if not self.check_drained("SIGTERM order: network created"):
            return
        self.proxy.fail_on("prefixes", method="POST", path_prefix="/api/ipam/prefixes/")
        try:
            sub = self.create_subnet(net)
            self.delete_subnet(net, sub)
            m0 = svc.metrics()
            wait_for(lambda: svc.metrics().value("oslo_nautobot_retries_total", 0)
                     > m0.value("oslo_nautobot_retries_total", 0), 20)
            held = svc.metrics().value("oslo_nautobot_held_events")
            svc.signal(signal.SIGTERM)
            rc = svc.wait(15)
            left = self.returned()
            r.check(f"SIGTERM while a subnet create is retried (held_events {held}): exit 0, create and "
                    f"delete both back in the queue", rc == 0 and held == 2 and left == 2,
                    f"exit {rc}, ready {left}")
            if rc is None:
                svc.proc.kill()
                svc.wait(10)
        finally:
            self.proxy.clear("prefixes")
        if not self.start_service(svc, "restart after SIGTERM during a retry"):
            return
        if not self.check_drained("after SIGTERM during a retry and restart"):
            return
        self.check_world("SIGTERM during a retry keeps the network's order: the deleted subnet stays deleted",
                         [net["id"]], [sub["id"]])

    # 6. Two replicas -------------------------------------------------------------------

    def replica_roles(self, replicas):
        """(active, standby) by their own metrics and /healthz, or None
        unless exactly one says active and the other standing by."""
        views = [(s, s.metrics().value("oslo_nautobot_active"), s.healthz()) for s in replicas]
        active = [s for s, a, h in views if a == 1 and h == (200, "active")]
        standby = [s for s, a, h in views if a == 0 and h == (200, "standing by")]
        if len(active) == 1 and len(standby) == 1:
            return active[0], standby[0]
        return None

    def scenario_takeover(self):
        r = self.r
        note("6. two replicas: takeover on SIGKILL and SIGTERM")
        first = self.service
        second = Service(self, "replica-2")
        if not self.start_service(second, "a second replica on the same queue", expect="standing by"):
            return
        replicas = [first, second]
        roles = wait_for(lambda: self.replica_roles(replicas), 5)
        consumers = self.sac_state(2)
        r.check("two replicas: exactly one active (oslo_nautobot_active 1, /healthz \"active\"), the other "
                "standing by (0, \"standing by\"); RabbitMQ: 2 consumers, 1 active",
                roles is not None and roles[0] is first and len(consumers) == 2
                and sum(c["active"] for c in consumers) == 1,
                f"{[(s.name, s.metrics().value('oslo_nautobot_active'), s.healthz()) for s in replicas]}\n"
                f"{consumers}")
        if roles is None:
            return
        runs = [signal.SIGKILL] + [signal.SIGTERM] * 4
        try:
            for i, sig in enumerate(runs, 1):
                roles = wait_for(lambda: self.replica_roles(replicas), 10)
                if roles is None:
                    r.check(f"takeover {i}: one replica active, one standing by", False,
                            [(s.name, s.metrics().value("oslo_nautobot_active"), s.healthz()) for s in replicas])
                    return
                active, standby = roles
                if not self.takeover_run(i, sig, active, standby):
                    return
                if i < len(runs) and not self.start_service(
                        active, f"takeover {i}: the stopped replica back, as the standby", expect="standing by"):
                    return
        finally:
            self.takeover_summary()
            # The scenarios after this one talk to the replica that is
            # active now; the other one, if any, goes.
            running = [s for s in replicas if s.running()]
            live = [s for s in running if s.metrics().value("oslo_nautobot_active") == 1] or running or [first]
            self.service = live[0]
            for s in running:
                if s is not self.service:
                    self.stop_service(s, f"replica {s.name} (standby) stops")

    def takeover_run(self, run, sig, active, standby):
        r = self.r
        how = "SIGKILL" if sig == signal.SIGKILL else "SIGTERM"
        label = f"takeover {run} ({how})"
        nets = [self.network(f"consume-to{run}-{k}-v0") for k in range(30)]
        ids = [n["id"] for n in nets]
        subs = {}
        total = 30 * 5
        offsets = {active.name: active.offset(), standby.name: standby.offset()}
        base = active.applied()

        # Round after round, 0.4 s apart (faster than they are applied, so a
        # backlog builds): every network's create, one subnet each, three
        # renames, each rename's name carrying its number. The last round is
        # published right after the signal, as Neutron goes on publishing
        # while a replica stops.
        rounds = []
        signalled = threading.Event()

        def publish():
            for rnd in range(5):
                if rnd == 4:
                    signalled.wait(60)
                for k, net in enumerate(nets):
                    if rnd == 0:
                        self.publish_network(net)
                    elif rnd == 1:
                        subs[net["id"]] = self.create_subnet(net)["id"]
                    else:
                        self.rename(net, f"consume-to{run}-{k}-v{rnd - 1}")
                rounds.append(rnd)
                if rnd < 3:
                    time.sleep(0.4)
        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        wait_for(lambda: len(rounds) >= 4 and active.applied() - base >= 60, 40, interval=0.05)
        t_kill = time.time()
        active.signal(sig)
        signalled.set()
        rc = active.wait(20)
        t_exit = time.time()
        publisher.join(60)
        note(f"{label}: {how} sent, all published")
        if sig == signal.SIGKILL:
            r.check(f"{label}: the active replica is gone", rc == -signal.SIGKILL, f"exit {rc}")
        else:
            r.check(f"{label}: the active replica exits 0 in {t_exit - t_kill:.1f} s",
                    rc == 0 and t_exit - t_kill < 10, f"exit {rc}\n{active.log_tail(20)}")
        if rc is None:
            active.proc.kill()
            active.wait(10)
        drained = self.drained(standby)
        note(f"{label}: drained")
        r.check(f"{label}: the standby drained the queue", drained,
                f"ready {self.broker.ready()}\n{standby.log_tail(30)}")
        if not drained:
            return False
        status = (standby.metrics().value("oslo_nautobot_active"), standby.healthz())
        consumers = self.sac_state(1)
        r.check(f"{label}: the standby is the active one now (oslo_nautobot_active 1, /healthz \"active\"; "
                f"RabbitMQ: its one consumer active)", status == (1, (200, "active")) and len(consumers) == 1,
                f"{status} {consumers}")
        self.misnamed = 0
        self.check_world(f"{label}: final state", ids, list(subs.values()))
        misnamed = self.misnamed

        # What each process applied, from its -v log.
        logs = [(active, offsets[active.name]), (standby, offsets[standby.name])]
        applied, broken, by_service = self.log_order(logs, ids)
        published = {(n, p) for n in ids for p in range(len(self.world.sequence[n]))}
        lost = published - applied
        mine, theirs = by_service.get(active.name, set()), by_service.get(standby.name, set())
        standby_runs = standby.summaries(offsets[standby.name])
        early = [ts for ts, _ in standby_runs if ts < t_kill]
        later = [ts for ts, _ in standby_runs if ts >= t_kill]
        starts = [ts for ts, _ in standby.started_events(offsets[standby.name]) if ts >= t_kill]
        takeover = (min(later) - t_kill) if later else None
        first_start = (min(starts) - t_kill) if starts else None
        r.check(f"{label}: killed mid-stream: the active one had applied {len(mine)} of {total}, the standby "
                f"applied the rest ({len(theirs)}) and nothing before the takeover",
                0 < len(mine) < total and theirs and not early, f"{len(mine)} {len(theirs)} early {len(early)}")
        r.check(f"{label}: no event lost: all {total} applied by one replica or the other",
                len(published) == total and not lost, sorted(lost)[:20])
        failed = [line for line in active.log_lines(offsets[active.name]) + standby.log_lines(offsets[standby.name])
                  if line.startswith("oslo-nautobot:")]
        r.check(f"{label}: no event failed", not failed, "\n".join(failed[:10]))
        if sig == signal.SIGTERM:
            # It finished and acknowledged what it had started: the standby
            # applies none of those again. And it started nothing after the
            # signal (1 s of grace for a worker that was taking one).
            again = mine & theirs
            late = [ts for ts, _ in active.started_events(offsets[active.name]) if ts > t_kill + 1.0]
            r.check(f"{label}: the stopping replica finished and acknowledged what it had started (none "
                    f"applied again by the standby), started nothing new", not again and not late,
                    f"again {sorted(again)}, started after SIGTERM: {len(late)}")
        else:
            again = mine & theirs
            r.check(f"{label}: the standby applied again at most the events in flight at the kill "
                    f"({len(again)})", len(again) <= 4, sorted(again))
        # One event of a network at a time, across both processes; several
        # networks at once.
        spans = []
        for service, since in logs:
            for start, end, summary in service.intervals(since):
                ev = self.world.event_of(summary)
                if ev and ev[0] in set(ids):
                    spans.append((start, end, ev[0]))
        spans.sort()
        same = other = 0
        for i, (_, e1, n1) in enumerate(spans):
            for s2, _, n2 in spans[i + 1:]:
                if s2 >= e1:
                    break
                if n1 == n2:
                    same += 1
                else:
                    other += 1
        r.check(f"{label}: several networks worked on at once ({other} overlapping pairs of events)", other > 0,
                other)
        # SIGTERM: the standby must get nothing before the stopping replica
        # has left (the broker returns its messages first).
        check = r.check
        if sig == signal.SIGTERM:
            left = [ts for ts, _, _, text in active.records(offsets[active.name]) if text.startswith("stopped:")]
            gap = (min(starts) - left[0]) if left and starts else None
            check(f"{label}: the standby started its first event only after the stopping replica had left "
                  f"({'-' if gap is None else f'{gap:+.2f}'} s)", gap is not None and gap >= 0,
                  f"stopping replica left at {left}, the standby's first start {min(starts) if starts else '-'}")
        check(f"{label}: never two events of one network at once ({same} overlapping pairs)", same == 0, same)
        check(f"{label}: every network's events applied in publishing order (both logs, merged by timestamp)",
              not broken, "\n".join(f"{n}: {p}" for n, p in list(broken.items())[:10]))
        changelog_broken, _ = self.changelog_order(ids)
        check(f"{label}: Nautobot's change log shows every network's writes in publishing order",
              not changelog_broken, "\n".join(f"{n}: {p}" for n, p in list(changelog_broken.items())[:10]))
        r.check(f"{label}: the standby applied its first event {takeover if takeover is None else round(takeover, 2)}"
                f" s after the {how}", takeover is not None and takeover < 10, takeover)
        dead = self.broker.ready(DEAD)
        r.check(f"{label}: nothing dead-lettered", dead == 0, dead)
        broken_nets = set(broken) | set(changelog_broken)
        fig = {"run": run, "signal": how, "takeover": takeover, "first_start": first_start, "lost": len(lost),
               "broken": len(broken_nets), "networks": len(ids), "events": total, "by_active": len(mine),
               "again": len(mine & theirs), "exit": t_exit - t_kill, "misnamed": misnamed}
        self.takeover_figures.append(fig)
        figure(f"takeover run {run} ({how}): the standby applied its first event "
               f"{'-' if takeover is None else f'{takeover:.2f}'} s after the {how} (its first delivery "
               f"started {'-' if first_start is None else f'{first_start:.2f}'} s after); {total} events of 30 "
               f"networks, {len(mine)} applied by the stopped replica, {len(lost)} lost, "
               f"{len(mine & theirs)} applied twice; networks out of order: {len(broken_nets)} of 30, "
               f"with a wrong final name: {misnamed}; "
               f"the stopped replica exited {t_exit - t_kill:.2f} s after the signal")
        return True

    def takeover_summary(self):
        figs = self.takeover_figures
        for how in ("SIGKILL", "SIGTERM"):
            mine = [f for f in figs if f["signal"] == how]
            times = [f["takeover"] for f in mine if f["takeover"] is not None]
            if not mine:
                continue
            spread = (f"{min(times):.2f} / {statistics.median(times):.2f} / {max(times):.2f} s (min / median / max)"
                      if len(times) > 1 else (f"{times[0]:.2f} s" if times else "-"))
            figure(f"takeover after {how}, {len(mine)} run(s): {spread}; events lost "
                   f"{sum(f['lost'] for f in mine)} of {sum(f['events'] for f in mine)}; networks out of order "
                   f"{sum(f['broken'] for f in mine)} of {sum(f['networks'] for f in mine)}, with a wrong final "
                   f"name {sum(f['misnamed'] for f in mine)}")

    # 7. Per-network holds --------------------------------------------------------------

    def scenario_holds(self):
        r = self.r
        note("7. per-network holds: one sick network, 20 well ones")
        svc = self.service
        sick = self.network("consume-sick-v0")
        well = [self.network(f"consume-well-{k}") for k in range(20)]
        self.proxy.fail_on("sick", sick["id"].encode())
        m0 = svc.metrics()
        off = svc.offset()
        t0 = time.monotonic()
        subs = {}
        self.publish_network(sick)
        for net in well:
            self.publish_network(net)
        subs[sick["id"]] = self.create_subnet(sick)["id"]
        for net in well:
            subs[net["id"]] = self.create_subnet(net)["id"]
        for v in (1, 2, 3):
            self.rename(sick, f"consume-sick-v{v}")
        all_well = wait_for(lambda: svc.applied() - m0.events(outcome="applied") >= 40, 40)
        took = time.monotonic() - t0
        r.check(f"holds: the 40 events of the 20 other networks applied while the sick one is held "
                f"({took:.1f} s)", all_well, svc.log_tail(20))
        self.check_world("holds: the 20 other networks", [n["id"] for n in well], [subs[n["id"]] for n in well])
        ucvni = self.nb.ucvni(sick["id"])
        r.check(f"holds: nothing of the sick network in Nautobot ({self.proxy.hits('sick')} of its requests "
                f"answered 503)", ucvni is None and self.nb.namespace(sick["id"]) is None
                and self.proxy.hits("sick") > 0, ucvni)
        samples = []
        for _ in range(3):
            m = svc.metrics()
            samples.append((m.value("oslo_nautobot_held_events"), m.value("oslo_nautobot_held_oldest_seconds")))
            time.sleep(1.0)
        ages = [a for _, a in samples]
        r.check(f"holds: /metrics held_events {samples[-1][0]:.0f} (its 5 events), held_oldest_seconds growing "
                f"({', '.join(f'{a:.1f}' for a in ages)})",
                all(h == 5 for h, _ in samples) and ages[0] >= 1 and ages == sorted(ages) and ages[-1] > ages[0] + 1.5,
                samples)
        self.check_unacked("holds: the sick network's 5 events", 5)
        m = svc.metrics()
        retries = m.value("oslo_nautobot_retries_total", 0) - m0.value("oslo_nautobot_retries_total", 0)
        r.check(f"holds: retried ({retries:.0f} retries), none let go, /healthz \"active\"",
                retries >= 2 and m.events(outcome="failed") == m0.events(outcome="failed")
                and svc.healthz() == (200, "active"), m.event_rows())
        held_for = time.monotonic() - t0
        oldest = svc.metrics().value("oslo_nautobot_held_oldest_seconds")
        hits = self.proxy.hits("sick")
        self.proxy.clear("sick")
        t1 = time.monotonic()
        if not self.check_drained("holds: the fault cleared"):
            return
        landed = time.monotonic() - t1
        self.check_world("holds: the sick network's events landed, its last name", [sick["id"]], [subs[sick["id"]]])
        applied, broken, _ = self.log_order([(svc, off)], [sick["id"]])
        positions = sorted(p for n, p in applied if n == sick["id"])
        changelog_broken, per = self.changelog_order([sick["id"]])
        r.check("holds: the sick network's 5 events applied once each, in publishing order (log and change log)",
                positions == [0, 1, 2, 3, 4] and not broken and not changelog_broken,
                f"applied {positions}, log order broken {broken}, change log {per}")
        m = svc.metrics()
        r.check("holds: nothing held any more (held_events 0, held_oldest_seconds 0)",
                m.value("oslo_nautobot_held_events") == 0 and m.value("oslo_nautobot_held_oldest_seconds") == 0, m)
        # A lone held event: held_oldest_seconds must not fall back to 0
        # while its retry runs (scraped every 25 ms over 3 s).
        lone = self.network("consume-lone-v0")
        self.proxy.fail_on("lone", lone["id"].encode())
        self.publish_network(lone)
        wait_for(lambda: svc.metrics().value("oslo_nautobot_held_events") == 1, 10)
        time.sleep(1.0)
        samples, t_end = [], time.monotonic() + 3
        while time.monotonic() < t_end:
            m = svc.metrics()
            samples.append((m.value("oslo_nautobot_held_events"), m.value("oslo_nautobot_held_oldest_seconds")))
            time.sleep(0.025)
        zero = [s for s in samples if s[0] and not s[1]]
        self.proxy.clear("lone")
        r.check(f"holds: a lone held event: held_oldest_seconds never 0 while it is held "
                  f"({len(zero)} of {len(samples)} scrapes read 0)", samples and not zero,
                  f"{len(zero)} of {len(samples)} scrapes: held_events {zero[:1]} with held_oldest_seconds 0")
        if self.check_drained("holds: the lone one's fault cleared"):
            self.check_world("holds: the lone one applied", [lone["id"]], [])
        figure(f"held network: its 5 events held {held_for:.1f} s (held_oldest_seconds reached {oldest:.1f}) while "
               f"the 40 events of 20 other networks were applied in {took:.1f} s; {hits} "
               f"requests answered 503; it landed {landed:.1f} s after the fault cleared, in order")

    # 8. --give-up-after ----------------------------------------------------------------

    def tap(self, name):
        """A queue of the test's own bound like the service's: a copy of
        every notification published from now on, as it was published."""
        ch = self.broker.channel()
        ch.queue_declare(name, durable=False, auto_delete=False)
        ch.queue_bind(name, EXCHANGE, ROUTING_KEY)

    def tapped(self, name, token):
        """The tapped messages whose body contains token."""
        return [m for m in self.broker.take_all(name) if token in m.body]

    def scenario_give_up(self):
        r = self.r
        note("8. --give-up-after")
        gdlx, gdead, tap = "consume-giveup-dlx", "consume-giveup-dead", "consume-giveup-tap"
        # Refused at start without a dead-letter exchange: a given-up event
        # must be kept somewhere.
        s = Service(self, "give-up-no-dlx", dlx=None, env={"CONSUME_GIVE_UP_AFTER": "3"}, register=False)
        p = self.run_binary(s.argv[1:], s.env, timeout=30)
        r.check("CONSUME_GIVE_UP_AFTER=3 without --dead-letter-exchange: exit 7 at start, says why",
                p.returncode == 7 and "--dead-letter-exchange" in p.stderr, f"exit {p.returncode}\n{p.stderr[-800:]}")
        if not self.stop_service(self.service, "give-up: the main replica makes way"):
            return
        self.broker.declare_dead_letter(gdlx, gdead)
        self.tap(tap)
        g = Service(self, "give-up", extra=["--give-up-after", "3"], dlx=gdlx)
        if not self.start_service(g, "give-up: a replica with --give-up-after 3"):
            return
        # a) The dead-letter exchange routes to a queue.
        off = g.offset()
        sick = self.network("consume-giveup-a-v0")
        token = sick["name"].encode()  # only its create carries this name
        well = [self.network(f"consume-giveup-well-{k}") for k in range(3)]
        self.proxy.fail_on("give-up", sick["name"].encode())
        self.publish_network(sick)
        for net in well:
            self.publish_network(net)
        self.rename(sick, "consume-giveup-a-v1")
        sub = self.create_subnet(sick)
        self.rename(sick, "consume-giveup-a-v2")
        t0 = time.monotonic()
        got = wait_for(lambda: self.broker.ready(gdead), 20)
        waited = time.monotonic() - t0
        hits = self.proxy.hits("give-up")
        self.proxy.clear("give-up")
        dead = self.broker.take_all(gdead)
        original = self.tapped(tap, token)
        r.check(f"give-up: the sick network's create dead-lettered ({waited:.1f} s after it was published), "
                f"exactly one copy", got == 1 and len(dead) == 1, f"{got} {len(dead)}\n{g.log_tail(20)}")
        r.check("give-up: the dead-letter copy is the message as published, byte for byte (and its "
                "content type)", len(dead) == 1 and len(original) == 1 and dead[0].body == original[0].body
                and dead[0].properties.get("content_type") == original[0].properties.get("content_type"),
                f"dead {[d.body[:200] for d in dead]}\noriginal {[o.body[:200] for o in original]}")
        lines = g.records(off)
        held = [ts for ts, _, _, text in lines if re.match(r"^network\.create\.end \(message \d+\): held", text or "")]
        gave = [ts for ts, _, _, text in lines if "still failing after --give-up-after" in (text or "")]
        span = (gave[0] - held[0]) if held and gave else None
        r.check(f"give-up: dead-lettered {'-' if span is None else f'{span:.1f}'} s after its first failure "
                f"(--give-up-after 3, retries up to --max-backoff 2 apart)",
                span is not None and 3.0 <= span <= 7.0, "\n".join(t or "" for _, _, _, t in lines[-30:]))
        if not self.check_drained("give-up: the rest of its lane", g):
            return
        self.check_world("give-up: the rest of the sick network's lane applied (last name, subnet)",
                         [sick["id"]] + [n["id"] for n in well], [sub["id"]])
        m = g.metrics()
        r.check(f"give-up: oslo_nautobot_dead_letters_total 1, the create counted failed with code 75 "
                f"({hits} requests answered 503)",
                m.value("oslo_nautobot_dead_letters_total") == 1
                and m.events(event_type="network.create.end", outcome="failed", code=75) == 1
                and m.value("oslo_nautobot_held_events") == 0, m.event_rows())
        figure(f"give-up: dead-lettered {'-' if span is None else f'{span:.2f}'} s after its first failure "
               f"(--give-up-after 3), on the dead-letter queue {waited:.2f} s after it was published")
        # b) The dead-letter exchange routes to no queue: mandatory, so the
        #    broker returns the copy; the message is kept and tried again.
        self.broker.channel().queue_unbind(gdead, gdlx, "")
        off = g.offset()
        void = self.network("consume-giveup-b-v0")
        token = void["name"].encode()
        self.proxy.fail_on("void", void["name"].encode())
        self.publish_network(void)
        self.rename(void, "consume-giveup-b-v1")
        vsub = self.create_subnet(void)
        t0 = time.monotonic()
        refused = wait_for(lambda: any("routes it to no queue" in t for t in g.log_lines(off)), 20)
        r.check(f"give-up, no queue bound to the dead-letter exchange: the copy comes back unroutable "
                f"({time.monotonic() - t0:.1f} s)", refused, g.log_tail(20))
        wait_for(lambda: sum("routes it to no queue" in t for t in g.log_lines(off)) >= 2, 10)
        self.check_unacked("give-up, unroutable: its 3 events not acknowledged, kept", 3)
        m = g.metrics()
        r.check("give-up, unroutable: held (held_events 3), not counted as dead-lettered, nothing on any "
                "queue, the rest of its lane waits",
                m.value("oslo_nautobot_held_events") == 3 and m.value("oslo_nautobot_dead_letters_total") == 1
                and self.broker.ready(gdead) == 0 and self.nb.ucvni(void["id"]) is None, m)
        self.broker.channel().queue_bind(gdead, gdlx, "")
        got = wait_for(lambda: self.broker.ready(gdead), 15)
        self.proxy.clear("void")
        dead = self.broker.take_all(gdead)
        original = self.tapped(tap, token)
        r.check("give-up: once a queue is bound, the kept message is dead-lettered, unchanged",
                got == 1 and len(dead) == 1 and len(original) == 1 and dead[0].body == original[0].body,
                f"{got} {len(dead)} {len(original)}")
        if not self.check_drained("give-up: the rest of the unroutable one's lane", g):
            return
        self.check_world("give-up: then the rest of its lane applied", [void["id"]], [vsub["id"]])
        r.check("give-up: oslo_nautobot_dead_letters_total 2",
                g.metrics().value("oslo_nautobot_dead_letters_total") == 2, g.metrics())
        # c) A malformed body whose dead letter is unroutable is held in
        #    the lane "other": only that lane may wait, not a subnet of
        #    another network published behind 40 port notifications.
        self.broker.channel().queue_unbind(gdead, gdlx, "")
        off = g.offset()
        self.broker.publish_raw(b"not JSON, and nowhere to dead-letter it")
        wait_for(lambda: any("routes it to no queue" in t for t in g.log_lines(off)), 15)
        for _ in range(40):
            self.publish("port.create.end", {"port": {"id": str(uuid.uuid4()), "network_id": well[0]["id"]}})
        late = self.create_subnet(well[1])
        flowed = wait_for(lambda: self.nb.prefix(late["id"]) is not None, 6, interval=0.5)
        m = g.metrics()
        r.check("give-up, a malformed body held (unroutable): a subnet of another network "
                  "published behind 40 port notifications is applied meanwhile", flowed,
                  f"held_events {m.value('oslo_nautobot_held_events')}, "
                  f"in flight {m.value('oslo_nautobot_in_flight')}, ready {self.broker.ready()}")
        self.broker.channel().queue_bind(gdead, gdlx, "")
        if self.check_drained("give-up: a queue bound again, everything flows", g):
            self.check_world("give-up: the subnet behind them applied", [], [late["id"]])
            dead = self.broker.take_all(gdead)
            r.check("give-up: the malformed body dead-lettered, unchanged",
                    [d.body for d in dead] == [b"not JSON, and nowhere to dead-letter it"], [d.body for d in dead])
        self.broker.channel().queue_delete(tap)
        self.stop_service(g, "give-up: the replica stops")

    # 9. No UCVNI group, and --dry-run ---------------------------------------------

    def scenario_no_group(self):
        r = self.r
        note("9. no UCVNI group; consume --dry-run")
        if self.service.running() and not self.stop_service(self.service, "no group: the main replica makes way"):
            return
        n = Service(self, "no-group", group=None)
        if not self.start_service(n, "a replica without UCVNI_GROUP_NAME"):
            return
        dead0 = self.broker.ready(DEAD)
        net = self.create_network("consume-nogroup-v0")
        sub = self.create_subnet(net)
        self.rename(net, "consume-nogroup-v1")
        others = [self.create_subnet(o)["id"] for o in self.some_networks[:3]]
        applied = wait_for(lambda: n.applied() >= 3, 20)
        r.check("no group: the subnets of 3 other networks applied", applied, n.log_tail(20))
        self.check_world("no group: the other networks' subnets", [], others)
        wait_for(lambda: n.metrics().value("oslo_nautobot_retries_total", 0) >= 2, 10)
        self.check_unacked("no group: the network's 3 events (create, subnet, rename)", 3)
        m = n.metrics()
        r.check(f"no group: held (held_events {m.value('oslo_nautobot_held_events')}, held_oldest_seconds "
                f"{m.value('oslo_nautobot_held_oldest_seconds')}, retries {m.value('oslo_nautobot_retries_total')}), "
                f"nothing failed or dead-lettered",
                m.value("oslo_nautobot_held_events") == 3 and m.value("oslo_nautobot_held_oldest_seconds") > 1
                and m.value("oslo_nautobot_retries_total") >= 2 and m.events(outcome="failed") == 0
                and m.value("oslo_nautobot_dead_letters_total") == 0 and self.broker.ready(DEAD) == dead0, m)
        said = any("no UCVNI group" in t for t in n.log_lines())
        r.check("no group: the log says what is missing; nothing of the network written",
                said and self.nb.ucvni(net["id"]) is None and self.nb.namespace(net["id"]) is None, n.log_tail(10))
        if not self.stop_service(n, "no group: the replica stops"):
            return
        left = self.returned()
        r.check("no group: its held events are back in the queue", left == 3, left)
        self.check_dry_run()
        if not self.start_service(self.service, "the main replica again, with the group"):
            return
        if not self.check_drained("no group: with the group"):
            return
        self.check_world("no group: applied once the group is set, in order", [net["id"]], [sub["id"]])

    def check_dry_run(self):
        r = self.r
        ready0 = self.broker.ready()
        changes0 = self.nb.call("GET", "/api/extras/object-changes/?limit=1")[1]["count"]
        argv = self.service.argv[1:] + ["--dry-run"]
        p = self.run_binary(argv, self.service.env, timeout=30)
        time.sleep(0.5)
        changes1 = self.nb.call("GET", "/api/extras/object-changes/?limit=1")[1]["count"]
        r.check("consume --dry-run: refused by the command line, exit 2",
                p.returncode == 2 and "--dry-run" in p.stderr, f"exit {p.returncode}\n{p.stderr[-600:]}")
        r.check(f"consume --dry-run: the queue untouched ({ready0} ready), no consumer; Nautobot untouched "
                f"(change log {changes0} entries)", self.broker.ready() == ready0 and not self.broker.consumers()
                and changes1 == changes0, f"ready {self.broker.ready()}, changes {changes1}")

    # 10. Hostile event types -----------------------------------------------------------

    def scenario_hostile_types(self):
        r = self.r
        note("10. hostile event types")
        svc = self.service
        m0 = svc.metrics()
        dead0 = m0.value("oslo_nautobot_dead_letters_total", 0)
        rnd = random.Random()
        alphabet = 'ab.z_"\\\n\r\t{}=, #é🙂\u2028\x00\x7f' + "".join(HANDLED[:3])
        types = ['x"} 1\nfake_metric 9', "network.create.end\n", "network.create.end\"", "\\", "\\\"", "\n",
                 "network.create.end ", " network.create.end", "NETWORK.CREATE.END", "identity.project.created\x00",
                 "subnet.create.end\\n", 'event_type="network.create.end"', "# HELP oslo_nautobot_up fake",
                 "a" * 5000, "}{", "\u2028network.update.end"]
        while len(types) < 200:
            types.append("".join(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 40))))
        types = [t for t in types if t not in HANDLED]
        for t in types:
            self.publish(t, {"network": {"id": str(uuid.uuid4()), "name": "hostile"}})
        # And event types that are no strings at all (malformed: dead-lettered).
        weird = [5, None, {"a": "b\"}"}, ["network.create.end"]]
        for w in weird:
            self.broker.publish_raw(json.dumps({"event_type": w, "payload": {}, "message_id": str(uuid.uuid4()),
                                                "priority": "INFO", "publisher_id": "x"}).encode())
        want = len(types) + len(weird)
        done = wait_for(lambda: svc.metrics().events() - m0.events() >= want, 30)
        r.check(f"hostile: all {want} messages handled", done, svc.log_tail(10))
        status, text = svc.http("/metrics")
        try:
            families = list(text_string_to_metric_families(text))
            parsed = None
        except Exception as e:  # noqa: BLE001 - any parser error is the failure
            families, parsed = [], f"{type(e).__name__}: {e}"
        r.check(f"hostile: /metrics ({len(text)} bytes) parsed by prometheus_client", status == 200 and parsed is None
                and families, parsed)
        kinds = {f.name: f.type for f in families}
        r.check("hostile: exactly the service's metric families, each of its type", kinds == FAMILIES,
                {k: v for k, v in kinds.items() if FAMILIES.get(k) != v})
        labels = {}
        for f in families:
            for s in f.samples:
                for k, v in s.labels.items():
                    labels.setdefault((s.name, k), set()).add(v)
        values = labels.get(("oslo_nautobot_events_total", "event_type"), set())
        r.check(f"hostile: event_type label values within the 9 handled types and \"other\" ({sorted(values)})",
                values and values <= LABEL_VALUES, sorted(values - LABEL_VALUES, key=repr)[:20])
        names = {k for k in labels}
        r.check("hostile: no label but event_type/outcome/code on events_total and le on the histogram",
                names <= {("oslo_nautobot_events_total", "event_type"), ("oslo_nautobot_events_total", "outcome"),
                          ("oslo_nautobot_events_total", "code"), ("oslo_nautobot_event_seconds_bucket", "le")},
                names)
        sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*\})? \S+$')
        odd = [line for line in text.splitlines() if not line.startswith("# ") and not sample.match(line)]
        r.check("hostile: every line of /metrics a comment or a plain sample", not odd, odd[:5])
        m = svc.metrics()
        other = m.events(event_type="other") - m0.events(event_type="other")
        dead = m.value("oslo_nautobot_dead_letters_total", 0) - dead0
        letters = self.broker.take_all(DEAD)
        r.check(f"hostile: all {want} counted as \"other\" ({other}); the {len(weird)} non-string ones "
                f"dead-lettered ({dead} confirmed, {len(letters)} on the queue)",
                other == want and m.events() - m0.events() == want and dead >= len(weird)
                and len(letters) == dead, m.event_rows())
        r.check("hostile: /healthz 200 \"active\"", svc.healthz() == (200, "active"), svc.healthz())

    # 11. The queue declared with other arguments ----------------------------------------

    def scenario_queue_arguments(self):
        r = self.r
        note("11. the queue declared with other arguments; --queue-type classic")
        if not self.check_drained("queue arguments: the queue drained"):
            return
        if not self.stop_service(self.service, "queue arguments: the main replica stops"):
            return

        def refused(label, queue, extra, kind):
            s = Service(self, "refused", queue=queue, extra=extra, register=False)
            p = self.run_binary(s.argv[1:], s.env, timeout=30)
            text = p.stderr
            how = all(w in text for w in ("exists with other arguments", "To migrate", "stop every consumer",
                                          "delete_queue", kind))
            r.check(f"{label}: exit 7, the message says how to migrate", p.returncode == 7 and how,
                    f"exit {p.returncode}\n{text[-1000:]}")
        # The quorum queue, and a replica asked for a classic one.
        refused("the quorum queue, --queue-type classic", QUEUE, ["--queue-type", "classic"], "a classic queue")
        # The single-replica version's queue: classic, durable, no arguments.
        ch = self.broker.channel()
        ch.queue_delete(QUEUE)
        ch.queue_declare(QUEUE, durable=True, auto_delete=False)
        ch.queue_bind(QUEUE, EXCHANGE, ROUTING_KEY)
        self.broker.publish_raw(b'{"event_type": "port.create.end", "payload": {}}')
        refused("the old classic queue without x-single-active-consumer", QUEUE, [], "a quorum queue")
        refused("the old classic queue, --queue-type classic", QUEUE, ["--queue-type", "classic"], "a classic queue")
        q = self.broker.queue()
        r.check("the old queue untouched: classic, no arguments, its message still there",
                q is not None and q["type"] == "classic" and q["arguments"] == {} and self.broker.ready() == 1, q)
        # A classic queue with single active consumer: --queue-type classic.
        classic = "consume-classic-sac"
        ch.queue_declare(classic, durable=True, auto_delete=False, arguments={"x-single-active-consumer": True})
        one = Service(self, "classic-1", queue=classic, extra=["--queue-type", "classic"])
        two = Service(self, "classic-2", queue=classic, extra=["--queue-type", "classic"])
        if not self.start_service(one, "--queue-type classic on a classic single-active-consumer queue"):
            return
        if not self.start_service(two, "a second replica on it", expect="standing by"):
            return
        net = self.create_network("consume-classic-v0")
        applied = wait_for(lambda: one.applied() >= 1, 20)
        self.check_world("--queue-type classic: the event applied", [net["id"]], [])
        roles = wait_for(lambda: self.replica_roles([one, two]), 5)
        consumers = self.sac_state(2, classic)
        q = self.broker.queue(classic)
        r.check("--queue-type classic: one active, one standing by; the queue still classic with "
                "x-single-active-consumer, 2 consumers (1 active)",
                applied and roles == (one, two) and q["type"] == "classic"
                and q["arguments"] == {"x-single-active-consumer": True}
                and len(consumers) == 2 and sum(c["active"] for c in consumers) == 1, f"{roles} {q} {consumers}")
        self.stop_service(one, "--queue-type classic: the active replica stops")
        self.stop_service(two, "--queue-type classic: the standby stops")

    # Cleanup -------------------------------------------------------------------------

    def cleanup(self):
        nb = self.nb
        for s in self.services:
            if s.running():
                rc = s.stop()
                self.r.check(f"replica {s.name} stops on SIGTERM with exit 0", rc == 0, f"exit {rc}")
        self.proxy.stop()

        def ids(path, **query):
            q = urllib.parse.urlencode({**query, "limit": 1000, "depth": 0}, doseq=True)
            status, body = nb.call("GET", f"{path}?{q}")
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {str(body)[:300]}")
            return [{"id": x["id"]} for x in body["results"]]

        def delete(path, rows):
            # 25 at a time, four requests at once: Nautobot deletes a few
            # objects a second per worker.
            chunks = [rows[i:i + 25] for i in range(0, len(rows), 25)]
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                return list(pool.map(lambda chunk: nb.call("DELETE", path, chunk)[0], chunks))

        names = list(self.world.networks)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            done = [pool.submit(delete, "/api/ipam/prefixes/", ids("/api/ipam/prefixes/", tenant=self.tenant)),
                    pool.submit(delete, "/api/plugins/undercloud-vni/ucvnis/",
                                ids("/api/plugins/undercloud-vni/ucvnis/", ucvni_group=self.group))]
            for f in done:
                f.result()
        def namespaces():
            return [ns for i in range(0, len(names), 50) for ns in ids("/api/ipam/namespaces/", name=names[i:i + 50])]
        if any(status >= 300 for status in delete("/api/ipam/namespaces/", namespaces())):
            # Prefixes of another tenant in one of them: those first.
            for ns in namespaces():
                for p in nb.all("/api/ipam/prefixes/", namespace=ns["id"]):
                    nb.call("DELETE", f"/api/ipam/prefixes/{p['id']}/")
            delete("/api/ipam/namespaces/", namespaces())
        nb.call("DELETE", f"/api/tenancy/tenants/{self.tenant}/")
        if self.group_id:
            nb.call("DELETE", f"/api/plugins/undercloud-vni/ucvni-groups/{self.group_id}/")
        left = []
        for i in range(0, len(names), 50):
            left += nb.all("/api/ipam/namespaces/", name=names[i:i + 50])
            left += nb.all("/api/plugins/undercloud-vni/ucvnis/", id=names[i:i + 50])
        self.r.check("cleanup: the run's objects are gone from Nautobot", not left,
                     [x.get("name") for x in left])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True, help="oslo-nautobot built with --features consume")
    p.add_argument("--vhost", required=True, help="an empty RabbitMQ vhost of this test, guest allowed")
    p.add_argument("--amqp-port", type=int, default=5672, help="RabbitMQ on 127.0.0.1 (default 5672)")
    p.add_argument("--work", required=True, help="scratch directory")
    p.add_argument("--only", help="comma-separated scenario numbers to run (development)")
    args = p.parse_args()
    if nautobot_env_missing():
        return 1
    # oslo.messaging logs its reconnection attempts while RabbitMQ restarts.
    logging.basicConfig(level=logging.ERROR)

    r = Report()
    t = None
    started = time.monotonic()
    try:
        t = Test(args, r)
        t.setup()
        scenarios = (t.scenario_all_applied, t.scenario_kill, t.scenario_rabbitmq_restart,
                     t.scenario_nautobot_down, t.scenario_sigterm, t.scenario_takeover,
                     t.scenario_holds, t.scenario_give_up, t.scenario_no_group, t.scenario_hostile_types,
                     t.scenario_queue_arguments)
        only = {int(x) for x in args.only.split(",")} if args.only else None
        for number, scenario in enumerate(scenarios, 1):
            if only and number not in only and number != 1:
                continue
            s0 = time.monotonic()
            scenario()
            note(f"{scenario.__name__}: {time.monotonic() - s0:.1f} s")
            if not t.service.running() and number not in (8, 11):
                # A scenario that stopped early may leave the main replica
                # stopped: the next one needs it.
                t.start_service(t.service, "the main replica again")
    except Exception as e:  # noqa: BLE001 - any crash is one failed check
        import traceback
        r.check(f"consume.py ran to the end ({type(e).__name__}: {e})", False, traceback.format_exc())
    finally:
        if t is not None:
            try:
                c0 = time.monotonic()
                t.cleanup()
                note(f"cleanup: {time.monotonic() - c0:.1f} s")
            except Exception as e:  # noqa: BLE001
                r.check(f"cleanup ({type(e).__name__}: {e})", False)
            if r.failed:
                for s in t.services:
                    print(f"---- {s.name} log (last 40 lines) ----", file=sys.stderr)
                    print(s.log_tail(40), file=sys.stderr)
            if t.transport is not None:
                t.transport.cleanup()
            t.broker.reset()
    note(f"total {time.monotonic() - started:.1f} s")
    figure(f"consume.py wall time {time.monotonic() - started:.0f} s")
    r.summary()
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
