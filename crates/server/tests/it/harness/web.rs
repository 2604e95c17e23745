//! The dashboard over raw HTTP: users created with the CLI, logging in like a browser would
//! (the login form's CSRF cookie and field, then the session cookie), and form posts.

use std::{
    io::Write,
    process::Stdio,
    time::Duration,
};

use super::{Response, Server, show_output};

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// A logged-in session: its cookie header and its CSRF token.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub cookie: String,
    pub csrf: String,
}

/// The value of `name="NAME" value="…"` in a page (the first one).
pub fn form_value(html: &str, name: &str) -> Option<String> {
    let pattern = format!("name=\"{name}\" value=\"");
    let at = html.find(&pattern)?;
    let rest = &html[at + pattern.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// `name=value` of a `Set-Cookie` header of the response named `name`.
pub fn set_cookie(resp: &Response, name: &str) -> Option<String> {
    resp.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap_or("").trim().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// Percent-encodes a form value.
/// The text of HTML that askama escaped: its entities undone.
pub fn unescape_html(s: &str) -> String {
    s.replace("&#34;", "\"").replace("&quot;", "\"").replace("&#39;", "'").replace("&#96;", "`").replace("&#60;", "<").replace("&lt;", "<").replace("&#62;", ">").replace("&gt;", ">").replace("&#38;", "&").replace("&amp;", "&")
}

pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

impl Server {
    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// `sentry user create EMAIL --password-stdin [--admin]` with `password` on stdin.
    pub fn create_user(&self, email: &str, password: &str, admin: bool) -> std::process::Output {
        self.create_user_with(email, password, if admin { &["--admin"] } else { &[] })
    }

    /// `sentry user create EMAIL --password-stdin EXTRA…` (`--role`, `--team`, …) with
    /// `password` on stdin.
    pub fn create_user_with(&self, email: &str, password: &str, extra: &[&str]) -> std::process::Output {
        let mut cmd = self.command();
        cmd.args(["user", "create", email, "--password-stdin"]).args(extra);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning sentry user create");
        child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("writing the password");
        child.wait_with_output().expect("sentry user create")
    }

    /// Creates the admin user (once) and logs in over HTTP.
    pub fn admin_session(&self) -> WebSession {
        let out = self.create_user(ADMIN_EMAIL, ADMIN_PASSWORD, true);
        let already = String::from_utf8_lossy(&out.stderr).contains("already exists");
        assert!(out.status.success() || already, "sentry user create failed\n{}", show_output(&out));
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).unwrap_or_else(|r| panic!("logging in failed: {} {}", r.status, r.text()))
    }

    /// Logs in like a browser: GET /login for the form's CSRF cookie and token, then POST.
    pub fn login(&self, email: &str, password: &str) -> Result<WebSession, Response> {
        let page = self.get("/login");
        let csrf_cookie = set_cookie(&page, "sentry_csrf").expect("GET /login sets the sentry_csrf cookie");
        let csrf = form_value(&page.text(), "csrf").expect("the login form has a csrf field");
        let body = form_encode(&[("email", email), ("password", password), ("csrf", &csrf), ("next", "/dashboard")]);
        let resp = self.request(
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", &csrf_cookie)],
            body.as_bytes(),
        );
        let Some(session) = set_cookie(&resp, "sentry_session") else { return Err(resp) };
        let dash = self.request("GET", "/dashboard", &[("Cookie", &session)], b"");
        assert_eq!(dash.status, 200, "the dashboard after logging in: {}", dash.text());
        let csrf = form_value(&dash.text(), "csrf").expect("pages carry the session's csrf token");
        Ok(WebSession { cookie: session, csrf })
    }

    /// GET with the session's cookie.
    pub fn get_as(&self, s: &WebSession, path: &str) -> Response {
        self.request("GET", path, &[("Cookie", &s.cookie)], b"")
    }

    /// POST a form with the session's cookie (add `("csrf", &s.csrf)` yourself when wanted).
    pub fn post_form_as(&self, s: &WebSession, path: &str, pairs: &[(&str, &str)]) -> Response {
        let body = form_encode(pairs);
        self.request(
            "POST",
            path,
            &[("Cookie", &s.cookie), ("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    }

    /// Posts one event (JSON) to the legacy store endpoint with the project's key; asserts 200.
    pub fn send_event(&self, project: &super::Project, event: &serde_json::Value) {
        let resp = self.post(
            &format!("/api/{}/store/", project.id),
            &[("X-Sentry-Auth", &project.auth()), ("Content-Type", "application/json")],
            event.to_string().as_bytes(),
        );
        assert_eq!(resp.status, 200, "sending an event: {}", resp.text());
    }

    /// Waits up to `timeout` for `check` on this server.
    pub fn eventually(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + timeout;
        while !check() {
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
