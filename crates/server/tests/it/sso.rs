//! Single sign-on against a real OpenID provider (npm's oidc-provider, `tests/oidc/`, which
//! `scripts/test.sh` installs) on loopback: a first sign-in creates the member, a known member
//! signs in, an email of another domain is refused, a replayed callback is refused, ID tokens
//! for another audience, expired or tampered with are refused, and an organisation that
//! requires it refuses its members' passwords but not its owner's.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use crate::harness::{form_encode, http_request, set_cookie, workspace_root, Response, Server};

const PASSWORD: &str = "correct horse battery";

/// The provider, running until dropped.
struct Provider {
    child: Child,
    port: u16,
}

impl Provider {
    fn start(redirect: &str) -> Provider {
        let dir = workspace_root().join("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed in {}: run scripts/test.sh (or npm ci --prefix tests/oidc)",
            dir.display()
        );
        let node = std::env::var("SENTRY_TEST_NODE").unwrap_or_else(|_| "node".into());
        let mut child = Command::new(node)
            .arg("provider.mjs")
            .arg(redirect)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting node (SENTRY_TEST_NODE or node on PATH)");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let port: u16 = line.trim().strip_prefix("ready ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("the provider did not start: {line:?}"));
        // Keep reading what it prints (notices), or it dies writing to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Provider { child, port }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes the next ID tokens wrong on purpose (`audience`, `expired`, `tampered`) or right.
    fn mode(&self, mode: &str) {
        let r = http_request(self.addr(), "GET", &format!("/test/mode?set={mode}"), &[], b"");
        assert_eq!(r.text(), mode);
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser's cookies, by name (every server here is 127.0.0.1, as browsers ignore the port).
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn keep(&mut self, r: &Response) {
        for (k, v) in &r.headers {
            if !k.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let pair = v.split(';').next().unwrap_or("").trim();
            let Some((name, value)) = pair.split_once('=') else { continue };
            self.0.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.0.push((name.to_string(), value.to_string()));
            }
        }
    }

    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}

/// `http://127.0.0.1:PORT/path` → (address, path).
fn split(url: &str) -> (SocketAddr, String) {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("not an http URL: {url}"));
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (host.parse().unwrap_or_else(|_| panic!("not IP:PORT: {host}")), if path.is_empty() { "/".into() } else { path.to_string() })
}

fn send(jar: &mut Jar, method: &str, url: &str, form: &[(&str, &str)]) -> Response {
    let (addr, path) = split(url);
    let cookies = jar.header();
    let body = form_encode(form);
    let mut headers = vec![("Cookie", cookies.as_str())];
    if method == "POST" {
        headers.push(("Content-Type", "application/x-www-form-urlencoded"));
    }
    let r = http_request(addr, method, &path, &headers, body.as_bytes());
    jar.keep(&r);
    r
}

/// An absolute URL for a `Location` (absolute, or a path on `base`'s server).
fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") {
        return location.to_string();
    }
    let (addr, _) = split(base);
    format!("http://{addr}{location}")
}

/// The `action` of the page's form.
fn form_action(html: &str) -> String {
    let at = html.find("action=\"").unwrap_or_else(|| panic!("no form in {html}")) + "action=\"".len();
    html[at..at + html[at..].find('"').unwrap()].replace("&amp;", "&")
}

/// The `name` and `value` of the page's hidden inputs (the login page's `prompt=login`, the
/// consent page's `prompt=consent`).
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| {
        let key = format!("{name}=\"");
        let at = tag.find(&key)? + key.len();
        Some(tag[at..at + tag[at..].find('"')?].to_string())
    };
    html.split("<input")
        .skip(1)
        .map(|rest| &rest[..rest.find('>').unwrap_or(rest.len())])
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default())))
        .collect()
}

/// Signs in as `email` at the provider, from Sentry's `/sso/{org}`, through the provider's
/// login and consent pages; returns the callback URL the provider sends the browser to (not
/// yet opened).
fn through_provider(server: &Server, jar: &mut Jar, org: &str, email: &str) -> String {
    let callback = server.url("/sso/callback");
    let mut url = server.url(&format!("/sso/{org}"));
    let mut method = "GET";
    let mut form: Vec<(String, String)> = Vec::new();
    for _ in 0..20 {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = send(jar, method, &url, &pairs);
        match r.status {
            300..=399 => {
                let next = absolute(&url, r.header("location").expect("a redirect's location"));
                if next.starts_with(&callback) {
                    return next;
                }
                (url, method, form) = (next, "GET", Vec::new());
            }
            200 => {
                let html = r.text();
                let action = absolute(&url, &form_action(&html));
                form = hidden_inputs(&html);
                if html.contains("name=\"login\"") {
                    form.extend([("login".into(), email.into()), ("password".into(), "anything".into())]);
                }
                (url, method) = (action, "POST");
            }
            s => panic!("{method} {url}: {s} {}", r.text()),
        }
    }
    panic!("the sign-in did not come back to Sentry");
}

fn setup(extra: &[&str]) -> (Server, Provider) {
    let server = Server::start();
    let provider = Provider::start(&server.url("/sso/callback"));
    let issuer = provider.issuer();
    let mut args = vec!["org", "sso", "--org", "default", "--issuer", &issuer, "--client-id", "sentry", "--client-secret", "sentry-test-secret"];
    args.extend_from_slice(extra);
    server.cli_ok(&args);
    (server, provider)
}

