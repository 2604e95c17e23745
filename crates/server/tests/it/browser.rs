//! The dashboard in headless Chromium against the real binary, with the real Python SDK: log in,
//! watch an error arrive live without reloading, filter by a tag, sort, page, open the issue,
//! read its stack trace, resolve it, see it leave the unresolved tab, send it again and see it
//! reopen as a regression. Screenshots of the stream and the group page go to `test-artifacts/`.

use serde_json::json;

use crate::harness::{
    client_script, clean_command, facts, is_png, python, run_ok, Browser, Project, Server, ADMIN_EMAIL, ADMIN_PASSWORD,
};

const WORDS: [&str; 30] = ["apple", "banana", "cherry", "damson", "elder", "fig", "grape", "hazel", "iris", "juniper", "kiwi", "lemon", "mango", "nectar", "olive", "papaya", "quince", "raisin", "sloe", "tangelo", "ugli", "vanilla", "walnut", "xigua", "yuzu", "zucchini", "almond", "basil", "clove", "dill"];

/// Runs the real sentry-sdk scenario that raises a KeyError in `apply_coupon`.
fn sdk_checkout_error(project: &Project) -> serde_json::Value {
    let mut cmd = clean_command(python());
    cmd.arg(client_script("dashboard_scenarios.py")).args(["checkout-error", &project.dsn]);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1").env("PYTHONUNBUFFERED", "1");
    facts(&run_ok(&mut cmd))
}

fn log_in(b: &Browser, server: &Server) {
    b.goto(&server.url("/p/shop/"));
    b.wait_until("the login page", |b| b.current_url().contains("/login?next="));
    b.fill("input[name=email]", ADMIN_EMAIL);
    b.fill("input[name=password]", ADMIN_PASSWORD);
    b.click("#login-form button[type=submit]");
    b.wait_until("the stream after logging in", |b| b.current_url().ends_with("/p/shop/"));
}

fn row_titles(b: &Browser) -> Vec<String> {
    b.texts(".group-row a.title")
}

