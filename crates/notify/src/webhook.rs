//! The webhook plugin: an HTTP POST of JSON per notification, in one of five shapes — the
//! generic one (the [`Notification`] itself, signed with an HMAC), or what Slack, Mattermost,
//! Discord and Microsoft Teams incoming webhooks expect.
//!
//! Every request carries `X-Sentry-Delivery: <notification id>` (the same on every retry, for
//! receivers that deduplicate), `X-Sentry-Reason: <new_group|regression|frequency|slow|test>`
//! and, when `secret` is set, `X-Sentry-Signature: sha256=<hex HMAC-SHA256 of the body>`.

use serde_json::{Value, json};

use crate::plugin::{Delivery, DeliveryError, Field, FieldKind, Plugin, Settings, SettingsExt};
use crate::Notification;

/// The payload shapes, as written in `format`.
pub const FORMATS: &[&str] = &["generic", "slack", "mattermost", "discord", "teams"];

const FIELDS: &[Field] = &[
    Field { name: "url", kind: FieldKind::Url, required: true, default: "", help: "the address to POST to, for example \"https://hooks.slack.com/services/…\"" },
    Field { name: "format", kind: FieldKind::Choice(FORMATS), required: false, default: "\"generic\"", help: "the JSON shape of the body" },
    Field { name: "secret", kind: FieldKind::Secret, required: false, default: "", help: "signs every request: X-Sentry-Signature: sha256=<hex HMAC-SHA256 of the body>" },
    crate::http::TIMEOUT_FIELD,
];

/// POSTs JSON to a URL.
#[derive(Default)]
pub struct Webhook {
    http: crate::http::Http,
}

impl Plugin for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }
    fn description(&self) -> &'static str {
        "POSTs JSON to a URL: generic (signed), Slack, Mattermost, Discord or Microsoft Teams"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn rule_fired<'a>(&'a self, n: &'a Notification, settings: &'a Settings) -> Delivery<'a> {
        Box::pin(async move {
            let url = settings.text("url").ok_or_else(|| DeliveryError::Permanent("no url".into()))?;
            let format = settings.text("format").unwrap_or("generic");
            let body = serde_json::to_vec(&payload(n, format)).map_err(|e| DeliveryError::Permanent(e.to_string()))?;
            let mut req = self
                .http
                .client()?
                .post(url)
                .header("Content-Type", "application/json")
                .header("X-Sentry-Delivery", &n.id)
                .header("X-Sentry-Reason", n.reason.name());
            if let Some(secret) = settings.text("secret") {
                req = req.header("X-Sentry-Signature", signature(secret.as_bytes(), &body));
            }
            // The path of a chat webhook is its secret (Slack, Discord): errors name the host only.
            let host = reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
            self.http.send(req.body(body), settings, &format!("POST to {host}")).await.map(drop)
        })
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    format!("sha256={}", hex::encode(ring::hmac::sign(&key, body).as_ref()))
}

/// The body for `format` (one of [`FORMATS`]; anything else is the generic shape).
pub fn payload(n: &Notification, format: &str) -> Value {
    match format {
        "slack" => slack(n),
        "mattermost" => mattermost(n),
        "discord" => discord(n),
        "teams" => teams(n),
        _ => serde_json::to_value(n).unwrap_or(Value::Null),
    }
}

/// Colour per level (red for errors, orange for warnings, blue otherwise).
fn color(level: &str) -> u32 {
    match level {
        "fatal" | "error" => 0xE0_3E_2F,
        "warning" => 0xF5_A6_23,
        _ => 0x2F_80_ED,
    }
}

fn details(n: &Notification) -> String {
    let mut text = n.reason.describe();
    if !n.culprit.is_empty() {
        text.push_str(&format!("\n{}", n.culprit));
    }
    if !n.frames.is_empty() {
        text.push_str(&format!("\n{}", n.frames_text().trim_end()));
    }
    text
}

/// Slack's legacy attachment shape (also what most "Slack-compatible" receivers take).
fn slack(n: &Notification) -> Value {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    json!({
        "text": format!("[{}] {}: <{}|{}>", escape(&n.project), n.level.to_uppercase(), n.link, escape(&n.title)),
        "attachments": [{
            "color": format!("#{:06x}", color(&n.level)),
            "title": n.title,
            "title_link": n.link,
            "text": details(n),
            "fields": [
                {"title": "Project", "value": n.project, "short": true},
                {"title": "Level", "value": n.level, "short": true},
                {"title": "Events", "value": n.count.to_string(), "short": true},
                {"title": "Rule", "value": n.rule, "short": true},
            ],
        }],
    })
}

