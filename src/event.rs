//! Decoding: raw input bytes become one oslo notification, whatever shape it
//! arrived in, and typed accessors check the payload fields the handlers need.

use serde_json::{Map, Value};

use crate::error::{Error, clip};

/// Largest input accepted. Real notifications are a few KiB; a bulk create of
/// a thousand subnets stays well under this.
pub const MAX_INPUT_BYTES: usize = 4 << 20;

/// One decoded oslo notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub event_type: String,
    pub message_id: Option<String>,
    pub payload: Value,
}

/// Decodes one input document: a decoded notification, the raw RabbitMQ body
/// (`{"oslo.version", "oslo.message": "<JSON text>"}`), or an Argo event
/// wrapper `{"body": …}` around either.
pub fn decode(bytes: &[u8]) -> Result<Notification, Error> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(Error::input(format!(
            "input is larger than {} MiB",
            MAX_INPUT_BYTES >> 20
        )));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::input(format!("input is not UTF-8 text ({e})")))?;
    if text.trim().is_empty() {
        return Err(Error::input("input is empty"));
    }
    let value = parse_json(text, "input")?;
    unwrap_shape(value, Shape::Outer)
}

/// Where in the nesting of wrappers a document sits; each wrapper may appear
/// once, in order, so hostile input cannot make us recurse.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Outer,
    ArgoBody,
    OsloMessage,
}

fn unwrap_shape(value: Value, shape: Shape) -> Result<Notification, Error> {
    let where_ = match shape {
        Shape::Outer => "input",
        Shape::ArgoBody => "body",
        Shape::OsloMessage => "oslo.message",
    };
    let Value::Object(mut object) = value else {
        return Err(Error::input(format!(
            "{where_}: expected a JSON object, found {}",
            type_name(&value)
        )));
    };
    if object.contains_key("event_type") {
        return notification(object, where_);
    }
    if shape != Shape::OsloMessage
        && let Some(message) = object.remove("oslo.message")
    {
        let Value::String(text) = message else {
            return Err(Error::input(format!(
                "oslo.message: expected a string holding JSON, found {}",
                type_name(&message)
            )));
        };
        let inner = parse_json(&text, "oslo.message")?;
        return unwrap_shape(inner, Shape::OsloMessage);
    }
    if shape == Shape::Outer
        && let Some(body) = object.remove("body")
    {
        // Argo hands the body over as JSON, or as a JSON string when the
        // EventSource does not decode it.
        let body = match body {
            Value::String(text) => parse_json(&text, "body")?,
            other => other,
        };
        return unwrap_shape(body, Shape::ArgoBody);
    }
    Err(Error::input(format!(
        "{where_}: not a Neutron notification (expected \"event_type\", an oslo envelope \
         with \"oslo.message\", or an Argo event with \"body\")"
    )))
}

fn notification(object: Map<String, Value>, where_: &str) -> Result<Notification, Error> {
    let event_type = match object.get("event_type") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(other) => {
            let found = match other {
                Value::String(_) => "an empty string",
                other => type_name(other),
            };
            return Err(Error::input(format!(
                "{where_}.event_type: expected a non-empty string, found {found}"
            )));
        }
        None => return Err(Error::input(format!("{where_}.event_type: missing"))),
    };
    let message_id = object
        .get("message_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let payload = object.get("payload").cloned().unwrap_or(Value::Null);
    Ok(Notification {
        event_type,
        message_id,
        payload,
    })
}

fn parse_json(text: &str, what: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::input(format!("{what}: not valid JSON ({e})")))
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object together with its path in the input, so that every error
/// names the exact field (`payload.subnets[2].cidr`).
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    pub path: &'a str,
    object: &'a Map<String, Value>,
}

/// Longest name accepted; Neutron allows 255 characters, as does Nautobot.
const MAX_NAME_CHARS: usize = 255;

impl<'a> Fields<'a> {
    pub fn new(path: &'a str, value: &'a Value) -> Result<Self, Error> {
        match value {
            Value::Object(object) => Ok(Self { path, object }),
            other => Err(Error::input(format!(
                "{path}: expected an object, found {}",
                type_name(other)
            ))),
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key).filter(|v| !v.is_null())
    }

    fn error(&self, key: &str, problem: impl std::fmt::Display) -> Error {
        Error::input(format!("{}.{key}: {problem}", self.path))
    }

