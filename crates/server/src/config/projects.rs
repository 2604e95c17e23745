//! `[projects.<slug>]` tables: per-project settings of the dashboard, for now the `slices`
//! (the filters of the project's stream, from the Filter API in `web::dashboard::filters`):
//!
//! ```toml
//! [projects.default]
//! slices = ["level", "logger", "server", "environment", { tag = "customer", widget = "search" }]
//! ```
//!
//! and how the server scrubs secrets from what the project's clients send (`scrub_data`,
//! `scrub_fields`, `scrub_safe_fields`).
//!
//! An unknown filter, widget or key is refused with the file, the line and what is valid.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;
use web::dashboard::filters::{check_slice, BUILTIN_NAMES};
use web::dashboard::SliceSpec;

use super::ConfigError;

/// The settings of one project.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProjectConfig {
    /// `None`: the default slices.
    pub slices: Option<Vec<SliceSpec>>,
    /// Events per minute for the whole project; `None`: `rate_limits.per_project_per_minute`.
    pub rate_limit_per_minute: Option<u64>,
    /// Days its events are kept (0: forever); `None`: `retention.days`.
    pub retention_days: Option<u32>,
    /// `Some(false)`: the server scrubs nothing of this project's events.
    pub scrub_data: Option<bool>,
    /// Words that make a field sensitive, beside the built-in ones.
    pub scrub_fields: Vec<String>,
    /// Field names never scrubbed.
    pub scrub_safe_fields: Vec<String>,
}

impl ProjectConfig {
    /// The project's scrubbing settings for the pipeline.
    pub fn scrub(&self) -> ingest::scrub::ScrubConfig {
        ingest::scrub::ScrubConfig {
            enabled: self.scrub_data.unwrap_or(true),
            fields: self.scrub_fields.clone(),
            safe_fields: self.scrub_safe_fields.clone(),
        }
    }
}

/// Every `[projects.<slug>]`, by slug.
pub type ProjectsConfig = BTreeMap<String, ProjectConfig>;

/// What the reference config says about these tables (commented out: the defaults apply).
pub const REFERENCE: &str = "

# [projects.<slug>]
# Settings of one project, by its slug (see `sentry project list`).
#
# slices: the filters shown above the project's list of issues. Each is a
# built-in filter by name, or any tag with { tag = \"KEY\" }; `widget` picks how
# it is shown: select (the most frequent values), search (type any value) or
# toggles (buttons). Built-in filters: level, logger, server, environment,
# release, url, transaction, browser, os, user. The default is
# [\"level\", \"logger\", \"server\", \"environment\", \"release\"].
#
# rate_limit_per_minute: events per minute the project may send, all its keys
# together (0 = unlimited); the default is rate_limits.per_project_per_minute.
# Read at start: a project created later gets it at the next start.
#
# retention_days: how many days the project's events are kept (0 = forever);
# the default is retention.days. Older events, and issues not seen since, are
# deleted every hour.
#
# Secrets are scrubbed from every event before it is stored: fields whose name
# holds password, passwd, secret, api_key, apikey, api-key, auth, credentials,
# mysql_pwd, privatekey, private_key, token, session_key, sessionid or cookie
# become [Filtered], and so do credit-card numbers, IBANs, private keys, URL
# passwords and Bearer tokens inside any text. The event says what was scrubbed.
# scrub_fields: more words that make a field secret (any case, anywhere in its
# name). scrub_safe_fields: field names that are never scrubbed (whole name, any
# case). scrub_data = false turns the server's scrubbing off for the project.
# Read at start, like rate_limit_per_minute.
#
# [projects.default]
# slices = [\"level\", \"server\", { tag = \"customer\", widget = \"search\" }]
# rate_limit_per_minute = 6000
# retention_days = 30
# scrub_fields = [\"order_id\", \"iban\"]
# scrub_safe_fields = [\"auth_method\"]
";

const KEYS: &[&str] = &["slices", "rate_limit_per_minute", "retention_days", "scrub_data", "scrub_fields", "scrub_safe_fields"];

