//! The PagerDuty plugin: Events API v2. A firing triggers an alert whose `dedup_key` names the
//! issue (so every firing about one issue is one incident), and resolving the issue resolves
//! it.
//!
//! PagerDuty answers 202 to an accepted event, 400 to an invalid one (a wrong routing key
//! among them: given up), 429 when throttled and 5xx when unwell (both retried).

use serde_json::{Value, json};

use crate::http::Http;
use crate::plugin::{Delivery, DeliveryError, Field, FieldKind, Plugin, SettingError, Settings, SettingsExt};
use crate::Notification;

const FIELDS: &[Field] = &[
    Field { name: "routing_key", kind: FieldKind::Secret, required: true, default: "", help: "the integration key of an Events API v2 integration (32 characters)" },
    Field { name: "url", kind: FieldKind::Url, required: false, default: "\"https://events.pagerduty.com/v2/enqueue\"", help: "the Events API v2 endpoint" },
    crate::http::TIMEOUT_FIELD,
];

/// The severities PagerDuty accepts.
pub const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];

/// Triggers and resolves PagerDuty alerts.
#[derive(Default)]
pub struct PagerDuty {
    http: Http,
}

impl Plugin for PagerDuty {
    fn name(&self) -> &'static str {
        "pagerduty"
    }
    fn description(&self) -> &'static str {
        "triggers a PagerDuty alert per issue (Events API v2), resolved when the issue is resolved"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn validate(&self, s: &Settings) -> Result<(), SettingError> {
        let key = s.text("routing_key").unwrap_or_default();
        if key.len() != 32 || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(SettingError::new("routing_key", "`routing_key` must be the 32 letters and digits of an Events API v2 integration key"));
        }
        Ok(())
    }
    fn resolves(&self) -> bool {
        true
    }
    fn rule_fired<'a>(&'a self, n: &'a Notification, s: &'a Settings) -> Delivery<'a> {
        Box::pin(async move {
            let url = s.text("url").ok_or_else(|| DeliveryError::Permanent("no url".into()))?;
            let key = s.text("routing_key").ok_or_else(|| DeliveryError::Permanent("no routing_key".into()))?;
            let req = self.http.client()?.post(url).json(&event(n, key));
            let action = if n.is_resolve() { "resolve" } else { "trigger" };
            self.http.send(req, s, &format!("PagerDuty {action}")).await.map(drop)
        })
    }
}

/// PagerDuty's severity for a level.
fn severity(level: &str) -> &'static str {
    match level {
        "fatal" | "critical" => "critical",
        "error" => "error",
        "warning" => "warning",
        _ => "info",
    }
}

/// The Events API v2 body for `n`: a trigger, or a resolve of the issue's alert.
pub fn event(n: &Notification, routing_key: &str) -> Value {
    if n.is_resolve() {
        return json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": n.issue_key()});
    }
    let summary: String = format!("[{}] {}: {}", n.project, n.level.to_uppercase(), n.title).chars().filter(|c| !c.is_control()).take(1024).collect();
    let source: String = if n.culprit.trim().is_empty() { n.project.clone() } else { n.culprit.chars().take(255).collect() };
    let mut details = json!({
        "reason": n.reason.describe(),
        "rule": n.rule,
        "culprit": n.culprit,
        "events": n.count,
        "first_seen": crate::notification::rfc3339(n.first_seen),
        "frames": n.frames.iter().map(crate::Frame::describe).collect::<Vec<_>>(),
    });
    for (k, v) in &n.tags {
        details[format!("tag:{k}")] = json!(v);
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": n.issue_key(),
        "payload": {
            "summary": summary,
            "source": source,
            "severity": severity(&n.level),
            "timestamp": crate::notification::rfc3339(n.last_seen),
            "component": n.project,
            "group": n.kind,
            "class": n.reason.name(),
            "custom_details": details,
        },
        "links": [{"href": n.link, "text": "Open the issue in Sentry"}],
        "client": "Sentry",
        "client_url": n.link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::sample;
    use crate::Reason;

    #[test]
    fn trigger_and_resolve_share_the_dedup_key() {
        let n = sample();
        let t = event(&n, "k");
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(t["dedup_key"], "sentry-shop-7");
        assert_eq!(t["payload"]["severity"], "error");
        assert_eq!(t["payload"]["source"], "shop.cart in total");
        assert_eq!(t["payload"]["timestamp"], "2023-11-14T22:14:20Z");
        assert_eq!(t["payload"]["custom_details"]["tag:server"], "web-1");
        assert_eq!(t["links"][0]["href"], n.link);
        let mut r = n.clone();
        r.reason = Reason::Resolved;
        assert_eq!(event(&r, "k"), json!({"routing_key": "k", "event_action": "resolve", "dedup_key": "sentry-shop-7"}));
    }

    #[test]
    fn severities_are_pagerdutys() {
        for level in ["fatal", "error", "warning", "info", "debug", "odd"] {
            assert!(SEVERITIES.contains(&severity(level)), "{level}");
        }
        let mut n = sample();
        n.culprit = String::new();
        assert_eq!(event(&n, "k")["payload"]["source"], "shop", "source is never empty");
    }
}
