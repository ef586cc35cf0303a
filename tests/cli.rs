//! The real binary against a scripted stand-in for Nautobot: exit codes,
//! dry-run output, the exact request sequence of each case, retries, bulk
//! events, and that the token never shows. Every stand-in fails its test
//! when a request is not the next one of its script, or when the script is
//! not used up.

mod common;

use common::{Answer, Run, Stub, TOKEN, call, closed_port_url, decoded, fixture, json, times};
use serde_json::{Value, json};

const NET: &str = "3f2a8c1e-5b7d-4e9a-8c6f-1d2e3f4a5b6c";
const SUB: &str = "7c9e1a3b-2d4f-4a6b-9c8d-0e1f2a3b4c5d";
const TENANT: &str = "a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90";
/// Nautobot's ids of the related objects the stand-in answers with.
const NS_ID: &str = "0e0e0e0e-1111-4222-8333-444444444444";
const ACTIVE_ID: &str = "5a5a5a5a-1111-4222-8333-444444444444";
const TAG_ID: &str = "7a7a7a7a-1111-4222-8333-444444444444";
const EVENTS: [&str; 6] = [
    "network.create.end",
    "network.update.end",
    "network.delete.end",
    "subnet.create.end",
    "subnet.update.end",
    "subnet.delete.end",
];
const PREFIXES: &str = "/api/ipam/prefixes/";
const NAMESPACES: &str = "/api/ipam/namespaces/";
const UCVNIS: &str = "/api/plugins/undercloud-vni/ucvnis/";
const TENANTS: &str = "/api/tenancy/tenants/";

fn file_arg(name: &str) -> Vec<String> {
    vec!["--file".into(), fixture(name).display().to_string()]
}

fn exists(field: &str, text: &str) -> Answer {
    json(400, json!({ field: [text] }))
}

fn page(results: Vec<Value>) -> Answer {
    json(
        200,
        json!({"count": results.len(), "next": null, "previous": null, "results": results}),
    )
}

fn missing_tenant() -> Answer {
    exists(
        "tenant",
        "Related object not found using the provided attributes: {'id': 'x'}",
    )
}

// --- help, exit codes, flags -----------------------------------------------

#[test]
fn help_documents_exit_codes_and_flag_groups() {
    let out = Run::new().args(["--help"]).run().expect(0).stdout();
    for needle in [
        "Exit codes",
        "  1   internal error",
        "  75  transient",
        "Input:",
        "Nautobot:",
        "Planning:",
        "--nautobot-url",
        "--nautobot-token-file",
        "--ucvni-group",
        "--dry-run",
        "--global-namespace",
        "--no-create-tenants",
        "--ca-cert",
        "--retry-budget",
        "never a first attempt",
        "--bulk-size",
        "NAUTOBOT_URL",
    ] {
        assert!(out.contains(needle), "--help lacks {needle}:\n{out}");
    }
    let consume = Run::new()
        .args(["consume", "--help"])
        .run()
        .expect(0)
        .stdout();
    assert!(consume.contains("RabbitMQ:") && !consume.contains("--dry-run"));
}

/// The README's exit-code table and `--help` come from the same table.
#[test]
fn the_readme_lists_the_exit_codes_of_help() {
    let help = Run::new().args(["--help"]).run().expect(0).stdout();
    let from_help: Vec<(String, String)> = help
        .lines()
        .skip_while(|l| !l.starts_with("Exit codes:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let (code, meaning) = l.trim().split_once(' ').unwrap();
            (code.to_owned(), meaning.trim().to_owned())
        })
        .collect();
    assert!(from_help.len() >= 8, "{help}");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Exit codes")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has an Exit codes section");
    let rows: Vec<(String, String)> = section
        .lines()
        .filter(|l| l.starts_with("| ") && l.chars().nth(2).is_some_and(|c| c.is_ascii_digit()))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].to_owned(), cells[2].to_owned())
        })
        .collect();
    assert_eq!(
        rows, from_help,
        "README exit-code table differs from --help"
    );
}

#[test]
fn consume_refuses_a_dry_run() {
    let out = Run::new().args(["consume", "--dry-run"]).run().expect(2);
    assert!(out.stderr().contains("--dry-run"), "{}", out.stderr());
}

// --- dry runs -------------------------------------------------------------------

#[test]
fn dry_run_needs_no_token_and_prints_the_plan() {
    for event in EVENTS {
        let out = Run::new()
            .args(["--dry-run", "--ucvni-group", "g"])
            .args(file_arg(event))
            .run()
            .expect(0);
        let lines: Vec<Value> = out
            .stdout()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(!lines.is_empty(), "{event}");
        for line in &lines {
            assert!(
                line["action"].is_string() && line["kind"].is_string(),
                "{line}"
            );
        }
    }
    let out = Run::new()
        .args(["--dry-run", "--ucvni-group", "g"])
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(0);
    assert_eq!(
        serde_json::from_str::<Value>(out.stdout().trim()).unwrap(),
        json!({"action": "write", "kind": "prefix", "id": SUB, "prefix": "10.40.0.0/24",
               "namespace": NET, "tenant": TENANT, "status": "Active", "tags": ["oslo-nautobot"]})
    );
}

#[test]
fn a_dry_run_without_a_group_shows_it_unset_and_a_real_run_refuses_before_any_request() {
    let out = Run::new()
        .args(["--dry-run"])
        .args(file_arg("network.create.end"))
        .run()
        .expect(0);
    let lines: Vec<Value> = out
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[1]["kind"], "ucvni");
    assert_eq!(lines[1]["ucvni_group"], Value::Null);
    assert!(out.stderr().contains("no UCVNI group"), "{}", out.stderr());

    let stub = Stub::untouched();
    let out = Run::against(&stub.url)
        .env("UCVNI_GROUP_NAME", "")
        .args(file_arg("network.create.end"))
        .run()
        .expect(7);
    assert!(out.stderr().contains("no UCVNI group"), "{}", out.stderr());
}

