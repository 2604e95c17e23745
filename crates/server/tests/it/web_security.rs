//! The dashboard's defences against the real binary: no page without a session, no state change
//! without the session's CSRF token (or from another origin), one project's issues not readable
//! through another project's URLs, login attempts rate limited (counted before the password is
//! hashed, per email and address) and redirected only to this site, pages never cached (and
//! HSTS over https), and HTML/JS sent in any event field shown as text and never run (checked
//! in headless Chromium).

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::thread;

use serde_json::json;

use crate::harness::{form_encode, form_value, http_request, set_cookie, Browser, Response, Server, ADMIN_EMAIL, ADMIN_PASSWORD};

#[test]
fn pages_without_a_session_redirect_to_login() {
    let server = Server::start();
    let project = server.create_project("shop");
    server.send_event(&project, &json!({"message": "x"}));
    let id = server.groups("shop")[0]["id"].as_u64().unwrap();
    for path in [
        "/dashboard".to_string(),
        "/p/shop/?sort=frequency".into(),
        format!("/p/shop/issues/{id}/"),
        "/p/shop/live".into(),
        "/live".into(),
        "/settings/".into(),
        "/settings/projects/shop/".into(),
    ] {
        let r = server.get(&path);
        assert!(r.status == 303 || r.status == 307 || r.status == 302, "{path}: {}", r.status);
        let to = r.header("location").unwrap_or_default();
        assert!(to.starts_with("/login?next="), "{path} -> {to}");
    }
    // A forged cookie is no session either.
    let r = server.request("GET", "/dashboard", &[("Cookie", "sentry_session=0000")], b"");
    assert!(r.header("location").unwrap_or_default().starts_with("/login"));
    // Posts without a session change nothing.
    let r = server.request("POST", &format!("/p/shop/issues/{id}/status"), &[("Content-Type", "application/x-www-form-urlencoded")], b"status=resolved");
    assert!(r.header("location").unwrap_or_default().starts_with("/login"));
    assert_eq!(server.groups("shop")[0]["status"], "unresolved");
    assert_eq!(server.get("/login").status, 200);
}

