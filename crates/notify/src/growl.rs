//! The Growl plugin: GNTP 1.0, the network protocol of Growl and its successors (Growl for
//! Windows, Snarl, Growl-compatible daemons on Linux). The application registers once per
//! receiver (again when the receiver forgot it), then each notification is one NOTIFY with
//! the title, a line of text, a priority from the level and the issue's link as the click
//! target. With a password, every message carries its SHA-256 key hash (not encrypted: GNTP's
//! encryption is optional and rarely supported).
//!
//! A receiver that answers `-ERROR` with 400 (not authorised: a wrong password) or 3xx (the
//! request is wrong) is given up on; a receiver that is down, slow, or answers 5xx is retried.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::plugin::{Delivery, DeliveryError, Field, FieldKind, Plugin, Settings, SettingsExt};
use crate::Notification;

const FIELDS: &[Field] = &[
    Field { name: "host", kind: FieldKind::Text, required: true, default: "", help: "the machine running Growl (or a GNTP receiver), for example \"desk-42.example.com\"" },
    Field { name: "port", kind: FieldKind::Port, required: false, default: "23053", help: "the GNTP port" },
    Field { name: "password", kind: FieldKind::Secret, required: false, default: "", help: "the password set in Growl's network settings, if any" },
    crate::http::TIMEOUT_FIELD,
];

const APP: &str = "Sentry";
/// The one notification type Sentry registers.
const KIND: &str = "issue";
/// The longest answer read from a receiver.
const MAX_ANSWER: usize = 16 * 1024;

/// Sends GNTP notifications, registering with each receiver once.
#[derive(Default)]
pub struct Growl {
    /// The receivers (host, port) that accepted the registration.
    registered: Mutex<HashSet<(String, u16)>>,
}

impl Plugin for Growl {
    fn name(&self) -> &'static str {
        "growl"
    }
    fn description(&self) -> &'static str {
        "shows a Growl notification on a desktop over the network (GNTP)"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn rule_fired<'a>(&'a self, n: &'a Notification, s: &'a Settings) -> Delivery<'a> {
        Box::pin(async move {
            let host = s.text("host").unwrap_or("localhost").to_string();
            let port = s.number("port").map_or(23053, |p| p as u16);
            let timeout = Duration::from_secs(s.number("timeout_seconds").unwrap_or(10));
            let password = s.text("password");
            let receiver = (host.clone(), port);
            let mut registered_now = false;
            if !self.is_registered(&receiver) {
                exchange(&host, port, timeout, &message("REGISTER", &register_headers(), password)).await?;
                self.registered.lock().unwrap_or_else(|p| p.into_inner()).insert(receiver.clone());
                registered_now = true;
            }
            let notify = message("NOTIFY", &notify_headers(n), password);
            match exchange(&host, port, timeout, &notify).await {
                // The receiver restarted and forgot us: register again, once.
                Err(Answer::Refused(code, _)) if !registered_now && (code == 401 || code == 402) => {
                    self.registered.lock().unwrap_or_else(|p| p.into_inner()).remove(&receiver);
                    exchange(&host, port, timeout, &message("REGISTER", &register_headers(), password)).await?;
                    self.registered.lock().unwrap_or_else(|p| p.into_inner()).insert(receiver);
                    exchange(&host, port, timeout, &notify).await.map_err(DeliveryError::from)
                }
                other => other.map_err(DeliveryError::from),
            }
        })
    }
}

impl Growl {
    fn is_registered(&self, receiver: &(String, u16)) -> bool {
        self.registered.lock().unwrap_or_else(|p| p.into_inner()).contains(receiver)
    }
}

/// What went wrong in one exchange.
#[derive(Debug)]
enum Answer {
    /// Connecting, writing or reading failed, or took too long.
    Io(String),
    /// `-ERROR` with its code and description.
    Refused(u32, String),
}

impl From<Answer> for DeliveryError {
    fn from(a: Answer) -> DeliveryError {
        match a {
            Answer::Io(e) => DeliveryError::Retry(e),
            // 2xx: timed out or network failure at the receiver's side; 5xx: its own trouble.
            Answer::Refused(code, desc) if !(300..500).contains(&code) => DeliveryError::Retry(format!("GNTP error {code}: {desc}")),
            Answer::Refused(400, desc) => DeliveryError::Permanent(format!("GNTP error 400 (not authorised: check the password): {desc}")),
            Answer::Refused(code, desc) => DeliveryError::Permanent(format!("GNTP error {code}: {desc}")),
        }
    }
}

/// One header value on one line.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

fn register_headers() -> Vec<(&'static str, String)> {
    vec![("Application-Name", APP.into()), ("Notifications-Count", "1".into())]
}

fn notify_headers(n: &Notification) -> Vec<(&'static str, String)> {
    let priority = match n.level.as_str() {
        "fatal" | "critical" => 2,
        "error" => 1,
        "warning" => 0,
        "info" => -1,
        _ => -2,
    };
    let mut text = n.reason.describe();
    if !n.culprit.is_empty() {
        text.push_str(&format!(" — {}", n.culprit));
    }
    vec![
        ("Application-Name", APP.into()),
        ("Notification-Name", KIND.into()),
        ("Notification-ID", one_line(&n.id)),
        ("Notification-Title", one_line(&format!("[{}] {}: {}", n.project, n.level.to_uppercase(), n.title))),
        ("Notification-Text", one_line(&text)),
        ("Notification-Priority", priority.to_string()),
        ("Notification-Coalescing-ID", n.issue_key()),
        ("Notification-Callback-Target", one_line(&n.link)),
    ]
}

