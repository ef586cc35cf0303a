//! Planning: a decoded notification becomes the list of Nautobot changes it
//! calls for. Pure: no I/O, so `--dry-run` prints exactly what a real run
//! would attempt, and every input problem surfaces before the first request.

mod network;
mod subnet;

use serde::Serialize;
use serde_json::Value;

use crate::error::ConfigError;
use crate::event::{Fields, InputError, Notification, Project, UnhandledEvent};

/// Settings that shape the plan.
#[derive(Debug, Clone)]
pub struct Settings {
    /// UCVNI group that network UCVNIs belong to; needed only to write one.
    pub ucvni_group: Option<String>,
    /// Namespace that holds the prefixes of `router:external` networks.
    pub global_namespace: String,
}

/// The Nautobot object types this tool writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Namespace,
    Prefix,
    Ucvni,
    Tenant,
}

impl Kind {
    /// The REST list endpoint; detail endpoints append `<id>/`.
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::Namespace => "/api/ipam/namespaces/",
            Kind::Prefix => "/api/ipam/prefixes/",
            Kind::Ucvni => "/api/plugins/undercloud-vni/ucvnis/",
            Kind::Tenant => "/api/tenancy/tenants/",
        }
    }
}

/// Which request to try first when writing an object: the one that succeeds
/// in the common case, so that one request per object is the norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FirstTry {
    /// A create event: POST, falling back to PATCH when the id exists.
    Create,
    /// An update event: PATCH, falling back to POST on 404.
    Update,
}

/// One intended change to Nautobot.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Change {
    /// A namespace with this name exists (created if missing).
    EnsureNamespace { kind: Kind, name: String },
    /// The object with this id exists with these fields. `namespace` and
    /// `tenant` are the related objects it needs, created when missing.
    Write {
        kind: Kind,
        id: String,
        first: FirstTry,
        body: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        tenant: Project,
    },
    /// Nothing to write for this object; `reason` says why.
    Skip {
        kind: Kind,
        id: String,
        reason: String,
    },
    /// The named namespace, every prefix in it and the prefixes with the
    /// listed ids (wherever they live) are gone.
    DeleteNamespace {
        kind: Kind,
        name: String,
        prefixes: Vec<String>,
    },
    /// The object with this id is gone.
    Delete { kind: Kind, id: String },
}

/// Plans the changes for one notification.
pub fn plan(notification: &Notification, settings: &Settings) -> anyhow::Result<Vec<Change>> {
    let payload = &notification.payload;
    let changes = match notification.event_type.as_str() {
        "network.create.end" => network::upsert(payload, settings, FirstTry::Create)?,
        "network.update.end" => network::upsert(payload, settings, FirstTry::Update)?,
        "network.delete.end" => network::delete(payload)?,
        "subnet.create.end" => subnet::upsert(payload, settings, FirstTry::Create)?,
        "subnet.update.end" => subnet::upsert(payload, settings, FirstTry::Update)?,
        "subnet.delete.end" => subnet::delete(payload)?,
        // Shortened: a hostile event type must not become a huge log line.
        other => return Err(UnhandledEvent(other.chars().take(128).collect()).into()),
    };
    Ok(changes)
}

/// The network an event belongs to: the key that keeps one network's events
/// (and its subnets') in order when many are applied at once.
pub fn network_of(notification: &Notification) -> Option<String> {
    let p = &notification.payload;
    [
        &p["network"]["id"],
        &p["network_id"],
        &p["networks"][0]["id"],
        &p["subnet"]["network_id"],
        &p["subnets"][0]["network_id"],
    ]
    .into_iter()
    .find_map(Value::as_str)
    .map(str::to_ascii_lowercase)
}

/// The objects of a payload: `payload.<one>` for a single object, or every
/// element of `payload.<many>` for Neutron's bulk creates. Each comes with its
/// path, for error messages.
fn elements<'a>(
    payload: &'a Value,
    one: &str,
    many: &str,
) -> Result<Vec<(String, &'a Value)>, InputError> {
    let fields = Fields::new("payload", payload)?;
    if let Some(object) = fields.get(one) {
        return Ok(vec![(format!("payload.{one}"), object)]);
    }
    match fields.get(many) {
        Some(Value::Array(items)) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, item)| (format!("payload.{many}[{i}]"), item))
            .collect()),
        Some(other) => Err(InputError::new(format!(
            "payload.{many}: expected an array, found {}",
            crate::event::type_name(other)
        ))),
        None => Err(InputError::new(format!(
            "payload: neither \"{one}\" nor \"{many}\" is present"
        ))),
    }
}

fn active() -> Value {
    serde_json::json!({"name": "Active"})
}

fn require_group(settings: &Settings) -> Result<&str, ConfigError> {
    settings
        .ucvni_group
        .as_deref()
        .filter(|g| !g.trim().is_empty())
        .ok_or_else(|| ConfigError("no UCVNI group: set --ucvni-group or UCVNI_GROUP_NAME".into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn settings() -> Settings {
        Settings {
            ucvni_group: Some("undercloud".into()),
            global_namespace: "Global".into(),
        }
    }

    pub fn event(event_type: &str, payload: Value) -> Notification {
        Notification {
            event_type: event_type.into(),
            message_id: None,
            payload,
        }
    }

    /// `base` with the keys of `extra` added or replaced.
    pub fn merged(mut base: Value, extra: Value) -> Value {
        if let (Value::Object(base), Value::Object(extra)) = (&mut base, extra) {
            base.extend(extra);
        }
        base
    }

    pub fn plan_err(event_type: &str, payload: Value) -> String {
        format!(
            "{:#}",
            plan(&event(event_type, payload), &settings()).expect_err("must fail")
        )
    }

    #[test]
    fn unhandled_event_types_are_named() {
        for t in [
            "network.create.start",
            "port.create.end",
            "subnet.delete.start",
        ] {
            let err = plan(&event(t, json!({})), &settings()).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), crate::error::NO_HANDLER);
            assert!(err.to_string().contains(t));
        }
    }

    #[test]
    fn a_huge_event_type_is_named_shortened() {
        let err = plan(&event(&"x".repeat(1 << 20), json!({})), &settings()).unwrap_err();
        assert!(err.to_string().len() < 200);
    }

    #[test]
    fn payload_must_carry_the_object() {
        assert!(
            plan_err("subnet.create.end", json!({})).contains("neither \"subnet\" nor \"subnets\"")
        );
        assert!(plan_err("subnet.create.end", Value::Null).contains("payload: expected an object"));
        assert!(
            plan_err("network.create.end", json!({"networks": {}}))
                .contains("payload.networks: expected an array")
        );
    }

    #[test]
    fn events_are_keyed_by_their_network() {
        let net = "5B0E4C3E-7f36-4a0c-8a51-0c8f2b7d9a11";
        let key = Some(net.to_ascii_lowercase());
        for payload in [
            json!({"network": {"id": net}}),
            json!({"network_id": net}),
            json!({"networks": [{"id": net}]}),
            json!({"subnet": {"id": "x", "network_id": net}}),
            json!({"subnets": [{"network_id": net}]}),
        ] {
            assert_eq!(network_of(&event("x", payload)), key);
        }
        assert_eq!(network_of(&event("x", json!({}))), None);
    }

    #[test]
    fn an_empty_bulk_does_nothing() {
        let changes = plan(
            &event("subnet.create.end", json!({"subnets": []})),
            &settings(),
        )
        .unwrap();
        assert!(changes.is_empty());
    }
}
