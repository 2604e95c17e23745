//! Requests recorded from real, unmodified clients (sentry-sdk, raven, the Rust `sentry` crate)
//! replayed byte for byte against the real binary: every request must be accepted, and the
//! groups it leaves must be right (kind, title, culprit, counts, tags, durations).

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::Value;

use crate::harness::{Postgres, Project, Response, Server};

/// The key and project id the recordings were made with.
const RECORDED_KEY: &str = "0123456789abcdef0123456789abcdef";

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/fixtures/corpus")
}

/// Every recorded file, as `client/scenario`.
fn all_files() -> Vec<String> {
    let mut out = Vec::new();
    for client in std::fs::read_dir(corpus_dir()).expect("corpus dir") {
        let client = client.unwrap().path();
        for f in std::fs::read_dir(&client).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "jsonl") {
                out.push(format!(
                    "{}/{}",
                    client.file_name().unwrap().to_string_lossy(),
                    f.file_stem().unwrap().to_string_lossy()
                ));
            }
        }
    }
    out.sort();
    out
}

/// Replays one recorded file into a new project of `server`; returns the project and the
/// responses.
pub(crate) fn replay(server: &Server, file: &str) -> (Project, Vec<Response>) {
    let project = server.create_project(&file.replace(['/', '-'], " "));
    let responses = replay_into(server, &project, file);
    (project, responses)
}

/// Replays one recorded file into `project`. The recorded key and project id are swapped for
/// the project's; everything else is sent as recorded (compression and all).
fn replay_into(server: &Server, project: &Project, file: &str) -> Vec<Response> {
    let text = std::fs::read_to_string(corpus_dir().join(format!("{file}.jsonl"))).expect("corpus file");
    let mut responses = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let req: Value = serde_json::from_str(line).expect("corpus line");
        let path = req["path"].as_str().unwrap().replacen("/api/1/", &format!("/api/{}/", project.id), 1);
        let headers: Vec<(String, String)> = req["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().to_string(), h[1].as_str().unwrap().replace(RECORDED_KEY, &project.key())))
            .filter(|(k, _)| !["host", "content-length", "connection"].contains(&k.to_ascii_lowercase().as_str()))
            .collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let body = base64::engine::general_purpose::STANDARD.decode(req["body_b64"].as_str().unwrap()).unwrap();
        responses.push(server.request(req["method"].as_str().unwrap(), &path, &headers, &body));
    }
    responses
}

/// What one group must look like.
#[derive(Default)]
struct Expect {
    kind: &'static str,
    title: &'static str,
    count: u64,
    level: &'static str,
    culprit: Option<&'static str>,
    logger: Option<&'static str>,
    tags: &'static [(&'static str, &'static str)],
    /// (count, average ms, tolerance ms)
    time_spent: Option<(u64, f64, f64)>,
}

fn expect(kind: &'static str, title: &'static str, count: u64, level: &'static str) -> Expect {
    Expect { kind, title, count, level, ..Expect::default() }
}

impl Expect {
    fn culprit(mut self, c: &'static str) -> Self {
        self.culprit = Some(c);
        self
    }
    fn logger(mut self, l: &'static str) -> Self {
        self.logger = Some(l);
        self
    }
    fn tags(mut self, t: &'static [(&'static str, &'static str)]) -> Self {
        self.tags = t;
        self
    }
    fn time_spent(mut self, count: u64, avg: f64, tolerance: f64) -> Self {
        self.time_spent = Some((count, avg, tolerance));
        self
    }

