//! The live Nautobot of `tests/run.sh` (`NAUTOBOT_URL`, `NAUTOBOT_TOKEN`),
//! seen through its REST API: for setting up tests and checking the state
//! the binary leaves.

use std::time::Duration;

use serde_json::Value;

pub fn url() -> String {
    std::env::var("NAUTOBOT_URL")
        .expect("NAUTOBOT_URL is not set: run the live tests through tests/run.sh")
}

pub fn token() -> String {
    std::env::var("NAUTOBOT_TOKEN")
        .expect("NAUTOBOT_TOKEN is not set: run the live tests through tests/run.sh")
}

/// A fresh random UUID, so that tests never share objects.
pub fn uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .unwrap()
        .trim()
        .to_owned()
}

const GROUPS: &str = "/api/plugins/undercloud-vni/ucvni-groups/";

pub struct Api {
    agent: ureq::Agent,
    url: String,
    auth: String,
}

impl Api {
    pub fn new() -> Self {
        Self {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
            url: url(),
            auth: format!("Token {}", token()),
        }
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let auth = self.auth.as_str();
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", auth).call(),
            ("DELETE", None) => self.agent.delete(&url).header("Authorization", auth).call(),
            ("DELETE", Some(b)) => self
                .agent
                .delete(&url)
                .header("Authorization", auth)
                .force_send_body()
                .send_json(b),
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", auth)
                .send_json(b),
            ("PATCH", Some(b)) => self
                .agent
                .patch(&url)
                .header("Authorization", auth)
                .send_json(b),
            other => panic!("{other:?}"),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The answer to a GET, or None on 404.
    pub fn get(&self, path: &str) -> Option<Value> {
        match self.call("GET", path, None) {
            (200, body) => Some(body),
            (404, _) => None,
            (status, body) => panic!("GET {path}: {status} {body}"),
        }
    }

    /// The object at a detail path with related objects expanded, or None.
    pub fn expanded(&self, path: &str) -> Option<Value> {
        self.get(&format!("{path}?depth=1"))
    }

    pub fn list(&self, path: &str) -> Vec<Value> {
        let body = self.get(path).unwrap_or_else(|| panic!("GET {path}: 404"));
        body["results"].as_array().unwrap().clone()
    }

    pub fn create(&self, endpoint: &str, body: Value) -> Value {
        let (status, reply) = self.call("POST", endpoint, Some(body));
        assert_eq!(status, 201, "POST {endpoint}: {reply}");
        reply
    }

    pub fn prefix(&self, id: &str) -> Option<Value> {
        self.expanded(&format!("/api/ipam/prefixes/{id}/"))
    }

    pub fn ucvni(&self, id: &str) -> Option<Value> {
        self.expanded(&format!("/api/plugins/undercloud-vni/ucvnis/{id}/"))
    }

    pub fn tenant(&self, id: &str) -> Option<Value> {
        self.expanded(&format!("/api/tenancy/tenants/{id}/"))
    }

    /// The namespace with this name (the network UUID), if any.
    pub fn namespace(&self, name: &str) -> Option<Value> {
        self.list(&format!("/api/ipam/namespaces/?name={name}"))
            .first()
            .cloned()
    }

    /// A UCVNI group of a test's own, named `<prefix>-<random>`.
    pub fn create_group(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{}", &uuid()[..8]);
        self.create(GROUPS, serde_json::json!({ "name": name }));
        name
    }

    /// Removes the named UCVNI group, if it is there.
    pub fn delete_group(&self, name: &str) {
        if let Some(group) = self.list(&format!("{GROUPS}?name={name}")).first() {
            let id = group["id"].as_str().unwrap();
            self.call("DELETE", &format!("{GROUPS}{id}/"), None);
        }
    }

    /// The prefixes in the named namespace, related objects expanded.
    pub fn prefixes_in(&self, namespace: &str) -> Vec<Value> {
        let Some(ns) = self.namespace(namespace) else {
            return Vec::new();
        };
        self.list(&format!(
            "/api/ipam/prefixes/?namespace={}&depth=1",
            ns["id"].as_str().unwrap()
        ))
    }
}
