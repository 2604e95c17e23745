//! [`ConfigError`]: why the config was refused, written for the person who has to fix it. Every
//! message starts with where the problem is: `file:line` (and column for TOML syntax), or the
//! `SENTRY_*` variable and its value.

use std::fmt;
use std::path::PathBuf;

use super::declare::{KEYS, SECTIONS};

/// A config that can't be used. The `Display` text is what the user reads.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file does not exist.
    #[error(
        "{} does not exist; run `sentry init` to write one, or point SENTRY_CONF at your config file",
        path.display()
    )]
    Missing { path: PathBuf },

    /// The config file exists but can't be read.
    #[error("can't read the config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The file is not valid TOML.
    #[error("{}:{line}:{col}: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },

    /// A key that no section declares. `section` is empty at the top level.
    #[error("{}:{line}: {}", file.display(), UnknownKeyText { key, section })]
    UnknownKey {
        file: PathBuf,
        line: usize,
        key: String,
        section: String,
    },

    /// A `[section]` that does not exist.
    #[error(
        "{}:{line}: unknown section [{section}]; valid sections are: {}",
        file.display(),
        section_names()
    )]
    UnknownSection {
        file: PathBuf,
        line: usize,
        section: String,
    },

    /// A value of the wrong TOML type, such as a string where a number belongs.
    #[error("{}:{line}: `{key}` must be {expected}, not {found}", file.display())]
    WrongType {
        file: PathBuf,
        line: usize,
        key: String,
        expected: String,
        found: String,
    },

    /// A value of the right type that is not valid, such as an address without a port.
    #[error("{}:{line}: `{key}` = {value}: {problem}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        key: String,
        /// The value as written in the file.
        value: String,
        problem: String,
    },

    /// A `SENTRY_*` environment variable with a value that is not valid.
    #[error("{var}={value}: {problem}")]
    InvalidEnv {
        var: String,
        value: String,
        problem: String,
    },

    /// A problem in a `[plugins.*]` section or a `[[rules]]` entry.
    #[error("{}:{line}: {message}", file.display())]
    At {
        file: PathBuf,
        line: usize,
        message: String,
    },

    /// Values that are valid alone but not together. `at` is `file:line` or `VAR=value`.
    #[error("{at}: {problem}")]
    Inconsistent { at: String, problem: String },
}

/// The section names, comma-separated.
fn section_names() -> String {
    let mut names: Vec<String> = SECTIONS
        .iter()
        .filter(|s| !s.name.is_empty())
        .map(|s| format!("[{}]", s.name))
        .collect();
    names.extend(["[projects.<slug>]", "[plugins.<name>]", "[[rules]]"].map(String::from));
    names.join(", ")
}

/// "unknown key `x` in [limits]; valid keys are: ...", with a hint when the key belongs to
/// another section.
struct UnknownKeyText<'a> {
    key: &'a str,
    section: &'a str,
}

impl fmt::Display for UnknownKeyText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let valid: Vec<&str> = KEYS
            .iter()
            .filter(|k| k.section == self.section)
            .map(|k| k.name)
            .collect();
        let valid = valid.join(", ");
        if self.section.is_empty() {
            write!(
                f,
                "unknown key `{}` at the top of the file; valid keys there are: {valid}; \
                 the other keys go in the sections {}",
                self.key,
                section_names()
            )?;
        } else {
            write!(
                f,
                "unknown key `{}` in [{}]; valid keys are: {valid}",
                self.key, self.section
            )?;
        }
        if let Some(home) = KEYS
            .iter()
            .find(|k| k.name == self.key && k.section != self.section)
        {
            if home.section.is_empty() {
                write!(
                    f,
                    " (`{}` goes at the top of the file, before any [section])",
                    self.key
                )?;
            } else {
                write!(f, " (`{}` belongs in [{}])", self.key, home.section)?;
            }
        }
        Ok(())
    }
}
