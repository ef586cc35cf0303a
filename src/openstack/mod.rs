//! The OpenStack client: the only code that talks to OpenStack. Blocking,
//! over the same transport as the Nautobot client: Keystone v3 (password or
//! application credential), the `network` endpoint from the token's catalog
//! by interface and region, one token per run (renewed once on a 401), and
//! the few Neutron and Keystone reads this tool needs, paged and narrowed with
//! `fields=`. Nothing secret is logged or put in an error.

pub mod config;

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backoff;
use crate::error::{Error, clip};
use crate::http::{Method, Request, Response, Transport, Trouble};
pub use config::{Auth, Cloud, Named};

/// Rows asked for per page; Neutron may cap it lower.
const PAGE: usize = 1000;
/// Ids per `?id=` filter: keeps a request line near 2 KiB.
const IDS_PER_GET: usize = 40;

/// The fields of a network this tool reads (narrowed with `fields=`).
pub const NETWORK_FIELDS: [&str; 8] = [
    "id",
    "name",
    "project_id",
    "tenant_id",
    "provider:network_type",
    "provider:segmentation_id",
    "router:external",
    "subnets",
];
/// The fields of a subnet this tool reads. `router:external` comes with
/// Neutron's subnet-external-network extension (ML2 has it); without it the
/// caller asks the network.
pub const SUBNET_FIELDS: [&str; 8] = [
    "id",
    "network_id",
    "project_id",
    "tenant_id",
    "ip_version",
    "cidr",
    "name",
    "router:external",
];

/// Timeouts and retries of OpenStack requests.
#[derive(Debug, Clone)]
pub struct Policy {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Attempts per request, the first one included.
    pub attempts: u32,
    pub backoff: Duration,
}

/// A token and the endpoints it came with.
struct Token {
    value: String,
    network: String,
    identity: String,
}

pub struct OpenStack {
    cloud: Cloud,
    transport: Transport,
    policy: Policy,
    token: RefCell<Option<Token>>,
    requests: Cell<u32>,
}

impl OpenStack {
    pub fn new(cloud: Cloud, policy: Policy) -> Result<Self, Error> {
        let transport = Transport::new(
            policy.connect_timeout,
            policy.request_timeout,
            cloud.ca_cert.as_deref(),
            cloud.auth_url.starts_with("https://"),
        )?;
        Ok(Self {
            cloud,
            transport,
            policy,
            token: RefCell::new(None),
            requests: Cell::new(0),
        })
    }

    /// Requests sent to Keystone and Neutron so far, retries included.
    pub fn requests(&self) -> u32 {
        self.requests.get()
    }

    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// One network as Neutron holds it now, None when it is gone.
    pub fn network(&self, id: &str) -> Result<Option<Value>, Error> {
        let answer = self.neutron(&format!("/v2.0/networks/{id}?{}", fields(&NETWORK_FIELDS)))?;
        Ok(answer.map(|mut a| a["network"].take()))
    }

    /// One subnet as Neutron holds it now, None when it is gone.
    pub fn subnet(&self, id: &str) -> Result<Option<Value>, Error> {
        let answer = self.neutron(&format!("/v2.0/subnets/{id}?{}", fields(&SUBNET_FIELDS)))?;
        Ok(answer.map(|mut a| a["subnet"].take()))
    }

    /// Every network (an admin sees every project's), or those with these ids.
    pub fn networks(&self, ids: Option<&[String]>) -> Result<Vec<Value>, Error> {
        self.list("networks", &NETWORK_FIELDS, ids)
    }

    /// Every subnet, or those with these ids.
    pub fn subnets(&self, ids: Option<&[String]>) -> Result<Vec<Value>, Error> {
        self.list("subnets", &SUBNET_FIELDS, ids)
    }

    /// A Keystone project, None when it is gone.
    pub fn project(&self, id: &str) -> Result<Option<Value>, Error> {
        let answer = self.keystone(&format!("/projects/{id}"))?;
        Ok(answer.map(|mut a| a["project"].take()))
    }

