//! What today's SDKs send beside events, and what the server does to everything before it is
//! stored: secrets scrubbed by the project's settings, with real clients against the real binary.

use crate::harness::{Server, clean_command, python, run_ok};

/// `python -c SCRIPT DSN` with a clean environment.
pub(crate) fn python_script(script: &str, dsn: &str) {
    let mut cmd = clean_command(python());
    cmd.arg("-c").arg(script).arg(dsn).env("PYTHONDONTWRITEBYTECODE", "1");
    run_ok(&mut cmd);
}

#[test]
fn sdk_frame_locals_are_scrubbed_with_the_projects_own_fields() {
    let mut server = Server::start_with_config(
        "[projects.shop]\nscrub_fields = [\"order_id\"]\nscrub_safe_fields = [\"auth_method\"]\n",
    );
    let project = server.create_project("shop");
    // The settings are read at start, for the projects that exist then.
    server.restart();
    python_script(
        r#"
import sys, sentry_sdk
sentry_sdk.init(sys.argv[1])
def charge(order_id, db_password, auth_method, note):
    raise ValueError("card 4111 1111 1111 1111 declined")
try:
    charge("A-17", "hunter2hunter2", "sso", "leave at door")
except Exception:
    sentry_sdk.capture_exception()
sentry_sdk.flush()
"#,
        &project.dsn,
    );
    let groups = server.groups(&project.slug);
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["title"], "ValueError: card [Filtered] declined");
    let event = &server.events_of(&groups[0])[0];
    let text = event.to_string();
    for secret in ["4111 1111", "hunter2hunter2", "A-17"] {
        assert!(!text.contains(secret), "{secret} was stored: {text}");
    }
    let frames = event["payload"]["exception"]["values"][0]["stacktrace"]["frames"].as_array().unwrap();
    let vars = &frames.last().unwrap()["vars"];
    assert_eq!(vars["db_password"], "[Filtered]");
    assert_eq!(vars["order_id"], "[Filtered]");
    assert_eq!(vars["auth_method"], "'sso'");
    assert_eq!(vars["note"], "'leave at door'");
    let meta = &event["payload"]["_meta"]["exception"]["values"]["0"];
    assert_eq!(meta["value"][""]["rem"][0][0], "@creditcard:filter", "{meta}");
}

/// `node tests/js-client/scenarios.mjs SCENARIO DSN`: the real JavaScript SDK.
pub(crate) fn node_client(scenario: &str, dsn: &str) {
    let script = crate::harness::workspace_root().join("tests/js-client/scenarios.mjs");
    let mut cmd = clean_command("node");
    cmd.arg(script).args([scenario, dsn]);
    run_ok(&mut cmd);
}

#[test]
fn js_capture_message_with_a_stack_is_one_message_issue() {
    let server = Server::start();
    let project = server.create_project("shop");
    node_client("message-with-stack", &project.dsn);
    let groups = server.groups(&project.slug);
    assert_eq!(groups.len(), 1, "{groups:#?}");
    // Titled by the message (the newest one's), not by a placeholder type.
    let title = groups[0]["title"].as_str().unwrap();
    assert!(title == "Order 17 could not be paid" || title == "Order 18 could not be paid", "{title}");
    assert_eq!(crate::harness::count(&groups[0]), 2);
    let event = &server.events_of(&groups[0])[0];
    assert_eq!(event["payload"]["exception"]["values"][0]["mechanism"]["synthetic"], true);
}

#[test]
fn js_streamed_spans_become_a_transaction_and_query_events() {
    let server = Server::start();
    let project = server.create_project("shop");
    node_client("spans", &project.dsn);
    let groups = server.groups(&project.slug);
    let summary = crate::harness::summary(&groups);
    let tx = crate::harness::find_group_titled(&groups, "transaction", "GET /orders");
    assert_eq!(crate::harness::count(tx), 1, "{summary}");
    let query = crate::harness::find_group_titled(&groups, "query", "SELECT * FROM orders WHERE id = ?");
    assert_eq!(crate::harness::count(query), 3, "{summary}");
    assert_eq!(query["culprit"], "postgresql · GET /orders", "{summary}");
    crate::harness::find_group(&groups, "exception", "order export failed");
    // The transaction's duration is the segment span's; each query's its own (about 5 ms).
    let event = &server.events_of(tx)[0];
    assert!(event["time_spent"].as_f64().unwrap() >= 15.0, "{event}");
    let events = server.events_of(query);
    assert!(events.iter().all(|e| e["time_spent"].as_f64().unwrap() >= 4.0), "{events:?}");
}

