//! `span` items (`application/vnd.sentry.items.span.v2+json`: `{"version": 2, "items": [...]}`,
//! several spans per item, as the JavaScript SDK 11 streams them): they become what a
//! transaction's spans become. The spans of one segment (`sentry.segment.id`) are put together
//! as a transaction: when the segment span itself is there, it is stored as a Transaction event
//! with its duration; either way its database spans become Query events, with the ids they
//! would get from the whole transaction, so a segment sent in several batches is counted once.
//!
//! Bounded: at most [`MAX_SPANS`] spans are used per envelope (all items together); the rest,
//! and spans without ids or timestamps, are counted as discards. `item_count` is not trusted:
//! only the spans actually present are counted. Of a span's attributes only the few read here
//! are kept.

use std::collections::BTreeMap;

use protocol::EventId;
use serde_json::{Map, Value, json};

use crate::DiscardReason;

/// Spans used from one envelope at most.
pub const MAX_SPANS: usize = 1000;

/// What one `span` item gives: a transaction payload per segment, and what was dropped.
#[derive(Debug, Default)]
pub struct SpanItem {
    pub segments: Vec<Segment>,
    pub discarded: Vec<(DiscardReason, &'static str, u64)>,
}

/// The spans of one segment as a transaction payload (the JSON a transaction item would
/// carry), and whether the segment span itself was there (then the transaction is stored).
#[derive(Debug)]
pub struct Segment {
    pub payload: Value,
    pub complete: bool,
}

/// Reads one span item; `budget` is how many spans the envelope may still use.
pub fn read(payload: &[u8], budget: &mut usize) -> SpanItem {
    let mut out = SpanItem::default();
    let container = match super::container::read(payload, *budget) {
        Ok(c) => c,
        Err(_) => {
            out.discarded.push((DiscardReason::Invalid, "span", 1));
            return out;
        }
    };
    *budget -= container.items.len();
    if container.over > 0 {
        out.discarded.push((DiscardReason::TooLarge, "span", container.over));
    }
    let mut invalid = 0u64;
    let mut by_segment: BTreeMap<(String, String), Vec<Span>> = BTreeMap::new();
    for raw in container.items {
        match Span::read(raw) {
            Some(span) => by_segment.entry((span.trace_id.clone(), span.segment_id.clone())).or_default().push(span),
            None => invalid += 1,
        }
    }
    if invalid > 0 {
        out.discarded.push((DiscardReason::Invalid, "span", invalid));
    }
    for ((trace_id, segment_id), spans) in by_segment {
        out.segments.push(segment(&trace_id, &segment_id, spans));
    }
    out
}

/// The id of the transaction a segment becomes (and the base of its Query events' ids).
pub fn segment_event_id(trace_id: &str, segment_id: &str) -> EventId {
    EventId::parse(trace_id).unwrap_or(EventId([0; 16])).derive(segment_id)
}

/// One span as read: ids, name, times and the attributes used.
#[derive(Debug)]
struct Span {
    trace_id: String,
    span_id: String,
    parent_span_id: Option<String>,
    segment_id: String,
    is_segment: bool,
    name: String,
    start: f64,
    end: f64,
    status: Option<String>,
    attributes: Map<String, Value>,
}

impl Span {
    fn read(v: Value) -> Option<Span> {
        let Value::Object(mut o) = v else { return None };
        let text = |o: &Map<String, Value>, k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let attributes: Map<String, Value> = match o.remove("attributes") {
            Some(Value::Object(a)) => a
                .into_iter()
                .filter(|(k, _)| USED_ATTRIBUTES.contains(&k.as_str()))
                .filter_map(|(k, v)| {
                    // `{"value": …, "type": …}`, or a bare value.
                    let v = match v {
                        Value::Object(mut a) => a.remove("value")?,
                        other => other,
                    };
                    Some((k, v))
                })
                .collect(),
            _ => Map::new(),
        };
        let span_id = text(&o, "span_id")?;
        let is_segment = o.get("is_segment").and_then(Value::as_bool).unwrap_or(false);
        let segment_id = attributes
            .get("sentry.segment.id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| if is_segment { span_id.clone() } else { String::new() });
        let start = o.get("start_timestamp").and_then(protocol::event::parse_timestamp)?;
        let end = o.get("end_timestamp").or_else(|| o.get("timestamp")).and_then(protocol::event::parse_timestamp)?;
        Some(Span {
            trace_id: text(&o, "trace_id")?,
            parent_span_id: text(&o, "parent_span_id"),
            segment_id,
            is_segment,
            name: text(&o, "name").unwrap_or_default(),
            start,
            end: end.max(start),
            status: text(&o, "status"),
            span_id,
            attributes,
        })
    }

    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    fn op(&self) -> Option<&str> {
        self.attr("sentry.op")
    }

    /// What a person reads: for a database span its statement, else its name.
    fn description(&self) -> &str {
        self.attr("db.query.text").or_else(|| self.attr("db.statement")).unwrap_or(&self.name)
    }
}

/// The attributes kept; the rest are dropped (a span's attributes can be large).
const USED_ATTRIBUTES: &[&str] = &[
    "sentry.op",
    "sentry.segment.id",
    "sentry.segment.name",
    "sentry.release",
    "sentry.environment",
    "sentry.sdk.name",
    "db.system",
    "db.system.name",
    "db.query.text",
    "db.statement",
];

fn segment(trace_id: &str, segment_id: &str, mut spans: Vec<Span>) -> Segment {
    spans.sort_by(|a, b| a.start.total_cmp(&b.start));
    let root = spans.iter().position(|s| s.is_segment && s.span_id == segment_id).map(|i| spans.remove(i));
    let first = root.as_ref().or(spans.first()).expect("a segment has at least one span");
    let name = root
        .as_ref()
        .map(|r| r.name.clone())
        .or_else(|| first.attr("sentry.segment.name").map(str::to_string))
        .unwrap_or_default();
    let start = root.as_ref().map_or_else(|| spans.iter().map(|s| s.start).fold(f64::INFINITY, f64::min), |r| r.start);
    let end = root.as_ref().map_or_else(|| spans.iter().map(|s| s.end).fold(f64::NEG_INFINITY, f64::max), |r| r.end);
    let platform = match first.attr("sentry.sdk.name") {
        Some(sdk) if sdk.contains("javascript") => "javascript",
        Some(sdk) if sdk.contains("python") => "python",
        _ => "other",
    };
    let children: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut data = Map::new();
            if let Some(system) = s.attr("db.system").or_else(|| s.attr("db.system.name")) {
                data.insert("db.system".into(), system.into());
            }
            json!({
                "span_id": s.span_id,
                "parent_span_id": s.parent_span_id,
                "trace_id": s.trace_id,
                "op": s.op(),
                "description": s.description(),
                "start_timestamp": s.start,
                "timestamp": s.end,
                "status": s.status,
                "data": data,
            })
        })
        .collect();
    let mut payload = json!({
        "event_id": segment_event_id(trace_id, segment_id).to_string(),
        "type": "transaction",
        "transaction": name,
        "start_timestamp": start,
        "timestamp": end,
        "platform": platform,
        "contexts": {"trace": {
            "trace_id": trace_id,
            "span_id": segment_id,
            "op": root.as_ref().and_then(|r| r.op()),
            "status": root.as_ref().and_then(|r| r.status.clone()),
        }},
        "spans": children,
    });
    for (attr, field) in [("sentry.release", "release"), ("sentry.environment", "environment")] {
        if let Some(v) = first.attr(attr) {
            payload[field] = v.into();
        }
    }
    Segment { payload, complete: root.is_some() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, segment: &str, is_segment: bool, name: &str, op: &str, start: f64, end: f64) -> Value {
        json!({"span_id": id, "trace_id": "5f066c6f17bd443e963bc7df5800e0fc", "parent_span_id": (!is_segment).then_some(segment),
               "name": name, "start_timestamp": start, "end_timestamp": end, "is_segment": is_segment, "status": "ok",
               "attributes": {"sentry.op": {"value": op, "type": "string"}, "sentry.segment.id": {"value": segment, "type": "string"},
                              "sentry.segment.name": {"value": "GET /orders", "type": "string"},
                              "db.system": {"value": "postgresql", "type": "string"},
                              "sentry.release": {"value": "shop@1.2.3", "type": "string"},
                              "huge": {"value": "x".repeat(1000), "type": "string"}}})
    }