    /// Every Keystone project (not domains).
    ///
    /// Keystone does not page; with `list_limit` set it cuts the list and
    /// says so: that is an error here, since a partial list must not be
    /// taken for the whole.
    pub fn projects(&self) -> Result<Vec<Value>, Error> {
        let answer = self
            .keystone("/projects?is_domain=false")?
            .unwrap_or_default();
        if answer["truncated"] == true {
            return Err(Error::setup(
                "Keystone cut the project list short (its list_limit): raise it for this user",
            ));
        }
        Ok(answer["projects"].as_array().cloned().unwrap_or_default())
    }

    /// Every Keystone domain.
    pub fn domains(&self) -> Result<Vec<Value>, Error> {
        let answer = self.keystone("/domains")?.unwrap_or_default();
        Ok(answer["domains"].as_array().cloned().unwrap_or_default())
    }

    /// A Keystone domain, None when it is gone.
    pub fn domain(&self, id: &str) -> Result<Option<Value>, Error> {
        let answer = self.keystone(&format!("/domains/{id}"))?;
        Ok(answer.map(|mut a| a["domain"].take()))
    }

    /// A collection page by page: Neutron answers `<collection>_links` with a
    /// `next` link while there is more; its marker is followed on our own
    /// endpoint (behind a proxy Neutron may not know the address we use).
    fn list(
        &self,
        collection: &str,
        wanted: &[&str],
        ids: Option<&[String]>,
    ) -> Result<Vec<Value>, Error> {
        let filters: Vec<String> = match ids {
            None => vec![String::new()],
            Some([]) => return Ok(Vec::new()),
            Some(ids) => ids
                .chunks(IDS_PER_GET)
                .map(|chunk| {
                    chunk
                        .iter()
                        .map(|id| format!("&id={id}"))
                        .collect::<String>()
                })
                .collect(),
        };
        let mut rows = Vec::new();
        for filter in filters {
            let mut marker: Option<String> = None;
            loop {
                let mut path =
                    format!("/v2.0/{collection}?limit={PAGE}&{}{filter}", fields(wanted));
                if let Some(marker) = &marker {
                    path.push_str(&format!("&marker={marker}"));
                }
                let answer = self.neutron(&path)?.ok_or_else(|| {
                    Error::transient(format!("GET {path}: Neutron answered 404 for a listing"))
                })?;
                let page = answer[collection].as_array().cloned().unwrap_or_default();
                let next = answer[format!("{collection}_links")]
                    .as_array()
                    .and_then(|links| links.iter().find(|l| l["rel"] == "next"))
                    .is_some();
                let last = page
                    .last()
                    .and_then(|r| r["id"].as_str())
                    .map(str::to_owned);
                rows.extend(page);
                match (next, last) {
                    (true, Some(last)) if marker.as_deref() != Some(last.as_str()) => {
                        marker = Some(last)
                    }
                    _ => break,
                }
            }
        }
        Ok(rows)
    }

    fn neutron(&self, path: &str) -> Result<Option<Value>, Error> {
        self.get(Service::Network, path)
    }

    fn keystone(&self, path: &str) -> Result<Option<Value>, Error> {
        self.get(Service::Identity, path)
    }

    /// A GET with the run's token; 404 is None; a 401 renews the token once
    /// (it expired, or was revoked) and tries again.
    fn get(&self, service: Service, path: &str) -> Result<Option<Value>, Error> {
        for renewed in [false, true] {
            let (base, token) = self.endpoint(service, renewed)?;
            let url = format!("{base}{path}");
            let response = self.send(
                Method::Get,
                &url,
                &[("X-Auth-Token", &token), ("Accept", "application/json")],
                None,
                &[&token],
            )?;
            match response.status {
                200 => return Ok(Some(parse(&response.text))),
                404 => return Ok(None),
                401 if !renewed => {
                    log::info!("{service:?}: token refused (401); authenticating again");
                    continue;
                }
                status => {
                    let message = format!("GET {url} → {status}: {}", clip(&response.text, 300));
                    return Err(match status {
                        401 | 403 => Error::setup(format!(
                            "{message} (cloud {}: do its credentials have the admin role?)",
                            self.cloud.name
                        )),
                        _ => classify_status(status, message),
                    });
                }
            }
        }
        Err(Error::setup(format!(
            "OpenStack refused a fresh token of cloud {} twice",
            self.cloud.name
        )))
    }