    fn check(&self, file: &str, groups: &[Value]) {
        let found: Vec<&Value> =
            groups.iter().filter(|g| g["kind"] == self.kind && g["title"].as_str() == Some(self.title)).collect();
        let titles: Vec<String> = groups.iter().map(|g| format!("{} {}", g["kind"], g["title"])).collect();
        assert_eq!(found.len(), 1, "{file}: one {} group titled {:?}; groups: {titles:#?}", self.kind, self.title);
        let g = found[0];
        let what = format!("{file}: group {:?}", self.title);
        assert_eq!(g["count"], self.count, "{what}: count");
        assert_eq!(g["level"], self.level, "{what}: level");
        assert_eq!(g["status"], "unresolved", "{what}: status");
        if let Some(c) = self.culprit {
            assert!(g["culprit"].as_str().unwrap().contains(c), "{what}: culprit {} lacks {c:?}", g["culprit"]);
        }
        if let Some(l) = self.logger {
            assert_eq!(g["logger"], l, "{what}: logger");
        }
        for (k, v) in self.tags {
            let values = g["tags"][k].as_array().unwrap_or_else(|| panic!("{what}: no tag {k}: {}", g["tags"]));
            assert!(values.iter().any(|t| t["value"] == *v), "{what}: tag {k} has no value {v:?}: {values:?}");
        }
        match self.time_spent {
            Some((count, avg, tol)) => {
                let ts = &g["time_spent"];
                assert_eq!(ts["count"], count, "{what}: time_spent count: {ts}");
                let got = ts["avg_ms"].as_f64().unwrap();
                assert!((got - avg).abs() <= tol, "{what}: average duration {got} ms, expected {avg} ± {tol}");
                assert!(ts["p95_ms"].as_f64().unwrap() <= ts["max_ms"].as_f64().unwrap() + 1e-9, "{what}: p95 ≤ max");
            }
            None => assert!(g["time_spent"].is_null(), "{what}: no durations expected, got {}", g["time_spent"]),
        }
    }
}

/// Replays `file` into its own project and checks the groups it leaves: exactly `expected`.
fn check_file(server: &Server, file: &str, expected: &[Expect]) {
    let (project, responses) = replay(server, file);
    for (i, r) in responses.iter().enumerate() {
        assert_eq!(r.status, 200, "{file} request {i}: {}", r.text());
        let body = r.json();
        if let Some(id) = body.get("id") {
            let id = id.as_str().unwrap();
            assert!(id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()), "{file}: id {id}");
        }
    }
    let groups = server.groups(&project.slug);
    let titles: Vec<String> = groups.iter().map(|g| format!("{} {}", g["kind"], g["title"])).collect();
    assert_eq!(groups.len(), expected.len(), "{file}: groups {titles:#?}");
    for e in expected {
        e.check(file, &groups);
    }
}

const SHOP: &[(&str, &str)] = &[("environment", "production"), ("release", "shop@1.2.3")];

#[test]
fn every_recorded_request_is_accepted_and_replays_are_idempotent() {
    let server = Server::start();
    for file in all_files() {
        let (project, first) = replay(&server, &file);
        assert!(first.iter().all(|r| r.status == 200), "{file}: {:?}", first.iter().map(|r| (r.status, r.text())).collect::<Vec<_>>());
        let before = server.groups(&project.slug);
        // The same requests again: the event ids are the same, so nothing is counted twice.
        let again = replay_into(&server, &project, &file);
        assert!(again.iter().all(|r| r.status == 200), "{file}: replay refused");
        let after = server.groups(&project.slug);
        let counts = |gs: &[Value]| gs.iter().map(|g| (g["id"].clone(), g["count"].clone())).collect::<Vec<_>>();
        assert_eq!(counts(&before), counts(&after), "{file}: a replay changed the counts");
    }
}

