//! The web dashboard over HTTP against the real binary: the first-start setup link, `sentry
//! user create`, the stream's sorts, filters, search, intervals and cursor pages, the slices
//! config, group and event pages, settings, and live updates over server-sent events.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{form_encode, form_value, set_cookie, Server};

const WORDS: [&str; 30] = ["apple", "banana", "cherry", "damson", "elder", "fig", "grape", "hazel", "iris", "juniper", "kiwi", "lemon", "mango", "nectar", "olive", "papaya", "quince", "raisin", "sloe", "tangelo", "ugli", "vanilla", "walnut", "xigua", "yuzu", "zucchini", "almond", "basil", "clove", "dill"];

/// A message event with tags, for the legacy store endpoint.
fn message(text: &str, server: &str, customer: &str) -> serde_json::Value {
    json!({"message": text, "level": "error", "server_name": server, "tags": {"customer": customer}, "logger": "shop.orders"})
}

/// Group ids of a stream page, in order.
fn row_ids(html: &str) -> Vec<u64> {
    html.split("data-group=\"").skip(1).filter_map(|s| s.split('"').next()?.parse().ok()).collect()
}

/// The href of `id="ID"`'s link, unescaped.
fn link(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = html[..at].rfind("href=\"")? + 6;
    Some(html[start..].split('"').next()?.replace("&amp;", "&").replace("&#38;", "&"))
}

