//! The live suite: the real binary against a real Nautobot (started by
//! `tests/nautobot/up.sh`, which `tests/run.sh` runs first), checking the
//! resulting Nautobot state through its REST API after every step.
//!
//! These tests are `#[ignore]`d so that a plain `cargo test` on a machine
//! without Nautobot passes; `tests/run.sh` runs them with `--include-ignored`,
//! and there a missing server is a failure, never a skip.
//!
//! Every test makes its own objects (fresh UUIDs, its own UCVNI group and
//! project) and removes them, so tests run in parallel and repeatedly.

mod common;

use common::nautobot::{Api as Nautobot, token, url, uuid};
use common::{Run, closed_port_url};
use serde_json::{Value, json};

fn random_below(n: u32) -> u32 {
    let bytes = uuid().replace('-', "");
    u32::from_str_radix(&bytes[..8], 16).unwrap() % n
}

/// One test's world: a UCVNI group and a Keystone project of its own.
struct World {
    nb: Nautobot,
    group: String,
    project: String,
    tenants: Vec<String>,
    namespaces: Vec<String>,
    prefixes: Vec<String>,
    ucvnis: Vec<String>,
}

impl World {
    fn new() -> Self {
        let nb = Nautobot::new();
        let group = nb.create_group("live");
        Self {
            nb,
            group,
            project: uuid().replace('-', ""),
            tenants: Vec::new(),
            namespaces: Vec::new(),
            prefixes: Vec::new(),
            ucvnis: Vec::new(),
        }
    }

    fn tenant_id(&self) -> String {
        let p = &self.project;
        format!(
            "{}-{}-{}-{}-{}",
            &p[0..8],
            &p[8..12],
            &p[12..16],
            &p[16..20],
            &p[20..32]
        )
    }

    /// A network payload object; `segmentation_id` None drops the provider keys.
    fn network(&mut self, name: &str, segmentation_id: Option<u32>) -> Value {
        let id = uuid();
        self.namespaces.push(id.clone());
        self.ucvnis.push(id.clone());
        let mut n = json!({"id": id, "name": name, "project_id": self.project, "tenant_id": self.project,
                           "admin_state_up": true, "status": "ACTIVE", "subnets": [], "shared": false,
                           "router:external": false, "mtu": 1450});
        if let Some(vni) = segmentation_id {
            n["provider:network_type"] = json!("vxlan");
            n["provider:physical_network"] = Value::Null;
            n["provider:segmentation_id"] = json!(vni);
        }
        n
    }

    fn subnet(&mut self, network: &Value, cidr: &str) -> Value {
        let id = uuid();
        self.prefixes.push(id.clone());
        let version = if cidr.contains(':') { 6 } else { 4 };
        json!({"id": id, "name": format!("sub-{}", &id[..4]), "network_id": network["id"], "project_id": self.project,
               "tenant_id": self.project, "ip_version": version, "cidr": cidr, "enable_dhcp": true,
               "router:external": network["router:external"]})
    }

    fn run(&self, event: &Value) -> common::Done {
        Run::against(&url())
            .env("NAUTOBOT_TOKEN", &token())
            .env("UCVNI_GROUP_NAME", &self.group)
            .env("NAUTOBOT_RETRY_BUDGET", "30")
            .env("NAUTOBOT_TIMEOUT", "20")
            .stdin(event.to_string())
            .run()
    }

    fn apply(&self, event: &Value) -> Value {
        self.run(event).expect(0).summary()
    }

    fn assert_prefix(&self, subnet: &Value, namespace: &str) {
        let id = subnet["id"].as_str().unwrap();
        let p = self
            .nb
            .prefix(id)
            .unwrap_or_else(|| panic!("prefix {id} missing"));
        assert_eq!(p["prefix"], subnet["cidr"]);
        assert_eq!(p["namespace"]["name"], namespace);
        assert_eq!(p["status"]["name"], "Active");
        assert_eq!(p["tenant"]["id"], self.tenant_id());
    }

