//! Release health with real SDKs against the real binary: `sentry-sdk` sessions in application
//! mode (`session` items, one per run) and in a WSGI app (`sessions` aggregates per request);
//! the crash-free rates on the releases page, the release's page, the stream and `sentry
//! releases`.

use std::time::Duration;

use crate::harness::{Server, clean_command, python, run_ok, rust_client};

fn python_script(script: &str, dsn: &str) {
    let mut cmd = clean_command(python());
    cmd.arg("-c").arg(script).arg(dsn).env("PYTHONDONTWRITEBYTECODE", "1");
    run_ok(&mut cmd);
}

fn release<'a>(releases: &'a [serde_json::Value], version: &str) -> &'a serde_json::Value {
    releases.iter().find(|r| r["version"] == version).unwrap_or_else(|| panic!("no release {version} in {releases:#?}"))
}

#[test]
fn sessions_of_an_app_and_of_a_wsgi_server_give_each_release_its_crash_free_rates() {
    let server = Server::start();
    let project = server.create_project("shop");
    // An app run four times by three users: a clean run, one with a handled error, and one that
    // crashes (an unhandled exception ends it), then a clean one of that user again.
    python_script(
        r#"
import sys, sentry_sdk
from sentry_sdk.utils import event_from_exception
sentry_sdk.init(sys.argv[1], release="desktop@1.0", environment="production", auto_session_tracking=False)
def run(user, fail=None):
    sentry_sdk.set_user({"id": user})
    sentry_sdk.start_session()
    try:
        if fail == "handled":
            try:
                1 / 0
            except ZeroDivisionError:
                sentry_sdk.capture_exception()
        elif fail == "crash":
            try:
                {}["missing"]
            except KeyError:
                # What the excepthook integration does with an uncaught exception: unhandled.
                event, hint = event_from_exception(sys.exc_info(), client_options=sentry_sdk.get_client().options, mechanism={"type": "excepthook", "handled": False})
                sentry_sdk.capture_event(event, hint=hint)
    finally:
        sentry_sdk.end_session()
run("alice")
run("bob", "handled")
run("carol", "crash")
run("carol")
sentry_sdk.flush()
"#,
        &project.dsn,
    );
    // A WSGI app serving five requests, one of which raises: the SDK counts sessions per request.
    python_script(
        r#"
import sys, threading, urllib.request, sentry_sdk
from wsgiref.simple_server import make_server, WSGIRequestHandler
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware
sentry_sdk.init(sys.argv[1], release="api@2.0", environment="production")
def app(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
class Quiet(WSGIRequestHandler):
    def log_message(self, *a): pass
httpd = make_server("127.0.0.1", 0, SentryWsgiMiddleware(app), handler_class=Quiet)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
base = "http://127.0.0.1:%d" % httpd.server_port
for path in ["/", "/a", "/b", "/c", "/boom"]:
    try:
        urllib.request.urlopen(base + path).read()
    except Exception:
        pass
httpd.shutdown()
sentry_sdk.flush()
"#,
        &project.dsn,
    );
    let releases = || crate::harness::into_array(server.cli_json(&["releases", "--project", "shop", "--json"]));
    server.eventually("the WSGI app's session counts arrive", Duration::from_secs(20), || {
        releases().iter().any(|r| r["version"] == "api@2.0" && r["sessions"] == 5)
    });
    let all = releases();
    let desktop = release(&all, "desktop@1.0");
    assert_eq!(desktop["sessions"], 4, "{desktop:#}");
    assert_eq!(desktop["crashed"], 1, "{desktop:#}");
    assert_eq!(desktop["errored"], 1, "the handled error: {desktop:#}");
    assert_eq!((desktop["users"].as_u64(), desktop["crashed_users"].as_u64()), (Some(3), Some(1)));
    assert_eq!(desktop["crash_free_sessions"], 75.0);
    let users = desktop["crash_free_users"].as_f64().unwrap();
    assert!((users - 200.0 / 3.0).abs() < 0.01, "{desktop:#}");
    let api = release(&all, "api@2.0");
    assert_eq!((api["sessions"].as_u64(), api["crashed"].as_u64()), (Some(5), Some(1)), "{api:#}");
    assert_eq!(api["crash_free_sessions"], 80.0);

    // The same on the pages.
    let admin = server.admin_session();
    let list = server.get_as(&admin, "/p/shop/releases/");
    assert_eq!(list.status, 200);
    let html = list.text();
    assert!(html.contains("desktop@1.0") && html.contains("75%") && html.contains("80%"), "{html}");
    let page = server.get_as(&admin, "/p/shop/releases/desktop@1.0/");
    assert_eq!(page.status, 200, "a release known from its sessions has a page");
    let html = page.text();
    let cell = |id: &str| {
        let at = html.find(&format!("id=\"{id}\">")).unwrap_or_else(|| panic!("no #{id} in {html}")) + id.len() + 6;
        html[at..at + html[at..].find('<').unwrap()].to_string()
    };
    assert_eq!(cell("crash-free-sessions"), "75%");
    assert_eq!(cell("crash-free-users"), "66.67%");
    assert!(html.contains("id=\"health-days\""), "day by day");
    let stream = server.get_as(&admin, "/p/shop/").text();
    assert!(stream.contains("id=\"project-health\""), "the stream says how healthy the project is");
    assert!(stream.contains("crash-free sessions 77.78% of 9 sessions"), "{}", &stream[stream.find("project-health").unwrap_or(0)..][..200.min(stream.len())]);
    let text = server.cli_ok(&["releases", "--project", "shop"]);
    assert!(text.contains("desktop@1.0") && text.contains("75.00%"), "{text}");
}

#[test]
fn the_rust_crates_session_tracking_reports_a_clean_run_and_a_crash() {
    let server = Server::start();
    let project = server.create_project("worker");
    for scenario in ["session-ok", "session-ok", "session-crash"] {
        let mut cmd = clean_command(rust_client());
        cmd.arg(scenario).env("SENTRY_DSN", &project.dsn);
        run_ok(&mut cmd);
    }
    let releases = || crate::harness::into_array(server.cli_json(&["releases", "--project", "worker", "--json"]));
    server.eventually("three sessions", Duration::from_secs(20), || releases().iter().any(|r| r["sessions"] == 3));
    let all = releases();
    let r = release(&all, "shop@1.2.3");
    assert_eq!((r["sessions"].as_u64(), r["crashed"].as_u64()), (Some(3), Some(1)), "{r:#}");
    assert!((r["crash_free_sessions"].as_f64().unwrap() - 200.0 / 3.0).abs() < 0.01);
    // The session starts with the client, before the app names its user: no user is known,
    // and there is no crash-free users rate to give.
    assert_eq!((r["users"].as_u64(), r["crash_free_users"].is_null()), (Some(0), true), "{r:#}");
}

#[test]
fn the_recorded_django_apps_session_counts_land_in_its_release() {
    let server = Server::start();
    let (project, responses) = crate::corpus::replay(&server, "python-sentry-sdk/django-unhandled-exception--uncompressed");
    assert!(responses.iter().all(|r| r.status == 200));
    let releases = crate::harness::into_array(server.cli_json(&["releases", "--project", &project.slug, "--json"]));
    // The recording's `sessions` item: `{"exited":1,"crashed":1}` for shop@1.2.3.
    let r = release(&releases, "shop@1.2.3");
    assert_eq!((r["sessions"].as_u64(), r["crashed"].as_u64()), (Some(2), Some(1)), "{r:#}");
    assert_eq!(r["crash_free_sessions"], 50.0);
}
