//! Fuzz target: any bytes through oslo-nautobot's decoder and planner, the
//! code that stands between an untrusted message and Nautobot's REST API.
//!
//! Beyond "never panics", it checks what the binary relies on:
//! - a refusal is an input error (exit 5) or an unhandled event type (exit 6),
//!   never an internal error, and an input error is one short line;
//! - an accepted input plans only changes whose ids are canonical UUIDs (they
//!   become URL path segments) and which serialise for `--dry-run`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oslo_nautobot::error::{INPUT, NO_HANDLER, exit_code};
use oslo_nautobot::event::canonical_uuid;
use oslo_nautobot::mirror::decode_and_plan;
use oslo_nautobot::model::{Object, Step};
use oslo_nautobot::plan::Settings;

const GLOBAL: &str = "Global";

fuzz_target!(|data: &[u8]| {
    let settings = Settings {
        ucvni_group: Some("fuzz-group".to_owned()),
        global_namespace: GLOBAL.to_owned(),
        tag: Some("fuzz-tag".to_owned()),
    };
    match decode_and_plan(data, &settings) {
        Err(err) => {
            let code = exit_code(&err);
            let message = format!("{err:#}");
            assert!(
                code == INPUT || code == NO_HANDLER,
                "exit {code} for {message}"
            );
            assert!(!message.contains('\n'), "a multi-line message: {message:?}");
            if code == INPUT {
                assert!(
                    message.chars().count() <= 1024,
                    "an input error of {} characters",
                    message.chars().count()
                );
            }
        }
        Ok((_notification, plan)) => {
            for step in &plan.steps {
                check(step);
                serde_json::to_string(&step.to_json()).expect("a step serialises");
            }
        }
    }
});

fn is_canonical(id: &str) -> bool {
    canonical_uuid(id).as_deref() == Some(id)
}

fn check(step: &Step) {
    match step {
        Step::Put(Object::Namespace(n)) => assert!(is_canonical(&n.name), "namespace {:?}", n.name),
        Step::Put(object) => {
            let id = object.id().unwrap_or_default();
            assert!(is_canonical(id), "write of {id:?}");
            if let Some(tenant) = object.tenant() {
                assert!(is_canonical(tenant), "tenant {tenant:?}");
            }
            if let Object::Prefix(p) = object {
                let ns = p.namespace.label();
                assert!(ns == GLOBAL || is_canonical(ns), "prefix namespace {ns:?}");
            }
        }
        Step::Skip { id, .. } | Step::Remove { id, .. } => {
            assert!(is_canonical(id), "id {id:?}")
        }
        Step::RemoveNamespace { name, prefixes } => {
            assert!(is_canonical(name), "namespace {name:?}");
            for p in prefixes {
                assert!(is_canonical(p), "listed prefix {p:?}");
            }
        }
    }
}
