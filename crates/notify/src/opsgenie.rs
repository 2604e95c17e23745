//! The Opsgenie plugin: the Alert API. A firing creates an alert whose `alias` names the issue
//! (Opsgenie folds alerts with one open alias into one), and resolving the issue closes it.
//!
//! Opsgenie answers 202 to an accepted request, 401/403 to a wrong key and 422 to an invalid
//! body (given up), 429 when throttled and 5xx when unwell (retried).

use serde_json::{Value, json};

use crate::http::Http;
use crate::plugin::{Delivery, DeliveryError, Field, FieldKind, Plugin, Settings, SettingsExt};
use crate::Notification;

const FIELDS: &[Field] = &[
    Field { name: "api_key", kind: FieldKind::Secret, required: true, default: "", help: "the key of an API integration (sent as `Authorization: GenieKey …`)" },
    Field { name: "url", kind: FieldKind::Url, required: false, default: "\"https://api.opsgenie.com\"", help: "the API's address (\"https://api.eu.opsgenie.com\" for the EU instance)" },
    Field { name: "responders", kind: FieldKind::List, required: false, default: "", help: "teams to notify, by name, for example [\"ops\"]" },
    crate::http::TIMEOUT_FIELD,
];

/// The priorities Opsgenie accepts.
pub const PRIORITIES: &[&str] = &["P1", "P2", "P3", "P4", "P5"];

/// Creates and closes Opsgenie alerts.
#[derive(Default)]
pub struct Opsgenie {
    http: Http,
}

impl Plugin for Opsgenie {
    fn name(&self) -> &'static str {
        "opsgenie"
    }
    fn description(&self) -> &'static str {
        "creates an Opsgenie alert per issue, closed when the issue is resolved"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn resolves(&self) -> bool {
        true
    }
    fn rule_fired<'a>(&'a self, n: &'a Notification, s: &'a Settings) -> Delivery<'a> {
        Box::pin(async move {
            let base = s.text("url").ok_or_else(|| DeliveryError::Permanent("no url".into()))?;
            let key = s.text("api_key").ok_or_else(|| DeliveryError::Permanent("no api_key".into()))?;
            let alias = n.issue_key();
            let (url, body, what) = if n.is_resolve() {
                let mut url = crate::http::join(base, &["v2", "alerts", &alias, "close"])?;
                url.query_pairs_mut().append_pair("identifierType", "alias");
                (url, close(n), "Opsgenie close")
            } else {
                (crate::http::join(base, &["v2", "alerts"])?, alert(n, &s.list("responders")), "Opsgenie create")
            };
            let req = self.http.client()?.post(url).header("Authorization", format!("GenieKey {key}")).json(&body);
            self.http.send(req, s, what).await.map(drop)
        })
    }
}

/// Opsgenie's priority for a level.
fn priority(level: &str) -> &'static str {
    match level {
        "fatal" | "critical" => "P1",
        "error" => "P2",
        "warning" => "P3",
        "info" => "P4",
        _ => "P5",
    }
}

fn cut(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control() || *c == '\n').take(max).collect()
}

/// The body that creates the alert for `n` (limits: message 130, description 15,000
/// characters; tags 50 characters each).
pub fn alert(n: &Notification, responders: &[String]) -> Value {
    let mut description = format!("{}\n{}\n", n.reason.describe(), n.link);
    if !n.culprit.is_empty() {
        description.push_str(&format!("\n{}\n", n.culprit));
    }
    description.push_str(&n.frames_text());
    let mut details = serde_json::Map::new();
    details.insert("project".into(), json!(n.project));
    details.insert("rule".into(), json!(n.rule));
    details.insert("events".into(), json!(n.count.to_string()));
    details.insert("link".into(), json!(n.link));
    for (k, v) in &n.tags {
        details.insert(format!("tag:{k}"), json!(v));
    }
    json!({
        "message": cut(&format!("[{}] {}", n.project, n.title), 130).replace('\n', " "),
        "alias": n.issue_key(),
        "description": cut(&description, 15_000),
        "responders": responders.iter().map(|r| json!({"name": r, "type": "team"})).collect::<Vec<_>>(),
        "tags": ["sentry", cut(&n.project, 50), cut(&n.level, 50)],
        "details": details,
        "entity": cut(&n.culprit, 512),
        "source": "Sentry",
        "priority": priority(&n.level),
    })
}

/// The body that closes the issue's alert.
pub fn close(n: &Notification) -> Value {
    json!({"source": "Sentry", "user": "Sentry", "note": format!("The issue was resolved: {}", n.link)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::sample;

    #[test]
    fn alert_shape() {
        let n = sample();
        let a = alert(&n, &["ops".to_string()]);
        assert_eq!(a["message"], "[shop] ZeroDivisionError: division by zero");
        assert_eq!(a["alias"], "sentry-shop-7");
        assert_eq!(a["priority"], "P2");
        assert_eq!(a["responders"], json!([{"name": "ops", "type": "team"}]));
        assert!(a["description"].as_str().unwrap().contains("shop.cart in total at line 42"));
        assert_eq!(a["details"]["tag:server"], "web-1");
        let mut long = sample();
        long.title = "y".repeat(500);
        assert_eq!(alert(&long, &[])["message"].as_str().unwrap().chars().count(), 130);
        for level in ["fatal", "error", "warning", "info", "debug"] {
            assert!(PRIORITIES.contains(&priority(level)));
        }
    }
}