#[test]
fn first_start_prints_a_one_time_setup_link() {
    let server = Server::start();
    let log = server.log();
    let link = log
        .lines()
        .find_map(|l| l.trim().strip_prefix(&server.url("")).filter(|p| p.starts_with("/setup/")).map(str::to_string))
        .unwrap_or_else(|| panic!("sentry start printed no setup link:\n{log}"));
    let page = server.get(&link);
    assert_eq!(page.status, 200);
    let cookie = set_cookie(&page, "sentry_csrf").expect("csrf cookie");
    let csrf = form_value(&page.text(), "csrf").expect("csrf field");
    let post = |password_again: &str| {
        let body = form_encode(&[("email", "root@example.com"), ("password", "s3cret-pass"), ("password_again", password_again), ("csrf", &csrf)]);
        server.request("POST", &link, &[("Cookie", &cookie), ("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes())
    };
    assert!(post("different").text().contains("differ"), "mismatched passwords are refused");
    let done = post("s3cret-pass");
    assert_eq!(done.status, 303, "{}", done.text());
    assert!(set_cookie(&done, "sentry_session").is_some(), "the new admin is logged in");
    // The link works once.
    assert!(server.get(&link).text().contains("has been used"));
    assert!(post("s3cret-pass").text().contains("has been used"));
    let s = server.login("root@example.com", "s3cret-pass").expect("the admin can log in");
    assert!(server.get_as(&s, "/settings/").text().contains("root@example.com"));
}

#[test]
fn user_create_checks_the_password_and_the_email() {
    let server = Server::start();
    let short = server.create_user("a@example.com", "short", false);
    assert!(!short.status.success() && String::from_utf8_lossy(&short.stderr).contains("at least 8"));
    assert!(server.create_user("a@example.com", "long enough", false).status.success());
    let dup = server.create_user("A@example.com", "long enough", false);
    assert!(!dup.status.success() && String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    assert!(server.login("a@example.com", "long enough").is_ok());
    assert_eq!(server.login("a@example.com", "wrong password").unwrap_err().status, 401);
    // A member can't invite anyone.
    let s = server.login("a@example.com", "long enough").unwrap();
    let r = server.post_form_as(&s, "/o/default/invitations", &[("csrf", &s.csrf), ("email", "b@example.com"), ("role", "member")]);
    assert_eq!(r.status, 403);
}

#[test]
fn stream_sorts_filters_searches_and_pages() {
    let server = Server::start();
    let project = server.create_project("shop");
    let s = server.admin_session();
    // 30 groups: "order WORD failed" N+1 times; even N on web-1 for customer acme.
    for (n, word) in WORDS.iter().enumerate() {
        let (srv, cust) = if n % 2 == 0 { ("web-1", "acme") } else { ("web-2", "globex") };
        for _ in 0..=n {
            server.send_event(&project, &message(&format!("order {word} failed"), srv, cust));
        }
    }
    let page = server.get_as(&s, "/p/shop/?sort=frequency&interval=1h");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert_eq!(row_ids(&html).len(), 25, "25 per page");
    assert!(html.contains("order dill failed"), "the most frequent first");
    // The filter widgets offer the project's tag values with counts.
    assert!(html.contains("<option value=\"web-1\">web-1 ("), "{html}");

    // Filter by a tag, plus free text and a key:value term in the search box.
    let html = server.get_as(&s, "/p/shop/?sort=frequency&server=web-2&q=customer%3Aglobex+order").text();
    let ids = row_ids(&html);
    assert_eq!(ids.len(), 15);
    assert!(!html.contains("order clove failed") && html.contains("order dill failed"));
    let html = server.get_as(&s, "/p/shop/?q=level%3Aerror+%22dill+failed%22").text();
    assert_eq!(row_ids(&html).len(), 1);

    // Follow the cursor: every group exactly once, even while a new event arrives between pages.
    for sort in ["priority", "last_seen", "first_seen", "frequency"] {
        let mut url = format!("/p/shop/?sort={sort}&interval=24h");
        let mut seen = Vec::new();
        loop {
            let html = server.get_as(&s, &url).text();
            seen.extend(row_ids(&html));
            server.send_event(&project, &message("order damson failed", "web-2", "globex"));
            match link(&html, "next-page") {
                Some(next) => {
                    assert!(next.contains(&format!("sort={sort}")) && next.contains("cursor="), "{next}");
                    url = next;
                }
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{sort}: no group twice: {seen:?}");
        assert!(seen.len() >= 29, "{sort}: {} groups", seen.len());
    }
    // The list alone, for live reloads.
    let frag = server.get_as(&s, "/p/shop/?fragment=1").text();
    assert!(frag.trim_start().starts_with("<div id=\"stream-rows\">"));
    // Nothing in the last 15 minutes on a resolved tab.
    assert!(server.get_as(&s, "/p/shop/?status=resolved&interval=15m").text().contains("No resolved issues"));
}

#[test]
fn slices_come_from_the_config() {
    let server = Server::start_with_config(
        "[projects.shop]\nslices = [\"level\", { tag = \"customer\", widget = \"search\" }, { filter = \"server\", widget = \"toggles\" }]\n",
    );
    let project = server.create_project("shop");
    server.send_event(&project, &message("boom", "web-1", "acme"));
    let s = server.admin_session();
    let html = server.get_as(&s, "/p/shop/").text();
    assert!(html.contains("<input type=\"text\" name=\"customer\""), "customer is a search input");
    assert!(!html.contains("name=\"logger\""), "logger is not a slice of this project");
    assert!(html.contains("data-widget=\"toggles\""));
    let html = server.get_as(&s, "/p/shop/?customer=acme").text();
    assert_eq!(row_ids(&html).len(), 1);
    assert_eq!(row_ids(&server.get_as(&s, "/p/shop/?customer=nobody").text()).len(), 0);
}

#[test]
fn config_check_refuses_an_unknown_filter_or_widget() {
    let server = Server::with_config("\n[projects.default]\nslices = [\"level\", \"lvl\"]\n");
    let out = server.cli(&["config", "check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("sentry.toml:5:") && err.contains("unknown filter \"lvl\"") && err.contains("level, logger, server"), "{err}");
    let server = Server::with_config("[projects.default]\nslices = [{ tag = \"customer\", widget = \"dropdown\" }]\n");
    let out = server.cli(&["start", "--no-daemon"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("sentry.toml:4:") && err.contains("valid widgets are: select, search, toggles"), "{err}");
}

#[test]
fn group_and_event_pages_show_everything() {
    let server = Server::start();
    let project = server.create_project("shop");
    let s = server.admin_session();
    server.send_event(&project, &json!({
        "event_id": "0123456789abcdef0123456789abcdef",
        "level": "error", "server_name": "web-1", "tags": {"customer": "acme"},
        "exception": {"values": [
            {"type": "KeyError", "value": "'SUMMER'", "stacktrace": {"frames": [
                {"filename": "shop/cart.py", "function": "apply_coupon", "lineno": 12, "in_app": true,
                 "pre_context": ["def apply_coupon(cart, code):"], "context_line": "    return discounts[code]",
                 "post_context": [""], "vars": {"code": "'SUMMER'"}}]}},
            {"type": "CheckoutError", "value": "checkout failed", "stacktrace": {"frames": [
                {"filename": "django/core/handlers.py", "function": "inner", "lineno": 55, "in_app": false},
                {"filename": "shop/views.py", "function": "checkout", "lineno": 40, "in_app": true}]}}]},
        "request": {"method": "POST", "url": "http://shop.example/checkout", "headers": {"User-Agent": "pytest"}},
        "user": {"id": "42", "email": "alice@example.com"},
        "breadcrumbs": {"values": [{"timestamp": 1700000000, "category": "cart", "message": "coupon entered"}]},
        "contexts": {"runtime": {"name": "CPython", "version": "3.11"}}
    }));
    let groups = server.groups("shop");
    let id = groups[0]["id"].as_u64().unwrap();
    let html = server.get_as(&s, &format!("/p/shop/issues/{id}/")).text();
    for needle in [
        "CheckoutError", "caused by", "apply_coupon", "return discounts[code]", "frame in-app", "SUMMER",
        "POST http://shop.example/checkout", "alice@example.com", "coupon entered", "CPython", "customer",
        "Why these events are grouped", "Resolve", "<figure class=\"chart\"",
    ] {
        assert!(html.contains(needle), "the group page lacks {needle:?}");
    }
    let ev = server.get_as(&s, &format!("/p/shop/issues/{id}/events/0123456789abcdef0123456789abcdef/"));
    assert_eq!(ev.status, 200);
    assert!(ev.text().contains("Raw JSON") && ev.text().contains("breadcrumbs") && ev.text().contains("coupon entered"));
    let raw = server.get_as(&s, &format!("/p/shop/issues/{id}/events/0123456789abcdef0123456789abcdef/json"));
    assert_eq!(raw.header("content-type"), Some("application/json"));
    assert_eq!(raw.json()["request"]["method"], "POST");

    // A Query group: normalised SQL and a duration histogram with avg and p95.
    for ms in [10, 12, 11, 250] {
        server.cli_ok(&["capture", "Query", "--dsn", &project.dsn, "--field", &format!("query=SELECT * FROM orders WHERE id = {ms}"),
            "--field", "engine=psycopg2", "--time-spent", &ms.to_string()]);
    }
    let q = server.groups("shop").into_iter().find(|g| g["kind"] == "query").expect("a query group");
    let html = server.get_as(&s, &format!("/p/shop/issues/{}/", q["id"])).text();
    assert!(html.contains("Normalised SQL") && html.contains("SELECT * FROM orders WHERE id = ?"), "{html}");
    assert!(html.contains("id=\"avg\"") && html.contains("id=\"p95\"") && html.contains("Duration histogram"));
    let stream = server.get_as(&s, "/p/shop/?sort=time_spent").text();
    assert_eq!(row_ids(&stream), vec![q["id"].as_u64().unwrap()], "only timed groups sort by time");
}

#[test]
fn resolving_then_a_new_event_reopens_as_a_regression() {
    let server = Server::start();
    let project = server.create_project("shop");
    let s = server.admin_session();
    server.send_event(&project, &message("boom", "web-1", "acme"));
    let id = server.groups("shop")[0]["id"].as_u64().unwrap();
    let r = server.post_form_as(&s, &format!("/p/shop/issues/{id}/status"), &[("csrf", &s.csrf), ("status", "resolved")]);
    assert_eq!(r.status, 303);
    assert!(row_ids(&server.get_as(&s, "/p/shop/").text()).is_empty());
    assert_eq!(row_ids(&server.get_as(&s, "/p/shop/?status=resolved").text()), vec![id]);
    server.send_event(&project, &message("boom", "web-1", "acme"));
    assert_eq!(row_ids(&server.get_as(&s, "/p/shop/").text()), vec![id]);
    let html = server.get_as(&s, &format!("/p/shop/issues/{id}/")).text();
    assert!(html.contains("id=\"regression\"") && html.contains("status-unresolved"));
    let r = server.post_form_as(&s, &format!("/p/shop/issues/{id}/status"), &[("csrf", &s.csrf), ("status", "ignored")]);
    assert_eq!(r.status, 303);
    assert_eq!(row_ids(&server.get_as(&s, "/p/shop/?status=ignored").text()), vec![id]);
}

#[test]
fn settings_create_rename_keys_and_invite() {
    let server = Server::start();
    let s = server.admin_session();
    let r = server.post_form_as(&s, "/o/default/projects", &[("csrf", &s.csrf), ("name", "Web Shop")]);
    assert_eq!((r.status, r.header("location")), (303, Some("/settings/projects/web-shop/?done=created")));
    let r = server.post_form_as(&s, "/settings/projects/web-shop/rename", &[("csrf", &s.csrf), ("name", "Storefront")]);
    assert_eq!(r.status, 303);
    let r = server.post_form_as(&s, "/settings/projects/web-shop/keys", &[("csrf", &s.csrf), ("label", "backend"), ("rate_limit", "120")]);
    assert_eq!(r.status, 303);
    let html = server.get_as(&s, "/settings/projects/web-shop/").text();
    assert!(html.contains("Storefront") && html.contains("120 / min") && html.contains("backend"));
    let keys = server.cli_json(&["key", "list", "--project", "web-shop", "--json"]);
    let key = keys.as_array().unwrap().iter().find(|k| k["label"] == "backend").unwrap()["key"].as_str().unwrap().to_string();
    assert!(html.contains(&format!("http://{key}@127.0.0.1:{}/", server.port())), "the DSN is shown");
    let r = server.post_form_as(&s, &format!("/settings/projects/web-shop/keys/{key}/revoke"), &[("csrf", &s.csrf)]);
    assert_eq!(r.status, 303);
    assert!(server.get_as(&s, "/settings/projects/web-shop/").text().contains("revoked"));
    let r = server.post_form_as(&s, "/o/default/invitations", &[("csrf", &s.csrf), ("email", "dev@example.com"), ("role", "admin"), ("team", "1")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let link = crate::accounts::invitation_link(&r.text());
    crate::accounts::accept_invitation(&server, &link, "dev password");
    assert!(server.get_as(&s, "/o/default/settings/").text().contains("dev@example.com"));
    assert!(server.login("dev@example.com", "dev password").is_ok());
    let dash = server.get_as(&s, "/dashboard?interval=7d");
    assert_eq!(dash.status, 200);
    assert!(dash.text().contains("Trending") && dash.text().contains("New issues"));
}

#[test]
fn long_project_names_and_searches_get_a_plain_message() {
    let server = Server::start();
    let project = server.create_project("shop");
    server.send_event(&project, &message("order dill failed", "web-1", "acme"));
    let s = server.admin_session();
    let projects = || server.cli_json(&["project", "list", "--json"]).as_array().map(Vec::len);
    let before = projects();
    let long = "n".repeat(100_000);
    let r = server.post_form_as(&s, "/o/default/projects", &[("csrf", &s.csrf), ("name", &long)]);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("at most 100 characters"), "{}", r.text());
    let r = server.post_form_as(&s, "/settings/projects/shop/rename", &[("csrf", &s.csrf), ("name", &long)]);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("at most 100 characters"));
    let out = server.cli(&["project", "create", &"n".repeat(101)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 100 characters"), "{out:?}");
    assert_eq!(projects(), before, "nothing was created");

    // A 30 KB search, or 15,000 words: the page, with a message, not an error (past 64 KB the
    // URL itself is refused, 414).
    let page = server.get_as(&s, &format!("/p/shop/?q={}", "x".repeat(30_000)));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("longer than 1000 characters"));
    assert_eq!(row_ids(&page.text()).len(), 1, "not applied");
    let page = server.get_as(&s, &format!("/p/shop/?q={}", vec!["d"; 15_000].join("+")));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("longer than 1000 characters"));
    let page = server.get_as(&s, &format!("/p/shop/?q={}", vec!["order"; 30].join("+")));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("only the first 20 were applied"));
    assert_eq!(row_ids(&page.text()).len(), 1);
}

#[test]
fn live_updates_arrive_over_server_sent_events() {
    let mut server = Server::start();
    let project = server.create_project("shop");
    let s = server.admin_session();
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET /p/shop/live HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n", server.addr(), s.cookie).unwrap();
    let mut reader = BufReader::new(stream);
    let mut read_until = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = String::new();
        while Instant::now() < deadline {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.push_str(&line);
            if line.contains(needle) {
                return seen;
            }
        }
        panic!("no {needle:?} on the live stream; got:\n{seen}");
    };
    let head = read_until("event: hello");
    assert!(head.contains("text/event-stream"), "{head}");
    server.send_event(&project, &message("live one", "web-1", "acme"));
    let id = server.groups("shop")[0]["id"].as_u64().unwrap();
    read_until("event: groups");
    let data = read_until("data:");
    assert!(data.contains(&format!("\"group\":{id}")) && data.contains("\"new\":true"), "{data}");
    // An open live stream does not hold up a graceful stop.
    let started = Instant::now();
    assert!(server.terminate().success());
    assert!(started.elapsed() < Duration::from_secs(10), "stopping took {:?}", started.elapsed());
}

/// An address that names no page is a 404 page with the way back (followed), under the same
/// security headers as every page; under `/api/` it is Sentry's JSON error. The tab's icon is
/// served where browsers look for it.
#[test]
fn an_unknown_address_is_a_404_page_with_the_way_back_and_the_icon_is_served() {
    let server = Server::start();
    let s = server.admin_session();
    let r = server.get_as(&s, "/no/such/page?x=1");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    let html = r.text();
    assert!(html.contains("There is no page at /no/such/page."), "{html}");
    let back = html.split("href=\"").skip(1).map(|h| h.split('"').next().unwrap().to_string()).find(|h| h.starts_with("/dashboard")).expect("a link to the dashboard");
    assert_eq!(server.get_as(&s, &back).status, 200, "{back}");
    let r = server.get_as(&s, "/api/0/no-such-endpoint/");
    assert_eq!(r.status, 404);
    assert!(r.json()["detail"].as_str().unwrap().contains("/api/0/no-such-endpoint/"));
    let icon_link = html.split("rel=\"icon\" href=\"").nth(1).expect("pages name their icon").split('"').next().unwrap().to_string();
    for path in [icon_link.as_str(), "/favicon.ico"] {
        let r = server.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("image/svg+xml"), "{path}");
        assert!(r.text().starts_with("<svg"), "{path}");
    }
}

/// The `href` of the event-step link `label` ("Older", …), or None where it is greyed out.
fn step(html: &str, label: &str) -> Option<String> {
    let nav = &html[html.find("class=\"pills event-steps\"").expect("the event steps")..];
    let nav = &nav[..nav.find("</nav>").unwrap()];
    nav.split("<a href=\"").skip(1).find(|a| a.contains(&format!(">{label}</a>"))).map(|a| a.split('"').next().unwrap().replace("&amp;", "&").replace("&#38;", "&"))
}

/// The event id an event page shows.
fn shown_event(html: &str) -> String {
    let at = html.find("<h2>Event <a href=\"").expect("an event") ;
    html[at..].split("<code>").nth(1).unwrap().split('<').next().unwrap().to_string()
}

/// From the issue page's latest event, older, newer, oldest and newest are links that lead to
/// those events (followed); at either end the way further is greyed out; a crumb repeated in a
/// row is one row with its count.
#[test]
fn an_issues_events_are_stepped_through_from_newest_to_oldest() {
    let server = Server::start();
    let project = server.create_project("shop");
    let s = server.admin_session();
    for n in 1..=3 {
        let mut e = message("payment declined", "web-1", "acme");
        e["event_id"] = json!(format!("{n:032x}"));
        e["breadcrumbs"] = json!([{"message": "retrying", "category": "http"}, {"message": "retrying", "category": "http"}, {"message": "gave up", "category": "http"}]);
        server.send_event(&project, &e);
    }
    let id = server.groups("shop")[0]["id"].as_u64().unwrap();
    let issue = server.get_as(&s, &format!("/p/shop/issues/{id}/")).text();
    assert_eq!(shown_event(&issue), format!("{:032x}", 3));
    assert_eq!((step(&issue, "Newer"), step(&issue, "Newest")), (None, None), "the newest has nothing newer");
    assert!(issue.contains("× 2</span>"), "two crumbs in a row are one row");
    let second = server.get_as(&s, &step(&issue, "Older").expect("an older event")).text();
    assert_eq!(shown_event(&second), format!("{:032x}", 2));
    let first = server.get_as(&s, &step(&second, "Oldest").unwrap()).text();
    assert_eq!(shown_event(&first), format!("{:032x}", 1));
    assert_eq!((step(&first, "Older"), step(&first, "Oldest")), (None, None));
    assert_eq!(shown_event(&server.get_as(&s, &step(&first, "Newer").unwrap()).text()), format!("{:032x}", 2));
    assert_eq!(shown_event(&server.get_as(&s, &step(&first, "Newest").unwrap()).text()), format!("{:032x}", 3));
}
