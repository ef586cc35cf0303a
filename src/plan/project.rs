//! Keystone project events: a tenant per project. The payload names the
//! project only (CADF: `target.id`; basic: `resource_info`); what the tenant
//! holds is read from Keystone (see [`tenant_step`]). Without credentials an
//! event can only make sure a tenant exists, named by the project id.

use serde_json::Value;

use super::Settings;
use crate::error::Error;
use crate::event::{Fields, canonical_uuid};
use crate::model::{Kind, Object, Ref, Step, Tenant};

/// The project an identity event names, as a tenant id; None when the id is
/// not a project's UUID (the Default domain's "default": domains also send
/// `identity.project.updated`).
pub fn project_id(payload: &Value) -> Result<Option<String>, Error> {
    let fields = Fields::new("payload", payload)?;
    let raw = match (fields.get("target"), fields.get("resource_info")) {
        (Some(target), _) => Fields::new("payload.target", target)?.string("id")?,
        (None, Some(_)) => fields.string("resource_info")?,
        (None, None) => {
            return Err(Error::input(
                "payload: neither \"target\" (CADF) nor \"resource_info\" (basic) names the project",
            ));
        }
    };
    Ok(canonical_uuid(raw))
}

pub fn upsert(payload: &Value, settings: &Settings) -> Result<Vec<Step>, Error> {
    Ok(match project_id(payload)? {
        Some(id) => vec![Step::Put(Object::Tenant(Tenant::placeholder(
            &id,
            settings.tags(),
        )))],
        None => vec![not_a_project(payload)],
    })
}

pub fn delete(payload: &Value) -> Result<Vec<Step>, Error> {
    Ok(match project_id(payload)? {
        Some(id) => vec![Step::Remove {
            kind: Kind::Tenant,
            id,
        }],
        None => vec![not_a_project(payload)],
    })
}

fn not_a_project(payload: &Value) -> Step {
    let raw = payload["target"]["id"]
        .as_str()
        .or(payload["resource_info"].as_str())
        .unwrap_or_default();
    Step::Skip {
        kind: Kind::Tenant,
        id: crate::error::clip(raw, 64),
        reason: "not a project id (a domain's event)".into(),
    }
}

/// The tenant's name: the project's own in the Default domain; in any other
/// domain `<domain>/<project>`, since Nautobot wants tenant names unique and
/// Keystone only within a domain. Deterministic: the same project always
/// gets the same name, whatever order events come in.
pub fn tenant_name(project: &str, domain_id: &str, domain: &str) -> String {
    if domain_id == "default" {
        project.to_owned()
    } else {
        format!("{domain}/{project}")
    }
}

/// The tenant of one Keystone project as Keystone shows it (`domain_name`
/// added by the caller), or why there is none (a domain is no project).
pub fn tenant_step(path: &str, project: &Value, settings: &Settings) -> Result<Step, Error> {
    let fields = Fields::new(path, project)?;
    let id = fields.uuid("id")?;
    if fields.flag("is_domain")? {
        return Ok(Step::Skip {
            kind: Kind::Tenant,
            id,
            reason: "a domain, not a project".into(),
        });
    }
    let name = fields.name("name")?;
    let domain_id = fields.string("domain_id")?;
    let domain = match fields.get("domain_name") {
        Some(_) => fields.name("domain_name")?,
        None => domain_id,
    };
    Ok(Step::Put(Object::Tenant(Tenant {
        id,
        name: tenant_name(name, domain_id, domain),
        description: fields.name("description")?.to_owned(),
        group: Some(Ref::named(domain)),
        tags: settings.tags(),
        placeholder: false,
    })))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{event, settings};
    use super::super::{Family, from_current, lookup, plan};
    use super::*;
    use crate::model::FirstTry;
    use serde_json::json;

    const PROJECT: &str = "603e0c6d603440738239cac121f97777";
    const TENANT: &str = "603e0c6d-6034-4073-8239-cac121f97777";

    #[test]
    fn both_notification_formats_name_the_project() {
        let cadf = json!({"typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event",
                          "target": {"id": PROJECT, "typeURI": "data/security/project"},
                          "resource_info": PROJECT});
        let basic = json!({"resource_info": PROJECT, "request_id": "req-1"});
        for payload in [cadf, basic] {
            let p = plan(
                &event("identity.project.created", payload.clone()),
                &settings(),
            )
            .unwrap();
            assert_eq!(p.first, FirstTry::Create);
            assert!(
                matches!(&p.steps[0], Step::Put(Object::Tenant(t)) if t.id == TENANT && t.placeholder)
            );
            let gone = plan(&event("identity.project.deleted", payload), &settings()).unwrap();
            assert_eq!(
                gone.steps,
                [Step::Remove {
                    kind: Kind::Tenant,
                    id: TENANT.into()
                }]
            );
        }
    }

    #[test]
    fn the_default_domain_is_not_a_project() {
        let p = plan(
            &event(
                "identity.project.updated",
                json!({"resource_info": "default"}),
            ),
            &settings(),
        )
        .unwrap();
        assert!(matches!(&p.steps[0], Step::Skip { .. }));
    }

    #[test]
    fn names_are_unique_across_domains() {
        assert_eq!(tenant_name("web", "default", "Default"), "web");
        assert_eq!(tenant_name("web", "c537c97c", "acme"), "acme/web");
    }

    #[test]
    fn keystone_says_what_the_tenant_holds() {
        let e = event(
            "identity.project.updated",
            json!({"resource_info": PROJECT}),
        );
        let l = lookup(&e).unwrap().unwrap();
        assert_eq!(
            (l.family, l.ids.as_slice()),
            (Family::Project, [TENANT.to_owned()].as_slice())
        );
        let project = json!({"id": PROJECT, "name": "web", "domain_id": "c537c97c6aa44e2aa3a6c742782f5ed6",
                             "domain_name": "acme", "description": "the web team", "is_domain": false});
        let p = from_current(&l, &[project], FirstTry::Update, &settings()).unwrap();
        let Step::Put(Object::Tenant(t)) = &p.steps[0] else {
            panic!("{p:?}")
        };
        assert_eq!(
            (t.name.as_str(), t.description.as_str()),
            ("acme/web", "the web team")
        );
        assert_eq!(t.group, Some(Ref::named("acme")));
        assert!(!t.placeholder);
        // Keystone no longer has it: its tenant goes.
        let p = from_current(&l, &[], FirstTry::Update, &settings()).unwrap();
        assert!(matches!(
            p.steps[0],
            Step::Remove {
                kind: Kind::Tenant,
                ..
            }
        ));
        // A domain's project.updated.
        let domain =
            json!({"id": PROJECT, "name": "acme", "domain_id": "default", "is_domain": true});
        let p = from_current(&l, &[domain], FirstTry::Update, &settings()).unwrap();
        assert!(matches!(p.steps[0], Step::Skip { .. }));
    }
}
