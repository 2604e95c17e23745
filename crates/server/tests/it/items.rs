//! What today's SDKs send beside events, and what the server does to everything before it is
//! stored: secrets scrubbed by the project's settings, with real clients against the real binary.

use crate::harness::{Server, clean_command, python, run_ok};

/// `python -c SCRIPT DSN` with a clean environment.
fn python_script(script: &str, dsn: &str) {
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
fn node_client(scenario: &str, dsn: &str) {
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
