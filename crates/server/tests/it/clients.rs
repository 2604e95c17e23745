//! Real, unmodified clients against the real binary: Python `sentry-sdk` (Django, logging, WSGI,
//! psycopg2 spans on PostgreSQL, gzip / br / uncompressed bodies), Python `raven` 6.10 (store
//! endpoint, handlers, middleware, `captureQuery` with `time_spent`) and the Rust `sentry` crate.
//!
//! Each test starts its own server, runs one scenario from `tests/clients/python/*.py` or the
//! `rust-client` binary with the project's DSN, and checks the groups and events the server
//! built. The scenarios flush before they exit, and the server acknowledges an event only once it
//! is stored and grouped, so the groups are there as soon as the client process has exited.
use serde_json::Value;

use crate::harness::{
    CLIENT_TIMEOUT, Postgres, Project, Server, assert_tag, assert_tag_counts, clean_command,
    client_script, count, facts, find_group, find_group_titled, groups_of_kind, python,
    python_brotli, run_ok, run_with_timeout, rust_client, summary, tag_values,
};

const RELEASE: &str = "shop@1.2.3";
const ENVIRONMENT: &str = "production";
const SERVER_NAME: &str = "web-1";

fn setup() -> (Server, Project) {
    let server = Server::start();
    let project = server.create_project("shop");
    (server, project)
}

/// `python SCRIPT SCENARIO DSN` with a clean environment plus `env`; returns the FACTS.
fn run_python(
    python: &std::path::Path,
    script: &str,
    scenario: &str,
    dsn: &str,
    env: &[(&str, String)],
) -> Value {
    let mut cmd = clean_command(python);
    cmd.arg(client_script(script)).args([scenario, dsn]);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    facts(&run_ok(&mut cmd))
}

fn sdk(project: &Project, scenario: &str) -> Value {
    run_python(&python(), "sdk_scenarios.py", scenario, &project.dsn, &[])
}

fn raven(dsn: &str, scenario: &str) -> Value {
    run_python(&python(), "raven_scenarios.py", scenario, dsn, &[])
}

fn rust(project: &Project, scenario: &str) {
    let mut cmd = clean_command(rust_client());
    cmd.arg(scenario)
        .env("SENTRY_DSN", &project.dsn)
        .env("RUST_BACKTRACE", "0");
    run_ok(&mut cmd);
}

/// The release / environment / server_name every scenario reports, as derived tags.
#[track_caller]
fn assert_common_tags(group: &Value) {
    assert_tag(group, "release", RELEASE);
    assert_tag(group, "environment", ENVIRONMENT);
    assert_tag(group, "server", SERVER_NAME);
}

#[track_caller]
fn assert_level(group: &Value, level: &str) {
    assert_eq!(group["level"], level, "level of {:?}", group["title"]);
    assert_tag(group, "level", level);
}

#[track_caller]
fn assert_culprit(group: &Value) {
    let culprit = group["culprit"].as_str().unwrap_or_default();
    assert!(
        !culprit.trim().is_empty(),
        "group {:?} has no culprit: {group}",
        group["title"]
    );
}

#[track_caller]
fn assert_kinds(groups: &[Value], expected: &[(&str, usize)]) {
    for (kind, n) in expected {
        assert_eq!(
            groups_of_kind(groups, kind).len(),
            *n,
            "number of {kind} groups:\n{}",
            summary(groups)
        );
    }
    let total: usize = expected.iter().map(|(_, n)| n).sum();
    assert_eq!(groups.len(), total, "groups:\n{}", summary(groups));
}

/// `time_spent` stats of a group: (count, avg_ms, p95_ms, max_ms).
#[track_caller]
fn time_spent(group: &Value) -> (u64, f64, f64, f64) {
    let ts = &group["time_spent"];
    let f = |k: &str| {
        ts[k]
            .as_f64()
            .unwrap_or_else(|| panic!("group {:?}: time_spent.{k} missing: {ts}", group["title"]))
    };
    (
        ts["count"]
            .as_u64()
            .unwrap_or_else(|| panic!("group {:?}: no time_spent.count: {group}", group["title"])),
        f("avg_ms"),
        f("p95_ms"),
        f("max_ms"),
    )
}

/// A string from a scenario's FACTS line.
fn str_fact<'a>(facts: &'a Value, key: &str) -> &'a str {
    facts[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key:?} in FACTS {facts}"))
}

