//! Ownership rules: who owns an issue, in Sentry's syntax, one rule a line.
//!
//! ```text
//! # comments and blank lines are ignored
//! path:src/billing/*           #billing
//! module:shop.cart             alice@example.com
//! tags.server:web-*            #ops bob@example.com
//! url:https://shop.example.com/checkout/*  #web
//! ```
//!
//! A rule is a matcher (`path:`, `module:`, `url:` or `tags.KEY:`, then a glob where `*` is
//! any run of characters and `?` one) and one or more owners (`#team-slug` or a member's
//! email); the first owner is the one a new issue is assigned to. When several rules match an
//! event, **the last one wins** (Sentry's order). Paths and URLs match case-insensitively,
//! modules and tags exactly. Pure: parsing, checking owners against given teams and members,
//! and matching against an event's JSON.

use serde_json::Value;

/// The longest rules text a project may keep, in bytes.
pub const MAX_RULES_BYTES: usize = 64 * 1024;
/// The most rules a project may keep.
pub const MAX_RULES: usize = 500;
/// The longest pattern of one rule, in bytes.
const MAX_PATTERN_BYTES: usize = 500;
/// The most owners one rule may name.
const MAX_OWNERS: usize = 20;

/// What part of an event a rule looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// In-app frames' `abs_path` and `filename`.
    Path,
    /// In-app frames' `module`.
    Module,
    /// `request.url`.
    Url,
    /// The event's tag of this key.
    Tag(String),
}

/// Who a rule names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A team of the project's organisation, by slug (without the `#`).
    Team(String),
    /// A member of the project's organisation, by email.
    Email(String),
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Team(slug) => write!(f, "#{slug}"),
            Owner::Email(email) => f.write_str(email),
        }
    }
}

/// One rule: a matcher, its glob and its owners (at least one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its line in the text, from 1.
    pub line: usize,
    pub matcher: Matcher,
    pub pattern: String,
    pub owners: Vec<Owner>,
    /// The rule as written (trimmed), for the issue's timeline.
    pub text: String,
}

/// A line that is not a rule, or a rule naming an owner who isn't there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct RuleError {
    /// From 1; 0 for the text as a whole (too long).
    pub line: usize,
    pub reason: String,
}

/// A project's rules, in the order written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

impl Rules {
    /// Reads rules text; the first bad line is refused with its number and why.
    pub fn parse(text: &str) -> Result<Rules, RuleError> {
        if text.len() > MAX_RULES_BYTES {
            return Err(RuleError { line: 0, reason: format!("the rules are longer than {} KiB", MAX_RULES_BYTES / 1024) });
        }
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if rules.len() == MAX_RULES {
                return Err(RuleError { line, reason: format!("more than {MAX_RULES} rules") });
            }
            rules.push(parse_rule(line, trimmed).map_err(|reason| RuleError { line, reason })?);
        }
        Ok(Rules { rules })
    }

    /// Checks every owner against the organisation's team slugs and members' emails.
    pub fn check_owners(&self, teams: &[&str], emails: &[&str]) -> Result<(), RuleError> {
        for rule in &self.rules {
            for owner in &rule.owners {
                let known = match owner {
                    Owner::Team(slug) => teams.iter().any(|t| t.eq_ignore_ascii_case(slug)),
                    Owner::Email(email) => emails.iter().any(|e| e.eq_ignore_ascii_case(email)),
                };
                if !known {
                    let reason = match owner {
                        Owner::Team(slug) => format!("there is no team #{slug} in this organisation"),
                        Owner::Email(email) => format!("{email} is not a member of this organisation"),
                    };
                    return Err(RuleError { line: rule.line, reason });
                }
            }
        }
        Ok(())
    }

    /// The last rule that matches the event (its JSON and its stored tags), if any.
    pub fn owner_of(&self, event: &Value, tags: &[(String, String)]) -> Option<&Rule> {
        let facts = Facts::of(event);
        self.rules.iter().rev().find(|rule| rule.matches(&facts, tags))
    }
}

/// What rules look at in one event, read once.
struct Facts<'a> {
    paths: Vec<&'a str>,
    modules: Vec<&'a str>,
    url: Option<&'a str>,
}

