//! `[projects.<slug>]` tables: per-project settings of the dashboard, for now the `slices`
//! (the filters of the project's stream, from the Filter API in `web::dashboard::filters`):
//!
//! ```toml
//! [projects.default]
//! slices = ["level", "logger", "server", "environment", { tag = "customer", widget = "search" }]
//! ```
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
# [projects.default]
# slices = [\"level\", \"server\", { tag = \"customer\", widget = \"search\" }]
# rate_limit_per_minute = 6000
";

const KEYS: &[&str] = &["slices", "rate_limit_per_minute"];

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
            if key.get_ref().as_ref() == "rate_limit_per_minute" {
                let limit = match v.get_ref() {
                    DeValue::Integer(n) => n.to_string().parse::<u64>().ok(),
                    _ => None,
                };
                let Some(limit) = limit else {
                    return Err(invalid(
                        v.span().start,
                        full,
                        &text[v.span()],
                        "must be a whole number of events per minute, 0 or more (for example 6000)".into(),
                    ));
                };
                project.rate_limit_per_minute = Some(limit);
                continue;
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
}