    pub fn string(&self, key: &str) -> Result<&'a str, Error> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(self.error(
                key,
                format!("expected a string, found {}", type_name(other)),
            )),
            None => Err(self.error(key, "missing")),
        }
    }

    /// A Neutron UUID, returned in Nautobot's canonical form.
    pub fn uuid(&self, key: &str) -> Result<String, Error> {
        let raw = self.string(key)?;
        canonical_uuid(raw)
            .ok_or_else(|| self.error(key, format!("{:?} is not a UUID", clip(raw, 64))))
    }

    /// A display name: may be empty, must fit Nautobot and contain no NUL
    /// (PostgreSQL cannot store it).
    pub fn name(&self, key: &str) -> Result<&'a str, Error> {
        let name = match self.get(key) {
            None => "",
            Some(_) => self.string(key)?,
        };
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(self.error(key, format!("longer than {MAX_NAME_CHARS} characters")));
        }
        if name.contains('\0') {
            return Err(self.error(key, "contains a NUL character"));
        }
        Ok(name)
    }

    pub fn flag(&self, key: &str) -> Result<bool, Error> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.error(
                key,
                format!("expected a boolean, found {}", type_name(other)),
            )),
        }
    }

    /// A positive integer, or `None` when absent or null.
    pub fn positive(&self, key: &str) -> Result<Option<u32>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|&n| n > 0)
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.error(key, format!("{n} is not a positive 32-bit integer"))),
            Some(other) => Err(self.error(
                key,
                format!("expected an integer, found {}", type_name(other)),
            )),
        }
    }

    /// The project that owns the object (`project_id`, or the older
    /// `tenant_id`) as a tenant id: Keystone's 32 hex digits, dashed.
    pub fn project(&self) -> Result<String, Error> {
        let key = if self.get("project_id").is_some() {
            "project_id"
        } else {
            "tenant_id"
        };
        let raw = self.string(key)?;
        canonical_uuid(raw).ok_or_else(|| {
            self.error(
                key,
                format!(
                    "{:?} is not a Keystone project id (32 hex digits)",
                    clip(raw, 64)
                ),
            )
        })
    }

    /// A list of UUIDs (e.g. a network's `subnets`); absent means empty.
    pub fn uuid_list(&self, key: &str) -> Result<Vec<String>, Error> {
        let items = match self.get(key) {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(self.error(
                    key,
                    format!("expected an array, found {}", type_name(other)),
                ));
            }
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .and_then(canonical_uuid)
                    .ok_or_else(|| self.error(&format!("{key}[{i}]"), "not a UUID"))
            })
            .collect()
    }
}

