#!/usr/bin/env python3
"""oslo-nautobot consume: the service against the real RabbitMQ and a live Nautobot.

Run through run.sh, which provides RabbitMQ (an empty vhost of this test's
own), the venv with oslo.messaging, the binary built with the consume
feature, and NAUTOBOT_URL / NAUTOBOT_TOKEN in the environment.

The service runs as the Deployment runs it (workflows/consume/deployment.yaml):
its own queue, the AMQP password and the Nautobot token from files, /healthz
and /metrics on a port of its own. It reaches Nautobot through a small TCP
forwarder of this test that can be stopped (connection refused), started
again, and slowed down (a delay per forwarded chunk), so that "Nautobot is
down" and "the service is busy" are under the test's control.

Notifications are published as Neutron publishes them: a real
oslo_messaging.Notifier set up from a neutron.conf-like file (driver
messagingv2, topics notifications, control_exchange neutron,
amqp_durable_queues true), with a real oslo.context RequestContext.

Scenarios, each ending with Nautobot's state read back through its REST API
and compared with what the published events imply, the queue empty, and the
service's metrics counting what it did:

1. all applied: networks created, given subnets, renamed; a malformed body and
   an invalid notification go to the dead-letter exchange; events of other
   kinds are acknowledged and ignored.
2. kill -9 mid-stream, then a restart: nothing lost.
3. RabbitMQ restart (stop_app/start_app) while the service runs, with
   notifications published while the broker is down and after it is back:
   /healthz goes 503 then 200 by itself; everything applied.
4. Nautobot unreachable: notifications wait (not applied, not acknowledged,
   retries counted), then are all applied once Nautobot is back.
5. Per-network order under --concurrency 4: many renames and subnet
   create/delete pairs, interleaved across networks; the final names are the
   last ones, deleted subnets are gone, and Nautobot's change log shows each
   network's renames in publishing order.
6. SIGTERM while busy, and SIGTERM while events are being retried: exit 0
   within seconds, the rest back in the queue; after a restart everything is
   applied. And a stop must not break a network's order: when a subnet
   create is being retried, the delete that follows it must not be applied
   before it (the forwarder answers 503 to POST /api/ipam/prefixes/ only).

Every run makes its own objects (fresh UUIDs, UCVNI group, project) and
removes them. Prints one PASS/FAIL line per check and, last,
"N passed, M failed".
"""

import argparse
import ctypes
import datetime
import json
import logging
import os
import random
import signal
import socket
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from testlib import (  # noqa: E402
    AmqpChannel, Nautobot, Report, dashed, free_port, nautobot_env_missing, neutron_notifier)

EXCHANGE = "neutron"
ROUTING_KEY = "notifications.info"
QUEUE = "oslo-nautobot-consume"  # the Deployment's queue, not the EventSource's
DLX = "oslo-nautobot-consume-dlx"
DEAD = "oslo-nautobot-consume-dead"
DRAIN_TIMEOUT = 60  # seconds for a batch to be applied


