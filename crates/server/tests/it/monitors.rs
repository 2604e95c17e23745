//! Cron monitors end to end: the real `sentry-sdk` `@monitor` and `@sentry/node` `withMonitor`
//! check in; `sentry monitors --json` shows the runs; a failed run, a missed check-in and a run
//! past its longest time become issues (found by the scheduler, ticking every second here), and
//! a `when = "monitor_failed"` rule sends them to a webhook.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{HttpReceiver, Project, Server};
use crate::items::{node_client, python_script};

/// `sentry monitors --project SLUG --json`, once `ready` holds for it (or after 20 s).
fn monitors_when(server: &Server, slug: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = server.cli_json(&["monitors", "--project", slug, "--json"]);
        let list = out.as_array().cloned().unwrap_or_default();
        if ready(&list) || Instant::now() > deadline {
            return list;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn monitor<'a>(list: &'a [Value], slug: &str) -> Option<&'a Value> {
    list.iter().find(|m| m["slug"] == slug)
}

fn run_statuses(m: Option<&Value>) -> Vec<String> {
    m.and_then(|m| m["runs"].as_array()).map(|r| r.iter().map(|r| r["status"].as_str().unwrap_or("").to_string()).collect()).unwrap_or_default()
}

/// The issue titled `title`, once there (or after 20 s).
fn issue(server: &Server, slug: &str, title: &str) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(g) = server.groups(slug).into_iter().find(|g| g["title"] == title) {
            return Some(g);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Check-ins as a raw envelope, the way an SDK sends them.
pub(crate) fn send_check_ins(server: &Server, project: &Project, check_ins: &[Value]) {
    let mut body = String::from("{}\n");
    for c in check_ins {
        let item = c.to_string();
        body.push_str(&format!("{{\"type\":\"check_in\",\"length\":{}}}\n{item}\n", item.len()));
    }
    let auth = project.auth();
    let path = format!("/api/{}/envelope/", project.id);
    let r = server.post(&path, &[("X-Sentry-Auth", auth.as_str()), ("Content-Type", "application/x-sentry-envelope")], body.as_bytes());
    assert_eq!(r.status, 200);
}

#[test]
fn sdk_monitors_record_runs_and_failures_become_issues_and_alerts() {
    let hooks = HttpReceiver::start();
    let config = format!(
        "[monitors]\ncheck_interval_secs = 1\n\n[plugins.webhook]\nurl = \"{}\"\n\n\
         [[rules]]\nname = \"crons\"\nproject = \"shop\"\nwhen = \"monitor_failed\"\nthrottle_minutes = 0\nactions = [\"webhook\"]\n",
        hooks.url("/hook")
    );
    let server = Server::start_with_config(&config);
    let project = server.create_project("shop");

    // The real SDK: one run that succeeds, one that raises.
    python_script(
        r#"
import sys, sentry_sdk
from sentry_sdk.crons import monitor
sentry_sdk.init(sys.argv[1], release="shop@1.0", environment="production")
config = {"schedule": {"type": "interval", "value": 1, "unit": "minute"}, "checkin_margin": 1, "max_runtime": 5}
@monitor(monitor_slug="nightly", monitor_config=config)
def job(fail):
    if fail:
        raise RuntimeError("backup disk full")
job(False)
try:
    job(True)
except RuntimeError:
    pass
sentry_sdk.flush()
"#,
        &project.dsn,
    );
    let list = monitors_when(&server, "shop", |l| run_statuses(monitor(l, "nightly")).len() >= 2);
    let nightly = monitor(&list, "nightly").unwrap_or_else(|| panic!("{list:#?}"));
    assert_eq!(run_statuses(Some(nightly)), ["error", "ok"], "{nightly:#}");
    assert_eq!(nightly["schedule"], json!({"type": "interval", "value": "1 minute"}));
    assert_eq!(nightly["schedule_text"], "every minute");
    assert_eq!((nightly["checkin_margin"].as_u64(), nightly["max_runtime"].as_u64()), (Some(1), Some(5)));
    assert_eq!(nightly["status"], "error");
    assert_eq!(nightly["runs"][0]["environment"], "production");
    assert_eq!(nightly["runs"][1]["release"], "shop@1.0");
    assert!(nightly["runs"][1]["duration"].as_f64().is_some_and(|d| (0.0..30.0).contains(&d)), "{nightly:#}");
    assert!(nightly["next_expected"].is_string());

    // The failed run is an issue, and the rule sent it.
    let failed = issue(&server, "shop", "Monitor failure: nightly (check-in failed)").expect("the failed run's issue");
    assert_eq!(failed["level"], "error", "{failed:#}");
    let got = hooks.wait_for(1, Duration::from_secs(20), |r| String::from_utf8_lossy(&r.body).contains("Monitor failure: nightly"));
    assert!(String::from_utf8_lossy(&got[0].body).contains("monitor_failed"), "{}", String::from_utf8_lossy(&got[0].body));

    // Jobs that stopped checking in: one last seen five minutes ago (every minute, a minute's
    // margin: missed), one left in progress for three minutes (one minute at most: timed out).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let every_minute = json!({"schedule": {"type": "interval", "value": 1, "unit": "minute"}, "checkin_margin": 1, "max_runtime": 1});
    send_check_ins(
        &server,
        &project,
        &[
            json!({"check_in_id": "0123456789abcdef0123456789abcdef", "monitor_slug": "sync", "status": "ok", "duration": 2.0, "timestamp": now - 300.0, "monitor_config": every_minute}),
            json!({"check_in_id": "fedcba9876543210fedcba9876543210", "monitor_slug": "export", "status": "in_progress", "timestamp": now - 180.0, "monitor_config": every_minute}),
        ],
    );
    let list = monitors_when(&server, "shop", |l| {
        run_statuses(monitor(l, "sync")).first().is_some_and(|s| s == "missed") && run_statuses(monitor(l, "export")).first().is_some_and(|s| s == "timeout")
    });
    // One missed run per expected check-in that did not come (a slow machine may see the next
    // one pass too), never one per look of the scheduler (every second).
    let sync_runs = run_statuses(monitor(&list, "sync"));
    let misses = sync_runs.iter().filter(|s| *s == "missed").count();
    assert!((1..=3).contains(&misses) && sync_runs.last().is_some_and(|s| s == "ok") && sync_runs.len() == misses + 1, "{list:#?}");
    assert_eq!(monitor(&list, "sync").unwrap()["status"], "missed");
    let export = monitor(&list, "export").unwrap();
    // Missed too: its next check-in was due two minutes ago.
    assert!(run_statuses(Some(export)).contains(&"timeout".to_string()), "{export:#}");
    let missed = issue(&server, "shop", "Monitor failure: sync (missed check-in)").expect("the missed check-in's issue");
    let counted = crate::harness::count(&missed);
    assert!(counted >= 1 && counted as usize <= run_statuses(monitor(&monitors_when(&server, "shop", |_| true), "sync")).iter().filter(|s| *s == "missed").count(), "one event per missed run, not one per tick: {counted}");
    issue(&server, "shop", "Monitor failure: export (timed out)").expect("the timeout's issue");
    hooks.wait_for(1, Duration::from_secs(20), |r| String::from_utf8_lossy(&r.body).contains("Monitor failure: sync (missed check-in)"));

    // The dashboard's Monitors page lists them, with links to their issues.
    let session = server.admin_session();
    let page = server.get_as(&session, "/p/shop/monitors/");
    assert_eq!(page.status, 200);
    let page = page.text();
    for slug in ["nightly", "sync", "export"] {
        assert!(page.contains(&format!("id=\"monitor-{slug}\"")), "{slug}");
    }
    assert!(page.contains("?q=monitor.slug%3Async"), "a link to the monitor's issues");
}

#[test]
fn js_with_monitor_checks_in() {
    let server = Server::start_with_config("[monitors]\ncheck_interval_secs = 1\n");
    let project = server.create_project("shop");
    node_client("monitor", &project.dsn);
    let list = monitors_when(&server, "shop", |l| run_statuses(monitor(l, "js-report")).len() >= 2);
    let m = monitor(&list, "js-report").unwrap_or_else(|| panic!("{list:#?}"));
    assert_eq!(run_statuses(Some(m)), ["error", "ok"], "{m:#}");
    assert_eq!(m["schedule"], json!({"type": "crontab", "value": "*/5 * * * *"}));
    assert_eq!((m["timezone"].as_str(), m["checkin_margin"].as_u64(), m["max_runtime"].as_u64()), (Some("Europe/Vienna"), Some(2), Some(10)));
    assert!(m["runs"][0]["duration"].as_f64().is_some(), "{m:#}");
    issue(&server, "shop", "Monitor failure: js-report (check-in failed)").expect("the failed run's issue");
}

#[test]
fn bad_monitor_configs_are_dropped_and_counted() {
    let server = Server::start();
    let project = server.create_project("shop");
    send_check_ins(
        &server,
        &project,
        &[
            json!({"check_in_id": "0123456789abcdef0123456789abcdef", "monitor_slug": "bad", "status": "ok",
                   "monitor_config": {"schedule": {"type": "crontab", "value": "every night"}}}),
            json!({"check_in_id": "0123456789abcdef0123456789abcdee", "monitor_slug": "bad", "status": "ok",
                   "monitor_config": {"schedule": {"type": "crontab", "value": "0 2 * * *"}, "timezone": "Mars/Olympus"}}),
        ],
    );
    assert_eq!(crate::bad_input::discarded(&server, "invalid", "check_in"), 2);
    assert!(monitors_when(&server, "shop", |_| true).is_empty());
    assert!(server.cli_ok(&["monitors", "--project", "shop"]).contains("No cron monitors"));
}