impl<'a> Facts<'a> {
    fn of(event: &'a Value) -> Facts<'a> {
        let mut facts = Facts { paths: Vec::new(), modules: Vec::new(), url: event["request"]["url"].as_str() };
        let exceptions = match &event["exception"] {
            Value::Array(values) => values.as_slice(),
            other => other["values"].as_array().map(Vec::as_slice).unwrap_or_default(),
        };
        let traces = exceptions.iter().map(|e| &e["stacktrace"]).chain(std::iter::once(&event["stacktrace"]));
        for trace in traces {
            for frame in trace["frames"].as_array().into_iter().flatten() {
                // Sentry's "in app": the frames the SDK did not mark as a library's.
                if frame["in_app"] == Value::Bool(false) {
                    continue;
                }
                facts.paths.extend(["abs_path", "filename"].iter().filter_map(|k| frame[*k].as_str()));
                facts.modules.extend(frame["module"].as_str());
            }
        }
        facts
    }
}

impl Rule {
    fn matches(&self, facts: &Facts<'_>, tags: &[(String, String)]) -> bool {
        match &self.matcher {
            Matcher::Path => facts.paths.iter().any(|p| glob(&self.pattern, &p.replace('\\', "/"), true)),
            Matcher::Module => facts.modules.iter().any(|m| glob(&self.pattern, m, false)),
            Matcher::Url => facts.url.is_some_and(|u| glob(&self.pattern, u, true)),
            Matcher::Tag(key) => tags.iter().any(|(k, v)| k == key && glob(&self.pattern, v, false)),
        }
    }
}

fn parse_rule(line: usize, text: &str) -> Result<Rule, String> {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default();
    let Some((kind, pattern)) = first.split_once(':') else {
        return Err(format!("`{first}` is not a rule: write path:, module:, url: or tags.KEY: then a pattern, then owners"));
    };
    let matcher = match kind.to_ascii_lowercase().as_str() {
        "path" => Matcher::Path,
        "module" => Matcher::Module,
        "url" => Matcher::Url,
        other => match other.strip_prefix("tags.") {
            Some(key) if !key.is_empty() => Matcher::Tag(kind["tags.".len()..].to_string()),
            Some(_) => return Err("`tags.` needs a tag name, as in tags.server:web-*".into()),
            None => return Err(format!("unknown rule type `{kind}`: use path, module, url or tags.KEY")),
        },
    };
    if pattern.is_empty() {
        return Err(format!("`{kind}:` needs a pattern after the colon"));
    }
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!("the pattern is longer than {MAX_PATTERN_BYTES} characters"));
    }
    let mut owners = Vec::new();
    for word in words {
        let owner = if let Some(slug) = word.strip_prefix('#') {
            if slug.is_empty() {
                return Err("`#` needs a team name after it, as in #billing".into());
            }
            Owner::Team(slug.to_ascii_lowercase())
        } else if crate::checks::email(word).is_ok() {
            Owner::Email(word.to_ascii_lowercase())
        } else {
            return Err(format!("`{word}` is not an owner: write #team or a member's email"));
        };
        if owners.len() == MAX_OWNERS {
            return Err(format!("more than {MAX_OWNERS} owners"));
        }
        owners.push(owner);
    }
    if owners.is_empty() {
        return Err(format!("`{first}` names no owner: add #team or a member's email after it"));
    }
    Ok(Rule { line, matcher, pattern: pattern.to_string(), owners, text: text.split_whitespace().collect::<Vec<_>>().join(" ") })
}