def note(text):
    print(f"[consume.py {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def wait_for(predicate, timeout, interval=0.2):
    """Polls until predicate() is truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------
# A TCP forwarder between the service and Nautobot


class Forwarder:
    """Listens on a fixed loopback port and forwards every connection to
    Nautobot. stop() closes the listener and every open connection (the
    service then gets "connection refused"); start() listens again on the
    same port. `delay` seconds are waited before forwarding each chunk the
    service sends, which makes every request slower. A request whose first
    bytes are in `fail` gets a 503 from the forwarder itself (Nautobot
    overloaded for that kind of request only)."""

    def __init__(self, target):
        u = urllib.parse.urlsplit(target)
        self.target = (u.hostname, u.port or 80)
        self.port = free_port()
        self.delay = 0.0
        self.fail = ()
        self.lock = threading.Lock()
        self.listener = None
        self.sockets = set()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        with self.lock:
            self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def stop(self):
        with self.lock:
            s, self.listener = self.listener, None
            open_ = list(self.sockets)
            self.sockets.clear()
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for c in open_:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self.sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src, dst, slow):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if slow and self.delay:
                    time.sleep(self.delay)
                if slow and self.fail and data.startswith(tuple(self.fail)):
                    src.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self.lock:
                self.sockets.discard(src)
                self.sockets.discard(dst)


# --------------------------------------------------------------------------
# The service under test


def die_with_parent():
    """In the child: SIGTERM when this test process dies, however it dies
    (Linux prctl PR_SET_PDEATHSIG), so no service outlives the run."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class Service:
    """`oslo-nautobot consume`, started, signalled and restarted by the test."""

    def __init__(self, args, nautobot_url, group, work):
        self.bin = args.bin
        self.metrics_port = free_port()
        self.log_path = os.path.join(work, "service.log")
        token_file = os.path.join(work, "nb-token")
        password_file = os.path.join(work, "rabbitmq-password")
        for path, text in ((token_file, os.environ["NAUTOBOT_TOKEN"] + "\n"), (password_file, "guest\n")):
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(path, 0o600)
        # Nothing of the caller's environment configures the service: only
        # what is set here (the token from its file, as in the Deployment).
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("NAUTOBOT_", "AMQP_", "CONSUME_", "METRICS_", "UCVNI_", "RUST_LOG"))}
        env.update({
            "NAUTOBOT_URL": nautobot_url,
            "NAUTOBOT_TOKEN_FILE": token_file,
            "UCVNI_GROUP_NAME": group,
            # A down Nautobot is noticed quickly and retried by the worker
            # (whose retries the metrics count), not inside one request.
            "NAUTOBOT_ATTEMPTS": "2",
            "NAUTOBOT_RETRY_BUDGET": "5",
            "NAUTOBOT_CONNECT_TIMEOUT": "2",
            "NAUTOBOT_TIMEOUT": "10",
        })
        self.env = env
        self.argv = [
            self.bin, "consume", "-v",
            "--amqp-url", "amqp://127.0.0.1:5672/",
            "--amqp-vhost", args.vhost,
            "--amqp-username", "guest",
            "--amqp-password-file", password_file,
            "--queue", QUEUE,
            "--concurrency", "4",
            "--prefetch", "32",
            "--max-backoff", "2",
            "--dead-letter-exchange", DLX,
            "--metrics-addr", f"127.0.0.1:{self.metrics_port}",
        ]
        self.proc = None
        self.starts = 0

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

    def stop(self):
        """SIGTERM, then SIGKILL after 20 s; returns the exit code."""
        if self.proc is None:
            return None
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(20) is None:
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
        return self.http("/healthz")[0]

    def metrics(self):
        """{'name{labels}': value} of /metrics; {} when unreachable."""
        status, text = self.http("/metrics")
        out = {}
        if status != 200:
            return out
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def log_tail(self, lines=60):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def events(m, outcome=None, event_type=None, code=None):
    """Sum of oslo_nautobot_events_total over the matching label values."""
    total = 0
    for key, value in m.items():
        if not key.startswith("oslo_nautobot_events_total{"):
            continue
        if outcome and f'outcome="{outcome}"' not in key:
            continue
        if event_type and f'event_type="{event_type}"' not in key:
            continue
        if code is not None and f'code="{code}"' not in key:
            continue
        total += value
    return int(total)


# --------------------------------------------------------------------------
# RabbitMQ: the test's own view


