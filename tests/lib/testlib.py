"""What the Python test scripts share: the PASS/FAIL report, a Nautobot REST
client, oslo.messaging's Notifier set up as Neutron sets it up, a plain
AMQP channel, a proxy that counts the requests a binary sends Nautobot, and
the benchmarks' kept-alive Nautobot client.

Imported by tests/e2e/e2e.py, tests/consume/consume.py, tests/bench/bench.py, tests/bench/bulk.py,
tests/reconcile/reconcile.py, tests/bench/reconcile.py (and, through e2e.py,
tests/neutron/neutron_e2e.py), each of which puts this
directory on sys.path. Only the standard library is imported here at load
time: bench.py runs with the system python3 when it leaves consume out, so
oslo.messaging and py-amqp are imported where they are used.
"""

import http.client
import http.server
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid


class Report:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS: {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL: {name}", flush=True)
            for line in str(detail).strip().splitlines()[:40]:
                print(f"      {line}", flush=True)
        return bool(ok)

    def summary(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)


def nautobot_env_missing():
    """True, after the failure and the summary are printed, when
    NAUTOBOT_URL or NAUTOBOT_TOKEN is not set."""
    for var in ("NAUTOBOT_URL", "NAUTOBOT_TOKEN"):
        if not os.environ.get(var):
            print(f"FAIL: {var} is not set")
            print("0 passed, 1 failed")
            return True
    return False


def dashed(hex32):
    """A Keystone project id (32 hex digits) as Nautobot's tenant UUID."""
    return str(uuid.UUID(hex32))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Nautobot


class Nautobot:
    """Nautobot's REST API with a token. direct=True ignores http_proxy and
    the like (as the binary and curl, run without them, do)."""

    def __init__(self, url, token, timeout=30, direct=False):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        handlers = [urllib.request.ProxyHandler({})] if direct else []
        self.opener = urllib.request.build_opener(*handlers)

    def call(self, method, path, body=None):
        """(status, the JSON answer, or its text when it is no JSON)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Token {self.token}", "Accept": "application/json",
            "Content-Type": "application/json"})
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                status, text = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text.decode(errors="replace")

    def get(self, path):
        """One object (depth 1), or None when it does not exist."""
        status, body = self.call("GET", f"{path}?depth=1")
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body}")
        return body

    def all(self, path, **query):
        """Every object of a filtered list (one page of up to 1000)."""
        q = urllib.parse.urlencode({**query, "limit": 1000, "depth": 1}, doseq=True)
        status, body = self.call("GET", f"{path}?{q}")
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {str(body)[:300]}")
        return body["results"]

    def namespace(self, name):
        status, body = self.call("GET", f"/api/ipam/namespaces/?name={urllib.parse.quote(name)}")
        if status != 200:
            raise RuntimeError(f"GET namespaces: {status} {body}")
        return body["results"][0] if body["results"] else None

    def prefix(self, id_):
        return self.get(f"/api/ipam/prefixes/{id_}/")

    def ucvni(self, id_):
        return self.get(f"/api/plugins/undercloud-vni/ucvnis/{id_}/")


# --------------------------------------------------------------------------
# oslo.messaging: Neutron's side


def neutron_notifier(work, url, exchange, durable, publisher_id, conf_name="neutron.conf"):
    """A Notifier set up from a neutron.conf-like file (written to
    work/conf_name), as Neutron sets its up: (transport, notifier)."""
    from oslo_config import cfg
    import oslo_messaging

    path = os.path.join(work, conf_name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"""[DEFAULT]
transport_url = {url}
control_exchange = {exchange}

[oslo_messaging_notifications]
driver = messagingv2
topics = notifications

[oslo_messaging_rabbit]
amqp_durable_queues = {str(durable).lower()}
""")
    conf = cfg.ConfigOpts()
    conf(["--config-file", path], project="neutron")
    transport = oslo_messaging.get_notification_transport(conf)
    return transport, oslo_messaging.Notifier(transport, publisher_id=publisher_id)


# --------------------------------------------------------------------------
# RabbitMQ: a test's own view


class AmqpChannel:
    """A channel of the test's own on 127.0.0.1:5672 (guest) in one vhost,
    opened when first wanted and again after reset()."""

    def __init__(self, vhost):
        self.vhost = vhost
        self.conn = self.ch = None

    def channel(self):
        if self.ch is None:
            import amqp

            self.conn = amqp.Connection(host="127.0.0.1:5672", userid="guest", password="guest",
                                        virtual_host=self.vhost)
            self.conn.connect()
            self.ch = self.conn.channel()
        return self.ch

    def reset(self):
        """Drops the connection (the broker went away, say)."""
        try:
            if self.conn is not None:
                self.conn.close()
        except Exception:  # noqa: BLE001 - the connection may be dead already
            pass
        self.conn = self.ch = None



def wait_for(predicate, timeout, interval=0.2):
    """Polls until predicate() is truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)