#[test]
fn stream_live_filter_sort_page_then_resolve_and_regress() {
    let server = Server::start();
    let project = server.create_project("shop");
    let out = server.create_user(ADMIN_EMAIL, ADMIN_PASSWORD, true);
    assert!(out.status.success());
    // 30 groups so there is a second page; the busiest ones on web-2.
    for (n, word) in WORDS.iter().enumerate() {
        let srv = if n % 2 == 0 { "web-9" } else { "web-2" };
        for _ in 0..(n % 7 + 1) {
            server.send_event(&project, &json!({"message": format!("stock check {word} slow"), "server_name": srv, "level": "warning"}));
        }
    }

    let b = Browser::start();
    log_in(&b, &server);
    assert_eq!(row_titles(&b).len(), 25);
    // Newest first, so the new issue lands on this page (by priority, busier issues come first).
    b.click("nav[aria-label=Sort] a[href*='sort=last_seen']");
    b.wait_until("the last-seen sort", |b| b.current_url().contains("sort=last_seen"));
    b.wait_until("the live stream to connect", |b| b.js("return document.body.dataset.live || ''") == "connected");
    b.js("window.__notReloaded = true");

    // A real SDK sends an error: it shows up without a reload.
    let first = sdk_checkout_error(&project);
    assert!(first["event_id"].is_string());
    b.wait_until("the KeyError to appear live", |b| row_titles(b).iter().any(|t| t.contains("KeyError")));
    assert_eq!(b.js("return window.__notReloaded === true"), true, "the page reloaded instead of updating live");
    b.screenshot("stream.png");

    // Filter by a tag with the select (the form submits on change): only web-1 (the SDK's).
    // (The live update refreshes the list; the filter's choices come with a page load.)
    b.goto(&b.current_url());
    b.select("select[name=server]", "web-1");
    b.wait_until("the server filter in the URL", |b| b.current_url().contains("server=web-1"));
    let titles = row_titles(&b);
    assert_eq!(titles.len(), 1, "{titles:?}");
    assert!(titles[0].contains("KeyError"));

    // Clear it and sort by frequency: the busiest groups first; the URL says so.
    b.goto(&server.url("/p/shop/"));
    b.click("nav[aria-label=Sort] a[href*='sort=frequency']");
    b.wait_until("the frequency sort", |b| b.current_url().contains("sort=frequency"));
    let counts: Vec<u64> = b.texts(".group-row .count").iter().map(|c| c.parse().unwrap_or(0)).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "not by frequency: {counts:?}");
    assert_eq!(counts[0], 7);

    // Page: the next page has the rest, and its URL can be shared.
    let page_one = row_titles(&b);
    b.click("#next-page");
    b.wait_until("page two", |b| b.current_url().contains("cursor="));
    let page_two = row_titles(&b);
    assert_eq!(page_one.len() + page_two.len(), 31, "{page_one:?} {page_two:?}");
    assert!(page_two.iter().all(|t| !page_one.contains(t)));
    let shared = b.current_url();
    b.goto(&shared);
    assert_eq!(row_titles(&b), page_two);

    // Open the issue: its stack trace, with the in-app frame, source and locals.
    b.goto(&server.url("/p/shop/?q=KeyError"));
    b.click(".group-row a.title");
    b.wait_until("the group page", |b| b.exists("#group-title"));
    assert!(b.text("#group-title").contains("KeyError"));
    b.wait_for_text(".frame.in-app", "apply_coupon");
    let page = b.js("return document.body.innerText").as_str().unwrap_or("").to_string();
    for needle in ["discounts[code]", "SUMMER", "coupon entered", "customer", "web-1"] {
        assert!(page.contains(needle), "the group page lacks {needle:?}");
    }
    b.screenshot("group.png");
    let group_url = b.current_url();

    // Resolve: it leaves the unresolved tab and shows on the resolved one.
    b.click("#resolve");
    b.wait_for_text("#group-status", "resolved");
    b.goto(&server.url("/p/shop/?q=KeyError"));
    assert!(row_titles(&b).is_empty(), "a resolved issue is still listed as unresolved");
    b.goto(&server.url("/p/shop/?q=KeyError&status=resolved"));
    assert_eq!(row_titles(&b).len(), 1);

    // The SDK sends it again: a regression, back in the unresolved tab, live.
    b.goto(&server.url("/p/shop/?q=KeyError"));
    b.wait_until("the live stream to connect", |b| b.js("return document.body.dataset.live || ''") == "connected");
    sdk_checkout_error(&project);
    b.wait_until("the regression to appear live", |b| row_titles(b).iter().any(|t| t.contains("KeyError")));
    b.goto(&group_url);
    b.wait_for_text("#group-status", "unresolved");
    assert!(b.exists("#regression"), "the group page does not say regression");

    // Phone width still shows the list.
    b.set_window_size(390, 844);
    b.goto(&server.url("/p/shop/"));
    assert!(!row_titles(&b).is_empty());
    b.screenshot("stream-phone.png");
    for shot in ["stream.png", "group.png", "stream-phone.png"] {
        assert!(is_png(&crate::harness::workspace_root().join("test-artifacts").join(shot)), "{shot}");
    }
}

#[test]
fn every_page_renders_in_chromium() {
    let server = Server::start();
    let project = server.create_project("shop");
    assert!(server.create_user(ADMIN_EMAIL, ADMIN_PASSWORD, true).status.success());
    server.send_event(&project, &json!({"message": "hello", "event_id": "cccccccccccccccccccccccccccccccc"}));
    server.cli_ok(&["capture", "Query", "--dsn", &project.dsn, "--field", "query=SELECT 1", "--time-spent", "36"]);
    let id = server.groups("shop").iter().find(|g| g["kind"] == "message").unwrap()["id"].as_u64().unwrap();
    let b = Browser::start();
    log_in(&b, &server);
    for (path, expect) in [
        ("/dashboard".to_string(), "Trending"),
        ("/dashboard?interval=15m".into(), "New issues"),
        ("/p/shop/?sort=time_spent".into(), "SELECT"),
        (format!("/p/shop/issues/{id}/"), "Why these events are grouped"),
        (format!("/p/shop/issues/{id}/events/cccccccccccccccccccccccccccccccc/"), "Raw JSON"),
        ("/settings/".into(), "Organisations"),
        ("/o/default/settings/".into(), "Audit log"),
        ("/settings/projects/shop/".into(), "Client keys"),
    ] {
        b.goto(&server.url(&path));
        b.wait_until(&format!("{path} to show {expect:?}"), |b| {
            b.js("return document.body.innerText").as_str().unwrap_or("").contains(expect)
        });
        let errors = b.js("return document.querySelectorAll('.error-message').length");
        assert_eq!(errors, 0, "{path} shows an error");
    }
    // Keyboard: j selects the first row, o opens it.
    b.goto(&server.url("/p/shop/"));
    b.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'j'}))");
    b.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'o'}))");
    b.wait_until("o to open the selected issue", |b| b.current_url().contains("/issues/"));
    // Logging out ends the session.
    b.click("header form button");
    b.wait_until("the login page", |b| b.current_url().contains("/login"));
    b.goto(&server.url("/dashboard"));
    b.wait_until("the login page again", |b| b.current_url().contains("/login"));
}

