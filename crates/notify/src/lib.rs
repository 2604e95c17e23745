//! Plugins and notifications. A plugin is one type implementing [`Plugin`]: its name, the
//! settings it takes (checked when the config is loaded, with the line and what is valid), and
//! hooks — event stored, group created, group regressed, alert rule fired. The built-in plugins
//! (email over SMTP, IRC, webhooks in five shapes, XMPP, Matrix, network Growl, PagerDuty, Opsgenie,
//! ntfy, and exec for a program of one's own) live here; [`registry`] is the one list of
//! them, so adding a plugin touches nothing else.
//!
//! This crate knows nothing of the store or the config file: the engine in `alerts` builds a
//! [`Notification`], writes it to the outbox and calls [`Plugin::rule_fired`] to deliver it.

mod digest;
pub mod email;
pub mod exec;
pub mod growl;
mod http;
pub mod irc;
pub mod matrix;
mod notification;
pub mod ntfy;
pub mod opsgenie;
pub mod pagerduty;
mod plugin;
pub mod webhook;
pub mod xmpp;

use std::sync::Arc;

pub use digest::{Digest, DigestIssue, ProjectDigest};
pub use notification::{Frame, Notification, Reason};
pub use plugin::{
    Delivery, DeliveryError, EventInfo, Field, FieldKind, Plugin, SettingError, Settings, SettingsExt, check_fields, check_settings,
};

/// Every built-in plugin. This is the registration list: a new plugin is added here and
/// nowhere else.
pub fn registry() -> Vec<Arc<dyn Plugin>> {
    vec![
        Arc::new(email::Email),
        Arc::new(irc::Irc::default()),
        Arc::new(webhook::Webhook::default()),
        Arc::new(xmpp::Xmpp),
        Arc::new(matrix::Matrix::default()),
        Arc::new(growl::Growl::default()),
        Arc::new(pagerduty::PagerDuty::default()),
        Arc::new(opsgenie::Opsgenie::default()),
        Arc::new(ntfy::Ntfy::default()),
        Arc::new(exec::Exec),
    ]
}

/// The plugin called `name`, from `plugins`.
pub fn find<'a>(plugins: &'a [Arc<dyn Plugin>], name: &str) -> Option<&'a Arc<dyn Plugin>> {
    plugins.iter().find(|p| p.name() == name)
}

/// Makes ring the process's rustls crypto provider (once; later calls do nothing). Every TLS
/// connection of the plugins uses it: no OpenSSL, no aws-lc.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn plugin_names_are_unique_and_fields_have_help() {
        let plugins = super::registry();
        let mut names: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names, ["email", "exec", "growl", "irc", "matrix", "ntfy", "opsgenie", "pagerduty", "webhook", "xmpp"]);
        for p in &plugins {
            for f in p.fields() {
                assert!(!f.help.is_empty(), "{}.{}", p.name(), f.name);
                if !f.default.is_empty() {
                    let v: serde_json::Value = serde_json::from_str(f.default).unwrap();
                    let mut s = serde_json::Map::new();
                    s.insert(f.name.to_string(), v);
                    // A default must pass its own field's check.
                    if let Err(e) = super::check_settings(p.as_ref(), &s) {
                        assert!(e.key.as_deref() != Some(f.name), "{}.{}: {e}", p.name(), f.name);
                    }
                }
            }
        }
    }
}
