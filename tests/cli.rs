//! The real binary against a scripted stand-in for Nautobot: exit codes,
//! dry-run output, the exact request sequence of each case, retries, and
//! that the token never shows.

mod common;

use std::time::{Duration, Instant};

use common::{Answer, Run, Stub, TOKEN, closed_port_url, decoded, fixture, json};
use serde_json::{Value, json};

const NET: &str = "3f2a8c1e-5b7d-4e9a-8c6f-1d2e3f4a5b6c";
const SUB: &str = "7c9e1a3b-2d4f-4a6b-9c8d-0e1f2a3b4c5d";
const TENANT: &str = "a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90";
const EVENTS: [&str; 6] = [
    "network.create.end",
    "network.update.end",
    "network.delete.end",
    "subnet.create.end",
    "subnet.update.end",
    "subnet.delete.end",
];

fn file_arg(name: &str) -> Vec<String> {
    vec!["--file".into(), fixture(name).display().to_string()]
}

fn exists(field: &str, text: &str) -> Answer {
    json(400, json!({ field: [text] }))
}

#[test]
fn help_documents_exit_codes_and_flags() {
    let out = Run::new().args(["--help"]).run().expect(0).stdout();
    for needle in [
        "Exit codes",
        "75",
        "--nautobot-url",
        "--nautobot-token-file",
        "--ucvni-group",
        "--dry-run",
        "--global-namespace",
        "--no-create-tenants",
        "--ca-cert",
        "--retry-budget",
        "NAUTOBOT_URL",
    ] {
        assert!(out.contains(needle), "--help lacks {needle}");
    }
}

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

#[test]
fn bad_input_exits_5_without_a_request() {
    let stub = Stub::start(vec![json(500, json!({}))]);
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
    assert!(stub.seen().is_empty(), "{:?}", stub.lines());
}

#[test]
fn unhandled_event_type_exits_6_naming_it() {
    let stub = Stub::start(vec![json(500, json!({}))]);
    let out = Run::against(&stub.url)
        .args(file_arg("network.create.start"))
        .run()
        .expect(6);
    assert!(out.stderr().contains("network.create.start"));
    assert!(stub.seen().is_empty());
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
    // No UCVNI group for a network that needs one.
    let stub = Stub::start(vec![json(201, json!({}))]);
    Run::against(&stub.url)
        .env("UCVNI_GROUP_NAME", "")
        .args(file_arg("network.create.end"))
        .run()
        .expect(7);
    assert!(stub.seen().is_empty());
}

#[test]
fn token_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, format!("  {TOKEN}\n")).unwrap();
    let stub = Stub::start(vec![json(204, json!({}))]);
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
    let stub = Stub::start(vec![json(403, json!({"detail": "Invalid token"}))]);
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
    assert_eq!(stub.seen().len(), 1);
}

#[test]
fn subnet_create_is_one_request_with_the_right_headers_and_body() {
    let stub = Stub::start(vec![json(201, json!({"id": SUB}))]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(0);
    let seen = stub.seen();
    assert_eq!(stub.lines(), ["POST /api/ipam/prefixes/"]);
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
        seen[0].body,
        Some(
            json!({"id": SUB, "prefix": "10.40.0.0/24", "status": {"name": "Active"},
                    "tenant": {"id": TENANT}, "namespace": {"name": NET}})
        )
    );
    let summary = out.summary();
    assert_eq!(summary["requests"], 1);
    assert_eq!(summary["event_type"], "subnet.create.end");
    assert_eq!(
        summary["results"],
        json!([{"kind": "prefix", "id": SUB, "result": "created"}])
    );
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
        let stub = Stub::start(vec![answer, json(200, json!({}))]);
        let out = Run::against(&stub.url)
            .args(file_arg("subnet.create.end"))
            .run()
            .expect(0);
        assert_eq!(
            stub.lines(),
            [
                "POST /api/ipam/prefixes/",
                &format!("PATCH /api/ipam/prefixes/{SUB}/")
            ]
        );
        assert!(
            stub.seen()[1].body.as_ref().unwrap().get("id").is_none(),
            "PATCH does not resend the id"
        );
        assert_eq!(out.summary()["results"][0]["result"], "updated");
    }
}