/// Accepts a UUID with or without dashes (Keystone writes 32 hex digits) and
/// returns the lower-case dashed form Nautobot uses for ids.
pub fn canonical_uuid(raw: &str) -> Option<String> {
    let hex: String = match raw.len() {
        32 => raw.to_owned(),
        36 => {
            let dashes_ok = raw
                .char_indices()
                .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-'));
            if !dashes_ok {
                return None;
            }
            raw.chars().filter(|&c| c != '-').collect()
        }
        _ => return None,
    };
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// Validates a CIDR against its IP version; returns it unchanged.
pub fn check_cidr(cidr: &str, ip_version: Option<u32>) -> Result<(), String> {
    let (address, length) = cidr
        .split_once('/')
        .ok_or_else(|| format!("{:?} is not a CIDR (no prefix length)", clip(cidr, 64)))?;
    let address: std::net::IpAddr = address
        .parse()
        .map_err(|_| format!("{:?} is not a CIDR (bad address)", clip(cidr, 64)))?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let length_ok = !length.is_empty()
        && length.len() <= 3
        && length.bytes().all(|b| b.is_ascii_digit())
        && length.parse::<u8>().is_ok_and(|l| l <= max);
    if !length_ok {
        return Err(format!("{:?} has an invalid prefix length", clip(cidr, 64)));
    }
    let version = if address.is_ipv4() { 4 } else { 6 };
    match ip_version {
        Some(v) if v != version => Err(format!("{cidr} is IPv{version} but ip_version is {v}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inner() -> Value {
        json!({"event_type": "subnet.delete.end", "message_id": "m-1",
               "payload": {"subnet_id": "0b7a1cb6-3f7a-4c43-9d0e-6a2cf3f7d0a1"}})
    }

    fn decoded(v: &Value) -> Notification {
        decode(v.to_string().as_bytes()).expect("decodes")
    }

    #[test]
    fn decodes_each_shape_to_the_same_notification() {
        let plain = decoded(&inner());
        let envelope = json!({"oslo.version": "2.0", "oslo.message": inner().to_string()});
        assert_eq!(decoded(&envelope), plain);
        assert_eq!(decoded(&json!({"body": inner()})), plain);
        assert_eq!(decoded(&json!({"body": envelope.clone()})), plain);
        assert_eq!(decoded(&json!({"body": envelope.to_string()})), plain);
        assert_eq!(plain.event_type, "subnet.delete.end");
        assert_eq!(plain.message_id.as_deref(), Some("m-1"));
    }

    #[test]
    fn decodes_argo_escaped_text() {
        let text = r#"{"event_type":"network.create.end","payload":{"network":{"name":"\u003cb\u003e \u0026"}}}"#;
        let n = decode(text.as_bytes()).unwrap();
        assert_eq!(n.payload["network"]["name"], "<b> &");
    }

    fn rejects(bytes: &[u8], needle: &str) {
        let err = decode(bytes).expect_err("must be refused").to_string();
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    }

    #[test]
    fn rejects_what_is_not_a_notification() {
        rejects(b"", "empty");
        rejects(b"  \n", "empty");
        rejects(b"{\"event_type\"", "not valid JSON");
        rejects(b"\xff\xfe", "not UTF-8");
        rejects(b"[]", "expected a JSON object, found an array");
        rejects(b"{}", "not a Neutron notification");
        rejects(
            b"{\"event_type\": 5}",
            "event_type: expected a non-empty string",
        );
        rejects(b"{\"oslo.message\": {}}", "expected a string holding JSON");
        rejects(
            b"{\"oslo.message\": \"nope\"}",
            "oslo.message: not valid JSON",
        );
        rejects(
            b"{\"body\": {\"body\": {}}}",
            "body: not a Neutron notification",
        );
        let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        rejects(nested.as_bytes(), "not valid JSON");
        let huge = vec![b' '; MAX_INPUT_BYTES + 1];
        rejects(&huge, "larger than 4 MiB");
    }

    #[test]
    fn an_envelope_cannot_hide_another_envelope() {
        let twice =
            json!({"oslo.message": json!({"oslo.message": inner().to_string()}).to_string()});
        rejects(
            twice.to_string().as_bytes(),
            "oslo.message: not a Neutron notification",
        );
    }

    #[test]
    fn canonicalises_uuids() {
        let dashed = "46c1e917-980e-4485-915b-1444e8c50cc2";
        assert_eq!(
            canonical_uuid("46C1E917980E4485915B1444E8C50CC2").as_deref(),
            Some(dashed)
        );
        assert_eq!(canonical_uuid(dashed).as_deref(), Some(dashed));
        for bad in [
            "",
            "46c1e917",
            "46c1e917-980e4485-915b-1444e8c50cc2-",
            "g6c1e917980e4485915b1444e8c50cc2",
            "46c1e917-980e-4485-915b1444e8c50cc2-",
            "46c1e9179-80e-4485-915b-1444e8c50cc2",
        ] {
            assert_eq!(canonical_uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn checks_cidrs() {
        assert!(check_cidr("10.0.0.0/24", Some(4)).is_ok());
        assert!(check_cidr("2001:db8::/64", Some(6)).is_ok());
        assert!(check_cidr("10.0.0.0/24", None).is_ok());
        for (cidr, v) in [
            ("10.0.0.0", Some(4)),
            ("10.0.0.0/33", Some(4)),
            ("10.0.0.0/24", Some(6)),
            ("2001:db8::/129", Some(6)),
            ("300.0.0.0/8", Some(4)),
            ("10.0.0.0/+1", None),
            ("10.0.0.0/", None),
            ("/24", None),
        ] {
            assert!(check_cidr(cidr, v).is_err(), "{cidr}");
        }
    }

    #[test]
    fn fields_name_the_path() {
        let v = json!({"id": "x", "segmentation": -1, "ok": true, "name": "a\u{0}b"});
        let f = Fields::new("payload.network", &v).unwrap();
        assert_eq!(
            f.uuid("id").unwrap_err().to_string(),
            "invalid input: payload.network.id: \"x\" is not a UUID"
        );
        assert!(
            f.uuid("missing")
                .unwrap_err()
                .to_string()
                .contains("payload.network.missing: missing")
        );
        assert!(f.positive("segmentation").is_err());
        assert_eq!(f.positive("absent").unwrap(), None);
        assert!(f.flag("ok").unwrap());
        assert!(f.name("name").unwrap_err().to_string().contains("NUL"));
        assert_eq!(f.name("absent").unwrap(), "");
    }

    #[test]
    fn project_falls_back_to_tenant_id() {
        let v = json!({"tenant_id": "962F6E0DFB314D43BDEE2A9D5C7BD7F6"});
        let p = Fields::new("n", &v).unwrap().project().unwrap();
        assert_eq!(p, "962f6e0d-fb31-4d43-bdee-2a9d5c7bd7f6");
    }
}
