//! Applying the layers to a [`Config`]: the file (checked key by key against the declaration
//! table, with real line numbers), then the `SENTRY_*` variables, then the checks that involve
//! more than one key.

use std::path::Path;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::declare::{self, Key, SECTIONS};
use super::value::{PathRules, Problem, Raw, type_name};
use super::{Config, ConfigError, home_dir};

/// Where each key that was set came from, in the order they were set: `(key, "file:line")` or
/// `(key, "VAR=value")`. Used to point at the culprit when two keys disagree.
#[derive(Default)]
pub(super) struct Origins(Vec<(String, String)>);

impl Origins {
    /// Where the last of `keys` to be set came from.
    fn last_of(&self, keys: &[&str]) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| keys.contains(&k.as_str()))
            .map(|(_, at)| at.as_str())
    }
}

/// Applies the TOML document `text`, read from `path`, to `config`.
pub(super) fn apply_file(
    config: &mut Config,
    origins: &mut Origins,
    path: &Path,
    text: &str,
    env: &[(String, String)],
) -> Result<(), ConfigError> {
    let doc = DeTable::parse(text).map_err(|e| syntax_error(path, text, &e))?;
    let home = home_dir(env);
    let file = File {
        path,
        text,
        paths: PathRules {
            home: &home,
            base: path.parent(),
        },
    };
    let (mut plugins, mut rules) = (None, None);
    for (name, value) in in_file_order(doc.get_ref()) {
        let line = file.line(name.span().start);
        let name = name.get_ref().as_ref();
        if name == "plugins" {
            plugins = Some(value);
        } else if name == "rules" {
            rules = Some(value);
        } else if let Some(key) = declare::find("", name) {
            file.apply(config, origins, key, value)?;
        } else if name == "projects" {
            super::projects::apply(&mut config.projects, path, text, value)?;
        } else if !name.is_empty() && SECTIONS.iter().any(|s| s.name == name) {
            let DeValue::Table(table) = value.get_ref() else {
                return Err(ConfigError::WrongType {
                    file: path.to_path_buf(),
                    line,
                    key: name.to_string(),
                    expected: format!("a section, written [{name}] on a line of its own"),
                    found: type_name(value.get_ref()).to_string(),
                });
            };
            for (key_name, value) in in_file_order(table) {
                let Some(key) = declare::find(name, key_name.get_ref()) else {
                    return Err(ConfigError::UnknownKey {
                        file: path.to_path_buf(),
                        line: file.line(key_name.span().start),
                        key: key_name.get_ref().to_string(),
                        section: name.to_string(),
                    });
                };
                file.apply(config, origins, key, value)?;
            }
        } else if let DeValue::Table(_) = value.get_ref() {
            return Err(ConfigError::UnknownSection {
                file: path.to_path_buf(),
                line,
                section: name.to_string(),
            });
        } else {
            return Err(ConfigError::UnknownKey {
                file: path.to_path_buf(),
                line,
                key: name.to_string(),
                section: String::new(),
            });
        }
    }
    let src = super::notify::Source { path, text };
    super::notify::apply(&mut config.alerts, &src, plugins, rules)
}

/// Applies the declared `SENTRY_*` variables in `env` (the last one wins if repeated); other
/// variables are ignored.
pub(super) fn apply_env(
    config: &mut Config,
    origins: &mut Origins,
    env: &[(String, String)],
) -> Result<(), ConfigError> {
    let home = home_dir(env);
    let paths = PathRules {
        home: &home,
        base: None,
    };
    for key in declare::KEYS {
        let var = key.env_var();
        let Some((_, value)) = env.iter().rev().find(|(k, _)| *k == var) else {
            continue;
        };
        let problem = match key.kind.read(key, Raw::Env(value), &paths) {
            Ok(parsed) => {
                (key.set)(config, parsed);
                origins.0.push((key.full_name(), format!("{var}={value}")));
                continue;
            }
            Err(Problem::WrongType { .. }) => format!("must be {}", key.kind.describe(key)),
            Err(Problem::Invalid(problem)) => problem,
        };
        return Err(ConfigError::InvalidEnv {
            var,
            value: value.clone(),
            problem,
        });
    }
    Ok(())
}

