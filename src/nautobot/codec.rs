//! Model objects to Nautobot request bodies and back, and what Nautobot's
//! answers mean. Nothing here sends a request.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::Reply;
use crate::model::{Kind, Namespace, Object, Prefix, Ref, Tenant, Ucvni};

/// The REST list endpoint; detail endpoints append `<id>/`.
pub fn endpoint(kind: Kind) -> &'static str {
    match kind {
        Kind::Namespace => "/api/ipam/namespaces/",
        Kind::Prefix => "/api/ipam/prefixes/",
        Kind::Ucvni => "/api/plugins/undercloud-vni/ucvnis/",
        Kind::Tenant => "/api/tenancy/tenants/",
        Kind::Tag => TAGS,
        Kind::UcvniGroup => UCVNI_GROUPS,
        Kind::TenantGroup => TENANT_GROUPS,
    }
}

pub const STATUSES: &str = "/api/extras/statuses/";
pub const TAGS: &str = "/api/extras/tags/";
pub const UCVNI_GROUPS: &str = "/api/plugins/undercloud-vni/ucvni-groups/";
pub const TENANT_GROUPS: &str = "/api/tenancy/tenant-groups/";

/// The object types this tool's tag is put on.
pub const TAGGED: [&str; 3] = ["ipam.namespace", "ipam.prefix", "tenancy.tenant"];

pub fn detail(kind: Kind, id: &str) -> String {
    format!("{}{id}/", endpoint(kind))
}

/// A related object as Nautobot takes it: by id when known, else by name
/// (a namespace *named* by a UUID must go as `{"name": …}`, or Nautobot
/// takes it for an id).
fn reference(r: &Ref) -> Value {
    match (&r.id, &r.name) {
        (Some(id), _) => json!({ "id": id }),
        (None, Some(name)) => json!({ "name": name }),
        (None, None) => Value::Null,
    }
}

fn tenant(id: &Option<String>) -> Value {
    id.as_ref().map_or(Value::Null, |id| json!({ "id": id }))
}

/// The body that creates `object` (with its id, when it has one).
pub fn create_body(object: &Object) -> Value {
    let mut body = fields(object);
    if let Some(id) = object.id() {
        body.insert("id".into(), json!(id));
    }
    if !object.tags().is_empty() {
        body.insert("tags".into(), tags_body(object.tags()));
    }
    Value::Object(body)
}

/// The body that updates an existing object to `object`. `tags`, when
/// given, is the whole new tag set: PATCHing tags replaces them all, so the
/// caller merges in the tags the object already has.
pub fn update_body(object: &Object, tags: Option<&[Ref]>) -> Map<String, Value> {
    let mut body = fields(object);
    if let Some(tags) = tags {
        body.insert("tags".into(), tags_body(tags));
    }
    body
}

fn tags_body(tags: &[Ref]) -> Value {
    Value::Array(tags.iter().map(reference).collect())
}

/// A PATCH body that sets the whole tag set and nothing else.
pub fn tags_only(tags: &[Ref]) -> Value {
    json!({ "tags": tags_body(tags) })
}

