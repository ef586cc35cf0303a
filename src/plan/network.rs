//! Network events: a namespace per network, and a UCVNI for overlay networks.

use serde_json::Value;

use super::{Settings, active, elements};
use crate::error::Error;
use crate::event::Fields;
use crate::model::{Kind, Namespace, Object, Step, Ucvni};

/// Network types whose segmentation id is not a VXLAN/Geneve VNI: a VLAN id
/// or nothing at all. They get a namespace but no UCVNI.
const NOT_OVERLAY: [&str; 3] = ["vlan", "flat", "local"];

pub fn upsert(
    payload: &Value,
    settings: &Settings,
    warnings: &mut Vec<String>,
) -> Result<Vec<Step>, Error> {
    let mut steps = Vec::new();
    for (path, value) in elements(payload, "network", "networks")? {
        steps.extend(network_steps(&path, value, settings, warnings)?);
    }
    Ok(steps)
}

/// What Nautobot holds for one Neutron network (an event's, or one Neutron
/// lists): its namespace, then its UCVNI or why it has none.
pub fn network_steps(
    path: &str,
    value: &Value,
    settings: &Settings,
    warnings: &mut Vec<String>,
) -> Result<[Step; 2], Error> {
    let fields = Fields::new(path, value)?;
    let id = fields.uuid("id")?;
    let name = fields.name("name")?;
    let tenant = fields.project()?;
    let segmentation_id = fields.positive("provider:segmentation_id")?;
    let network_type = match fields.get("provider:network_type") {
        None => None,
        Some(_) => Some(fields.string("provider:network_type")?),
    };
    let namespace = Step::Put(Object::Namespace(Namespace {
        name: id.clone(),
        tags: settings.tags(),
    }));
    let ucvni = match (segmentation_id, network_type) {
        (None, _) => Step::Skip {
            kind: Kind::Ucvni,
            id,
            reason: "no provider:segmentation_id (non-admin request or no segment)".into(),
        },
        (Some(_), Some(t)) if NOT_OVERLAY.contains(&t) => Step::Skip {
            kind: Kind::Ucvni,
            id,
            reason: format!("{t} network: its segmentation id is not a VNI"),
        },
        (Some(vni), _) => Step::Put(Object::Ucvni(Ucvni {
            // Neutron allows unnamed networks; Nautobot needs a name.
            name: if name.is_empty() {
                id.clone()
            } else {
                name.to_owned()
            },
            id,
            vni,
            group: settings.group(warnings),
            tenant: Some(tenant),
            status: active(),
            // UCVNIs belong to the tool through its group, not a tag.
            tags: Vec::new(),
        })),
    };
    Ok([namespace, ucvni])
}

pub fn delete(payload: &Value) -> Result<Vec<Step>, Error> {
    let fields = Fields::new("payload", payload)?;
    let (id, subnets) = match fields.get("network") {
        Some(network) => {
            let network = Fields::new("payload.network", network)?;
            // Neutron deletes a network's subnets with it and sends no subnet
            // events for them: their prefixes go here too, wherever they live.
            (network.uuid("id")?, network.uuid_list("subnets")?)
        }
        None if fields.get("network_id").is_some() => (fields.uuid("network_id")?, Vec::new()),
        None => {
            return Err(Error::input(
                "payload: neither \"network\" nor \"network_id\" is present",
            ));
        }
    };
    Ok(removal(id, subnets).to_vec())
}