/// The checks that involve more than one key, once every layer is applied.
pub(super) fn check(config: &Config, origins: &Origins) -> Result<(), ConfigError> {
    if config.store.backend == super::Backend::Postgres && config.store.postgres_url.is_none() {
        return Err(ConfigError::Inconsistent {
            at: origins.last_of(&["store.backend"]).unwrap_or("the defaults").to_string(),
            problem: "`store.backend` is postgres, but `store.postgres_url` is not set; add it to [store] \
                      (for example postgres_url = \"postgres://sentry:password@localhost/sentry\") \
                      or set SENTRY_STORE_POSTGRES_URL"
                .to_string(),
        });
    }
    let limits = &config.limits;
    if limits.max_event_bytes > limits.max_decompressed_bytes {
        let names = ["limits.max_event_bytes", "limits.max_decompressed_bytes"];
        return Err(ConfigError::Inconsistent {
            at: origins
                .last_of(&names)
                .unwrap_or("the defaults")
                .to_string(),
            problem: format!(
                "`limits.max_event_bytes` ({}) is larger than `limits.max_decompressed_bytes` \
                 ({}); an event can't be larger than the decompressed request that carries it, \
                 so lower the first or raise the second",
                limits.max_event_bytes, limits.max_decompressed_bytes
            ),
        });
    }
    Ok(())
}

/// The file being applied, for line numbers and messages.
struct File<'a> {
    path: &'a Path,
    text: &'a str,
    paths: PathRules<'a>,
}

impl File<'_> {
    /// Reads `value` for `key` and stores it in `config`.
    fn apply(
        &self,
        config: &mut Config,
        origins: &mut Origins,
        key: &Key,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<(), ConfigError> {
        let line = self.line(value.span().start);
        match key.kind.read(key, Raw::Toml(value.get_ref()), &self.paths) {
            Ok(parsed) => {
                (key.set)(config, parsed);
                let at = format!("{}:{line}", self.path.display());
                origins.0.push((key.full_name(), at));
                Ok(())
            }
            Err(Problem::WrongType { found }) => Err(ConfigError::WrongType {
                file: self.path.to_path_buf(),
                line,
                key: key.full_name(),
                expected: key.kind.describe(key),
                found: found.to_string(),
            }),
            Err(Problem::Invalid(problem)) => Err(ConfigError::Invalid {
                file: self.path.to_path_buf(),
                line,
                key: key.full_name(),
                value: excerpt(&self.text[value.span()]),
                problem,
            }),
        }
    }

    /// The 1-based line of byte `offset`.
    fn line(&self, offset: usize) -> usize {
        line_col(self.text, offset).0
    }
}

/// The entries of `table` in the order they appear in the file, so the first problem is the
/// one reported.
fn in_file_order<'t, 'i>(
    table: &'t DeTable<'i>,
) -> Vec<(&'t Spanned<DeString<'i>>, &'t Spanned<DeValue<'i>>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

fn syntax_error(path: &Path, text: &str, error: &toml::de::Error) -> ConfigError {
    let span = error.span().unwrap_or(0..0);
    let (line, col) = line_col(text, span.start);
    let mut message = format!("this is not valid TOML: {}", error.message());
    let at = text.get(span).unwrap_or("").trim();
    if !at.is_empty() && !at.contains('\n') {
        message.push_str(&format!(" (at `{}`)", excerpt(at)));
    }
    ConfigError::Syntax {
        file: path.to_path_buf(),
        line,
        col,
        message,
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// The first line of `text`, shortened to fit in a message.
fn excerpt(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    if first.chars().count() > 60 || first.len() < text.trim_end().len() {
        let short: String = first.chars().take(60).collect();
        format!("{short}…")
    } else {
        first.to_string()
    }
}