#[test]
fn forms_without_a_valid_csrf_token_are_refused() {
    let server = Server::start();
    let project = server.create_project("shop");
    server.send_event(&project, &json!({"message": "x"}));
    let id = server.groups("shop")[0]["id"].as_u64().unwrap();
    let s = server.admin_session();
    let path = format!("/p/shop/issues/{id}/status");
    assert_eq!(server.post_form_as(&s, &path, &[("status", "resolved")]).status, 403, "no token");
    assert_eq!(server.post_form_as(&s, &path, &[("status", "resolved"), ("csrf", "0000")]).status, 403, "wrong token");
    let body = form_encode(&[("status", "resolved"), ("csrf", &s.csrf)]);
    let cross = server.request(
        "POST",
        &path,
        &[("Cookie", &s.cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", "http://evil.example")],
        body.as_bytes(),
    );
    assert_eq!(cross.status, 403, "another origin");
    assert_eq!(server.groups("shop")[0]["status"], "unresolved", "nothing changed");
    for (p, form) in [
        ("/o/default/projects", vec![("name", "evil")]),
        ("/o/default/invitations", vec![("email", "e@example.com"), ("role", "owner")]),
        ("/o/default/tokens", vec![("scope", "org:admin")]),
        ("/o/default/teams", vec![("name", "evil")]),
        ("/settings/projects/shop/rename", vec![("name", "evil")]),
        ("/logout", vec![]),
    ] {
        assert_eq!(server.post_form_as(&s, p, &form).status, 403, "{p}");
    }
    // The login form wants its own token too.
    let body = form_encode(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)]);
    let r = server.request("POST", "/login", &[("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes());
    assert_eq!(r.status, 403);
    // With the token it works.
    assert_eq!(server.post_form_as(&s, &path, &[("status", "resolved"), ("csrf", &s.csrf)]).status, 303);
    assert_eq!(server.groups("shop")[0]["status"], "resolved");
}

#[test]
fn one_projects_issues_are_not_readable_through_another_projects_url() {
    let server = Server::start();
    let a = server.create_project("alpha");
    let _b = server.create_project("beta");
    server.send_event(&a, &json!({"message": "secret of alpha", "event_id": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}));
    let id = server.groups("alpha")[0]["id"].as_u64().unwrap();
    let s = server.admin_session();
    assert_eq!(server.get_as(&s, &format!("/p/alpha/issues/{id}/")).status, 200);
    for path in [
        format!("/p/beta/issues/{id}/"),
        format!("/p/beta/issues/{id}/events/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/"),
        format!("/p/beta/issues/{id}/events/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/json"),
        format!("/p/alpha/issues/{}/", id + 1000),
        "/p/alpha/issues/x/".into(),
    ] {
        let r = server.get_as(&s, &path);
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.text().contains("secret of alpha"), "{path}");
    }
    let r = server.post_form_as(&s, &format!("/p/beta/issues/{id}/status"), &[("csrf", &s.csrf), ("status", "resolved")]);
    assert_eq!(r.status, 404);
    assert_eq!(server.groups("alpha")[0]["status"], "unresolved");
    assert!(!server.get_as(&s, "/p/beta/").text().contains("secret of alpha"));
}

#[test]
fn login_attempts_are_rate_limited_and_cookies_are_httponly() {
    let server = Server::start();
    let s = server.admin_session();
    let _ = s;
    for _ in 0..10 {
        assert_eq!(server.login(ADMIN_EMAIL, "wrong password").unwrap_err().status, 401);
    }
    let r = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).unwrap_err();
    assert_eq!(r.status, 429, "even the right password waits: {}", r.text());
    assert!(r.text().contains("too many failed logins"));

    // Session cookies: HttpOnly, SameSite, not readable by scripts.
    let other = Server::start();
    other.create_user("x@example.com", "long enough", false);
    let page = other.get("/login");
    let cookie = set_cookie(&page, "sentry_csrf").unwrap();
    let csrf = form_value(&page.text(), "csrf").unwrap();
    let body = form_encode(&[("email", "x@example.com"), ("password", "long enough"), ("csrf", &csrf)]);
    let r = other.request("POST", "/login", &[("Cookie", &cookie), ("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes());
    let raw = r.headers.iter().find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("sentry_session=")).unwrap().1.clone();
    assert!(raw.contains("HttpOnly") && raw.contains("SameSite=Lax"), "{raw}");
    assert!(r.header("content-security-policy").is_none() || r.status == 303);
    let dash = other.request("GET", "/dashboard", &[("Cookie", raw.split(';').next().unwrap())], b"");
    assert!(dash.header("content-security-policy").unwrap_or_default().contains("script-src 'self'"));
}

/// The login form from `addr`: its CSRF cookie and the form's token.
fn login_form(addr: SocketAddr) -> (String, String) {
    let page = http_request(addr, "GET", "/login", &[], b"");
    (set_cookie(&page, "sentry_csrf").unwrap(), form_value(&page.text(), "csrf").unwrap())
}

fn post_login(addr: SocketAddr, form: &(String, String), email: &str, password: &str, next: &str) -> Response {
    let body = form_encode(&[("email", email), ("password", password), ("csrf", &form.1), ("next", next)]);
    http_request(addr, "POST", "/login", &[("Cookie", &form.0), ("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes())
}

fn metric(server: &Server, name: &str) -> u64 {
    let text = server.get("/metrics").text();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn concurrent_wrong_logins_are_counted_before_hashing_and_the_owner_still_logs_in() {
    let mut server = Server::with_config("");
    // Listen on IPv6 and IPv4, so the test has two client addresses: 127.0.0.1 and ::1.
    let config = std::fs::read_to_string(server.config_path()).unwrap();
    std::fs::write(server.config_path(), config.replace("bind = \"127.0.0.1:", "bind = \"[::]:")).unwrap();
    server.launch();
    server.create_user(ADMIN_EMAIL, ADMIN_PASSWORD, true);
    let v4 = server.addr();
    let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, server.port()));

    let hashed_before = metric(&server, "sentry_login_hashes_total");
    let n = 40;
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                let form = login_form(v4);
                barrier.wait();
                let r = post_login(v4, &form, ADMIN_EMAIL, "wrong password", "/");
                (r.status, r.header("retry-after").map(str::to_string))
            })
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let checked = answers.iter().filter(|(status, _)| *status == 401).count();
    assert!(answers.iter().all(|(status, _)| *status == 401 || *status == 429), "{answers:?}");
    assert!((1..=10).contains(&checked), "{checked} wrong passwords were checked: {answers:?}");
    assert!(answers.iter().filter(|(s, _)| *s == 429).all(|(_, retry)| retry.is_some()), "429 without Retry-After: {answers:?}");
    let hashed = metric(&server, "sentry_login_hashes_total") - hashed_before;
    assert!(hashed <= 10, "{hashed} passwords hashed for 40 wrong logins (limit 10)");

    // Fill the limit of this address for that email, whatever the pool let through.
    for _ in checked..10 {
        let r = post_login(v4, &login_form(v4), ADMIN_EMAIL, "wrong password", "/");
        assert_eq!(r.status, 401, "{}", r.text());
    }
    let r = post_login(v4, &login_form(v4), ADMIN_EMAIL, ADMIN_PASSWORD, "/");
    assert_eq!(r.status, 429, "the guessing address waits, even with the right password");
    assert!(r.header("retry-after").is_some());
    // The owner, from another address, logs in.
    let r = post_login(v6, &login_form(v6), ADMIN_EMAIL, ADMIN_PASSWORD, "/dashboard");
    assert_eq!(r.status, 303, "the right password from another address: {}", r.text());
    assert!(set_cookie(&r, "sentry_session").is_some());
    assert_eq!(r.header("location"), Some("/dashboard"));
}

#[test]
fn after_login_only_paths_on_this_site_are_followed() {
    let server = Server::start();
    server.create_user("x@example.com", "long enough", false);
    let addr = server.addr();
    for (next, to) in [
        ("/p/shop/?sort=freq", "/p/shop/?sort=freq"),
        ("/\t/evil.example/", "/"),
        ("/%09/evil.example/", "/"),
        ("/x\r\nSet-Cookie: a=b", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
    ] {
        let r = post_login(addr, &login_form(addr), "x@example.com", "long enough", next);
        assert_eq!(r.status, 303, "next={next:?}: {}", r.text());
        assert_eq!(r.header("location"), Some(to), "next={next:?}");
    }
    // The login page's form carries only a safe next, too.
    let page = server.get("/login?next=/%09/evil.example/");
    assert_eq!(form_value(&page.text(), "next").as_deref(), Some("/"));
}

#[test]
fn dashboard_pages_are_never_cached_and_https_gets_hsts() {
    let server = Server::start();
    let project = server.create_project("shop");
    server.send_event(&project, &json!({"message": "x"}));
    let id = server.groups("shop")[0]["id"].as_u64().unwrap();
    let s = server.admin_session();
    for path in ["/login".to_string(), "/dashboard".into(), "/p/shop/".into(), format!("/p/shop/issues/{id}/"), "/settings/".into(), "/p/shop/issues/0/".into()] {
        let r = server.get_as(&s, &path);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}: {}", r.status);
        assert_eq!(r.header("strict-transport-security"), None, "{path}: plain http");
    }
    // A redirect to the login page is not cached either.
    assert_eq!(server.get("/dashboard").header("cache-control"), Some("no-store"));
    // Static assets keep their own caching.
    for path in ["/static/app.css", "/static/app.js"] {
        assert_eq!(server.get(path).header("cache-control"), Some("max-age=300"), "{path}");
    }
    // The ingest API is not the dashboard.
    assert_eq!(server.get("/healthz").header("cache-control"), None);

    let https = Server::start_with_config("url = \"https://sentry.example.com\"\n");
    let s = https.admin_session();
    for path in ["/login", "/dashboard", "/static/app.css"] {
        let r = https.get_as(&s, path);
        assert_eq!(r.header("strict-transport-security"), Some("max-age=31536000"), "{path}");
    }
    assert_eq!(https.get_as(&s, "/dashboard").header("cache-control"), Some("no-store"));
}

/// Every field an attacker controls, with markup that would run if it were not escaped.
fn hostile_event() -> serde_json::Value {
    let x = |n: u32| format!("<img src=x onerror=\"window.__xss={n}\"><script>window.__xss={n}</script>");
    json!({
        "event_id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "level": "error",
        "message": x(1),
        "tags": {x(2): x(3), "server": x(4)},
        "exception": {"values": [{"type": "XssError", "value": x(5), "stacktrace": {"frames": [
            {"filename": x(6), "function": x(7), "lineno": 1, "in_app": true, "context_line": x(8), "vars": {x(9): x(10)}}]}}]},
        "request": {"url": format!("http://shop.example/{}", x(11)), "method": "GET", "headers": {"X-Evil": x(12), x(13): "v"}},
        "breadcrumbs": [{"message": x(14), "category": x(15)}],
        "user": {"id": x(16), "email": x(17)},
        "contexts": {"app": {"name": x(18)}},
        "extra": {"note": x(19)},
        "culprit": x(20),
    })
}

#[test]
fn hostile_payloads_are_shown_as_text_and_never_run() {
    let server = Server::start();
    let project = server.create_project("shop");
    server.send_event(&project, &hostile_event());
    let id = server.groups("shop")[0]["id"].as_u64().unwrap();
    let s = server.admin_session();
    let pages = [
        "/p/shop/?interval=all".to_string(),
        format!("/p/shop/issues/{id}/"),
        format!("/p/shop/issues/{id}/events/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/"),
        "/dashboard".into(),
    ];
    for path in &pages {
        let html = server.get_as(&s, path).text();
        assert!(!html.contains("<script>window.__xss") && !html.contains("<img src=x"), "{path} has raw markup");
        assert!(html.contains("script&") && html.contains("window.__xss=") || path == "/dashboard", "{path} shows the payload as text");
    }

    let b = Browser::start();
    b.goto(&server.url("/login"));
    b.fill("input[name=email]", ADMIN_EMAIL);
    b.fill("input[name=password]", ADMIN_PASSWORD);
    b.click("#login-form button[type=submit]");
    b.wait_until("the dashboard", |b| b.current_url().ends_with("/dashboard"));
    for path in &pages {
        b.goto(&server.url(path));
        b.wait_until("the page to load", |b| b.js("return document.readyState") == "complete");
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(b.js("return typeof window.__xss"), "undefined", "an injected script ran on {path}");
        assert_eq!(b.js("return document.querySelectorAll('img[src=x], body script:not([src])').length"), 0, "{path}");
        if path != "/dashboard" {
            let text = b.js("return document.body.innerText").as_str().unwrap_or("").to_string();
            assert!(text.contains("<script>window.__xss="), "{path} does not show the payload as text");
        }
    }
    b.goto(&server.url(&format!("/p/shop/issues/{id}/")));
    for n in [5, 9, 10, 12, 14, 16] {
        let text = b.js("return document.body.innerText").as_str().unwrap_or("").to_string();
        assert!(text.contains(&format!("window.__xss={n}")), "field {n} is not shown on the group page");
    }
}