    fn assert_network(&self, network: &Value) {
        let id = network["id"].as_str().unwrap();
        assert!(self.nb.namespace(id).is_some(), "namespace {id} missing");
        let Some(vni) = network.get("provider:segmentation_id") else {
            return;
        };
        let u = self
            .nb
            .ucvni(id)
            .unwrap_or_else(|| panic!("UCVNI {id} missing"));
        assert_eq!(u["name"], network["name"]);
        assert_eq!(&u["ucvni_id"], vni);
        assert_eq!(u["ucvni_group"]["name"], self.group);
        assert_eq!(u["status"]["name"], "Active");
        assert_eq!(u["tenant"]["id"], self.tenant_id());
    }

    fn assert_network_gone(&self, network: &Value) {
        let id = network["id"].as_str().unwrap();
        assert!(
            self.nb.namespace(id).is_none(),
            "namespace {id} left behind"
        );
        assert!(self.nb.ucvni(id).is_none(), "UCVNI {id} left behind");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let nb = &self.nb;
        if !self.prefixes.is_empty() {
            let ids: Vec<Value> = self.prefixes.iter().map(|id| json!({"id": id})).collect();
            nb.call("DELETE", "/api/ipam/prefixes/", Some(Value::Array(ids)));
        }
        for name in &self.namespaces {
            for p in nb.prefixes_in(name) {
                nb.call(
                    "DELETE",
                    &format!("/api/ipam/prefixes/{}/", p["id"].as_str().unwrap()),
                    None,
                );
            }
            if let Some(ns) = nb.namespace(name) {
                nb.call(
                    "DELETE",
                    &format!("/api/ipam/namespaces/{}/", ns["id"].as_str().unwrap()),
                    None,
                );
            }
        }
        for id in &self.ucvnis {
            nb.call(
                "DELETE",
                &format!("/api/plugins/undercloud-vni/ucvnis/{id}/"),
                None,
            );
        }
        for id in self
            .tenants
            .iter()
            .chain(std::iter::once(&self.tenant_id()))
        {
            nb.call("DELETE", &format!("/api/tenancy/tenants/{id}/"), None);
        }
        nb.delete_group(&self.group);
    }
}

/// The result of the summary's object of this kind (the summary may also
/// list a tag, a group or a tenant made on the way, first on a new Nautobot).
fn result_of<'a>(summary: &'a Value, kind: &str) -> &'a Value {
    summary["results"]
        .as_array()
        .and_then(|r| r.iter().find(|o| o["kind"] == kind))
        .map_or(&Value::Null, |o| &o["result"])
}

fn event(event_type: &str, payload: Value) -> Value {
    json!({"event_type": event_type, "payload": payload, "message_id": uuid(), "priority": "INFO",
           "publisher_id": "network.live-test", "timestamp": "2026-01-15 10:00:00.000000",
           "_context_request_id": format!("req-{}", uuid()), "_context_is_admin": true})
}

/// The three input shapes of one notification.
fn shapes(notification: &Value) -> [Value; 3] {
    let envelope = json!({"oslo.version": "2.0", "oslo.message": notification.to_string()});
    [
        notification.clone(),
        envelope.clone(),
        json!({"body": envelope, "context": {"type": "amqp"}}),
    ]
}

