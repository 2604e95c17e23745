//! Replays HTTP requests recorded from real, unmodified Sentry clients (python `sentry-sdk`
//! 2.75.0, python `raven` 6.10.0, rust `sentry` 0.49.5; see `fixtures/corpus/`) through the
//! protocol crate: auth, Content-Encoding, envelope or store body, normalisation, span queries.
//! Each test asserts concrete facts about what the client sent.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use protocol::event::{Event, EventKind, Level, normalize_item, normalize_slice, span_queries};
use protocol::{Auth, ContentEncoding, Envelope, ItemType, Limits, decode};
use serde_json::Value;

const KEY: &str = "0123456789abcdef0123456789abcdef";

/// One recorded request.
struct Request {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    received_at: f64,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_store(&self) -> bool {
        self.path.ends_with("/store/")
    }

    /// The body with its Content-Encoding undone.
    fn decoded(&self) -> Vec<u8> {
        let limits = Limits::default();
        let enc = ContentEncoding::parse(self.header("Content-Encoding")).unwrap();
        let body = decode::decode(&self.body, enc, limits.max_decompressed_bytes).unwrap();
        if self.is_store() {
            decode::decode_store_body(&body, limits.max_event_bytes).unwrap()
        } else {
            body
        }
    }

    fn envelope(&self) -> Envelope {
        assert!(!self.is_store(), "{} is a store request", self.path);
        Envelope::parse(&self.decoded(), &Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", self.path))
    }

    /// Every event and transaction the request carries, normalised.
    fn events(&self) -> Vec<Event> {
        let limits = Limits::default();
        if self.is_store() {
            return vec![
                normalize_slice(&self.decoded(), &limits, self.received_at, None).unwrap(),
            ];
        }
        let env = self.envelope();
        env.items
            .iter()
            .filter(|i| matches!(i.ty, ItemType::Event | ItemType::Transaction))
            .map(|i| normalize_item(i, &limits, self.received_at, env.event_id()).unwrap())
            .collect()
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

fn load(rel: &str) -> Vec<Request> {
    let path = fixtures().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let rec: Value = serde_json::from_str(line).unwrap();
            let headers = rec["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap().to_string(),
                        h[1].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let body = base64::engine::general_purpose::STANDARD
                .decode(rec["body_b64"].as_str().unwrap())
                .unwrap();
            let received_at = protocol::event::parse_timestamp(&rec["received_at"]).unwrap();
            Request {
                path: rec["path"].as_str().unwrap().to_string(),
                headers,
                body,
                received_at,
            }
        })
        .collect()
}

/// All events of a scenario, in order.
fn events(rel: &str) -> Vec<Event> {
    load(rel).iter().flat_map(Request::events).collect()
}

fn all_files() -> Vec<String> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(fixtures()).unwrap() {
        let dir = dir.unwrap().path();
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "jsonl") {
                out.push(
                    file.strip_prefix(fixtures())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

fn in_app_functions(e: &Event) -> Vec<&str> {
    let frames = &e
        .main_exception()
        .unwrap()
        .stacktrace
        .as_ref()
        .unwrap()
        .frames;
    frames
        .iter()
        .filter(|f| f.in_app == Some(true))
        .filter_map(|f| f.function.as_deref())
        .collect()
}

#[test]
fn every_recorded_request_is_accepted() {
    let files = all_files();
    assert_eq!(files.len(), 37, "{files:?}");
    let (mut requests, mut events) = (0, 0);
    for file in &files {
        for req in load(file) {
            requests += 1;
            let auth = Auth::from_header(req.header("X-Sentry-Auth").unwrap()).unwrap();
            assert_eq!(auth.key, KEY, "{file}");
            assert!(matches!(auth.protocol_version(), Some(6 | 7)), "{file}");
            for e in req.events() {
                events += 1;
                assert!(
                    e.timestamp > 1.7e9 && e.timestamp < 1.9e9,
                    "{file}: {}",
                    e.timestamp
                );
                assert!(e.release.as_deref() == Some("shop@1.2.3"), "{file}");
                assert_eq!(e.tag("environment"), Some("production"), "{file}");
            }
            if !req.is_store() {
                // Envelopes survive a serialize → parse round trip.
                let env = req.envelope();
                let again = Envelope::parse(&env.serialize(), &Limits::default()).unwrap();
                assert_eq!(again.items.len(), env.items.len());
            }
        }
    }
    assert_eq!((requests, events), (77, 59));
}

#[test]
fn envelope_event_ids_match_payloads() {
    for file in all_files()
        .iter()
        .filter(|f| !f.starts_with("python-raven"))
    {
        for req in load(file) {
            let env = req.envelope();
            for item in env
                .items
                .iter()
                .filter(|i| matches!(i.ty, ItemType::Event | ItemType::Transaction))
            {
                let payload: Value = serde_json::from_slice(&item.payload).unwrap();
                let from_payload = protocol::EventId::parse(payload["event_id"].as_str().unwrap());
                assert_eq!(env.event_id(), from_payload, "{file}");
            }
        }
    }
}

#[test]
fn raven_capture_query_is_a_query_with_time_spent() {
    let [e] = events("python-raven/capture-query.jsonl")
        .try_into()
        .unwrap();
    assert_eq!(e.kind, EventKind::Query);
    let q = e.query.as_ref().unwrap();
    assert_eq!(
        q.query,
        "SELECT * FROM shop_order WHERE customer = %s AND total_cents > %s"
    );
    assert_eq!(q.engine.as_deref(), Some("psycopg2"));
    assert_eq!(e.time_spent, Some(812.0));
    assert_eq!(e.level, Level::Error); // raven's integer 40
    assert_eq!(e.event_id.to_string(), "e0bfbc0b5eaf4a1ab2e7759b814eabaa");
    assert_eq!(e.timestamp, 1_795_497_346.0); // "2026-11-24T05:15:46Z", no fraction
    assert_eq!(e.tag("db"), Some("shop"));
    assert_eq!(e.tag("server"), Some("web-1"));
}

#[test]
fn django_unhandled_exception_from_every_client() {
    for file in [
        "python-sentry-sdk/django-unhandled-exception.jsonl",
        "python-sentry-sdk/django-unhandled-exception--uncompressed.jsonl",
        "python-sentry-sdk/django-unhandled-exception--brotli.jsonl",
        "python-raven/django-unhandled-exception.jsonl",
    ] {
        let [e] = events(file).try_into().unwrap();
        assert_eq!(e.kind, EventKind::Exception, "{file}");
        let exc = e.main_exception().unwrap();
        assert_eq!(exc.ty.as_deref(), Some("KeyError"), "{file}");
        assert_eq!(exc.value.as_deref(), Some("'SKU-999'"), "{file}");
        let frames = &exc.stacktrace.as_ref().unwrap().frames;
        assert_eq!(
            frames.last().unwrap().function.as_deref(),
            Some("checkout"),
            "{file}"
        );
        if file.starts_with("python-sentry-sdk") {
            assert_eq!(in_app_functions(&e), ["checkout"], "{file}");
        } else {
            // raven marks frames in-app only for configured `include_paths`: none here.
            assert!(frames.iter().all(|f| f.in_app == Some(false)), "{file}");
        }
        assert_eq!(e.request.as_ref().unwrap().method.as_deref(), Some("POST"));
        let url = e.tag("url").unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with("/orders/42/checkout/"),
            "{file}: {url}"
        );
        assert_eq!(e.tag("user"), Some("1"), "{file}"); // raven sends the id as an integer
        assert_eq!(e.tag("server"), Some("web-1"));
        assert_eq!(e.level, Level::Error);
    }
    let sdk = &events("python-sentry-sdk/django-unhandled-exception.jsonl")[0];
    assert_eq!(
        sdk.transaction.as_deref(),
        Some("/orders/{order_id}/checkout/")
    );
    let mechanism = sdk.main_exception().unwrap().mechanism.as_ref().unwrap();
    assert_eq!(
        (mechanism.ty.as_deref(), mechanism.handled),
        (Some("django"), Some(false))
    );
    // raven's Django 2+ transaction name bug is kept as sent.
    let raven = &events("python-raven/django-unhandled-exception.jsonl")[0];
    assert_eq!(
        raven.transaction.as_deref(),
        Some("/orders/{order_id}/checkout/Z")
    );
}

#[test]
fn logging_gives_messages_with_templates() {
    let sdk = events("python-sentry-sdk/logging.jsonl");
    assert_eq!(sdk.len(), 3);
    let m = sdk[0].message.as_ref().unwrap();
    assert_eq!(sdk[0].kind, EventKind::Message);
    assert_eq!(
        m.message.as_deref(),
        Some("Failed to charge order %s for customer %s")
    );
    assert_eq!(
        m.formatted,
        "Failed to charge order A-17 for customer alice@example.com"
    );
    assert_eq!(m.params.len(), 2);
    assert_eq!(sdk[0].logger.as_deref(), Some("root"));
    assert_eq!(sdk[0].tag("logger"), Some("root"));
    // logger.exception: an exception that also carries its log message.
    assert_eq!(sdk[1].kind, EventKind::Exception);
    assert_eq!(
        sdk[1].main_exception().unwrap().ty.as_deref(),
        Some("ZeroDivisionError")
    );
    assert_eq!(
        sdk[1].message.as_ref().unwrap().message.as_deref(),
        Some("Payment gateway crashed for %s")
    );

    let raven = events("python-raven/logging-handler.jsonl");
    assert_eq!(raven[0].kind, EventKind::Message);
    assert_eq!(
        raven[0].message.as_ref().unwrap().message.as_deref(),
        Some("Failed to charge order %s for customer %s")
    );
    assert_eq!(raven[0].logger.as_deref(), Some("billing.worker"));
    assert_eq!(raven[1].kind, EventKind::Exception);
    assert!(raven[2].stacktrace.is_some()); // extra={"stack": True}
    assert_eq!(raven[2].tag("queue"), Some("billing"));

    let logbook = events("python-raven/logbook-handler.jsonl");
    assert_eq!(
        logbook[0].message.as_ref().unwrap().message.as_deref(),
        Some("Failed to charge order {} for {}")
    );
    assert_eq!(
        (logbook[1].kind.clone(), logbook[1].level),
        (EventKind::Exception, Level::Error)
    );
}

#[test]
fn rust_panic_is_fatal_with_type_panic() {
    for file in ["rust-sentry/panic.jsonl", "rust-sentry/session.jsonl"] {
        let [e] = events(file).try_into().unwrap();
        assert_eq!(
            (e.kind.clone(), e.level),
            (EventKind::Exception, Level::Fatal),
            "{file}"
        );
        let exc = e.main_exception().unwrap();
        assert_eq!(exc.ty.as_deref(), Some("panic"));
        assert_eq!(
            exc.value.as_deref(),
            Some("index out of bounds: the len is 2 but the index is 3")
        );
        assert_eq!(exc.mechanism.as_ref().unwrap().handled, Some(false));
        assert_eq!(e.platform, "native");
        assert!(
            e.tag("os").unwrap().starts_with("Linux "),
            "{:?}",
            e.tag("os")
        );
        assert_eq!(e.tag("user"), Some("42"));
    }
    // The session rides in the crash event's envelope.
    let env = load("rust-sentry/session.jsonl")[0].envelope();
    assert_eq!(
        env.items.iter().map(|i| i.ty.as_str()).collect::<Vec<_>>(),
        ["event", "session"]
    );
}

#[test]
fn traced_sql_gives_db_span_queries() {
    for file in [
        "python-sentry-sdk/django-traced-sql.jsonl",
        "python-sentry-sdk/django-traced-sql--uncompressed.jsonl",
        "python-sentry-sdk/django-traced-sql--brotli.jsonl",
    ] {
        let all = events(file);
        let kinds: Vec<_> = all.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["transaction", "transaction", "exception", "transaction"],
            "{file}"
        );
        let orders = all
            .iter()
            .find(|e| e.transaction.as_deref() == Some("/orders/"))
            .unwrap();
        assert!(orders.time_spent.unwrap() > 50.0, "{:?}", orders.time_spent);
        let queries = span_queries(orders);
        let sleep = queries
            .iter()
            .find(|q| q.query.as_ref().unwrap().query == "SELECT pg_sleep(0.05)")
            .unwrap_or_else(|| panic!("{file}: no pg_sleep query"));
        let ms = sleep.time_spent.unwrap();
        assert!((50.0..60.0).contains(&ms), "{file}: pg_sleep took {ms} ms");
        assert_eq!(
            sleep.query.as_ref().unwrap().engine.as_deref(),
            Some("postgresql")
        );
        assert_eq!(
            (sleep.tag("level"), sleep.tag("engine")),
            (Some("info"), Some("postgresql"))
        );
        assert_eq!(sleep.tag("transaction"), Some("/orders/"));
        assert!(
            queries
                .iter()
                .all(|q| q.kind == EventKind::Query && q.level == Level::Info)
        );
        let mut ids: Vec<_> = queries.iter().map(|q| q.event_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), queries.len());
        // Non-db spans (event.django, http) are not queries.
        assert!(orders.spans.len() > queries.len());
    }
}

#[test]
fn rust_transaction_without_type_field() {
    let [tx] = events("rust-sentry/transaction.jsonl").try_into().unwrap();
    assert_eq!(tx.kind, EventKind::Transaction);
    assert_eq!(tx.transaction.as_deref(), Some("GET /orders"));
    assert_eq!(tx.tag("component"), Some("rust-worker"));
    assert_eq!(tx.spans.len(), 2);
    let [q] = span_queries(&tx).try_into().unwrap();
    assert_eq!(
        q.query.as_ref().unwrap().query,
        "SELECT * FROM orders WHERE customer = $1"
    );
    assert!(
        q.time_spent.unwrap() > 0.0 && q.time_spent.unwrap() < 100.0,
        "{:?}",
        q.time_spent
    );
    let tracing = events("rust-sentry/tracing.jsonl");
    assert_eq!(
        tracing.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["message", "transaction"]
    );
}

#[test]
fn chained_exceptions_keep_cause_first() {
    let e = events("python-sentry-sdk/chained-exception.jsonl");
    let types = |e: &Event| {
        e.exceptions
            .iter()
            .map(|x| x.ty.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(types(&e[0]), ["FileNotFoundError", "RuntimeError"]);
    assert_eq!(types(&e[1]), ["IndexError", "KeyError"]);
    assert_eq!(
        e[2].main_exception().unwrap().ty.as_deref(),
        Some("ExceptionGroup")
    );
    let raven = events("python-raven/capture-exception.jsonl");
    assert_eq!(types(&raven[1]), ["FileNotFoundError", "RuntimeError"]);
    let rust = events("rust-sentry/capture-error.jsonl");
    assert_eq!(types(&rust[0]), ["Os", "ConfigError"]);
    assert_eq!(
        (rust[1].kind.clone(), rust[1].level),
        (EventKind::Message, Level::Warning)
    );
    assert_eq!(
        types(&events("rust-sentry/anyhow.jsonl")[0]),
        ["ParseIntError", "Error", "Error"]
    );
}

#[test]
fn tags_as_object_and_as_pairs() {
    let sdk = &events("python-sentry-sdk/capture-message.jsonl")[0];
    assert_eq!(sdk.level, Level::Warning);
    assert_eq!(sdk.tag("customer_tier"), Some("gold"));
    assert_eq!(sdk.tag("server"), Some("web-1.example.com")); // set_tag wins over server_name
    assert_eq!(
        sdk.tag("url"),
        Some("https://shop.example.com/checkout?step=2")
    ); // a client tag, kept as sent
    let raven = &events("python-raven/capture-exception.jsonl")[0];
    assert_eq!(raven.tag("component"), Some("billing"));
    // No recorded client sent tags as [key, value] pairs (older raven versions did): rewrite a
    // recorded event into that form and expect the same tags.
    let req = &load("python-raven/capture-message.jsonl")[0];
    let mut value: Value = serde_json::from_slice(&req.decoded()).unwrap();
    let as_object = protocol::event::normalize(value.clone(), 0.0, None).unwrap();
    let pairs: Vec<Value> = value["tags"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| serde_json::json!([k, v]))
        .collect();
    value["tags"] = Value::Array(pairs);
    let as_pairs = protocol::event::normalize(value, 0.0, None).unwrap();
    assert_eq!(as_pairs.tags, as_object.tags);
    assert_eq!(as_pairs.tag("logger"), Some("shop.checkout"));
}

#[test]
fn raven_message_with_stack() {
    let e = events("python-raven/capture-message.jsonl");
    assert_eq!(
        (e[0].kind.clone(), e[0].level),
        (EventKind::Message, Level::Warning)
    );
    assert_eq!(e[0].message.as_ref().unwrap().formatted, "hello world");
    let m = e[1].message.as_ref().unwrap();
    assert_eq!(m.message.as_deref(), Some("Order %s failed for %s"));
    assert_eq!(m.params, [Value::from("'A-17'"), Value::from("'alice'")]);
    assert_eq!(e[1].logger.as_deref(), Some("shop.orders"));
    assert!(e[1].stacktrace.as_ref().unwrap().frames.len() >= 2);
}

#[test]
fn other_item_types_are_kept() {
    let types = |file: &str| -> Vec<String> {
        load(file)
            .iter()
            .flat_map(|r| r.envelope().items)
            .map(|i| i.ty.as_str().to_string())
            .collect()
    };
    assert_eq!(
        types("python-sentry-sdk/logs-and-metrics.jsonl"),
        ["transaction", "log", "trace_metric"]
    );
    assert_eq!(
        types("python-sentry-sdk/check-in.jsonl"),
        ["check_in", "check_in"]
    );
    assert_eq!(
        types("python-sentry-sdk/client-report.jsonl"),
        ["event", "client_report"]
    );
    assert_eq!(
        types("python-sentry-sdk/django-unhandled-exception.jsonl"),
        ["event", "sessions"]
    );
    // Rust log items have no `length`: the payload runs to the newline.
    let log = load("rust-sentry/log.jsonl")[1].envelope();
    let [item] = log.items.try_into().unwrap();
    assert_eq!(item.ty, ItemType::Log);
    assert!(item.headers.get("length").is_none());
    let payload: Value = serde_json::from_slice(&item.payload).unwrap();
    assert_eq!(payload["items"].as_array().unwrap().len(), 3);
    let report = &load("python-sentry-sdk/client-report.jsonl")[1]
        .envelope()
        .items[0];
    let report: Value = serde_json::from_slice(&report.payload).unwrap();
    assert_eq!(report["discarded_events"][0]["quantity"], 3);
}

#[test]
fn attachments_keep_binary_payloads() {
    for file in [
        "python-sentry-sdk/attachment.jsonl",
        "python-sentry-sdk/attachment--uncompressed.jsonl",
    ] {
        let env = load(file)[0].envelope();
        let dump = env
            .items
            .iter()
            .find(|i| i.filename() == Some("dump.bin"))
            .unwrap();
        assert_eq!(dump.ty, ItemType::Attachment);
        assert_eq!(dump.payload, (0..=255u8).collect::<Vec<_>>());
        assert_eq!(dump.content_type(), Some("application/octet-stream"));
        let log = env
            .items
            .iter()
            .find(|i| i.filename() == Some("app.log"))
            .unwrap();
        assert_eq!(log.payload.len(), 18);
    }
}
