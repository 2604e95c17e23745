//! The email plugin: SMTP with STARTTLS, implicit TLS or plain text, optional login, one
//! message per notification with a plain-text and an HTML part. The layout is the seed's email
//! report (Sentry 1.x): the link to the group first, then what happened and the traceback's
//! in-app frames.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::plugin::{Delivery, DeliveryError, Field, FieldKind, Plugin, SettingError, Settings, SettingsExt};
use crate::Notification;

const FIELDS: &[Field] = &[
    Field { name: "host", kind: FieldKind::Text, required: true, default: "", help: "the SMTP server, for example \"smtp.example.com\"" },
    Field { name: "port", kind: FieldKind::Port, required: false, default: "", help: "the SMTP port; unset, 587 for starttls, 465 for tls and 25 for none" },
    Field { name: "tls", kind: FieldKind::Choice(&["starttls", "tls", "none"]), required: false, default: "\"starttls\"", help: "starttls upgrades a plain connection (port 587), tls is encrypted from the start (port 465), none never encrypts (a local relay only)" },
    Field { name: "username", kind: FieldKind::Text, required: false, default: "", help: "the login, when the server wants one" },
    Field { name: "password", kind: FieldKind::Secret, required: false, default: "", help: "the password of `username`" },
    Field { name: "from", kind: FieldKind::Text, required: true, default: "", help: "the sender, for example \"Sentry <sentry@example.com>\"" },
    Field { name: "to", kind: FieldKind::List, required: true, default: "", help: "the recipients, for example [\"ops@example.com\"]" },
    Field { name: "subject_prefix", kind: FieldKind::Text, required: false, default: "\"[Sentry] \"", help: "put before every subject" },
    Field { name: "ca_file", kind: FieldKind::Text, required: false, default: "", help: "a PEM file with a certificate authority to trust besides the usual ones (for a private mail server)" },
    Field { name: "timeout_seconds", kind: FieldKind::Number { min: 1, max: 300 }, required: false, default: "30", help: "how long one attempt may take" },
];

/// Sends mail over SMTP.
#[derive(Default)]
pub struct Email;

impl Plugin for Email {
    fn name(&self) -> &'static str {
        "email"
    }
    fn description(&self) -> &'static str {
        "sends an email (plain text and HTML) over SMTP"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn validate(&self, s: &Settings) -> Result<(), SettingError> {
        let from = s.text("from").unwrap_or_default();
        from.parse::<Mailbox>()
            .map_err(|e| SettingError::new("from", format!("`from` = {from:?} is not an email address ({e}); write it like \"Sentry <sentry@example.com>\"")))?;
        let to = s.list("to");
        if to.is_empty() {
            return Err(SettingError::new("to", "`to` needs at least one address"));
        }
        for addr in &to {
            addr.parse::<Mailbox>()
                .map_err(|e| SettingError::new("to", format!("{addr:?} in `to` is not an email address ({e})")))?;
        }
        if s.text("username").is_some() != s.text("password").is_some() {
            return Err(SettingError::new("username", "set both `username` and `password`, or neither"));
        }
        if let Some(ca) = s.text("ca_file") {
            let pem = std::fs::read(ca).map_err(|e| SettingError::new("ca_file", format!("can't read {ca}: {e}")))?;
            Certificate::from_pem(&pem).map_err(|e| SettingError::new("ca_file", format!("{ca} is not a PEM certificate: {e}")))?;
        }
        Ok(())
    }
    fn rule_fired<'a>(&'a self, n: &'a Notification, settings: &'a Settings) -> Delivery<'a> {
        Box::pin(async move { send(message(n, settings)?, settings).await })
    }
}

/// Sends `digest` to the plugin's recipients, as one message with text and HTML parts.
pub async fn send_digest(digest: &crate::Digest, settings: &Settings) -> Result<(), DeliveryError> {
    let subject = digest.subject(settings.get("subject_prefix").and_then(|v| v.as_str()).unwrap_or("[Sentry] "));
    let id = format!("digest-{}-{}", digest.period.to_lowercase(), digest.to as i64);
    let b = builder(settings, subject, &id)?;
    let message = b
        .multipart(MultiPart::alternative_plain_html(digest.text(), digest.html()))
        .map_err(|e| DeliveryError::Permanent(format!("building the message: {e}")))?;
    send(message, settings).await
}

