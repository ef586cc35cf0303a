//! Subnet events: one prefix per subnet, in its network's namespace.

use serde_json::{Value, json};

use super::{Change, FirstTry, Kind, Settings, active, elements};
use crate::event::{Fields, InputError, check_cidr};

pub fn upsert(
    payload: &Value,
    settings: &Settings,
    first: FirstTry,
) -> anyhow::Result<Vec<Change>> {
    let mut changes = Vec::new();
    for (path, value) in elements(payload, "subnet", "subnets")? {
        let fields = Fields::new(&path, value)?;
        let id = fields.uuid("id")?;
        let network_id = fields.uuid("network_id")?;
        let tenant = fields.project()?;
        let ip_version = fields.positive("ip_version")?;
        if ip_version.is_some_and(|v| v != 4 && v != 6) {
            return Err(InputError::new(format!("{path}.ip_version: must be 4 or 6")).into());
        }
        let cidr = fields.string("cidr")?;
        check_cidr(cidr, ip_version).map_err(|e| InputError::new(format!("{path}.cidr: {e}")))?;
        // External networks share the provider's address space: their
        // prefixes live in the global namespace, not in a per-network one.
        let namespace = if fields.flag("router:external")? {
            settings.global_namespace.clone()
        } else {
            network_id
        };
        changes.push(Change::Write {
            kind: Kind::Prefix,
            id: id.clone(),
            first,
            body: json!({
                "id": id,
                "prefix": cidr,
                "status": active(),
                "tenant": {"id": tenant.id},
                "namespace": {"name": namespace},
            }),
            namespace: Some(namespace),
            tenant,
        });
    }
    Ok(changes)
}

pub fn delete(payload: &Value) -> anyhow::Result<Vec<Change>> {
    let fields = Fields::new("payload", payload)?;
    let id = match fields.get("subnet") {
        Some(subnet) => Fields::new("payload.subnet", subnet)?.uuid("id")?,
        None if fields.get("subnet_id").is_some() => fields.uuid("subnet_id")?,
        None => {
            return Err(InputError::new(
                "payload: neither \"subnet\" nor \"subnet_id\" is present",
            )
            .into());
        }
    };
    Ok(vec![Change::Delete {
        kind: Kind::Prefix,
        id,
    }])
}

#[cfg(test)]
mod tests {
    use super::super::tests::{event, merged, plan_err, settings};
    use super::super::{Change, FirstTry, Kind, plan};
    use serde_json::{Value, json};

    const SUB: &str = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a";
    const NET: &str = "5b0e4c3e-7f36-4a0c-8a51-0c8f2b7d9a11";

    fn subnet(extra: Value) -> Value {
        let base = json!({"id": SUB, "network_id": NET, "name": "blue-v4", "ip_version": 4,
                          "cidr": "10.10.0.0/24", "project_id": "0f3a9d2c1b7e4e56a8d9c0b1a2e3f405",
                          "router:external": false});
        merged(base, extra)
    }

    fn write_of(changes: &[Change]) -> (&Value, &Option<String>, FirstTry) {
        match &changes[0] {
            Change::Write {
                kind: Kind::Prefix,
                body,
                namespace,
                first,
                ..
            } => (body, namespace, *first),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_writes_a_prefix_in_the_network_namespace() {
        let changes = plan(
            &event("subnet.create.end", json!({"subnet": subnet(json!({}))})),
            &settings(),
        )
        .unwrap();
        let (body, namespace, first) = write_of(&changes);
        assert_eq!(first, FirstTry::Create);
        assert_eq!(namespace.as_deref(), Some(NET));
        assert_eq!(
            body,
            &json!({"id": SUB, "prefix": "10.10.0.0/24", "status": {"name": "Active"},
            "tenant": {"id": "0f3a9d2c-1b7e-4e56-a8d9-c0b1a2e3f405"}, "namespace": {"name": NET}})
        );
    }

    #[test]
    fn external_subnet_goes_to_the_global_namespace() {
        let mut s = settings();
        s.global_namespace = "Provider".into();
        let changes = plan(
            &event(
                "subnet.update.end",
                json!({"subnet": subnet(json!({"router:external": true}))}),
            ),
            &s,
        )
        .unwrap();
        let (body, namespace, first) = write_of(&changes);
        assert_eq!(first, FirstTry::Update);
        assert_eq!(namespace.as_deref(), Some("Provider"));
        assert_eq!(body["namespace"], json!({"name": "Provider"}));
    }

    #[test]
    fn ipv6_and_bulk() {
        let second = "1a2b3c4d-5e6f-4a0b-8c1d-2e3f4a5b6c7d";
        let payload = json!({"subnets": [subnet(json!({})),
            subnet(json!({"id": second, "ip_version": 6, "cidr": "2001:db8:10::/64"}))]});
        let changes = plan(&event("subnet.create.end", payload), &settings()).unwrap();
        assert_eq!(changes.len(), 2);
        let Change::Write { body, .. } = &changes[1] else {
            panic!()
        };
        assert_eq!(body["prefix"], "2001:db8:10::/64");
    }

    #[test]
    fn invalid_subnets_are_named() {
        for (extra, needle) in [
            (json!({"cidr": "10.10.0.0/33"}), "payload.subnet.cidr"),
            (
                json!({"cidr": "2001:db8::/64"}),
                "is IPv6 but ip_version is 4",
            ),
            (json!({"ip_version": 5}), "ip_version: must be 4 or 6"),
            (
                json!({"network_id": 12}),
                "payload.subnet.network_id: expected a string",
            ),
            (
                json!({"router:external": "yes"}),
                "router:external: expected a boolean",
            ),
            (json!({"cidr": null}), "payload.subnet.cidr: missing"),
        ] {
            let err = plan_err("subnet.create.end", json!({"subnet": subnet(extra)}));
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
    }

    #[test]
    fn delete_by_object_or_id() {
        let expected = vec![Change::Delete {
            kind: Kind::Prefix,
            id: SUB.into(),
        }];
        let by_object = json!({"subnet": subnet(json!({})), "subnet_id": SUB});
        assert_eq!(
            plan(&event("subnet.delete.end", by_object), &settings()).unwrap(),
            expected
        );
        assert_eq!(
            plan(
                &event("subnet.delete.end", json!({"subnet_id": SUB})),
                &settings()
            )
            .unwrap(),
            expected
        );
        assert!(
            plan_err("subnet.delete.end", json!({"subnet_id": "x"})).contains("payload.subnet_id")
        );
    }
}
