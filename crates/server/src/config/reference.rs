//! The commented reference config that `sentry init` writes, generated from the declaration
//! table so that it always lists every key with its default and its help text.

use std::fmt::Write as _;
use std::path::Path;

use super::Config;
use super::declare::{Kind, Parsed, SECTIONS, keys_of};
use super::value::valid_choices;

const HEADER: &str = "\
# Sentry configuration (sentry.toml).
#
# Written by `sentry init`. Every setting is listed below with its default value
# and what it does, so you can change one line and leave the rest alone. A line
# starting with # is a comment. A setting you delete or comment out keeps its
# default.
#
# Any setting can also be given as an environment variable, which wins over this
# file: SENTRY_ followed by the section and the name in capitals, as shown under
# each setting (for example SENTRY_LIMITS_MAX_EVENT_BYTES=2097152).
#
# After editing, run `sentry config check`, then restart Sentry.
";

/// The reference `sentry.toml`: every key, commented for a newcomer, set to its default, except
/// `bind` and `data_dir`, which are set to the given values.
pub fn reference_toml(bind: &str, data_dir: &Path) -> String {
    let defaults = Config::default();
    let mut out = String::from(HEADER);
    for section in SECTIONS {
        if !section.name.is_empty() {
            let _ = write!(out, "\n\n[{}]\n", section.name);
            comment(&mut out, section.help);
        }
        for key in keys_of(section.name) {
            out.push('\n');
            comment(&mut out, key.help);
            if let Kind::Choice { names, later } = key.kind {
                let mut text = format!("Valid values: {}.", valid_choices(names, later).join(", "));
                if !later.is_empty() {
                    let _ = write!(text, " Coming later: {}.", later.join(", "));
                }
                comment(&mut out, &text);
            }
            let _ = writeln!(out, "# Environment variable: {}", key.env_var());
            let value = match (section.name, key.name) {
                ("", "bind") => Some(quoted(bind)),
                ("", "data_dir") => Some(quoted(&data_dir.to_string_lossy())),
                _ => key.kind.to_toml(&(key.get)(&defaults)),
            };
            match value {
                Some(value) => {
                    let size = match (&key.kind, (key.get)(&defaults)) {
                        (Kind::Number { unit: "bytes", .. }, Parsed::Number(n)) => size(n),
                        _ => String::new(),
                    };
                    let _ = writeln!(out, "{} = {value}{size}", key.name);
                }
                None => {
                    let _ = writeln!(out, "# {} = {}", key.name, quoted(example(&key.kind)));
                }
            }
        }
    }
    out.push_str(super::projects::REFERENCE);
    out
}

/// Appends `text` as `# ` comment lines of at most 80 characters.
fn comment(out: &mut String, text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > 78 {
            let _ = writeln!(out, "# {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "# {line}");
    }
}

/// An example for an optional key, shown commented out.
fn example(kind: &Kind) -> &'static str {
    match kind {
        Kind::Url { example, .. } | Kind::Path { example } | Kind::Networks { example } => example,
        Kind::Address => "127.0.0.1:9000",
        Kind::Choice { names, .. } => names[0],
        Kind::Number { .. } => "0",
    }
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `  # 20 MiB` for a byte count that is a whole number of KiB, MiB or GiB.
fn size(bytes: u64) -> String {
    for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("  # {} {unit}", bytes / scale);
        }
    }
    String::new()
}
