//! `[plugins.<name>]` sections and `[[rules]]` entries: read from the file with their lines,
//! each plugin's section checked by the plugin itself (through the `notify` crate's trait), each
//! rule's actions checked with the settings they will be delivered with.
//!
//! ```toml
//! [plugins.email]
//! host = "smtp.example.com"
//! from = "Sentry <sentry@example.com>"
//! to = ["ops@example.com"]
//!
//! [[rules]]
//! project = "shop"
//! when = "new_group"          # or "regression", "frequency" (count, minutes), "slow" (p95_ms), "monitor_failed"
//! level = "error"             # this level and above
//! actions = ["email", { plugin = "webhook", url = "https://hooks.example.com/x", format = "slack" }]
//! throttle_minutes = 60
//! ```

use std::collections::HashSet;
use std::path::Path;

use alerts::{ActionSpec, PluginSpec, RuleSpec, When};
use notify::{Plugin, Settings};
use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ConfigError;
use super::value::type_name;

/// The plugins and rules of the file (not part of the declared key table).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertsConfig {
    pub plugins: Vec<PluginSpec>,
    pub rules: Vec<RuleSpec>,
}

/// The keys a rule may have.
const RULE_KEYS: &[&str] = &["name", "project", "when", "count", "minutes", "p95_ms", "level", "tags", "actions", "throttle_minutes"];
const WHEN: &[&str] = &["new_group", "regression", "frequency", "slow", "monitor_failed"];
const LEVELS: &[&str] = &["debug", "info", "warning", "error", "fatal"];

/// Where we are in the file, for messages.
pub(super) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    fn line(&self, offset: usize) -> usize {
        let before = self.text.get(..offset.min(self.text.len())).unwrap_or(self.text);
        before.matches('\n').count() + 1
    }

    fn err(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        ConfigError::At { file: self.path.to_path_buf(), line: self.line(offset), message: message.into() }
    }
}

fn plugin_names(plugins: &[std::sync::Arc<dyn Plugin>]) -> String {
    plugins.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}

/// Reads `[plugins.*]` (if present) and then `[[rules]]` (if present) into `out`.
pub(super) fn apply(
    out: &mut AlertsConfig,
    src: &Source<'_>,
    plugins_value: Option<&Spanned<DeValue<'_>>>,
    rules_value: Option<&Spanned<DeValue<'_>>>,
) -> Result<(), ConfigError> {
    let registry = notify::registry();
    if let Some(value) = plugins_value {
        let DeValue::Table(table) = value.get_ref() else {
            return Err(src.err(value.span().start, "`plugins` must be sections like [plugins.email]"));
        };
        for (name, section) in ordered(table) {
            let name_str = name.get_ref().as_ref();
            let Some(plugin) = notify::find(&registry, name_str) else {
                return Err(src.err(
                    name.span().start,
                    format!("unknown plugin [plugins.{name_str}]; the plugins are: {}", plugin_names(&registry)),
                ));
            };
            let DeValue::Table(fields) = section.get_ref() else {
                return Err(src.err(name.span().start, format!("[plugins.{name_str}] must be a section of settings")));
            };
            let settings = settings_of(src, fields)?;
            if let Err(e) = notify::check_fields(plugin.as_ref(), &settings) {
                let at = e.key.as_deref().and_then(|k| key_offset(fields, k)).unwrap_or(name.span().start);
                return Err(src.err(at, format!("[plugins.{name_str}]: {}", e.problem)));
            }
            out.plugins.push(PluginSpec { name: name_str.to_string(), settings });
        }
    }
    if let Some(value) = rules_value {
        let DeValue::Array(items) = value.get_ref() else {
            return Err(src.err(value.span().start, "rules are written as [[rules]] sections, one per rule"));
        };
        let mut names = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let DeValue::Table(table) = item.get_ref() else {
                return Err(src.err(item.span().start, "each rule must be a [[rules]] section"));
            };
            let rule = rule(src, out, &registry, i, item.span().start, table)?;
            if !names.insert(rule.name.clone()) {
                let at = key_offset(table, "name").unwrap_or(item.span().start);
                return Err(src.err(at, format!("two rules are called {:?}; give each rule its own `name`", rule.name)));
            }
            out.rules.push(rule);
        }
    }
    Ok(())
}

fn ordered<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Spanned<std::borrow::Cow<'i, str>>, &'t Spanned<DeValue<'i>>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

fn key_offset(table: &DeTable<'_>, key: &str) -> Option<usize> {
    table.iter().find(|(k, _)| k.get_ref().as_ref() == key).map(|(k, _)| k.span().start)
}

