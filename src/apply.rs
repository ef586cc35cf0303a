//! Applying a plan: the only module that talks to Nautobot. Each change is
//! made with the fewest requests in the common case, and every fallback
//! (create ↔ update, missing namespace or tenant, a duplicate delivery racing
//! its twin) ends in the same state a clean run would leave.

use serde::Serialize;
use serde_json::{Value, json};

use crate::event::Project;
use crate::handlers::{Change, FirstTry, Kind};
use crate::nautobot::{Client, Failure, Method, NautobotError, Reply};

/// Behaviour switches for applying.
#[derive(Debug, Clone)]
pub struct Options {
    /// Create a minimal tenant when a project is not in Nautobot yet.
    pub create_tenants: bool,
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Done {
    Created,
    Updated,
    Unchanged,
    Deleted,
    Absent,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub result: Done,
}

/// Applies every change, carrying on past a failed one so that one bad
/// element of a bulk event does not hold back the others. Returns what
/// happened and the errors met, in order.
pub fn apply(
    client: &Client,
    changes: &[Change],
    options: &Options,
) -> (Vec<Outcome>, Vec<anyhow::Error>) {
    let mut run = Run {
        client,
        options,
        outcomes: Vec::new(),
    };
    let mut errors = Vec::new();
    for change in changes {
        if let Err(err) = run.change(change) {
            errors.push(err);
        }
    }
    (run.outcomes, errors)
}

struct Run<'a> {
    client: &'a Client,
    options: &'a Options,
    outcomes: Vec<Outcome>,
}

/// A related object Nautobot said it could not find.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Missing {
    Namespace,
    Tenant,
    UcvniGroup,
    Status,
}