// ---------------------------------------------------------------------------------------------
// Python sentry-sdk
// ---------------------------------------------------------------------------------------------

#[test]
fn sdk_django_unhandled_exception() {
    let (server, project) = setup();
    let facts = sdk(&project, "django-unhandled");
    let groups = server.groups(&project.slug);
    // the `sessions` aggregate that follows the event is accepted but makes no group
    assert_kinds(&groups, &[("exception", 1)]);
    let g = find_group(&groups, "exception", "KeyError");
    assert!(
        g["title"].as_str().unwrap().contains("SKU-999"),
        "title {:?}",
        g["title"]
    );
    assert_eq!(count(g), 1);
    assert_culprit(g);
    assert_level(g, "error");
    assert_common_tags(g);
    assert_tag(g, "url", str_fact(&facts, "url"));
    assert_tag(g, "transaction", "/orders/{order_id}/checkout/");
    assert!(
        !tag_values(g, "user").is_empty(),
        "no user tag (the request was logged in as alice): {}",
        g["tags"]
    );

    let events = server.events_of(g);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    let id = e["event_id"].as_str().expect("event_id");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "event_id {id:?}"
    );
    assert_eq!(e["kind"], "exception");
    assert_eq!(e["payload"]["request"]["method"], "POST");
    assert_eq!(e["payload"]["exception"]["values"][0]["type"], "KeyError");
    assert_eq!(
        e["payload"]["exception"]["values"][0]["mechanism"]["type"],
        "django"
    );
}

#[test]
fn sdk_django_traced_sql_on_postgres() {
    let pg = Postgres::start();
    let (server, project) = setup();
    let mut env = pg.env();
    env.push(("SHOP_DB", "postgres".to_string()));
    let facts = run_python(
        &python(),
        "sdk_scenarios.py",
        "django-traced-sql",
        &project.dsn,
        &env,
    );
    let groups = server.groups(&project.slug);

    // one transaction group per route, each with its duration
    let mut tx_titles: Vec<&str> = groups_of_kind(&groups, "transaction")
        .iter()
        .map(|g| g["title"].as_str().unwrap())
        .collect();
    tx_titles.sort();
    assert_eq!(
        tx_titles,
        ["/login/", "/orders/", "/orders/{order_id}/checkout/"],
        "groups:\n{}",
        summary(&groups)
    );
    for g in groups_of_kind(&groups, "transaction") {
        assert_eq!(count(g), 1, "{:?}", g["title"]);
        let (n, avg, _, max) = time_spent(g);
        assert_eq!(n, 1);
        assert!(
            avg > 0.0 && max >= avg,
            "{:?}: {}",
            g["title"],
            g["time_spent"]
        );
        assert_common_tags(g);
    }
    // /orders/ ran `SELECT pg_sleep(0.05)`
    let orders = find_group_titled(&groups, "transaction", "/orders/");
    assert!(
        time_spent(orders).1 >= 45.0,
        "/orders/ took {}",
        orders["time_spent"]
    );

    // the failing checkout
    let err = find_group(&groups, "exception", "KeyError");
    assert!(err["title"].as_str().unwrap().contains("SKU-404"));
    assert_tag(err, "url", str_fact(&facts, "url"));

    // every db span became a query observation: normalised SQL, engine postgresql
    let queries = groups_of_kind(&groups, "query");
    assert!(queries.len() >= 4, "query groups:\n{}", summary(&groups));
    for q in &queries {
        let title = q["title"].as_str().unwrap();
        assert!(
            !title.contains("%s") && !title.contains('"'),
            "not normalised: {title:?}"
        );
        let culprit = q["culprit"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            culprit.contains("postgresql"),
            "culprit of {title:?} should name the engine: {culprit:?}"
        );
        let (n, _, _, _) = time_spent(q);
        assert_eq!(n, count(q), "{title:?}: one duration per observation");
    }
    // raw SQL from the view: 'select customer, total_cents from "shop_order" where customer = %s and total_cents > 100 order by id'
    assert!(str_fact(&facts, "raw_sql").starts_with("select customer"));
    let raw = find_group(&groups, "query", "FROM shop_order WHERE customer = ?");
    assert_eq!(
        raw["title"],
        "SELECT customer, total_cents FROM shop_order WHERE customer = ? AND total_cents > ? ORDER BY id"
    );
    assert_eq!(count(raw), 1);
    // two INSERTs with the same shape: one group, two observations
    let insert = find_group(&groups, "query", "INSERT INTO shop_order");
    assert_eq!(count(insert), 2, "{insert}");
    assert_eq!(time_spent(insert).0, 2);
    let sleep = find_group(&groups, "query", "pg_sleep");
    assert_eq!(sleep["title"], "SELECT pg_sleep(?)");
    assert!(
        time_spent(sleep).3 >= 45.0,
        "pg_sleep(0.05) took {}",
        sleep["time_spent"]
    );
}