class Broker(AmqpChannel):
    def ready(self, queue=QUEUE):
        """Messages ready in the queue (a passive declare), or None."""
        try:
            _, count, _ = self.channel().queue_declare(queue, passive=True)
            return count
        except Exception:  # noqa: BLE001 - broker restarting, queue missing
            self.reset()
            return None

    def ctl(self, *argv):
        proc = subprocess.run(["rabbitmqctl", "-q", *argv], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def listing(self, what, *fields):
        return json.loads(self.ctl("-p", self.vhost, what, *fields, "--formatter", "json") or "[]")

    def queue(self, name=QUEUE):
        """{messages_ready, messages_unacknowledged, consumers, durable, ...} per rabbitmqctl."""
        rows = [q for q in self.listing("list_queues", "name", "durable", "auto_delete", "exclusive",
                                        "messages_ready", "messages_unacknowledged", "consumers")
                if q["name"] == name]
        return rows[0] if rows else None

    def declare_dead_letter(self):
        ch = self.channel()
        ch.exchange_declare(DLX, "fanout", durable=True, auto_delete=False)
        ch.queue_declare(DEAD, durable=True, auto_delete=False)
        ch.queue_bind(DEAD, DLX, "")

    def publish_raw(self, body):
        """A message that is no oslo notification at all, straight to the exchange."""
        msg = amqp.Message(body, content_type="application/json", delivery_mode=2)
        self.channel().basic_publish(msg, exchange=EXCHANGE, routing_key=ROUTING_KEY)

    def take_all(self, queue):
        out = []
        ch = self.channel()
        while True:
            msg = ch.basic_get(queue, no_ack=True)
            if msg is None:
                return out
            out.append(msg.body if isinstance(msg.body, bytes) else msg.body.encode())


# --------------------------------------------------------------------------
# The run


class World:
    """What the published events imply for Nautobot."""

    def __init__(self):
        self.networks = {}  # id -> {"name", "vni", "exists"}
        self.subnets = {}  # id -> {"cidr", "network", "exists"}


class Test:
    def __init__(self, args, r):
        self.args, self.r = args, r
        self.nb = Nautobot(os.environ["NAUTOBOT_URL"], os.environ["NAUTOBOT_TOKEN"])
        suffix = uuid.uuid4().hex[:8]
        self.group = f"consume-{suffix}"
        self.group_id = None
        self.project = uuid.uuid4().hex
        self.tenant = dashed(self.project)
        self.world = World()
        self.vni = random.randrange(100_000, 15_000_000)
        self.octets = iter((a, b) for a in range(random.randrange(0, 100), 256) for b in range(256))
        self.broker = Broker(args.vhost)
        self.forwarder = Forwarder(self.nb.url)
        self.service = None
        self.transport = self.notifier = None

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

    def create_network(self, name):
        net = self.network(name)
        self.publish("network.create.end", {"network": net})
        return net

    def rename(self, net, name):
        net.update(name=name, revision_number=net["revision_number"] + 1)
        self.world.networks[net["id"]]["name"] = name
        self.publish("network.update.end", {"network": dict(net)})

    def create_subnet(self, net):
        sub = self.subnet(net)
        net["subnets"].append(sub["id"])
        self.publish("subnet.create.end", {"subnet": sub})
        return sub

    def delete_subnet(self, net, sub):
        net["subnets"].remove(sub["id"])
        self.world.subnets[sub["id"]]["exists"] = False
        self.publish("subnet.delete.end", {"subnet": sub, "subnet_id": sub["id"]})

    # Waiting and checking ----------------------------------------------------------

    def drained(self, timeout=DRAIN_TIMEOUT):
        """Waits until the queue holds nothing, ready or unacknowledged."""
        def empty():
            if self.broker.ready() != 0 or self.service.metrics().get("oslo_nautobot_in_flight") != 0:
                return False
            q = self.broker.queue()
            return q is not None and q["messages_ready"] == 0 and q["messages_unacknowledged"] == 0
        return wait_for(empty, timeout, interval=0.3)

    def check_drained(self, label, timeout=DRAIN_TIMEOUT):
        t0 = time.monotonic()
        ok = self.drained(timeout)
        took = time.monotonic() - t0
        self.r.check(f"{label}: queue empty, nothing unacknowledged ({took:.1f} s)", ok,
                     f"queue: {self.broker.queue()}\nservice log:\n{self.service.log_tail(30)}")
        return ok

    def check_world(self, label, networks, subnets):
        """Nautobot holds exactly what the events on these networks/subnets imply."""
        r, nb, w = self.r, self.nb, self.world
        ucvnis = {u["id"]: u for u in nb.all("/api/plugins/undercloud-vni/ucvnis/", ucvni_group=self.group)}
        names = sorted({n for n in networks})
        namespaces = {ns["name"] for ns in nb.all("/api/ipam/namespaces/", name=names)} if names else set()
        prefixes = {p["id"]: p for p in nb.all("/api/ipam/prefixes/", tenant=self.tenant)}
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
            got = (u.get("name"), u.get("ucvni_id"), (u.get("status") or {}).get("name"),
                   (u.get("tenant") or {}).get("id"))
            exp = (want["name"], want["vni"], "Active", self.tenant)
            if got != exp:
                wrong.append(f"network {id_}: UCVNI {got}, want {exp}")
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
        return r.check(f"{label}: Nautobot matches the events ({live_nets} UCVNIs and namespaces, "
                       f"{live_subs} prefixes, {len(subnets) - live_subs} deleted)", not wrong,
                       "\n".join(wrong))

    def applied(self):
        return events(self.service.metrics(), outcome="applied")

    def start_service(self, label):
        self.service.start()
        ok = wait_for(lambda: self.service.healthz() == 200 or not self.service.running(), 20) \
            and self.service.healthz() == 200
        return self.r.check(f"{label}: service up, /healthz 200", ok, self.service.log_tail(30))

    # Scenarios ---------------------------------------------------------------------

    def setup(self):
        r = self.r
        status, body = self.nb.call("POST", "/api/plugins/undercloud-vni/ucvni-groups/", {"name": self.group})
        r.check(f"Nautobot: UCVNI group {self.group} created", status == 201, f"{status} {body}")
        self.group_id = (body or {}).get("id") if status == 201 else None
        self.forwarder.start()
        self.broker.declare_dead_letter()
        self.service = Service(self.args, self.forwarder.url, self.group, self.args.work)
        if not self.start_service("start"):
            raise RuntimeError("the service did not start")
        # What the service declared: the exchange as Neutron's (durable topic),
        # its own durable queue, bound with notifications.info only.
        ex = [e for e in self.broker.listing("list_exchanges", "name", "type", "durable") if e["name"] == EXCHANGE]
        r.check("RabbitMQ: exchange neutron declared durable, topic",
                ex == [{"name": EXCHANGE, "type": "topic", "durable": True}], ex)
        q = self.broker.queue()
        r.check(f"RabbitMQ: queue {QUEUE} durable, not exclusive or auto-delete, one consumer",
                q is not None and q["durable"] and not q["exclusive"] and not q["auto_delete"]
                and q["consumers"] == 1, q)
        binds = [(b["source_name"], b["routing_key"])
                 for b in self.broker.listing("list_bindings", "source_name", "destination_name",
                                              "destination_kind", "routing_key")
                 if b["destination_kind"] == "queue" and b["destination_name"] == QUEUE and b["source_name"]]
        r.check(f"RabbitMQ: {QUEUE} bound to neutron with notifications.info only",
                binds == [(EXCHANGE, ROUTING_KEY)], binds)
        url = f"rabbit://guest:guest@127.0.0.1:5672/{self.args.vhost}"
        self.transport, self.notifier = neutron_notifier(self.args.work, url, EXCHANGE, True,
                                                         "network.consume-test")

    def scenario_all_applied(self):
        r = self.r
        note("1. all applied")
        nets, subs = [], []
        for i in range(5):
            net = self.create_network(f"consume-all-{i}")
            nets.append(net["id"])
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
        counts = {t: events(m, outcome="applied", event_type=t)
                  for t in ("network.create.end", "subnet.create.end", "network.update.end")}
        r.check("metrics: 5 network.create.end, 10 subnet.create.end, 5 network.update.end applied",
                counts == {"network.create.end": 5, "subnet.create.end": 10, "network.update.end": 5}, counts)
        ignored = events(m, code=6)
        r.check("metrics: the 2 notifications of other kinds counted with code 6", ignored == 2,
                {k: v for k, v in m.items() if "events_total" in k})
        r.check("metrics: the invalid notification (code 5) and the malformed body counted as failed",
                events(m, event_type="network.create.end", code=5) == 1
                and events(m, event_type="-", code=5) == 1,
                {k: v for k, v in m.items() if "events_total" in k})
        dead = self.broker.take_all(DEAD)
        bodies = []
        for body in dead:
            try:
                bodies.append(json.loads(json.loads(body)["oslo.message"])["payload"])
            except (ValueError, KeyError, TypeError):
                bodies.append(body)
        r.check("dead-letter exchange: got exactly the invalid notification and the malformed body, "
                "unchanged", sorted(map(str, bodies)) == sorted(map(str, [bad, b"this is not JSON"])),
                bodies)
        r.check("metrics: oslo_nautobot_up 1, in flight 0, latency histogram counts every event",
                m.get("oslo_nautobot_up") == 1 and m.get("oslo_nautobot_in_flight") == 0
                and m.get("oslo_nautobot_event_seconds_count") == events(m), m)

    def scenario_kill(self):
        r = self.r
        note("2. kill -9 mid-stream")
        nets, subs = [], []
        self.forwarder.delay = 0.05
        base = self.applied()
        for i in range(10):
            net = self.create_network(f"consume-kill-{i}")
            nets.append(net["id"])
            subs += [self.create_subnet(net)["id"] for _ in range(3)]
        wait_for(lambda: self.applied() - base >= 8, 30, interval=0.05)
        before = self.applied() - base
        self.service.signal(signal.SIGKILL)
        rc = self.service.wait(10)
        self.forwarder.delay = 0
        r.check(f"kill -9 after {before} of 40 events applied: the service is gone",
                rc == -signal.SIGKILL and 0 < before < 40, f"exit {rc}, applied {before}")
        q = self.broker.queue()
        left = q["messages_ready"] if q else None
        r.check(f"kill -9: the {left} unacknowledged events are back in the queue, no consumer",
                q is not None and q["messages_unacknowledged"] == 0 and q["consumers"] == 0
                and 0 < left < 40, q)
        if not self.start_service("restart after kill -9"):
            return
        if not self.check_drained("after kill -9 and restart"):
            return
        self.check_world("after kill -9 and restart: nothing lost", nets, subs)
        again = self.applied()
        r.check(f"metrics: the restarted service applied the {left} events left ({again})",
                left is not None and again >= left, again)

    def scenario_rabbitmq_restart(self):
        r = self.r
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
            down = wait_for(lambda: self.service.healthz() == 503, 15)
            up_metric = self.service.metrics().get("oslo_nautobot_up")
            r.check("RabbitMQ stopped: /healthz 503, oslo_nautobot_up 0", down and up_metric == 0,
                    f"healthz {self.service.healthz()}, up {up_metric}")
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
        back = wait_for(lambda: self.service.healthz() == 200, 60)
        r.check(f"the service reconnected by itself: /healthz 200 "
                f"({time.monotonic() - t0 - outage:.1f} s after RabbitMQ was back)", back,
                self.service.log_tail(20))
        batch("after", 4)
        if not self.check_drained("after the RabbitMQ restart"):
            return
        self.check_world("after the RabbitMQ restart: every event before, during and after applied",
                         nets, subs)
        q = self.broker.queue()
        r.check("RabbitMQ restart: the service consumes again (one consumer)", q and q["consumers"] == 1, q)

    def scenario_nautobot_down(self):
        r = self.r
        note("4. Nautobot unreachable")
        nets, subs = [], []
        m0 = self.service.metrics()
        self.forwarder.stop()
        try:
            for i in range(4):
                net = self.create_network(f"consume-down-{i}")
                nets.append(net["id"])
                subs.append(self.create_subnet(net)["id"])
            wait_for(lambda: self.service.metrics().get("oslo_nautobot_retries_total", 0)
                     >= m0.get("oslo_nautobot_retries_total", 0) + 4, 20)
            time.sleep(2)
            m = self.service.metrics()
            q = self.broker.queue()
            held = (q["messages_ready"] + q["messages_unacknowledged"]) if q else None
            r.check("Nautobot down: the 8 events are held (ready or unacknowledged), none acknowledged",
                    held == 8 and q["messages_unacknowledged"] >= 1, q)
            r.check("Nautobot down: none applied, none failed",
                    events(m) == events(m0), {k: v for k, v in m.items() if "events_total" in k})
            retries = m.get("oslo_nautobot_retries_total", 0) - m0.get("oslo_nautobot_retries_total", 0)
            r.check(f"Nautobot down: oslo_nautobot_retries_total grows ({retries:.0f}), "
                    f"in flight {m.get('oslo_nautobot_in_flight'):.0f}",
                    retries >= 4 and m.get("oslo_nautobot_in_flight", 0) >= 1, m)
            r.check("Nautobot down: /healthz stays 200 (RabbitMQ is fine)", self.service.healthz() == 200)
        finally:
            self.forwarder.start()
        t0 = time.monotonic()
        if not self.check_drained("Nautobot back"):
            return
        self.check_world(f"Nautobot back: every held event applied ({time.monotonic() - t0:.1f} s)", nets, subs)
        m = self.service.metrics()
        r.check("metrics: the 8 events applied once Nautobot was back, no failure",
                events(m, outcome="applied") - events(m0, outcome="applied") == 8
                and events(m, outcome="failed") == events(m0, outcome="failed"), m)

    def scenario_order(self):
        r = self.r
        note("5. per-network order under --concurrency 4")
        nets, subs = [], []
        objs = [self.create_network(f"consume-order-{i}-name-0") for i in range(8)]
        nets = [n["id"] for n in objs]
        t0 = time.monotonic()
        # Round after round, every network is renamed; some rounds also
        # create a subnet, which a later round deletes again; round 9
        # creates one that stays.
        made = {}  # (network index, round made) -> subnet
        for rnd in range(1, 11):
            for i, net in enumerate(objs):
                self.rename(net, f"consume-order-{i}-name-{rnd}")
                if rnd in (2, 5, 9):
                    made[i, rnd] = self.create_subnet(net)
                    subs.append(made[i, rnd]["id"])
                if rnd in (5, 8):
                    self.delete_subnet(net, made[i, rnd - 3])
        total = 8 * (1 + 10 + 2 + 2 + 1)
        if not self.check_drained(f"order: {total} events"):
            return
        self.check_world(f"order: final names are the last ones, deleted subnets gone "
                         f"({time.monotonic() - t0:.1f} s for {total} events)", nets, subs)
        # Nautobot's change log: each UCVNI's names, oldest first.
        bad, spans = [], []
        for i, id_ in enumerate(nets):
            changes = self.nb.all("/api/extras/object-changes/", changed_object_id=id_)
            changes.sort(key=lambda c: c["time"])
            seq = [int(c["object_data"]["name"].rsplit("-", 1)[1]) for c in changes
                   if c.get("object_data") and c["object_data"].get("name")]
            if seq != sorted(seq) or not seq or seq[-1] != 10:
                bad.append(f"network {i}: names applied in the order {seq}")
            if changes:
                spans.append((changes[0]["time"], changes[-1]["time"]))
        r.check("order: Nautobot's change log shows each network's renames in publishing order", not bad,
                "\n".join(bad))
        overlapping = sum(1 for a in spans for b in spans if a is not b and a[0] < b[1] and b[0] < a[1])
        r.check("order: different networks were worked on at the same time (concurrency)", overlapping > 0,
                spans)

    def scenario_sigterm(self):
        r = self.r
        note("6. SIGTERM")
        nets, subs = [], []
        # a) Busy: slow requests, many events queued.
        self.forwarder.delay = 0.1
        base = self.applied()
        for i in range(6):
            net = self.create_network(f"consume-term-{i}")
            nets.append(net["id"])
            subs += [self.create_subnet(net)["id"] for _ in range(3)]
        wait_for(lambda: self.applied() - base >= 3, 30, interval=0.05)
        before = self.applied() - base
        t0 = time.monotonic()
        self.service.signal(signal.SIGTERM)
        rc = self.service.wait(15)
        took = time.monotonic() - t0
        self.forwarder.delay = 0
        r.check(f"SIGTERM while busy ({before} of 24 applied): exit 0 in {took:.1f} s", rc == 0 and took < 10,
                f"exit {rc}\n{self.service.log_tail(20)}")
        if rc is None:
            self.service.proc.kill()
            self.service.wait(10)
        q = self.broker.queue()
        left = q["messages_ready"] if q else None
        r.check(f"SIGTERM: nothing left unacknowledged, no consumer ({left} events back in the queue)",
                q is not None and q["messages_unacknowledged"] == 0 and q["consumers"] == 0, q)
        # b) Retrying: Nautobot unreachable, events held in the workers.
        self.forwarder.stop()
        try:
            if not self.start_service("restart after SIGTERM, Nautobot unreachable"):
                return
            m0 = self.service.metrics()
            for i in range(3):
                net = self.create_network(f"consume-term-retry-{i}")
                nets.append(net["id"])
            wait_for(lambda: self.service.metrics().get("oslo_nautobot_retries_total", 0)
                     > m0.get("oslo_nautobot_retries_total", 0), 20)
            t0 = time.monotonic()
            self.service.signal(signal.SIGTERM)
            rc = self.service.wait(15)
            took = time.monotonic() - t0
            r.check(f"SIGTERM while events are retried: exit 0 in {took:.1f} s", rc == 0 and took < 10,
                    f"exit {rc}\n{self.service.log_tail(20)}")
            if rc is None:
                self.service.proc.kill()
                self.service.wait(10)
            q = self.broker.queue()
            r.check("SIGTERM while retrying: the retried events went back to the queue, none acknowledged",
                    q is not None and q["messages_unacknowledged"] == 0 and q["consumers"] == 0
                    and q["messages_ready"] >= 3, q)
        finally:
            self.forwarder.start()
        if not self.start_service("restart after SIGTERM"):
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
        self.forwarder.fail = (b"POST /api/ipam/prefixes/",)
        try:
            sub = self.create_subnet(net)
            self.delete_subnet(net, sub)
            m0 = self.service.metrics()
            wait_for(lambda: self.service.metrics().get("oslo_nautobot_retries_total", 0)
                     > m0.get("oslo_nautobot_retries_total", 0), 20)
            self.service.signal(signal.SIGTERM)
            rc = self.service.wait(15)
            q = self.broker.queue()
            r.check("SIGTERM while a subnet create is retried: exit 0, create and delete both back "
                    "in the queue", rc == 0 and q is not None and q["messages_ready"] == 2, f"exit {rc}, {q}")
            if rc is None:
                self.service.proc.kill()
                self.service.wait(10)
        finally:
            self.forwarder.fail = ()
        if not self.start_service("restart after SIGTERM during a retry"):
            return
        if not self.check_drained("after SIGTERM during a retry and restart"):
            return
        self.check_world("SIGTERM during a retry keeps the network's order: the deleted subnet stays deleted",
                         [net["id"]], [sub["id"]])

    # Cleanup -------------------------------------------------------------------------

    def cleanup(self):
        nb = self.nb
        if self.service is not None and self.service.running():
            rc = self.service.stop()
            self.r.check("the service stops on SIGTERM with exit 0", rc == 0, f"exit {rc}")
        self.forwarder.stop()
        prefixes = [{"id": p["id"]} for p in nb.all("/api/ipam/prefixes/", tenant=self.tenant)]
        if prefixes:
            nb.call("DELETE", "/api/ipam/prefixes/", prefixes)
        names = list(self.world.networks)
        for i in range(0, len(names), 50):
            found = nb.all("/api/ipam/namespaces/", name=names[i:i + 50])
            for ns in found:  # the prefixes of other tenants, if any
                for p in nb.all("/api/ipam/prefixes/", namespace=ns["id"]):
                    nb.call("DELETE", f"/api/ipam/prefixes/{p['id']}/")
            if found:
                nb.call("DELETE", "/api/ipam/namespaces/", [{"id": ns["id"]} for ns in found])
        ucvnis = [{"id": u["id"]} for u in nb.all("/api/plugins/undercloud-vni/ucvnis/", ucvni_group=self.group)]
        if ucvnis:
            nb.call("DELETE", "/api/plugins/undercloud-vni/ucvnis/", ucvnis)
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
    p.add_argument("--work", required=True, help="scratch directory")
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
        for scenario in (t.scenario_all_applied, t.scenario_kill, t.scenario_rabbitmq_restart,
                         t.scenario_nautobot_down, t.scenario_order, t.scenario_sigterm):
            s0 = time.monotonic()
            scenario()
            note(f"{scenario.__name__}: {time.monotonic() - s0:.1f} s")
    except Exception as e:  # noqa: BLE001 - any crash is one failed check
        import traceback
        r.check(f"consume.py ran to the end ({type(e).__name__}: {e})", False, traceback.format_exc())
    finally:
        if t is not None:
            try:
                t.cleanup()
            except Exception as e:  # noqa: BLE001
                r.check(f"cleanup ({type(e).__name__}: {e})", False)
            if r.failed and t.service is not None:
                print("---- service log (last 60 lines) ----", file=sys.stderr)
                print(t.service.log_tail(60), file=sys.stderr)
            if t.transport is not None:
                t.transport.cleanup()
            t.broker.reset()
    note(f"total {time.monotonic() - started:.1f} s")
    r.summary()
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