impl Run<'_> {
    fn record(&mut self, kind: Kind, id: Option<&str>, name: Option<&str>, result: Done) {
        self.outcomes.push(Outcome {
            kind,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            result,
        });
    }

    fn change(&mut self, change: &Change) -> anyhow::Result<()> {
        match change {
            Change::EnsureNamespace { name, .. } => {
                let done = self.ensure_namespace(name)?;
                self.record(Kind::Namespace, None, Some(name), done);
            }
            Change::Write {
                kind,
                id,
                first,
                body,
                namespace,
                tenant,
            } => {
                let done = self.write(*kind, id, *first, body, namespace.as_deref(), tenant)?;
                self.record(*kind, Some(id), None, done);
            }
            Change::Skip { kind, id, reason } => {
                log::warn!("{kind:?} {id}: not written: {reason}");
                self.record(*kind, Some(id), None, Done::Skipped);
            }
            Change::DeleteNamespace { name, prefixes, .. } => {
                self.delete_namespace(name, prefixes)?
            }
            Change::Delete { kind, id } => {
                let done = self.delete(*kind, id)?;
                self.record(*kind, Some(id), None, done);
            }
        }
        Ok(())
    }

    fn ensure_namespace(&mut self, name: &str) -> anyhow::Result<Done> {
        let reply = self.client.call(
            Method::Post,
            Kind::Namespace.endpoint(),
            Some(&json!({"name": name})),
        )?;
        match reply.status {
            201 => Ok(Done::Created),
            _ if has_error(&reply, "name", "already exists") || duplicate_key(&reply) => {
                Ok(Done::Unchanged)
            }
            _ => Err(reply.unexpected().into()),
        }
    }

    fn ensure_tenant(&mut self, tenant: &Project) -> anyhow::Result<()> {
        let body = json!({"id": tenant.id, "name": tenant.name});
        let reply = self
            .client
            .call(Method::Post, Kind::Tenant.endpoint(), Some(&body))?;
        let done = match reply.status {
            201 => Done::Created,
            _ if has_error(&reply, "id", "already exists") || duplicate_key(&reply) => {
                Done::Unchanged
            }
            // A twin delivery may have created it between Nautobot's id and
            // name checks; only a tenant with this name and another id is a
            // conflict.
            _ if has_error(&reply, "name", "already exists") => {
                let detail = format!("{}{}/", Kind::Tenant.endpoint(), tenant.id);
                if self.client.call(Method::Get, &detail, None)?.status != 200 {
                    let message = format!(
                        "conflict: a tenant named {} exists in Nautobot with an id other than {} ({})",
                        tenant.name,
                        tenant.id,
                        reply.describe()
                    );
                    return Err(NautobotError::new(Failure::Refused, message).into());
                }
                Done::Unchanged
            }
            _ => return Err(reply.unexpected().into()),
        };
        self.record(Kind::Tenant, Some(&tenant.id), None, done);
        Ok(())
    }

    /// Makes the object with `id` look like `body`: POST or PATCH first as the
    /// event suggests, then the other on "already exists" / 404. A related
    /// namespace or tenant that is missing is created, then the write is
    /// repeated. The loop is bounded so that concurrent deletes cannot keep
    /// it going forever.
    fn write(
        &mut self,
        kind: Kind,
        id: &str,
        first: FirstTry,
        body: &Value,
        namespace: Option<&str>,
        tenant: &Project,
    ) -> anyhow::Result<Done> {
        let detail = format!("{}{id}/", kind.endpoint());
        let mut patch_body = body.clone();
        if let Value::Object(fields) = &mut patch_body {
            fields.remove("id");
        }
        let mut next = first;
        // A unique-together clash (namespace + prefix, group + VNI) seen on a
        // create: it may be our own object, created a moment ago by a twin
        // delivery, so a PATCH decides; only if there is no such object is
        // it a real conflict.
        let mut clash: Option<Reply> = None;
        let mut repaired: Vec<Missing> = Vec::new();
        for _ in 0..6 {
            let reply = match next {
                FirstTry::Create => self
                    .client
                    .call(Method::Post, kind.endpoint(), Some(body))?,
                FirstTry::Update => self
                    .client
                    .call(Method::Patch, &detail, Some(&patch_body))?,
            };
            match (next, reply.status, missing_related(&reply)) {
                (FirstTry::Create, 201, _) => return Ok(Done::Created),
                (FirstTry::Update, 200, _) => return Ok(Done::Updated),
                (FirstTry::Update, 404, _) => match clash.take() {
                    Some(clash) => return Err(self.conflict(kind, id, body, &clash)),
                    None => next = FirstTry::Create,
                },
                // A duplicate delivery, or its twin racing us: the object is
                // there, so bring it up to date.
                (FirstTry::Create, _, _)
                    if has_error(&reply, "id", "already exists") || duplicate_key(&reply) =>
                {
                    next = FirstTry::Update;
                }
                (_, 400, Some(missing)) => {
                    if repaired.contains(&missing) {
                        return Err(reply.unexpected().into());
                    }
                    self.repair(missing, namespace, tenant, &reply)?;
                    repaired.push(missing);
                }
                (FirstTry::Create, 400, _)
                    if has_error(&reply, "__all__", "already exists")
                        && first == FirstTry::Create =>
                {
                    clash = Some(reply);
                    next = FirstTry::Update;
                }
                (_, 400, _) if has_error(&reply, "__all__", "already exists") => {
                    return Err(self.conflict(kind, id, body, &reply));
                }
                _ => return Err(reply.unexpected().into()),
            }
        }
        Err(NautobotError::new(
            Failure::Transient,
            format!("{kind:?} {id} kept changing while it was written; retry the event"),
        )
        .into())
    }

    fn repair(
        &mut self,
        missing: Missing,
        namespace: Option<&str>,
        tenant: &Project,
        reply: &Reply,
    ) -> anyhow::Result<()> {
        match (missing, namespace) {
            (Missing::Namespace, Some(name)) => {
                // The subnet event overtook its network's event.
                let done = self.ensure_namespace(name)?;
                self.record(Kind::Namespace, None, Some(name), done);
                Ok(())
            }
            (Missing::Tenant, _) if self.options.create_tenants => {
                log::info!("tenant {} not in Nautobot yet: creating it", tenant.id);
                self.ensure_tenant(tenant)
            }
            (Missing::Tenant, _) => Err(NautobotError::new(
                Failure::Transient,
                format!(
                    "tenant {} (project {}) is not in Nautobot yet and tenant creation is off; \
                     retry once the project has reached Nautobot",
                    tenant.id, tenant.name
                ),
            )
            .into()),
            (Missing::UcvniGroup, _) => Err(NautobotError::new(
                Failure::Setup,
                format!(
                    "the configured UCVNI group does not exist in Nautobot: {}",
                    reply.describe()
                ),
            )
            .into()),
            _ => Err(reply.unexpected().into()),
        }
    }

    /// A unique-together clash with another object: a data problem for a
    /// person, not for a retry. Names both sides.
    fn conflict(&mut self, kind: Kind, id: &str, body: &Value, reply: &Reply) -> anyhow::Error {
        let message = match kind {
            Kind::Ucvni => {
                let group = body["ucvni_group"]["name"].as_str().unwrap_or_default();
                let vni = &body["ucvni_id"];
                let holder = self
                    .ucvni_holder(group, vni)
                    .unwrap_or_else(|| "another network (lookup failed)".to_owned());
                format!(
                    "conflict: segmentation id {vni} in UCVNI group {group:?} is already held by \
                     network {holder}; network {id} was not written ({})",
                    reply.describe()
                )
            }
            _ => format!(
                "conflict: prefix {} already exists in namespace {} under another id; \
                 subnet {id} was not written ({})",
                body["prefix"].as_str().unwrap_or_default(),
                body["namespace"]["name"].as_str().unwrap_or_default(),
                reply.describe()
            ),
        };
        NautobotError::new(Failure::Refused, message).into()
    }

    fn ucvni_holder(&self, group: &str, vni: &Value) -> Option<String> {
        let path = format!(
            "{}?ucvni_group={}&ucvni_id={vni}",
            Kind::Ucvni.endpoint(),
            encode(group)
        );
        let reply = self.client.call(Method::Get, &path, None).ok()?;
        reply.body["results"][0]["id"].as_str().map(str::to_owned)
    }

    /// Removes every prefix of the network's namespace, the prefixes of the
    /// subnets the event lists (an external network's live in the global
    /// namespace), then the namespace itself.
    fn delete_namespace(&mut self, name: &str, listed: &[String]) -> anyhow::Result<()> {
        let lookup = format!("{}?name={}", Kind::Namespace.endpoint(), encode(name));
        let reply = self.client.call(Method::Get, &lookup, None)?;
        if reply.status != 200 {
            return Err(reply.unexpected().into());
        }
        let namespace_id = reply.body["results"][0]["id"].as_str().map(str::to_owned);
        let mut prefixes = match &namespace_id {
            Some(ns) => self.prefixes_in(ns)?,
            None => Vec::new(),
        };
        for id in listed {
            if !prefixes.contains(id) {
                prefixes.push(id.clone());
            }
        }
        if !prefixes.is_empty() {
            // One bulk request; Nautobot ignores ids that are already gone.
            let ids: Vec<Value> = prefixes.iter().map(|id| json!({"id": id})).collect();
            let reply = self.client.call(
                Method::Delete,
                Kind::Prefix.endpoint(),
                Some(&Value::Array(ids)),
            )?;
            if reply.status != 204 {
                return Err(reply.unexpected().into());
            }
            for id in &prefixes {
                self.record(Kind::Prefix, Some(id), None, Done::Deleted);
            }
        }
        let Some(namespace_id) = namespace_id else {
            self.record(Kind::Namespace, None, Some(name), Done::Absent);
            return Ok(());
        };
        let reply = self.client.call(
            Method::Delete,
            &format!("{}{namespace_id}/", Kind::Namespace.endpoint()),
            None,
        )?;
        let done = match reply.status {
            204 => Done::Deleted,
            404 => Done::Absent,
            // A prefix arrived between listing and deleting (a subnet event
            // racing the network's delete): the next attempt removes it.
            409 => {
                return Err(NautobotError::new(
                    Failure::Transient,
                    format!("{}; retry the event", reply.describe()),
                )
                .into());
            }
            _ => return Err(reply.unexpected().into()),
        };
        self.record(Kind::Namespace, None, Some(name), done);
        Ok(())
    }

    fn prefixes_in(&self, namespace_id: &str) -> anyhow::Result<Vec<String>> {
        const PAGE: usize = 1000;
        let mut ids = Vec::new();
        loop {
            let path = format!(
                "{}?namespace={namespace_id}&limit={PAGE}&offset={}",
                Kind::Prefix.endpoint(),
                ids.len()
            );
            let reply = self.client.call(Method::Get, &path, None)?;
            let results = match (reply.status, reply.body["results"].as_array()) {
                (200, Some(results)) => results,
                // The namespace went away after it was looked up: a twin
                // delivery of this delete removed it, its prefixes first.
                (400, _) if has_error(&reply, "namespace", "not one of the available choices") => {
                    return Ok(ids);
                }
                _ => return Err(reply.unexpected().into()),
            };
            ids.extend(
                results
                    .iter()
                    .filter_map(|p| p["id"].as_str())
                    .map(str::to_owned),
            );
            if results.len() < PAGE || reply.body["next"].is_null() {
                return Ok(ids);
            }
        }
    }

    fn delete(&mut self, kind: Kind, id: &str) -> anyhow::Result<Done> {
        let reply = self
            .client
            .call(Method::Delete, &format!("{}{id}/", kind.endpoint()), None)?;
        match reply.status {
            204 => Ok(Done::Deleted),
            404 => Ok(Done::Absent),
            _ => Err(reply.unexpected().into()),
        }
    }
}