/// A table of settings as JSON values.
fn settings_of(src: &Source<'_>, table: &DeTable<'_>) -> Result<Settings, ConfigError> {
    let mut out = Settings::new();
    for (k, v) in ordered(table) {
        out.insert(k.get_ref().to_string(), json_of(src, v)?);
    }
    Ok(out)
}

fn json_of(src: &Source<'_>, v: &Spanned<DeValue<'_>>) -> Result<Value, ConfigError> {
    Ok(match v.get_ref() {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Value::from(n),
            Err(_) => return Err(src.err(v.span().start, "this number is too large")),
        },
        DeValue::Float(f) => f.as_str().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(items) => Value::Array(items.iter().map(|i| json_of(src, i)).collect::<Result<_, _>>()?),
        DeValue::Table(t) => Value::Object(settings_of(src, t)?),
    })
}

fn text<'v>(src: &Source<'_>, key: &str, v: &'v Spanned<DeValue<'_>>) -> Result<&'v str, ConfigError> {
    match v.get_ref() {
        DeValue::String(s) => Ok(s.as_ref()),
        other => Err(src.err(v.span().start, format!("`{key}` must be a string in quotes, not {}", type_name(other)))),
    }
}

fn whole(src: &Source<'_>, key: &str, v: &Spanned<DeValue<'_>>, min: u64) -> Result<u64, ConfigError> {
    let n = match v.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        other => return Err(src.err(v.span().start, format!("`{key}` must be a whole number, not {}", type_name(other)))),
    };
    match n {
        Some(n) if n >= min as i64 => Ok(n as u64),
        _ => Err(src.err(v.span().start, format!("`{key}` must be a whole number of at least {min}"))),
    }
}

fn choice<'v>(src: &Source<'_>, key: &str, v: &'v Spanned<DeValue<'_>>, names: &[&str]) -> Result<&'v str, ConfigError> {
    let s = text(src, key, v)?;
    if names.contains(&s) {
        Ok(s)
    } else {
        Err(src.err(v.span().start, format!("`{key}` = {s:?} is not valid; valid: {}", names.join(", "))))
    }
}