/// An owner invites a member of the default team; the member opens the link, sets a password
/// and sees only their team's project; removed from the organisation, their next click finds
/// nothing. Screenshots of the organisation's settings at desktop and phone width go to
/// `test-artifacts/`.
#[test]
fn an_invited_member_sees_only_their_teams_project_until_removed() {
    let server = Server::start();
    let project = server.create_project("shop");
    server.send_event(&project, &json!({"message": "checkout failed", "event_id": "dddddddddddddddddddddddddddddddd"}));
    server.cli_ok(&["team", "create", "--org", "default", "Other"]);
    server.cli_ok(&["project", "create", "hidden", "--team", "other"]);
    assert!(server.create_user(ADMIN_EMAIL, ADMIN_PASSWORD, true).status.success());
    let b = Browser::start();
    log_in(&b, &server);
    b.goto(&server.url("/o/default/settings/"));
    b.fill("form[action$='/invitations'] input[name=email]", "new@example.com");
    b.select("form[action$='/invitations'] select[name=team]", "1");
    b.click("form[action$='/invitations'] button[type=submit]");
    b.wait_until("the invitation link", |b| b.exists("#secret"));
    let link = b.text("#secret");
    assert!(link.contains("/invite/"), "{link}");
    // Tall windows: the whole page in one picture.
    b.set_window_size(1280, 2400);
    b.screenshot("org-settings.png");
    b.set_window_size(400, 3600);
    b.screenshot("org-settings-phone.png");
    b.goto(&server.url("/settings/"));
    b.screenshot("settings-phone.png");
    b.set_window_size(1280, 1000);
    b.click("header form button");
    b.wait_until("the login page", |b| b.current_url().contains("/login"));

    b.goto(&link);
    b.fill("input[name=password]", "member password");
    b.fill("input[name=password_again]", "member password");
    b.click("#invite-form button[type=submit]");
    b.wait_until("the dashboard", |b| b.current_url().ends_with("/dashboard"));
    let nav = b.texts("header nav a");
    assert!(nav.iter().any(|a| a == "shop"), "{nav:?}");
    assert!(!nav.iter().any(|a| a == "hidden"), "{nav:?}");
    b.goto(&server.url("/p/hidden/"));
    b.wait_until("a not-found page", |b| b.js("return document.body.innerText").as_str().unwrap_or("").contains("there is no project"));
    b.goto(&server.url("/p/shop/"));
    b.wait_until("the stream", |b| !row_titles(b).is_empty());

    server.cli_ok(&["member", "remove", "--org", "default", "new@example.com"]);
    b.click(".group-row a.title");
    b.wait_until("a not-found page after removal", |b| {
        b.js("return document.body.innerText").as_str().unwrap_or("").contains("there is no project")
    });
    for shot in ["org-settings.png", "org-settings-phone.png", "settings-phone.png"] {
        assert!(is_png(&crate::harness::workspace_root().join("test-artifacts").join(shot)), "{shot}");
    }
}

#[test]
fn feedback_page_and_the_issue_show_what_people_wrote() {
    let server = Server::start();
    let project = server.create_project("shop");
    let script = crate::harness::workspace_root().join("tests/js-client/scenarios.mjs");
    let mut cmd = clean_command("node");
    cmd.arg(script).args(["feedback", &project.dsn]);
    run_ok(&mut cmd);
    assert!(server.create_user(ADMIN_EMAIL, ADMIN_PASSWORD, true).status.success());
    let b = Browser::start();
    log_in(&b, &server);
    b.click("#feedback-link");
    b.wait_until("the feedback page", |b| b.current_url().ends_with("/p/shop/feedback/"));
    // Both, newest first; the SDK may send the two at the same moment, so either may be first.
    let mut items = b.texts(".feedback-item blockquote");
    items.sort();
    assert_eq!(items, ["Love the new cart", "The pay button does nothing"]);
    b.set_window_size(1280, 900);
    assert!(is_png(&b.screenshot("feedback.png")));
    b.set_window_size(390, 844);
    assert!(is_png(&b.screenshot("feedback-phone.png")));
    b.set_window_size(1280, 900);
    b.click(".feedback-item a[href*='/issues/']");
    b.wait_until("the issue", |b| b.exists("#issue-feedback"));
    assert_eq!(b.texts("#issue-feedback blockquote"), ["The pay button does nothing"]);
}