async fn send(message: Message, settings: &Settings) -> Result<(), DeliveryError> {
    match transport(settings)?.send(message).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(format!("the mail server refused the message: {e}"))),
        Err(e) => Err(DeliveryError::Retry(format!("sending mail through {}: {e}", settings.text("host").unwrap_or("?")))),
    }
}

fn transport(s: &Settings) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
    crate::install_crypto_provider();
    let host = s.text("host").unwrap_or("localhost");
    let mode = s.text("tls").unwrap_or("starttls");
    let port = s.number("port").map(|p| p as u16).unwrap_or(match mode {
        "tls" => 465,
        "none" => 25,
        _ => 587,
    });
    let bad = |e: lettre::transport::smtp::Error| DeliveryError::Permanent(format!("TLS settings: {e}"));
    let params = || -> Result<TlsParameters, DeliveryError> {
        let mut b = TlsParameters::builder(host.to_string());
        if let Some(ca) = s.text("ca_file") {
            let pem = std::fs::read(ca).map_err(|e| DeliveryError::Retry(format!("reading {ca}: {e}")))?;
            b = b.add_root_certificate(Certificate::from_pem(&pem).map_err(bad)?);
        }
        b.build_rustls().map_err(bad)
    };
    let tls = match mode {
        "tls" => Tls::Wrapper(params()?),
        "none" => Tls::None,
        _ => Tls::Required(params()?),
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(s.number("timeout_seconds").unwrap_or(30))));
    if let (Some(user), Some(pass)) = (s.text("username"), s.text("password")) {
        b = b.credentials(Credentials::new(user.to_string(), pass.to_string()));
    }
    Ok(b.build())
}

/// The message for `n`: plain text and HTML alternatives, a Message-ID made from the
/// notification id (the same on every retry, so a receiving server can spot a repeat).
pub fn message(n: &Notification, s: &Settings) -> Result<Message, DeliveryError> {
    let b = builder(s, n.subject(s.get("subject_prefix").and_then(|v| v.as_str()).unwrap_or("[Sentry] ")), &n.id)?;
    b.multipart(MultiPart::alternative_plain_html(text_body(n), html_body(n)))
        .map_err(|e| DeliveryError::Permanent(format!("building the message: {e}")))
}

/// A message from the plugin's sender to its recipients, with its subject and a Message-ID
/// made from `id`.
fn builder(s: &Settings, subject: String, id: &str) -> Result<lettre::message::MessageBuilder, DeliveryError> {
    let bad = |what: &str, e: String| DeliveryError::Permanent(format!("{what}: {e}"));
    let from: Mailbox = s.text("from").unwrap_or_default().parse().map_err(|e| bad("from", format!("{e}")))?;
    let mut b = Message::builder().from(from).subject(subject).message_id(Some(message_id(id)));
    for to in s.list("to") {
        b = b.to(to.parse().map_err(|e| bad("to", format!("{e}")))?);
    }
    Ok(b)
}

fn message_id(id: &str) -> String {
    let clean: String = id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '.' }).collect();
    format!("<{clean}@sentry.notify>")
}

/// The plain-text part.
pub fn text_body(n: &Notification) -> String {
    let mut out = format!("{}\n\n{}: {}\n{}\n\n", n.link, n.level.to_uppercase(), n.title, n.reason.describe());
    out.push_str(&format!("Project:    {}\n", n.project));
    if !n.culprit.is_empty() {
        out.push_str(&format!("Culprit:    {}\n", n.culprit));
    }
    out.push_str(&format!("Events:     {}\n", n.count));
    out.push_str(&format!("First seen: {}\n", utc(n.first_seen)));
    out.push_str(&format!("Last seen:  {}\n", utc(n.last_seen)));
    if !n.frames.is_empty() {
        out.push_str("\nTraceback (innermost in-app frames first):\n");
        out.push_str(&n.frames_text());
    }
    if !n.tags.is_empty() {
        out.push_str("\nTags:\n");
        for (k, v) in &n.tags {
            out.push_str(&format!("  {k} = {v}\n"));
        }
    }
    out.push_str(&format!("\n-- \n{}\n", n.reason.why_sent(&n.rule)));
    out
}

use crate::notification::html_escape as esc;

