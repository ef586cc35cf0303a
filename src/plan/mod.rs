//! Planning: a decoded notification, or an object Neutron lists, becomes the
//! Nautobot objects it calls for ([`crate::model`]). Pure: no I/O, so
//! `--dry-run` prints exactly what a real run would attempt, and every input
//! problem surfaces before the first request. Events and reconcile share the
//! functions that turn one Neutron network or subnet into objects.

mod network;
mod project;
mod subnet;

use serde_json::Value;

use crate::error::{Error, Kind as ErrorKind, clip};
use crate::event::{Fields, Notification, type_name};
use crate::model::{FirstTry, Plan, Ref};

pub use network::network_steps;
pub use project::{tenant_name, tenant_step};
pub use subnet::subnet_step;

/// Settings that shape the plan.
#[derive(Debug, Clone)]
pub struct Settings {
    /// UCVNI group that network UCVNIs belong to; needed only to write one.
    pub ucvni_group: Option<String>,
    /// Namespace that holds the prefixes of `router:external` networks.
    pub global_namespace: String,
    /// Tag marking the objects this tool owns, if any.
    pub tag: Option<String>,
}

impl Settings {
    /// The tags every namespace and prefix this tool writes carries.
    pub fn tags(&self) -> Vec<Ref> {
        self.tag.iter().map(Ref::named).collect()
    }

    /// The configured UCVNI group, or a warning that there is none.
    fn group(&self, warnings: &mut Vec<String>) -> Option<Ref> {
        let group = self
            .ucvni_group
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty());
        if group.is_none() && !warnings.iter().any(|w| w == NO_GROUP) {
            warnings.push(NO_GROUP.to_owned());
        }
        group.map(Ref::named)
    }
}

/// Why a UCVNI cannot be written.
pub const NO_GROUP: &str = "no UCVNI group: set --ucvni-group or UCVNI_GROUP_NAME";

/// The event types this tool handles.
pub const HANDLED: [&str; 9] = [
    "network.create.end",
    "network.update.end",
    "network.delete.end",
    "subnet.create.end",
    "subnet.update.end",
    "subnet.delete.end",
    "identity.project.created",
    "identity.project.updated",
    "identity.project.deleted",
];

/// Plans the changes for one notification.
pub fn plan(notification: &Notification, settings: &Settings) -> anyhow::Result<Plan> {
    let payload = &notification.payload;
    let mut warnings = Vec::new();
    let (steps, first) = match notification.event_type.as_str() {
        "network.create.end" => (
            network::upsert(payload, settings, &mut warnings)?,
            FirstTry::Create,
        ),
        "network.update.end" => (
            network::upsert(payload, settings, &mut warnings)?,
            FirstTry::Update,
        ),
        "network.delete.end" => (network::delete(payload)?, FirstTry::Update),
        "subnet.create.end" => (subnet::upsert(payload, settings)?, FirstTry::Create),
        "subnet.update.end" => (subnet::upsert(payload, settings)?, FirstTry::Update),
        "subnet.delete.end" => (subnet::delete(payload)?, FirstTry::Update),
        "identity.project.created" => (project::upsert(payload, settings)?, FirstTry::Create),
        "identity.project.updated" => (project::upsert(payload, settings)?, FirstTry::Update),
        "identity.project.deleted" => (project::delete(payload)?, FirstTry::Update),
        // Shortened: a hostile event type must not become a huge log line.
        other => {
            let message = format!("no handler for event type {:?}", clip(other, 128));
            return Err(Error::new(ErrorKind::NoHandler, message).into());
        }
    };
    Ok(Plan {
        steps,
        first,
        warnings,
    })
}

/// The kind of Neutron object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Network,
    Subnet,
    /// A Keystone project: its tenant.
    Project,
}

/// What a create or update event names: with OpenStack credentials the event
/// is only a trigger, and these objects are read from Neutron as they are
/// now. Deletes need no lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub family: Family,
    pub ids: Vec<String>,
    /// For each network, the subnets the event listed: removed with it if
    /// Neutron no longer has the network (it deleted them without events).
    pub listed_subnets: Vec<Vec<String>>,
}