/// An envelope of `span` items, each `(item_count as claimed, spans)`.
fn span_envelope(items: &[(usize, Vec<String>)]) -> Vec<u8> {
    let mut body = String::from("{}\n");
    for (count, spans) in items {
        let payload = format!("{{\"version\":2,\"items\":[{}]}}", spans.join(","));
        body.push_str(&format!(
            "{{\"type\":\"span\",\"item_count\":{count},\"content_type\":\"application/vnd.sentry.items.span.v2+json\",\"length\":{}}}\n{payload}\n",
            payload.len()
        ));
    }
    body.into_bytes()
}

fn db_span(i: usize) -> String {
    format!(
        "{{\"span_id\":\"{i:016x}\",\"trace_id\":\"5f066c6f17bd443e963bc7df5800e0fc\",\"name\":\"SELECT * FROM carts WHERE id = {i}\",\
         \"start_timestamp\":{s},\"end_timestamp\":{e},\"is_segment\":false,\"attributes\":{{\"sentry.op\":{{\"value\":\"db\",\"type\":\"string\"}},\
         \"sentry.segment.id\":{{\"value\":\"00000000000000aa\",\"type\":\"string\"}},\"db.system\":{{\"value\":\"postgresql\",\"type\":\"string\"}}}}}}",
        s = 1_700_000_000.0 + i as f64,
        e = 1_700_000_000.002 + i as f64,
    )
}

#[test]
fn hostile_span_items_are_bounded_and_counted() {
    let server = Server::start();
    let project = server.create_project("shop");
    let path = format!("/api/{}/envelope/", project.id);
    let auth = project.auth();
    let headers = [("X-Sentry-Auth", auth.as_str())];
    let discarded = |reason: &str| crate::bad_input::discarded(&server, reason, "span");

    // item_count lies both ways: only the spans present count.
    let body = span_envelope(&[(50, vec![db_span(1), db_span(2)]), (0, vec![db_span(3)])]);
    assert_eq!(server.post(&path, &headers, &body).status, 200);
    let groups = server.groups(&project.slug);
    let query = crate::harness::find_group_titled(&groups, "query", "SELECT * FROM carts WHERE id = ?");
    assert_eq!(crate::harness::count(query), 3);

    // 100,000 spans in one item (as small as a span can be written): 1,000 are read, the rest
    // counted; those read have no ids, so they are counted as invalid.
    let body = span_envelope(&[(100_000, vec!["{}".to_string(); 100_000])]);
    assert_eq!(server.post(&path, &headers, &body).status, 200);
    assert_eq!(discarded("too_large"), 99_000);
    assert_eq!(discarded("invalid"), 1_000);

    // 1,600 real db spans over two items: 1,000 used from the envelope, 600 counted.
    let body = span_envelope(&[(800, (10..810).map(db_span).collect()), (800, (810..1610).map(db_span).collect())]);
    assert_eq!(server.post(&path, &headers, &body).status, 200);
    assert_eq!(discarded("too_large"), 99_600);
    let groups = server.groups(&project.slug);
    let query = crate::harness::find_group_titled(&groups, "query", "SELECT * FROM carts WHERE id = ?");
    assert_eq!(crate::harness::count(query), 1_003);
    assert_eq!(groups.len(), 1, "no transaction: the segment span never came");
}