/// The HTML part.
pub fn html_body(n: &Notification) -> String {
    let mut rows = format!(
        "<tr><th align=\"left\">Project</th><td>{}</td></tr><tr><th align=\"left\">Culprit</th><td>{}</td></tr>\
         <tr><th align=\"left\">Events</th><td>{}</td></tr><tr><th align=\"left\">First seen</th><td>{}</td></tr>\
         <tr><th align=\"left\">Last seen</th><td>{}</td></tr>",
        esc(&n.project), esc(&n.culprit), n.count, utc(n.first_seen), utc(n.last_seen)
    );
    for (k, v) in &n.tags {
        rows.push_str(&format!("<tr><th align=\"left\">{}</th><td>{}</td></tr>", esc(k), esc(v)));
    }
    let mut frames = String::new();
    if !n.frames.is_empty() {
        frames.push_str("<h3>Traceback (innermost in-app frames first)</h3><pre>");
        frames.push_str(&esc(&n.frames_text()));
        frames.push_str("</pre>");
    }
    format!(
        "<!DOCTYPE html><html><body style=\"font-family: sans-serif\">\
         <h2><a href=\"{link}\">{level}: {title}</a></h2><p>{reason}</p>\
         <table cellpadding=\"4\">{rows}</table>{frames}\
         <p><a href=\"{link}\">Open the issue in Sentry</a></p>\
         <p style=\"color: #888\">{why}</p></body></html>",
        link = esc(&n.link),
        level = esc(&n.level.to_uppercase()),
        title = esc(&n.title),
        reason = esc(&n.reason.describe()).replace('\n', "<br>"),
        why = esc(&n.reason.why_sent(&n.rule)),
    )
}

/// `2024-05-01 12:00:00 UTC` for unix seconds.
fn utc(secs: f64) -> String {
    let iso = crate::notification::rfc3339(secs);
    format!("{} UTC", iso.trim_end_matches('Z').replace('T', " "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::sample;
    use crate::plugin::check_settings;

    fn settings(toml_like: serde_json::Value) -> Result<Settings, SettingError> {
        check_settings(&Email, toml_like.as_object().unwrap())
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000.0), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn settings_are_checked() {
        let ok = settings(serde_json::json!({"host": "localhost", "from": "s@example.com", "to": ["a@example.com"]})).unwrap();
        assert_eq!(ok["tls"], "starttls");
        let e = settings(serde_json::json!({"host": "h", "from": "not an address", "to": ["a@example.com"]})).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("from"));
        let e = settings(serde_json::json!({"host": "h", "from": "s@example.com", "to": ["a@example.com"], "tls": "ssl"})).unwrap_err();
        assert_eq!(e.problem, "`tls` must be one of \"starttls\", \"tls\", \"none\"");
        let e = settings(serde_json::json!({"host": "h", "from": "s@example.com", "to": ["x"], "hots": 1})).unwrap_err();
        assert!(e.problem.starts_with("unknown setting `hots` for the email plugin; valid settings are: host, port"), "{e}");
        let e = settings(serde_json::json!({"from": "s@example.com", "to": ["a@example.com"]})).unwrap_err();
        assert!(e.problem.contains("needs `host`"), "{e}");
        let e = settings(serde_json::json!({"host": "h", "from": "s@example.com", "to": ["a@example.com"], "username": "u"})).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("username"));
    }

    #[test]
    fn message_has_both_parts_link_and_frames() {
        let s = settings(serde_json::json!({"host": "localhost", "from": "Sentry <s@example.com>", "to": ["a@example.com", "b@example.com"]})).unwrap();
        let raw = String::from_utf8(message(&sample(), &s).unwrap().formatted()).unwrap();
        assert!(raw.contains("Subject: [Sentry] ERROR: ZeroDivisionError: division by zero"), "{raw}");
        assert!(raw.contains("Message-ID: <rule.errors.group.7.activity.12@sentry.notify>"), "{raw}");
        assert!(raw.contains("text/plain") && raw.contains("text/html"), "{raw}");
        let text = text_body(&sample());
        assert!(text.starts_with("https://sentry.example.com/projects/shop/groups/7/\n"), "{text}");
        assert!(text.contains("shop.cart in total at line 42"));
        let html = html_body(&sample());
        assert!(html.contains("<a href=\"https://sentry.example.com/projects/shop/groups/7/\">"));
    }
}