/// The lookup a notification calls for, if any. The event was planned (and
/// so checked) before; only its ids are used.
pub fn lookup(notification: &Notification) -> Result<Option<Lookup>, Error> {
    let (family, one, many) = match notification.event_type.as_str() {
        "network.create.end" | "network.update.end" => (Family::Network, "network", "networks"),
        "subnet.create.end" | "subnet.update.end" => (Family::Subnet, "subnet", "subnets"),
        "identity.project.created" | "identity.project.updated" => {
            return Ok(
                project::project_id(&notification.payload)?.map(|id| Lookup {
                    family: Family::Project,
                    ids: vec![id],
                    listed_subnets: vec![Vec::new()],
                }),
            );
        }
        _ => return Ok(None),
    };
    let mut lookup = Lookup {
        family,
        ids: Vec::new(),
        listed_subnets: Vec::new(),
    };
    for (path, value) in elements(&notification.payload, one, many)? {
        let fields = Fields::new(&path, value)?;
        lookup.ids.push(fields.uuid("id")?);
        lookup.listed_subnets.push(match family {
            Family::Network => fields.uuid_list("subnets")?,
            Family::Subnet | Family::Project => Vec::new(),
        });
    }
    Ok(Some(lookup))
}

/// The plan for what Neutron holds now of the objects an event named:
/// `found` are Neutron's objects (as its API shows them to an admin); an id
/// not among them is gone, and its delete is planned instead.
pub fn from_current(
    lookup: &Lookup,
    found: &[Value],
    first: FirstTry,
    settings: &Settings,
) -> Result<Plan, Error> {
    let mut warnings = Vec::new();
    let mut steps = Vec::new();
    for (id, listed) in lookup.ids.iter().zip(&lookup.listed_subnets) {
        let current = found.iter().find(|o| {
            o["id"]
                .as_str()
                .and_then(crate::event::canonical_uuid)
                .as_deref()
                == Some(id)
        });
        let path = match lookup.family {
            Family::Network => format!("neutron network {id}"),
            Family::Subnet => format!("neutron subnet {id}"),
            Family::Project => format!("keystone project {id}"),
        };
        match (lookup.family, current) {
            (Family::Project, Some(project)) => steps.push(tenant_step(&path, project, settings)?),
            (Family::Project, None) => steps.push(crate::model::Step::Remove {
                kind: crate::model::Kind::Tenant,
                id: id.clone(),
            }),
            (Family::Network, Some(network)) => {
                steps.extend(network_steps(&path, network, settings, &mut warnings)?)
            }
            (Family::Subnet, Some(subnet)) => steps.push(subnet_step(&path, subnet, settings)?),
            (Family::Network, None) => steps.extend(network::removal(id.clone(), listed.clone())),
            (Family::Subnet, None) => steps.push(crate::model::Step::Remove {
                kind: crate::model::Kind::Prefix,
                id: id.clone(),
            }),
        }
    }
    Ok(Plan {
        steps,
        first,
        warnings,
    })
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

/// The Keystone project an identity event is about: `payload.target.id`
/// (CADF, Keystone's default format) or `payload.resource_info` (basic).
pub fn project_of(notification: &Notification) -> Option<String> {
    if !notification.event_type.starts_with("identity.project.") {
        return None;
    }
    let p = &notification.payload;
    [&p["target"]["id"], &p["resource_info"]]
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
) -> Result<Vec<(String, &'a Value)>, Error> {
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
        Some(other) => Err(Error::input(format!(
            "payload.{many}: expected an array, found {}",
            type_name(other)
        ))),
        None => Err(Error::input(format!(
            "payload: neither \"{one}\" nor \"{many}\" is present"
        ))),
    }
}

fn active() -> Ref {
    Ref::named("Active")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn settings() -> Settings {
        Settings {
            ucvni_group: Some("undercloud".into()),
            global_namespace: "Global".into(),
            tag: None,
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
        let plan = plan(
            &event("subnet.create.end", json!({"subnets": []})),
            &settings(),
        )
        .unwrap();
        assert!(plan.steps.is_empty());
    }
}
