//! The desired Nautobot state, typed: the objects this tool keeps, what a
//! plan asks for, and how an object read back from Nautobot compares with
//! the one wanted.
//!
//! The planner builds these from an event or from Neutron's listings; only
//! the Nautobot layer ([`crate::nautobot`]) turns them into request bodies
//! and back. Reconcile compares thousands of them, so the comparison is here,
//! field by field, with the normalisation Nautobot's answers need: CIDRs in
//! canonical form, related objects written by name but read back by id.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Value, json};

/// The Nautobot object types this tool writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Namespace,
    Prefix,
    Ucvni,
    Tenant,
    /// The tag marking what this tool owns.
    Tag,
    /// The UCVNI group this tool's UCVNIs belong to.
    #[serde(rename = "ucvni-group")]
    UcvniGroup,
    /// A Keystone domain's group of tenants.
    #[serde(rename = "tenant-group")]
    TenantGroup,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "namespace",
            Kind::Prefix => "prefix",
            Kind::Ucvni => "ucvni",
            Kind::Tenant => "tenant",
            Kind::Tag => "tag",
            Kind::UcvniGroup => "ucvni-group",
            Kind::TenantGroup => "tenant-group",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A related object. The planner knows it by name; Nautobot answers with its
/// id; the Nautobot layer fills in the name of every id it knows, so either
/// side may be compared with the other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ref {
    pub id: Option<String>,
    pub name: Option<String>,
}

impl Ref {
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            id: None,
            name: Some(name.into()),
        }
    }

    pub fn with_id(id: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            name: None,
        }
    }

    /// Whether both sides name the same object. A side known only by id and
    /// one known only by name cannot be told apart, so they do not match:
    /// an unneeded write is harmless, a missed one is not.
    pub fn matches(&self, other: &Ref) -> bool {
        match (&self.id, &other.id, &self.name, &other.name) {
            (Some(a), Some(b), _, _) => a.eq_ignore_ascii_case(b),
            (_, _, Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// The name, else the id: how a person reads it.
    pub fn label(&self) -> &str {
        self.name.as_deref().or(self.id.as_deref()).unwrap_or("?")
    }
}

/// An IPAM namespace, named after its network's UUID (or the global one).
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    pub name: String,
    pub tags: Vec<Ref>,
}

/// A prefix: one Neutron subnet.
#[derive(Debug, Clone, PartialEq)]
pub struct Prefix {
    pub id: String,
    /// Canonical CIDR (see [`canonical_cidr`]).
    pub prefix: String,
    pub namespace: Ref,
    /// Tenant id: the owning project's UUID.
    pub tenant: Option<String>,
    pub status: Ref,
    pub tags: Vec<Ref>,
}

/// A UCVNI of the undercloud-vni app: one overlay network.
#[derive(Debug, Clone, PartialEq)]
pub struct Ucvni {
    pub id: String,
    pub name: String,
    pub vni: u32,
    /// None when no group is configured: a dry run still shows the rest, a
    /// real run refuses to write it.
    pub group: Option<Ref>,
    pub tenant: Option<String>,
    pub status: Ref,
    pub tags: Vec<Ref>,
}

/// A tenant: one Keystone project.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The tenant group of the project's domain.
    pub group: Option<Ref>,
    pub tags: Vec<Ref>,
    /// Known only by its id (no credentials to read the project): it is
    /// made if missing, and an existing tenant is left as it is.
    pub placeholder: bool,
}

impl Tenant {
    /// A tenant for a project known only by its id: named by the id, in
    /// Keystone's own spelling (32 hex digits), until the project is read.
    pub fn placeholder(id: &str, tags: Vec<Ref>) -> Self {
        Self {
            id: id.to_owned(),
            name: id.replace('-', ""),
            description: String::new(),
            group: None,
            tags,
            placeholder: true,
        }
    }
}

/// Any object this tool keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Namespace(Namespace),
    Prefix(Prefix),
    Ucvni(Ucvni),
    Tenant(Tenant),
}

