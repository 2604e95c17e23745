//! `log` items (`application/vnd.sentry.items.log+json`: `{"items": [...]}`, as the SDKs'
//! `logger.info(…)` with `enable_logs` send them): each log becomes a [`store::NewLog`] with
//! its level, body, template (`sentry.message.template`), release and environment
//! (`sentry.release`, `sentry.environment`) and its attributes as a flat JSON object (each
//! attribute's value without its type).
//!
//! Bounded: at most [`MAX_LOGS`] logs are used per envelope (all items together); the rest,
//! and entries that are not logs, are counted as discards. A body is cut at
//! [`MAX_BODY_CHARS`], a text attribute at [`MAX_VALUE_CHARS`], and a log's attributes stop at
//! [`MAX_ATTRIBUTES_BYTES`] of JSON. Scrubbed by the project's scrubber before anything is
//! kept. A log's id is derived from what it is and where it was in the envelope, so a
//! client's retry of the same envelope stores it once.

use protocol::EventId;
use serde_json::{Map, Value};
use store::{NewLog, ProjectId};

use crate::DiscardReason;
use crate::scrub::Scrubber;

/// Logs used from one envelope at most.
pub const MAX_LOGS: usize = 1000;
/// The longest body kept, in characters.
pub const MAX_BODY_CHARS: usize = 8192;
/// The longest text attribute value kept, in characters.
pub const MAX_VALUE_CHARS: usize = 2048;
/// The longest attribute name kept; longer ones are dropped.
pub const MAX_NAME_CHARS: usize = 128;
/// A log's attributes as JSON are at most this many bytes; the attributes past it are dropped.
pub const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

/// What one `log` item gives: its logs, and what was dropped.
#[derive(Debug, Default)]
pub struct LogItem {
    pub logs: Vec<NewLog>,
    pub discarded: Vec<(DiscardReason, &'static str, u64)>,
}

/// Reads one log item; `budget` is how many logs the envelope may still use (it also numbers
/// the logs of the envelope, for their ids).
pub fn read(
    payload: &[u8],
    project_id: ProjectId,
    envelope_id: Option<EventId>,
    scrubber: &Scrubber,
    received: f64,
    budget: &mut usize,
) -> LogItem {
    let mut out = LogItem::default();
    let container = match super::container::read(payload, *budget) {
        Ok(c) => c,
        Err(_) => {
            out.discarded.push((DiscardReason::Invalid, "log", 1));
            return out;
        }
    };
    if container.over > 0 {
        out.discarded.push((DiscardReason::TooLarge, "log", container.over));
    }
    let mut invalid = 0u64;
    for raw in container.items {
        let index = MAX_LOGS - *budget;
        *budget -= 1;
        match log(raw, project_id, envelope_id, scrubber, received, index) {
            Some(l) => out.logs.push(l),
            None => invalid += 1,
        }
    }
    if invalid > 0 {
        out.discarded.push((DiscardReason::Invalid, "log", invalid));
    }
    out
}

/// The level of a log: its `level` as sent (Python's `warning` and `critical` are `warn` and
/// `fatal`), else its OpenTelemetry severity number, else `info`.
fn level(o: &Map<String, Value>, attributes: &Map<String, Value>) -> &'static str {
    let named = o.get("level").and_then(Value::as_str).map(str::to_ascii_lowercase);
    match named.as_deref() {
        Some("trace") => return "trace",
        Some("debug") => return "debug",
        Some("info") => return "info",
        Some("warn" | "warning") => return "warn",
        Some("error") => return "error",
        Some("fatal" | "critical") => return "fatal",
        _ => {}
    }
    let number = o.get("severity_number").or_else(|| attributes.get("sentry.severity_number")).and_then(Value::as_u64);
    match number {
        Some(1..=4) => "trace",
        Some(5..=8) => "debug",
        Some(13..=16) => "warn",
        Some(17..=20) => "error",
        Some(21..=24) => "fatal",
        _ => "info",
    }
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => s[..at].to_string(),
        None => s.to_string(),
    }
}

/// An attribute's value as kept: `{"value": …, "type": …}` or a bare value; text cut, lists
/// kept when small, anything else as its JSON text.
fn attribute_value(v: Value) -> Option<Value> {
    let v = match v {
        Value::Object(mut a) if a.contains_key("value") => a.remove("value")?,
        other => other,
    };
    Some(match v {
        Value::Null => return None,
        Value::String(s) => Value::String(cut(&s, MAX_VALUE_CHARS)),
        v @ (Value::Bool(_) | Value::Number(_)) => v,
        other => {
            let text = other.to_string();
            if text.len() <= MAX_VALUE_CHARS && other.is_array() { other } else { Value::String(cut(&text, MAX_VALUE_CHARS)) }
        }
    })
}

