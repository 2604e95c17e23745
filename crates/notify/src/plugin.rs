//! The plugin API: one type implementing [`Plugin`] is one plugin — its name, the settings it
//! takes (a declared schema, checked here for every plugin alike, plus the plugin's own
//! [`Plugin::validate`]), and its hooks.

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

use crate::Notification;

/// A plugin's settings: its `[plugins.<name>]` section merged with a rule action's own
/// settings, checked against its [`Field`]s, with defaults filled in.
pub type Settings = Map<String, Value>;

/// What [`Plugin::rule_fired`] returns: the future of one delivery attempt.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// A reporting extension. Built-in plugins are listed in [`crate::registry`]; adding one
/// touches nothing but that list.
///
/// Hooks other than [`rule_fired`](Plugin::rule_fired) are informational and best-effort: they
/// run on the notification engine's task and must return quickly. Deliveries go through the
/// durable outbox and are retried, so `rule_fired` may run more than once for one firing when an
/// attempt fails; [`Notification::id`] is the same each time, for receivers that deduplicate.
pub trait Plugin: Send + Sync + 'static {
    /// The name used in `[plugins.<name>]` and in rule actions.
    fn name(&self) -> &'static str;
    /// One sentence for `sentry notify` listings and config errors.
    fn description(&self) -> &'static str;
    /// The settings this plugin takes.
    fn fields(&self) -> &'static [Field];
    /// Checks that go beyond each field's type (addresses that must parse, settings that
    /// depend on each other). Called after the fields were checked and defaults filled in.
    fn validate(&self, _settings: &Settings) -> Result<(), SettingError> {
        Ok(())
    }
    /// An event was stored (best-effort, not durable).
    fn event_stored(&self, _event: &EventInfo) {}
    /// A group was created (best-effort, not durable; rules deliver through `rule_fired`).
    fn group_created(&self, _notification: &Notification) {}
    /// A resolved group had a new event (best-effort, not durable).
    fn group_regressed(&self, _notification: &Notification) {}
    /// Whether this plugin closes what it opened when the issue is resolved (an incident, an
    /// alert). When true, resolving an issue sends a notification with
    /// [`Reason::Resolved`](crate::Reason::Resolved) through [`rule_fired`](Plugin::rule_fired)
    /// to this plugin's actions of every rule that fired for the issue.
    fn resolves(&self) -> bool {
        false
    }
    /// An alert rule fired with this plugin as an action: send the message.
    fn rule_fired<'a>(&'a self, notification: &'a Notification, settings: &'a Settings) -> Delivery<'a>;
}

/// A stored event, as [`Plugin::event_stored`] sees it.
#[derive(Clone, Debug)]
pub struct EventInfo {
    pub project: String,
    pub group_id: i64,
    pub event_id: String,
    pub kind: String,
    pub level: String,
}

/// Why a delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying later: the peer is down, busy or answered with a temporary error.
    #[error("{0}")]
    Retry(String),
    /// Retrying can't help: the peer refused the message for good (a bad address, a 4xx).
    #[error("{0}")]
    Permanent(String),
}

/// A settings problem: which key (when one is to blame) and what is wrong, in plain words.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{problem}")]
pub struct SettingError {
    pub key: Option<String>,
    pub problem: String,
}

impl SettingError {
    pub fn new(key: &str, problem: impl Into<String>) -> SettingError {
        SettingError { key: Some(key.to_string()), problem: problem.into() }
    }
}

/// One setting of a plugin.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
    /// Must be given (in the plugin's section or in every action that uses it).
    pub required: bool,
    /// The default as a TOML/JSON literal (`"587"`, `"\"starttls\""`), or empty for none.
    pub default: &'static str,
    pub help: &'static str,
}

/// What a setting holds.
#[derive(Debug)]
pub enum FieldKind {
    Text,
    /// Text that is never printed (passwords, shared secrets).
    Secret,
    /// An `http://` or `https://` URL.
    Url,
    /// A TCP port, 1 to 65535.
    Port,
    /// A whole number in `min..=max`.
    Number { min: u64, max: u64 },
    Bool,
    /// One of the names.
    Choice(&'static [&'static str]),
    /// A list of strings.
    List,
}