    #[test]
    fn a_segment_becomes_a_transaction_with_its_db_spans() {
        let item = json!({"version": 2, "items": [
            span("a1", "root", false, "SELECT 1", "db", 10.0, 10.5),
            span("root", "root", true, "GET /orders", "http.server", 9.0, 12.0),
        ]});
        let mut budget = MAX_SPANS;
        let read = read(&serde_json::to_vec(&item).unwrap(), &mut budget);
        assert!(read.discarded.is_empty());
        assert_eq!(budget, MAX_SPANS - 2);
        let [seg] = &read.segments[..] else { panic!("{read:?}") };
        assert!(seg.complete);
        let p = &seg.payload;
        assert_eq!((p["transaction"].as_str(), p["start_timestamp"].as_f64(), p["timestamp"].as_f64()), (Some("GET /orders"), Some(9.0), Some(12.0)));
        assert_eq!(p["release"], "shop@1.2.3");
        assert_eq!(p["spans"][0]["description"], "SELECT 1");
        assert_eq!(p["spans"][0]["data"]["db.system"], "postgresql");
        assert!(!p.to_string().contains("xxxx"), "unused attributes are dropped");
        assert_eq!(p["event_id"], segment_event_id("5f066c6f17bd443e963bc7df5800e0fc", "root").to_string());
    }

    #[test]
    fn children_without_their_segment_still_count_and_the_budget_holds() {
        let spans: Vec<Value> = (0..5).map(|i| span(&format!("c{i}"), "root", false, "SELECT 1", "db", 1.0, 2.0)).chain([json!({"no": "ids"})]).collect();
        let mut budget = 4;
        let read = read(&serde_json::to_vec(&json!({"items": spans})).unwrap(), &mut budget);
        assert_eq!(budget, 0);
        assert_eq!(read.discarded, vec![(DiscardReason::TooLarge, "span", 2)]);
        let [seg] = &read.segments[..] else { panic!("{read:?}") };
        assert!(!seg.complete);
        assert_eq!(seg.payload["spans"].as_array().unwrap().len(), 4);
        assert_eq!(seg.payload["transaction"], "GET /orders");

        let mut budget = 10;
        assert_eq!(super::read(b"[1, 2]", &mut budget).discarded, vec![(DiscardReason::Invalid, "span", 1)]);
        assert_eq!(super::read(br#"{"items": [{"span_id": "x"}]}"#, &mut budget).discarded, vec![(DiscardReason::Invalid, "span", 1)]);
    }
}
