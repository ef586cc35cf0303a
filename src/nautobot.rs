//! The Nautobot REST client: one kept-alive agent, token auth, a pinned API
//! version, and in-process retries of what a retry can fix. Status codes are
//! returned to the caller as data; only transport trouble and the statuses
//! that mean "try again" (429, 502, 503, 504) are handled here.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::Agent;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::error::ConfigError;

/// How a failed request should be treated by the caller of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Retrying later may succeed (exit 75).
    Transient,
    /// Configuration or authentication: wrong token, URL or certificate (exit 7).
    Setup,
    /// Nautobot refused the change; the same request will be refused again (exit 8).
    Refused,
}

/// A failed Nautobot call. The message carries method, path, status and
/// Nautobot's answer, never request headers (so never the token).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NautobotError {
    pub failure: Failure,
    pub message: String,
}

impl NautobotError {
    pub fn new(failure: Failure, message: impl Into<String>) -> Self {
        Self {
            failure,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        })
    }
}

/// Nautobot's answer: the status and the body (JSON, or the raw text when
/// it is not JSON, e.g. a proxy's error page).
#[derive(Debug, Clone)]
pub struct Reply {
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The error for an answer the caller cannot use, classified by status.
    pub fn unexpected(&self) -> NautobotError {
        let failure = match self.status {
            401 | 403 => Failure::Setup,
            500.. => Failure::Transient,
            _ => Failure::Refused,
        };
        NautobotError::new(failure, self.describe())
    }

    /// `METHOD path → status: body`, with the body shortened.
    pub fn describe(&self) -> String {
        let body = match &self.body {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        format!(
            "{} {} → {}: {}",
            self.method,
            self.path,
            self.status,
            shorten(&body, 600)
        )
    }

    /// The error strings Nautobot gave for one field of a 400 answer.
    pub fn field_errors(&self, field: &str) -> Vec<&str> {
        match self.body.get(field) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) => vec![s.as_str()],
            _ => Vec::new(),
        }
    }
}

fn shorten(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max).collect();
    format!("{head}…")
}

/// Timeouts and the retry budget.
#[derive(Debug, Clone)]
pub struct Policy {
    pub connect_timeout: Duration,
    /// Upper bound for one request, connect to last body byte.
    pub request_timeout: Duration,
    /// Attempts per request, the first one included.
    pub attempts: u32,
    /// Wall time after which no request is retried; it bounds the whole run.
    pub budget: Duration,
    /// First backoff; it doubles per attempt, with jitter.
    pub backoff: Duration,
}

pub struct Client {
    agent: Agent,
    base: String,
    authorization: String,
    token: String,
    accept: String,
    policy: Policy,
    deadline: Cell<Instant>,
    requests: Cell<u32>,
}

const JSON: &str = "application/json";

/// Largest response body read; a page of 1000 prefixes is about 1.5 MiB.
const MAX_RESPONSE_BYTES: u64 = 16 << 20;