/// Reads the `projects` table of the file into `projects`.
pub(super) fn apply(
    projects: &mut ProjectsConfig,
    path: &Path,
    text: &str,
    value: &Spanned<DeValue<'_>>,
) -> Result<(), ConfigError> {
    let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let invalid = |at: usize, key: String, value: &str, problem: String| ConfigError::Invalid {
        file: path.to_path_buf(),
        line: line(at),
        key,
        value: value.lines().next().unwrap_or("").chars().take(60).collect(),
        problem,
    };
    let DeValue::Table(table) = value.get_ref() else {
        return Err(invalid(
            value.span().start,
            "projects".into(),
            &text[value.span()],
            "write one table per project: [projects.SLUG]".into(),
        ));
    };
    for (slug, settings) in sorted(table) {
        let slug_text = slug.get_ref().to_string();
        let DeValue::Table(settings_table) = settings.get_ref() else {
            return Err(invalid(
                slug.span().start,
                format!("projects.{slug_text}"),
                &text[settings.span()],
                format!("write the settings of the project as a table: [projects.{slug_text}]"),
            ));
        };
        let mut project = ProjectConfig::default();
        for (key, v) in sorted(settings_table) {
            let full = format!("projects.{slug_text}.{}", key.get_ref());
            if !KEYS.contains(&key.get_ref().as_ref()) {
                return Err(invalid(
                    key.span().start,
                    full,
                    key.get_ref(),
                    format!("unknown key in [projects.{slug_text}]; valid keys are: {}", KEYS.join(", ")),
                ));
            }
            let number = |what: &str| -> Result<u64, ConfigError> {
                let n = match v.get_ref() {
                    DeValue::Integer(n) => n.to_string().parse::<u64>().ok(),
                    _ => None,
                };
                n.ok_or_else(|| invalid(v.span().start, full.clone(), &text[v.span()], format!("must be a whole number of {what}")))
            };
            match key.get_ref().as_ref() {
                "retention_days" => {
                    let days = number("days, 0 or more (0 keeps the events forever), for example 30")?;
                    project.retention_days = Some(u32::try_from(days).unwrap_or(u32::MAX));
                    continue;
                }
                "rate_limit_per_minute" => {
                    project.rate_limit_per_minute = Some(number("events per minute, 0 or more (for example 6000)")?);
                    continue;
                }
                _ => {}
            }
            match key.get_ref().as_ref() {
                "scrub_data" => {
                    let DeValue::Boolean(on) = v.get_ref() else {
                        return Err(invalid(v.span().start, full, &text[v.span()], "must be true or false".into()));
                    };
                    project.scrub_data = Some(*on);
                    continue;
                }
                which @ ("scrub_fields" | "scrub_safe_fields") => {
                    let words = field_names(v).ok_or_else(|| {
                        invalid(
                            v.span().start,
                            full.clone(),
                            &text[v.span()],
                            "must be a list of field names, for example [\"order_id\", \"iban\"]".into(),
                        )
                    })?;
                    if which == "scrub_fields" {
                        project.scrub_fields = words;
                    } else {
                        project.scrub_safe_fields = words;
                    }
                    continue;
                }
                _ => {}
            }
            let DeValue::Array(items) = v.get_ref() else {
                return Err(invalid(v.span().start, full, &text[v.span()], slices_help()));
            };
            let mut slices = Vec::new();
            for item in items.iter() {
                let at = item.span().start;
                let raw = &text[item.span()];
                let spec = match item.get_ref() {
                    DeValue::String(name) => check_slice(Some(name), None, None),
                    DeValue::Table(t) => {
                        let mut fields: [Option<String>; 3] = [None, None, None];
                        for (k, fv) in t.iter() {
                            let idx = match k.get_ref().as_ref() {
                                "filter" => 0,
                                "tag" => 1,
                                "widget" => 2,
                                other => {
                                    return Err(invalid(
                                        k.span().start,
                                        full.clone(),
                                        raw,
                                        format!("unknown field `{other}` in a slice; valid fields are: filter, tag, widget"),
                                    ));
                                }
                            };
                            let DeValue::String(s) = fv.get_ref() else {
                                return Err(invalid(fv.span().start, full.clone(), raw, format!("`{}` must be a string", k.get_ref())));
                            };
                            fields[idx] = Some(s.to_string());
                        }
                        check_slice(fields[0].as_deref(), fields[1].as_deref(), fields[2].as_deref())
                    }
                    _ => Err(slices_help()),
                };
                slices.push(spec.map_err(|problem| invalid(at, full.clone(), raw, problem))?);
            }
            project.slices = Some(slices);
        }
        projects.insert(slug_text, project);
    }
    Ok(())
}