#[test]
fn sdk_logging_integration() {
    let (server, project) = setup();
    sdk(&project, "logging");
    let groups = server.groups(&project.slug);
    // info and warning records are breadcrumbs only
    assert_kinds(&groups, &[("message", 1), ("exception", 1)]);
    let msg = find_group(&groups, "message", "Failed to charge order");
    assert!(
        msg["title"]
            .as_str()
            .unwrap()
            .starts_with("Failed to charge order A-1"),
        "title = formatted message: {:?}",
        msg["title"]
    );
    assert_eq!(
        count(msg),
        2,
        "same format string, different params: one group"
    );
    assert_level(msg, "error");
    assert_eq!(msg["logger"], "root");
    assert_tag_counts(msg, "logger", &[("root", 2)]);
    assert_common_tags(msg);
    let events = server.events_of(msg);
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(
        |e| e["payload"]["logentry"]["message"] == "Failed to charge order %s for customer %s"
    ));

    let exc = find_group(&groups, "exception", "ZeroDivisionError");
    assert_eq!(count(exc), 1);
    assert_eq!(exc["logger"], "billing.worker");
    assert_tag(exc, "logger", "billing.worker");
    assert_culprit(exc);
}

#[test]
fn sdk_wsgi_middleware() {
    let (server, project) = setup();
    let facts = sdk(&project, "wsgi");
    let groups = server.groups(&project.slug);
    // the `app.render` spans are not db spans: no query groups
    assert_kinds(&groups, &[("exception", 1), ("transaction", 1)]);
    let exc = find_group(&groups, "exception", "ValueError");
    assert!(
        exc["title"]
            .as_str()
            .unwrap()
            .contains("boom from plain WSGI app")
    );
    assert_eq!(count(exc), 1);
    assert_culprit(exc);
    assert_tag(exc, "url", str_fact(&facts, "url"));
    assert_common_tags(exc);
    let tx = find_group(&groups, "transaction", "generic WSGI request");
    assert_eq!(count(tx), 2, "the OK and the failing request");
    assert_eq!(time_spent(tx).0, 2);
    assert!(
        time_spent(tx).1 >= 10.0,
        "each request slept 10 ms: {}",
        tx["time_spent"]
    );
}

/// capture_message twice; `encoding` is what the SDK compressed with (checked by the scenario).
fn check_capture_message(server: &Server, project: &Project) {
    let groups = server.groups(&project.slug);
    assert_kinds(&groups, &[("message", 1)]);
    let g = find_group(&groups, "message", "hello world");
    assert_eq!(g["title"], "hello world");
    assert_eq!(count(g), 2);
    assert_level(g, "warning");
    assert_common_tags(g);
    assert_tag_counts(g, "customer_tier", &[("gold", 2)]);
    assert_tag_counts(g, "feature.flag", &[("new-cart", 1)]);
    let users = tag_values(g, "user");
    assert!(
        users
            .iter()
            .any(|(v, n)| (v.contains("42") || v.contains("alice")) && *n == 2),
        "user tag: {users:?}"
    );
}

#[test]
fn sdk_capture_message_gzip() {
    let (server, project) = setup();
    let facts = sdk(&project, "capture-message");
    assert_eq!(str_fact(&facts, "encoding"), "gzip");
    check_capture_message(&server, &project);
}

#[test]
fn sdk_capture_message_uncompressed() {
    let (server, project) = setup();
    let env = [("SDK_COMPRESSION", "off".to_string())];
    let facts = run_python(
        &python(),
        "sdk_scenarios.py",
        "capture-message",
        &project.dsn,
        &env,
    );
    assert_eq!(str_fact(&facts, "encoding"), "identity");
    check_capture_message(&server, &project);
}