# --------------------------------------------------------------------------
# A counting HTTP proxy: the binary's requests to Nautobot, exactly


HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
       "content-length", "host"}


class CountingProxy:
    """Forwards every HTTP request to Nautobot and records (method, path,
    status). The binary keeps its connection alive: the handler serves
    request after request on it (HTTP/1.1); each request goes upstream on a
    connection of its own, so no stale upstream connection can make a write
    be sent twice."""

    def __init__(self, target):
        u = urllib.parse.urlsplit(target)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port or (443 if self.https else 80)
        self.lock = threading.Lock()
        self.log = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def forward(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                headers["Host"] = f"{proxy.host}:{proxy.port}"
                headers["Connection"] = "close"
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                cls = http.client.HTTPSConnection if proxy.https else http.client.HTTPConnection
                try:
                    conn = cls(proxy.host, proxy.port, timeout=120)
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    status, reason, answer_headers = resp.status, resp.reason, resp.getheaders()
                    conn.close()
                except (OSError, http.client.HTTPException):
                    proxy.record(self.command, self.path, 502)
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                proxy.record(self.command, self.path, status)
                self.send_response(status, reason)
                for k, v in answer_headers:
                    if k.lower() not in HOP and k.lower() not in ("date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def record(self, method, path, status):
        with self.lock:
            self.log.append((method, path, status))

    def mark(self):
        with self.lock:
            return len(self.log)

    def since(self, mark):
        with self.lock:
            return list(self.log[mark:])

    def close(self):
        self.server.shutdown()


# --------------------------------------------------------------------------
# Nautobot over one kept-alive connection: the benchmarks' client


class KeptAliveApi:
    """Nautobot's REST API over one kept-alive connection (http.client), so
    that a benchmark's own requests cost what a client's would; `requests`
    counts them."""

    def __init__(self, url, token, timeout=600):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.token = token
        self.timeout = timeout
        self.conn = None
        self.requests = 0

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json; version=3.0",
                   "Content-Type": "application/json"}
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                text = resp.read()
                self.requests += 1
                return resp.status, (json.loads(text) if text else None)
            except (http.client.HTTPException, OSError):
                # A kept-alive connection Nautobot closed: a new one.
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def ok(self, method, path, body=None, expect=(200, 201, 204)):
        status, answer = self.call(method, path, body)
        if status not in expect:
            raise RuntimeError(f"{method} {path}: {status} {str(answer)[:400]}")
        return answer

    def all(self, path, **query):
        """Every row of a listing, following `next`; `query` is added to
        whatever query `path` already has."""
        query = urllib.parse.urlencode({**query, "limit": 1000})
        page = path + ("&" if "?" in path else "?") + query
        rows = []
        while page:
            answer = self.ok("GET", page)
            rows += answer["results"]
            nxt = answer.get("next")
            page = nxt[nxt.index("/api/"):] if nxt else None
        return rows

    def first(self, path, **query):
        found = self.ok("GET", f"{path}?{urllib.parse.urlencode(query)}")["results"]
        return found[0] if found else None