/// What goes when a network goes: its namespace with every prefix in it and
/// the prefixes of the subnets it listed (wherever they live), then its UCVNI.
pub fn removal(id: String, subnets: Vec<String>) -> [Step; 2] {
    [
        Step::RemoveNamespace {
            name: id.clone(),
            prefixes: subnets,
        },
        Step::Remove {
            kind: Kind::Ucvni,
            id,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::{event, merged, plan_err, settings};
    use super::super::{NO_GROUP, plan};
    use crate::model::{FirstTry, Kind, Namespace, Object, Ref, Step, Ucvni};
    use serde_json::{Value, json};

    const NET: &str = "5b0e4c3e-7f36-4a0c-8a51-0c8f2b7d9a11";
    const PROJECT: &str = "0f3a9d2c1b7e4e56a8d9c0b1a2e3f405";

    fn network(extra: Value) -> Value {
        let base = json!({"id": NET, "name": "blue", "project_id": PROJECT,
                          "provider:network_type": "vxlan", "provider:segmentation_id": 4242,
                          "router:external": false, "subnets": []});
        merged(base, extra)
    }

    fn steps(event_type: &str, network: Value) -> Vec<Step> {
        plan(
            &event(event_type, json!({ "network": network })),
            &settings(),
        )
        .unwrap()
        .steps
    }

    fn ucvni_of(step: &Step) -> &Ucvni {
        match step {
            Step::Put(Object::Ucvni(u)) => u,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_writes_namespace_then_ucvni() {
        let plan = plan(
            &event("network.create.end", json!({"network": network(json!({}))})),
            &settings(),
        )
        .unwrap();
        assert_eq!(plan.first, FirstTry::Create);
        assert_eq!(
            plan.steps,
            vec![
                Step::Put(Object::Namespace(Namespace {
                    name: NET.into(),
                    tags: vec![]
                })),
                Step::Put(Object::Ucvni(Ucvni {
                    id: NET.into(),
                    name: "blue".into(),
                    vni: 4242,
                    group: Some(Ref::named("undercloud")),
                    tenant: Some("0f3a9d2c-1b7e-4e56-a8d9-c0b1a2e3f405".into()),
                    status: Ref::named("Active"),
                    tags: vec![],
                })),
            ]
        );
        assert!(plan.warnings.is_empty());
    }

    #[test]
    fn update_tries_patch_first() {
        let plan = plan(
            &event("network.update.end", json!({"network": network(json!({}))})),
            &settings(),
        )
        .unwrap();
        assert_eq!(plan.first, FirstTry::Update);
    }

    #[test]
    fn no_segmentation_id_skips_the_ucvni() {
        let mut member = network(json!({}));
        for key in ["provider:network_type", "provider:segmentation_id"] {
            member.as_object_mut().unwrap().remove(key);
        }
        for n in [
            member,
            network(json!({"provider:network_type": "flat", "provider:segmentation_id": null})),
            network(json!({"provider:network_type": "vlan", "provider:segmentation_id": 101})),
        ] {
            let steps = steps("network.create.end", n);
            assert!(matches!(steps[0], Step::Put(Object::Namespace(_))));
            assert!(
                matches!(
                    &steps[1],
                    Step::Skip {
                        kind: Kind::Ucvni,
                        ..
                    }
                ),
                "{steps:?}"
            );
        }
    }

    #[test]
    fn without_a_group_the_plan_shows_it_unset_and_warns() {
        let mut s = settings();
        s.ucvni_group = Some("  ".into());
        let flat =
            network(json!({"provider:network_type": "flat", "provider:segmentation_id": null}));
        let quiet = plan(&event("network.create.end", json!({"network": flat})), &s).unwrap();
        assert!(quiet.warnings.is_empty(), "nothing needs the group");
        let two = json!({"networks": [network(json!({})), network(json!({"id": "6c1f5d4f-8047-4b1d-9b62-1d903c8e0b22"}))]});
        let plan = plan(&event("network.create.end", two), &s).unwrap();
        assert_eq!(ucvni_of(&plan.steps[1]).group, None);
        assert_eq!(
            plan.warnings,
            [NO_GROUP],
            "one warning, not one per network"
        );
    }

    #[test]
    fn unnamed_network_uses_its_id() {
        let steps = steps("network.create.end", network(json!({"name": ""})));
        assert_eq!(ucvni_of(&steps[1]).name, NET);
    }

    #[test]
    fn bulk_create_plans_every_network() {
        let other = "6c1f5d4f-8047-4b1d-9b62-1d903c8e0b22";
        let payload = json!({"networks": [network(json!({})), network(json!({"id": other, "provider:segmentation_id": 7}))]});
        let steps = plan(&event("network.create.end", payload), &settings())
            .unwrap()
            .steps;
        assert_eq!(steps.len(), 4);
        assert_eq!(
            steps[2],
            Step::Put(Object::Namespace(Namespace {
                name: other.into(),
                tags: vec![]
            }))
        );
        assert_eq!(ucvni_of(&steps[3]).vni, 7);
    }

    #[test]
    fn invalid_fields_are_named() {
        assert!(
            plan_err(
                "network.create.end",
                json!({"network": network(json!({"id": "nope"}))})
            )
            .contains("payload.network.id: \"nope\" is not a UUID")
        );
        assert!(plan_err("network.create.end", json!({"networks": [network(json!({})), network(json!({"provider:segmentation_id": "12"}))]}))
            .contains("payload.networks[1].provider:segmentation_id: expected an integer"));
        assert!(
            plan_err(
                "network.create.end",
                json!({"network": network(json!({"project_id": "demo"}))})
            )
            .contains("payload.network.project_id")
        );
        assert!(
            plan_err(
                "network.create.end",
                json!({"network": network(json!({"provider:segmentation_id": 0}))})
            )
            .contains("not a positive")
        );
    }

    #[test]
    fn delete_removes_prefixes_namespace_then_ucvni() {
        let sub = "d2c4a6e8-0b1d-4f3a-9c5e-7a9b1c3d5e7f";
        let payload = json!({"network": network(json!({"subnets": [sub]})), "network_id": NET});
        assert_eq!(
            plan(&event("network.delete.end", payload), &settings())
                .unwrap()
                .steps,
            vec![
                Step::RemoveNamespace {
                    name: NET.into(),
                    prefixes: vec![sub.into()]
                },
                Step::Remove {
                    kind: Kind::Ucvni,
                    id: NET.into()
                },
            ]
        );
        let by_id = plan(
            &event("network.delete.end", json!({"network_id": NET})),
            &settings(),
        )
        .unwrap();
        assert_eq!(by_id.steps.len(), 2);
        assert!(
            plan_err("network.delete.end", json!({}))
                .contains("neither \"network\" nor \"network_id\"")
        );
    }
}
