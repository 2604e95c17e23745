//! Tests for the normaliser: every shape real clients send, and every shape a strict schema
//! (sentry-types) refuses but we must accept.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const NOW: f64 = 1_800_000_000.0;

fn norm(v: Value) -> Event {
    normalize(v, NOW, None).unwrap()
}

fn slice(s: &str) -> Result<Event, NormalizeError> {
    normalize_slice(s.as_bytes(), &Limits::default(), NOW, None)
}

fn tags(e: &Event) -> Vec<String> {
    e.tags.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

#[test]
fn empty_object_gets_defaults() {
    let e = norm(json!({}));
    assert_eq!(e.kind, EventKind::Message);
    assert_eq!(e.timestamp, NOW);
    assert_eq!(e.platform, "other");
    assert_eq!(e.level, Level::Error);
    assert_eq!(tags(&e), ["level=error"]);
    assert_ne!(e.event_id, norm(json!({})).event_id);
}

#[test]
fn only_objects_are_events() {
    for (v, found) in [
        (json!([]), "an array"),
        (json!(null), "null"),
        (json!("x"), "a string"),
        (json!(1), "a number"),
    ] {
        let err = normalize(v, NOW, None).unwrap_err();
        assert_eq!(err, NormalizeError::NotAnObject { found });
    }
    assert_eq!(
        slice("[1]").unwrap_err().to_string(),
        "event must be a JSON object, got an array"
    );
}

#[test]
fn event_id_sources() {
    let payload = "fbd26dc4c2354e36aa0baa7c4fc0f13a";
    let hint = EventId::parse("9696f6db-bfae-408d-8ed6-067e2c0b2988");
    assert_eq!(
        normalize(json!({"event_id": payload}), NOW, hint)
            .unwrap()
            .event_id,
        hint.unwrap()
    );
    assert_eq!(
        norm(json!({"event_id": payload})).event_id.to_string(),
        payload
    );
    assert_eq!(
        norm(json!({"event_id": "9696F6DB-BFAE-408D-8ED6-067E2C0B2988"})).event_id,
        hint.unwrap()
    );
    let bad = norm(json!({"event_id": "not-an-id"}));
    assert_ne!(bad.event_id.to_string(), "not-an-id");
    assert_eq!(norm(json!({"event_id": 42})).event_id.to_string().len(), 32);
}

#[test]
fn timestamps_and_levels() {
    assert_eq!(
        norm(json!({"timestamp": "2026-11-24T05:15:46Z"})).timestamp,
        1_795_497_346.0
    );
    assert_eq!(
        norm(json!({"timestamp": "2026-11-24T05:15:46"})).timestamp,
        1_795_497_346.0
    );
    assert_eq!(
        norm(json!({"timestamp": 1795497360.5})).timestamp,
        1795497360.5
    );
    assert_eq!(norm(json!({"timestamp": "soon"})).timestamp, NOW);
    let level = |v: Value| norm(json!({ "level": v })).level;
    assert_eq!(level(json!(40)), Level::Error);
    assert_eq!(level(json!(50)), Level::Fatal);
    assert_eq!(level(json!(10)), Level::Debug);
    assert_eq!(level(json!(25)), Level::Warning);
    assert_eq!(level(json!(20.0)), Level::Info);
    assert_eq!(level(json!("warn")), Level::Warning);
    assert_eq!(level(json!("CRITICAL")), Level::Fatal);
    assert_eq!(level(json!("fatal")), Level::Fatal);
    assert_eq!(level(json!("bogus")), Level::Error);
    assert_eq!(level(json!(null)), Level::Error);
    assert_eq!(norm(json!({"type": "transaction"})).level, Level::Info);
    // A query without a level is a measurement; with an exception it is an error; a stated
    // level is kept.
    assert_eq!(norm(json!({"query": {"query": "SELECT 1"}})).level, Level::Info);
    assert_eq!(norm(json!({"query": {"query": "SELECT 1"}, "level": "error"})).level, Level::Error);
    assert_eq!(
        norm(json!({"query": {"query": "SELECT 1"}, "exception": {"values": [{"type": "E"}]}})).level,
        Level::Error
    );
}

#[test]
fn tags_both_forms_and_derived() {
    let e = norm(json!({
        "tags": [["component", "billing"], ["retries", 3], ["cached", true], ["none", null]],
        "logger": "shop.orders",
        "server_name": "web-1",
        "environment": "production",
        "release": "shop@1.2.3",
        "transaction": "/orders/{order_id}/checkout/",
        "request": {"url": "http://127.0.0.1:36619/orders/42/checkout/?coupon=SPRING24#top", "method": "POST"},
        "user": {"id": 1, "email": "alice@example.com"},
        "contexts": {"browser": {"name": "Chrome", "version": "120.0"}, "os": {"name": "Linux", "version": "6.18"}}
    }));
    assert_eq!(
        tags(&e),
        [
            "component=billing",
            "retries=3",
            "cached=True",
            "none=",
            "logger=shop.orders",
            "level=error",
            "server=web-1",
            "url=http://127.0.0.1:36619/orders/42/checkout/",
            "environment=production",
            "release=shop@1.2.3",
            "transaction=/orders/{order_id}/checkout/",
            "user=1",
            "browser=Chrome 120.0",
            "os=Linux 6.18",
        ]
    );
    // Tags the client set win over derived ones (raven's capture-message sets server/logger/url).
    let e = norm(
        json!({"tags": {"server": "web-1.example.com", "level": "custom"}, "server_name": "web-1", "level": "warning"}),
    );
    assert_eq!(tags(&e), ["level=custom", "server=web-1.example.com"]);
    let long = norm(json!({"tags": {"k": "v".repeat(300)}}));
    assert_eq!(long.tag("k").unwrap().len(), 200);
    assert_eq!(long.trimmed_tags, ["k"]);
    assert_eq!(long.dropped_tags, 0);
}

#[test]
fn too_many_tags_are_dropped_past_the_limit() {
    // About 800 KB, within the default event size limit.
    let list: Vec<String> = (0..50_000).map(|i| format!("[\"k{i}\",\"v\"]")).collect();
    let body = format!(r#"{{"level":"warning","release":"r@1","tags":[{}]}}"#, list.join(","));
    let e = slice(&body).unwrap();
    assert_eq!(e.tags.len(), crate::event::MAX_TAGS + 2);
    assert_eq!(e.dropped_tags, 50_000 - crate::event::MAX_TAGS);
    assert_eq!(e.tag("k0"), Some("v"));
    assert_eq!(e.tag("k200"), None);
    assert_eq!(e.tag("level"), Some("warning"));
    assert_eq!(e.tag("release"), Some("r@1"));
}

#[test]
fn message_forms() {
    let e = norm(
        json!({"logentry": {"message": "Failed to charge order %s for customer %s",
        "formatted": "Failed to charge order A-17 for customer alice", "params": ["A-17", "alice"]}}),
    );
    let m = e.message.unwrap();
    assert_eq!(
        m.message.as_deref(),
        Some("Failed to charge order %s for customer %s")
    );
    assert_eq!(
        m.formatted,
        "Failed to charge order A-17 for customer alice"
    );
    assert_eq!(m.params, vec![json!("A-17"), json!("alice")]);

    // raven: the legacy interface (formatted null) wins over the plain string.
    let e = norm(json!({"message": "Order %s failed for %s",
        "sentry.interfaces.Message": {"message": "Order %s failed for %s", "params": ["'A-17'"], "formatted": null}}));
    let m = e.message.unwrap();
    assert_eq!(
        (m.message.as_deref(), m.formatted.as_str()),
        (Some("Order %s failed for %s"), "Order %s failed for %s")
    );

    let m = norm(json!({"message": "hello world"})).message.unwrap();
    assert_eq!((m.message, m.formatted.as_str()), (None, "hello world"));
    let m = norm(json!({"message": {"formatted": "hi", "params": {"who": "bob"}}}))
        .message
        .unwrap();
    assert_eq!(
        (m.message, m.formatted.as_str(), m.params),
        (None, "hi", vec![json!({"who": "bob"})])
    );
    assert_eq!(norm(json!({"message": ""})).message, None);
    assert_eq!(
        norm(json!({"logentry": {"params": []}, "message": "fallback"}))
            .message
            .unwrap()
            .formatted,
        "fallback"
    );
    let long = norm(json!({"message": "x".repeat(200_000)}))
        .message
        .unwrap();
    assert_eq!(long.formatted.len(), MAX_MESSAGE_CHARS);
}

#[test]
fn queries_and_time_spent() {
    let e = norm(
        json!({"sentry.interfaces.Query": {"query": "SELECT 1", "engine": "psycopg2"}, "time_spent": 812, "level": 40}),
    );
    assert_eq!(e.kind, EventKind::Query);
    assert_eq!(
        e.query,
        Some(Query {
            query: "SELECT 1".into(),
            engine: Some("psycopg2".into())
        })
    );
    assert_eq!(e.time_spent, Some(812.0));
    assert_eq!(
        norm(json!({"query": {"query": "SELECT 2"}, "time_spent": "12.5"})).time_spent,
        Some(12.5)
    );
    assert_eq!(
        norm(json!({"query": "SELECT 3"})).query.unwrap().query,
        "SELECT 3"
    );
    assert_eq!(
        norm(json!({"query": {"query": " "}})).kind,
        EventKind::Message
    );
    assert_eq!(norm(json!({"time_spent": null})).time_spent, None);
    assert_eq!(norm(json!({"time_spent": -5})).time_spent, None);
    // An exception outranks a query.
    assert_eq!(
        norm(json!({"query": "SELECT 1", "exception": [{"type": "E"}]})).kind,
        EventKind::Exception
    );
}

#[test]
fn kinds_from_type() {
    let kind = |t: &str| norm(json!({ "type": t })).kind;
    assert_eq!(kind("deploy"), EventKind::Custom("deploy".into()));
    assert_eq!(kind("Deploy"), EventKind::Custom("deploy".into()));
    for t in [
        "error",
        "default",
        "csp",
        "hpkp",
        "expectct",
        "expectstaple",
        "nel",
        "security",
        "",
        "message",
        "exception",
        "query",
    ] {
        assert_eq!(kind(t), EventKind::Message, "{t}");
    }
    assert_eq!(kind("transaction"), EventKind::Transaction);
    assert_eq!(norm(json!({"type": 7})).kind, EventKind::Message);
}

#[test]
fn transactions() {
    let tx = json!({"transaction": "GET /orders", "timestamp": "2026-11-24T05:16:17.796877642Z",
        "start_timestamp": 1795497377.7715876, "spans": [], "tags": {"component": "rust-worker"}});
    // The Rust SDK sends no "type"; the item type (or the shape) says it is a transaction.
    let e = norm(tx.clone());
    assert_eq!(e.kind, EventKind::Transaction);
    assert_eq!(e.start_timestamp, Some(1795497377.7715876));
    assert!(
        (e.time_spent.unwrap() - 25.289).abs() < 0.01,
        "{:?}",
        e.time_spent
    );
    let payload =
        serde_json::to_vec(&json!({"transaction": "t", "start_timestamp": 1.0, "timestamp": 2.0}))
            .unwrap();
    let item = Item::new(ItemType::Transaction, payload.clone());
    let e = normalize_item(&item, &Limits::default(), NOW, None).unwrap();
    assert_eq!(
        (e.kind, e.time_spent, e.level),
        (EventKind::Transaction, Some(1000.0), Level::Info)
    );
    // In an event item, the shape says so too; an explicit other type or an exception does not.
    let as_event = normalize_item(
        &Item::new(ItemType::Event, payload),
        &Limits::default(),
        NOW,
        None,
    )
    .unwrap();
    assert_eq!(as_event.kind, EventKind::Transaction);
    assert_eq!(
        norm(json!({"type": "error", "start_timestamp": 1.0})).kind,
        EventKind::Message
    );
    assert_eq!(
        norm(json!({"start_timestamp": 1.0, "exception": [{"type": "E"}]})).kind,
        EventKind::Exception
    );
    assert_eq!(
        norm(json!({"start_timestamp": null})).kind,
        EventKind::Message
    );
    // End before start: duration clamps to zero rather than going negative.
    assert_eq!(
        norm(json!({"type": "transaction", "start_timestamp": 5.0, "timestamp": 4.0})).time_spent,
        Some(0.0)
    );
}

#[test]
fn fingerprint_user_request() {
    let e = norm(
        json!({"fingerprint": ["{{ default }}", 42, null, true], "user": {"id": 1}, "request": {"url": 5}}),
    );
    assert_eq!(e.fingerprint.unwrap(), ["{{ default }}", "42", "true"]);
    assert_eq!(e.user.unwrap().id.as_deref(), Some("1"));
    assert_eq!(e.request.unwrap().url.as_deref(), Some("5"));
    assert_eq!(norm(json!({"fingerprint": []})).fingerprint, None);
    assert_eq!(
        norm(json!({"fingerprint": "one"})).fingerprint.unwrap(),
        ["one"]
    );
    assert_eq!(norm(json!({"user": {}})).user, None);
    assert_eq!(
        norm(json!({"sentry.interfaces.User": {"email": "a@b"}}))
            .user
            .unwrap()
            .email
            .as_deref(),
        Some("a@b")
    );
    assert_eq!(
        norm(json!({"sentry.interfaces.Http": {"method": "GET"}}))
            .request
            .unwrap()
            .method
            .as_deref(),
        Some("GET")
    );
}

/// Every payload that sentry-types 0.49.5 refuses (research/dependencies.md) is accepted.
#[test]
fn accepts_what_strict_schemas_refuse() {
    let e = norm(json!({
        "event_id": "malformed",
        "timestamp": "2024-05-01T12:00:00",
        "level": "warn",
        "release": null, "modules": {"a": null}, "extra": null,
        "exception": [{"type": "E", "stacktrace": {"frames": [{"lineno": "10"}]}}],
        "breadcrumbs": [{"message": "plain list"}],
        "tags": [["k", 1], ["b", false]],
        "message": {"message": "object"},
        "contexts": {"react": {"type": "react", "version": "18"}},
        "user": {"id": 7},
        "request": {"data": {"sku": "SKU-999"}, "headers": [["Host", "h"]], "url": "http://h/"}
    }));
    assert_eq!(e.timestamp, 1_714_564_800.0);
    assert_eq!(e.level, Level::Warning);
    assert_eq!(e.kind, EventKind::Exception);
    assert_eq!(
        e.exceptions[0].stacktrace.as_ref().unwrap().frames[0].lineno,
        Some(10)
    );
    assert_eq!(e.tag("k"), Some("1"));
    assert_eq!(e.tag("b"), Some("False"));
    assert_eq!(e.message.as_ref().unwrap().formatted, "object");
    assert_eq!(e.tag("user"), Some("7"));
    assert_eq!(e.release, None);
}

#[test]
fn slice_errors_and_repairs() {
    let e = slice(r#"{"message": "x", "extra": {"ratio": NaN, "max": Infinity, "min": -Infinity}, "v": "\ud83d"}"#).unwrap();
    assert_eq!(e.message.unwrap().formatted, "x");
    let err = slice(r#"{"message": "x",}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "event is not valid JSON: trailing comma at line 1 column 17"
    );
    assert_eq!(
        slice("").unwrap_err().to_string(),
        "event is not valid JSON: EOF while parsing a value at line 1 column 0"
    );
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(64), "]".repeat(64));
    assert_eq!(
        slice(&deep).unwrap_err(),
        NormalizeError::TooDeep { limit: 64 }
    );
    assert_eq!(
        slice(&deep).unwrap_err().to_string(),
        "event JSON is nested deeper than 64 levels"
    );
    let ok = format!("{{\"a\":{}1{}}}", "[".repeat(63), "]".repeat(63));
    assert!(slice(&ok).is_ok());
    let limits = Limits {
        max_event_bytes: 10,
        ..Limits::default()
    };
    let err = normalize_slice(b"{\"message\": \"too long\"}", &limits, NOW, None).unwrap_err();
    assert!(err.is_too_large());
    let latin1 =
        normalize_slice(b"{\"message\": \"caf\xe9\"}", &Limits::default(), NOW, None).unwrap();
    assert_eq!(latin1.message.unwrap().formatted, "caf\u{fffd}");
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,10}".prop_map(Value::String),
        prop_oneof![
            Just("2026-11-24T05:15:46Z"),
            Just("transaction"),
            Just("db"),
            Just("40"),
            Just("{{ default }}")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    let keys = prop_oneof![
        Just("type"),
        Just("exception"),
        Just("values"),
        Just("stacktrace"),
        Just("frames"),
        Just("threads"),
        Just("tags"),
        Just("message"),
        Just("logentry"),
        Just("timestamp"),
        Just("start_timestamp"),
        Just("spans"),
        Just("level"),
        Just("user"),
        Just("request"),
        Just("query"),
        Just("sentry.interfaces.Query"),
        Just("fingerprint"),
        Just("contexts"),
        Just("os"),
        Just("name"),
        Just("lineno"),
        Just("time_spent"),
        Just("op"),
        Just("description"),
        Just("data"),
        Just("crashed"),
        Just("params"),
        Just("formatted"),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((keys.clone(), inner), 0..8).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #[test]
    fn never_panics_on_any_json(v in json_value()) {
        if let Ok(e) = normalize(v, NOW, None) {
            let _ = super::super::span_queries(&e);
            prop_assert!(e.tags.iter().all(|(k, v)| !k.is_empty() && k.len() <= 200 && v.chars().count() <= 200));
        }
    }

    #[test]
    fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = normalize_slice(&bytes, &Limits::default(), NOW, None);
    }

    #[test]
    fn never_panics_on_json_like_text(s in "[{}\\[\\]\",:a-zNIfy0-9.\\\\u -]{0,64}") {
        let _ = normalize_slice(s.as_bytes(), &Limits::default(), NOW, None);
    }
}
