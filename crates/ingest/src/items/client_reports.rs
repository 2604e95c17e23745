//! The SDKs' own discard counts (`client_report` items: `{timestamp, discarded_events: [{reason,
//! category, quantity}]}`): what a client dropped before sending, and why. Summed per project,
//! reason and category. Reasons and categories outside the lists the SDKs document are counted
//! as `other`, so a client cannot grow the table without bound.

use serde_json::Value;
use store::{NewClientReport, ProjectId};

/// The most entries read from one report.
pub const MAX_ENTRIES: usize = 100;

const REASONS: &[&str] = &[
    "queue_overflow",
    "cache_overflow",
    "buffer_overflow",
    "ratelimit_backoff",
    "network_error",
    "sample_rate",
    "before_send",
    "event_processor",
    "send_error",
    "internal_sdk_error",
    "insufficient_data",
    "backpressure",
    "ignored",
    "invalid",
    "no_parent_span",
];

const CATEGORIES: &[&str] = &[
    "default",
    "error",
    "transaction",
    "security",
    "attachment",
    "session",
    "profile",
    "profile_chunk",
    "replay",
    "feedback",
    "user_report",
    "span",
    "log_item",
    "log_byte",
    "monitor",
    "trace_metric",
];

/// Reads one report: its entries summed by (reason, category); `None` when it is not a report.
pub fn read(payload: &[u8], project_id: ProjectId) -> Option<Vec<NewClientReport>> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let entries = v.get("discarded_events")?.as_array()?;
    let mut out: Vec<NewClientReport> = Vec::new();
    for e in entries.iter().take(MAX_ENTRIES) {
        let known = |key: &str, list: &[&str]| -> String {
            let s = e.get(key).and_then(Value::as_str).unwrap_or("");
            if list.contains(&s) { s.to_string() } else { "other".to_string() }
        };
        let reason = known("reason", REASONS);
        let category = known("category", CATEGORIES);
        let Some(quantity) = e.get("quantity").and_then(Value::as_u64).filter(|q| *q > 0) else { continue };
        match out.iter_mut().find(|r| r.reason == reason && r.category == category) {
            Some(r) => r.quantity = r.quantity.saturating_add(quantity),
            None => out.push(NewClientReport { project_id, reason, category, quantity }),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_summed_and_bounded() {
        let got = read(
            br#"{"timestamp": 1.0, "discarded_events": [{"reason": "before_send", "category": "error", "quantity": 3},
                {"reason": "before_send", "category": "error", "quantity": 2}, {"reason": "x-made-up", "category": "error", "quantity": 1},
                {"reason": "sample_rate", "category": "transaction", "quantity": -4}, {"reason": "sample_rate", "category": "bogus", "quantity": 7}]}"#,
            ProjectId(1),
        )
        .unwrap();
        let flat: Vec<(&str, &str, u64)> = got.iter().map(|r| (r.reason.as_str(), r.category.as_str(), r.quantity)).collect();
        assert_eq!(flat, [("before_send", "error", 5), ("other", "error", 1), ("sample_rate", "other", 7)]);
        assert!(read(b"[]", ProjectId(1)).is_none());
        let many = format!(r#"{{"discarded_events": [{}]}}"#, vec![r#"{"reason":"ignored","category":"span","quantity":1}"#; 500].join(","));
        assert_eq!(read(many.as_bytes(), ProjectId(1)).unwrap()[0].quantity, MAX_ENTRIES as u64);
    }
}