#[test]
fn every_input_shape_and_source_gives_the_same_plan() {
    let event = decoded("subnet.create.end");
    let envelope = json!({"oslo.version": "2.0", "oslo.message": event.to_string()});
    let expected = Run::new()
        .args(["--dry-run"])
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(0)
        .stdout();
    let inputs = [
        event.clone(),
        envelope.clone(),
        json!({"body": event.clone(), "context": {"type": "amqp"}}),
        json!({"body": envelope.clone()}),
    ];
    for input in inputs {
        let text = input.to_string();
        assert_eq!(
            Run::new()
                .args(["--dry-run"])
                .stdin(text.clone())
                .run()
                .expect(0)
                .stdout(),
            expected
        );
        assert_eq!(
            Run::new()
                .args(["--dry-run", &text])
                .run()
                .expect(0)
                .stdout(),
            expected
        );
    }
    assert_eq!(
        Run::new()
            .args(["--dry-run", "--file", "-"])
            .stdin(event.to_string())
            .run()
            .expect(0)
            .stdout(),
        expected
    );
}

// --- refusals before any request --------------------------------------------

#[test]
fn bad_input_exits_5_without_a_request() {
    let stub = Stub::untouched();
    let mut bad_cidr = decoded("subnet.create.end");
    bad_cidr["payload"]["subnet"]["cidr"] = json!("10.40.0.0/40");
    let mut bad_id = decoded("network.create.end");
    bad_id["payload"]["network"]["id"] = json!("not-a-uuid");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "input is empty"),
        (b"{\"event_type\": ".to_vec(), "not valid JSON"),
        (b"\xff\xfe\x00".to_vec(), "not UTF-8"),
        (b"[1, 2]".to_vec(), "expected a JSON object"),
        (
            b"{\"oslo.version\": \"2.0\", \"oslo.message\": \"{oops\"}".to_vec(),
            "oslo.message: not valid JSON",
        ),
        (bad_cidr.to_string().into_bytes(), "payload.subnet.cidr"),
        (bad_id.to_string().into_bytes(), "payload.network.id"),
        (vec![b' '; (4 << 20) + 10], "larger than 4 MiB"),
    ];
    for (input, needle) in cases {
        let out = Run::against(&stub.url).stdin(input).run().expect(5);
        let err = out.stderr();
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    let missing = Run::against(&stub.url)
        .args(["--file", "/nonexistent/event.json"])
        .run()
        .expect(5);
    assert!(missing.stderr().contains("/nonexistent/event.json"));
    // Bad input is refused before the token is looked for.
    Run::new().stdin("{").run().expect(5);
}

#[test]
fn unhandled_event_type_exits_6_naming_it() {
    let stub = Stub::untouched();
    let out = Run::against(&stub.url)
        .args(file_arg("network.create.start"))
        .run()
        .expect(6);
    assert!(out.stderr().contains("network.create.start"));
}

#[test]
fn configuration_problems_exit_7() {
    // No token at all.
    let out = Run::new()
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(7);
    assert!(out.stderr().contains("NAUTOBOT_TOKEN"), "{}", out.stderr());
    // An empty token file.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("token");
    std::fs::write(&empty, "\n").unwrap();
    Run::new()
        .env("NAUTOBOT_TOKEN_FILE", empty.to_str().unwrap())
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(7);
    // A URL that is not one.
    Run::against("nautobot.example")
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(7);
}

#[test]
fn token_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, format!("  {TOKEN}\n")).unwrap();
    let stub = Stub::start(vec![call(
        format!("DELETE {PREFIXES}{SUB}/"),
        json(204, json!({})),
    )]);
    Run::new()
        .env("NAUTOBOT_URL", &stub.url)
        .env("NAUTOBOT_TOKEN_FILE", path.to_str().unwrap())
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.seen()[0].header("authorization"),
        Some(format!("Token {TOKEN}").as_str())
    );
}