#[test]
fn subnet_before_its_network_creates_the_namespace() {
    let stub = Stub::start(vec![
        exists(
            "namespace",
            "Related object not found using the provided attributes: {'name': 'x'}",
        ),
        json(201, json!({})),
        json(201, json!({})),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.lines(),
        [
            "POST /api/ipam/prefixes/",
            "POST /api/ipam/namespaces/",
            "POST /api/ipam/prefixes/"
        ]
    );
    assert_eq!(stub.seen()[1].body, Some(json!({"name": NET})));
    assert_eq!(
        out.summary()["results"],
        json!([
            {"kind": "namespace", "name": NET, "result": "created"},
            {"kind": "prefix", "id": SUB, "result": "created"},
        ])
    );
}

#[test]
fn unknown_tenant_is_created_unless_told_not_to() {
    let missing = || {
        exists(
            "tenant",
            "Related object not found using the provided attributes: {'id': 'x'}",
        )
    };
    let stub = Stub::start(vec![missing(), json(201, json!({})), json(201, json!({}))]);
    Run::against(&stub.url)
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.lines(),
        [
            "POST /api/ipam/prefixes/",
            "POST /api/tenancy/tenants/",
            "POST /api/ipam/prefixes/"
        ]
    );
    assert_eq!(
        stub.seen()[1].body,
        Some(json!({"id": TENANT, "name": "a1b2c3d4e5f60718293a4b5c6d7e8f90"}))
    );

    let stub = Stub::start(vec![missing()]);
    let out = Run::against(&stub.url)
        .args(["--no-create-tenants"])
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(75);
    assert!(out.stderr().contains(TENANT));
    assert_eq!(stub.lines(), ["POST /api/ipam/prefixes/"]);
}