impl Client {
    pub fn new(
        url: &str,
        token: &str,
        api_version: &str,
        ca_cert: Option<&std::path::Path>,
        policy: Policy,
    ) -> Result<Self, ConfigError> {
        let base = url.trim_end_matches('/').to_owned();
        let valid = (base.starts_with("http://") || base.starts_with("https://"))
            && base
                .split_once("://")
                .is_some_and(|(_, rest)| !rest.is_empty())
            && !base.contains(['?', '#', ' ']);
        if !valid {
            return Err(ConfigError(format!(
                "Nautobot URL {base:?} is not an http:// or https:// URL"
            )));
        }
        let authorization = format!("Token {token}");
        if token.is_empty()
            || !authorization
                .bytes()
                .all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(ConfigError(
                "the Nautobot token is empty or not printable ASCII".into(),
            ));
        }
        let mut tls = TlsConfig::builder();
        // The CA bundle matters only for https; SSL_CERT_FILE may well be set
        // in an environment where it does not exist.
        if let Some(path) = ca_cert.filter(|_| base.starts_with("https://")) {
            tls = tls.root_certs(load_ca(path)?);
        }
        // ureq logs the bytes on the wire at trace level, unredacted: the
        // Authorization header, and whatever a server echoes back. Debug is
        // as far as logging goes once a client holds the token.
        if log::max_level() > log::LevelFilter::Debug {
            log::set_max_level(log::LevelFilter::Debug);
        }
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            // A redirect usually means http:// instead of https:// or a
            // missing slash; following it may drop the Authorization header.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(policy.connect_timeout))
            .user_agent(concat!("oslo-nautobot/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Self {
            agent,
            base,
            authorization,
            token: token.to_owned(),
            accept: format!("application/json; version={api_version}"),
            deadline: Cell::new(Instant::now() + policy.budget),
            policy,
            requests: Cell::new(0),
        })
    }

    /// HTTP requests sent so far, retries included.
    pub fn requests(&self) -> u32 {
        self.requests.get()
    }

    /// Starts a new event's retry budget (one client may serve many events,
    /// over one kept-alive connection).
    pub fn begin_event(&self) {
        self.deadline.set(Instant::now() + self.policy.budget);
    }

    /// Sends one request, retrying transient trouble within the budget.
    /// Every request this tool makes is safe to repeat: creates carry a
    /// caller-chosen id or a unique name, so a replayed create that had in fact
    /// succeeded answers "already exists" and is handled as such.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, NautobotError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = self
                .deadline
                .get()
                .saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let reason = format!("{method} {path}: retry budget spent");
                return Err(gave_up(&reason, attempt - 1, started));
            }
            self.requests.set(self.requests.get() + 1);
            let (reason, retry_after) = match self.send(method, path, body, remaining) {
                Ok(reply) if matches!(reply.reply.status, 429 | 502 | 503 | 504) => {
                    let after = reply.retry_after;
                    (reply.reply.describe(), after)
                }
                Ok(reply) => {
                    log::debug!("{method} {path} → {}", reply.reply.status);
                    return Ok(reply.reply);
                }
                Err(Trouble::Transient(reason)) => (format!("{method} {path}: {reason}"), None),
                Err(Trouble::Config(reason)) => {
                    return Err(NautobotError::new(
                        Failure::Setup,
                        format!("{method} {path}: {reason}"),
                    ));
                }
            };
            if attempt >= self.policy.attempts {
                return Err(gave_up(&reason, attempt, started));
            }
            let wait = retry_after.unwrap_or_else(|| backoff(self.policy.backoff, attempt));
            if Instant::now() + wait >= self.deadline.get() {
                return Err(gave_up(&reason, attempt, started));
            }
            log::warn!(
                "{reason}; retrying in {wait:.1?} (attempt {attempt} of {})",
                self.policy.attempts
            );
            std::thread::sleep(wait);
        }
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        remaining: Duration,
    ) -> Result<Answer, Trouble> {
        let url = format!("{}{path}", self.base);
        let timeout = Some(self.policy.request_timeout.min(remaining));
        macro_rules! prepare {
            ($builder:expr) => {
                $builder
                    .header("Authorization", &self.authorization)
                    .header("Accept", &self.accept)
                    .config()
                    .timeout_global(timeout)
                    .build()
            };
        }
        // Compact JSON (ureq's send_json pretty-prints).
        let json = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let sent = match (method, body) {
            (Method::Get, _) => prepare!(self.agent.get(&url)).call(),
            (Method::Delete, None) => prepare!(self.agent.delete(&url)).call(),
            (Method::Delete, Some(_)) => {
                prepare!(self.agent.delete(&url).header("Content-Type", JSON))
                    .force_send_body()
                    .send(&json[..])
            }
            (Method::Post, _) => prepare!(self.agent.post(&url).content_type(JSON)).send(&json[..]),
            (Method::Patch, _) => {
                prepare!(self.agent.patch(&url).content_type(JSON)).send(&json[..])
            }
        };
        let mut response = sent.map_err(classify)?;
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            // A Location that echoes the request must not print the token.
            let location = header(&response, "location")
                .unwrap_or_default()
                .replace(&self.token, "[redacted]");
            return Err(Trouble::Config(format!(
                "Nautobot answered {status} redirecting to {location:?}: check the Nautobot URL (scheme, host, path)"
            )));
        }
        let retry_after = header(&response, "retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(classify)?;
        // A server or proxy that echoes the request back must not make us
        // print the token in an error message or a log line.
        let text = text.replace(&self.token, "[redacted]");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            reply: Reply {
                method,
                path: path.to_owned(),
                status,
                body,
            },
            retry_after,
        })
    }
}