/// The Logs page in Chromium: reached from the project, filtered by a level, unfolded, and
/// refreshed by itself when a new log arrives. Shot at 1280 and 400 px to
/// `test-artifacts/logs*.png`.
#[test]
fn logs_page_filters_unfolds_and_refreshes() {
    let server = Server::start();
    let project = server.create_project("shop");
    let send = |logs: serde_json::Value| {
        let payload = json!({"items": logs}).to_string();
        let envelope = format!("{{}}\n{{\"type\":\"log\",\"length\":{}}}\n{payload}\n", payload.len());
        let r = server.post(&format!("/api/{}/envelope/", project.id), &[("X-Sentry-Auth", &project.auth())], envelope.as_bytes());
        assert_eq!(r.status, 200);
    };
    let now = store::now();
    let attrs = json!({"sentry.message.template": {"value": "Order {order_id} paid", "type": "string"},
                       "sentry.message.parameter.order_id": {"value": 7, "type": "integer"},
                       "sentry.release": {"value": "shop@1.2.3", "type": "string"}, "sentry.environment": {"value": "production", "type": "string"}});
    send(json!([
        {"timestamp": now - 3.0, "level": "info", "body": "Order 7 paid", "trace_id": "5f066c6f17bd443e963bc7df5800e0fc", "attributes": attrs},
        {"timestamp": now - 2.0, "level": "warn", "body": "Stock low for A-1", "attributes": {"sku": {"value": "A-1", "type": "string"}}},
        {"timestamp": now - 1.0, "level": "error", "body": "Payment failed for order 8", "trace_id": "5f066c6f17bd443e963bc7df5800e0fc",
         "attributes": {"card": {"value": "visa", "type": "string"}}},
    ]));
    assert!(server.create_user(ADMIN_EMAIL, ADMIN_PASSWORD, true).status.success());
    let b = Browser::start();
    log_in(&b, &server);
    b.set_window_size(1280, 900);
    b.goto(&server.url("/p/shop/"));
    b.click("#logs-link");
    b.wait_until("the logs page", |b| b.current_url().ends_with("/p/shop/logs/"));
    assert_eq!(b.texts(".log-body"), ["Payment failed for order 8", "Stock low for A-1", "Order 7 paid"]);
    b.js("document.querySelector('.log-row:last-child details').open = true; return null");
    assert!(b.text(".log-row:last-child .log-attributes").contains("Order {order_id} paid"));
    assert!(is_png(&b.screenshot("logs.png")));
    b.set_window_size(400, 900);
    assert!(is_png(&b.screenshot("logs-phone.png")));
    b.set_window_size(1280, 900);
    b.js("document.querySelector('.log-row:last-child details').open = false; return null");
    // A new log shows by itself on the newest page.
    send(json!([{"timestamp": store::now(), "level": "info", "body": "Order 9 paid"}]));
    b.wait_until("the new log", |b| b.texts(".log-body").first().map(String::as_str) == Some("Order 9 paid"));
    b.click("nav[aria-label=Level] a[href*='level=error']");
    b.wait_until("the error level", |b| b.current_url().contains("level=error"));
    assert_eq!(b.texts(".log-body"), ["Payment failed for order 8"]);
    b.fill("#search", "order_id:7");
    b.js("document.getElementById('log-filters').submit(); return null");
    b.wait_until("the search", |b| b.current_url().contains("q=order_id"));
    assert_eq!(b.texts(".log-body"), Vec::<String>::new(), "level and search together");
    b.click("nav[aria-label=Level] a:first-of-type");
    b.wait_until("any level", |b| !b.current_url().contains("level="));
    assert_eq!(b.texts(".log-body"), ["Order 7 paid"]);
    // Its trace links to the logs of the trace.
    b.js("document.querySelector('.log-row details').open = true; return null");
    b.click(".trace-link");
    b.wait_until("the trace's logs", |b| b.current_url().contains("trace%3A5f066c6f17bd443e963bc7df5800e0fc"));
    assert_eq!(b.texts(".log-body"), ["Payment failed for order 8", "Order 7 paid"]);

    // The error of that trace shows its logs.
    server.send_event(&project, &json!({"event_id": "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "level": "error", "message": "payment failed",
        "contexts": {"trace": {"trace_id": "5f066c6f17bd443e963bc7df5800e0fc", "span_id": "a1b2c3d4e5f60718"}}}));
    let id = server.groups("shop")[0]["id"].as_u64().unwrap();
    b.goto(&server.url(&format!("/p/shop/issues/{id}/events/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee/")));
    b.wait_until("the event", |b| b.exists("#trace-logs"));
    assert_eq!(b.texts("#trace-logs .log-body"), ["Payment failed for order 8", "Order 7 paid"]);
    b.js("document.getElementById('trace-logs').scrollIntoView(); return null");
    assert!(is_png(&b.screenshot("event-logs.png")));
}