fn vni() -> u32 {
    1000 + random_below(15_000_000)
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn lifecycle_of_every_event_type_in_every_shape() {
    for shape in 0..3 {
        let mut w = World::new();
        let mut net = w.network("live-net", Some(vni()));
        let v4 = w.subnet(&net, "10.90.1.0/24");

        let s = w.apply(&shapes(&event("network.create.end", json!({"network": net})))[shape]);
        assert_eq!(result_of(&s, "ucvni"), "created", "{s}");
        w.assert_network(&net);
        assert!(
            w.nb.tenant(&w.tenant_id()).is_some(),
            "the unknown project became a tenant"
        );

        w.apply(&shapes(&event("subnet.create.end", json!({"subnet": v4})))[shape]);
        w.assert_prefix(&v4, net["id"].as_str().unwrap());

        net["name"] = json!("live-net-renamed");
        net["provider:segmentation_id"] = json!(vni());
        net["subnets"] = json!([v4["id"]]);
        w.apply(&shapes(&event("network.update.end", json!({"network": net})))[shape]);
        w.assert_network(&net);

        let mut v4b = v4.clone();
        v4b["name"] = json!("renamed");
        w.apply(&shapes(&event("subnet.update.end", json!({"subnet": v4b})))[shape]);
        w.assert_prefix(&v4, net["id"].as_str().unwrap());

        let s = w.apply(
            &shapes(&event(
                "subnet.delete.end",
                json!({"subnet": v4, "subnet_id": v4["id"]}),
            ))[shape],
        );
        assert_eq!(result_of(&s, "prefix"), "deleted");
        assert!(w.nb.prefix(v4["id"].as_str().unwrap()).is_none());

        net["subnets"] = json!([]);
        w.apply(
            &shapes(&event(
                "network.delete.end",
                json!({"network": net, "network_id": net["id"]}),
            ))[shape],
        );
        w.assert_network_gone(&net);
    }
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn the_same_event_twice_gives_one_object() {
    let mut w = World::new();
    let net = w.network("twice", Some(vni()));
    let sub = w.subnet(&net, "10.90.2.0/24");
    let create_net = event("network.create.end", json!({"network": net}));
    let create_sub = event("subnet.create.end", json!({"subnet": sub}));
    w.apply(&create_net);
    w.apply(&create_sub);
    let again = w.apply(&create_net);
    assert_eq!(result_of(&again, "namespace"), "unchanged");
    assert_eq!(result_of(&again, "ucvni"), "updated");
    assert_eq!(result_of(&w.apply(&create_sub), "prefix"), "updated");
    w.assert_network(&net);
    w.assert_prefix(&sub, net["id"].as_str().unwrap());
    assert_eq!(w.nb.prefixes_in(net["id"].as_str().unwrap()).len(), 1);
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn updates_of_objects_never_created_create_them() {
    let mut w = World::new();
    let net = w.network("late", Some(vni()));
    let sub = w.subnet(&net, "10.90.3.0/24");
    w.apply(&event("network.update.end", json!({"network": net})));
    w.assert_network(&net);
    let s = w.apply(&event("subnet.update.end", json!({"subnet": sub})));
    assert_eq!(result_of(&s, "prefix"), "created");
    w.assert_prefix(&sub, net["id"].as_str().unwrap());
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn a_subnet_before_its_network() {
    let mut w = World::new();
    let net = w.network("later", Some(vni()));
    let sub = w.subnet(&net, "10.90.4.0/24");
    let s = w.apply(&event("subnet.create.end", json!({"subnet": sub})));
    let kinds: Vec<&str> = s["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .filter(|k| *k != "tag")
        .collect();
    assert_eq!(kinds, ["namespace", "tenant", "prefix"], "{s}");
    w.assert_prefix(&sub, net["id"].as_str().unwrap());
    w.apply(&event("network.create.end", json!({"network": net})));
    w.assert_network(&net);
    w.assert_prefix(&sub, net["id"].as_str().unwrap());
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn a_network_deleted_with_its_prefixes_leaves_nothing() {
    let mut w = World::new();
    let mut net = w.network("doomed", Some(vni()));
    let a = w.subnet(&net, "10.90.5.0/24");
    let b = w.subnet(&net, "2001:db8:90:5::/64");
    w.apply(&event("network.create.end", json!({"network": net})));
    w.apply(&event("subnet.create.end", json!({"subnets": [a, b]})));
    assert_eq!(w.nb.prefixes_in(net["id"].as_str().unwrap()).len(), 2);
    net["subnets"] = json!([a["id"], b["id"]]);
    let s = w.apply(&event(
        "network.delete.end",
        json!({"network": net, "network_id": net["id"]}),
    ));
    assert_eq!(s["results"].as_array().unwrap().len(), 4, "{s}");
    w.assert_network_gone(&net);
    for p in [&a, &b] {
        assert!(w.nb.prefix(p["id"].as_str().unwrap()).is_none());
    }
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn deletes_of_things_already_gone() {
    let mut w = World::new();
    let net = w.network("ghost", Some(vni()));
    let sub = w.subnet(&net, "10.90.6.0/24");
    let s = w.apply(&event("subnet.delete.end", json!({"subnet_id": sub["id"]})));
    assert_eq!(result_of(&s, "prefix"), "absent");
    let s = w.apply(&event(
        "network.delete.end",
        json!({"network_id": net["id"]}),
    ));
    assert_eq!(
        s["results"],
        json!([
            {"kind": "namespace", "name": net["id"], "result": "absent"},
            {"kind": "ucvni", "id": net["id"], "result": "absent"},
        ])
    );
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn external_subnets_land_in_global_and_leave_with_their_network() {
    let mut w = World::new();
    let mut net = w.network("public", None);
    net["router:external"] = json!(true);
    net["provider:network_type"] = json!("flat");
    net["provider:physical_network"] = json!("physnet1");
    net["provider:segmentation_id"] = Value::Null;
    // A random /29 keeps parallel runs apart in the shared namespace.
    let cidr = format!("198.18.{}.{}/29", random_below(256), random_below(32) * 8);
    let sub = w.subnet(&net, &cidr);
    let s = w.apply(&event("network.create.end", json!({"network": net})));
    assert_eq!(result_of(&s, "ucvni"), "skipped");
    assert!(w.nb.ucvni(net["id"].as_str().unwrap()).is_none());
    w.apply(&event("subnet.create.end", json!({"subnet": sub})));
    w.assert_prefix(&sub, "Global");
    // Neutron deletes the subnet with the network and sends no subnet event.
    net["subnets"] = json!([sub["id"]]);
    w.apply(&event(
        "network.delete.end",
        json!({"network": net, "network_id": net["id"]}),
    ));
    assert!(
        w.nb.prefix(sub["id"].as_str().unwrap()).is_none(),
        "external prefix left in Global"
    );
    w.assert_network_gone(&net);
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn bulk_creates_and_ipv6() {
    let mut w = World::new();
    let a = w.network("bulk-a", Some(vni()));
    let b = w.network("bulk-b", Some(vni()));
    w.apply(&event("network.create.end", json!({"networks": [a, b]})));
    w.assert_network(&a);
    w.assert_network(&b);
    let s1 = w.subnet(&a, "10.90.7.0/24");
    let s2 = w.subnet(&a, "2001:db8:90:7::/64");
    let s = w.apply(&event("subnet.create.end", json!({"subnets": [s1, s2]})));
    assert_eq!(s["results"].as_array().unwrap().len(), 2);
    w.assert_prefix(&s1, a["id"].as_str().unwrap());
    w.assert_prefix(&s2, a["id"].as_str().unwrap());
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn a_network_without_provider_keys_gets_a_namespace_only() {
    let mut w = World::new();
    let net = w.network("member-net", None);
    let s = w
        .run(&event("network.create.end", json!({"network": net})))
        .expect(0)
        .summary();
    assert_eq!(result_of(&s, "ucvni"), "skipped");
    assert!(w.nb.namespace(net["id"].as_str().unwrap()).is_some());
    assert!(w.nb.ucvni(net["id"].as_str().unwrap()).is_none());
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn an_unknown_project_waits_when_tenant_creation_is_off() {
    let mut w = World::new();
    let net = w.network("no-tenant", Some(vni()));
    let sub = w.subnet(&net, "10.90.8.0/24");
    let e = event("subnet.create.end", json!({"subnet": sub}));
    let out = Run::against(&url())
        .env("NAUTOBOT_TOKEN", &token())
        .args(["--no-create-tenants"])
        .stdin(e.to_string())
        .run()
        .expect(75);
    assert!(out.stderr().contains(&w.tenant_id()));
    assert!(w.nb.prefix(sub["id"].as_str().unwrap()).is_none());
    assert!(w.nb.tenant(&w.tenant_id()).is_none());
    // The project reaches Nautobot by its own path; the retry then succeeds.
    w.nb.create(
        "/api/tenancy/tenants/",
        json!({"id": w.tenant_id(), "name": format!("project {}", w.project)}),
    );
    Run::against(&url())
        .env("NAUTOBOT_TOKEN", &token())
        .args(["--no-create-tenants"])
        .stdin(e.to_string())
        .run()
        .expect(0);
    w.assert_prefix(&sub, net["id"].as_str().unwrap());
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn a_segmentation_id_conflict_exits_8_and_leaves_the_holder_alone() {
    let mut w = World::new();
    let shared_vni = vni();
    let first = w.network("holder", Some(shared_vni));
    let second = w.network("intruder", Some(shared_vni));
    w.apply(&event("network.create.end", json!({"network": first})));
    let before = w.nb.ucvni(first["id"].as_str().unwrap()).unwrap();
    for event_type in ["network.create.end", "network.update.end"] {
        let out = w
            .run(&event(event_type, json!({"network": second})))
            .expect(8);
        let err = out.stderr();
        for needle in [
            shared_vni.to_string(),
            w.group.clone(),
            first["id"].as_str().unwrap().into(),
            second["id"].as_str().unwrap().into(),
        ] {
            assert!(err.contains(&needle), "{err} lacks {needle}");
        }
    }
    let after = w.nb.ucvni(first["id"].as_str().unwrap()).unwrap();
    assert_eq!(before, after, "the holder is untouched");
    assert!(w.nb.ucvni(second["id"].as_str().unwrap()).is_none());
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn eight_concurrent_subnet_creates_give_one_prefix() {
    let mut w = World::new();
    let net = w.network("crowd", Some(vni()));
    let sub = w.subnet(&net, "10.90.9.0/24");
    let e = event("subnet.create.end", json!({"subnet": sub}));
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let (e, group) = (e.clone(), w.group.clone());
            std::thread::spawn(move || {
                Run::against(&url())
                    .env("NAUTOBOT_TOKEN", &token())
                    .env("UCVNI_GROUP_NAME", &group)
                    .env("NAUTOBOT_RETRY_BUDGET", "30")
                    .env("NAUTOBOT_TIMEOUT", "20")
                    .stdin(e.to_string())
                    .run()
            })
        })
        .collect();
    for run in runs {
        run.join().unwrap().expect(0);
    }
    assert_eq!(w.nb.prefixes_in(net["id"].as_str().unwrap()).len(), 1);
    w.assert_prefix(&sub, net["id"].as_str().unwrap());
}

#[test]
#[ignore = "needs a live Nautobot: run tests/run.sh"]
fn a_wrong_token_exits_7_and_an_unreachable_server_75() {
    let mut w = World::new();
    let net = w.network("denied", Some(vni()));
    let e = event("network.create.end", json!({"network": net}));
    let out = Run::against(&url())
        .env("NAUTOBOT_TOKEN", "0000000000000000000000000000000000000000")
        .stdin(e.to_string())
        .run()
        .expect(7);
    assert!(out.stderr().contains("403"), "{}", out.stderr());
    assert!(w.nb.namespace(net["id"].as_str().unwrap()).is_none());

    let out = Run::against(&closed_port_url())
        .env("NAUTOBOT_ATTEMPTS", "2")
        .stdin(e.to_string())
        .run()
        .expect(75);
    assert!(
        out.stderr().contains("gave up after 2 attempt(s)"),
        "{}",
        out.stderr()
    );
}