fn fields(object: &Object) -> Map<String, Value> {
    let value = match object {
        Object::Namespace(n) => json!({"name": n.name}),
        Object::Prefix(p) => json!({
            "prefix": p.prefix,
            "namespace": reference(&p.namespace),
            "status": reference(&p.status),
            "tenant": tenant(&p.tenant),
        }),
        Object::Ucvni(u) => json!({
            "name": u.name,
            "ucvni_id": u.vni,
            "ucvni_group": u.group.as_ref().map_or(Value::Null, reference),
            "status": reference(&u.status),
            "tenant": tenant(&u.tenant),
        }),
        Object::Tenant(t) if t.placeholder => json!({"name": t.name}),
        Object::Tenant(t) => json!({
            "name": t.name,
            "description": t.description,
            "tenant_group": t.group.as_ref().map_or(Value::Null, reference),
        }),
    };
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A related object in an answer: `{"id", "object_type", "url"}` at depth 0,
/// the whole object at depth 1; the name is filled in from what the session
/// knows.
fn read_ref(value: &Value, names: &HashMap<String, String>) -> Option<Ref> {
    let id = value["id"].as_str().map(str::to_ascii_lowercase);
    let name = value["name"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| id.as_ref().and_then(|id| names.get(id).cloned()));
    (id.is_some() || name.is_some()).then_some(Ref { id, name })
}

/// An object as Nautobot answered it, in the model's terms; None when the
/// answer lacks what identifies it.
pub fn decode(kind: Kind, value: &Value, names: &HashMap<String, String>) -> Option<Object> {
    let text = |key: &str| value[key].as_str().map(str::to_owned);
    let id = text("id").map(|id| id.to_ascii_lowercase());
    let tags = value["tags"]
        .as_array()
        .map(|tags| tags.iter().filter_map(|t| read_ref(t, names)).collect())
        .unwrap_or_default();
    let tenant_id = value["tenant"]["id"].as_str().map(str::to_ascii_lowercase);
    let status = read_ref(&value["status"], names).unwrap_or_default();
    Some(match kind {
        Kind::Namespace => Object::Namespace(Namespace {
            name: text("name")?,
            tags,
        }),
        Kind::Prefix => Object::Prefix(Prefix {
            id: id?,
            prefix: text("prefix")?,
            namespace: read_ref(&value["namespace"], names).unwrap_or_default(),
            tenant: tenant_id,
            status,
            tags,
        }),
        Kind::Ucvni => Object::Ucvni(Ucvni {
            id: id?,
            name: text("name").unwrap_or_default(),
            vni: value["ucvni_id"]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())?,
            group: read_ref(&value["ucvni_group"], names),
            tenant: tenant_id,
            status,
            tags,
        }),
        Kind::Tenant => Object::Tenant(Tenant {
            id: id?,
            name: text("name").unwrap_or_default(),
            description: text("description").unwrap_or_default(),
            group: read_ref(&value["tenant_group"], names),
            tags,
            placeholder: false,
        }),
        Kind::Tag | Kind::UcvniGroup | Kind::TenantGroup => return None,
    })
}

/// The Nautobot id of a listed row (a namespace's, say).
pub fn row_id(value: &Value) -> Option<String> {
    value["id"].as_str().map(str::to_ascii_lowercase)
}

/// Whether a 400 answer (or one element of a bulk answer) says `field` has
/// an error containing `text`.
pub fn field_error(errors: &Value, field: &str, text: &str) -> bool {
    match &errors[field] {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .any(|e| e.contains(text)),
        Value::String(e) => e.contains(text),
        _ => false,
    }
}

pub fn has_error(reply: &Reply, field: &str, text: &str) -> bool {
    reply.status == 400 && field_error(&reply.body, field, text)
}

/// The object already exists under this id (a duplicate delivery, a retry
/// of a create that had succeeded, or a twin racing us).
pub fn id_exists(errors: &Value) -> bool {
    field_error(errors, "id", "already exists")
}

/// A unique-together clash with another object (namespace + prefix, group +
/// VNI).
pub fn clash(errors: &Value) -> bool {
    field_error(errors, "__all__", "already exists")
}

/// A 500 from a unique constraint: the row was inserted by a concurrent
/// request between Nautobot's validation and its INSERT. The object exists.
pub fn duplicate_key(reply: &Reply) -> bool {
    reply.status == 500
        && reply.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("duplicate key value violates unique constraint"))
}

/// A related object Nautobot said it could not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Missing {
    Namespace,
    Tenant,
    TenantGroup,
    UcvniGroup,
    Status,
    Tags,
}

