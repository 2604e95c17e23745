//! The Matrix plugin: posts to a room through the client-server API of any homeserver
//! (Synapse, Dendrite, Conduit…), as the account whose access token it is given — a plain-text
//! body and an HTML `formatted_body` with the link. A room alias (`#ops:example.org`) is
//! resolved to its id first. The transaction id is the notification's id, so a retried
//! attempt that did reach the homeserver is not posted twice.
//!
//! The homeserver answers 401 to a wrong token and 403 when the account is not in the room
//! (given up), 429 when rate-limited and 5xx when unwell (retried).

use serde_json::{Value, json};

use crate::http::{Http, join};
use crate::notification::html_escape as esc;
use crate::plugin::{Delivery, DeliveryError, Field, FieldKind, Plugin, SettingError, Settings, SettingsExt};
use crate::Notification;

const FIELDS: &[Field] = &[
    Field { name: "homeserver", kind: FieldKind::Url, required: true, default: "", help: "the homeserver's client API address, for example \"https://matrix.example.org\"" },
    Field { name: "access_token", kind: FieldKind::Secret, required: true, default: "", help: "the access token of the account that posts (it must be in the room)" },
    Field { name: "room", kind: FieldKind::Text, required: true, default: "", help: "the room's id (\"!abc:example.org\") or alias (\"#ops:example.org\")" },
    crate::http::TIMEOUT_FIELD,
];

/// Posts to Matrix rooms.
#[derive(Default)]
pub struct Matrix {
    http: Http,
}

impl Plugin for Matrix {
    fn name(&self) -> &'static str {
        "matrix"
    }
    fn description(&self) -> &'static str {
        "posts the issue with its link in a Matrix room"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn validate(&self, s: &Settings) -> Result<(), SettingError> {
        let room = s.text("room").unwrap_or_default();
        let ok = room.starts_with(['!', '#']) && room.find(':').is_some_and(|i| i > 1 && i + 1 < room.len()) && !room.contains(char::is_whitespace);
        if ok {
            Ok(())
        } else {
            Err(SettingError::new("room", format!("`room` = {room:?} is neither a room id (\"!abc:example.org\") nor an alias (\"#ops:example.org\")")))
        }
    }
    fn rule_fired<'a>(&'a self, n: &'a Notification, s: &'a Settings) -> Delivery<'a> {
        Box::pin(async move {
            let homeserver = s.text("homeserver").ok_or_else(|| DeliveryError::Permanent("no homeserver".into()))?;
            let token = s.text("access_token").ok_or_else(|| DeliveryError::Permanent("no access_token".into()))?;
            let room = s.text("room").unwrap_or_default();
            let client = self.http.client()?;
            let room_id = if room.starts_with('#') {
                let url = join(homeserver, &["_matrix", "client", "v3", "directory", "room", room])?;
                let resp = self.http.send(client.get(url).bearer_auth(token), s, &format!("Matrix: looking up {room}")).await?;
                let body: Value = resp.json().await.map_err(|e| DeliveryError::Retry(format!("Matrix: looking up {room}: {e}")))?;
                body["room_id"].as_str().map(str::to_string).ok_or_else(|| DeliveryError::Retry(format!("Matrix: {room} has no room id")))?
            } else {
                room.to_string()
            };
            let txn: String = n.id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect();
            let url = join(homeserver, &["_matrix", "client", "v3", "rooms", &room_id, "send", "m.room.message", &txn])?;
            let req = client.put(url).bearer_auth(token).json(&message(n));
            self.http.send(req, s, &format!("Matrix: posting in {room}")).await.map(drop)
        })
    }
}

/// The `m.room.message` content: a notice (bots post notices), in text and HTML.
pub fn message(n: &Notification) -> Value {
    let title: String = n.title.chars().filter(|c| !c.is_control()).take(300).collect();
    let mut body = format!("[{}] {}: {}\n{}\n{}", n.project, n.level.to_uppercase(), title, n.reason.describe(), n.link);
    let mut html = format!(
        "<p><strong>[{}] {}:</strong> <a href=\"{}\">{}</a></p><p>{}</p>",
        esc(&n.project),
        esc(&n.level.to_uppercase()),
        esc(&n.link),
        esc(&title),
        esc(&n.reason.describe())
    );
    if !n.frames.is_empty() {
        body.push_str(&format!("\n{}", n.frames_text().trim_end()));
        html.push_str(&format!("<pre><code>{}</code></pre>", esc(n.frames_text().trim_end())));
    }
    json!({"msgtype": "m.notice", "body": body, "format": "org.matrix.custom.html", "formatted_body": html})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::sample;
    use crate::plugin::check_settings;

    #[test]
    fn message_in_text_and_html() {
        let mut n = sample();
        n.title = "KeyError: '<script>'".into();
        let m = message(&n);
        assert_eq!(m["msgtype"], "m.notice");
        assert!(m["body"].as_str().unwrap().starts_with("[shop] ERROR: KeyError: '<script>'\nNew issue\nhttps://"), "{m}");
        let html = m["formatted_body"].as_str().unwrap();
        assert!(html.contains("<a href=\"https://sentry.example.com/projects/shop/groups/7/\">KeyError: '&lt;script&gt;'</a>"), "{html}");
        assert!(html.contains("shop.cart in total at line 42"), "{html}");
    }

    #[test]
    fn room_must_be_an_id_or_alias() {
        let check = |room: &str| {
            let v = json!({"homeserver": "https://m.example.org", "access_token": "t", "room": room});
            check_settings(&Matrix::default(), v.as_object().unwrap()).map(drop)
        };
        assert!(check("!abc:example.org").is_ok());
        assert!(check("#ops:example.org").is_ok());
        assert_eq!(check("ops").unwrap_err().key.as_deref(), Some("room"));
        assert!(check("#ops:").is_err());
    }
}