#[test]
fn js_feedback_is_listed_and_linked_to_its_issue() {
    let server = Server::start();
    let project = server.create_project("shop");
    node_client("feedback", &project.dsn);
    let feedback = crate::harness::into_array(server.cli_json(&["feedback", "--project", "shop", "--json"]));
    assert_eq!(feedback.len(), 2, "{feedback:#?}");
    let groups = server.groups(&project.slug);
    let issue = crate::harness::find_group(&groups, "exception", "checkout broke");
    let about = feedback.iter().find(|f| f["name"] == "Alice").unwrap();
    assert_eq!(about["message"], "The pay button does nothing");
    assert_eq!(about["email"], "alice@example.com");
    assert_eq!(about["group_id"], issue["id"]);
    let alone = feedback.iter().find(|f| f["name"] == "Bob").unwrap();
    assert_eq!((alone["message"].as_str(), alone["group_id"].is_null()), (Some("Love the new cart"), true));
    let text = server.cli_ok(&["feedback", "--project", "shop"]);
    assert!(text.contains("Alice <alice@example.com>") && text.contains("    The pay button does nothing"), "{text}");
    // Feedback is not an issue of its own.
    assert_eq!(groups.len(), 1, "{}", crate::harness::summary(&groups));
}

#[test]
fn user_reports_through_the_endpoint_and_the_envelope_item() {
    let server = Server::start();
    let project = server.create_project("shop");
    let event_id = "0123456789abcdef0123456789abcdef";
    server.send_event(&project, &serde_json::json!({"event_id": event_id, "message": "checkout failed"}));
    let auth = project.auth();
    let path = format!("/api/{}/user-feedback/", project.id);
    let report = format!(r#"{{"event_id":"{event_id}","name":"Carol","email":"carol@example.com","comments":"It said try again, my token=abc123 is in the URL"}}"#);
    let r = server.post(&path, &[("X-Sentry-Auth", &auth), ("Content-Type", "application/json")], report.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    // The same report again (a client's retry) is the same feedback.
    assert_eq!(server.post(&path, &[("X-Sentry-Auth", &auth)], report.as_bytes()).status, 200);
    assert_eq!(server.post(&path, &[], report.as_bytes()).status, 401);
    assert_eq!(server.post(&path, &[("X-Sentry-Auth", &auth)], b"{\"name\":\"no comments\"}").status, 400);

    let item = r#"{"event_id":"0123456789abcdef0123456789abcdef","name":"Dan","email":"dan@example.com","comments":"Me too"}"#;
    let envelope = format!("{{}}\n{{\"type\":\"user_report\",\"length\":{}}}\n{item}\n", item.len());
    let env_path = format!("/api/{}/envelope/", project.id);
    assert_eq!(server.post(&env_path, &[("X-Sentry-Auth", &auth)], envelope.as_bytes()).status, 200);

    let feedback = crate::harness::into_array(server.cli_json(&["feedback", "--project", "shop", "--json"]));
    let group = &server.groups(&project.slug)[0];
    let mut names: Vec<&str> = feedback.iter().map(|f| f["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["Carol", "Dan"], "{feedback:#?}");
    assert!(feedback.iter().all(|f| f["group_id"] == group["id"]));
    let carol = feedback.iter().find(|f| f["name"] == "Carol").unwrap();
    assert_eq!(carol["message"], "It said try again, my token=[Filtered] is in the URL");
    let html = server.get_as(&server.admin_session(), &format!("/p/shop/issues/{}/", group["id"])).text();
    assert!(html.contains("id=\"issue-feedback\"") && html.contains("Me too"), "the issue page shows its feedback");
}

#[test]
fn span_items_are_scrubbed_too() {
    let server = Server::start();
    let project = server.create_project("shop");
    let span = r#"{"span_id":"00000000000000a1","trace_id":"5f066c6f17bd443e963bc7df5800e0fc","name":"SELECT * FROM users WHERE password = 'hunter2hunter2'",
        "start_timestamp":1700000000.0,"end_timestamp":1700000000.01,"is_segment":false,"attributes":{"sentry.op":{"value":"db","type":"string"},
        "sentry.segment.id":{"value":"00000000000000aa","type":"string"},"db.system":{"value":"postgresql","type":"string"}}}"#;
    let body = span_envelope(&[(1, vec![span.replace('\n', "")])]);
    let path = format!("/api/{}/envelope/", project.id);
    assert_eq!(server.post(&path, &[("X-Sentry-Auth", &project.auth())], &body).status, 200);
    let groups = server.groups(&project.slug);
    let text = format!("{groups:?}{:?}", server.events_of(&groups[0]));
    assert!(!text.contains("hunter2hunter2"), "{text}");
}
