//! Organisations, roles and tokens against the real binary: the authorisation matrix (every
//! dashboard and API route, from the router's own list, × every role × own organisation /
//! foreign organisation / no membership / no session / tokens revoked or lacking the scope),
//! revocation at the next request, invitation links (single use, for one organisation), API
//! tokens with Sentry's JSON shapes, and the audit log.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{form_encode, form_value, set_cookie, Server, WebSession};

const PASSWORD: &str = "correct horse battery";

/// The invitation link a page shows once.
pub fn invitation_link(html: &str) -> String {
    let at = html.find("/invite/").expect("the page shows an invitation link");
    let start = html[..at].rfind('>').map_or(at, |i| i + 1);
    let end = at + html[at..].find('<').expect("the link ends");
    let link = &html[start..end];
    link.split_once("://").map_or(link, |(_, rest)| &rest[rest.find('/').unwrap_or(0)..]).to_string()
}

/// Opens an invitation link like a browser and sets `password`; returns the response. (A used
/// link shows no form: then the login page's pre-session CSRF cookie and token are sent.)
pub fn accept_invitation(server: &Server, link: &str, password: &str) -> crate::harness::Response {
    let mut page = server.get(link);
    assert_eq!(page.status, 200, "{}", page.text());
    if !page.text().contains("name=\"csrf\"") {
        page = server.get("/login");
    }
    let cookie = set_cookie(&page, "sentry_csrf").expect("csrf cookie");
    let csrf = form_value(&page.text(), "csrf").expect("csrf field");
    let body = form_encode(&[("csrf", &csrf), ("password", password), ("password_again", password)]);
    let r = server.request("POST", link, &[("Cookie", &cookie), ("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes());
    assert!(r.status == 303 || r.status == 400, "{} {}", r.status, r.text());
    r
}

/// What an answer means to the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// 2xx, a redirect that is not to the login page, or 400 (the access check passed and the
    /// deliberately empty form was refused after it).
    Allowed,
    Forbidden,
    NotFound,
    Login,
    Unauthorized,
}

/// Sends a request and reads only the status line and headers (live streams never end).
fn answer(server: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (Answer, u16) {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n", server.addr(), body.len());
    if method == "POST" {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{method} {path}: no status in {head:?}"));
    let location = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("location: ").map(str::to_string)).unwrap_or_default();
    let a = match status {
        401 => Answer::Unauthorized,
        403 => Answer::Forbidden,
        404 => Answer::NotFound,
        300..=399 if location.starts_with("/login") => Answer::Login,
        200..=400 => Answer::Allowed,
        s => panic!("{method} {path}: unexpected status {s}"),
    };
    (a, status)
}

/// Who asks, in the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Owner,
    Manager,
    Admin,
    Member,
    /// Logged in, member of no organisation.
    Loner,
    /// No session at all.
    Anonymous,
}

const PEOPLE: [Who; 6] = [Who::Owner, Who::Manager, Who::Admin, Who::Member, Who::Loner, Who::Anonymous];

/// Which project or organisation a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The viewer's organisation, a project of the viewer's team.
    Own,
    /// The viewer's organisation, a project of a team the admin and member are not in.
    OtherTeam,
    /// Another organisation's.
    Foreign,
}

/// The least a route needs: the matrix's own table, not the product's.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// Anyone (login, setup and invitation links, static files); forms refused without their
    /// pre-session CSRF cookie.
    Public,
    /// Anyone, with the same answer whoever asks (single sign-on, which the matrix's world has
    /// not set up: no such sign-in, no state to come back with).
    Same(Answer),
    /// Any session (pages across projects, whose content is filtered).
    Session,
    /// A project: seen by members of its teams (and managers, owners), changed by
    /// `Project(true)` admins of its teams.
    Project { manage: bool },
    /// An organisation: `Org(role)` needs at least that role there.
    Org(Least),
    /// A token-authenticated API route: the scopes an organisation token needs for it, the
    /// least role a personal token's user needs, and whether a URL names an organisation.
    Api { org_in_path: bool, scopes: &'static str, least: Least },
}

/// `Rule::Api` for a route of an organisation (or project) reached with `scopes` by a member.
const fn api(scopes: &'static str) -> Rule {
    Rule::Api { org_in_path: true, scopes, least: Least::Member }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Least {
    Member,
    Admin,
    Manager,
    Owner,
}

/// Every route the matrix knows, with its rule and the form it posts (empty or invalid past
/// the access check, so that an allowed request changes nothing).
fn rule(method: &str, path: &str) -> Option<(Rule, &'static [(&'static str, &'static str)])> {
    use Rule::*;
    let r = match (method, path) {
        ("GET", "/login" | "/setup/{token}" | "/invite/{token}" | "/static/app.css" | "/static/app.js" | "/static/favicon.svg" | "/favicon.ico") => (Public, &[][..]),
        ("POST", "/login" | "/setup/{token}" | "/invite/{token}") => (Public, &[][..]),
        ("GET", "/sso/{org}") => (Same(Answer::NotFound), &[][..]),
        ("GET", "/login/sso") => (Same(Answer::Allowed), &[][..]),
        ("GET", "/sso/callback") => (Same(Answer::Forbidden), &[][..]),
        ("GET", "/" | "/dashboard" | "/live" | "/settings/") => (Session, &[][..]),
        ("POST", "/logout") => (Session, &[][..]),
        ("POST", "/settings/password") => (Session, &[("password", "short")][..]),
        ("POST", "/settings/account/delete") => (Session, &[("current", "")][..]),
        ("GET", "/p/{slug}/releases/" | "/p/{slug}/releases/{version}/") => (Project { manage: false }, &[][..]),
        ("GET", "/p/{slug}/" | "/p/{slug}/live" | "/p/{slug}/feedback/" | "/p/{slug}/logs/" | "/p/{slug}/monitors/" | "/p/{slug}/issues/{id}/" | "/p/{slug}/issues/{id}/events/{event_id}/" | "/p/{slug}/issues/{id}/events/{event_id}/json") => {
            (Project { manage: false }, &[][..])
        }
        ("POST", "/p/{slug}/issues/{id}/status") => (Project { manage: false }, &[("status", "")][..]),
        ("POST", "/p/{slug}/issues/{id}/ignore") => (Project { manage: false }, &[("count", "many")][..]),
        ("POST", "/p/{slug}/issues/{id}/comments") => (Project { manage: false }, &[("text", "")][..]),
        ("POST", "/p/{slug}/issues/{id}/unmerge") => (Project { manage: false }, &[("hash", "")][..]),
        ("POST", "/p/{slug}/issues/{id}/assign") => (Project { manage: false }, &[("to", "#no-such-team")][..]),
        ("POST", "/p/{slug}/bulk") => (Project { manage: false }, &[("action", "")][..]),
        ("GET", "/p/{slug}/bulk/{job}") => (Project { manage: false }, &[][..]),
        ("GET", "/settings/projects/{slug}/") => (Project { manage: true }, &[][..]),
        ("POST", "/settings/projects/{slug}/rename") => (Project { manage: true }, &[("name", "")][..]),
        ("POST", "/settings/projects/{slug}/ownership") => (Project { manage: true }, &[("rules", "bad")][..]),
        ("POST", "/settings/projects/{slug}/delete") => (Project { manage: true }, &[("confirm", "not the slug")][..]),
        ("POST", "/settings/projects/{slug}/keys") => (Project { manage: true }, &[("rate_limit", "many")][..]),
        ("POST", "/settings/projects/{slug}/keys/{key}/revoke") => (Project { manage: true }, &[][..]),
        ("GET", "/o/{org}/settings/") => (Org(Least::Member), &[][..]),
        ("POST", "/o/{org}/projects") => (Org(Least::Admin), &[("name", "")][..]),
        ("POST", "/o/{org}/teams") => (Org(Least::Manager), &[("name", "")][..]),
        ("POST", "/o/{org}/invitations") => (Org(Least::Manager), &[("role", "")][..]),
        ("POST", "/o/{org}/members/{user}/role") => (Org(Least::Manager), &[("role", "")][..]),
        ("POST", "/o/{org}/members/{user}/remove") => (Org(Least::Manager), &[][..]),
        ("POST", "/o/{org}/members/{user}/teams") => (Org(Least::Admin), &[("team", "")][..]),
        ("POST", "/o/{org}/tokens") => (Org(Least::Manager), &[][..]),
        ("POST", "/o/{org}/tokens/{id}/revoke") => (Org(Least::Manager), &[][..]),
        ("POST", "/o/{org}/sso") => (Org(Least::Owner), &[("role", "")][..]),
        ("GET", "/api/0/openapi.json") => (Public, &[][..]),
        ("GET", "/api/0/") => (Api { org_in_path: false, scopes: "", least: Least::Member }, &[][..]),
        ("GET", "/api/0/organizations/") => (Api { org_in_path: false, scopes: "org:read", least: Least::Member }, &[][..]),
        ("GET", "/api/0/organizations/{org}/" | "/api/0/organizations/{org}/projects/" | "/api/0/organizations/{org}/teams/") => {
            (api("org:read"), &[][..])
        }
        ("GET", "/api/0/organizations/{org}/members/") => (api("org:read member:read"), &[][..]),
        ("GET", "/api/0/projects/{org}/{slug}/" | "/api/0/projects/{org}/{slug}/releases/" | "/api/0/projects/{org}/{slug}/issues/") => {
            (api("project:read"), &[][..])
        }
        ("GET" | "POST", "/api/0/projects/{org}/{slug}/keys/") | ("DELETE", "/api/0/projects/{org}/{slug}/keys/{key}/") => {
            (Api { org_in_path: true, scopes: "project:read project:write", least: Least::Admin }, &[][..])
        }
        ("PUT", "/api/0/projects/{org}/{slug}/issues/") => (api("project:read event:write"), &[][..]),
        ("GET", "/api/0/projects/{org}/{slug}/events/{event_id}/" | "/api/0/projects/{org}/{slug}/events/{event_id}/json/") => {
            (api("project:read event:read"), &[][..])
        }
        (
            "GET",
            "/api/0/organizations/{org}/releases/"
            | "/api/0/organizations/{org}/releases/{version}/"
            | "/api/0/organizations/{org}/releases/{version}/deploys/"
            | "/api/0/organizations/{org}/releases/{version}/files/",
        ) => (api("org:read"), &[][..]),
        ("POST", "/api/0/organizations/{org}/releases/" | "/api/0/organizations/{org}/releases/{version}/deploys/")
        | ("PUT" | "DELETE", "/api/0/organizations/{org}/releases/{version}/")
        | ("GET" | "POST", "/api/0/organizations/{org}/chunk-upload/")
        | ("POST", "/api/0/organizations/{org}/artifactbundle/assemble/" | "/api/0/organizations/{org}/releases/{version}/assemble/") => {
            (api("org:read project:releases"), &[][..])
        }
        ("GET", "/api/0/organizations/{org}/issues/{id}/") => (api("org:read project:read"), &[][..]),
        ("PUT" | "DELETE", "/api/0/organizations/{org}/issues/{id}/") => (api("org:read project:read event:write"), &[][..]),
        ("GET", "/api/0/issues/{id}/" | "/api/0/issues/{id}/comments/") => (Api { org_in_path: false, scopes: "org:read project:read", least: Least::Member }, &[][..]),
        ("POST", "/api/0/issues/{id}/comments/") => (Api { org_in_path: false, scopes: "org:read project:read event:write", least: Least::Member }, &[][..]),
        ("PUT" | "DELETE", "/api/0/issues/{id}/") => (Api { org_in_path: false, scopes: "org:read project:read event:write", least: Least::Member }, &[][..]),
        ("GET", "/api/0/organizations/{org}/issues/{id}/events/" | "/api/0/organizations/{org}/issues/{id}/events/latest/") => {
            (api("org:read project:read event:read"), &[][..])
        }
        _ => return None,
    };
    Some(r)
}

fn role_least(who: Who) -> Option<Least> {
    match who {
        Who::Owner => Some(Least::Owner),
        Who::Manager => Some(Least::Manager),
        Who::Admin => Some(Least::Admin),
        Who::Member => Some(Least::Member),
        Who::Loner | Who::Anonymous => None,
    }
}

/// The answer the matrix expects of a person.
fn expected(rule: Rule, method: &str, who: Who, target: Target) -> Answer {
    use Answer::*;
    match rule {
        Rule::Public => {
            if method == "POST" { Forbidden } else { Allowed }
        }
        Rule::Same(answer) => answer,
        _ if who == Who::Anonymous => Login,
        Rule::Session => Allowed,
        Rule::Api { .. } => Unauthorized,
        _ if who == Who::Loner || target == Target::Foreign => NotFound,
        Rule::Project { manage } => {
            let sees_all = matches!(who, Who::Owner | Who::Manager);
            if target == Target::OtherTeam && !sees_all {
                NotFound
            } else if manage && who == Who::Member {
                Forbidden
            } else {
                Allowed
            }
        }
        Rule::Org(least) => {
            if role_least(who).is_some_and(|r| r >= least) { Allowed } else { Forbidden }
        }
    }
}

/// One organisation "default" with projects `shop` (team default: everyone's) and `hidden`
/// (team other: no one's but the owner's and manager's), and a foreign organisation "acme"
/// with `acme-app`; a session per person; events in every project.
struct World {
    server: Server,
    sessions: Vec<(Who, Option<WebSession>)>,
    /// (slug, group id, event id, a key) per target.
    projects: Vec<(Target, String, u64, String, String)>,
}

fn email(who: Who) -> String {
    format!("{who:?}@example.com").to_lowercase()
}

fn world() -> World {
    let server = Server::start();
    let shop = server.create_project("shop");
    server.cli_ok(&["team", "create", "--org", "default", "Other"]);
    let v = server.cli_json(&["project", "create", "hidden", "--team", "other", "--json"]);
    let hidden_dsn = v["dsn"].as_str().unwrap().to_string();
    for (who, role) in [(Who::Owner, "owner"), (Who::Manager, "manager"), (Who::Admin, "admin"), (Who::Member, "member"), (Who::Loner, "member")] {
        let out = user_create(&server, &email(who), &["--role", role]);
        assert!(out.status.success(), "{}", crate::harness::show_output(&out));
    }
    server.cli_ok(&["member", "remove", "--org", "default", &email(Who::Loner)]);
    assert!(user_create(&server, "boss@acme.example", &[]).status.success());
    server.cli_ok(&["org", "create", "Acme", "--owner", "boss@acme.example"]);
    let v = server.cli_json(&["project", "create", "acme-app", "--org", "acme", "--json"]);
    let acme_dsn = v["dsn"].as_str().unwrap().to_string();
    let mut projects = Vec::new();
    for (target, slug, dsn) in [(Target::Own, "shop", shop.dsn.clone()), (Target::OtherTeam, "hidden", hidden_dsn), (Target::Foreign, "acme-app", acme_dsn)] {
        let event_id = format!("{:032x}", projects.len() + 1);
        server.cli_ok(&["capture", "Message", "--dsn", &dsn, "--message", &format!("hello {slug}")]);
        let group = server.groups(slug)[0]["id"].as_u64().unwrap();
        let event = server.events(group)[0]["event_id"].as_str().unwrap_or(&event_id).to_string();
        let key = dsn.split("://").nth(1).unwrap().split('@').next().unwrap().to_string();
        projects.push((target, slug.to_string(), group, event, key));
    }
    for (org, owner) in [("default", email(Who::Owner)), ("acme", "boss@acme.example".to_string())] {
        let t = server.cli_ok(&["token", "create", "--org", org, "--scopes", "org:read project:releases", "--user", &owner]);
        create_release(&server, org, t.trim());
    }
    let sessions = PEOPLE
        .iter()
        .map(|w| (*w, (*w != Who::Anonymous).then(|| server.login(&email(*w), PASSWORD).unwrap_or_else(|r| panic!("{w:?}: {}", r.text())))))
        .collect();
    World { server, sessions, projects }
}

fn user_create(server: &Server, email: &str, extra: &[&str]) -> std::process::Output {
    let mut cmd = server.command();
    cmd.args(["user", "create", email, "--password-stdin"]).args(extra);
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// `pattern` with its parameters filled in for `target`.
fn fill(w: &World, pattern: &str, target: Target) -> String {
    let (_, slug, group, event, key) = w.projects.iter().find(|p| p.0 == target).unwrap();
    let org = if target == Target::Foreign { "acme" } else { "default" };
    pattern
        .replace("{slug}", slug)
        .replace("{id}/events", &format!("{group}/events"))
        .replace("issues/{id}", &format!("issues/{group}"))
        .replace("{event_id}", event)
        .replace("{key}", key)
        .replace("{version}", RELEASE)
        .replace("{org}", org)
        .replace("{job}", "not-a-job")
        .replace("{user}", "999999")
        .replace("{id}", "999999")
        .replace("{token}", "not-a-real-link")
}

#[test]
fn every_route_answers_every_role_as_the_matrix_says() {
    let w = world();
    let routes = web::routes();
    assert!(routes.len() > 25, "the router lists its routes");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (method, pattern) in &routes {
        let Some((rule, form)) = rule(method, pattern) else {
            panic!("{method} {pattern} is not in the authorisation matrix: add it to `rule` with what it needs");
        };
        if matches!(rule, Rule::Api { .. }) {
            continue; // tokens: below
        }
        let targets: &[Target] = match rule {
            Rule::Project { .. } => &[Target::Own, Target::OtherTeam, Target::Foreign],
            Rule::Org(_) => &[Target::Own, Target::Foreign],
            _ => &[Target::Own],
        };
        for &target in targets {
            let path = fill(&w, pattern, target);
            for (who, session) in &w.sessions {
                // Logging out ends the session: use a fresh one.
                let session = match (*pattern, session) {
                    ("/logout", Some(_)) => Some(w.server.login(&email(*who), PASSWORD).unwrap()),
                    (_, s) => s.clone(),
                };
                let mut headers = Vec::new();
                let mut pairs: Vec<(&str, &str)> = form.to_vec();
                if let Some(s) = &session {
                    headers.push(("Cookie", s.cookie.as_str()));
                    pairs.push(("csrf", s.csrf.as_str()));
                }
                let body = if *method == "POST" { form_encode(&pairs) } else { String::new() };
                let (got, status) = answer(&w.server, method, &path, &headers, &body);
                let mut want = expected(rule, method, *who, target);
                if let ("/logout", Some(s)) = (*pattern, &session) {
                    // Logged out: to the login page, and the session is over on the server.
                    want = Answer::Login;
                    let (after, _) = answer(&w.server, "GET", "/dashboard", &[("Cookie", s.cookie.as_str())], "");
                    if after != Answer::Login {
                        wrong.push(format!("after POST /logout as {who:?} the session still works"));
                    }
                }
                checked += 1;
                if got != want {
                    wrong.push(format!("{method} {path} as {who:?}: {got:?} ({status}), expected {want:?}"));
                }
            }
            // A bearer token is no dashboard session.
            if !matches!(rule, Rule::Public | Rule::Same(_)) {
                let (got, _) = answer(&w.server, method, &path, &[("Authorization", "Bearer nope")], "");
                if got != Answer::Login {
                    wrong.push(format!("{method} {path} with only a token: {got:?}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {checked} answers differ:\n{}", wrong.len(), wrong.join("\n"));

    // Tokens, on every API route.
    let token = |org: &str, scopes: &str, user: Option<Who>| {
        let mut args = vec!["token".to_string(), "create".into(), "--org".into(), org.into(), "--scopes".into(), scopes.into()];
        if let Some(u) = user {
            args.extend(["--user".to_string(), email(u)]);
        }
        w.server.cli_ok(&args).trim().to_string()
    };
    let all = access_scopes().join(" ");
    let personal: Vec<(Who, String)> =
        [Who::Owner, Who::Manager, Who::Admin, Who::Member].into_iter().map(|who| (who, token("default", &all, Some(who)))).collect();
    let revoked = token("default", &all, None);
    let id = w.server.cli_ok(&["token", "list", "--org", "default"]).lines().next().unwrap().split_whitespace().next().unwrap().to_string();
    w.server.cli_ok(&["token", "revoke", "--org", "default", &id]);
    // Organisation tokens by their scopes, made once each.
    let mut by_scopes: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut org_token = |scopes: &str| by_scopes.entry(scopes.to_string()).or_insert_with(|| token("default", scopes, None)).clone();
    let owner = personal[0].1.clone();
    let mut wrong = Vec::new();
    for (method, pattern) in &routes {
        let Some((Rule::Api { org_in_path, scopes, least }, _)) = rule(method, pattern) else { continue };
        // (name, token, on own org, on foreign org)
        let mut tokens: Vec<(String, String, Answer, Answer)> = Vec::new();
        for (who, secret) in &personal {
            let own = if role_least(*who).is_some_and(|r| r >= least) { Answer::Allowed } else { Answer::Forbidden };
            tokens.push((format!("{who:?}'s personal token"), secret.clone(), own, Answer::NotFound));
        }
        if !scopes.is_empty() {
            tokens.push((format!("a token with {scopes}"), org_token(scopes), Answer::Allowed, Answer::NotFound));
            // Without the last scope it needs (or, needing one, with another).
            let fewer: Vec<&str> = scopes.split(' ').collect();
            let fewer = if fewer.len() > 1 { fewer[..fewer.len() - 1].join(" ") } else if scopes == "org:read" { "event:read".into() } else { "org:read".into() };
            tokens.push((format!("a token with only {fewer}"), org_token(&fewer), Answer::Forbidden, Answer::NotFound));
        } else {
            tokens.push(("a token with one scope".into(), org_token("event:read"), Answer::Allowed, Answer::Allowed));
        }
        tokens.push(("a revoked token".into(), revoked.clone(), Answer::Unauthorized, Answer::Unauthorized));
        tokens.push(("an unknown token".into(), "0123".into(), Answer::Unauthorized, Answer::Unauthorized));
        let targets: &[Target] = if org_in_path { &[Target::Own, Target::Foreign] } else { &[Target::Own] };
        for &target in targets {
            for (name, secret, own, foreign) in &tokens {
                let path = prepare(&w, method, pattern, target, &owner);
                let auth = format!("Bearer {secret}");
                let (got, status) = answer(&w.server, method, &path, &[("Authorization", &auth)], "");
                let want = if target == Target::Foreign { *foreign } else { *own };
                if got != want {
                    wrong.push(format!("{method} {path} with {name}: {got:?} ({status}), expected {want:?}"));
                }
            }
            let path = fill(&w, pattern, target);
            for (who, session) in &w.sessions {
                let headers: Vec<(&str, &str)> = session.iter().map(|s| ("Cookie", s.cookie.as_str())).collect();
                let (got, _) = answer(&w.server, method, &path, &headers, "");
                if got != Answer::Unauthorized {
                    wrong.push(format!("{method} {path} as {who:?} without a token: {got:?}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The release every organisation of the matrix's world has.
const RELEASE: &str = "1.0";

/// Every scope a token may have.
fn access_scopes() -> &'static [&'static str] {
    web::access::SCOPES
}

/// The path of a request of the token matrix; what a DELETE removes is made anew before each.
fn prepare(w: &World, method: &str, pattern: &str, target: Target, owner: &str) -> String {
    let path = fill(w, pattern, target);
    if method != "DELETE" || target == Target::Foreign {
        return path;
    }
    if pattern.contains("{key}") {
        let key = w.server.cli_json(&["key", "create", "--project", "shop", "--json"]);
        let key = key["public_key"].as_str().or(key["key"].as_str()).unwrap_or_else(|| panic!("{key}")).to_string();
        let (_, _, _, _, old) = w.projects.iter().find(|p| p.0 == target).unwrap();
        return path.replace(old.as_str(), &key);
    }
    if pattern.contains("{version}") {
        create_release(&w.server, "default", owner);
    }
    if pattern.contains("issues/{id}") {
        let (_, slug, group, _, _) = w.projects.iter().find(|p| p.0 == target).unwrap();
        return path.replace(&format!("issues/{group}"), &format!("issues/{}", fresh_issue(&w.server, slug)));
    }
    path
}

/// A new issue in project `slug` (for a DELETE to remove): its id.
fn fresh_issue(server: &Server, slug: &str) -> u64 {
    static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    // Letters only (g to z), so that grouping does not fold the messages together.
    let mut n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut word = String::new();
    loop {
        word.push((b'g' + (n % 20) as u8) as char);
        n /= 20;
        if n == 0 {
            break;
        }
    }
    let title = format!("to delete {word}");
    let projects = server.cli_json(&["project", "list", "--json"]);
    let dsn = projects.as_array().unwrap().iter().find(|p| p["slug"] == slug).unwrap()["dsn"].as_str().unwrap().to_string();
    server.cli_ok(&["capture", "Message", "--dsn", &dsn, "--message", &title]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(g) = server.groups(slug).iter().find(|g| g["title"] == title.as_str()) {
            return g["id"].as_u64().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "the issue {title:?} did not show up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Creates release [`RELEASE`] in `org` with a token of the organisation's owner.
fn create_release(server: &Server, org: &str, token: &str) {
    let body = json!({"version": RELEASE}).to_string();
    let r = server.request(
        "POST",
        &format!("/api/0/organizations/{org}/releases/"),
        &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert!(r.status == 201 || r.status == 208, "{} {}", r.status, r.text());
}

fn bearer_json(server: &Server, path: &str, token: &str) -> (u16, Value) {
    let r = server.request("GET", path, &[("Authorization", &format!("Bearer {token}"))], b"");
    let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, body)
}

#[test]
fn tokens_list_organisations_and_the_projects_their_member_sees() {
    let w = world();
    let member = w.server.cli_ok(&["token", "create", "--org", "default", "--scopes", "org:read project:read", "--user", &email(Who::Member)]);
    let member = member.trim();
    assert_eq!(member.len(), 64, "one line: the token");
    let (status, orgs) = bearer_json(&w.server, "/api/0/organizations/", member);
    assert_eq!(status, 200);
    assert_eq!(orgs.as_array().unwrap().len(), 1);
    assert_eq!((orgs[0]["slug"].clone(), orgs[0]["id"].clone()), (json!("default"), json!("1")));
    assert!(orgs[0]["dateCreated"].as_str().unwrap().ends_with('Z'), "{orgs}");
    let r = w.server.request("GET", "/api/0/organizations/default/projects/", &[("Authorization", &format!("Bearer {member}"))], b"");
    assert!(r.header("link").unwrap_or_default().contains("rel=\"next\"; results=\"false\""), "Sentry's Link header");
    let slugs = |v: &Value| v.as_array().unwrap().iter().map(|p| p["slug"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let projects = r.json();
    // The server made a first project, `default`, at its first start; both are the default team's.
    assert_eq!(slugs(&projects), ["default", "shop"], "the member sees only their team's projects");
    assert_eq!(projects[1]["teams"][0]["slug"], "default");
    assert_eq!(projects[0]["isMember"], true);
    let org_token = w.server.cli_ok(&["token", "create", "--org", "default", "--scopes", "org:read"]);
    let (_, all) = bearer_json(&w.server, "/api/0/organizations/default/projects/", org_token.trim());
    assert_eq!(slugs(&all), ["default", "shop", "hidden"], "the organisation's token sees all of its projects");
    // Removing the member revokes their token at its next request.
    w.server.cli_ok(&["member", "remove", "--org", "default", &email(Who::Member)]);
    assert_eq!(bearer_json(&w.server, "/api/0/organizations/", member).0, 401);
    // A personal token needs a member; scopes are checked.
    let out = w.server.cli(&["token", "create", "--org", "acme", "--scopes", "org:read", "--user", &email(Who::Owner)]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not a member"));
    let out = w.server.cli(&["token", "create", "--org", "default", "--scopes", "org:everything"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("is not a scope"));
}

#[test]
fn removing_a_member_or_revoking_a_key_takes_effect_at_the_next_request() {
    let w = world();
    let member = w.sessions.iter().find(|s| s.0 == Who::Member).unwrap().1.clone().unwrap();
    let owner = w.sessions.iter().find(|s| s.0 == Who::Owner).unwrap().1.clone().unwrap();
    assert_eq!(w.server.get_as(&member, "/p/shop/").status, 200);
    assert!(w.server.get_as(&member, "/dashboard").text().contains("/p/shop/"));
    let members = w.server.get_as(&owner, "/o/default/settings/").text();
    assert!(members.contains(&email(Who::Member)), "the owner sees the members");
    let id = member_id(&members, &email(Who::Member));
    let r = w.server.post_form_as(&owner, &format!("/o/default/members/{id}/remove"), &[("csrf", &owner.csrf)]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(w.server.get_as(&member, "/p/shop/").status, 404, "no longer a member");
    assert!(!w.server.get_as(&member, "/dashboard").text().contains("/p/shop/"));
    // A manager can't touch an owner, nor make one.
    let manager = w.sessions.iter().find(|s| s.0 == Who::Manager).unwrap().1.clone().unwrap();
    let owner_id = member_id(&members, &email(Who::Owner));
    let admin_id = member_id(&members, &email(Who::Admin));
    assert_eq!(w.server.post_form_as(&manager, &format!("/o/default/members/{owner_id}/remove"), &[("csrf", &manager.csrf)]).status, 403);
    assert_eq!(w.server.post_form_as(&manager, &format!("/o/default/members/{admin_id}/role"), &[("csrf", &manager.csrf), ("role", "owner")]).status, 403);
    let admin = w.sessions.iter().find(|s| s.0 == Who::Admin).unwrap().1.clone().unwrap();
    // An admin adds members to their own team, not to another.
    let manager_id = member_id(&members, &email(Who::Manager));
    let teams = |who: &WebSession, team: &str| {
        w.server.post_form_as(who, &format!("/o/default/members/{manager_id}/teams"), &[("csrf", &who.csrf), ("team", team)]).status
    };
    assert_eq!(teams(&admin, "1"), 303, "the admin's team");
    assert_eq!(teams(&admin, "2"), 403, "another team");
    assert_eq!(teams(&owner, "2"), 303);
    assert_eq!(w.server.post_form_as(&manager, &format!("/o/default/members/{admin_id}/role"), &[("csrf", &manager.csrf), ("role", "member")]).status, 303);
    assert_eq!(w.server.get_as(&admin, "/settings/projects/shop/").status, 403, "now a member: no more project settings");
    // A key revoked in Settings is refused by ingest (whose key cache holds a key for a second).
    let (_, _, _, _, key) = w.projects.iter().find(|p| p.0 == Target::Own).unwrap().clone();
    let r = w.server.post_form_as(&owner, &format!("/settings/projects/shop/keys/{key}/revoke"), &[("csrf", &owner.csrf)]);
    assert_eq!(r.status, 303);
    let auth = format!("Sentry sentry_key={key}, sentry_version=7");
    let shop_id = w.server.cli_json(&["project", "list", "--json"]).as_array().unwrap().iter().find(|p| p["slug"] == "shop").unwrap()["id"].clone();
    w.server.eventually("the revoked key to be refused", Duration::from_secs(3), || {
        let r = w.server.post(&format!("/api/{shop_id}/store/"), &[("X-Sentry-Auth", &auth), ("Content-Type", "application/json")], b"{\"message\":\"x\"}");
        r.status == 403
    });
    // The audit log has it all.
    let log = w.server.get_as(&owner, "/o/default/settings/").text();
    for what in ["member.remove", "member.role", "member.add", "project.create", "key.revoke"] {
        assert!(log.contains(what), "the audit log shows {what}");
    }
}

fn member_id(html: &str, email: &str) -> String {
    let row = &html[html.find(&format!("<td>{email}</td>")).expect("the member's row")..];
    let at = row.find("/members/").expect("the member's forms") + "/members/".len();
    row[at..].split('/').next().unwrap().to_string()
}

#[test]
fn invitations_work_once_and_only_for_their_organisation() {
    let w = world();
    let owner = w.sessions.iter().find(|s| s.0 == Who::Owner).unwrap().1.clone().unwrap();
    let r = w.server.post_form_as(&owner, "/o/default/invitations", &[("csrf", &owner.csrf), ("email", "new@example.com"), ("role", "member"), ("team", "1")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let link = invitation_link(&r.text());
    assert!(!w.server.get_as(&owner, "/o/default/settings/").text().contains(&link), "the link is shown once");
    let done = accept_invitation(&w.server, &link, "new member password");
    assert_eq!(done.status, 303);
    let s = w.server.login("new@example.com", "new member password").unwrap();
    assert_eq!(w.server.get_as(&s, "/p/shop/").status, 200, "the invitation's team's project");
    assert_eq!(w.server.get_as(&s, "/p/hidden/").status, 404);
    assert_eq!(w.server.get_as(&s, "/p/acme-app/").status, 404);
    // Used once: the page says so and a second use is refused.
    assert!(w.server.get(&link).text().contains("has been used or has expired"));
    let again = accept_invitation(&w.server, &link, "another password");
    assert_eq!(again.status, 400);
    assert!(w.server.login("new@example.com", "another password").is_err());
    // An invitation to another organisation gives nothing here.
    let boss = w.server.login("boss@acme.example", PASSWORD).unwrap();
    let r = w.server.post_form_as(&boss, "/o/acme/invitations", &[("csrf", &boss.csrf), ("email", "guest@example.com"), ("role", "admin")]);
    let link = invitation_link(&r.text());
    assert_eq!(accept_invitation(&w.server, &link, "guest password").status, 303);
    let guest = w.server.login("guest@example.com", "guest password").unwrap();
    assert_eq!(w.server.get_as(&guest, "/o/acme/settings/").status, 200);
    assert_eq!(w.server.get_as(&guest, "/o/default/settings/").status, 404);
    assert_eq!(w.server.get_as(&guest, "/p/shop/").status, 404);
    // A manager can't invite an owner; a made-up link is no invitation.
    let manager = w.sessions.iter().find(|s| s.0 == Who::Manager).unwrap().1.clone().unwrap();
    let r = w.server.post_form_as(&manager, "/o/default/invitations", &[("csrf", &manager.csrf), ("email", "x@example.com"), ("role", "owner")]);
    assert_eq!(r.status, 403);
    assert!(w.server.get("/invite/0000").text().contains("has been used or has expired"));
}

#[test]
fn tokens_are_shown_once_and_revocable_in_settings() {
    let w = world();
    let owner = w.sessions.iter().find(|s| s.0 == Who::Owner).unwrap().1.clone().unwrap();
    let body = format!("csrf={}&name=deploy&scope=org%3Aread&scope=project%3Aread", owner.csrf);
    let r = w.server.request("POST", "/o/default/tokens", &[("Cookie", &owner.cookie), ("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let html = r.text();
    let at = html.find("id=\"secret\">").expect("the token is shown") + "id=\"secret\">".len();
    let secret = html[at..at + 64].to_string();
    assert_eq!(bearer_json(&w.server, "/api/0/organizations/", &secret).0, 200);
    let page = w.server.get_as(&owner, "/o/default/settings/").text();
    assert!(!page.contains(&secret), "shown once");
    assert!(page.contains("deploy") && page.contains("org:read project:read"));
    let at = page.find("/o/default/tokens/").unwrap() + "/o/default/tokens/".len();
    let id = page[at..].split('/').next().unwrap().to_string();
    let r = w.server.post_form_as(&owner, &format!("/o/default/tokens/{id}/revoke"), &[("csrf", &owner.csrf)]);
    assert_eq!(r.status, 303);
    assert_eq!(bearer_json(&w.server, "/api/0/organizations/", &secret).0, 401);
    assert!(w.server.get_as(&owner, "/o/default/settings/").text().contains("token.revoke"));
}

#[test]
fn an_open_live_stream_ends_when_its_member_is_removed() {
    let w = world();
    let member = w.sessions.iter().find(|s| s.0 == Who::Member).unwrap().1.clone().unwrap();
    let mut stream = TcpStream::connect(w.server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(stream, "GET /p/shop/live HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nConnection: close\r\n\r\n", w.server.addr(), member.cookie).unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("event: hello") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the stream opens: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    w.server.cli_ok(&["member", "remove", "--org", "default", &email(Who::Member)]);
    std::thread::sleep(Duration::from_millis(2200));
    let dsn = w.server.cli_json(&["project", "list", "--json"]).as_array().unwrap().iter().find(|p| p["slug"] == "shop").unwrap()["dsn"].as_str().unwrap().to_string();
    w.server.cli_ok(&["capture", "Message", "--dsn", &dsn, "--message", "after the removal"]);
    let mut rest = String::new();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => rest.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) => panic!("the stream did not end after the removal ({e}); it sent {rest:?}"),
        }
    }
    assert!(!rest.contains("event: groups"), "no update reaches a removed member: {rest:?}");
}

#[test]
fn a_new_password_ends_the_other_sessions_and_keeps_this_one() {
    let w = world();
    let here = w.server.login(&email(Who::Admin), PASSWORD).unwrap();
    let elsewhere = w.server.login(&email(Who::Admin), PASSWORD).unwrap();
    let change = |current: &str| {
        w.server.post_form_as(&here, "/settings/password", &[("csrf", &here.csrf), ("current", current), ("password", "a new password"), ("password_again", "a new password")])
    };
    assert_eq!(change("wrong").status, 403, "the current password is asked for");
    let r = change(PASSWORD);
    assert_eq!(r.status, 303, "{}", r.text());
    let renewed = set_cookie(&r, "sentry_session").expect("this browser gets a new session");
    assert_eq!(w.server.request("GET", "/dashboard", &[("Cookie", &renewed)], b"").status, 200);
    for old in [&here, &elsewhere] {
        let (a, _) = answer(&w.server, "GET", "/dashboard", &[("Cookie", old.cookie.as_str())], "");
        assert_eq!(a, Answer::Login, "sessions of the old password are over");
    }
    let again = w.server.login(&email(Who::Admin), "a new password").unwrap();
    let page = w.server.get_as(&again, "/settings/").text();
    assert!(page.contains("<title>Settings · Sentry</title>") && page.matches("Your password").count() == 1, "{page}");
}