/// Opens the callback in the browser that started the sign-in.
fn finish(jar: &mut Jar, callback: &str) -> Response {
    send(jar, "GET", callback, &[])
}

#[test]
fn a_first_sign_in_creates_the_member_and_a_second_finds_them() {
    let (server, _provider) = setup(&["--domain", "sso.example", "--role", "admin"]);
    server.create_project("shop");
    let mut jar = Jar::default();
    let callback = through_provider(&server, &mut jar, "default", "ada@sso.example");
    let r = finish(&mut jar, &callback);
    assert_eq!((r.status, r.header("location")), (303, Some("/dashboard")), "{}", r.text());
    let session = set_cookie(&r, "sentry_session").expect("logged in");
    let dash = server.request("GET", "/dashboard", &[("Cookie", &session)], b"");
    assert_eq!(dash.status, 200);
    assert!(dash.text().contains("ada@sso.example"));
    let members = server.cli_ok(&["member", "list", "--org", "default"]);
    assert!(members.lines().any(|l| l.contains("ada@sso.example") && l.contains("admin")), "{members}");
    // The same callback again: the state was used.
    let again = finish(&mut jar, &callback);
    assert_eq!(again.status, 403, "a replayed state is refused");
    assert!(set_cookie(&again, "sentry_session").is_none_or(|c| c == "sentry_session="));
    // A second sign-in finds the member.
    let mut jar = Jar::default();
    let callback = through_provider(&server, &mut jar, "default", "ada@sso.example");
    assert_eq!(finish(&mut jar, &callback).status, 303);
    assert_eq!(server.cli_ok(&["member", "list", "--org", "default"]).matches("ada@sso.example").count(), 1);
    // The callback in another browser (without the state's cookie) is refused.
    let mut jar2 = Jar::default();
    let mut starter = Jar::default();
    let callback = through_provider(&server, &mut starter, "default", "ada@sso.example");
    assert_eq!(finish(&mut jar2, &callback).status, 403);
}

#[test]
fn other_domains_and_bad_id_tokens_are_refused() {
    let (server, provider) = setup(&["--domain", "sso.example"]);
    let mut jar = Jar::default();
    let callback = through_provider(&server, &mut jar, "default", "eve@elsewhere.example");
    let r = finish(&mut jar, &callback);
    assert_eq!(r.status, 403);
    assert!(r.text().contains("may not join"), "{}", r.text());
    assert!(!server.cli_ok(&["user", "list"]).contains("eve@elsewhere.example"), "nobody was created");
    // Each refused for its own reason (the words of the openidconnect crate's checks).
    for (mode, says) in [("audience", "audience"), ("expired", "xpired"), ("tampered", "ignature")] {
        provider.mode(mode);
        let mut jar = Jar::default();
        let callback = through_provider(&server, &mut jar, "default", "bob@sso.example");
        let r = finish(&mut jar, &callback);
        assert_eq!(r.status, 403, "{mode}: {}", r.text());
        let text = r.text();
        let message = &text[text.find("error-message").unwrap_or(0)..];
        assert!(message.contains("the ID token is not valid") && message.contains(says), "{mode}: {}", &message[..message.len().min(300)]);
        assert!(set_cookie(&r, "sentry_session").is_none(), "{mode}: no session");
    }
    provider.mode("normal");
    assert!(!server.cli_ok(&["user", "list"]).contains("bob@sso.example"));
    let mut jar = Jar::default();
    let callback = through_provider(&server, &mut jar, "default", "bob@sso.example");
    assert_eq!(finish(&mut jar, &callback).status, 303, "and with a right token again, it works");
}

#[test]
fn required_sign_on_refuses_members_passwords_but_not_the_owners() {
    let (server, provider) = setup(&["--required", "--domain", "sso.example"]);
    for (email, role) in [("owner@sso.example", "owner"), ("dev@sso.example", "member")] {
        let mut cmd = server.command();
        cmd.args(["user", "create", email, "--password-stdin", "--role", role]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{PASSWORD}\n").as_bytes()).unwrap();
        assert!(child.wait_with_output().unwrap().status.success());
    }
    let owner = server.login("owner@sso.example", PASSWORD).expect("the owner's password still works");
    let refused = server.login("dev@sso.example", PASSWORD).unwrap_err();
    assert_eq!(refused.status, 403);
    assert!(refused.text().contains("/sso/default"), "{}", refused.text());
    let mut jar = Jar::default();
    let callback = through_provider(&server, &mut jar, "default", "dev@sso.example");
    assert_eq!(finish(&mut jar, &callback).status, 303, "through the provider they sign in");
    assert_eq!(server.get("/sso/nope").status, 404, "an organisation without single sign-on");
    let r = server.get("/login/sso?org=default");
    assert_eq!((r.status, r.header("location")), (303, Some("/sso/default")), "the login page's form");
    // The owner sees the settings (not the secret) and can turn it off in the dashboard.
    let page = server.get_as(&owner, "/o/default/settings/").text();
    assert!(page.contains("Single sign-on") && page.contains(&provider.issuer()) && !page.contains("sentry-test-secret"));
    let r = server.post_form_as(&owner, "/o/default/sso", &[("csrf", &owner.csrf), ("off", "1")]);
    assert_eq!(r.status, 303);
    assert_eq!(server.get("/sso/default").status, 404);
    assert!(server.login("dev@sso.example", PASSWORD).is_ok(), "passwords work again");
    assert!(server.get_as(&owner, "/o/default/settings/").text().contains("sso.off"), "in the audit log");
}