/// A list of non-empty strings.
fn field_names(v: &Spanned<DeValue<'_>>) -> Option<Vec<String>> {
    let DeValue::Array(items) = v.get_ref() else { return None };
    items
        .iter()
        .map(|i| match i.get_ref() {
            DeValue::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            _ => None,
        })
        .collect()
}

fn slices_help() -> String {
    format!(
        "slices is a list of filter names ({}) or tables like {{ tag = \"customer\", widget = \"search\" }}",
        BUILTIN_NAMES.join(", ")
    )
}

fn sorted<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Spanned<toml::de::DeString<'i>>, &'t Spanned<DeValue<'i>>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn load(text: &str) -> Result<Config, String> {
        Config::load_from(Path::new("/etc/sentry.toml"), text, &[]).map_err(|e| e.to_string())
    }

    #[test]
    fn slices_are_read() {
        let c = load("bind = \"127.0.0.1:9000\"\n[projects.shop]\nslices = [\"level\", { tag = \"customer\", widget = \"search\" }, { filter = \"server\", widget = \"toggles\" }]\n").unwrap();
        let slices = c.projects["shop"].slices.clone().unwrap();
        assert_eq!(slices.len(), 3);
        assert_eq!((slices[1].name.as_str(), slices[1].is_tag), ("customer", true));
        assert_eq!(slices[2].widget(), web::dashboard::filters::Widget::Toggles);
    }

    #[test]
    fn unknown_filters_and_widgets_are_refused_with_file_line_and_valid_names() {
        let e = load("bind = \"127.0.0.1:9000\"\n\n[projects.default]\nslices = [\n  \"level\",\n  \"lvl\",\n]\n").unwrap_err();
        assert!(e.starts_with("/etc/sentry.toml:6:"), "{e}");
        assert!(e.contains("unknown filter \"lvl\"") && e.contains("level, logger, server, environment, release"), "{e}");

        let e = load("[projects.default]\nslices = [{ tag = \"customer\", widget = \"dropdown\" }]\n").unwrap_err();
        assert!(e.starts_with("/etc/sentry.toml:2:") && e.contains("select, search, toggles"), "{e}");

        let e = load("[projects.default]\nslicez = []\n").unwrap_err();
        assert!(e.starts_with("/etc/sentry.toml:2:") && e.contains("valid keys are: slices"), "{e}");

        let e = load("[projects.default]\nslices = \"level\"\n").unwrap_err();
        assert!(e.contains("list of filter names"), "{e}");
    }

    #[test]
    fn scrubbing_settings_are_read_and_checked() {
        let c = load("[projects.shop]\nscrub_fields = [\"order_id\"]\nscrub_safe_fields = [\"auth_method\"]\nscrub_data = true\n").unwrap();
        let scrub = c.projects["shop"].scrub();
        assert_eq!((scrub.enabled, scrub.fields, scrub.safe_fields), (true, vec!["order_id".to_string()], vec!["auth_method".to_string()]));
        assert!(load("[projects.shop]\nscrub_data = false\n").unwrap().projects["shop"].scrub().enabled.eq(&false));

        let e = load("[projects.shop]\n\nscrub_fields = \"order_id\"\n").unwrap_err();
        assert!(e.starts_with("/etc/sentry.toml:3:") && e.contains("list of field names"), "{e}");
        let e = load("[projects.shop]\nscrub_safe_fields = [\"\", 3]\n").unwrap_err();
        assert!(e.starts_with("/etc/sentry.toml:2:") && e.contains("list of field names"), "{e}");
        let e = load("[projects.shop]\nscrub_data = \"yes\"\n").unwrap_err();
        assert!(e.contains("true or false"), "{e}");
        let e = load("[projects.shop]\nscrub = true\n").unwrap_err();
        assert!(e.contains("scrub_data, scrub_fields, scrub_safe_fields"), "{e}");
    }
}