#[test]
fn sdk_capture_message_brotli() {
    let (server, project) = setup();
    let facts = run_python(
        &python_brotli(),
        "sdk_scenarios.py",
        "capture-message",
        &project.dsn,
        &[],
    );
    assert_eq!(
        str_fact(&facts, "encoding"),
        "br",
        "the .venv-br venv should have brotli"
    );
    check_capture_message(&server, &project);
}

/// The README's first-error example, verbatim: the SDK's excepthook sends the error at exit.
#[test]
fn sdk_uncaught_exception_readme_example() {
    let (server, project) = setup();
    let mut cmd = clean_command(python());
    cmd.arg("-c").arg(format!(
        "import sentry_sdk; sentry_sdk.init('{}'); 1/0",
        project.dsn
    ));
    let out = run_with_timeout(&mut cmd, CLIENT_TIMEOUT);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        crate::harness::show_output(&out)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("ZeroDivisionError"));

    let groups = server.groups(&project.slug);
    assert_kinds(&groups, &[("exception", 1)]);
    let g = find_group(&groups, "exception", "ZeroDivisionError");
    assert_eq!(g["title"], "ZeroDivisionError: division by zero");
    assert_eq!(count(g), 1);
    assert_level(g, "error");
    let events = server.events_of(g);
    assert_eq!(
        events[0]["payload"]["exception"]["values"][0]["mechanism"]["type"],
        "excepthook"
    );
    assert_eq!(
        events[0]["payload"]["exception"]["values"][0]["mechanism"]["handled"],
        false
    );
}

// ---------------------------------------------------------------------------------------------
// Python raven 6.10 (legacy store endpoint, `level` sent as the integer 40)
// ---------------------------------------------------------------------------------------------

#[test]
fn raven_capture_exception() {
    let (server, project) = setup();
    raven(&project.dsn, "capture-exception");
    let groups = server.groups(&project.slug);
    assert_kinds(&groups, &[("exception", 2)]);

    let idx = find_group(&groups, "exception", "IndexError");
    assert_eq!(idx["title"], "IndexError: list index out of range");
    assert_eq!(count(idx), 1);
    assert_culprit(idx);
    assert_level(idx, "error"); // raven sends `"level": 40`
    assert_common_tags(idx);
    assert_tag(idx, "component", "billing");

    // `raise RuntimeError(...) from FileNotFoundError`: raven lists the cause first
    let chained = find_group(&groups, "exception", "RuntimeError");
    assert!(
        chained["title"]
            .as_str()
            .unwrap()
            .contains("/etc/shop/missing.conf"),
        "{:?}",
        chained["title"]
    );
    assert_tag(chained, "phase", "startup");
    assert_tag(chained, "component", "billing");
    assert_culprit(chained);
}

#[test]
fn raven_capture_message_with_tags_and_legacy_secret() {
    let (server, project) = setup();
    // old raven set-ups have a secret in the DSN; the server accepts it without requiring one
    raven(
        &project.dsn_with_secret("fedcba9876543210fedcba9876543210"),
        "capture-message",
    );
    let groups = server.groups(&project.slug);
    assert_kinds(&groups, &[("message", 2)]);

    let hello = find_group(&groups, "message", "hello world");
    assert_eq!(hello["title"], "hello world");
    assert_level(hello, "warning");
    assert_tag(hello, "customer_tier", "gold");
    assert_common_tags(hello);

    // captureMessage("Order %s failed for %s", params=("A-17", "alice"), data={"logger": ...})
    let order = find_group(&groups, "message", "failed for");
    assert!(
        order["title"].as_str().unwrap().starts_with("Order "),
        "{:?}",
        order["title"]
    );
    assert_eq!(order["logger"], "shop.orders");
    assert_tag(order, "logger", "shop.orders");
    assert_level(order, "error");
}