fn log(raw: Value, project_id: ProjectId, envelope_id: Option<EventId>, scrubber: &Scrubber, received: f64, index: usize) -> Option<NewLog> {
    let Value::Object(mut o) = raw else { return None };
    let body = match o.remove("body")? {
        Value::String(s) => cut(&s, MAX_BODY_CHARS),
        Value::Null => return None,
        other => cut(&other.to_string(), MAX_BODY_CHARS),
    };
    let mut attributes = Map::new();
    let mut size = 2;
    if let Some(Value::Object(raw)) = o.remove("attributes") {
        for (name, v) in raw {
            if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
                continue;
            }
            let Some(v) = attribute_value(v) else { continue };
            let grows = name.len() + v.to_string().len() + 4;
            if size + grows > MAX_ATTRIBUTES_BYTES {
                continue;
            }
            size += grows;
            attributes.insert(name, v);
        }
    }
    let level = level(&o, &attributes);
    // Scrubbed together, so that a secret under a sensitive attribute name is also removed
    // from the body.
    let mut scrubbed = Value::Object(Map::from_iter([("body".to_string(), Value::String(body)), ("attributes".to_string(), Value::Object(attributes))]));
    scrubber.value(&mut scrubbed);
    let Value::Object(mut scrubbed) = scrubbed else { return None };
    let body = match scrubbed.remove("body") {
        Some(Value::String(s)) => s,
        _ => "[Filtered]".to_string(),
    };
    let attributes = match scrubbed.remove("attributes") {
        Some(Value::Object(a)) => a,
        _ => Map::new(),
    };
    let text = |key: &str| attributes.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    let trace_id = o.get("trace_id").and_then(Value::as_str).and_then(EventId::parse);
    let timestamp = o.get("timestamp").and_then(protocol::event::parse_timestamp).unwrap_or(received);
    let base = trace_id.or(envelope_id).unwrap_or(EventId([0; 16]));
    Some(NewLog {
        project_id,
        log_id: base.derive(&format!("log\u{0}{index}\u{0}{timestamp}\u{0}{level}\u{0}{body}")),
        timestamp,
        received,
        trace_id: trace_id.map(|t| t.to_string()),
        level: level.to_string(),
        template: text("sentry.message.template"),
        release: text("sentry.release"),
        environment: text("sentry.environment"),
        attributes: Value::Object(attributes).to_string(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(item: Value, budget: &mut usize) -> LogItem {
        read(&serde_json::to_vec(&item).unwrap(), ProjectId(1), Some(EventId([9; 16])), &Scrubber::default(), 5.0, budget)
    }

    fn python_log() -> Value {
        json!({"timestamp": 1_700_000_000.25, "level": "info", "body": "Order 7 paid", "trace_id": "5F066C6F17BD443E963BC7DF5800E0FC",
               "attributes": {"sentry.message.template": {"value": "Order {order_id} paid", "type": "string"},
                              "sentry.message.parameter.order_id": {"value": 7, "type": "integer"},
                              "sentry.release": {"value": "shop@1.2.3", "type": "string"},
                              "sentry.environment": {"value": "production", "type": "string"},
                              "sentry.severity_number": {"value": 9, "type": "integer"},
                              "password": {"value": "hunter2", "type": "string"},
                              "tags": {"value": ["a", "b"], "type": "array"}}})
    }

    #[test]
    fn a_python_log_keeps_its_template_parameters_and_context() {
        let mut budget = MAX_LOGS;
        let read = check(json!({"items": [python_log()]}), &mut budget);
        assert!(read.discarded.is_empty(), "{:?}", read.discarded);
        assert_eq!(budget, MAX_LOGS - 1);
        let [l] = &read.logs[..] else { panic!("{read:?}") };
        assert_eq!((l.level.as_str(), l.body.as_str(), l.timestamp), ("info", "Order 7 paid", 1_700_000_000.25));
        assert_eq!(l.template.as_deref(), Some("Order {order_id} paid"));
        assert_eq!((l.release.as_deref(), l.environment.as_deref()), (Some("shop@1.2.3"), Some("production")));
        assert_eq!(l.trace_id.as_deref(), Some("5f066c6f17bd443e963bc7df5800e0fc"));
        let attributes: Value = serde_json::from_str(&l.attributes).unwrap();
        assert_eq!(attributes["sentry.message.parameter.order_id"], 7);
        assert_eq!(attributes["tags"], json!(["a", "b"]));
        assert_eq!(attributes["password"], "[Filtered]", "scrubbed");
        assert!(attributes.get("_meta").is_none());
        // The same envelope again: the same ids.
        let again = check(json!({"items": [python_log()]}), &mut MAX_LOGS.clone());
        assert_eq!(again.logs[0].log_id, l.log_id);
    }

    #[test]
    fn levels_bounds_and_bad_entries() {
        let log = |level: Value, severity: Value| json!({"timestamp": 1.0, "body": "x", "level": level, "severity_number": severity});
        let levels: Vec<String> = check(
            json!({"items": [log("WARNING".into(), Value::Null), log("critical".into(), Value::Null), log("odd".into(), 18.into()),
                             log(Value::Null, 2.into()), log(Value::Null, Value::Null)]}),
            &mut MAX_LOGS.clone(),
        )
        .logs
        .into_iter()
        .map(|l| l.level)
        .collect();
        assert_eq!(levels, ["warn", "fatal", "error", "trace", "info"]);

        let huge = json!({"body": "é".repeat(MAX_BODY_CHARS + 10), "attributes": (0..2000).map(|i| (format!("a{i}"), json!({"value": "v".repeat(100)}))).collect::<Map<_, _>>()});
        let [l] = &check(json!({"items": [huge]}), &mut MAX_LOGS.clone()).logs[..] else { panic!() };
        assert_eq!(l.body.chars().count(), MAX_BODY_CHARS);
        assert!(l.attributes.len() <= MAX_ATTRIBUTES_BYTES, "{}", l.attributes.len());
        assert_eq!(l.timestamp, 5.0, "no timestamp: when it arrived");

        let mut budget = 3;
        let read = check(json!({"items": [log("info".into(), Value::Null), 1, {"level": "info"}, log("info".into(), Value::Null), log("info".into(), Value::Null)]}), &mut budget);
        assert_eq!((read.logs.len(), budget), (1, 0));
        assert_eq!(read.discarded, vec![(DiscardReason::TooLarge, "log", 2), (DiscardReason::Invalid, "log", 2)]);
        assert_eq!(check(json!([1]), &mut 5).discarded, vec![(DiscardReason::Invalid, "log", 1)]);
    }
}
