//! Network events: a namespace per network, and a UCVNI for overlay networks.

use serde_json::{Value, json};

use super::{Change, FirstTry, Kind, Settings, active, elements, require_group};
use crate::event::{Fields, InputError};

/// Network types whose segmentation id is not a VXLAN/Geneve VNI: a VLAN id
/// or nothing at all. They get a namespace but no UCVNI.
const NOT_OVERLAY: [&str; 3] = ["vlan", "flat", "local"];

pub fn upsert(
    payload: &Value,
    settings: &Settings,
    first: FirstTry,
) -> anyhow::Result<Vec<Change>> {
    let mut changes = Vec::new();
    for (path, value) in elements(payload, "network", "networks")? {
        let fields = Fields::new(&path, value)?;
        let id = fields.uuid("id")?;
        let name = fields.name("name")?;
        let tenant = fields.project()?;
        let segmentation_id = fields.positive("provider:segmentation_id")?;
        let network_type = match fields.get("provider:network_type") {
            None => None,
            Some(_) => Some(fields.string("provider:network_type")?),
        };
        changes.push(Change::EnsureNamespace {
            kind: Kind::Namespace,
            name: id.clone(),
        });
        let ucvni = match (segmentation_id, network_type) {
            (None, _) => Err(
                "no provider:segmentation_id in the event (non-admin request or no segment)"
                    .to_owned(),
            ),
            (Some(_), Some(t)) if NOT_OVERLAY.contains(&t) => {
                Err(format!("{t} network: its segmentation id is not a VNI"))
            }
            (Some(vni), _) => Ok(vni),
        };
        changes.push(match ucvni {
            Ok(vni) => Change::Write {
                kind: Kind::Ucvni,
                id: id.clone(),
                first,
                body: json!({
                    "id": id,
                    // Neutron allows unnamed networks; Nautobot needs a name.
                    "name": if name.is_empty() { id.as_str() } else { name },
                    "status": active(),
                    "tenant": {"id": tenant.id},
                    "ucvni_group": {"name": require_group(settings)?},
                    "ucvni_id": vni,
                }),
                namespace: None,
                tenant,
            },
            Err(reason) => Change::Skip {
                kind: Kind::Ucvni,
                id,
                reason,
            },
        });
    }
    Ok(changes)
}

pub fn delete(payload: &Value) -> anyhow::Result<Vec<Change>> {
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
            return Err(InputError::new(
                "payload: neither \"network\" nor \"network_id\" is present",
            )
            .into());
        }
    };
    Ok(vec![
        Change::DeleteNamespace {
            kind: Kind::Namespace,
            name: id.clone(),
            prefixes: subnets,
        },
        Change::Delete {
            kind: Kind::Ucvni,
            id,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::super::tests::{event, merged, plan_err, settings};
    use super::super::{Change, FirstTry, Kind, plan};
    use serde_json::{Value, json};

    const NET: &str = "5b0e4c3e-7f36-4a0c-8a51-0c8f2b7d9a11";
    const PROJECT: &str = "0f3a9d2c1b7e4e56a8d9c0b1a2e3f405";

    fn network(extra: Value) -> Value {
        let base = json!({"id": NET, "name": "blue", "project_id": PROJECT,
                          "provider:network_type": "vxlan", "provider:segmentation_id": 4242,
                          "router:external": false, "subnets": []});
        merged(base, extra)
    }

    #[test]
    fn create_writes_namespace_then_ucvni() {
        let changes = plan(
            &event("network.create.end", json!({"network": network(json!({}))})),
            &settings(),
        )
        .unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(
            changes[0],
            Change::EnsureNamespace {
                kind: Kind::Namespace,
                name: NET.into()
            }
        );
        let Change::Write {
            kind,
            id,
            first,
            body,
            tenant,
            namespace,
        } = &changes[1]
        else {
            panic!("{changes:?}")
        };
        assert_eq!(
            (*kind, id.as_str(), *first),
            (Kind::Ucvni, NET, FirstTry::Create)
        );
        assert_eq!(namespace, &None);
        assert_eq!(tenant.id, "0f3a9d2c-1b7e-4e56-a8d9-c0b1a2e3f405");
        assert_eq!(tenant.name, PROJECT);
        assert_eq!(
            body,
            &json!({"id": NET, "name": "blue", "status": {"name": "Active"},
            "tenant": {"id": "0f3a9d2c-1b7e-4e56-a8d9-c0b1a2e3f405"},
            "ucvni_group": {"name": "undercloud"}, "ucvni_id": 4242})
        );
    }

    #[test]
    fn update_tries_patch_first() {
        let changes = plan(
            &event("network.update.end", json!({"network": network(json!({}))})),
            &settings(),
        )
        .unwrap();
        assert!(matches!(
            changes[1],
            Change::Write {
                first: FirstTry::Update,
                ..
            }
        ));
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
            let changes = plan(
                &event("network.create.end", json!({"network": n})),
                &settings(),
            )
            .unwrap();
            assert!(matches!(changes[0], Change::EnsureNamespace { .. }));
            assert!(
                matches!(
                    &changes[1],
                    Change::Skip {
                        kind: Kind::Ucvni,
                        ..
                    }
                ),
                "{changes:?}"
            );
        }
    }

    #[test]
    fn skipping_needs_no_group() {
        let mut s = settings();
        s.ucvni_group = None;
        let flat =
            network(json!({"provider:network_type": "flat", "provider:segmentation_id": null}));
        assert!(plan(&event("network.create.end", json!({"network": flat})), &s).is_ok());
        let err = plan(
            &event("network.create.end", json!({"network": network(json!({}))})),
            &s,
        )
        .unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::CONFIG);
    }

    #[test]
    fn unnamed_network_uses_its_id() {
        let changes = plan(
            &event(
                "network.create.end",
                json!({"network": network(json!({"name": ""}))}),
            ),
            &settings(),
        )
        .unwrap();
        let Change::Write { body, .. } = &changes[1] else {
            panic!()
        };
        assert_eq!(body["name"], NET);
    }

    #[test]
    fn bulk_create_plans_every_network() {
        let other = "6c1f5d4f-8047-4b1d-9b62-1d903c8e0b22";
        let payload = json!({"networks": [network(json!({})), network(json!({"id": other, "provider:segmentation_id": 7}))]});
        let changes = plan(&event("network.create.end", payload), &settings()).unwrap();
        assert_eq!(changes.len(), 4);
        assert_eq!(
            changes[2],
            Change::EnsureNamespace {
                kind: Kind::Namespace,
                name: other.into()
            }
        );
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
        let changes = plan(&event("network.delete.end", payload), &settings()).unwrap();
        assert_eq!(
            changes,
            vec![
                Change::DeleteNamespace {
                    kind: Kind::Namespace,
                    name: NET.into(),
                    prefixes: vec![sub.into()]
                },
                Change::Delete {
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
        assert_eq!(by_id.len(), 2);
        assert!(
            plan_err("network.delete.end", json!({}))
                .contains("neither \"network\" nor \"network_id\"")
        );
    }
}