    /// The base URL of a service and a token, authenticating when there is
    /// none yet (or `renew`).
    fn endpoint(&self, service: Service, renew: bool) -> Result<(String, String), Error> {
        if renew || self.token.borrow().is_none() {
            let token = self.authenticate()?;
            *self.token.borrow_mut() = Some(token);
        }
        let token = self.token.borrow();
        let token = token
            .as_ref()
            .ok_or_else(|| Error::setup("no OpenStack token"))?;
        let base = match service {
            Service::Network => token.network.clone(),
            Service::Identity => token.identity.clone(),
        };
        Ok((base, token.value.clone()))
    }

    /// POST /v3/auth/tokens: the token, and the endpoints from its catalog.
    fn authenticate(&self) -> Result<Token, Error> {
        let cloud = &self.cloud;
        let identity = identity_url(&cloud.auth_url);
        let url = format!("{identity}/auth/tokens");
        let body = auth_body(&cloud.auth).to_string();
        let secrets = cloud.secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let response = self.send(
            Method::Post,
            &url,
            &[("Accept", "application/json")],
            Some(body.as_bytes()),
            &secrets,
        )?;
        match response.status {
            201 | 200 => {}
            401 | 403 => {
                return Err(Error::setup(format!(
                    "OpenStack authentication failed for cloud {} at {}: Keystone answered {} \
                     (check the user, project, domains and password or application credential)",
                    cloud.name, cloud.auth_url, response.status
                )));
            }
            status => {
                let message = format!("POST {url} → {status}: {}", clip(&response.text, 300));
                return Err(classify_status(status, message));
            }
        }
        let value = response
            .header("x-subject-token")
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::transient(format!("POST {url}: no X-Subject-Token in the answer"))
            })?;
        let answer = parse(&response.text);
        let catalog = answer["token"]["catalog"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let network = pick(
            &catalog,
            "network",
            &cloud.interface,
            cloud.region.as_deref(),
        )
        .ok_or_else(|| {
            Error::setup(format!(
                "cloud {}: the token's catalog has no network endpoint for interface {}{}",
                cloud.name,
                cloud.interface,
                cloud
                    .region
                    .as_deref()
                    .map(|r| format!(" in region {r}"))
                    .unwrap_or_default()
            ))
        })?;
        // Keystone itself: the catalog's identity endpoint, else the auth URL.
        let identity = pick(
            &catalog,
            "identity",
            &cloud.interface,
            cloud.region.as_deref(),
        )
        .map(|url| identity_url(&url))
        .unwrap_or(identity);
        let network = network
            .trim_end_matches('/')
            .trim_end_matches("/v2.0")
            .to_owned();
        log::debug!("cloud {}: network endpoint {network}", cloud.name);
        Ok(Token {
            value,
            network,
            identity,
        })
    }

    /// One request, retried on transport trouble and 502/503/504 with
    /// backoff, up to the attempts of the policy.
    fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        secrets: &[&str],
    ) -> Result<Response, Error> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests.set(self.requests.get() + 1);
            let request = Request {
                method,
                url,
                headers,
                body,
                keep: &["x-subject-token"],
                secrets,
            };
            let reason = match self.transport.send(&request) {
                Ok(response) if matches!(response.status, 502..=504) => {
                    format!("{method} {url} → {}", response.status)
                }
                Ok(response) => return Ok(response),
                Err(Trouble::Transient(reason)) => format!("{method} {url}: {reason}"),
                Err(Trouble::Setup(reason)) => {
                    return Err(Error::setup(format!("{method} {url}: {reason}")));
                }
            };
            if attempt >= self.policy.attempts {
                return Err(Error::transient(format!(
                    "{reason} (OpenStack: gave up after {attempt} attempt(s) in {:.1?})",
                    started.elapsed()
                )));
            }
            let wait = backoff::delay(self.policy.backoff, attempt, Duration::from_secs(10));
            log::warn!("{reason}; retrying in {wait:.1?}");
            std::thread::sleep(wait);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Service {
    Network,
    Identity,
}