/// Every element on the page that sticks out of the viewport sideways and is not inside a box
/// of its own that scrolls or clips (and itself fits): `tag#id.class (left..right)`.
const OVERFLOWING: &str = r#"
const vw = document.documentElement.clientWidth;
const contained = (e) => {
  for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
    const s = getComputedStyle(a);
    if (s.overflowX !== 'visible') { const r = a.getBoundingClientRect(); return r.left >= -0.5 && r.right <= vw + 0.5; }
  }
  return false;
};
const out = [];
for (const e of document.body.querySelectorAll('*')) {
  const r = e.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) continue;
  if ((r.right > vw + 0.5 || r.left < -0.5) && !contained(e)) {
    out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '') + ' (' + Math.round(r.left) + '..' + Math.round(r.right) + ')');
  }
}
return {vw: vw, scroll: document.documentElement.scrollWidth, out: out.slice(0, 12)};
"#;

/// At phone width (400 px) no page scrolls sideways and no element is wider than the screen:
/// the pages with the widest content there is (long titles, code lines, URLs, tag values,
/// breadcrumbs, keys), each one checked and shot to `test-artifacts/phone-*.png`.
#[test]
fn every_page_fits_a_400_px_phone() {
    let server = Server::start();
    let project = server.create_project("shop");
    assert!(server.create_user(ADMIN_EMAIL, ADMIN_PASSWORD, true).status.success());
    sdk_checkout_error(&project);
    let long = "averyveryverylongidentifierwithoutanyspacesatall_".repeat(4);
    let line = format!("    total = compute_the_total_of_the_order(order, customer, coupon, {long}) + shipping_cost(order)");
    server.send_event(&project, &json!({
        "event_id": "dddddddddddddddddddddddddddddddd",
        "level": "error",
        "release": format!("shop@{long}"),
        "environment": "production",
        "culprit": format!("shop.checkout.{long}"),
        "tags": {"url": format!("https://shop.example.com/checkout/{long}?coupon={long}"), "customer": long.clone()},
        "exception": {"values": [{"type": "ValueError", "value": format!("could not apply {long}"), "stacktrace": {"frames": [
            {"filename": format!("shop/{long}.py"), "function": long.clone(), "lineno": 120, "context_line": line.clone(),
             "pre_context": [line.clone(), "    # a comment".to_string()], "post_context": [line.clone()], "in_app": true,
             "vars": {"order": long.clone()}}
        ]}}]},
        "breadcrumbs": {"values": (0..30).map(|i| json!({"timestamp": 1_700_000_000 + i, "category": "http", "message": format!("GET https://api.example.com/{long}"), "level": "info"})).collect::<Vec<_>>()},
        "request": {"url": format!("https://shop.example.com/{long}"), "method": "POST", "headers": {"User-Agent": long.clone()}},
        "user": {"email": "someone.with.a.long.address@example.com"},
        "contexts": {"trace": {"trace_id": "5f066c6f17bd443e963bc7df5800e0fc", "span_id": "a1b2c3d4e5f60718"}},
    }));
    // Logs of that trace, with a long message and long attributes.
    let log = json!({"timestamp": 1_700_000_000.5, "level": "error", "trace_id": "5f066c6f17bd443e963bc7df5800e0fc",
        "body": format!("could not apply coupon {long}"),
        "attributes": {"sentry.message.template": {"value": format!("could not apply coupon {{coupon}} {long}"), "type": "string"},
                       format!("customer.{long}"): {"value": long.clone(), "type": "string"}, "order_id": {"value": 7, "type": "integer"}}});
    let payload = json!({"items": [log.clone(), log]}).to_string();
    let envelope = format!("{{}}\n{{\"type\":\"log\",\"length\":{}}}\n{payload}\n", payload.len());
    assert_eq!(server.post(&format!("/api/{}/envelope/", project.id), &[("X-Sentry-Auth", &project.auth())], envelope.as_bytes()).status, 200);
    server.cli_ok(&["capture", "Query", "--dsn", &project.dsn, "--field", &format!("query=SELECT {long} FROM orders"), "--time-spent", "36"]);
    server.cli_ok(&["key", "create", "--project", "shop", "--label", &long]);
    let nightly = json!({"schedule": {"type": "crontab", "value": "30 2 * * 1-5"}, "timezone": "America/Argentina/Buenos_Aires"});
    crate::monitors::send_check_ins(&server, &project, &[
        json!({"check_in_id": "0123456789abcdef0123456789abcdef", "monitor_slug": "nightly-backup-of-the-orders-database-to-s3", "status": "ok", "duration": 12.5, "monitor_config": nightly}),
        json!({"check_in_id": "0123456789abcdef0123456789abcdee", "monitor_slug": "nightly-backup-of-the-orders-database-to-s3", "status": "error"}),
    ]);
    let id = server.groups("shop").iter().find(|g| g["title"].as_str().unwrap_or("").starts_with("ValueError")).unwrap()["id"].as_u64().unwrap();
    // Release health: a release the SDKs name, with a long name.
    let sessions = format!(
        "{{}}\n{{\"type\":\"sessions\"}}\n{{\"attrs\":{{\"release\":\"shop@{}\"}},\"aggregates\":[{{\"started\":\"2026-12-01T10:00:00Z\",\"exited\":9,\"crashed\":1}}]}}\n",
        "1".repeat(60)
    );
    let auth = project.auth();
    let headers = [("X-Sentry-Auth", auth.as_str()), ("Content-Type", "application/x-sentry-envelope")];
    assert_eq!(server.post(&format!("/api/{}/envelope/", project.id), &headers, sessions.as_bytes()).status, 200);
    server.create_project("empty");
    let b = Browser::start();
    log_in(&b, &server);
    // An empty project's guide at desktop width, for the eye: test-artifacts/onboarding.png.
    b.set_window_size(1280, 1400);
    b.goto(&server.url("/p/empty/"));
    b.wait_for_text("#onboarding h2", "Send your first event");
    assert!(b.exists("button.copy:not([hidden])"), "the Copy button shows where the browser can copy");
    b.screenshot("onboarding.png");
    b.set_window_size(400, 2600);
    let pages = [
        ("dashboard", "/dashboard".to_string()),
        ("stream", "/p/shop/".into()),
        ("stream-durations", "/p/shop/?sort=time_spent".into()),
        ("issue", format!("/p/shop/issues/{id}/")),
        ("event", format!("/p/shop/issues/{id}/events/dddddddddddddddddddddddddddddddd/")),
        ("releases", "/p/shop/releases/".into()),
        ("release", format!("/p/shop/releases/shop@{}/", "1".repeat(60))),
        ("feedback", "/p/shop/feedback/".into()),
        ("logs", "/p/shop/logs/".into()),
        ("monitors", "/p/shop/monitors/".into()),
        ("settings", "/settings/".into()),
        ("org-settings", "/o/default/settings/".into()),
        ("project-settings", "/settings/projects/shop/".into()),
        ("not-found", "/no/such/page".into()),
        ("empty-project", "/p/empty/".into()),
    ];
    let mut problems = Vec::new();
    for (name, path) in &pages {
        b.goto(&server.url(path));
        b.wait_until(&format!("{path} to load"), |b| b.js("return document.readyState") == "complete");
        if *name == "event" {
            assert_eq!(b.texts("table.crumbs .repeats"), ["× 30"], "30 crumbs alike in a row are one row");
        }
        // A log's details open, as a reader would unfold them.
        b.js("document.querySelectorAll('.log-row details').forEach(function (d) { d.open = true; }); return null");
        let v = b.js(OVERFLOWING);
        b.screenshot(&format!("phone-{name}.png"));
        let out = v["out"].as_array().cloned().unwrap_or_default();
        if v["scroll"].as_f64() > v["vw"].as_f64() || !out.is_empty() {
            problems.push(format!("{path}: page {} px wide in {} px; {out:?}", v["scroll"], v["vw"]));
        }
    }
    assert!(problems.is_empty(), "wider than a 400 px phone:\n{}", problems.join("\n"));
}