fn gave_up(reason: &str, attempts: u32, started: Instant) -> NautobotError {
    let elapsed = started.elapsed();
    NautobotError::new(
        Failure::Transient,
        format!("{reason} (gave up after {attempts} attempt(s) in {elapsed:.1?})"),
    )
}

struct Answer {
    reply: Reply,
    retry_after: Option<Duration>,
}

enum Trouble {
    Transient(String),
    Config(String),
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Transport errors: a broken connection, a timeout or a failed DNS lookup
/// may pass; a malformed URL or a certificate that does not verify will not.
fn classify(err: ureq::Error) -> Trouble {
    use ureq::Error as E;
    match err {
        E::BadUri(_) | E::Http(_) => Trouble::Config(format!("invalid request URL ({err})")),
        E::Tls(_) | E::Pem(_) | E::Rustls(_) => Trouble::Config(format!("TLS failed ({err})")),
        E::Io(ref io) if io.kind() == std::io::ErrorKind::InvalidData => {
            // rustls reports certificate problems as InvalidData I/O errors.
            Trouble::Config(format!("TLS failed ({err})"))
        }
        other => Trouble::Transient(other.to_string()),
    }
}

/// Exponential backoff with full jitter: a random wait in [base·2ⁿ⁻¹/2, base·2ⁿ⁻¹].
fn backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(1 << (attempt - 1).min(10));
    let random = RandomState::new().hash_one(Instant::now());
    let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
    ceiling.mul_f64(fraction)
}

fn load_ca(path: &std::path::Path) -> Result<RootCerts, ConfigError> {
    let pem = std::fs::read(path)
        .map_err(|e| ConfigError(format!("cannot read CA bundle {}: {e}", path.display())))?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(ConfigError(format!(
            "no certificate in CA bundle {}",
            path.display()
        )));
    }
    Ok(RootCerts::from(certs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backoff_doubles_with_jitter() {
        let base = Duration::from_millis(200);
        for attempt in 1..=4 {
            let ceiling = base * (1 << (attempt - 1));
            let wait = backoff(base, attempt);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn classifies_statuses() {
        let reply = |status| Reply {
            method: Method::Post,
            path: "/api/x/".into(),
            status,
            body: json!({"detail": "no"}),
        };
        assert_eq!(reply(403).unexpected().failure, Failure::Setup);
        assert_eq!(reply(400).unexpected().failure, Failure::Refused);
        assert_eq!(reply(409).unexpected().failure, Failure::Refused);
        assert_eq!(reply(500).unexpected().failure, Failure::Transient);
        assert_eq!(
            reply(400).unexpected().to_string(),
            "POST /api/x/ → 400: {\"detail\":\"no\"}"
        );
    }

    #[test]
    fn rejects_bad_urls_and_tokens() {
        let policy = Policy {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            attempts: 1,
            budget: Duration::from_secs(1),
            backoff: Duration::from_millis(1),
        };
        for url in ["nautobot.example", "ftp://x", "http://", "http://a b"] {
            assert!(
                Client::new(url, "t", "3.0", None, policy.clone()).is_err(),
                "{url}"
            );
        }
        assert!(Client::new("http://x", "", "3.0", None, policy.clone()).is_err());
        assert!(Client::new("http://x", "a\nb", "3.0", None, policy.clone()).is_err());
        assert!(Client::new("https://x/", "t", "3.0", None, policy).is_ok());
    }
}
