//! Test helpers: run the real binary, and a scripted local HTTP server that
//! stands in for Nautobot and records every request it gets.
#![allow(dead_code)]

pub mod nautobot;
pub mod proxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

pub const TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.json"))
}

/// The decoded notification inside a fixture's oslo envelope.
pub fn decoded(name: &str) -> Value {
    let raw: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap();
    serde_json::from_str(raw["oslo.message"].as_str().unwrap()).unwrap()
}

/// One run of the binary, with a clean environment.
pub struct Run {
    command: Command,
    stdin: Vec<u8>,
}

impl Run {
    pub fn new() -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_oslo-nautobot"));
        for (key, _) in std::env::vars() {
            // OpenStack credentials too (tests/run.sh exports a real
            // Keystone's): a test that wants them gives them.
            if key.starts_with("NAUTOBOT_")
                || key.starts_with("OS_")
                || key == "TRUST_EVENTS"
                || key == "UCVNI_GROUP_NAME"
                || key == "RUST_LOG"
                || key == "SSL_CERT_FILE"
            {
                command.env_remove(key);
            }
        }
        command.env("NAUTOBOT_TOKEN_FILE", "/nonexistent/token");
        Self {
            command,
            stdin: Vec::new(),
        }
    }

    /// Points the run at `url` with the test token and short retry settings.
    pub fn against(url: &str) -> Self {
        let mut run = Self::new();
        run.command
            .env("NAUTOBOT_URL", url)
            .env("NAUTOBOT_TOKEN", TOKEN)
            .env("UCVNI_GROUP_NAME", "test-group")
            .env("NAUTOBOT_RETRY_BUDGET", "5")
            .env("NAUTOBOT_TIMEOUT", "2");
        run
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Self {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    pub fn run(mut self) -> Done {
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let mut stdin = child.stdin.take().unwrap();
        let bytes = std::mem::take(&mut self.stdin);
        let writer = thread::spawn(move || {
            // The binary may stop reading early (size limit): ignore EPIPE.
            let _ = stdin.write_all(&bytes);
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        Done(output)
    }
}

pub struct Done(pub Output);

impl Done {
    pub fn code(&self) -> i32 {
        self.0.status.code().expect("exited, not killed")
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Asserts the exit code, showing the output when it differs.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        assert!(!self.stderr().contains("panicked"), "{}", self.stderr());
        self
    }
    /// The one-line JSON summary printed on success.
    pub fn summary(&self) -> Value {
        serde_json::from_str(self.stdout().trim()).expect("one JSON summary line")
    }
}

/// A request as the stand-in server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    /// Which TCP connection carried it (counted from 0 in accept order).
    pub connection: usize,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// What the stand-in answers to one request.
#[derive(Debug, Clone)]
pub enum Answer {
    Json(u16, Value),
    /// Status, extra header lines, body.
    Raw(u16, Vec<(String, String)>, String),
    /// Close the connection without answering.
    Hangup,
}

pub fn json(status: u16, body: Value) -> Answer {
    Answer::Json(status, body)
}

/// One step of a stand-in's script: the request it expects (`METHOD path`,
/// the path with its query) and the answer it gives.
pub type Call = (String, Answer);

pub fn call(line: impl Into<String>, answer: Answer) -> Call {
    (line.into(), answer)
}

/// The same request and answer, `n` times (retries, say).
pub fn times(n: usize, line: &str, answer: Answer) -> Vec<Call> {
    (0..n).map(|_| call(line, answer.clone())).collect()
}

/// A scripted HTTP/1.1 server standing in for Nautobot: every request must
/// be the next one of its script and gets that step's answer. It keeps
/// connections alive like uWSGI with keep-alive does, and records what it
/// was sent. A request off the script is answered 599 and noted; when the
/// stub is dropped, the test fails if any request was off the script or the
/// script was not used up.
pub struct Stub {
    pub url: String,
    state: Arc<Mutex<State>>,
}

struct State {
    script: std::collections::VecDeque<Call>,
    seen: Vec<Seen>,
    off_script: Vec<String>,
}

impl Stub {
    pub fn start(script: Vec<Call>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            script: script.into_iter().collect(),
            seen: Vec::new(),
            off_script: Vec::new(),
        }));
        let shared = state.clone();
        thread::spawn(move || {
            for (connection, stream) in listener.incoming().flatten().enumerate() {
                let state = shared.clone();
                thread::spawn(move || serve(stream, connection, state));
            }
        });
        Self { url, state }
    }

    /// A stub that expects no request at all.
    pub fn untouched() -> Self {
        Self::start(Vec::new())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// `METHOD path` of every request, in order.
    pub fn lines(&self) -> Vec<String> {
        self.seen().iter().map(Seen::line).collect()
    }

    /// The body of the n-th request.
    pub fn body(&self, n: usize) -> Value {
        self.seen()[n].body.clone().unwrap_or(Value::Null)
    }

    /// Fails unless every request was the script's and the script is used up.
    pub fn finish(&self) {
        let state = self.state.lock().unwrap();
        let sent: Vec<String> = state.seen.iter().map(Seen::line).collect();
        assert!(
            state.off_script.is_empty(),
            "requests off the script: {:#?}\nall requests: {sent:#?}",
            state.off_script
        );
        let left: Vec<&String> = state.script.iter().map(|(line, _)| line).collect();
        assert!(
            left.is_empty(),
            "expected requests never came: {left:#?}\nrequests: {sent:#?}"
        );
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.finish();
        }
    }
}

fn serve(stream: TcpStream, connection: usize, state: Arc<Mutex<State>>) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = (!body.is_empty()).then(|| serde_json::from_slice(&body).unwrap_or(Value::Null));
        let seen = Seen {
            method,
            path,
            headers,
            body,
            connection,
        };
        let answer = {
            let mut state = state.lock().unwrap();
            let line = seen.line();
            state.seen.push(seen);
            match state.script.front() {
                Some((expected, _)) if *expected == line => {
                    state.script.pop_front().map(|(_, a)| a)
                }
                next => {
                    let expected = next.map_or("nothing", |(e, _)| e.as_str()).to_owned();
                    state
                        .off_script
                        .push(format!("{line} (the script expected {expected})"));
                    None
                }
            }
        };
        let (status, extra, text) = match answer {
            // A 204 has no body, as HTTP requires.
            Some(Answer::Json(204, _)) => (204, vec![], String::new()),
            Some(Answer::Json(status, body)) => (status, vec![], body.to_string()),
            Some(Answer::Raw(status, extra, text)) => (status, extra, text),
            Some(Answer::Hangup) => return,
            None => (
                599,
                vec![],
                r#"{"detail": "off the stand-in's script"}"#.to_owned(),
            ),
        };
        let mut head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            text.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if writer
            .write_all(head.as_bytes())
            .and_then(|_| writer.write_all(text.as_bytes()))
            .is_err()
        {
            return;
        }
    }
}

/// A loopback port with nothing listening.
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