/// How an object is found: namespaces by name, everything else by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub kind: Kind,
    pub value: String,
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Namespace(_) => Kind::Namespace,
            Object::Prefix(_) => Kind::Prefix,
            Object::Ucvni(_) => Kind::Ucvni,
            Object::Tenant(_) => Kind::Tenant,
        }
    }

    pub fn key(&self) -> Key {
        let value = match self {
            Object::Namespace(n) => n.name.clone(),
            Object::Prefix(p) => p.id.clone(),
            Object::Ucvni(u) => u.id.clone(),
            Object::Tenant(t) => t.id.clone(),
        };
        Key {
            kind: self.kind(),
            value,
        }
    }

    /// The id (None for a namespace, which is found by name).
    pub fn id(&self) -> Option<&str> {
        match self {
            Object::Namespace(_) => None,
            Object::Prefix(p) => Some(&p.id),
            Object::Ucvni(u) => Some(&u.id),
            Object::Tenant(t) => Some(&t.id),
        }
    }

    /// The display name, where the object has one of its own.
    pub fn name(&self) -> Option<&str> {
        match self {
            Object::Namespace(n) => Some(&n.name),
            Object::Prefix(p) => Some(&p.prefix),
            Object::Ucvni(u) => Some(&u.name),
            Object::Tenant(t) => Some(&t.name),
        }
    }

    pub fn tags(&self) -> &[Ref] {
        match self {
            Object::Namespace(n) => &n.tags,
            Object::Prefix(p) => &p.tags,
            Object::Ucvni(u) => &u.tags,
            Object::Tenant(t) => &t.tags,
        }
    }

    /// The tenant this object needs to exist before it can be written.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Object::Prefix(p) => p.tenant.as_deref(),
            Object::Ucvni(u) => u.tenant.as_deref(),
            _ => None,
        }
    }

    /// The fields in which `actual` (read from Nautobot) differs from this
    /// desired object, by their Nautobot names; empty when it is as wanted.
    /// Tags are a floor, not an exact set: the desired tags must be there,
    /// and tags someone else put on the object are theirs to keep.
    pub fn differences(&self, actual: &Object) -> Vec<&'static str> {
        let mut fields = Vec::new();
        let mut check = |field: &'static str, same: bool| {
            if !same {
                fields.push(field);
            }
        };
        match (self, actual) {
            (Object::Namespace(_), Object::Namespace(_)) => {}
            (Object::Prefix(want), Object::Prefix(have)) => {
                check("prefix", same_cidr(&want.prefix, &have.prefix));
                check("namespace", want.namespace.matches(&have.namespace));
                check("tenant", same_id(&want.tenant, &have.tenant));
                check("status", want.status.matches(&have.status));
            }
            (Object::Ucvni(want), Object::Ucvni(have)) => {
                check("name", want.name == have.name);
                check("ucvni_id", want.vni == have.vni);
                let group = match (&want.group, &have.group) {
                    (Some(want), Some(have)) => want.matches(have),
                    (None, _) => true,
                    (Some(_), None) => false,
                };
                check("ucvni_group", group);
                check("tenant", same_id(&want.tenant, &have.tenant));
                check("status", want.status.matches(&have.status));
            }
            // A placeholder only has to exist.
            (Object::Tenant(want), Object::Tenant(_)) if want.placeholder => return Vec::new(),
            (Object::Tenant(want), Object::Tenant(have)) => {
                check("name", want.name == have.name);
                check("description", want.description == have.description);
                let group = match (&want.group, &have.group) {
                    (Some(want), Some(have)) => want.matches(have),
                    (None, _) => true,
                    (Some(_), None) => false,
                };
                check("tenant_group", group);
            }
            _ => check("kind", false),
        }
        let missing_tag = self
            .tags()
            .iter()
            .any(|want| !actual.tags().iter().any(|have| want.matches(have)));
        check("tags", !missing_tag);
        fields
    }

    /// The plan's view of this object, as `--dry-run` prints it.
    pub fn to_json(&self) -> Value {
        let tags: Vec<&str> = self.tags().iter().map(Ref::label).collect();
        let mut value = match self {
            Object::Namespace(n) => json!({"kind": "namespace", "name": n.name}),
            Object::Prefix(p) => json!({
                "kind": "prefix", "id": p.id, "prefix": p.prefix, "namespace": p.namespace.label(),
                "tenant": p.tenant, "status": p.status.label(),
            }),
            Object::Ucvni(u) => json!({
                "kind": "ucvni", "id": u.id, "name": u.name, "ucvni_id": u.vni,
                "ucvni_group": u.group.as_ref().map(Ref::label), "tenant": u.tenant,
                "status": u.status.label(),
            }),
            Object::Tenant(t) => json!({
                "kind": "tenant", "id": t.id, "name": t.name, "description": t.description,
                "tenant_group": t.group.as_ref().map(Ref::label),
            }),
        };
        if !tags.is_empty() {
            value["tags"] = json!(tags);
        }
        value
    }
}

fn same_id(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, None) => true,
        _ => false,
    }
}

