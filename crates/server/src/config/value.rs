//! Reading one value for a declared key, from the file or from a `SENTRY_*` variable, and
//! writing it back as TOML: the per-[`Kind`] rules and the words used to describe them.

use std::path::{Path, PathBuf};

use toml::de::DeValue;

use super::declare::{Key, Kind, Parsed};
use super::{Config, expand_home};

/// A value as found: a TOML value from the file, or the text of an environment variable.
pub(super) enum Raw<'a> {
    Toml(&'a DeValue<'a>),
    Env(&'a str),
}

/// Why a value was refused.
pub(super) enum Problem {
    /// The file holds another TOML type; `found` says which ("a string", "a list", ...).
    WrongType { found: &'static str },
    /// The type is right but the value is not; the text says why and what would be valid.
    Invalid(String),
}

/// How relative paths and a leading `~` are resolved.
pub(super) struct PathRules<'a> {
    pub home: &'a Path,
    /// Directory relative paths start from: the config file's, or the current one when `None`.
    pub base: Option<&'a Path>,
}

impl Kind {
    /// Reads `raw` as a value of this kind for `key`.
    pub fn read(&self, key: &Key, raw: Raw<'_>, paths: &PathRules<'_>) -> Result<Parsed, Problem> {
        if let Kind::Number { min, max, .. } = *self {
            return read_number(raw, min, max);
        }
        let text = match raw {
            Raw::Toml(DeValue::String(s)) => s.as_ref(),
            Raw::Toml(other) => {
                return Err(Problem::WrongType {
                    found: type_name(other),
                });
            }
            Raw::Env(s) => s,
        };
        if key.optional && text.is_empty() {
            return Ok(Parsed::Unset);
        }
        match *self {
            Kind::Address => super::parse_bind(text)
                .map(Parsed::Address)
                .ok_or_else(|| {
                    Problem::Invalid(
                        "not an address; write it as IP:PORT, for example \"127.0.0.1:9000\""
                            .into(),
                    )
                }),
            Kind::Url { schemes, example } => {
                let valid = text.split_once("://").is_some_and(|(scheme, rest)| {
                    schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme))
                        && !rest.is_empty()
                        && !rest.contains(char::is_whitespace)
                });
                if valid {
                    Ok(Parsed::Text(text.to_string()))
                } else {
                    let starts: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
                    Err(Problem::Invalid(format!(
                        "not a URL; write it starting with {}, for example \"{example}\"",
                        starts.join(" or ")
                    )))
                }
            }
            Kind::Path { example } => {
                if text.is_empty() {
                    return Err(Problem::Invalid(format!(
                        "a path can't be empty; for example \"{example}\""
                    )));
                }
                Ok(Parsed::Path(resolve(text, paths)))
            }
            Kind::Choice { names, later } => {
                let valid = valid_choices(names, later).join(", ");
                if let Some(l) = later.iter().find(|l| l.eq_ignore_ascii_case(text)) {
                    Err(Problem::Invalid(format!(
                        "{l} is not available yet; valid: {valid}"
                    )))
                } else if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
                    Ok(Parsed::Choice(i))
                } else {
                    Err(Problem::Invalid(format!(
                        "not a valid value; valid: {valid}"
                    )))
                }
            }
            Kind::Networks { example } => match super::parse_networks(text) {
                Ok(_) => Ok(Parsed::Text(text.to_string())),
                Err(bad) => Err(Problem::Invalid(format!(
                    "`{bad}` is not an address or a range; write addresses or CIDR ranges separated by commas, for example \"{example}\""
                ))),
            },
            Kind::Number { .. } => unreachable!("numbers are read above"),
        }
    }

    /// What a value of this kind looks like, for "must be ..." messages.
    pub fn describe(&self, key: &Key) -> String {
        match *self {
            Kind::Address => {
                "an address written as IP:PORT (for example \"127.0.0.1:9000\")".into()
            }
            Kind::Url { example, .. } => format!("a URL in quotes (for example \"{example}\")"),
            Kind::Path { example } => format!("a path in quotes (for example \"{example}\")"),
            Kind::Networks { example } => {
                format!("addresses or ranges in quotes, separated by commas (for example \"{example}\")")
            }
            Kind::Choice { names, later } => {
                let quoted: Vec<String> = valid_choices(names, later)
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect();
                format!("one of {}", quoted.join(", "))
            }
            Kind::Number { unit, .. } => {
                let example = match (key.get)(&Config::default()) {
                    Parsed::Number(n) if n > 0 => n,
                    _ => 1000,
                };
                let unit = if unit.is_empty() {
                    String::new()
                } else {
                    format!(" of {unit}")
                };
                format!("a whole number{unit} (for example {example})")
            }
        }
    }

    /// `value` written as TOML, or `None` when it is unset.
    pub fn to_toml(&self, value: &Parsed) -> Option<String> {
        let quoted = |s: &str| toml::Value::String(s.to_string()).to_string();
        Some(match value {
            Parsed::Unset => return None,
            Parsed::Address(a) => quoted(&a.to_string()),
            Parsed::Text(t) => quoted(t),
            Parsed::Path(p) => quoted(&p.to_string_lossy()),
            Parsed::Choice(i) => match self {
                Kind::Choice { names, .. } => quoted(names[*i]),
                _ => unreachable!("a choice value for a key that is not a choice"),
            },
            Parsed::Number(n) => n.to_string(),
        })
    }
}

/// The names of a choice that can be used today.
pub(super) fn valid_choices(names: &[&'static str], later: &[&str]) -> Vec<&'static str> {
    names
        .iter()
        .copied()
        .filter(|n| !later.contains(n))
        .collect()
}

/// A TOML value's type in plain words.
pub(super) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "a whole number",
        DeValue::Float(_) => "a decimal number",
        DeValue::Boolean(_) => "true or false",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

fn read_number(raw: Raw<'_>, min: u64, max: u64) -> Result<Parsed, Problem> {
    let n = match raw {
        Raw::Toml(DeValue::Integer(i)) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        Raw::Toml(other) => {
            return Err(Problem::WrongType {
                found: type_name(other),
            });
        }
        Raw::Env(s) => {
            let s = s.trim().replace('_', "");
            let n = s.parse::<i128>().ok();
            if n.is_none() {
                return Err(Problem::WrongType { found: "text" });
            }
            n
        }
    };
    match n {
        Some(n) if n < 0 && min == 0 => Err(Problem::Invalid("can't be negative".into())),
        Some(n) if n < i128::from(min) => Err(Problem::Invalid(format!("must be at least {min}"))),
        Some(n) if n <= i128::from(max) => Ok(Parsed::Number(n as u64)),
        _ => Err(Problem::Invalid(format!("must be at most {max}"))),
    }
}

/// Expands `~`, then makes a relative path start from `paths.base` (or the current directory).
fn resolve(text: &str, paths: &PathRules<'_>) -> PathBuf {
    let path = expand_home(text, paths.home);
    let path = match paths.base {
        Some(base) if path.is_relative() => base.join(path),
        _ => path,
    };
    std::path::absolute(&path).unwrap_or(path)
}