/// Whether `text` matches the glob `pattern` (`*`: any run, `?`: one character). Linear in
/// `pattern.len() × text.len()` at worst: one backtrack point, the last `*`.
fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let fold = |c: char| if ignore_case { c.to_lowercase().next().unwrap_or(c) } else { c };
    let p: Vec<char> = pattern.chars().map(fold).collect();
    let t: Vec<char> = text.chars().map(fold).collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RULES: &str = "\
# who owns what
path:src/billing/* #billing
module:shop.cart alice@example.com #shop

tags.server:web-* #ops bob@example.com
url:https://shop.example.com/checkout/* #web
path:*/vendor/* #nobody-reads-this
";

    fn frames(frames: Value) -> Value {
        json!({"exception": {"values": [{"type": "E", "stacktrace": {"frames": frames}}]}})
    }

    /// Rules × events → the owner of the winning rule (its first owner), or "".
    fn check(event: Value, tags: &[(&str, &str)], expected: &str) {
        let rules = Rules::parse(RULES).unwrap();
        let tags: Vec<(String, String)> = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let got = rules.owner_of(&event, &tags).map(|r| r.owners[0].to_string()).unwrap_or_default();
        assert_eq!(got, expected, "event {event}");
    }

    #[test]
    fn owners_of_events() {
        check(frames(json!([{"filename": "src/billing/pay.py", "in_app": true}])), &[], "#billing");
        // Paths match case-insensitively, by abs_path too, with backslashes as slashes.
        check(frames(json!([{"abs_path": "SRC/Billing/pay.py"}])), &[], "#billing");
        check(frames(json!([{"abs_path": "src\\billing\\pay.py"}])), &[], "#billing");
        // A library's frame doesn't count.
        check(frames(json!([{"filename": "src/billing/pay.py", "in_app": false}])), &[], "");
        // Any exception of a chain, and the event's own stack trace.
        check(json!({"exception": [{"stacktrace": {"frames": []}}, {"stacktrace": {"frames": [{"filename": "src/billing/x.py"}]}}]}), &[], "#billing");
        check(json!({"stacktrace": {"frames": [{"filename": "src/billing/x.py"}]}}), &[], "#billing");
        // Modules match exactly.
        check(frames(json!([{"module": "shop.cart"}])), &[], "alice@example.com");
        check(frames(json!([{"module": "Shop.Cart"}])), &[], "");
        check(frames(json!([{"module": "shop.cart.items"}])), &[], "");
        // Tags: the key exactly, the value by glob.
        check(json!({}), &[("server", "web-3")], "#ops");
        check(json!({}), &[("server", "db-1")], "");
        check(json!({}), &[("Server", "web-3")], "");
        // URLs, case-insensitively; `?` is one character.
        check(json!({"request": {"url": "https://SHOP.example.com/checkout/pay"}}), &[], "#web");
        check(json!({"request": {"url": "https://shop.example.com/cart"}}), &[], "");
        // The last matching rule wins.
        check(frames(json!([{"filename": "src/billing/pay.py"}, {"module": "shop.cart"}])), &[("server", "web-1")], "#ops");
        check(frames(json!([{"filename": "app/vendor/src/billing/x.py"}])), &[], "#nobody-reads-this");
        check(json!({"request": {"url": "https://shop.example.com/checkout/"}}), &[("server", "web-1")], "#web");
    }

    #[test]
    fn globs() {
        for (pattern, text, ok) in [
            ("*", "", true),
            ("a*b", "ab", true),
            ("a*b", "axxb", true),
            ("a*b", "axxbc", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*.py", "src/x.py", true),
            ("src/*", "src/a/b/c", true),
            ("*a*a*a*a*a*b", &"a".repeat(2000), false),
        ] {
            assert_eq!(glob(pattern, text, false), ok, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn bad_lines() {
        for (text, line, reason) in [
            ("path:src/*", 1, "`path:src/*` names no owner: add #team or a member's email after it"),
            ("\n# ok\nfile:src/* #a", 3, "unknown rule type `file`: use path, module, url or tags.KEY"),
            ("src/billing #a", 1, "`src/billing` is not a rule: write path:, module:, url: or tags.KEY: then a pattern, then owners"),
            ("path: #a", 1, "`path:` needs a pattern after the colon"),
            ("tags.:x #a", 1, "`tags.` needs a tag name, as in tags.server:web-*"),
            ("path:x # #a", 1, "`#` needs a team name after it, as in #billing"),
            ("path:x #a\nurl:y alice", 2, "`alice` is not an owner: write #team or a member's email"),
        ] {
            let err = Rules::parse(text).unwrap_err();
            assert_eq!((err.line, err.reason.as_str()), (line, reason), "{text:?}");
        }
        assert_eq!(Rules::parse(&"#\n".repeat(MAX_RULES_BYTES)).unwrap_err().line, 0);
        assert_eq!(Rules::parse(&"path:x #a\n".repeat(MAX_RULES + 1)).unwrap_err().line, MAX_RULES + 1);
    }

    #[test]
    fn owners_are_checked() {
        let rules = Rules::parse(RULES).unwrap();
        let teams = ["billing", "shop", "ops", "web", "nobody-reads-this"];
        rules.check_owners(&teams, &["alice@example.com", "BOB@example.com"]).unwrap();
        let err = rules.check_owners(&teams, &["alice@example.com"]).unwrap_err();
        assert_eq!(err.to_string(), "line 5: bob@example.com is not a member of this organisation");
        let err = rules.check_owners(&teams[..4], &["alice@example.com", "bob@example.com"]).unwrap_err();
        assert_eq!(err.to_string(), "line 7: there is no team #nobody-reads-this in this organisation");
    }

    #[test]
    fn rule_text_is_kept_for_the_timeline() {
        let rules = Rules::parse("  path:src/billing/*    #billing  ").unwrap();
        assert_eq!(rules.rules[0].text, "path:src/billing/* #billing");
        assert_eq!(rules.rules[0].owners, [Owner::Team("billing".into())]);
    }
}