/// Whether two CIDRs name the same network (host bits and spelling aside).
pub fn same_cidr(a: &str, b: &str) -> bool {
    match (canonical_cidr(a), canonical_cidr(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

/// The network of a CIDR in the form Nautobot stores: host bits cleared,
/// IPv6 in its shortest lower-case form (`2001:DB8:0::1/64` → `2001:db8::/64`).
pub fn canonical_cidr(cidr: &str) -> Option<String> {
    let (address, length) = cidr.split_once('/')?;
    let length: u8 = length.parse().ok()?;
    let network = match address.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) if length <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0);
            IpAddr::from((u32::from(a) & mask).to_be_bytes())
        }
        IpAddr::V6(a) if length <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(length)).unwrap_or(0);
            IpAddr::from((u128::from(a) & mask).to_be_bytes())
        }
        _ => return None,
    };
    Some(format!("{network}/{length}"))
}

/// What Nautobot holds, by key: each object as read, with its Nautobot id
/// (for a namespace, which is found by name, the id to PATCH it by).
pub type Found = HashMap<Key, (String, Object)>;

/// An update to send: the desired object, the Nautobot id of the existing
/// one, the tag set to write (None: leave the tags alone), and the fields
/// found to differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Update<'o> {
    pub object: &'o Object,
    pub id: String,
    pub tags: Option<Vec<Ref>>,
    pub fields: Vec<&'static str>,
    /// Each differing field, as Nautobot has it and as it is wanted.
    pub changes: Value,
}

impl<'o> Update<'o> {
    /// The update that makes `actual` look like `object`, or None when it
    /// already does.
    pub fn of(object: &'o Object, id: String, actual: &Object) -> Option<Self> {
        let fields = object.differences(actual);
        if fields.is_empty() {
            return None;
        }
        let tags = fields
            .contains(&"tags")
            .then(|| merged_tags(object, actual));
        let (want, have) = (object.to_json(), actual.to_json());
        let changes = fields
            .iter()
            .map(|f| (f.to_string(), json!({"from": have[*f], "to": want[*f]})))
            .collect::<serde_json::Map<_, _>>();
        Some(Self {
            object,
            id,
            tags,
            fields,
            changes: Value::Object(changes),
        })
    }
}

/// The object's tags with ours added: PATCHing tags replaces the whole set,
/// and the tags someone else put there are theirs to keep.
pub fn merged_tags(object: &Object, actual: &Object) -> Vec<Ref> {
    let mut tags = actual.tags().to_vec();
    for want in object.tags() {
        if !tags.iter().any(|have| want.matches(have)) {
            tags.push(want.clone());
        }
    }
    tags
}

/// Desired objects against what Nautobot holds.
#[derive(Debug, Default)]
pub struct Comparison<'o> {
    pub creates: Vec<&'o Object>,
    pub updates: Vec<Update<'o>>,
    pub unchanged: Vec<&'o Object>,
    /// Objects that cannot be written: a CIDR or VNI another object holds.
    pub conflicts: Vec<String>,
}

/// Compares desired objects with what was read (names already filled in).
/// `scope`, when given, is everything in the listed namespace or group: a
/// CIDR or VNI held there by another id is a conflict found before any write.
pub fn compare<'o>(desired: &[&'o Object], actual: &Found, scope: &[Object]) -> Comparison<'o> {
    let mut comparison = Comparison::default();
    for &object in desired {
        match actual.get(&object.key()) {
            None => match held_by_another(object, scope) {
                Some(holder) => comparison.conflicts.push(held_message(object, holder)),
                None => comparison.creates.push(object),
            },
            Some((id, have)) => match Update::of(object, id.clone(), have) {
                None => comparison.unchanged.push(object),
                Some(update) => comparison.updates.push(update),
            },
        }
    }
    comparison
}

/// Another object in the listed scope that holds this one's CIDR or VNI.
fn held_by_another<'a>(object: &Object, scope: &'a [Object]) -> Option<&'a Object> {
    scope.iter().find(|other| match (object, other) {
        (Object::Prefix(want), Object::Prefix(have)) => {
            want.id != have.id
                && same_cidr(&want.prefix, &have.prefix)
                && want.namespace.matches(&have.namespace)
        }
        (Object::Ucvni(want), Object::Ucvni(have)) => want.id != have.id && want.vni == have.vni,
        _ => false,
    })
}

fn held_message(object: &Object, holder: &Object) -> String {
    match object {
        Object::Ucvni(u) => format!(
            "conflict: segmentation id {} in UCVNI group {:?} is already held by network {}; \
             network {} was not written",
            u.vni,
            u.group.as_ref().map(Ref::label).unwrap_or_default(),
            holder.key().value,
            u.id
        ),
        Object::Prefix(p) => format!(
            "conflict: prefix {} already exists in namespace {} under another id ({}); \
             subnet {} was not written",
            p.prefix,
            p.namespace.label(),
            holder.key().value,
            p.id
        ),
        other => format!("conflict: {} {}", other.kind(), other.key().value),
    }
}

