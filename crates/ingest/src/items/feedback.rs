//! User feedback items: `feedback` (an event whose `contexts.feedback` holds the message, the
//! name, `contact_email`, `url` and `associated_event_id`), as the JavaScript SDK's
//! `captureFeedback` sends it, and the older `user_report` (`{event_id, name, email,
//! comments}`, the envelope form of the `/user-feedback/` endpoint). Scrubbed like events;
//! each field is capped.

use protocol::EventId;
use serde_json::Value;
use store::{NewFeedback, ProjectId};

use crate::scrub::Scrubber;

/// The longest message kept, in characters (what the SDKs' widgets allow, with room).
pub const MAX_MESSAGE_CHARS: usize = 8192;
/// The longest name, email or URL kept, in characters.
pub const MAX_FIELD_CHARS: usize = 256;

/// Whether an item type is user feedback.
pub fn is_feedback(ty: &str) -> bool {
    matches!(ty, "feedback" | "user_report")
}

/// Reads one feedback item; `None` when it holds no message.
pub fn read(
    ty: &str,
    payload: &[u8],
    project_id: ProjectId,
    envelope_id: Option<EventId>,
    scrubber: &Scrubber,
    received: f64,
) -> Option<NewFeedback> {
    let mut v: Value = serde_json::from_slice(payload).ok()?;
    if !v.is_object() {
        return None;
    }
    scrubber.value(&mut v);
    let text = |v: &Value, key: &str, max: usize| -> String {
        v.get(key).and_then(Value::as_str).map(|s| s.trim().chars().take(max).collect()).unwrap_or_default()
    };
    let id = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).and_then(EventId::parse);
    let timestamp = v.get("timestamp").and_then(protocol::event::parse_timestamp).unwrap_or(received);
    let f = if ty == "user_report" {
        let event_id = id(&v, "event_id");
        let message = text(&v, "comments", MAX_MESSAGE_CHARS);
        let (name, email) = (text(&v, "name", MAX_FIELD_CHARS), text(&v, "email", MAX_FIELD_CHARS));
        // No id of its own: the same report about the same event is the same feedback.
        let base = event_id.or(envelope_id).unwrap_or(EventId([0; 16]));
        NewFeedback {
            project_id,
            feedback_id: base.derive(&format!("user_report\u{0}{name}\u{0}{email}\u{0}{message}")),
            event_id,
            name,
            email,
            message,
            url: None,
            timestamp,
            received,
        }
    } else {
        let fb = v.get("contexts").and_then(|c| c.get("feedback")).cloned().unwrap_or(Value::Null);
        let url = Some(text(&fb, "url", MAX_FIELD_CHARS)).filter(|u| !u.is_empty());
        NewFeedback {
            project_id,
            feedback_id: id(&v, "event_id").or(envelope_id).unwrap_or_else(EventId::new_random),
            event_id: id(&fb, "associated_event_id"),
            name: text(&fb, "name", MAX_FIELD_CHARS),
            email: text(&fb, "contact_email", MAX_FIELD_CHARS),
            message: text(&fb, "message", MAX_MESSAGE_CHARS),
            url,
            timestamp,
            received,
        }
    };
    (!f.message.is_empty()).then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ty: &str, payload: &str) -> Option<NewFeedback> {
        read(ty, payload.as_bytes(), ProjectId(1), Some(EventId([9; 16])), &Scrubber::default(), 5.0)
    }

    #[test]
    fn feedback_and_user_report() {
        let f = check("feedback", r#"{"event_id":"ef6d64cfa102437e940cd6ad496e1e87","timestamp":1700000000.5,"type":"feedback",
            "contexts":{"feedback":{"contact_email":"alice@example.com","name":"Alice","message":"The pay button does nothing",
            "associated_event_id":"6f5cd789b4c74c1aa9d2d61594ab6a3b","url":"https://shop/cart"}}}"#).unwrap();
        assert_eq!(f.feedback_id, EventId::parse("ef6d64cfa102437e940cd6ad496e1e87").unwrap());
        assert_eq!(f.event_id, EventId::parse("6f5cd789b4c74c1aa9d2d61594ab6a3b"));
        assert_eq!((f.name.as_str(), f.email.as_str(), f.message.as_str()), ("Alice", "alice@example.com", "The pay button does nothing"));
        assert_eq!((f.url.as_deref(), f.timestamp), (Some("https://shop/cart"), 1_700_000_000.5));

        let r = check("user_report", r#"{"event_id":"6f5cd789b4c74c1aa9d2d61594ab6a3b","name":"Bob","email":"bob@example.com","comments":"Same here, card 4111 1111 1111 1111"}"#).unwrap();
        assert_eq!(r.event_id, EventId::parse("6f5cd789b4c74c1aa9d2d61594ab6a3b"));
        assert_eq!(r.message, "Same here, card [Filtered]");
        assert_eq!(r.timestamp, 5.0);
        let again = check("user_report", r#"{"event_id":"6f5cd789b4c74c1aa9d2d61594ab6a3b","name":"Bob","email":"bob@example.com","comments":"Same here, card 4111 1111 1111 1111"}"#).unwrap();
        assert_eq!(r.feedback_id, again.feedback_id, "a retry is the same feedback");

        assert!(check("feedback", r#"{"contexts":{"feedback":{"name":"x"}}}"#).is_none(), "no message");
        assert!(check("user_report", "[1]").is_none());
        let long = format!(r#"{{"comments":"{}"}}"#, "a".repeat(20_000));
        assert_eq!(check("user_report", &long).unwrap().message.len(), MAX_MESSAGE_CHARS);
    }
}