fn rule(
    src: &Source<'_>,
    alerts: &AlertsConfig,
    registry: &[std::sync::Arc<dyn Plugin>],
    index: usize,
    at: usize,
    table: &DeTable<'_>,
) -> Result<RuleSpec, ConfigError> {
    for (k, _) in table.iter() {
        if !RULE_KEYS.contains(&k.get_ref().as_ref()) {
            return Err(src.err(
                k.span().start,
                format!("unknown key `{}` in [[rules]]; valid keys are: {}", k.get_ref(), RULE_KEYS.join(", ")),
            ));
        }
    }
    let get = |key: &str| table.iter().find(|(k, _)| k.get_ref().as_ref() == key).map(|(_, v)| v);
    let need = |key: &str, what: &str| src.err(at, format!("this rule needs `{key}`: {what}"));
    let project = text(src, "project", get("project").ok_or_else(|| need("project", "the slug of its project, for example project = \"shop\""))?)?;
    let when_value = get("when").ok_or_else(|| need("when", &format!("one of {}", WHEN.join(", "))))?;
    let when_name = choice(src, "when", when_value, WHEN)?;
    let only_for = |key: &str, for_when: &str| -> Result<(), ConfigError> {
        match get(key) {
            Some(v) if when_name != for_when => {
                Err(src.err(v.span().start, format!("`{key}` is only for when = \"{for_when}\"; this rule is when = \"{when_name}\"")))
            }
            _ => Ok(()),
        }
    };
    only_for("count", "frequency")?;
    only_for("minutes", "frequency")?;
    only_for("p95_ms", "slow")?;
    let when = match when_name {
        "new_group" => When::NewGroup,
        "regression" => When::Regression,
        "monitor_failed" => When::MonitorFailed,
        "frequency" => {
            let count = whole(src, "count", get("count").ok_or_else(|| need("count", "fire when a group gets more than `count` events in `minutes` minutes"))?, 1)?;
            let minutes = whole(src, "minutes", get("minutes").ok_or_else(|| need("minutes", "the window of `count`, in minutes"))?, 1)?;
            When::Frequency { count, minutes }
        }
        _ => {
            let v = get("p95_ms").ok_or_else(|| need("p95_ms", "fire when a Query or Transaction group's p95 duration is above this many milliseconds"))?;
            let ms = match v.get_ref() {
                DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
                DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
                _ => None,
            };
            match ms {
                Some(ms) if ms > 0.0 && ms.is_finite() => When::Slow { p95_ms: ms },
                _ => return Err(src.err(v.span().start, "`p95_ms` must be a number of milliseconds above 0, for example 500")),
            }
        }
    };
    let level = get("level")
        .map(|v| choice(src, "level", v, LEVELS).map(|s| store::Level::parse(s).unwrap_or(store::Level::Error)))
        .transpose()?;
    let mut tags = Vec::new();
    if let Some(v) = get("tags") {
        let DeValue::Table(t) = v.get_ref() else {
            return Err(src.err(v.span().start, "`tags` must be a table of strings, for example tags = { environment = \"production\" }"));
        };
        for (k, tv) in ordered(t) {
            tags.push((k.get_ref().to_string(), text(src, "tags", tv)?.to_string()));
        }
    }
    let throttle_minutes = get("throttle_minutes").map(|v| whole(src, "throttle_minutes", v, 0)).transpose()?.unwrap_or(60);
    let name = match get("name") {
        Some(v) => text(src, "name", v)?.to_string(),
        None => format!("{project}-{when_name}-{}", index + 1),
    };
    let actions_value = get("actions").ok_or_else(|| need("actions", &format!("the plugins to notify, for example actions = [\"email\"]; the plugins are: {}", plugin_names(registry))))?;
    let DeValue::Array(items) = actions_value.get_ref() else {
        return Err(src.err(actions_value.span().start, "`actions` must be a list, for example actions = [\"email\", \"webhook\"]"));
    };
    if items.is_empty() {
        return Err(src.err(actions_value.span().start, "`actions` is empty: name at least one plugin"));
    }
    let mut actions = Vec::new();
    for item in items.iter() {
        let (plugin_name, settings) = match item.get_ref() {
            DeValue::String(s) => (s.to_string(), Settings::new()),
            DeValue::Table(t) => {
                let mut settings = settings_of(src, t)?;
                match settings.remove("plugin") {
                    Some(Value::String(p)) => (p, settings),
                    _ => return Err(src.err(item.span().start, "an action written as a table needs `plugin`, for example { plugin = \"webhook\", url = \"…\" }")),
                }
            }
            other => return Err(src.err(item.span().start, format!("an action is a plugin name or a table, not {}", type_name(other)))),
        };
        let Some(plugin) = notify::find(registry, &plugin_name) else {
            return Err(src.err(item.span().start, format!("unknown plugin {plugin_name:?}; the plugins are: {}", plugin_names(registry))));
        };
        let config = alerts::AlertConfig {
            plugins: alerts.plugins.clone(),
            rules: Vec::new(),
            retry: Default::default(),
            digest: None,
        };
        if let Err(e) = alerts::action_settings(&config, plugin.as_ref(), &settings) {
            let section = if alerts.plugins.iter().any(|p| p.name == plugin_name) {
                String::new()
            } else {
                format!(" (there is no [plugins.{plugin_name}] section)")
            };
            return Err(src.err(item.span().start, format!("rule {name:?}, action {plugin_name:?}: {e}{section}")));
        }
        actions.push(ActionSpec { plugin: plugin_name, settings });
    }
    Ok(RuleSpec { name, project: project.to_string(), when, level, tags, actions, throttle_minutes })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Config;
    use super::*;

    const FILE: &str = "/etc/sentry/sentry.toml";

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::load_from(Path::new(FILE), text, &[("HOME".into(), "/home/ada".into())])
    }

    /// The message for `text`, checked to start with the file and `line`.
    #[track_caller]
    fn error(text: &str, line: usize) -> String {
        let message = load(text).expect_err("should be refused").to_string();
        let at = format!("{FILE}:{line}: ");
        assert!(message.starts_with(&at), "expected {at} in: {message}");
        message
    }

    const EMAIL: &str = "[plugins.email]\nhost = \"localhost\"\nport = 2525\ntls = \"none\"\nfrom = \"sentry@example.com\"\nto = [\"ops@example.com\"]\n";

    #[test]
    fn a_full_setup_is_read() {
        let text = format!(
            "url = \"https://sentry.example.com/\"\n{EMAIL}\n[plugins.webhook]\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"s3cret\"\n\n\
             [[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nlevel = \"error\"\ntags = {{ environment = \"production\" }}\n\
             actions = [\"email\", {{ plugin = \"webhook\", format = \"slack\" }}]\n\n\
             [[rules]]\nname = \"storm\"\nproject = \"shop\"\nwhen = \"frequency\"\ncount = 100\nminutes = 5\nactions = [\"webhook\"]\nthrottle_minutes = 30\n\n\
             [[rules]]\nproject = \"shop\"\nwhen = \"slow\"\np95_ms = 500\nactions = [\"email\"]\n"
        );
        let config = load(&text).unwrap();
        let alerts = &config.alerts;
        assert_eq!(alerts.plugins.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["email", "webhook"]);
        assert_eq!(alerts.rules.len(), 3);
        let r = &alerts.rules[0];
        assert_eq!((r.name.as_str(), r.project.as_str(), &r.when), ("shop-new_group-1", "shop", &When::NewGroup));
        assert_eq!(r.level, Some(store::Level::Error));
        assert_eq!(r.tags, [("environment".to_string(), "production".to_string())]);
        assert_eq!(r.actions[1].plugin, "webhook");
        assert_eq!(r.actions[1].settings["format"], "slack");
        assert_eq!(r.throttle_minutes, 60);
        assert_eq!(alerts.rules[1].when, When::Frequency { count: 100, minutes: 5 });
        assert_eq!(alerts.rules[1].throttle_minutes, 30);
        assert_eq!(alerts.rules[2].when, When::Slow { p95_ms: 500.0 });
        let engine = config.alert_config();
        assert_eq!(config.public_url(), "https://sentry.example.com");
        assert_eq!(engine.retry.initial.as_secs(), 10);
    }

    #[test]
    fn rules_may_come_before_the_plugin_sections() {
        let text = format!("[[rules]]\nproject = \"shop\"\nwhen = \"regression\"\nactions = [\"email\"]\n\n{EMAIL}");
        assert_eq!(load(&text).unwrap().alerts.rules[0].when, When::Regression);
    }

    #[test]
    fn unknown_plugin_section_lists_the_plugins() {
        let m = error("bind = \"127.0.0.1:9000\"\n\n[plugins.slack]\nurl = \"x\"\n", 3);
        assert!(m.ends_with("unknown plugin [plugins.slack]; the plugins are: email, irc, webhook, xmpp, matrix, growl, pagerduty, opsgenie, ntfy, exec"), "{m}");
    }

    #[test]
    fn plugin_settings_are_checked_by_the_plugin_at_their_line() {
        let m = error("[plugins.email]\nhost = \"localhost\"\nprot = 25\n", 3);
        assert!(m.contains("unknown setting `prot` for the email plugin; valid settings are: host, port, tls"), "{m}");
        let m = error("[plugins.email]\nhost = \"localhost\"\ntls = \"ssl\"\n", 3);
        assert!(m.ends_with("[plugins.email]: `tls` must be one of \"starttls\", \"tls\", \"none\""), "{m}");
        let m = error("[plugins.webhook]\nurl = \"ftp://x\"\n", 2);
        assert!(m.contains("`url` must be a URL starting with http:// or https://"), "{m}");
        let m = error("[plugins.irc]\nserver = \"localhost\"\nport = 0\n", 3);
        assert!(m.contains("`port` must be a port number from 1 to 65535"), "{m}");
        let m = error("[plugins.xmpp]\njid = \"sentry@example.org\"\ntls = \"ssl\"\n", 3);
        assert!(m.ends_with("[plugins.xmpp]: `tls` must be one of \"starttls\", \"none\""), "{m}");
        let m = error("[plugins.matrix]\nhomeserver = \"matrix.example.org\"\n", 2);
        assert!(m.contains("`homeserver` must be a URL starting with http:// or https://"), "{m}");
        let m = error("[plugins.growl]\nhost = \"desk\"\nport = 99999\n", 3);
        assert!(m.contains("`port` must be a port number from 1 to 65535"), "{m}");
        let m = error("[plugins.exec]\ncommand = \"/bin/notify\"\n", 2);
        assert!(m.contains("`command` must be a list of strings"), "{m}");
        let m = error("[plugins.ntfy]\nurl = \"https://ntfy.sh/\"\ntoken = 5\n", 3);
        assert!(m.contains("`token` must be a string in quotes"), "{m}");
        let m = error("[plugins.opsgenie]\napi_key = \"k\"\nregion = \"eu\"\n", 3);
        assert!(m.contains("unknown setting `region` for the opsgenie plugin; valid settings are: api_key, url, responders"), "{m}");
    }

    #[test]
    fn settings_that_depend_on_each_other_are_checked_when_complete() {
        // The plugin's own checks run on the whole action: here the routing key's form.
        let m = error("[plugins.pagerduty]\nrouting_key = \"short\"\n\n[[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"pagerduty\"]\n", 7);
        assert!(m.contains("`routing_key` must be the 32 letters and digits of an Events API v2 integration key"), "{m}");
        let m = error("[plugins.pagerduty]\nrouting_key = \"0123456789abcdef0123456789abcdef\"\n\n[plugins.xmpp]\njid = \"nobody\"\npassword = \"p\"\nto = \"ops@example.org\"\n\n[[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"pagerduty\", \"xmpp\"]\n", 12);
        assert!(m.contains("`jid` = \"nobody\" is not an account's address"), "{m}");
    }

    #[test]
    fn an_action_needs_complete_settings() {
        let m = error("[[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"email\"]\n", 4);
        assert!(m.contains("rule \"shop-new_group-1\", action \"email\": the email plugin needs `host`"), "{m}");
        assert!(m.contains("there is no [plugins.email] section"), "{m}");
        let m = error(&format!("{EMAIL}\n[[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [{{ plugin = \"email\", from = \"nobody\" }}]\n"), 11);
        assert!(m.contains("`from` = \"nobody\" is not an email address"), "{m}");
        let m = error("[[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"pager\"]\n", 4);
        assert!(m.ends_with("unknown plugin \"pager\"; the plugins are: email, irc, webhook, xmpp, matrix, growl, pagerduty, opsgenie, ntfy, exec"), "{m}");
    }

    #[test]
    fn rule_keys_and_values_are_checked() {
        let m = error(&format!("{EMAIL}\n[[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"email\"]\nthrotle_minutes = 5\n"), 12);
        assert!(m.contains("unknown key `throtle_minutes` in [[rules]]; valid keys are: name, project, when"), "{m}");
        let m = error(&format!("{EMAIL}\n[[rules]]\nproject = \"shop\"\nwhen = \"often\"\nactions = [\"email\"]\n"), 10);
        assert!(m.ends_with("`when` = \"often\" is not valid; valid: new_group, regression, frequency, slow, monitor_failed"), "{m}");
        let crons = load(&format!("{EMAIL}\n[[rules]]\nproject = \"shop\"\nwhen = \"monitor_failed\"\nactions = [\"email\"]\n")).unwrap();
        assert_eq!((crons.alerts.rules[0].name.as_str(), &crons.alerts.rules[0].when), ("shop-monitor_failed-1", &When::MonitorFailed));
        let m = error(&format!("{EMAIL}\n[[rules]]\nproject = \"shop\"\nwhen = \"monitor_failed\"\ncount = 3\nactions = [\"email\"]\n"), 11);
        assert!(m.contains("`count` is only for when = \"frequency\""), "{m}");
        let m = error(&format!("{EMAIL}\n[[rules]]\nproject = \"shop\"\nwhen = \"frequency\"\ncount = 10\nactions = [\"email\"]\n"), 8);
        assert!(m.contains("this rule needs `minutes`"), "{m}");
        let m = error(&format!("{EMAIL}\n[[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\ncount = 10\nactions = [\"email\"]\n"), 11);
        assert!(m.contains("`count` is only for when = \"frequency\""), "{m}");
        let m = error(&format!("{EMAIL}\n[[rules]]\nproject = \"shop\"\nwhen = \"slow\"\np95_ms = -1\nactions = [\"email\"]\n"), 11);
        assert!(m.contains("`p95_ms` must be a number of milliseconds above 0"), "{m}");
        let m = error(&format!("{EMAIL}\n[[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nlevel = \"severe\"\nactions = [\"email\"]\n"), 11);
        assert!(m.ends_with("valid: debug, info, warning, error, fatal"), "{m}");
        let m = error(&format!("{EMAIL}\n[[rules]]\nwhen = \"new_group\"\nactions = [\"email\"]\n"), 8);
        assert!(m.contains("this rule needs `project`"), "{m}");
        let m = error(
            &format!("{EMAIL}\n[[rules]]\nname = \"a\"\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"email\"]\n\n[[rules]]\nname = \"a\"\nproject = \"shop\"\nwhen = \"regression\"\nactions = [\"email\"]\n"),
            15,
        );
        assert!(m.contains("two rules are called \"a\""), "{m}");
    }

    #[test]
    fn unknown_sections_mention_plugins_and_rules() {
        let m = load("[plugin.email]\nhost = \"x\"\n").unwrap_err().to_string();
        assert!(m.contains("[projects.<slug>], [plugins.<name>], [[rules]]"), "{m}");
    }
}