#[test]
fn raven_capture_query_time_spent() {
    let (server, project) = setup();
    let facts = raven(&project.dsn, "capture-query");
    assert!(str_fact(&facts, "query_sql").contains("%s"));
    let groups = server.groups(&project.slug);
    assert_kinds(&groups, &[("query", 2)]);

    // captureQuery(sql, engine="psycopg2", time_spent=812), then the same SQL with 188
    let q = find_group(&groups, "query", "shop_order");
    assert_eq!(
        q["title"],
        "SELECT * FROM shop_order WHERE customer = ? AND total_cents > ?"
    );
    assert_eq!(count(q), 2);
    let (n, avg, p95, max) = time_spent(q);
    assert_eq!(n, 2);
    assert!(
        (avg - 500.0).abs() < 0.01,
        "avg of 812 and 188: {}",
        q["time_spent"]
    );
    assert!((max - 812.0).abs() < 0.01, "{}", q["time_spent"]);
    assert!(p95 >= avg && p95 <= 812.0 + 0.01, "{}", q["time_spent"]);
    // the engine as sent (psycopg2) or as the database it speaks to
    let culprit = q["culprit"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        culprit.contains("psycopg2") || culprit.contains("postgresql"),
        "culprit should name the engine: {q}"
    );
    assert_tag_counts(q, "db", &[("shop", 2)]);
    assert_common_tags(q);
    let events = server.events_of(q);
    let mut spent: Vec<f64> = events
        .iter()
        .map(|e| e["time_spent"].as_f64().expect("event time_spent"))
        .collect();
    spent.sort_by(f64::total_cmp);
    assert_eq!(spent, [188.0, 812.0]);

    // client.capture('raven.events.Query', query=..., engine='psycopg2', time_spent=36): the seed's API
    let seed = find_group(&groups, "query", "shop_customer");
    assert_eq!(
        seed["title"],
        "SELECT id FROM shop_customer WHERE email = ?"
    );
    assert_eq!(count(seed), 1);
    let (n, avg, _, max) = time_spent(seed);
    assert_eq!((n, avg, max), (1, 36.0, 36.0));
}

#[test]
fn raven_logging_handler() {
    let (server, project) = setup();
    raven(&project.dsn, "logging-handler");
    let groups = server.groups(&project.slug);
    assert_kinds(&groups, &[("message", 1), ("exception", 1)]);
    let msg = find_group(&groups, "message", "Failed to charge order");
    assert_eq!(count(msg), 2);
    assert_eq!(msg["logger"], "billing.worker");
    assert_tag_counts(msg, "logger", &[("billing.worker", 2)]);
    assert_level(msg, "error");
    assert_common_tags(msg);
    let exc = find_group(&groups, "exception", "ZeroDivisionError");
    assert_tag(exc, "logger", "billing.worker");
    assert_culprit(exc);
}

#[test]
fn raven_logbook_handler() {
    let (server, project) = setup();
    raven(&project.dsn, "logbook-handler");
    let groups = server.groups(&project.slug);
    // log.info is below the handler's level: not sent
    assert_kinds(&groups, &[("message", 1), ("exception", 1)]);
    let msg = find_group(&groups, "message", "Failed to charge order");
    assert_eq!(msg["title"], "Failed to charge order A-17 for alice");
    assert_eq!(msg["logger"], "billing.logbook");
    assert_level(msg, "error"); // logbook's raven handler sends the string "error"
    let exc = find_group(&groups, "exception", "KeyError");
    assert!(exc["title"].as_str().unwrap().contains("missing"));
    assert_tag(exc, "logger", "billing.logbook");
}

#[test]
fn raven_wsgi_middleware() {
    let (server, project) = setup();
    let facts = raven(&project.dsn, "wsgi");
    let groups = server.groups(&project.slug);
    // the OK request sends nothing
    assert_kinds(&groups, &[("exception", 1)]);
    let exc = find_group(&groups, "exception", "ValueError");
    assert_eq!(exc["title"], "ValueError: boom from plain WSGI app");
    assert_tag(exc, "url", str_fact(&facts, "url"));
    assert_culprit(exc);
    assert_common_tags(exc);
}

#[test]
fn raven_django_unhandled_exception() {
    let (server, project) = setup();
    let facts = raven(&project.dsn, "django-unhandled");
    let groups = server.groups(&project.slug);
    assert_kinds(&groups, &[("exception", 1)]);
    let exc = find_group(&groups, "exception", "KeyError");
    assert!(exc["title"].as_str().unwrap().contains("SKU-999"));
    assert_tag(exc, "url", str_fact(&facts, "url"));
    assert_culprit(exc);
    assert_level(exc, "error");
    assert_common_tags(exc);
    let events = server.events_of(exc);
    assert_eq!(events[0]["payload"]["request"]["method"], "POST");
}