impl FieldKind {
    /// What a value of this kind looks like, for "must be ..." messages.
    pub fn describe(&self) -> String {
        match self {
            FieldKind::Text | FieldKind::Secret => "a string in quotes".into(),
            FieldKind::Url => "a URL starting with http:// or https://".into(),
            FieldKind::Port => "a port number from 1 to 65535".into(),
            FieldKind::Number { min, max } => format!("a whole number from {min} to {max}"),
            FieldKind::Bool => "true or false".into(),
            FieldKind::Choice(names) => {
                let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                format!("one of {}", quoted.join(", "))
            }
            FieldKind::List => "a list of strings, like [\"a\", \"b\"]".into(),
        }
    }

    fn check(&self, key: &str, value: &Value) -> Result<(), SettingError> {
        let wrong = || SettingError::new(key, format!("`{key}` must be {}", self.describe()));
        match self {
            FieldKind::Text | FieldKind::Secret => value.as_str().map(|_| ()).ok_or_else(wrong),
            FieldKind::Url => {
                let s = value.as_str().ok_or_else(wrong)?;
                let ok = ["http://", "https://"].iter().any(|p| s.len() > p.len() && s.to_ascii_lowercase().starts_with(p));
                if ok && !s.contains(char::is_whitespace) { Ok(()) } else { Err(wrong()) }
            }
            FieldKind::Port => match value.as_u64() {
                Some(1..=65535) => Ok(()),
                _ => Err(wrong()),
            },
            FieldKind::Number { min, max } => match value.as_u64() {
                Some(n) if n >= *min && n <= *max => Ok(()),
                _ => Err(wrong()),
            },
            FieldKind::Bool => value.as_bool().map(|_| ()).ok_or_else(wrong),
            FieldKind::Choice(names) => match value.as_str() {
                Some(s) if names.contains(&s) => Ok(()),
                _ => Err(wrong()),
            },
            FieldKind::List => match value.as_array() {
                Some(items) if items.iter().all(Value::is_string) => Ok(()),
                _ => Err(wrong()),
            },
        }
    }
}

/// Checks the keys present in `settings` (known, of the right type) without requiring any: for a
/// plugin's section, whose missing keys rule actions may still supply.
pub fn check_fields(plugin: &dyn Plugin, settings: &Settings) -> Result<(), SettingError> {
    let fields = plugin.fields();
    for (key, value) in settings {
        let Some(field) = fields.iter().find(|f| f.name == key) else {
            let valid: Vec<&str> = fields.iter().map(|f| f.name).collect();
            return Err(SettingError::new(
                key,
                format!("unknown setting `{key}` for the {} plugin; valid settings are: {}", plugin.name(), valid.join(", ")),
            ));
        };
        field.kind.check(key, value)?;
    }
    Ok(())
}

/// Checks `settings` against `plugin`'s fields (unknown keys, types, required keys), fills in
/// the defaults, then runs the plugin's own [`Plugin::validate`]. Returns the complete settings.
pub fn check_settings(plugin: &dyn Plugin, settings: &Settings) -> Result<Settings, SettingError> {
    check_fields(plugin, settings)?;
    let fields = plugin.fields();
    let mut full = settings.clone();
    for field in fields {
        if full.contains_key(field.name) {
            continue;
        }
        if !field.default.is_empty() {
            let value = serde_json::from_str(field.default).expect("plugin defaults are valid JSON");
            full.insert(field.name.to_string(), value);
        } else if field.required {
            return Err(SettingError {
                key: None,
                problem: format!("the {} plugin needs `{}`: {}", plugin.name(), field.name, field.help),
            });
        }
    }
    plugin.validate(&full)?;
    Ok(full)
}

/// Typed access to checked settings (the checks above guarantee the types).
pub trait SettingsExt {
    fn text(&self, key: &str) -> Option<&str>;
    fn number(&self, key: &str) -> Option<u64>;
    fn flag(&self, key: &str) -> bool;
    fn list(&self, key: &str) -> Vec<String>;
}

impl SettingsExt for Settings {
    fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    fn number(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }
    fn flag(&self, key: &str) -> bool {
        self.get(key).and_then(Value::as_bool).unwrap_or(false)
    }
    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }
}
