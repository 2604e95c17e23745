//! The ntfy plugin: a push notification to a topic of an ntfy server (ntfy.sh or one's own),
//! published as JSON to the server's root with the topic named in the body — title, message,
//! priority from the level, tags (shown as emoji) and the link to open on a click.
//!
//! ntfy answers 200 to a published message, 401/403 to a missing or wrong token (given up),
//! 429 when the topic is over its rate (retried).

use serde_json::{Value, json};

use crate::http::Http;
use crate::plugin::{Delivery, DeliveryError, Field, FieldKind, Plugin, SettingError, Settings, SettingsExt};
use crate::Notification;

const FIELDS: &[Field] = &[
    Field { name: "url", kind: FieldKind::Url, required: true, default: "", help: "the topic's address, for example \"https://ntfy.sh/my-alerts\"" },
    Field { name: "token", kind: FieldKind::Secret, required: false, default: "", help: "an access token (sent as `Authorization: Bearer …`), for topics that need one" },
    crate::http::TIMEOUT_FIELD,
];

/// Publishes to an ntfy topic.
#[derive(Default)]
pub struct Ntfy {
    http: Http,
}

impl Plugin for Ntfy {
    fn name(&self) -> &'static str {
        "ntfy"
    }
    fn description(&self) -> &'static str {
        "sends a push notification to an ntfy topic, with the issue's link to open"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn validate(&self, s: &Settings) -> Result<(), SettingError> {
        topic(s.text("url").unwrap_or_default()).map(drop).map_err(|e| SettingError::new("url", e))
    }
    fn rule_fired<'a>(&'a self, n: &'a Notification, s: &'a Settings) -> Delivery<'a> {
        Box::pin(async move {
            let (root, topic) = topic(s.text("url").unwrap_or_default()).map_err(DeliveryError::Permanent)?;
            let mut req = self.http.client()?.post(root).json(&message(n, &topic));
            if let Some(token) = s.text("token") {
                req = req.bearer_auth(token);
            }
            self.http.send(req, s, &format!("ntfy topic {topic}")).await.map(drop)
        })
    }
}

/// The server's root URL and the topic, from a topic URL.
fn topic(url: &str) -> Result<(String, String), String> {
    let bad = || format!("`url` = {url:?} is not a topic's address; write it like \"https://ntfy.sh/my-alerts\"");
    let u = reqwest::Url::parse(url).map_err(|_| bad())?;
    let segments: Vec<&str> = u.path_segments().map(|s| s.filter(|p| !p.is_empty()).collect()).unwrap_or_default();
    let Some((topic, rest)) = segments.split_last() else { return Err(bad()) };
    if topic.len() > 64 || !topic.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || u.query().is_some() {
        return Err(bad());
    }
    let mut root = u.clone();
    root.set_path(&rest.iter().map(|p| format!("{p}/")).collect::<String>());
    Ok((root.to_string(), topic.to_string()))
}

/// ntfy's priority (1 min … 5 max) for a level.
fn priority(level: &str) -> u8 {
    match level {
        "fatal" | "critical" => 5,
        "error" => 4,
        "warning" => 3,
        "info" => 3,
        _ => 2,
    }
}

/// The JSON message for `topic`.
pub fn message(n: &Notification, topic: &str) -> Value {
    let emoji = match n.level.as_str() {
        "fatal" | "critical" | "error" => "rotating_light",
        "warning" => "warning",
        _ => "information_source",
    };
    let mut text = n.reason.describe();
    if !n.culprit.is_empty() {
        text.push_str(&format!("\n{}", n.culprit));
    }
    json!({
        "topic": topic,
        "title": format!("[{}] {}: {}", n.project, n.level.to_uppercase(), n.title).chars().filter(|c| !c.is_control()).take(250).collect::<String>(),
        "message": text,
        "priority": priority(&n.level),
        "tags": [emoji, n.project],
        "click": n.link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::sample;

    #[test]
    fn topic_urls() {
        assert_eq!(topic("https://ntfy.sh/alerts").unwrap(), ("https://ntfy.sh/".into(), "alerts".into()));
        assert_eq!(topic("http://127.0.0.1:8080/ntfy/shop-ops/").unwrap(), ("http://127.0.0.1:8080/ntfy/".into(), "shop-ops".into()));
        assert!(topic("https://ntfy.sh/").is_err());
        assert!(topic("https://ntfy.sh/a b").is_err());
    }

    #[test]
    fn message_shape() {
        let m = message(&sample(), "ops");
        assert_eq!(m["topic"], "ops");
        assert_eq!(m["title"], "[shop] ERROR: ZeroDivisionError: division by zero");
        assert_eq!(m["priority"], 4);
        assert_eq!(m["tags"], json!(["rotating_light", "shop"]));
        assert_eq!(m["click"], sample().link);
    }
}