/// Working the issues in Chromium, as a team lead would: assign two from the stream's bulk bar
/// (their rows then name the assignee), comment with a mention, snooze one for 2 more events and
/// watch it come back when they arrive, merge two and unmerge them again, and resolve all 1,000
/// that match a search in the background with the progress page. The stream at desktop and
/// phone width goes to `test-artifacts/triage*.png`.
#[test]
fn triage_in_the_browser_assign_comment_snooze_merge_unmerge_and_resolve_a_thousand() {
    let server = Server::start();
    let project = server.create_project("shop");
    assert!(server.create_user(ADMIN_EMAIL, ADMIN_PASSWORD, true).status.success());
    for text in ["payment declined", "cart lost", "coupon expired"] {
        server.send_event(&project, &json!({"message": text, "level": "error", "tags": {"area": "checkout"}}));
    }
    let id_of = |title: &str| server.groups("shop").iter().find(|g| g["title"] == title).unwrap_or_else(|| panic!("no issue {title}"))["id"].as_u64().unwrap();
    let (payment, cart, coupon) = (id_of("payment declined"), id_of("cart lost"), id_of("coupon expired"));
    let b = Browser::start();
    log_in(&b, &server);
    b.set_window_size(1280, 1000);

    // Assign two from the stream.
    b.goto(&server.url("/p/shop/?q=area:checkout"));
    b.click(&format!("tr[data-group=\"{payment}\"] input.pick-one"));
    b.click(&format!("tr[data-group=\"{cart}\"] input.pick-one"));
    b.click("#bulk details.menu:nth-of-type(2) summary");
    b.select("#bulk-assign-to", ADMIN_EMAIL);
    b.click("#bulk-assign");
    b.wait_until("two rows to name their assignee", |b| b.texts(".group-row .badge.assignee") == [ADMIN_EMAIL, ADMIN_EMAIL]);
    b.screenshot("triage.png");
    b.set_window_size(400, 900);
    b.screenshot("triage-phone.png");
    b.set_window_size(1280, 1000);

    // A comment with a mention, on the issue's timeline.
    b.goto(&server.url(&format!("/p/shop/issues/{payment}/")));
    b.fill("#comment-text", "Looks like the bank again, @admin@example.com **please check**");
    b.click("#comment-submit");
    b.wait_for_text("#activity .note", "Looks like the bank again");
    assert!(b.exists("#activity .note strong"), "the comment's Markdown is rendered");
    assert!(b.texts("#activity .act").iter().any(|t| t.contains("assigned")), "the assignment is on the timeline");

    // Snooze for 2 more events; it comes back when they arrive.
    b.goto(&server.url(&format!("/p/shop/issues/{coupon}/")));
    b.click("#ignore-menu summary");
    b.fill("#snooze-count", "2");
    b.click("#ignore");
    b.wait_for_text("#group-status", "ignored");
    for _ in 0..2 {
        server.send_event(&project, &json!({"message": "coupon expired", "level": "error"}));
    }
    b.wait_until("the snoozed issue to come back", |b| {
        b.goto(&b.current_url());
        b.texts("#group-status").iter().any(|t| t == "unresolved")
    });

    // Merge two, then unmerge one hash back out.
    b.goto(&server.url("/p/shop/?q=area:checkout&interval=all"));
    b.click(&format!("tr[data-group=\"{payment}\"] input.pick-one"));
    b.click(&format!("tr[data-group=\"{cart}\"] input.pick-one"));
    b.click("#bulk-merge");
    b.wait_until("two issues merged into one", |b| b.exists(".group-row") && row_titles(b).len() == 2);
    let kept = server.groups("shop").iter().find(|g| g["title"] == "payment declined" || g["title"] == "cart lost").unwrap()["id"].as_u64().unwrap();
    b.goto(&server.url(&format!("/p/shop/issues/{kept}/")));
    assert_eq!(b.texts("#hashes tr").len(), 2, "both hashes are listed");
    b.click("#hashes button.unmerge");
    b.wait_until("the unmerged issue shown", |b| !b.current_url().ends_with(&format!("/issues/{kept}/")));
    b.goto(&server.url("/p/shop/?q=area:checkout&interval=all"));
    b.wait_until("three issues again", |b| row_titles(b).len() == 3);

    // A thousand issues of one search, resolved all at once.
    // Numbers in a message don't make another issue, so each one is named by letters.
    let name = |i: usize| (0..3).map(|d| char::from(b'a' + ((i / 26usize.pow(d)) % 26) as u8)).collect::<String>();
    let batch: Vec<serde_json::Value> = (0..1000).map(|i| json!({"message": format!("disk full on node {}", name(i)), "level": "warning", "tags": {"area": "storage"}})).collect();
    for e in &batch {
        server.send_event(&project, e);
    }
    b.goto(&server.url("/p/shop/?q=area:storage&interval=all"));
    b.click("#bulk-all");
    b.click("#bulk-resolve");
    b.wait_until("the bulk job's page", |b| b.exists("#bulk-job"));
    b.wait_until("the thousand resolved", |b| b.texts("#job-state").iter().any(|t| t.contains("Finished")));
    assert_eq!(b.texts("#job-done"), ["1000"]);
    assert_eq!(b.texts("#job-total"), ["1000"]);
    let groups = server.groups_with("shop", &["--status", "resolved", "--limit", "2000"]);
    assert_eq!(groups.iter().filter(|g| g["title"].as_str().unwrap_or("").starts_with("disk full")).count(), 1000);
    b.click("#job-back");
    b.wait_until("back on the search, now empty", |b| b.current_url().contains("area%3Astorage") || b.current_url().contains("area:storage"));
    assert!(row_titles(&b).is_empty());
    // The other search is untouched.
    let unresolved = server.groups_with("shop", &["--status", "unresolved", "--limit", "2000"]);
    assert_eq!(unresolved.iter().map(|g| g["title"].as_str().unwrap_or("")).filter(|t| !t.starts_with("disk full")).count(), 3, "{unresolved:?}");
}

