//! Subnet events: one prefix per subnet, in its network's namespace.

use serde_json::Value;

use super::{Settings, active, elements};
use crate::error::Error;
use crate::event::{Fields, check_cidr};
use crate::model::{Kind, Object, Prefix, Ref, Step, canonical_cidr};

pub fn upsert(payload: &Value, settings: &Settings) -> Result<Vec<Step>, Error> {
    elements(payload, "subnet", "subnets")?
        .into_iter()
        .map(|(path, value)| subnet_step(&path, value, settings))
        .collect()
}

/// The prefix of one Neutron subnet (an event's, or one Neutron lists).
pub fn subnet_step(path: &str, value: &Value, settings: &Settings) -> Result<Step, Error> {
    let fields = Fields::new(path, value)?;
    let id = fields.uuid("id")?;
    let network_id = fields.uuid("network_id")?;
    let tenant = fields.project()?;
    let ip_version = fields.positive("ip_version")?;
    if ip_version.is_some_and(|v| v != 4 && v != 6) {
        return Err(Error::input(format!("{path}.ip_version: must be 4 or 6")));
    }
    let cidr = fields.string("cidr")?;
    check_cidr(cidr, ip_version).map_err(|e| Error::input(format!("{path}.cidr: {e}")))?;
    // External networks share the provider's address space: their prefixes
    // live in the global namespace, not in a per-network one.
    let namespace = if fields.flag("router:external")? {
        settings.global_namespace.clone()
    } else {
        network_id
    };
    Ok(Step::Put(Object::Prefix(Prefix {
        id,
        prefix: canonical_cidr(cidr).unwrap_or_else(|| cidr.to_owned()),
        namespace: Ref::named(namespace),
        tenant: Some(tenant),
        status: active(),
        tags: settings.tags(),
    })))
}

pub fn delete(payload: &Value) -> Result<Vec<Step>, Error> {
    let fields = Fields::new("payload", payload)?;
    let id = match fields.get("subnet") {
        Some(subnet) => Fields::new("payload.subnet", subnet)?.uuid("id")?,
        None if fields.get("subnet_id").is_some() => fields.uuid("subnet_id")?,
        None => {
            return Err(Error::input(
                "payload: neither \"subnet\" nor \"subnet_id\" is present",
            ));
        }
    };
    Ok(vec![Step::Remove {
        kind: Kind::Prefix,
        id,
    }])
}

#[cfg(test)]
mod tests {
    use super::super::plan;
    use super::super::tests::{event, merged, plan_err, settings};
    use crate::model::{FirstTry, Kind, Object, Prefix, Ref, Step};
    use serde_json::{Value, json};

    const SUB: &str = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a";
    const NET: &str = "5b0e4c3e-7f36-4a0c-8a51-0c8f2b7d9a11";

    fn subnet(extra: Value) -> Value {
        let base = json!({"id": SUB, "network_id": NET, "name": "blue-v4", "ip_version": 4,
                          "cidr": "10.10.0.0/24", "project_id": "0f3a9d2c1b7e4e56a8d9c0b1a2e3f405",
                          "router:external": false});
        merged(base, extra)
    }

    fn prefix_of(step: &Step) -> &Prefix {
        match step {
            Step::Put(Object::Prefix(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_writes_a_prefix_in_the_network_namespace() {
        let plan = plan(
            &event("subnet.create.end", json!({"subnet": subnet(json!({}))})),
            &settings(),
        )
        .unwrap();
        assert_eq!(plan.first, FirstTry::Create);
        assert_eq!(
            prefix_of(&plan.steps[0]),
            &Prefix {
                id: SUB.into(),
                prefix: "10.10.0.0/24".into(),
                namespace: Ref::named(NET),
                tenant: Some("0f3a9d2c-1b7e-4e56-a8d9-c0b1a2e3f405".into()),
                status: Ref::named("Active"),
                tags: vec![],
            }
        );
    }

    #[test]
    fn external_subnet_goes_to_the_global_namespace() {
        let mut s = settings();
        s.global_namespace = "Provider".into();
        s.tag = Some("mine".into());
        let plan = plan(
            &event(
                "subnet.update.end",
                json!({"subnet": subnet(json!({"router:external": true}))}),
            ),
            &s,
        )
        .unwrap();
        assert_eq!(plan.first, FirstTry::Update);
        let prefix = prefix_of(&plan.steps[0]);
        assert_eq!(prefix.namespace, Ref::named("Provider"));
        assert_eq!(prefix.tags, [Ref::named("mine")]);
    }

    #[test]
    fn ipv6_and_bulk_in_canonical_form() {
        let second = "1a2b3c4d-5e6f-4a0b-8c1d-2e3f4a5b6c7d";
        let payload = json!({"subnets": [subnet(json!({})),
            subnet(json!({"id": second, "ip_version": 6, "cidr": "2001:DB8:10:0::/64"}))]});
        let plan = plan(&event("subnet.create.end", payload), &settings()).unwrap();
        assert_eq!(plan.steps.len(), 2);
        assert_eq!(prefix_of(&plan.steps[1]).prefix, "2001:db8:10::/64");
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
        let expected = vec![Step::Remove {
            kind: Kind::Prefix,
            id: SUB.into(),
        }];
        let by_object = json!({"subnet": subnet(json!({})), "subnet_id": SUB});
        assert_eq!(
            plan(&event("subnet.delete.end", by_object), &settings())
                .unwrap()
                .steps,
            expected
        );
        assert_eq!(
            plan(
                &event("subnet.delete.end", json!({"subnet_id": SUB})),
                &settings()
            )
            .unwrap()
            .steps,
            expected
        );
        assert!(
            plan_err("subnet.delete.end", json!({"subnet_id": "x"})).contains("payload.subnet_id")
        );
    }
}
