//! A fault-injecting HTTP proxy for the hostile-conditions tests: it sits
//! between the binary and a Nautobot (real or not), counts every request that
//! reaches it, and, as told, forwards it or makes it fail the ways a restarting
//! or overloaded Nautobot does.
//!
//! Requests are read whole (head and `Content-Length` body), so the count is
//! of requests, not connections. A forwarded request goes upstream on a
//! connection of its own (HTTP/1.0, so the answer ends where the connection
//! does) and its answer is handed back as HTTP/1.1 with a `Content-Length`, so
//! the client keeps its connection alive as it would with Nautobot itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What the proxy does to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Pass it to the upstream server and its answer back.
    Forward,
    /// Nothing listens: connections are refused (no request arrives, so
    /// none is counted).
    Refuse,
    /// Read the request and never answer; the connection stays open until
    /// the client gives up.
    Stall,
    /// Forward the request (Nautobot does the work), pass back the first
    /// half of the answer, then reset the connection (TCP RST).
    ResetMidResponse,
    /// Read the request and close the connection without a word.
    Hangup,
    /// Answer with this status and a proxy's error page, without forwarding;
    /// with `Retry-After: n` when given.
    Status(u16, Option<u64>),
    /// Answer with this status and the whole request (head and body, so the
    /// `Authorization` header too) as the JSON body.
    Echo(u16),
    /// Answer 302 with the request's `Authorization` header in `Location`.
    EchoInLocation,
    /// Send the request's bytes back as they came: not HTTP at all.
    EchoRaw,
}

struct Plan {
    /// Applied to the next `count` requests (or all, when `None`)...
    fault: Fault,
    count: Option<u32>,
    /// ...and then this one.
    after: Fault,
}

struct Shared {
    upstream: String,
    plan: Mutex<Plan>,
    requests: AtomicU32,
    stop: AtomicBool,
}