/// Whether a 400 answer says `field` has an error containing `text`.
fn has_error(reply: &Reply, field: &str, text: &str) -> bool {
    reply.status == 400 && reply.field_errors(field).iter().any(|e| e.contains(text))
}

/// A 500 from a unique constraint: the row was inserted by a concurrent
/// request between Nautobot's validation and its INSERT. The object exists.
fn duplicate_key(reply: &Reply) -> bool {
    reply.status == 500
        && reply.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("duplicate key value violates unique constraint"))
}

fn missing_related(reply: &Reply) -> Option<Missing> {
    [
        ("namespace", Missing::Namespace),
        ("tenant", Missing::Tenant),
        ("ucvni_group", Missing::UcvniGroup),
        ("status", Missing::Status),
    ]
    .into_iter()
    .find(|(field, _)| has_error(reply, field, "Related object not found"))
    .map(|(_, missing)| missing)
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            method: Method::Post,
            path: "/api/ipam/prefixes/".into(),
            status,
            body,
        }
    }

    #[test]
    fn recognises_nautobot_answers() {
        let exists = reply(400, json!({"id": ["Prefix with this Id already exists."]}));
        assert!(has_error(&exists, "id", "already exists"));
        let race = reply(
            500,
            json!({"error": "duplicate key value violates unique constraint \"ipam_prefix_pkey\"\nDETAIL: …", "exception": "IntegrityError"}),
        );
        assert!(duplicate_key(&race));
        assert!(!duplicate_key(&reply(500, json!({"error": "boom"}))));
        let missing = reply(
            400,
            json!({"namespace": ["Related object not found using the provided attributes: {'name': 'x'}"]}),
        );
        assert_eq!(missing_related(&missing), Some(Missing::Namespace));
        let tenant = reply(
            400,
            json!({"tenant": ["Related object not found using the provided attributes: {'id': 'x'}"]}),
        );
        assert_eq!(missing_related(&tenant), Some(Missing::Tenant));
        assert_eq!(missing_related(&exists), None);
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("under cloud/α&x"), "under%20cloud%2F%CE%B1%26x");
        assert_eq!(encode("5b0e4c3e-7f36"), "5b0e4c3e-7f36");
    }

    #[test]
    fn outcomes_serialise_compactly() {
        let o = Outcome {
            kind: Kind::Prefix,
            id: Some("x".into()),
            name: None,
            result: Done::Created,
        };
        assert_eq!(
            serde_json::to_string(&o).unwrap(),
            r#"{"kind":"prefix","id":"x","result":"created"}"#
        );
    }
}
