//! The HTTP transport Nautobot's and OpenStack's clients share: one
//! kept-alive agent with TLS roots and timeouts, redirects never followed,
//! and transport trouble told apart into what a retry can fix and what it
//! cannot. Status codes are data for the callers.

use std::path::Path;
use std::time::Duration;

use ureq::Agent;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::error::Error;

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

/// What went wrong before an answer arrived.
pub enum Trouble {
    /// A broken connection, a timeout, a failed DNS lookup: may pass.
    Transient(String),
    /// A malformed URL, a certificate that does not verify, a redirect: will
    /// not pass by retrying.
    Setup(String),
}

/// An answer: status, the headers a caller asked for, and the body text.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub text: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Largest response body read; a page of 1000 prefixes is about 1.5 MiB.
const MAX_RESPONSE_BYTES: u64 = 16 << 20;

/// One server's connection: a kept-alive agent with its CA bundle (for
/// https only), the connect timeout and the timeout of one request; no
/// redirects (a redirect usually means http:// instead of https:// or a
/// missing slash, and following it may drop the credentials).
pub struct Transport {
    agent: Agent,
    timeout: Duration,
}

/// One request. `keep` names the response headers the caller wants back;
/// `secrets` are removed from everything that comes back (a server or proxy
/// that echoes the request must not make us print a token).
pub struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<&'a [u8]>,
    pub keep: &'a [&'static str],
    pub secrets: &'a [&'a str],
}

impl Transport {
    pub fn new(
        connect_timeout: Duration,
        timeout: Duration,
        ca_cert: Option<&Path>,
        https: bool,
    ) -> Result<Self, Error> {
        let mut tls = TlsConfig::builder();
        // The CA bundle matters only for https; SSL_CERT_FILE may well be
        // set in an environment where it does not exist.
        if let Some(path) = ca_cert.filter(|_| https) {
            tls = tls.root_certs(load_ca(path)?);
        }
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(connect_timeout))
            .user_agent(concat!("oslo-nautobot/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Self { agent, timeout })
    }

    pub fn send(&self, request: &Request) -> Result<Response, Trouble> {
        let secrets = request.secrets;
        let redact = |text: String| {
            secrets
                .iter()
                .filter(|s| !s.is_empty())
                .fold(text, |text, secret| text.replace(secret, "[redacted]"))
        };
        let (agent, url, body) = (&self.agent, request.url, request.body);
        macro_rules! prepare {
            ($builder:expr) => {{
                let mut builder = $builder;
                for (name, value) in request.headers {
                    builder = builder.header(*name, *value);
                }
                builder.config().timeout_global(Some(self.timeout)).build()
            }};
        }
        let json = "application/json";
        let sent = match (request.method, body) {
            (Method::Get, _) => prepare!(agent.get(url)).call(),
            (Method::Delete, None) => prepare!(agent.delete(url)).call(),
            (Method::Delete, Some(body)) => {
                prepare!(agent.delete(url).header("Content-Type", json))
                    .force_send_body()
                    .send(body)
            }
            (Method::Post, body) => {
                prepare!(agent.post(url).content_type(json)).send(body.unwrap_or_default())
            }
            (Method::Patch, body) => {
                prepare!(agent.patch(url).content_type(json)).send(body.unwrap_or_default())
            }
        };
        let mut response = sent.map_err(|e| classify(e, &redact))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if (300..400).contains(&status) {
            let location = redact(header("location").unwrap_or_default());
            return Err(Trouble::Setup(format!(
                "answered {status} redirecting to {location:?}: check the URL (scheme, host, path)"
            )));
        }
        let kept = request
            .keep
            .iter()
            .filter_map(|name| header(name).map(|v| (*name, v)))
            .collect();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| classify(e, &redact))?;
        Ok(Response {
            status,
            headers: kept,
            text: redact(text),
        })
    }
}

/// Transport errors: a broken connection, a timeout or a failed DNS lookup
/// may pass; a malformed URL or a certificate that does not verify will not.
fn classify(err: ureq::Error, redact: &dyn Fn(String) -> String) -> Trouble {
    use ureq::Error as E;
    let text = redact(err.to_string());
    match err {
        E::BadUri(_) | E::Http(_) => Trouble::Setup(format!("invalid request URL ({text})")),
        E::Tls(_) | E::Pem(_) | E::Rustls(_) => Trouble::Setup(format!("TLS failed ({text})")),
        // rustls reports certificate problems as InvalidData I/O errors.
        E::Io(ref io) if io.kind() == std::io::ErrorKind::InvalidData => {
            Trouble::Setup(format!("TLS failed ({text})"))
        }
        _ => Trouble::Transient(text),
    }
}

/// Reads a PEM bundle of CA certificates.
pub fn load_ca(path: &Path) -> Result<RootCerts, Error> {
    let pem = std::fs::read(path)
        .map_err(|e| Error::setup(format!("cannot read CA bundle {}: {e}", path.display())))?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(Error::setup(format!(
            "no certificate in CA bundle {}",
            path.display()
        )));
    }
    Ok(RootCerts::from(certs))
}

/// Whether a base URL is an http(s) URL we can append paths to.
pub fn valid_base(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty())
        && !url.contains(['?', '#', ' '])
}