#[test]
fn update_of_something_never_created_creates_it() {
    let stub = Stub::start(vec![
        json(404, json!({"detail": "No Prefix matches the given query."})),
        json(201, json!({})),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.update.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.lines(),
        [
            format!("PATCH /api/ipam/prefixes/{SUB}/"),
            "POST /api/ipam/prefixes/".into()
        ]
    );
    assert_eq!(out.summary()["results"][0]["result"], "created");
}

#[test]
fn network_create_writes_namespace_then_ucvni() {
    let stub = Stub::start(vec![json(201, json!({})), json(201, json!({}))]);
    let out = Run::against(&stub.url)
        .args(file_arg("network.create.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.lines(),
        [
            "POST /api/ipam/namespaces/",
            "POST /api/plugins/undercloud-vni/ucvnis/"
        ]
    );
    assert_eq!(
        stub.seen()[1].body,
        Some(
            json!({"id": NET, "name": "blue-net", "status": {"name": "Active"}, "tenant": {"id": TENANT},
                    "ucvni_group": {"name": "test-group"}, "ucvni_id": 4100})
        )
    );
    assert_eq!(out.summary()["requests"], 2);
}

#[test]
fn network_update_patches_and_keeps_an_existing_namespace() {
    let stub = Stub::start(vec![
        exists("name", "namespace with this name already exists."),
        json(200, json!({})),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("network.update.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.lines(),
        [
            "POST /api/ipam/namespaces/".to_owned(),
            format!("PATCH /api/plugins/undercloud-vni/ucvnis/{NET}/")
        ]
    );
    assert_eq!(
        out.summary()["results"],
        json!([
            {"kind": "namespace", "name": NET, "result": "unchanged"},
            {"kind": "ucvni", "id": NET, "result": "updated"},
        ])
    );
}

#[test]
fn segmentation_id_conflict_exits_8_naming_both_networks() {
    let other = "99999999-8888-4777-8666-555555555555";
    let stub = Stub::start(vec![
        json(201, json!({})),
        exists(
            "__all__",
            "UCVNI with this Ucvni group and UCVNI_ID already exists.",
        ),
        json(404, json!({"detail": "No UCVNI matches the given query."})),
        json(200, json!({"count": 1, "results": [{"id": other}]})),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("network.create.end"))
        .run()
        .expect(8);
    let err = out.stderr();
    for needle in ["4100", "test-group", NET, other] {
        assert!(err.contains(needle), "{err} lacks {needle}");
    }
    assert_eq!(
        stub.lines(),
        [
            "POST /api/ipam/namespaces/".to_owned(),
            "POST /api/plugins/undercloud-vni/ucvnis/".into(),
            format!("PATCH /api/plugins/undercloud-vni/ucvnis/{NET}/"),
            "GET /api/plugins/undercloud-vni/ucvnis/?ucvni_group=test-group&ucvni_id=4100".into(),
        ]
    );
    assert!(out.stdout().is_empty());
}

#[test]
fn network_delete_removes_prefixes_then_namespace_then_ucvni() {
    let ns = "0e0e0e0e-1111-4222-8333-444444444444";
    let p1 = "0a0a0a0a-1111-4222-8333-444444444444";
    let stub = Stub::start(vec![
        json(
            200,
            json!({"count": 1, "next": null, "results": [{"id": ns}]}),
        ),
        json(
            200,
            json!({"count": 2, "next": null, "results": [{"id": p1}, {"id": SUB}]}),
        ),
        json(204, json!({})),
        json(204, json!({})),
        json(404, json!({"detail": "No UCVNI matches the given query."})),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("network.delete.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.lines(),
        [
            format!("GET /api/ipam/namespaces/?name={NET}"),
            format!("GET /api/ipam/prefixes/?namespace={ns}&limit=1000&offset=0"),
            "DELETE /api/ipam/prefixes/".into(),
            format!("DELETE /api/ipam/namespaces/{ns}/"),
            format!("DELETE /api/plugins/undercloud-vni/ucvnis/{NET}/"),
        ]
    );
    assert_eq!(stub.seen()[2].body, Some(json!([{"id": p1}, {"id": SUB}])));
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
fn deletes_of_things_already_gone_succeed() {
    let stub = Stub::start(vec![json(
        404,
        json!({"detail": "No Prefix matches the given query."}),
    )]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(0);
    assert_eq!(out.summary()["results"][0]["result"], "absent");

    // Network gone from Nautobot: only its listed subnet's prefix is swept.
    let stub = Stub::start(vec![
        json(200, json!({"count": 0, "next": null, "results": []})),
        json(204, json!({})),
        json(404, json!({"detail": "No UCVNI matches the given query."})),
    ]);
    Run::against(&stub.url)
        .args(file_arg("network.delete.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.lines(),
        [
            format!("GET /api/ipam/namespaces/?name={NET}"),
            "DELETE /api/ipam/prefixes/".into(),
            format!("DELETE /api/plugins/undercloud-vni/ucvnis/{NET}/"),
        ]
    );
}

#[test]
fn validation_errors_exit_8_without_retry() {
    let stub = Stub::start(vec![exists("prefix", "Enter a valid prefix.")]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(8);
    assert!(out.stderr().contains("Enter a valid prefix."));
    assert_eq!(stub.seen().len(), 1);
}

#[test]
fn busy_nautobot_is_retried_then_reported_transient() {
    let stub = Stub::start(vec![json(503, json!({"detail": "busy"}))]);
    let out = Run::against(&stub.url)
        .env("NAUTOBOT_ATTEMPTS", "3")
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(75);
    assert_eq!(stub.seen().len(), 3);
    assert!(
        out.stderr().contains("gave up after 3 attempt(s)"),
        "{}",
        out.stderr()
    );

    let stub = Stub::start(vec![
        json(502, json!({})),
        json(504, json!({})),
        json(204, json!({})),
    ]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(0);
    assert_eq!(out.summary()["requests"], 3);
}

#[test]
fn too_many_requests_honours_retry_after() {
    let stub = Stub::start(vec![
        Answer::Raw(429, vec![("Retry-After".into(), "1".into())], "{}".into()),
        json(204, json!({})),
    ]);
    let started = Instant::now();
    Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(0);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(stub.seen().len(), 2);

    // A Retry-After beyond the budget is not waited for.
    let stub = Stub::start(vec![Answer::Raw(
        429,
        vec![("Retry-After".into(), "3600".into())],
        "{}".into(),
    )]);
    let started = Instant::now();
    Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(75);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(stub.seen().len(), 1);
}

#[test]
fn a_dropped_connection_is_retried() {
    let stub = Stub::start(vec![Answer::Hangup, json(204, json!({}))]);
    Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(0);
    assert_eq!(stub.seen().len(), 2);
}

#[test]
fn a_server_error_is_transient_but_not_retried_in_process() {
    let stub = Stub::start(vec![json(
        500,
        json!({"error": "boom", "exception": "ValueError"}),
    )]);
    Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(75);
    assert_eq!(stub.seen().len(), 1);
}

#[test]
fn unreachable_nautobot_exits_75_within_the_budget() {
    let started = Instant::now();
    let out = Run::against(&closed_port_url())
        .env("NAUTOBOT_RETRY_BUDGET", "3")
        .env("NAUTOBOT_ATTEMPTS", "10")
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(75);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(out.stderr().contains("gave up after"), "{}", out.stderr());
}

#[test]
fn redirects_are_not_followed() {
    let stub = Stub::start(vec![Answer::Raw(
        301,
        vec![("Location".into(), "https://elsewhere/api/".into())],
        String::new(),
    )]);
    let out = Run::against(&stub.url)
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(7);
    assert!(out.stderr().contains("redirecting"));
    assert_eq!(stub.seen().len(), 1);
}

#[test]
fn the_token_never_shows_even_when_echoed() {
    let echo = json!({"detail": format!("bad request from Token {TOKEN}"), "headers": {"Authorization": format!("Token {TOKEN}")}});
    for answer in [
        json(400, echo.clone()),
        json(503, echo.clone()),
        json(201, echo),
    ] {
        let stub = Stub::start(vec![answer]);
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
    let out = Run::against("http://127.0.0.1:9")
        .args(["--dry-run", "-vvv"])
        .args(file_arg("network.create.end"))
        .run()
        .expect(0);
    assert!(!out.stdout().contains(TOKEN) && !out.stderr().contains(TOKEN));
    let help = Run::new()
        .env("NAUTOBOT_TOKEN", TOKEN)
        .args(["--help"])
        .run()
        .expect(0);
    assert!(!help.stdout().contains(TOKEN));
}

#[test]
fn bulk_events_write_every_element_and_report_the_worst_failure() {
    let mut event = decoded("subnet.create.end");
    let first = event["payload"]["subnet"].clone();
    let mut second = first.clone();
    second["id"] = json!("11111111-2222-4333-8444-555555555555");
    second["cidr"] = json!("10.41.0.0/24");
    event["payload"] = json!({"subnets": [first, second]});
    let stub = Stub::start(vec![json(503, json!({})), json(201, json!({}))]);
    let out = Run::against(&stub.url)
        .env("NAUTOBOT_ATTEMPTS", "1")
        .stdin(event.to_string())
        .run()
        .expect(75);
    assert_eq!(stub.seen().len(), 2, "the second subnet is still written");
    assert!(out.stderr().contains("503"));
}

#[test]
fn a_tenant_created_by_a_twin_is_not_a_conflict() {
    let missing = || {
        exists(
            "tenant",
            "Related object not found using the provided attributes: {'id': 'x'}",
        )
    };
    let stub = Stub::start(vec![
        missing(),
        exists("name", "tenant with this name already exists."),
        json(200, json!({"id": TENANT})),
        json(201, json!({})),
    ]);
    Run::against(&stub.url)
        .args(file_arg("subnet.create.end"))
        .run()
        .expect(0);
    assert_eq!(
        stub.lines(),
        [
            "POST /api/ipam/prefixes/".to_owned(),
            "POST /api/tenancy/tenants/".into(),
            format!("GET /api/tenancy/tenants/{TENANT}/"),
            "POST /api/ipam/prefixes/".into(),
        ]
    );

    // Another tenant holds the name: a conflict for a person.
    let stub = Stub::start(vec![
        missing(),
        exists("name", "tenant with this name already exists."),
        json(404, json!({})),
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
fn ca_bundle_problems_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    for ca in ["/nonexistent/ca.pem", not_pem.to_str().unwrap()] {
        let out = Run::against("https://127.0.0.1:9")
            .args(["--ca-cert", ca])
            .args(file_arg("subnet.delete.end"))
            .run()
            .expect(7);
        assert!(out.stderr().contains("CA bundle"), "{}", out.stderr());
    }
    // Over plain http the bundle is not needed, so a stale SSL_CERT_FILE is harmless.
    let stub = Stub::start(vec![json(204, json!({}))]);
    Run::against(&stub.url)
        .env("SSL_CERT_FILE", "/nonexistent/ca.pem")
        .args(file_arg("subnet.delete.end"))
        .run()
        .expect(0);
}

#[test]
fn tls_to_a_server_that_does_not_speak_it_is_not_retried_forever() {
    let stub = Stub::start(vec![json(204, json!({}))]);
    let https = stub.url.replace("http://", "https://");
    let started = Instant::now();
    let out = Run::against(&https)
        .args(file_arg("subnet.delete.end"))
        .run();
    assert!([7, 75].contains(&out.code()), "{}", out.stderr());
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[test]
fn replay_applies_events_in_order_over_one_connection() {
    let stub = Stub::start(vec![json(201, json!({})), json(200, json!({}))]);
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
    assert_eq!(
        stub.lines(),
        [
            "POST /api/ipam/prefixes/".to_owned(),
            format!("PATCH /api/ipam/prefixes/{SUB}/")
        ]
    );
    assert!(
        stub.seen().iter().all(|s| s.connection == 0),
        "one kept-alive connection"
    );
}

#[test]
fn replay_reads_rabbitmqadmin_dumps_and_stdin_and_dry_runs() {
    let body = std::fs::read_to_string(fixture("subnet.delete.end")).unwrap();
    let dump = json!([{"payload": body.trim(), "payload_encoding": "string", "routing_key": "notifications.info"}]);
    let stub = Stub::start(vec![json(204, json!({}))]);
    let out = Run::against(&stub.url)
        .args(["replay"])
        .stdin(dump.to_string())
        .run()
        .expect(0);
    assert_eq!(stub.lines(), [format!("DELETE /api/ipam/prefixes/{SUB}/")]);
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
        json(503, json!({})),
        json(400, json!({"prefix": ["bad"]})),
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
