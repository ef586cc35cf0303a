//! The Nautobot REST client: one kept-alive agent, token auth, a pinned API
//! version, and in-process retries of what a retry can fix. Status codes are
//! returned to the caller as data; only transport trouble and the statuses
//! that mean "try again" (429, 502, 503, 504) are handled here.
//!
//! Each event (or reconcile run) works in a [`Session`]: its retry budget and
//! request count, and the names of the related objects it has looked up.
//! [`codec`] turns model objects into request bodies and answers back.

pub mod codec;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backoff;
use crate::error::{Error, Kind, clip};
pub use crate::http::Method;
use crate::http::{self, Request, Transport, Trouble};

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
    pub fn unexpected(&self) -> Error {
        let kind = match self.status {
            401 | 403 => Kind::Setup,
            500.. => Kind::Transient,
            _ => Kind::Refused,
        };
        Error::new(kind, self.describe())
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
            clip(&body, 600)
        )
    }
}

/// How to reach Nautobot.
#[derive(Debug, Clone)]
pub struct Connection {
    pub url: String,
    pub token: String,
    pub api_version: String,
    /// PEM bundle replacing the built-in roots (used for https only).
    pub ca_cert: Option<std::path::PathBuf>,
    pub policy: Policy,
}

/// Timeouts and the retry budget.
#[derive(Debug, Clone)]
pub struct Policy {
    pub connect_timeout: Duration,
    /// Upper bound for one request, connect to last body byte.
    pub request_timeout: Duration,
    /// Attempts per request, the first one included.
    pub attempts: u32,
    /// Wall time of an event after which a failed request is not retried. It
    /// bounds waiting and retrying, never a first attempt: an event always
    /// gets to try each of its requests once, so every run makes progress.
    pub budget: Duration,
    /// First backoff; it doubles per attempt, with jitter.
    pub backoff: Duration,
}

pub struct Client {
    transport: Transport,
    base: String,
    authorization: String,
    token: String,
    accept: String,
    policy: Policy,
}

/// Rows asked for per page. Nautobot cuts it to its `MAX_PAGE_SIZE`; the
/// listing follows `next` whatever the page size turns out to be.
pub const PAGE: usize = 1000;

impl Client {
    pub fn new(connection: &Connection) -> Result<Self, Error> {
        let base = connection.url.trim_end_matches('/').to_owned();
        if !http::valid_base(&base) {
            return Err(Error::setup(format!(
                "Nautobot URL {base:?} is not an http:// or https:// URL"
            )));
        }
        let token = connection.token.as_str();
        let authorization = format!("Token {token}");
        if token.is_empty()
            || !authorization
                .bytes()
                .all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(Error::setup(
                "the Nautobot token is empty or not printable ASCII",
            ));
        }
        let policy = connection.policy.clone();
        let transport = Transport::new(
            policy.connect_timeout,
            policy.request_timeout,
            connection.ca_cert.as_deref(),
            base.starts_with("https://"),
        )?;
        Ok(Self {
            transport,
            base,
            authorization,
            token: token.to_owned(),
            accept: format!("application/json; version={}", connection.api_version),
            policy,
        })
    }

    /// A new session: a fresh retry budget and request count. One client may
    /// serve many sessions, one after another, over one kept-alive connection.
    pub fn session(&self) -> Session<'_> {
        Session {
            client: self,
            deadline: Instant::now() + self.policy.budget,
            requests: 0,
            names: HashMap::new(),
            lookups: HashMap::new(),
        }
    }

    fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer, Trouble> {
        let url = format!("{}{path}", self.base);
        // Compact JSON (ureq's send_json pretty-prints).
        let json = body.map(|b| b.to_string().into_bytes());
        let response = self.transport.send(&Request {
            method,
            url: &url,
            headers: &[
                ("Authorization", &self.authorization),
                ("Accept", &self.accept),
            ],
            body: json.as_deref(),
            keep: &["retry-after"],
            secrets: &[&self.token],
        })?;
        let retry_after = response
            .header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            reply: Reply {
                method,
                path: path.to_owned(),
                status: response.status,
                body,
            },
            retry_after,
        })
    }
}

/// One event's (or one reconcile run's) dealings with Nautobot.
pub struct Session<'a> {
    client: &'a Client,
    deadline: Instant,
    requests: u32,
    /// Names of related objects (statuses, groups, namespaces, tags) by id,
    /// as far as this session has looked them up: Nautobot answers with ids.
    pub names: HashMap<String, String>,
    /// Ids of statuses, tags and groups by (list endpoint, name); None when
    /// there is none of that name.
    pub lookups: HashMap<(&'static str, String), Option<String>>,
}