/// One intended change, as the planner hands it to the Nautobot layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// This object exists and looks like this.
    Put(Object),
    /// Nothing to write for this object; `reason` says why.
    Skip {
        kind: Kind,
        id: String,
        reason: String,
    },
    /// The named namespace is gone, with every prefix in it and the prefixes
    /// with these ids, wherever they live (an external network's are in the
    /// global namespace).
    RemoveNamespace { name: String, prefixes: Vec<String> },
    /// The object with this id is gone.
    Remove { kind: Kind, id: String },
}

impl Step {
    /// One line of `--dry-run` output.
    pub fn to_json(&self) -> Value {
        match self {
            Step::Put(object) => {
                let mut line = json!({"action": "write"});
                if let (Value::Object(line), Value::Object(fields)) = (&mut line, object.to_json())
                {
                    line.extend(fields);
                }
                line
            }
            Step::Skip { kind, id, reason } => {
                json!({"action": "skip", "kind": kind, "id": id, "reason": reason})
            }
            Step::RemoveNamespace { name, prefixes } => json!({
                "action": "delete-namespace", "kind": "namespace", "name": name, "prefixes": prefixes,
            }),
            Step::Remove { kind, id } => json!({"action": "delete", "kind": kind, "id": id}),
        }
    }
}

/// Which request to try first for a single object: the one that succeeds in
/// the common case, so that one request per object is the norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FirstTry {
    /// A create event: POST, falling back to PATCH when the id exists.
    Create,
    /// An update event: PATCH, falling back to POST on 404.
    Update,
}

/// What an event asks of Nautobot.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub first: FirstTry,
    /// Things a person should know that do not stop the plan (a dry run
    /// without a UCVNI group, say).
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix() -> Prefix {
        Prefix {
            id: "p".into(),
            prefix: "10.0.0.0/24".into(),
            namespace: Ref::named("net"),
            tenant: Some("AB".into()),
            status: Ref::named("Active"),
            tags: vec![Ref::named("oslo-nautobot")],
        }
    }

    #[test]
    fn canonicalises_cidrs() {
        assert_eq!(canonical_cidr("10.0.0.1/24").unwrap(), "10.0.0.0/24");
        assert_eq!(
            canonical_cidr("2001:DB8:0:0::1/64").unwrap(),
            "2001:db8::/64"
        );
        assert_eq!(canonical_cidr("0.0.0.0/0").unwrap(), "0.0.0.0/0");
        assert_eq!(canonical_cidr("::/0").unwrap(), "::/0");
        assert_eq!(canonical_cidr("10.0.0.0/33"), None);
        assert!(same_cidr("2001:db8:0::/64", "2001:db8::/64"));
        assert!(!same_cidr("10.0.0.0/24", "10.0.1.0/24"));
    }

    #[test]
    fn an_object_read_back_by_ids_matches_once_names_are_known() {
        let want = Object::Prefix(prefix());
        let mut read = prefix();
        read.namespace = Ref {
            id: Some("ns-1".into()),
            name: Some("net".into()),
        };
        read.status = Ref {
            id: Some("st-1".into()),
            name: Some("Active".into()),
        };
        read.tenant = Some("ab".into());
        read.prefix = "10.0.0.0/24".into();
        read.tags = vec![
            Ref::with_id("other"),
            Ref {
                id: Some("t-1".into()),
                name: Some("oslo-nautobot".into()),
            },
        ];
        assert!(want.differences(&Object::Prefix(read.clone())).is_empty());
        // An id whose name is not known cannot be taken as a match.
        read.status = Ref::with_id("st-1");
        assert_eq!(want.differences(&Object::Prefix(read)), ["status"]);
    }

    #[test]
    fn names_each_differing_field() {
        let want = Object::Prefix(prefix());
        let mut have = prefix();
        have.prefix = "10.0.1.0/24".into();
        have.tenant = None;
        have.tags = vec![Ref::named("someone-else")];
        assert_eq!(
            want.differences(&Object::Prefix(have)),
            ["prefix", "tenant", "tags"]
        );
    }

    #[test]
    fn prints_a_step_as_one_flat_line() {
        let line = Step::Put(Object::Prefix(prefix())).to_json();
        assert_eq!(
            line,
            json!({"action": "write", "kind": "prefix", "id": "p", "prefix": "10.0.0.0/24",
                   "namespace": "net", "tenant": "AB", "status": "Active", "tags": ["oslo-nautobot"]})
        );
    }
}