/// A whole GNTP message: the information line (with the key hash when there is a password),
/// the headers, and for a REGISTER the one notification type.
fn message(kind: &str, headers: &[(&str, String)], password: Option<&str>) -> Vec<u8> {
    let mut out = format!("GNTP/1.0 {kind} NONE");
    if let Some(password) = password {
        let mut salt = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt).expect("the system's random numbers");
        let _ = write!(out, " SHA256:{}", key_hash(password, &salt));
    }
    out.push_str("\r\n");
    for (k, v) in headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    out.push_str("\r\n");
    if kind == "REGISTER" {
        let _ = write!(out, "Notification-Name: {KIND}\r\nNotification-Display-Name: Sentry issue\r\nNotification-Enabled: True\r\n\r\n");
    }
    out.into_bytes()
}

/// `KEYHASH.SALT` in upper-case hex: key = SHA256(password + salt), key hash = SHA256(key).
fn key_hash(password: &str, salt: &[u8]) -> String {
    let mut basis = password.as_bytes().to_vec();
    basis.extend_from_slice(salt);
    let key = ring::digest::digest(&ring::digest::SHA256, &basis);
    let hash = ring::digest::digest(&ring::digest::SHA256, key.as_ref());
    format!("{}.{}", hex::encode_upper(hash.as_ref()), hex::encode_upper(salt))
}

/// Sends one message on a fresh connection and reads the answer.
async fn exchange(host: &str, port: u16, timeout: Duration, msg: &[u8]) -> Result<(), Answer> {
    let run = async {
        let mut conn = TcpStream::connect((host, port)).await.map_err(|e| Answer::Io(format!("GNTP {host}:{port}: {e}")))?;
        conn.write_all(msg).await.map_err(|e| Answer::Io(format!("GNTP {host}:{port}: {e}")))?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 2048];
        while !answer.ends_with(b"\r\n\r\n") && answer.len() < MAX_ANSWER {
            let got = conn.read(&mut buf).await.map_err(|e| Answer::Io(format!("GNTP {host}:{port}: {e}")))?;
            if got == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..got]);
        }
        parse_answer(&String::from_utf8_lossy(&answer))
    };
    tokio::time::timeout(timeout, run).await.map_err(|_| Answer::Io(format!("GNTP {host}:{port}: no answer within {timeout:?}")))?
}

fn parse_answer(text: &str) -> Result<(), Answer> {
    let mut lines = text.split("\r\n");
    let info = lines.next().unwrap_or_default();
    let header = |name: &str| {
        text.split("\r\n").find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string()))
    };
    match info.split_whitespace().nth(1) {
        Some("-OK") => Ok(()),
        Some("-ERROR") => {
            let code = header("Error-Code").and_then(|c| c.parse().ok()).unwrap_or(500);
            Err(Answer::Refused(code, header("Error-Description").unwrap_or_default()))
        }
        _ => Err(Answer::Io(format!("not a GNTP answer: {:?}", info.chars().take(80).collect::<String>()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::sample;

    #[test]
    fn key_hash_is_sha256_of_sha256_of_password_and_salt() {
        // sha256(sha256(b"secret" + bytes.fromhex("0102"))) computed independently.
        assert_eq!(key_hash("secret", &[1, 2]), "A12A36CD810886FC4B4F93200DCE6F0227FE19A57EEAB1A3770CA122F0057E26.0102");
    }

    #[test]
    fn messages_and_answers() {
        let m = String::from_utf8(message("NOTIFY", &notify_headers(&sample()), None)).unwrap();
        assert!(m.starts_with("GNTP/1.0 NOTIFY NONE\r\nApplication-Name: Sentry\r\nNotification-Name: issue\r\n"), "{m}");
        assert!(m.contains("Notification-Title: [shop] ERROR: ZeroDivisionError: division by zero\r\n"), "{m}");
        assert!(m.contains("Notification-Callback-Target: https://sentry.example.com/projects/shop/groups/7/\r\n"), "{m}");
        assert!(m.ends_with("\r\n\r\n"));
        let r = String::from_utf8(message("REGISTER", &register_headers(), Some("pw"))).unwrap();
        assert!(r.starts_with("GNTP/1.0 REGISTER NONE SHA256:"), "{r}");
        assert!(r.ends_with("Notification-Enabled: True\r\n\r\n"), "{r}");
        assert!(parse_answer("GNTP/1.0 -OK NONE\r\nResponse-Action: NOTIFY\r\n\r\n").is_ok());
        let err = parse_answer("GNTP/1.0 -ERROR NONE\r\nError-Code: 400\r\nError-Description: Invalid Hash\r\n\r\n").unwrap_err();
        assert!(matches!(DeliveryError::from(err), DeliveryError::Permanent(e) if e.contains("Invalid Hash")));
        assert!(matches!(DeliveryError::from(Answer::Refused(500, "x".into())), DeliveryError::Retry(_)));
    }
}