fn fields(wanted: &[&str]) -> String {
    wanted
        .iter()
        .map(|f| format!("fields={f}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// 5xx and 429 may pass; anything else will not.
fn classify_status(status: u16, message: String) -> Error {
    match status {
        429 | 500.. => Error::transient(message),
        _ => Error::refused(message),
    }
}

/// Keystone's v3 root from an auth URL given with or without `/v3`.
fn identity_url(auth_url: &str) -> String {
    let base = auth_url.trim_end_matches('/');
    if base.ends_with("/v3") {
        base.to_owned()
    } else {
        format!("{base}/v3")
    }
}

fn named(n: &Named) -> Value {
    match n {
        Named::Id(id) => json!({ "id": id }),
        Named::Name(name) => json!({ "name": name }),
    }
}

/// The body of POST /v3/auth/tokens.
fn auth_body(auth: &Auth) -> Value {
    match auth {
        Auth::Password {
            user,
            user_domain,
            password,
            project,
            project_domain,
        } => {
            let mut user_json = named(user);
            if let Named::Name(_) = user {
                user_json["domain"] = named(user_domain);
            }
            user_json["password"] = json!(password.0);
            let mut body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": user_json}}}});
            if let Some(project) = project {
                let mut scope = named(project);
                if let Named::Name(_) = project {
                    scope["domain"] = named(project_domain);
                }
                body["auth"]["scope"] = json!({ "project": scope });
            }
            body
        }
        // No scope: the credential fixes its own project (a scope is a 401).
        Auth::ApplicationCredential { id, name, secret } => {
            let mut credential = json!({ "secret": secret.0 });
            match (id, name) {
                (Some(id), _) => credential["id"] = json!(id),
                (None, Some((name, user, domain))) => {
                    credential["name"] = json!(name);
                    let mut user = named(user);
                    user["domain"] = named(domain);
                    credential["user"] = user;
                }
                (None, None) => {}
            }
            json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": credential}}})
        }
    }
}

/// The URL of a service's endpoint for an interface (and region): the
/// catalog's order changes from one token to the next, so it is never taken
/// for a preference.
fn pick(catalog: &[Value], service: &str, interface: &str, region: Option<&str>) -> Option<String> {
    catalog
        .iter()
        .filter(|entry| entry["type"] == service)
        .flat_map(|entry| entry["endpoints"].as_array().cloned().unwrap_or_default())
        .find(|e| {
            e["interface"] == interface
                && region.is_none_or(|r| e["region_id"] == r || e["region"] == r)
        })
        .and_then(|e| e["url"].as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::Secret;

    #[test]
    fn picks_the_endpoint_by_interface_and_region_whatever_the_order() {
        let catalog = vec![json!({"type": "network", "endpoints": [
            {"interface": "internal", "region_id": "RegionOne", "url": "http://internal:9696"},
            {"interface": "public", "region_id": "RegionTwo", "url": "http://public-two:9696"},
            {"interface": "public", "region_id": "RegionOne", "url": "http://public-one:9696/"},
        ]})];
        assert_eq!(
            pick(&catalog, "network", "public", Some("RegionOne")).as_deref(),
            Some("http://public-one:9696/")
        );
        assert_eq!(
            pick(&catalog, "network", "internal", None).as_deref(),
            Some("http://internal:9696")
        );
        assert_eq!(pick(&catalog, "network", "admin", None), None);
        assert_eq!(pick(&catalog, "identity", "public", None), None);
    }

    #[test]
    fn builds_the_auth_bodies() {
        let password = Auth::Password {
            user: Named::Name("mirror".into()),
            user_domain: Named::Name("Default".into()),
            password: Secret("pw".into()),
            project: Some(Named::Name("service".into())),
            project_domain: Named::Id("default".into()),
        };
        assert_eq!(
            auth_body(&password),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
                {"name": "mirror", "domain": {"name": "Default"}, "password": "pw"}}},
                "scope": {"project": {"name": "service", "domain": {"id": "default"}}}}})
        );
        let app = Auth::ApplicationCredential {
            id: Some("abc".into()),
            name: None,
            secret: Secret("xyz".into()),
        };
        let body = auth_body(&app);
        assert!(body["auth"].get("scope").is_none());
        assert_eq!(
            body["auth"]["identity"]["application_credential"],
            json!({"id": "abc", "secret": "xyz"})
        );
    }

    #[test]
    fn identity_urls_end_in_v3_once() {
        assert_eq!(identity_url("http://k:5000"), "http://k:5000/v3");
        assert_eq!(identity_url("http://k:5000/v3/"), "http://k:5000/v3");
    }
}