/// Mattermost: Slack-style attachments, Markdown links in `text`.
fn mattermost(n: &Notification) -> Value {
    let title = n.title.replace('[', "\\[").replace(']', "\\]");
    json!({
        "username": "Sentry",
        "text": format!("[{}] {}: [{}]({})", n.project, n.level.to_uppercase(), title, n.link),
        "attachments": [{
            "fallback": n.one_line(),
            "color": format!("#{:06x}", color(&n.level)),
            "title": n.title,
            "title_link": n.link,
            "text": details(n),
            "fields": [
                {"title": "Project", "value": n.project, "short": true},
                {"title": "Events", "value": n.count.to_string(), "short": true},
            ],
        }],
    })
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// Discord: `content` plus one embed (title ≤ 256, description ≤ 4096 characters).
fn discord(n: &Notification) -> Value {
    json!({
        "username": "Sentry",
        "content": cut(&format!("[{}] {}: {}", n.project, n.level.to_uppercase(), n.title), 2000),
        "embeds": [{
            "title": cut(&n.title, 256),
            "url": n.link,
            "description": cut(&details(n), 4096),
            "color": color(&n.level),
            "fields": [
                {"name": "Project", "value": cut(&n.project, 1024), "inline": true},
                {"name": "Level", "value": n.level, "inline": true},
                {"name": "Events", "value": n.count.to_string(), "inline": true},
            ],
        }],
    })
}

/// Microsoft Teams (Workflows / Power Automate webhooks): a message with one Adaptive Card.
fn teams(n: &Notification) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
                     "text": format!("[{}] {}: {}", n.project, n.level.to_uppercase(), n.title)},
                    {"type": "TextBlock", "wrap": true, "text": details(n)},
                    {"type": "FactSet", "facts": [
                        {"title": "Project", "value": n.project},
                        {"title": "Events", "value": n.count.to_string()},
                        {"title": "Rule", "value": n.rule},
                    ]},
                ],
                "actions": [{"type": "Action.OpenUrl", "title": "Open in Sentry", "url": n.link}],
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::sample;

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn generic_is_the_notification() {
        let n = sample();
        let body = payload(&n, "generic");
        assert_eq!(serde_json::from_value::<Notification>(body.clone()).unwrap(), n);
        assert_eq!(body["reason"]["type"], "new_group");
        assert_eq!(body["frames"][0]["function"], "total");
    }

    #[test]
    fn slack_shape() {
        let body = payload(&sample(), "slack");
        assert_eq!(
            body["text"],
            "[shop] ERROR: <https://sentry.example.com/projects/shop/groups/7/|ZeroDivisionError: division by zero>"
        );
        let a = &body["attachments"][0];
        assert_eq!(a["title_link"], "https://sentry.example.com/projects/shop/groups/7/");
        assert_eq!(a["color"], "#e03e2f");
        assert!(a["text"].as_str().unwrap().contains("shop.cart in total at line 42"));
        assert_eq!(a["fields"][2]["value"], "3");
    }

    #[test]
    fn mattermost_shape() {
        let body = payload(&sample(), "mattermost");
        assert_eq!(
            body["text"],
            "[shop] ERROR: [ZeroDivisionError: division by zero](https://sentry.example.com/projects/shop/groups/7/)"
        );
        assert_eq!(body["username"], "Sentry");
        assert_eq!(body["attachments"][0]["title_link"], "https://sentry.example.com/projects/shop/groups/7/");
    }

    #[test]
    fn discord_shape_respects_limits() {
        let mut n = sample();
        n.title = "x".repeat(300);
        let body = payload(&n, "discord");
        let embed = &body["embeds"][0];
        assert_eq!(embed["title"].as_str().unwrap().chars().count(), 256);
        assert_eq!(embed["url"], n.link);
        assert_eq!(embed["color"], 0xE03E2F);
        assert!(body["content"].as_str().unwrap().starts_with("[shop] ERROR: xxx"));
    }

    #[test]
    fn teams_shape_is_an_adaptive_card() {
        let body = payload(&sample(), "teams");
        assert_eq!(body["type"], "message");
        let card = &body["attachments"][0];
        assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(card["content"]["actions"][0]["url"], "https://sentry.example.com/projects/shop/groups/7/");
    }
}