#[test]
fn monitors_page_shows_each_monitor_with_its_runs_and_issues() {
    let server = Server::start_with_config("[monitors]\ncheck_interval_secs = 1\n");
    let project = server.create_project("shop");
    let hourly = json!({"schedule": {"type": "crontab", "value": "0 * * * *"}});
    let id = |n: u32| format!("{n:032x}");
    let mut check_ins: Vec<serde_json::Value> = (1..=6)
        .map(|n| json!({"check_in_id": id(n), "monitor_slug": "hourly-report", "status": if n == 4 { "error" } else { "ok" }, "duration": n, "monitor_config": hourly}))
        .collect();
    check_ins.push(json!({"check_in_id": id(9), "monitor_slug": "import", "status": "in_progress",
        "monitor_config": {"schedule": {"type": "interval", "value": 2, "unit": "hour"}}}));
    crate::monitors::send_check_ins(&server, &project, &check_ins);
    assert!(server.create_user(ADMIN_EMAIL, ADMIN_PASSWORD, true).status.success());
    let b = Browser::start();
    log_in(&b, &server);
    b.click("#monitors-link");
    b.wait_until("the monitors page", |b| b.current_url().ends_with("/p/shop/monitors/"));
    assert_eq!(b.texts(".monitor h2"), ["hourly-report", "import"]);
    assert_eq!(b.texts(".monitor-status"), ["ok", "waiting for its first run"], "the last run went well");
    assert_eq!(b.texts("#monitor-hourly-report .run").len(), 6);
    assert_eq!(b.texts("#monitor-hourly-report .run-error").len(), 1);
    assert_eq!(b.texts("#monitor-import .run-in_progress").len(), 1);
    assert!(b.text("#monitor-import .schedule").contains("every 2 hours"), "{}", b.text("#monitor-import .schedule"));
    b.set_window_size(1280, 900);
    assert!(is_png(&b.screenshot("monitors.png")));
    b.set_window_size(400, 900);
    assert!(is_png(&b.screenshot("monitors-phone.png")));
    b.set_window_size(1280, 900);
    // The failed run became an issue; the monitor's link finds it.
    b.wait_until("the failure's issue", |_| !server.groups("shop").is_empty());
    b.click("#monitor-hourly-report a[href*='monitor.slug']");
    b.wait_until("the monitor's issues", |b| b.current_url().contains("/p/shop/?q="));
    b.wait_until("the issue listed", |b| b.js("return document.body.innerText").as_str().is_some_and(|t| t.contains("Monitor failure: hourly-report (check-in failed)")));
}