/// The recorded corpus into a node on SQLite and a node on PostgreSQL: the same groups, with
/// the same counts, titles, levels, culprits, tags and events, and the same keys.
#[test]
fn the_corpus_gives_the_same_groups_on_postgresql_as_on_sqlite() {
    let pg = Postgres::start();
    let sqlite = Server::start();
    let postgres = Server::start_with_config(&format!("[store]\nbackend = \"postgres\"\npostgres_url = \"{}\"\n", pg.url()));
    let shape = |server: &Server, project: &Project| {
        let mut groups: Vec<Value> = server
            .groups(&project.slug)
            .into_iter()
            .map(|g| {
                let events = server.events(g["id"].as_u64().unwrap()).len();
                serde_json::json!([g["kind"], g["title"], g["count"], g["level"], g["culprit"], g["status"], events])
            })
            .collect();
        groups.sort_by_key(|g| g.to_string());
        groups
    };
    let mut slugs = Vec::new();
    for file in all_files() {
        let (a, ra) = replay(&sqlite, &file);
        let (b, rb) = replay(&postgres, &file);
        slugs.push(b.slug.clone());
        let statuses = |r: &[Response]| r.iter().map(|r| r.status).collect::<Vec<_>>();
        assert_eq!(statuses(&ra), statuses(&rb), "{file}: answers differ");
        assert_eq!(shape(&sqlite, &a), shape(&postgres, &b), "{file}: groups differ");
    }
    // The store really is PostgreSQL's: the projects and events are in its tables.
    let in_pg = pg.psql("SELECT slug FROM projects");
    assert!(slugs.iter().all(|s| in_pg.lines().any(|l| l == s)), "projects missing from PostgreSQL: {in_pg}");
    let events: usize = pg.psql("SELECT count(*) FROM events").trim().parse().unwrap();
    assert!(events > 0);
    assert!(!postgres.data_dir().join("sentry.db").exists(), "a node on PostgreSQL made a SQLite file");
}