pub fn missing_related(errors: &Value) -> Option<Missing> {
    [
        ("namespace", Missing::Namespace),
        ("tenant", Missing::Tenant),
        ("tenant_group", Missing::TenantGroup),
        ("ucvni_group", Missing::UcvniGroup),
        ("status", Missing::Status),
        ("tags", Missing::Tags),
    ]
    .into_iter()
    .find(|(field, _)| {
        field_error(errors, field, "Related object not found")
            || field_error(errors, field, "not found")
    })
    .map(|(_, missing)| missing)
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
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

/// `key=a&key=b…` for a multi-valued filter.
pub fn filter(key: &str, values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("{key}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nautobot::Method;

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            method: Method::Post,
            path: "/api/ipam/prefixes/".into(),
            status,
            body,
        }
    }

    fn prefix() -> Object {
        Object::Prefix(Prefix {
            id: "7c9e1a3b-2d4f-4a6b-9c8d-0e1f2a3b4c5d".into(),
            prefix: "10.0.0.0/24".into(),
            namespace: Ref::named("3f2a8c1e-5b7d-4e9a-8c6f-1d2e3f4a5b6c"),
            tenant: Some("a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90".into()),
            status: Ref::named("Active"),
            tags: vec![Ref::named("oslo-nautobot")],
        })
    }

    #[test]
    fn bodies_name_related_objects() {
        assert_eq!(
            create_body(&prefix()),
            json!({"id": "7c9e1a3b-2d4f-4a6b-9c8d-0e1f2a3b4c5d", "prefix": "10.0.0.0/24",
                   "namespace": {"name": "3f2a8c1e-5b7d-4e9a-8c6f-1d2e3f4a5b6c"},
                   "status": {"name": "Active"}, "tenant": {"id": "a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90"},
                   "tags": [{"name": "oslo-nautobot"}]})
        );
        let update = update_body(&prefix(), None);
        assert!(!update.contains_key("id") && !update.contains_key("tags"));
        let merged = [Ref::with_id("t-1"), Ref::named("oslo-nautobot")];
        assert_eq!(
            update_body(&prefix(), Some(&merged))["tags"],
            json!([{"id": "t-1"}, {"name": "oslo-nautobot"}])
        );
    }

    #[test]
    fn decodes_a_depth_0_answer_with_known_names() {
        let answer = json!({"id": "7C9E1A3B-2d4f-4a6b-9c8d-0e1f2a3b4c5d", "prefix": "10.0.0.0/24",
            "namespace": {"id": "ns-1", "object_type": "ipam.namespace", "url": "http://x/"},
            "status": {"id": "st-1", "object_type": "extras.status", "url": "http://x/"},
            "tenant": {"id": "A1B2C3D4-e5f6-0718-293a-4b5c6d7e8f90"},
            "tags": [{"id": "t-1"}]});
        let names: HashMap<String, String> = [
            ("ns-1", "3f2a8c1e-5b7d-4e9a-8c6f-1d2e3f4a5b6c"),
            ("st-1", "Active"),
            ("t-1", "oslo-nautobot"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        let read = decode(Kind::Prefix, &answer, &names).unwrap();
        assert!(prefix().differences(&read).is_empty(), "{read:?}");
        assert_eq!(decode(Kind::Prefix, &json!({"prefix": "x"}), &names), None);
    }

    #[test]
    fn recognises_nautobot_answers() {
        let exists = json!({"id": ["Prefix with this Id already exists."]});
        assert!(id_exists(&exists));
        assert!(has_error(
            &reply(400, exists.clone()),
            "id",
            "already exists"
        ));
        assert!(clash(
            &json!({"__all__": ["Prefix with this Namespace, Network and Prefix length already exists."]})
        ));
        let race = reply(
            500,
            json!({"error": "duplicate key value violates unique constraint \"ipam_prefix_pkey\"\nDETAIL: …", "exception": "IntegrityError"}),
        );
        assert!(duplicate_key(&race));
        assert!(!duplicate_key(&reply(500, json!({"error": "boom"}))));
        let missing = json!({"namespace": ["Related object not found using the provided attributes: {'name': 'x'}"]});
        assert_eq!(missing_related(&missing), Some(Missing::Namespace));
        let tenant = json!({"tenant": ["Related object not found using the provided attributes: {'id': 'x'}"]});
        assert_eq!(missing_related(&tenant), Some(Missing::Tenant));
        assert_eq!(missing_related(&exists), None);
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("under cloud/α&x"), "under%20cloud%2F%CE%B1%26x");
        assert_eq!(filter("name", &["a b", "c"]), "name=a%20b&name=c");
    }
}
