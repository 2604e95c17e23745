//! Structured logs from today's SDKs (`enable_logs` / `enableLogs`): stored beside the events of
//! their trace, listed by `sentry logs` and the Logs page, shown on an event's page, bounded per
//! envelope and by their own budget, which never costs an event its place.

use serde_json::Value;

use crate::harness::{Server, clean_command, into_array, python, run_ok};

fn logs(server: &Server, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["logs", "--project", "shop", "--json", "--limit", "1000"];
    args.extend_from_slice(extra);
    into_array(server.cli_json(&args))
}

fn bodies(logs: &[Value]) -> Vec<&str> {
    logs.iter().map(|l| l["body"].as_str().unwrap_or_default()).collect()
}

#[test]
fn python_logs_of_a_trace_are_listed_searched_and_shown_on_its_error() {
    let server = Server::start();
    let project = server.create_project("shop");
    let mut cmd = clean_command(python());
    cmd.arg("-c")
        .arg(
            r#"
import sys, sentry_sdk
sentry_sdk.init(sys.argv[1], enable_logs=True, release="shop@1.0", environment="production", traces_sample_rate=1.0)
with sentry_sdk.start_transaction(name="checkout"):
    sentry_sdk.logger.info("Order {order_id} paid", order_id=7)
    sentry_sdk.logger.warning("Stock low for {sku}", sku="A-1")
    sentry_sdk.logger.error("Payment failed", attributes={"card": "visa", "password": "hunter2"})
    try:
        raise ValueError("card declined")
    except Exception:
        sentry_sdk.capture_exception()
sentry_sdk.flush()
"#,
        )
        .arg(&project.dsn)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    run_ok(&mut cmd);

    let all = logs(&server, &[]);
    let mut sorted = bodies(&all);
    sorted.sort();
    assert_eq!(sorted, ["Order 7 paid", "Payment failed", "Stock low for A-1"], "{all:#?}");
    let paid = all.iter().find(|l| l["body"] == "Order 7 paid").unwrap();
    assert_eq!((paid["level"].as_str(), paid["template"].as_str()), (Some("info"), Some("Order {order_id} paid")));
    assert_eq!((paid["release"].as_str(), paid["environment"].as_str()), (Some("shop@1.0"), Some("production")));
    assert_eq!(paid["attributes"]["sentry.message.parameter.order_id"], 7);
    let failed = all.iter().find(|l| l["body"] == "Payment failed").unwrap();
    assert_eq!((failed["level"].as_str(), failed["attributes"]["card"].as_str()), (Some("error"), Some("visa")));
    assert_eq!(failed["attributes"]["password"], "[Filtered]", "scrubbed");
    assert_eq!(all.iter().find(|l| l["body"] == "Stock low for A-1").unwrap()["level"], "warn");
    let trace = paid["trace_id"].as_str().expect("a trace id").to_string();
    assert!(all.iter().all(|l| l["trace_id"] == trace.as_str()), "one trace: {all:#?}");

    // Filters, as on the page.
    assert_eq!(bodies(&logs(&server, &["--level", "error"])), ["Payment failed"]);
    assert_eq!(bodies(&logs(&server, &["--search", "order_id:7"])), ["Order 7 paid"]);
    assert_eq!(bodies(&logs(&server, &["--search", "stock level:warn"])), ["Stock low for A-1"]);
    let bad = server.cli(&["logs", "--project", "shop", "--level", "loud"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("not a log level"), "{bad:?}");

    // The error's event page lists the logs of its trace.
    let groups = server.groups("shop");
    let issue = crate::harness::find_group(&groups, "exception", "card declined");
    let event = &server.events_of(issue)[0];
    assert_eq!(event["payload"]["contexts"]["trace"]["trace_id"], trace.as_str());
    let s = server.admin_session();
    let page = server.get_as(&s, &format!("/p/shop/issues/{}/events/{}/", issue["id"], event["event_id"].as_str().unwrap()));
    assert_eq!(page.status, 200);
    let html = page.text();
    let section = &html[html.find("id=\"trace-logs\"").expect("a Logs section")..];
    for body in ["Order 7 paid", "Stock low for A-1", "Payment failed"] {
        assert!(section.contains(body), "{body} on the event's page");
    }

    // The Logs page: by level, by key:value, and linked from the project.
    let page = |q: &str| {
        let r = server.get_as(&s, &format!("/p/shop/logs/{q}"));
        assert_eq!(r.status, 200, "{q}");
        r.text()
    };
    let errors = page("?level=error");
    assert!(errors.contains("Payment failed") && !errors.contains("Order 7 paid"));
    let by_attribute = page("?q=order_id%3A7");
    assert!(by_attribute.contains("Order 7 paid") && !by_attribute.contains("Stock low"));
    assert!(page("?q=level%3Aloud").contains("is not a log level"), "a bad term is said, not a failure");
    assert!(page(&format!("?q=trace%3A{trace}&fragment=1")).starts_with("<div id=\"log-rows\">"), "the refresh renders the list only");
    assert!(page("?cursor=nonsense").contains("the page link is broken"));
    assert!(server.get_as(&s, "/p/shop/").text().contains("/p/shop/logs/"));
}

#[test]
fn node_logs_keep_their_template_and_attributes() {
    let server = Server::start();
    let project = server.create_project("shop");
    let script = crate::harness::workspace_root().join("tests/js-client/scenarios.mjs");
    let mut cmd = clean_command("node");
    cmd.arg(script).args(["logs", &project.dsn]);
    run_ok(&mut cmd);
    let all = logs(&server, &[]);
    let mut levels: Vec<(&str, &str)> = all.iter().map(|l| (l["level"].as_str().unwrap(), l["body"].as_str().unwrap())).collect();
    levels.sort();
    assert_eq!(levels, [("error", "Payment failed"), ("info", "Order 42 shipped"), ("warn", "Stock low")], "{all:#?}");
    let shipped = all.iter().find(|l| l["body"] == "Order 42 shipped").unwrap();
    assert_eq!(shipped["template"], "Order %s shipped", "{shipped:#?}");
    assert_eq!(shipped["attributes"]["carrier"], "ups");
    assert_eq!((shipped["release"].as_str(), shipped["environment"].as_str()), (Some("shop@1.2.3"), Some("production")));
    assert_eq!(bodies(&logs(&server, &["--search", "order_id:43"])), ["Payment failed"]);
}

/// An envelope of `log` items, each a list of logs as JSON.
fn log_envelope(event: Option<&str>, items: &[Vec<String>]) -> Vec<u8> {
    let mut body = String::from("{}\n");
    if let Some(e) = event {
        body.push_str(&format!("{{\"type\":\"event\",\"length\":{}}}\n{e}\n", e.len()));
    }
    for logs in items {
        let payload = format!("{{\"items\":[{}]}}", logs.join(","));
        body.push_str(&format!(
            "{{\"type\":\"log\",\"item_count\":{},\"content_type\":\"application/vnd.sentry.items.log+json\",\"length\":{}}}\n{payload}\n",
            logs.len(),
            payload.len()
        ));
    }
    body.into_bytes()
}

fn log_line(i: usize) -> String {
    format!(
        "{{\"timestamp\":{},\"level\":\"info\",\"body\":\"line {i}\",\"attributes\":{{\"n\":{{\"value\":{i},\"type\":\"integer\"}}}}}}",
        1_700_000_000.0 + i as f64 / 1000.0
    )
}

#[test]
fn an_envelope_stores_at_most_1000_logs_and_counts_the_rest() {
    let server = Server::start();
    let project = server.create_project("shop");
    let path = format!("/api/{}/envelope/", project.id);
    let auth = project.auth();
    let body = log_envelope(None, &[(0..3000).map(log_line).collect(), (3000..5000).map(log_line).collect()]);
    assert_eq!(server.post(&path, &[("X-Sentry-Auth", auth.as_str())], &body).status, 200);
    let stored = logs(&server, &[]);
    assert_eq!(stored.len(), 1000);
    assert_eq!(stored[0]["body"], "line 999", "the first 1,000, newest first");
    assert_eq!(crate::bad_input::discarded(&server, "too_large", "log"), 4000);
    // The same envelope again (a client's retry) stores nothing twice.
    assert_eq!(server.post(&path, &[("X-Sentry-Auth", auth.as_str())], &body).status, 200);
    assert_eq!(logs(&server, &[]).len(), 1000);

    // The Logs page shows 100 at a time; "Older" goes on from the last one.
    let s = server.admin_session();
    let first = server.get_as(&s, "/p/shop/logs/").text();
    assert!(first.contains("line 999") && first.contains("line 900") && !first.contains("line 899<"), "the newest 100");
    let older = first.split("id=\"older-logs\"").next().and_then(|head| head.rsplit("href=\"").next()).expect("an Older link");
    let older = older.trim_end_matches(['"', ' ']).replace("&amp;", "&").replace("&#38;", "&");
    let second = server.get_as(&s, &older).text();
    assert!(second.contains("line 899") && second.contains("line 800") && !second.contains("line 900<"), "{older}");
    assert!(second.contains("id=\"newest-logs\""));
}

#[test]
fn a_flood_of_logs_past_their_budget_costs_no_event() {
    let server = Server::start_with_config("[ingest]\nmax_logs_per_second = 200\n\n[rate_limits]\nper_key_per_minute = 25\n");
    let project = server.create_project("shop");
    let path = format!("/api/{}/envelope/", project.id);
    let auth = project.auth();
    // Envelopes of logs alone, more than the key's events per minute: they spend the logs'
    // budget only.
    for n in 0..40 {
        let r = server.post(&path, &[("X-Sentry-Auth", auth.as_str())], &log_envelope(None, &[vec![log_line(100_000 + n)]]));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let events = 20;
    for n in 0..events {
        let event = format!("{{\"event_id\":\"{:032x}\",\"message\":\"checkout {n}\",\"level\":\"error\"}}", n + 1);
        let lines: Vec<String> = (n * 1000..n * 1000 + 1000).map(log_line).collect();
        let r = server.post(&path, &[("X-Sentry-Auth", auth.as_str())], &log_envelope(Some(&event), &[lines]));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let groups = server.groups("shop");
    let stored_events: u64 = groups.iter().map(crate::harness::count).sum();
    assert_eq!(stored_events, events as u64, "every event stored: {}", crate::harness::summary(&groups));
    let stored_logs = logs(&server, &[]).len() as u64;
    let limited = crate::bad_input::discarded(&server, "rate_limited", "log");
    assert!((200..1000).contains(&stored_logs), "the budget held: {stored_logs} stored");
    assert_eq!(stored_logs + limited, 20_040, "each log stored or counted");
}