// ---------------------------------------------------------------------------------------------
// Rust `sentry` crate (ureq transport, no Content-Type, raw UTF-8, float timestamps)
// ---------------------------------------------------------------------------------------------

#[test]
fn rust_panic() {
    let (server, project) = setup();
    rust(&project, "panic");
    let groups = server.groups(&project.slug);
    assert_kinds(&groups, &[("exception", 1)]);
    let g = find_group(&groups, "exception", "index out of bounds");
    assert!(
        g["title"].as_str().unwrap().starts_with("panic"),
        "title {:?}",
        g["title"]
    );
    assert_eq!(count(g), 1);
    assert_level(g, "fatal");
    assert_culprit(g);
    assert_common_tags(g);
    assert_tag(g, "component", "rust-worker");
    let events = server.events_of(g);
    assert_eq!(
        events[0]["payload"]["exception"]["values"][0]["mechanism"]["type"],
        "panic"
    );
}

#[test]
fn rust_capture_error() {
    let (server, project) = setup();
    rust(&project, "capture-error");
    let groups = server.groups(&project.slug);
    assert_kinds(&groups, &[("exception", 1)]);
    let g = find_group(
        &groups,
        "exception",
        "config /etc/shop/missing.toml unavailable",
    );
    assert!(
        g["title"].as_str().unwrap().contains("ConfigError"),
        "title {:?}",
        g["title"]
    );
    assert_level(g, "error");
    assert_common_tags(g);
    let events = server.events_of(g);
    assert_eq!(
        events[0]["payload"]["exception"]["values"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "error and its io::Error source"
    );
}

#[test]
fn rust_message() {
    let (server, project) = setup();
    rust(&project, "message");
    let groups = server.groups(&project.slug);
    assert_kinds(&groups, &[("message", 1)]);
    let g = find_group(&groups, "message", "hello from rust");
    assert_eq!(g["title"], "hello from rust");
    assert_level(g, "warning");
    assert_tag(g, "customer_tier", "gold");
    assert_tag(g, "component", "rust-worker");
    assert_common_tags(g);
}

#[test]
fn rust_log() {
    let (server, project) = setup();
    rust(&project, "log");
    let groups = server.groups(&project.slug);
    // info and warn records are breadcrumbs
    assert_kinds(&groups, &[("message", 1)]);
    let g = find_group(&groups, "message", "Failed to charge order");
    assert_eq!(g["title"], "Failed to charge order A-17 for customer alice");
    assert_eq!(g["logger"], "billing");
    assert_tag(g, "logger", "billing");
    assert_level(g, "error"); // the SDK leaves `level` out: error is the default
    assert_common_tags(g);
}

#[test]
fn rust_tracing() {
    let (server, project) = setup();
    rust(&project, "tracing");
    let groups = server.groups(&project.slug);
    assert_kinds(&groups, &[("message", 1), ("transaction", 1)]);
    let g = find_group(&groups, "message", "Failed to charge order");
    assert_level(g, "error");
    assert_common_tags(g);
    let tx = find_group(&groups, "transaction", "load_batch");
    assert_eq!(tx["title"], "load_batch");
    assert_eq!(time_spent(tx).0, 1);
}

#[test]
fn rust_transaction_with_db_span() {
    let (server, project) = setup();
    rust(&project, "transaction");
    let groups = server.groups(&project.slug);
    // the `serialize` span is not a db span: no group
    assert_kinds(&groups, &[("transaction", 1), ("query", 1)]);
    let tx = find_group(&groups, "transaction", "GET /orders");
    assert_eq!(tx["title"], "GET /orders");
    assert_eq!(count(tx), 1);
    let (n, avg, _, _) = time_spent(tx);
    assert_eq!(n, 1);
    assert!(
        avg >= 35.0,
        "the transaction slept 30 + 5 ms: {}",
        tx["time_spent"]
    );
    assert_tag(tx, "warehouse", "berlin");
    assert_common_tags(tx);

    let q = find_group(&groups, "query", "FROM orders");
    assert_eq!(q["title"], "SELECT * FROM orders WHERE id = ?");
    assert!(
        q["culprit"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("postgresql"),
        "{q}"
    );
    let (n, avg, _, _) = time_spent(q);
    assert_eq!(n, 1);
    assert!(avg >= 30.0, "the db span slept 30 ms: {}", q["time_spent"]);
}