#[test]
fn forbidden_exits_7_and_is_not_retried() {
    let stub = Stub::start(vec![call(
        format!("POST {PREFIXES}"),
        json(403, json!({"detail": "Invalid token"})),
    )]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(7);
    assert!(
        out.stderr().contains("POST /api/ipam/prefixes/ → 403"),
        "{}",
        out.stderr()
    );
    assert!(out.stderr().contains("Invalid token"));
}

// --- one object, one request ------------------------------------------------------

#[test]
fn subnet_create_is_one_request_with_the_right_headers_and_body() {
    let stub = Stub::start(vec![call(
        format!("POST {PREFIXES}"),
        json(201, json!({"id": SUB})),
    )]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(0);
    let seen = stub.seen();
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Token {TOKEN}").as_str())
    );
    assert_eq!(
        seen[0].header("accept"),
        Some("application/json; version=3.0")
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(
        stub.body(0),
        json!({"id": SUB, "prefix": "10.40.0.0/24", "status": {"name": "Active"},
                "tenant": {"id": TENANT}, "namespace": {"name": NET},
                "tags": [{"name": "oslo-nautobot"}]})
    );
    let summary = out.summary();
    assert_eq!(summary["requests"], 1);
    assert_eq!(summary["event_type"], "subnet.create.end");
    assert_eq!(
        summary["results"],
        json!([{"kind": "prefix", "id": SUB, "name": "10.40.0.0/24", "result": "created"}])
    );
    assert!(summary.get("errors").is_none());
}

#[test]
fn a_tiny_retry_budget_still_tries_every_request_once() {
    // Before: "gave up after 0 attempt(s)" once the budget was spent.
    let stub = Stub::start(vec![
        call(format!("POST {NAMESPACES}"), json(201, json!({}))),
        call(format!("POST {UCVNIS}"), json(201, json!({}))),
    ]);
    Run::against(&stub.url)
        .env("NAUTOBOT_RETRY_BUDGET", "0.001")
        .args(file_arg("network.create.end"))
        .run()
        .expect(0);
}

#[test]
fn subnet_create_of_an_existing_prefix_updates_it() {
    for answer in [
        exists("id", "Prefix with this Id already exists."),
        // A twin delivery won the race inside Nautobot.
        json(
            500,
            json!({"error": "duplicate key value violates unique constraint \"ipam_prefix_pkey\"", "exception": "IntegrityError"}),
        ),
    ] {
        let stub = Stub::start(vec![
            call(format!("POST {PREFIXES}"), answer),
            call(format!("PATCH {PREFIXES}{SUB}/"), json(200, json!({}))),
        ]);
        let out = Run::against(&stub.url)
            .args(file_arg("subnet.create.end"))
            .run()
            .expect(0);
        assert!(
            stub.body(1).get("id").is_none(),
            "PATCH does not resend the id"
        );
        assert_eq!(out.summary()["results"][0]["result"], "updated");
    }
}

#[test]
fn subnet_before_its_network_creates_the_namespace() {
    let stub = Stub::start(vec![
        call(
            format!("POST {PREFIXES}"),
            exists(
                "namespace",
                "Related object not found using the provided attributes: {'name': 'x'}",
            ),
        ),
        call(format!("POST {NAMESPACES}"), json(201, json!({}))),
        call(format!("POST {PREFIXES}"), json(201, json!({}))),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.body(1),
        json!({"name": NET, "tags": [{"name": "oslo-nautobot"}]})
    );
    assert_eq!(
        out.summary()["results"],
        json!([
            {"kind": "namespace", "name": NET, "result": "created"},
            {"kind": "prefix", "id": SUB, "name": "10.40.0.0/24", "result": "created"},
        ])
    );
}

#[test]
fn unknown_tenant_is_created_unless_told_not_to() {
    let stub = Stub::start(vec![
        call(format!("POST {PREFIXES}"), missing_tenant()),
        call(format!("POST {TENANTS}"), json(201, json!({}))),
        call(format!("POST {PREFIXES}"), json(201, json!({}))),
    ]);
    Run::against(&stub.url)
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.body(1),
        json!({"id": TENANT, "name": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
               "tags": [{"name": "oslo-nautobot"}]})
    );

    let stub = Stub::start(vec![call(format!("POST {PREFIXES}"), missing_tenant())]);
    let out = Run::against(&stub.url)
        .args(["--no-create-tenants"])
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(75);
    assert!(out.stderr().contains(TENANT));
}

#[test]
fn update_of_something_never_created_creates_it() {
    let stub = Stub::start(vec![
        call(
            format!("PATCH {PREFIXES}{SUB}/"),
            json(404, json!({"detail": "No Prefix matches the given query."})),
        ),
        call(format!("POST {PREFIXES}"), json(201, json!({}))),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.update.end"))
        .run()
        .expect(0);
    assert_eq!(out.summary()["results"][0]["result"], "created");
}

#[test]
fn network_create_writes_namespace_then_ucvni() {
    let stub = Stub::start(vec![
        call(format!("POST {NAMESPACES}"), json(201, json!({}))),
        call(format!("POST {UCVNIS}"), json(201, json!({}))),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("network.create.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.body(1),
        json!({"id": NET, "name": "blue-net", "status": {"name": "Active"}, "tenant": {"id": TENANT},
                "ucvni_group": {"name": "test-group"}, "ucvni_id": 4100})
    );
    assert_eq!(out.summary()["requests"], 2);
}

#[test]
fn network_update_patches_and_keeps_an_existing_namespace() {
    // The namespace is looked for with our tag: there, as in the common case.
    let stub = Stub::start(vec![
        call(
            format!("GET {NAMESPACES}?name={NET}&tags=oslo-nautobot"),
            page(vec![
                json!({"id": NS_ID, "name": NET, "tags": [{"id": TAG_ID}]}),
            ]),
        ),
        call(format!("PATCH {UCVNIS}{NET}/"), json(200, json!({}))),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("network.update.end"))
        .run()
        .expect(0);
    assert_eq!(
        out.summary()["results"],
        json!([
            {"kind": "namespace", "name": NET, "result": "unchanged"},
            {"kind": "ucvni", "id": NET, "name": "blue-net-renamed", "result": "updated"},
        ])
    );
}

#[test]
fn segmentation_id_conflict_exits_8_naming_both_networks() {
    let other = "99999999-8888-4777-8666-555555555555";
    let stub = Stub::start(vec![
        call(format!("POST {NAMESPACES}"), json(201, json!({}))),
        call(
            format!("POST {UCVNIS}"),
            exists(
                "__all__",
                "UCVNI with this Ucvni group and UCVNI_ID already exists.",
            ),
        ),
        call(
            format!("PATCH {UCVNIS}{NET}/"),
            json(404, json!({"detail": "No UCVNI matches the given query."})),
        ),
        call(
            format!("GET {UCVNIS}?ucvni_group=test-group&ucvni_id=4100"),
            page(vec![json!({"id": other})]),
        ),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("network.create.end"))
        .run()
        .expect(8);
    let err = out.stderr();
    for needle in ["4100", "test-group", NET, other] {
        assert!(err.contains(needle), "{err} lacks {needle}");
    }
    // The summary still tells what happened to the namespace.
    let summary = out.summary();
    assert_eq!(summary["results"][0]["result"], "created");
    assert_eq!(summary["exit"], 8);
    assert!(summary["errors"][0].as_str().unwrap().contains(other));
}

#[test]
fn a_tenant_created_by_a_twin_is_not_a_conflict() {
    let stub = Stub::start(vec![
        call(format!("POST {PREFIXES}"), missing_tenant()),
        call(
            format!("POST {TENANTS}"),
            exists("name", "tenant with this name already exists."),
        ),
        call(
            format!("GET {TENANTS}{TENANT}/"),
            json(200, json!({"id": TENANT})),
        ),
        call(format!("POST {PREFIXES}"), json(201, json!({}))),
    ]);
    Run::against(&stub.url)
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(0);

    // Another tenant holds the name: a conflict for a person.
    let stub = Stub::start(vec![
        call(format!("POST {PREFIXES}"), missing_tenant()),
        call(
            format!("POST {TENANTS}"),
            exists("name", "tenant with this name already exists."),
        ),
        call(format!("GET {TENANTS}{TENANT}/"), json(404, json!({}))),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(8);
    assert!(
        out.stderr()
            .contains("a tenant named a1b2c3d4e5f60718293a4b5c6d7e8f90"),
        "{}",
        out.stderr()
    );
}

#[test]
fn a_missing_tag_is_created_with_its_object_types_on_a_new_deployment() {
    // Before: the namespace's create failed, exit 8, on a Nautobot without the tag.
    let no_tag = exists(
        "tags",
        "Related object not found using the provided attributes: {'name': 'oslo-nautobot'}",
    );
    let stub = Stub::start(vec![
        call(format!("POST {NAMESPACES}"), no_tag),
        call("GET /api/extras/tags/?name=oslo-nautobot", page(vec![])),
        call("POST /api/extras/tags/", json(201, json!({}))),
        call(format!("POST {NAMESPACES}"), json(201, json!({}))),
        call(format!("POST {UCVNIS}"), json(201, json!({}))),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("network.create.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.body(2)["content_types"],
        json!(["ipam.namespace", "ipam.prefix", "tenancy.tenant"])
    );
    assert_eq!(out.summary()["results"][0]["kind"], "tag");
}

#[test]
fn a_tag_made_by_a_twin_meanwhile_is_looked_up_again() {
    // Found on a new Nautobot with events at once: the twin's INSERT won.
    let no_tag = exists(
        "tags",
        "Related object not found using the provided attributes: {'name': 'oslo-nautobot'}",
    );
    let tag = json!({"id": TAG_ID, "name": "oslo-nautobot",
                     "content_types": ["ipam.namespace", "ipam.prefix", "tenancy.tenant"]});
    let stub = Stub::start(vec![
        call(format!("POST {NAMESPACES}"), no_tag),
        call("GET /api/extras/tags/?name=oslo-nautobot", page(vec![])),
        call(
            "POST /api/extras/tags/",
            json(
                500,
                json!({"error": "duplicate key value violates unique constraint \"extras_tag_name_key\"", "exception": "IntegrityError"}),
            ),
        ),
        call("GET /api/extras/tags/?name=oslo-nautobot", page(vec![tag])),
        call(format!("POST {NAMESPACES}"), json(201, json!({}))),
        call(format!("POST {UCVNIS}"), json(201, json!({}))),
    ]);
    Run::against(&stub.url)
        .args(file_arg("network.create.end"))
        .run()
        .expect(0);
}

#[test]
fn a_tenant_made_for_a_ucvni_carries_the_tag_too() {
    // Before: the tenant took the tags of the object that needed it, and
    // UCVNIs carry none: an untagged tenant reconcile could never prune.
    let stub = Stub::start(vec![
        call(format!("POST {NAMESPACES}"), json(201, json!({}))),
        call(format!("POST {UCVNIS}"), missing_tenant()),
        call(format!("POST {TENANTS}"), json(201, json!({}))),
        call(format!("POST {UCVNIS}"), json(201, json!({}))),
    ]);
    Run::against(&stub.url)
        .args(file_arg("network.create.end"))
        .run()
        .expect(0);
    assert_eq!(stub.body(2)["tags"], json!([{"name": "oslo-nautobot"}]));
}

#[test]
fn a_project_event_delivered_twice_succeeds_both_times() {
    // Before: Nautobot checks a tenant's name before its id, and the second
    // delivery's "name exists" was taken for a refusal (exit 8).
    let project = r#"{"event_type": "identity.project.created", "payload": {"resource_info": "a1b2c3d4e5f60718293a4b5c6d7e8f90"}}"#;
    let stub = Stub::start(vec![call(format!("POST {TENANTS}"), json(201, json!({})))]);
    let out = Run::against(&stub.url).stdin(project).run().expect(0);
    assert_eq!(out.summary()["results"][0]["result"], "created");
    drop(stub);
    let stub = Stub::start(vec![
        call(
            format!("POST {TENANTS}"),
            exists("name", "tenant with this name already exists."),
        ),
        call(
            format!("GET {TENANTS}{TENANT}/"),
            json(200, json!({"id": TENANT})),
        ),
    ]);
    let out = Run::against(&stub.url).stdin(project).run().expect(0);
    assert_eq!(out.summary()["results"][0]["result"], "unchanged");
}

#[test]
fn a_tenant_lookup_that_fails_is_classified_by_its_status_not_as_a_conflict() {
    // Before: any answer but 200 to the lookup was reported as a conflict (8).
    for (status, code) in [(401, 7), (403, 7), (500, 75)] {
        let stub = Stub::start(vec![
            call(format!("POST {PREFIXES}"), missing_tenant()),
            call(
                format!("POST {TENANTS}"),
                exists("name", "tenant with this name already exists."),
            ),
            call(
                format!("GET {TENANTS}{TENANT}/"),
                json(status, json!({"detail": "no"})),
            ),
        ]);
        let out = Run::against(&stub.url)
            .args(file_arg("subnet.create.end"))
            .run()
            .expect(code);
        assert!(!out.stderr().contains("conflict"), "{}", out.stderr());
    }
}

// --- deletes ---------------------------------------------------------------------------

#[test]
fn network_delete_removes_prefixes_then_namespace_then_ucvni() {
    let p1 = "0a0a0a0a-1111-4222-8333-444444444444";
    let stub = Stub::start(vec![
        call(
            format!("GET {NAMESPACES}?name={NET}"),
            page(vec![json!({"id": NS_ID, "name": NET})]),
        ),
        call(
            format!("GET {PREFIXES}?namespace={NS_ID}&limit=1000"),
            page(vec![json!({"id": p1}), json!({"id": SUB})]),
        ),
        call(format!("DELETE {PREFIXES}"), json(204, json!({}))),
        call(format!("DELETE {NAMESPACES}{NS_ID}/"), json(204, json!({}))),
        call(
            format!("DELETE {UCVNIS}{NET}/"),
            json(404, json!({"detail": "No UCVNI matches the given query."})),
        ),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("network.delete.end"))
        .run()
        .expect(0);
    assert_eq!(stub.body(2), json!([{"id": p1}, {"id": SUB}]));
    let results = &out.summary()["results"];
    assert_eq!(
        results[2],
        json!({"kind": "namespace", "name": NET, "result": "deleted"})
    );
    assert_eq!(
        results[3],
        json!({"kind": "ucvni", "id": NET, "result": "absent"})
    );
}

#[test]
fn listing_a_namespace_follows_next_whatever_the_page_size() {
    // Before: one page of a Nautobot whose MAX_PAGE_SIZE is below 1000 was
    // taken for all, and a row without an id shifted the offset.
    let p1 = "0a0a0a0a-1111-4222-8333-444444444441";
    let p2 = "0a0a0a0a-1111-4222-8333-444444444442";
    let next = format!(
        "http://nautobot.internal:8080/api/ipam/prefixes/?limit=2&namespace={NS_ID}&offset=2"
    );
    let stub = Stub::start(vec![
        call(
            format!("GET {NAMESPACES}?name={NET}"),
            page(vec![json!({"id": NS_ID, "name": NET})]),
        ),
        call(
            format!("GET {PREFIXES}?namespace={NS_ID}&limit=1000"),
            json(
                200,
                json!({"count": 4, "next": next, "results": [{"id": p1}, {"prefix": "no id"}]}),
            ),
        ),
        call(
            format!("GET /api/ipam/prefixes/?limit=2&namespace={NS_ID}&offset=2"),
            page(vec![json!({"id": p2}), json!({"id": SUB})]),
        ),
        call(format!("DELETE {PREFIXES}"), json(204, json!({}))),
        call(format!("DELETE {NAMESPACES}{NS_ID}/"), json(204, json!({}))),
        call(format!("DELETE {UCVNIS}{NET}/"), json(204, json!({}))),
    ]);
    Run::against(&stub.url)
        .args(file_arg("network.delete.end"))
        .run()
        .expect(0);
    assert_eq!(stub.body(3), json!([{"id": p1}, {"id": p2}, {"id": SUB}]));
}

#[test]
fn deletes_of_things_already_gone_are_reported_absent() {
    let stub = Stub::start(vec![call(
        format!("DELETE {PREFIXES}{SUB}/"),
        json(404, json!({"detail": "No Prefix matches the given query."})),
    )]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(0);
    assert_eq!(out.summary()["results"][0]["result"], "absent");

    // Network gone from Nautobot, and its listed subnet's prefix too. Before:
    // the prefix was reported "deleted" after a bulk delete that found nothing.
    let stub = Stub::start(vec![
        call(format!("GET {NAMESPACES}?name={NET}"), page(vec![])),
        call(format!("GET {PREFIXES}?id={SUB}&limit=1000"), page(vec![])),
        call(
            format!("DELETE {UCVNIS}{NET}/"),
            json(404, json!({"detail": "No UCVNI matches the given query."})),
        ),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("network.delete.end"))
        .run()
        .expect(0);
    assert_eq!(
        out.summary()["results"],
        json!([
            {"kind": "prefix", "id": SUB, "result": "absent"},
            {"kind": "namespace", "name": NET, "result": "absent"},
            {"kind": "ucvni", "id": NET, "result": "absent"},
        ])
    );
}

#[test]
fn a_network_delete_whose_namespace_a_twin_removes_midway_succeeds() {
    // The twin deletes the namespace between this run's lookup and its
    // listing of the namespace's prefixes; Nautobot then refuses the filter.
    let stub = Stub::start(vec![
        call(
            format!("GET {NAMESPACES}?name={NET}"),
            page(vec![json!({"id": NS_ID, "name": NET})]),
        ),
        call(
            format!("GET {PREFIXES}?namespace={NS_ID}&limit=1000"),
            json(
                400,
                json!({"namespace": [format!("Select a valid choice. {NS_ID} is not one of the available choices.")]}),
            ),
        ),
        call(format!("GET {PREFIXES}?id={SUB}&limit=1000"), page(vec![])),
        call(
            format!("DELETE {NAMESPACES}{NS_ID}/"),
            json(404, json!({"detail": "Not found."})),
        ),
        call(
            format!("DELETE {UCVNIS}{NET}/"),
            json(404, json!({"detail": "Not found."})),
        ),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("network.delete.end"))
        .run()
        .expect(0);
    let results = &out.summary()["results"];
    assert_eq!(results[1]["result"], "absent", "{results}");
    assert_eq!(results[2]["result"], "absent", "{results}");
}

// --- refusals and retries -----------------------------------------------------------------

#[test]
fn validation_errors_exit_8_without_retry() {
    let stub = Stub::start(vec![call(
        format!("POST {PREFIXES}"),
        exists("prefix", "Enter a valid prefix."),
    )]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(8);
    assert!(out.stderr().contains("Enter a valid prefix."));
}

#[test]
fn busy_nautobot_is_retried_then_reported_transient() {
    let line = format!("DELETE {PREFIXES}{SUB}/");
    let stub = Stub::start(times(3, &line, json(503, json!({"detail": "busy"}))));
    let out = Run::against(&stub.url)
        .env("NAUTOBOT_ATTEMPTS", "3")
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(75);
    assert!(
        out.stderr().contains("gave up after 3 attempt(s)"),
        "{}",
        out.stderr()
    );

    let stub = Stub::start(vec![
        call(&line, json(502, json!({}))),
        call(&line, json(504, json!({}))),
        call(&line, json(204, json!({}))),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(0);
    assert_eq!(out.summary()["requests"], 3);
}

#[test]
fn too_many_requests_honours_retry_after_within_the_budget() {
    let line = format!("DELETE {PREFIXES}{SUB}/");
    let stub = Stub::start(vec![
        call(
            &line,
            Answer::Raw(429, vec![("Retry-After".into(), "1".into())], "{}".into()),
        ),
        call(&line, json(204, json!({}))),
    ]);
    Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(0);

    // A Retry-After beyond the budget is not waited for: one attempt.
    let stub = Stub::start(vec![call(
        &line,
        Answer::Raw(
            429,
            vec![("Retry-After".into(), "3600".into())],
            "{}".into(),
        ),
    )]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(75);
    assert!(
        out.stderr().contains("gave up after 1 attempt(s)"),
        "{}",
        out.stderr()
    );
}

#[test]
fn a_dropped_connection_is_retried() {
    let line = format!("DELETE {PREFIXES}{SUB}/");
    let stub = Stub::start(vec![
        call(&line, Answer::Hangup),
        call(&line, json(204, json!({}))),
    ]);
    Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(0);
}

#[test]
fn a_server_error_is_transient_but_not_retried_in_process() {
    let stub = Stub::start(vec![call(
        format!("DELETE {PREFIXES}{SUB}/"),
        json(500, json!({"error": "boom", "exception": "ValueError"})),
    )]);
    Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(75);
}

#[test]
fn unreachable_nautobot_exits_75_after_its_attempts() {
    let out = Run::against(&closed_port_url())
        .env("NAUTOBOT_RETRY_BUDGET", "30")
        .env("NAUTOBOT_ATTEMPTS", "3")
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(75);
    assert!(
        out.stderr().contains("gave up after 3 attempt(s)"),
        "{}",
        out.stderr()
    );
    // A budget too short for a retry: the first attempt only.
    let out = Run::against(&closed_port_url())
        .env("NAUTOBOT_RETRY_BUDGET", "0.001")
        .env("NAUTOBOT_ATTEMPTS", "10")
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(75);
    assert!(
        out.stderr().contains("gave up after 1 attempt(s)"),
        "{}",
        out.stderr()
    );
}

#[test]
fn redirects_are_not_followed() {
    let stub = Stub::start(vec![call(
        format!("DELETE {PREFIXES}{SUB}/"),
        Answer::Raw(
            301,
            vec![("Location".into(), "https://elsewhere/api/".into())],
            String::new(),
        ),
    )]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(7);
    assert!(out.stderr().contains("redirecting"));
}

#[test]
fn tls_to_a_server_that_does_not_speak_it_is_a_setup_problem() {
    // The stand-in reads the TLS handshake as a request line it was not
    // scripted for and answers in plain HTTP, which TLS cannot read.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let https = format!("https://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::Write;
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let out = Run::against(&https)
        .env("NAUTOBOT_ATTEMPTS", "5")
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(7);
    assert!(out.stderr().contains("TLS"), "{}", out.stderr());
}

#[test]
fn the_token_never_shows_even_when_echoed() {
    let echo = json!({"detail": format!("bad request from Token {TOKEN}"), "headers": {"Authorization": format!("Token {TOKEN}")}});
    let line = format!("POST {PREFIXES}");
    for script in [
        vec![call(&line, json(400, echo.clone()))],
        times(2, &line, json(503, echo.clone())),
        vec![call(&line, json(201, echo.clone()))],
    ] {
        let stub = Stub::start(script);
        let out = Run::against(&stub.url)
            .env("NAUTOBOT_ATTEMPTS", "2")
            .args(["-vvv"])
            .args(file_arg("subnet.create.end"))
            .run();
        assert!(
            !out.stdout().contains(TOKEN) && !out.stderr().contains(TOKEN),
            "{}\n{}",
            out.stdout(),
            out.stderr()
        );
        assert!(!out.stderr().is_empty());
    }
    let help = Run::new()
        .env("NAUTOBOT_TOKEN", TOKEN)
        .args(["--help"])
        .run()
        .expect(0);
    assert!(!help.stdout().contains(TOKEN));
}

// --- bulk events ------------------------------------------------------------------------------

/// A bulk create of `n` subnets of the sample network.
fn bulk_subnets(n: usize) -> (Value, Vec<String>) {
    let mut event = decoded("subnet.create.end");
    let first = event["payload"]["subnet"].clone();
    let mut ids = Vec::new();
    let subnets: Vec<Value> = (0..n)
        .map(|i| {
            let mut s = first.clone();
            let id = format!("11111111-2222-4333-8444-{i:012}");
            s["id"] = json!(id);
            s["cidr"] = json!(format!("10.41.{i}.0/24"));
            ids.push(id);
            s
        })
        .collect();
    event["payload"] = json!({ "subnets": subnets });
    (event, ids)
}

/// The ids in a bulk request's body.
fn ids_of(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A prefix as Nautobot lists it (depth 0).
fn listed_prefix(id: &str, cidr: &str) -> Value {
    json!({"id": id, "prefix": cidr, "namespace": {"id": NS_ID, "object_type": "ipam.namespace"},
           "status": {"id": ACTIVE_ID, "object_type": "extras.status"},
           "tenant": {"id": TENANT, "object_type": "tenancy.tenant"},
           "tags": [{"id": TAG_ID, "object_type": "extras.tag"}]})
}

fn bulk_reads(listed: Vec<Value>) -> Vec<common::Call> {
    vec![
        call(
            format!("GET {NAMESPACES}?name={NET}"),
            page(vec![json!({"id": NS_ID, "name": NET})]),
        ),
        call(
            format!("GET {PREFIXES}?namespace={NS_ID}&limit=1000"),
            page(listed),
        ),
        call(
            "GET /api/extras/statuses/?name=Active",
            page(vec![json!({"id": ACTIVE_ID, "name": "Active"})]),
        ),
        call(
            "GET /api/extras/tags/?name=oslo-nautobot",
            page(vec![json!({"id": TAG_ID, "name": "oslo-nautobot"})]),
        ),
    ]
}

#[test]
fn a_bulk_event_reads_what_exists_and_writes_only_the_rest_in_chunks() {
    let (event, ids) = bulk_subnets(5);
    // One exists as wanted, one with another CIDR, three are missing.
    let mut script = bulk_reads(vec![
        listed_prefix(&ids[0], "10.41.0.0/24"),
        listed_prefix(&ids[1], "10.99.1.0/24"),
    ]);
    script.push(call(format!("POST {PREFIXES}"), json(201, json!([{}, {}]))));
    script.push(call(format!("POST {PREFIXES}"), json(201, json!([{}]))));
    script.push(call(
        format!("PATCH {PREFIXES}"),
        json(200, json!([{"id": ids[1]}])),
    ));
    let stub = Stub::start(script);
    let out = Run::against(&stub.url)
        .env("NAUTOBOT_BULK_SIZE", "2")
        .stdin(event.to_string())
        .run()
        .expect(0);
    assert_eq!(ids_of(&stub.body(4)), [ids[2].clone(), ids[3].clone()]);
    assert_eq!(stub.body(5)[0]["id"], ids[4]);
    assert_eq!(
        stub.body(6),
        json!([{"id": ids[1], "prefix": "10.41.1.0/24", "namespace": {"name": NET},
                "status": {"name": "Active"}, "tenant": {"id": TENANT}}])
    );
    let summary = out.summary();
    assert_eq!(summary["requests"], 7);
    let results: Vec<(&str, &str)> = summary["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert!(results.contains(&(ids[0].as_str(), "unchanged")));
    assert!(results.contains(&(ids[1].as_str(), "updated")));
    assert_eq!(results.iter().filter(|r| r.1 == "created").count(), 3);
}

#[test]
fn a_rerun_of_a_bulk_event_only_reads() {
    let (event, ids) = bulk_subnets(3);
    let listed = ids
        .iter()
        .enumerate()
        .map(|(i, id)| listed_prefix(id, &format!("10.41.{i}.0/24")))
        .collect();
    let stub = Stub::start(bulk_reads(listed));
    let out = Run::against(&stub.url)
        .stdin(event.to_string())
        .run()
        .expect(0);
    assert_eq!(out.summary()["requests"], 4);
}

#[test]
fn a_refused_element_of_a_bulk_create_does_not_hold_back_the_others_and_the_summary_still_shows() {
    let (event, ids) = bulk_subnets(3);
    let mut script = bulk_reads(vec![]);
    // All-or-none: Nautobot refuses the chunk, one error per element.
    script.push(call(
        format!("POST {PREFIXES}"),
        json(
            400,
            json!([{}, {"prefix": ["Enter a valid prefix."]}, {"id": ["Prefix with this Id already exists."]}]),
        ),
    ));
    // The one that exists elsewhere is read, then updated.
    script.push(call(
        format!("GET {PREFIXES}?id={}&limit=1000", ids[2]),
        page(vec![listed_prefix(&ids[2], "10.41.2.0/24")]),
    ));
    script.push(call(format!("POST {PREFIXES}"), json(201, json!([{}]))));
    let stub = Stub::start(script);
    let out = Run::against(&stub.url)
        .stdin(event.to_string())
        .run()
        .expect(8);
    assert_eq!(stub.body(6)[0]["id"], ids[0]);
    // Before: a failed element meant no summary at all.
    let summary = out.summary();
    assert_eq!(summary["exit"], 8);
    assert!(summary["errors"][0].as_str().unwrap().contains(&ids[1]));
    let results = summary["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{summary}");
    assert!(out.stderr().contains("Enter a valid prefix."));
}

#[test]
fn a_bulk_event_stops_after_a_transient_failure_and_a_rerun_carries_on() {
    let (event, ids) = bulk_subnets(4);
    let mut script = bulk_reads(vec![]);
    script.push(call(format!("POST {PREFIXES}"), json(201, json!([{}, {}]))));
    script.push(call(format!("POST {PREFIXES}"), json(503, json!({}))));
    let stub = Stub::start(script);
    let out = Run::against(&stub.url)
        .env("NAUTOBOT_BULK_SIZE", "2")
        .env("NAUTOBOT_ATTEMPTS", "1")
        .stdin(event.to_string())
        .run()
        .expect(75);
    assert_eq!(out.summary()["results"].as_array().unwrap().len(), 2);
    drop(stub);
    // The rerun finds the first two and writes only the other two.
    let mut script = bulk_reads(vec![
        listed_prefix(&ids[0], "10.41.0.0/24"),
        listed_prefix(&ids[1], "10.41.1.0/24"),
    ]);
    script.push(call(format!("POST {PREFIXES}"), json(201, json!([{}, {}]))));
    let stub = Stub::start(script);
    Run::against(&stub.url)
        .env("NAUTOBOT_BULK_SIZE", "2")
        .stdin(event.to_string())
        .run()
        .expect(0);
    assert_eq!(ids_of(&stub.body(4)), [ids[2].clone(), ids[3].clone()]);
}

#[test]
fn a_cidr_held_by_another_prefix_in_the_namespace_is_a_conflict_found_before_writing() {
    let (event, ids) = bulk_subnets(2);
    let other = "99999999-8888-4777-8666-555555555555";
    let mut script = bulk_reads(vec![listed_prefix(other, "10.41.1.0/24")]);
    script.push(call(format!("POST {PREFIXES}"), json(201, json!([{}]))));
    let stub = Stub::start(script);
    let out = Run::against(&stub.url)
        .stdin(event.to_string())
        .run()
        .expect(8);
    assert_eq!(stub.body(4)[0]["id"], ids[0]);
    assert!(out.stderr().contains(other), "{}", out.stderr());
}

// --- replay -----------------------------------------------------------------------------------

#[test]
fn replay_applies_events_in_order_over_one_connection() {
    let stub = Stub::start(vec![
        call(format!("POST {PREFIXES}"), json(201, json!({}))),
        call(format!("PATCH {PREFIXES}{SUB}/"), json(200, json!({}))),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("day.jsonl");
    let events: Vec<String> = [
        "subnet.create.end",
        "network.create.start",
        "subnet.update.end",
    ]
    .iter()
    .map(|name| {
        std::fs::read_to_string(fixture(name))
            .unwrap()
            .trim()
            .to_owned()
    })
    .collect();
    std::fs::write(
        &lines,
        format!("{}\n{}\n{{broken\n{}\n", events[0], events[1], events[2]),
    )
    .unwrap();
    let out = Run::against(&stub.url)
        .args(["replay", lines.to_str().unwrap()])
        .run()
        .expect(6);
    let results: Vec<Value> = out
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 5, "{}", out.stdout());
    let exits: Vec<&Value> = results[..4].iter().map(|r| &r["exit"]).collect();
    assert_eq!(exits, [&json!(0), &json!(6), &json!(5), &json!(0)]);
    assert_eq!(results[2]["source"], format!("{}:3", lines.display()));
    assert_eq!(results[4]["events"], 4);
    assert_eq!(results[4]["exit_codes"], json!({"0": 2, "5": 1, "6": 1}));
    assert!(
        stub.seen().iter().all(|s| s.connection == 0),
        "one kept-alive connection"
    );
}

#[test]
fn replay_reads_rabbitmqadmin_dumps_and_stdin_and_dry_runs() {
    let body = std::fs::read_to_string(fixture("subnet.delete.end")).unwrap();
    let dump = json!([{"payload": body.trim(), "payload_encoding": "string", "routing_key": "notifications.info"}]);
    let stub = Stub::start(vec![call(
        format!("DELETE {PREFIXES}{SUB}/"),
        json(204, json!({})),
    )]);
    let out = Run::against(&stub.url)
        .args(["replay"])
        .stdin(dump.to_string())
        .run()
        .expect(0);
    assert!(out.stdout().contains("\"deleted\""));

    let out = Run::new()
        .args(["replay", "--dry-run", "-"])
        .stdin(dump.to_string())
        .run()
        .expect(0);
    assert!(out.stdout().contains("\"plan\""), "{}", out.stdout());
}

#[test]
fn replay_exits_with_the_most_urgent_code() {
    let stub = Stub::start(vec![
        call(format!("DELETE {PREFIXES}{SUB}/"), json(503, json!({}))),
        call(
            format!("POST {PREFIXES}"),
            json(400, json!({"prefix": ["bad"]})),
        ),
    ]);
    let two = format!(
        "{}\n{}\n",
        std::fs::read_to_string(fixture("subnet.delete.end"))
            .unwrap()
            .trim(),
        std::fs::read_to_string(fixture("subnet.create.end"))
            .unwrap()
            .trim()
    );
    let out = Run::against(&stub.url)
        .env("NAUTOBOT_ATTEMPTS", "1")
        .args(["replay"])
        .stdin(two)
        .run()
        .expect(75);
    assert!(
        out.stdout().contains("\"exit_codes\":{\"75\":1,\"8\":1}"),
        "{}",
        out.stdout()
    );
}