impl Session<'_> {
    /// HTTP requests sent so far, retries included.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// Sends one request, retrying transient trouble while the budget lasts.
    /// Every request this tool makes is safe to repeat: creates carry a
    /// caller-chosen id or a unique name, so a replayed create that had in fact
    /// succeeded answers "already exists" and is handled as such.
    pub fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, Error> {
        let policy = &self.client.policy;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests += 1;
            let (reason, retry_after) = match self.client.send(method, path, body) {
                Ok(answer) if matches!(answer.reply.status, 429 | 502 | 503 | 504) => {
                    (answer.reply.describe(), answer.retry_after)
                }
                Ok(answer) => {
                    log::debug!("{method} {path} → {}", answer.reply.status);
                    return Ok(answer.reply);
                }
                Err(Trouble::Transient(reason)) => (format!("{method} {path}: {reason}"), None),
                Err(Trouble::Setup(reason)) => {
                    return Err(Error::setup(format!("{method} {path}: {reason}")));
                }
            };
            let wait = retry_after
                .unwrap_or_else(|| backoff::delay(policy.backoff, attempt, Duration::MAX));
            let spent = Instant::now() + wait >= self.deadline;
            if attempt >= policy.attempts || spent {
                let why = if spent && attempt < policy.attempts {
                    "; the retry budget is spent"
                } else {
                    ""
                };
                return Err(Error::transient(format!(
                    "{reason} (gave up after {attempt} attempt(s) in {:.1?}{why})",
                    started.elapsed()
                )));
            }
            log::warn!(
                "{reason}; retrying in {wait:.1?} (attempt {attempt} of {})",
                policy.attempts
            );
            std::thread::sleep(wait);
        }
    }

    /// Every row of a listing, page after page, following Nautobot's `next`
    /// links (the page size is Nautobot's to choose). `path` carries the
    /// filters; a `limit` is added.
    pub fn list(&mut self, path: &str) -> Result<Vec<Value>, ListError> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{path}{separator}limit={PAGE}"));
        let mut rows = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while let Some(page) = next.take() {
            if !seen.insert(page.clone()) {
                return Err(ListError::Failed(Error::transient(format!(
                    "GET {page}: Nautobot's next link points back to a page already read"
                ))));
            }
            let reply = self.call(Method::Get, &page, None)?;
            let results = match (reply.status, reply.body["results"].as_array()) {
                (200, Some(results)) => results,
                (400, _) => return Err(ListError::Refused(reply)),
                _ => return Err(ListError::Failed(reply.unexpected())),
            };
            rows.extend(results.iter().cloned());
            next = match &reply.body["next"] {
                Value::String(url) => Some(self.client.path_of(url).ok_or_else(|| {
                    Error::transient(format!(
                        "GET {page}: Nautobot's next link {url:?} is not an API URL"
                    ))
                })?),
                _ => None,
            };
        }
        Ok(rows)
    }
}

/// Why a listing stopped.
#[derive(Debug)]
pub enum ListError {
    /// Nautobot refused the filter (400): often "no such related object".
    Refused(Reply),
    Failed(Error),
}

impl From<Error> for ListError {
    fn from(err: Error) -> Self {
        ListError::Failed(err)
    }
}

impl From<ListError> for Error {
    fn from(err: ListError) -> Self {
        match err {
            ListError::Refused(reply) => reply.unexpected(),
            ListError::Failed(err) => err,
        }
    }
}

impl Client {
    /// The path and query of an absolute URL Nautobot gave (a `next` link),
    /// to be sent to our own base URL: behind a proxy Nautobot may not know
    /// the scheme and host its clients use.
    fn path_of(&self, url: &str) -> Option<String> {
        let start = url.find("/api/")?;
        Some(url[start..].to_owned())
    }
}

struct Answer {
    reply: Reply,
    retry_after: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_statuses() {
        let reply = |status| Reply {
            method: Method::Post,
            path: "/api/x/".into(),
            status,
            body: json!({"detail": "no"}),
        };
        assert_eq!(reply(401).unexpected().kind, Kind::Setup);
        assert_eq!(reply(403).unexpected().kind, Kind::Setup);
        assert_eq!(reply(400).unexpected().kind, Kind::Refused);
        assert_eq!(reply(409).unexpected().kind, Kind::Refused);
        assert_eq!(reply(500).unexpected().kind, Kind::Transient);
        assert_eq!(
            reply(400).unexpected().to_string(),
            "POST /api/x/ → 400: {\"detail\":\"no\"}"
        );
    }

    fn connection(url: &str, token: &str) -> Connection {
        Connection {
            url: url.into(),
            token: token.into(),
            api_version: "3.0".into(),
            ca_cert: None,
            policy: Policy {
                connect_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(1),
                attempts: 1,
                budget: Duration::from_secs(1),
                backoff: Duration::from_millis(1),
            },
        }
    }

    #[test]
    fn rejects_bad_urls_and_tokens() {
        for url in ["nautobot.example", "ftp://x", "http://", "http://a b"] {
            assert!(Client::new(&connection(url, "t")).is_err(), "{url}");
        }
        assert!(Client::new(&connection("http://x", "")).is_err());
        assert!(Client::new(&connection("http://x", "a\nb")).is_err());
        assert!(Client::new(&connection("https://x/", "t")).is_ok());
    }

    #[test]
    fn making_a_client_leaves_logging_alone() {
        // Before: Client::new lowered the global log level as a side effect;
        // the cap on logging is set once, at start-up.
        log::set_max_level(log::LevelFilter::Trace);
        Client::new(&connection("http://x", "t")).unwrap();
        assert_eq!(log::max_level(), log::LevelFilter::Trace);
    }

    #[test]
    fn next_links_are_followed_on_our_own_base() {
        let client = Client::new(&connection("https://proxy.example/nautobot", "t")).unwrap();
        assert_eq!(
            client
                .path_of("http://10.0.0.5:8080/api/ipam/prefixes/?limit=50&offset=50")
                .unwrap(),
            "/api/ipam/prefixes/?limit=50&offset=50"
        );
        assert_eq!(client.path_of("http://x/elsewhere/"), None);
    }
}