/// One proxy on a free loopback port, until dropped.
pub struct Proxy {
    pub url: String,
    shared: Arc<Shared>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    /// A proxy forwarding to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned(),
            plan: Mutex::new(Plan {
                fault: Fault::Forward,
                count: None,
                after: Fault::Forward,
            }),
            requests: AtomicU32::new(0),
            stop: AtomicBool::new(false),
        });
        let accept_shared = shared.clone();
        let acceptor = thread::spawn(move || accept_loop(listener, addr, accept_shared));
        Self {
            url: format!("http://{addr}"),
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// From now on, every request meets `fault`.
    pub fn set(&self, fault: Fault) {
        *self.shared.plan.lock().unwrap() = Plan {
            fault,
            count: None,
            after: Fault::Forward,
        };
        self.settle();
    }

    /// The next `count` requests meet `fault`, the ones after are forwarded.
    pub fn set_for(&self, fault: Fault, count: u32) {
        assert_ne!(
            fault,
            Fault::Refuse,
            "refused connections cannot be counted"
        );
        *self.shared.plan.lock().unwrap() = Plan {
            fault,
            count: Some(count),
            after: Fault::Forward,
        };
        self.settle();
    }

    /// Requests that reached the proxy so far.
    pub fn requests(&self) -> u32 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    pub fn reset_count(&self) {
        self.shared.requests.store(0, Ordering::SeqCst);
    }

    /// Gives the accept loop time to close or reopen its port.
    fn settle(&self) {
        thread::sleep(Duration::from_millis(40));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Accepts connections while the plan is not `Refuse`; under `Refuse` the
/// port is closed, and reopened (same port) when the plan changes.
fn accept_loop(listener: TcpListener, addr: SocketAddr, shared: Arc<Shared>) {
    listener.set_nonblocking(true).unwrap();
    let mut listener = Some(listener);
    while !shared.stop.load(Ordering::SeqCst) {
        let refusing = shared.plan.lock().unwrap().fault == Fault::Refuse;
        match (&listener, refusing) {
            (Some(_), true) => listener = None,
            (None, false) => listener = Some(rebind(addr)),
            _ => {}
        }
        let Some(l) = &listener else {
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        match l.accept() {
            Ok((stream, _)) => {
                let shared = shared.clone();
                thread::spawn(move || serve(stream, shared));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(_) => thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn rebind(addr: SocketAddr) -> TcpListener {
    // std sets SO_REUSEADDR on Unix, so the port is ours again at once unless
    // another socket took it in the meantime.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr) {
            Ok(l) => {
                l.set_nonblocking(true).unwrap();
                return l;
            }
            Err(_) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot reopen the proxy port {addr}: {e}"),
        }
    }
}

/// One request as read from the client.
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn bytes(&self) -> Vec<u8> {
        let mut bytes = self.head.clone().into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut request = Request {
        head,
        body: Vec::new(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    request.body = vec![0; length];
    reader.read_exact(&mut request.body).ok()?;
    Some(request)
}

/// The fault for the request just counted.
fn next_fault(shared: &Shared) -> Fault {
    let mut plan = shared.plan.lock().unwrap();
    match plan.count {
        None => plan.fault.clone(),
        Some(0) => plan.after.clone(),
        Some(n) => {
            plan.count = Some(n - 1);
            plan.fault.clone()
        }
    }
}

fn serve(stream: TcpStream, shared: Arc<Shared>) {
    stream.set_nonblocking(false).ok();
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        shared.requests.fetch_add(1, Ordering::SeqCst);
        let fault = next_fault(&shared);
        let keep_going = match fault {
            Fault::Forward | Fault::Refuse => match forward(&shared.upstream, &request) {
                Some(answer) => writer.write_all(&answer).is_ok(),
                // Upstream unreachable: what a gateway says.
                None => writer.write_all(&status_page(502, None)).is_ok(),
            },
            Fault::Stall => {
                // Wait for the client to hang up (or 30 s).
                let mut sink = [0u8; 1024];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                false
            }
            Fault::ResetMidResponse => {
                let answer =
                    forward(&shared.upstream, &request).unwrap_or_else(|| status_page(502, None));
                let _ = writer.write_all(&answer[..answer.len() / 2]);
                let _ = writer.flush();
                thread::sleep(Duration::from_millis(20));
                reset(&writer);
                false
            }
            Fault::Hangup => false,
            Fault::Status(status, retry_after) => {
                writer.write_all(&status_page(status, retry_after)).is_ok()
            }
            Fault::Echo(status) => {
                let text = String::from_utf8_lossy(&request.bytes()).into_owned();
                let body = serde_json::json!({"detail": "echo", "request": text}).to_string();
                writer
                    .write_all(&response(status, &[], body.as_bytes()))
                    .is_ok()
            }
            Fault::EchoInLocation => {
                let auth = request.header("authorization").unwrap_or_default();
                let location = format!("http://nautobot.invalid/login/?auth={auth}");
                writer
                    .write_all(&response(302, &[("Location", &location)], b""))
                    .is_ok()
            }
            Fault::EchoRaw => writer.write_all(&request.bytes()).is_ok(),
        };
        if !keep_going {
            return;
        }
    }
}

/// Sends one request upstream on a fresh connection and returns the answer
/// re-framed for the client, or None when upstream cannot be reached.
fn forward(upstream: &str, request: &Request) -> Option<Vec<u8>> {
    let mut lines = request.head.split("\r\n");
    let request_line = lines.next()?;
    let mut head = request_line.replacen("HTTP/1.1", "HTTP/1.0", 1);
    head.push_str("\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if !name.eq_ignore_ascii_case("connection") && !name.eq_ignore_ascii_case("keep-alive") {
            head.push_str(line);
            head.push_str("\r\n");
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream).ok()?;
    up.set_read_timeout(Some(Duration::from_secs(60))).ok();
    up.write_all(head.as_bytes()).ok()?;
    up.write_all(&request.body).ok()?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let (head, body) = (
        String::from_utf8_lossy(&raw[..split]).into_owned(),
        &raw[split + 4..],
    );
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?.replacen("HTTP/1.0", "HTTP/1.1", 1);
    let mut out = format!("{status_line}\r\n");
    for line in lines {
        let name = line.split(':').next().unwrap_or_default().trim();
        if ![
            "connection",
            "keep-alive",
            "content-length",
            "transfer-encoding",
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
        {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    Some(out)
}

fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} Fault\r\nContent-Type: text/html\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The kind of page a load balancer or gateway answers with.
fn status_page(status: u16, retry_after: Option<u64>) -> Vec<u8> {
    let body = format!(
        "<html><head><title>{status}</title></head><body><h1>{status}</h1>\
         <p>injected by the oslo-nautobot test proxy</p></body></html>"
    );
    let retry = retry_after.map(|s| s.to_string());
    let headers: Vec<(&str, &str)> = retry.iter().map(|s| ("Retry-After", s.as_str())).collect();
    response(status, &headers, body.as_bytes())
}

/// Closes the connection with a TCP RST instead of a FIN (SO_LINGER 0).
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        onoff: i32,
        seconds: i32,
    }
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let linger = Linger {
        onoff: 1,
        seconds: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized `struct linger`.
    let rc = unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            &linger,
            std::mem::size_of::<Linger>() as u32,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
    // The RST goes out when the last descriptor of the socket is closed.
}