/// `sentry migrate-store` copies a SQLite installation into PostgreSQL: then a node on
/// PostgreSQL shows the same projects, keys, groups, counts and events, its users log in with
/// their passwords, and new events are stored beside the copied ones. Run twice, it copies
/// nothing twice.
#[test]
fn migrate_store_copies_an_installation_into_postgresql() {
    let pg = Postgres::start();
    let mut sqlite = Server::start();
    assert!(sqlite.create_user("ada@example.com", "correct horse battery", false).status.success());
    let shape = |server: &Server, slug: &str| {
        let mut groups: Vec<String> = server
            .groups(slug)
            .into_iter()
            .map(|g| {
                let events: Vec<Value> = server.events(g["id"].as_u64().unwrap());
                let ids: Vec<&str> = events.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
                serde_json::json!([g["id"], g["title"], g["count"], g["level"], g["culprit"], ids]).to_string()
            })
            .collect();
        groups.sort();
        groups
    };
    let files: Vec<String> = all_files().into_iter().step_by(4).collect();
    let mut before = Vec::new();
    for file in &files {
        let (project, _) = replay(&sqlite, file);
        before.push((project.slug.clone(), shape(&sqlite, &project.slug)));
    }
    let projects_before = sqlite.cli_json(&["project", "list", "--json"]);
    assert_eq!(sqlite.terminate().code(), Some(0));

    let out = sqlite.cli(&["migrate-store", "--to", &pg.url()]);
    assert!(out.status.success(), "{}", crate::harness::show_output(&out));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(table.contains("events") && table.contains("groups"), "{table}");
    // Again: it goes on where it stopped, which is the end; nothing is doubled.
    let again = sqlite.cli(&["migrate-store", "--to", &pg.url()]);
    assert!(again.status.success(), "{}", crate::harness::show_output(&again));

    let node = Server::start_with_config(&format!("[store]\nbackend = \"postgres\"\npostgres_url = \"{}\"\n", pg.url()));
    // The same projects and keys (the DSNs name the node they were listed on).
    let listed = node.cli_json(&["project", "list", "--json"]).to_string();
    assert_eq!(listed, projects_before.to_string().replace(&sqlite.addr().to_string(), &node.addr().to_string()), "projects and their keys");
    for (slug, groups) in &before {
        assert_eq!(&shape(&node, slug), groups, "{slug}");
    }
    assert!(node.login("ada@example.com", "correct horse battery").is_ok(), "a copied user logs in");
    // A new event through a copied key, in a copied group: stored, with an id of its own.
    let project: Value = projects_before.as_array().unwrap().iter().find(|p| p["slug"] == before[0].0.as_str()).unwrap().clone();
    let key = project["dsn"].as_str().unwrap().split("://").nth(1).unwrap().split('@').next().unwrap().to_string();
    let auth = format!("Sentry sentry_key={key}, sentry_version=7");
    let r = node.post(
        &format!("/api/{}/store/", project["id"]),
        &[("X-Sentry-Auth", auth.as_str()), ("Content-Type", "application/json")],
        br#"{"message":"after the move","level":"error"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let groups = node.groups(&before[0].0);
    assert!(groups.iter().any(|g| g["title"] == "after the move"), "{groups:?}");
}

#[test]
fn python_raven() {
    let s = Server::start();
    check_file(&s, "python-raven/capture-query", &[expect("query", "SELECT * FROM shop_order WHERE customer = ? AND total_cents > ?", 1, "error")
        .culprit("postgresql")
        .tags(SHOP)
        .time_spent(1, 812.0, 0.001)]);
    check_file(&s, "python-raven/capture-message", &[
        expect("message", "hello world", 1, "warning").tags(&[("server", "web-1.example.com")]),
        expect("message", "Order 'A-17' failed for 'alice'", 1, "error").logger("shop.orders"),
    ]);
    check_file(&s, "python-raven/capture-exception", &[
        expect("exception", "RuntimeError: config '/etc/shop/missing.conf' unavailable", 1, "error").culprit("load_config").tags(SHOP),
        expect("exception", "IndexError: list index out of range", 1, "error").culprit("process_order"),
    ]);
    check_file(&s, "python-raven/django-unhandled-exception", &[expect("exception", "KeyError: 'SKU-999'", 1, "error")
        .culprit("djraven.views in checkout")
        .tags(&[("environment", "production"), ("server", "web-1"), ("user", "1")])]);
    check_file(&s, "python-raven/logbook-handler", &[
        expect("exception", "KeyError: 'missing'", 1, "error").logger("billing.logbook"),
        expect("message", "Failed to charge order A-17 for alice", 1, "error").logger("billing.logbook"),
    ]);
    check_file(&s, "python-raven/logging-handler", &[
        expect("message", "with stack and tags", 1, "error").logger("billing.worker").tags(&[("queue", "billing")]),
        expect("exception", "ZeroDivisionError: division by zero", 1, "error").culprit("logging_handler"),
        expect("message", "Failed to charge order A-17 for customer alice@example.com", 1, "error").logger("billing.worker"),
    ]);
}

#[test]
fn python_sentry_sdk_errors_and_messages() {
    let s = Server::start();
    for variant in ["", "--brotli", "--uncompressed"] {
        check_file(&s, &format!("python-sentry-sdk/django-unhandled-exception{variant}"), &[expect("exception", "KeyError: 'SKU-999'", 1, "error")
            .culprit("djshop.shop.views in checkout")
            .tags(&[("transaction", "/orders/{order_id}/checkout/"), ("server", "web-1"), ("environment", "production"), ("user", "1")])]);
    }
    for variant in ["", "--uncompressed"] {
        check_file(&s, &format!("python-sentry-sdk/logging{variant}"), &[
            expect("message", "Failed to charge order A-17 for customer alice@example.com", 1, "error").logger("root").tags(SHOP),
            expect("exception", "ZeroDivisionError: division by zero", 1, "error").logger("billing.worker"),
            expect("message", "with extra", 1, "error").logger("billing.worker"),
        ]);
        check_file(&s, &format!("python-sentry-sdk/chained-exception{variant}"), &[
            expect("exception", "RuntimeError: config '/etc/shop/missing.conf' unavailable", 1, "error").culprit("load_config"),
            expect("exception", "KeyError: 'fallback'", 1, "error"),
            expect("exception", "ExceptionGroup: batch failed", 1, "error"),
        ]);
        check_file(&s, &format!("python-sentry-sdk/client-report{variant}"), &[expect("message", "kept after drops", 1, "info")]);
        check_file(&s, &format!("python-sentry-sdk/attachment{variant}"), &[expect("message", "event with two attachments", 1, "error")]);
        check_file(&s, &format!("python-sentry-sdk/check-in{variant}"), &[]);
    }
    check_file(&s, "python-sentry-sdk/capture-message", &[expect("message", "hello world", 1, "warning")
        .tags(&[("customer_tier", "gold"), ("server", "web-1.example.com"), ("logger", "shop.checkout"), ("user", "42")])]);
}

#[test]
fn python_sentry_sdk_transactions_and_queries() {
    let s = Server::start();
    for variant in ["", "--brotli", "--uncompressed"] {
        let file = format!("python-sentry-sdk/django-traced-sql{variant}");
        let (project, responses) = replay(&s, &file);
        assert!(responses.iter().all(|r| r.status == 200), "{file}");
        let groups = s.groups(&project.slug);
        let of = |kind: &str| groups.iter().filter(|g| g["kind"] == kind).collect::<Vec<_>>();
        let tx: Vec<&str> = of("transaction").iter().map(|g| g["title"].as_str().unwrap()).collect();
        assert_eq!(tx.len(), 3, "{file}: {tx:?}");
        for name in ["/login/", "/orders/", "/orders/{order_id}/checkout/"] {
            assert!(tx.contains(&name), "{file}: no transaction {name}: {tx:?}");
        }
        for e in [
            expect("query", "SELECT pg_sleep(?)", 1, "info").culprit("postgresql").tags(&[("engine", "postgresql"), ("transaction", "/orders/")]).time_spent(1, 50.0, 5.0),
            expect("query", "INSERT INTO shop_order (customer, total_cents, created) VALUES (?) RETURNING shop_order.id", 2, "info").culprit("postgresql"),
            expect("query", "UPDATE auth_user SET last_login = ? WHERE auth_user.id = ?", 1, "info"),
        ] {
            let mut e = e;
            if e.time_spent.is_none() {
                // Fast queries: check only that every one has a duration.
                let g = groups.iter().find(|g| g["title"] == e.title).unwrap_or_else(|| panic!("{file}: {}", e.title));
                assert_eq!(g["time_spent"]["count"], e.count, "{file}: {}", e.title);
                e.time_spent = Some((e.count, g["time_spent"]["avg_ms"].as_f64().unwrap(), 0.0));
            }
            e.check(&file, &groups);
        }
        // Every query group is a normalised statement: no literal survives.
        for q in of("query") {
            let title = q["title"].as_str().unwrap();
            assert!(!title.contains("%s") && !title.contains('\''), "{file}: not normalised: {title}");
            assert_eq!(q["time_spent"]["count"], q["count"], "{file}: every query has its duration");
        }
        assert!(of("exception").iter().any(|g| g["title"] == "KeyError: 'SKU-404'"), "{file}");
    }
    check_file(&s, "python-sentry-sdk/transaction-manual", &[
        expect("transaction", "sync-inventory", 1, "info").tags(&[("warehouse", "berlin")]).time_spent(1, 33.2, 1.0),
        expect("query", "UPDATE stock SET qty = qty - ?", 1, "info").culprit("sync-inventory").time_spent(1, 11.7, 1.0),
    ]);
    // Logs and metrics are accepted and counted, not grouped.
    check_file(&s, "python-sentry-sdk/logs-and-metrics", &[expect("transaction", "nightly-report", 1, "info").time_spent(1, 1.34, 0.1)]);
}

#[test]
fn rust_sentry() {
    let s = Server::start();
    check_file(&s, "rust-sentry/panic", &[expect("exception", "panic: index out of bounds: the len is 2 but the index is 3", 1, "fatal")
        .culprit("process_order")
        .tags(&[("component", "rust-worker")])]);
    check_file(&s, "rust-sentry/session", &[expect("exception", "panic: index out of bounds: the len is 2 but the index is 3", 1, "fatal")]);
    check_file(&s, "rust-sentry/capture-error", &[
        expect("exception", "ConfigError: config /etc/shop/missing.toml unavailable", 1, "error"),
        expect("message", "hello world", 1, "warning").tags(SHOP),
    ]);
    check_file(&s, "rust-sentry/anyhow", &[expect("exception", "Error: failed to load listener settings", 1, "error")]);
    check_file(&s, "rust-sentry/log", &[expect("message", "Failed to charge order A-17 for customer alice@example.com", 1, "error").logger("billing")]);
    check_file(&s, "rust-sentry/tracing", &[
        expect("transaction", "process-batch", 1, "info").time_spent(1, 17.8, 0.5),
        expect("message", "Failed to charge order", 1, "error").logger("rsclient"),
    ]);
    check_file(&s, "rust-sentry/transaction", &[
        expect("transaction", "GET /orders", 1, "info").tags(&[("warehouse", "berlin")]).time_spent(1, 25.3, 0.5),
        expect("query", "SELECT * FROM orders WHERE customer = ?", 1, "info").culprit("postgresql").time_spent(1, 25.27, 0.5),
    ]);
}

/// Secrets the recorded clients sent unfiltered: raven's Django session cookie (in the cookies
/// and in the `Cookie` header) and raven's DSN secret (in a stack frame's locals).
const RECORDED_SECRETS: &[&str] = &["1i9rtal05i2725gfvlx6cbsah4ma3t1w", "fedcba9876543210fedcba9876543210"];

#[test]
fn no_recorded_secret_survives_in_what_is_stored() {
    let server = Server::start();
    let mut stored = String::new();
    let mut projects = std::collections::HashMap::new();
    for file in all_files() {
        let (project, responses) = replay(&server, &file);
        projects.insert(file.clone(), project.clone());
        assert!(responses.iter().all(|r| r.status == 200), "{file}");
        for group in server.groups(&project.slug) {
            stored.push_str(&group.to_string());
            for event in server.events_of(&group) {
                stored.push_str(&event.to_string());
            }
        }
    }
    for secret in RECORDED_SECRETS {
        assert!(!stored.contains(secret), "{secret} was stored");
    }
    // What was scrubbed is said in the event, and the rest is kept.
    let project = &projects["python-raven/django-unhandled-exception"];
    let group = &server.groups(&project.slug)[0];
    let payload = &server.events_of(group)[0]["payload"];
    assert_eq!(payload["request"]["cookies"], "[Filtered]");
    assert_eq!(payload["request"]["headers"]["Cookie"], "[Filtered]");
    assert_eq!(payload["request"]["headers"]["X-Request-Id"], "req-7f3a");
    assert_eq!(payload["_meta"]["request"]["cookies"][""]["rem"][0][0], "@password:filter");
    let page = format!("/p/{}/issues/{}/events/{}/", project.slug, group["id"], server.events_of(group)[0]["event_id"].as_str().unwrap());
    let html = server.get_as(&server.admin_session(), &page).text();
    let removed = &html[html.find("Removed before storing").expect("the event page says what was removed")..];
    assert!(removed.contains("<code>request.cookies</code></th><td>scrubbed by the server: a secret field name"), "{removed}");
    let project = &projects["python-raven/capture-message"];
    let text = server.events_of(&server.groups(&project.slug)[0])[0]["payload"].to_string();
    assert!(text.contains("0123456789abcdef0123456789abcdef:[Filtered]@127.0.0.1"), "{text}");
}

#[test]
fn recorded_client_reports_are_summed_and_shown_in_the_projects_settings() {
    let server = Server::start();
    for (name, file) in [("reports gzip", "python-sentry-sdk/client-report"), ("reports plain", "python-sentry-sdk/client-report--uncompressed")] {
        let project = server.create_project(name);
        replay_into(&server, &project, file);
        let s = server.admin_session();
        let html = server.get_as(&s, &format!("/settings/projects/{}/", project.slug)).text();
        // The recording: the SDK's before_send dropped 3 errors.
        let table = &html[html.find("id=\"client-reports\"").expect("the client reports table")..];
        assert!(table.contains("<td>before send</td><td>error</td><td>3</td>"), "{file}: {table}");
    }
}
