//! Server-side data scrubbing, before anything is written: a field whose name holds a sensitive
//! word (passwords, secrets, tokens, authorization headers, cookies…, plus a project's own
//! words) becomes `[Filtered]` whole; in every other string, credit-card numbers, IBANs, PEM
//! private keys, the password of a URL, a `Bearer` token and the value of a sensitive
//! `key=value` pair become `[Filtered]`. A project's safe fields are left as sent.
//!
//! What was scrubbed is said in the event itself, the way SDKs say what they removed: under
//! `_meta`, at the field's path, `{"": {"rem": [["@password:filter", "s"]]}}` (rule, "s" for
//! substituted).
//!
//! Cost: most events hold nothing to scrub, so the raw bytes are first scanned for anything
//! that could match (one pass, no allocation); only a payload that may hold a secret is parsed
//! whole, scrubbed and written again. The scan is conservative: an ASCII letter or digit
//! written as a `\u00XX` escape, or an escaped `/`, sends the payload through the full pass.

pub mod detect;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde_json::{Map, Value};

/// What a scrubbed value becomes.
pub const FILTERED: &str = "[Filtered]";

/// Words that make a field sensitive wherever they appear in its name, in any case.
pub const DEFAULT_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "api-key",
    "auth",
    "credentials",
    "mysql_pwd",
    "privatekey",
    "private_key",
    "token",
    "session_key",
    "sessionid",
    "cookie",
];

/// A project's scrubbing settings (`[projects.<slug>]` in the config file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrubConfig {
    /// `false`: nothing is scrubbed by the server (the SDK's own filtering still applies).
    pub enabled: bool,
    /// More words that make a field sensitive, beside [`DEFAULT_FIELDS`].
    pub fields: Vec<String>,
    /// Field names (whole, any case) that are never scrubbed, nor anything inside them.
    pub safe_fields: Vec<String>,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        ScrubConfig { enabled: true, fields: Vec::new(), safe_fields: Vec::new() }
    }
}

/// One project's scrubber, built once from its settings.
pub struct Scrubber {
    enabled: bool,
    /// The sensitive words, for field names and `key=value` keys.
    fields: AhoCorasick,
    /// The sensitive words and the openings of value patterns, for the raw-bytes scan.
    hints: AhoCorasick,
    safe: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber").field("enabled", &self.enabled).field("safe", &self.safe).finish()
    }
}

impl Default for Scrubber {
    fn default() -> Self {
        Scrubber::new(&ScrubConfig::default())
    }
}

/// One pass over a string: the string with what it found replaced, or `None`.
type Pass = dyn Fn(&Scrubber, &str, &mut Vec<String>) -> Option<String>;

/// Rule names in `_meta`.
const RULE_FIELD: &str = "@password:filter";
const RULE_CARD: &str = "@creditcard:filter";
const RULE_IBAN: &str = "@iban:filter";
const RULE_PEM: &str = "@pemkey:filter";
const RULE_URL: &str = "@urlauth:filter";
const RULE_BEARER: &str = "@bearer:filter";

impl Scrubber {
    pub fn new(config: &ScrubConfig) -> Scrubber {
        let words: Vec<String> = DEFAULT_FIELDS
            .iter()
            .map(|w| w.to_string())
            .chain(config.fields.iter().map(|w| w.to_ascii_lowercase()).filter(|w| !w.is_empty()))
            .collect();
        let build = |patterns: &[String]| {
            AhoCorasickBuilder::new()
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostFirst)
                .build(patterns)
                .expect("plain words always build")
        };
        let mut hints = words.clone();
        hints.extend(["-----begin".to_string(), "bearer ".to_string(), "\\/".to_string()]);
        Scrubber {
            enabled: config.enabled,
            fields: build(&words),
            hints: build(&hints),
            safe: config.safe_fields.iter().map(|f| f.to_ascii_lowercase()).collect(),
        }
    }

    pub(crate) fn is_safe(&self, key: &str) -> bool {
        self.safe.iter().any(|s| key.eq_ignore_ascii_case(s))
    }

    pub(crate) fn is_sensitive(&self, key: &str) -> bool {
        self.fields.is_match(key)
    }

    /// A payload with its secrets replaced and `_meta` saying where, or `None` when there is
    /// nothing to scrub (or it is not a JSON object: the normaliser refuses it).
    pub fn payload(&self, raw: &[u8]) -> Option<Vec<u8>> {
        if !self.enabled || !self.may_hold_secrets(raw) {
            return None;
        }
        // Most events that pass the scan above still hold nothing to scrub (the SDK filtered
        // them, or a word is in a file path): a pass over the JSON that builds nothing says so.
        if let Ok(false) = detect::holds_secrets(self, raw) {
            return None;
        }
        // What the normaliser repairs (Python's `NaN`, lone surrogates, bad UTF-8) is repaired
        // here too, so such an event is scrubbed like any other.
        let mut value: Value = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(_) => serde_json::from_slice(&protocol::event::repair_json(raw)?).ok()?,
        };
        if !value.is_object() || self.value(&mut value) == 0 {
            return None;
        }
        serde_json::to_vec(&value).ok()
    }

    /// Scrubs a JSON object in place, recording what it scrubbed in its `_meta`; returns how
    /// many values were scrubbed.
    pub fn value(&self, value: &mut Value) -> usize {
        if !self.enabled {
            return 0;
        }
        let Value::Object(map) = value else { return 0 };
        let mut found = Found::default();
        for (key, child) in map.iter_mut() {
            if key != "_meta" {
                self.field(key, child, &mut vec![Part::Key(key)], &mut found);
            }
        }
        // A secret found under a sensitive name is a secret wherever else it appears (a session
        // id in a logged SQL statement, a token in a URL).
        found.secrets.sort_unstable();
        found.secrets.dedup();
        if !found.secrets.is_empty()
            && let Ok(known) = AhoCorasick::new(&found.secrets)
        {
            for (key, child) in map.iter_mut() {
                if key != "_meta" {
                    repeated(&known, child, &mut vec![Part::Key(key)], &mut found.removed);
                }
            }
        }
        let removed = found.removed;
        let n = removed.len();
        if n > 0 {
            let meta = map.entry("_meta").or_insert_with(|| Value::Object(Map::new()));
            for (path, rule) in removed {
                record(meta, &path, rule);
            }
        }
        n
    }

    /// Whether the raw bytes could hold anything to scrub.
    pub fn may_hold_secrets(&self, raw: &[u8]) -> bool {
        self.hints.is_match(raw) || has_value_pattern(raw)
    }

    fn field<'a>(&self, key: &str, child: &'a mut Value, path: &mut Vec<Part<'a>>, found: &mut Found) {
        if self.is_safe(key) {
            return;
        }
        if self.is_sensitive(key) {
            if !nothing_left(child) {
                collect_secrets(child, &mut found.secrets);
                *child = Value::String(FILTERED.into());
                found.removed.push((owned(path), RULE_FIELD));
            }
            return;
        }
        self.walk(child, path, found);
    }

    fn walk<'a>(&self, v: &'a mut Value, path: &mut Vec<Part<'a>>, found: &mut Found) {
        match v {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    path.push(Part::Key(key));
                    self.field(key, child, path, found);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    path.push(Part::Index(i));
                    // A list of pairs (headers, tags, cookies as sent by some SDKs): the first
                    // is the second's name.
                    let is_pair = matches!(&*child, Value::Array(pair) if pair.len() == 2 && pair[0].is_string());
                    if !is_pair {
                        self.walk(child, path, found);
                    } else if let Value::Array(pair) = child {
                        let (name, value) = pair.split_at_mut(1);
                        let name: &'a [Value] = name;
                        path.push(Part::Index(1));
                        self.field(name[0].as_str().unwrap_or_default(), &mut value[0], path, found);
                        path.pop();
                    }
                    path.pop();
                }
            }
            Value::String(s) => {
                if let Some((text, rule)) = self.text(s, &mut found.secrets) {
                    *s = text;
                    found.removed.push((owned(path), rule));
                }
            }
            _ => {}
        }
    }

    /// One string with the secrets inside it replaced, and the first rule that matched.
    pub(crate) fn text(&self, s: &str, secrets: &mut Vec<String>) -> Option<(String, &'static str)> {
        // The cheap checks first: most strings are short and hold nothing; then only the
        // passes whose opening is there.
        if s.len() < 4 {
            return None;
        }
        let b = s.as_bytes();
        let values = value_patterns(b);
        // A sensitive word matters only before a `=` or `:` (the pairs pass).
        let words = memchr::memchr2(b'=', b':', b).is_some() && self.fields.is_match(s);
        let pem_at = memchr::memmem::find(b, b"-----BEGIN ").is_some();
        let bearer_at = memchr::memmem::find(b, b"earer ").is_some() || memchr::memmem::find(b, b"EARER ").is_some();
        if values & (DIGITS | IBAN | URL) == 0 && !(words || pem_at || bearer_at) {
            return None;
        }
        let mut out = std::borrow::Cow::Borrowed(s);
        let mut rule = None;
        let passes: [(bool, &'static str, &Pass); 6] = [
            (pem_at, RULE_PEM, &|_, s, _| pem(s)),
            (values & URL != 0, RULE_URL, &|_, s, _| url_password(s)),
            (bearer_at, RULE_BEARER, &|_, s, _| bearer(s)),
            (words, RULE_FIELD, &|me, s, secrets| me.pairs(s, secrets)),
            (values & DIGITS != 0, RULE_CARD, &|_, s, _| digits(s, card_at)),
            (values & (DIGITS | IBAN) != 0, RULE_IBAN, &|_, s, _| iban(s)),
        ];
        for (wanted, name, pass) in passes {
            if !wanted {
                continue;
            }
            if let Some(t) = pass(self, &out, secrets) {
                out = std::borrow::Cow::Owned(t);
                rule.get_or_insert(name);
            }
        }
        rule.map(|r| (out.into_owned(), r))
    }

    /// `key=value` and `key: value` inside text (query strings, form bodies, log lines, SQL,
    /// a dict printed by Python) whose key is sensitive; the key may be quoted, the value too.
    fn pairs(&self, s: &str, secrets: &mut Vec<String>) -> Option<String> {
        let b = s.as_bytes();
        let ident = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'[' | b']' | b'%');
        let mut out = String::new();
        let mut copied = 0;
        for m in self.fields.find_iter(s) {
            if m.start() < copied {
                continue;
            }
            let key_start = b[..m.start()].iter().rposition(|c| !ident(*c)).map_or(0, |p| p + 1);
            let mut i = m.end();
            while i < b.len() && ident(b[i]) && b[i] != b'.' {
                i += 1;
            }
            let key = &s[key_start..i];
            while i < b.len() && matches!(b[i], b'"' | b'\'' | b'`' | b']') {
                i += 1;
            }
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i >= b.len() || !matches!(b[i], b'=' | b':') {
                continue;
            }
            i += 1;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            let (from, to) = match b.get(i) {
                Some(&q @ (b'"' | b'\'')) => match b[i + 1..].iter().position(|c| *c == q) {
                    Some(len) => (i + 1, i + 1 + len),
                    None => continue,
                },
                _ => {
                    let len = b[i..]
                        .iter()
                        .position(|c| matches!(c, b'&' | b';' | b' ' | b'\n' | b'\t' | b'"' | b'\'' | b',' | b')' | b'}'))
                        .unwrap_or(b.len() - i);
                    (i, i + len)
                }
            };
            let value = &s[from..to];
            if value.is_empty() || value == FILTERED || self.is_safe(key) {
                continue;
            }
            if value.len() >= MIN_SECRET {
                secrets.push(value.to_string());
            }
            out.push_str(&s[copied..from]);
            out.push_str(FILTERED);
            copied = to;
        }
        (copied > 0).then(|| {
            out.push_str(&s[copied..]);
            out
        })
    }
}

/// What one event's pass found: the paths scrubbed with their rule, and the secrets seen.
#[derive(Default)]
struct Found {
    removed: Vec<(Vec<String>, &'static str)>,
    secrets: Vec<String>,
}

/// Whether a sensitive value holds nothing to hide: empty, or filtered already (by the SDK),
/// all through.
pub(crate) fn nothing_left(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(_) => true,
        Value::String(s) => s.is_empty() || s == FILTERED,
        Value::Array(items) => items.iter().all(nothing_left),
        Value::Object(map) => map.values().all(nothing_left),
        Value::Number(_) => false,
    }
}

/// One step of a path into the event, borrowed while it is walked.
#[derive(Clone, Copy)]
enum Part<'a> {
    Key(&'a str),
    Index(usize),
}

/// A path to keep, for `_meta`.
fn owned(path: &[Part<'_>]) -> Vec<String> {
    path.iter()
        .map(|p| match p {
            Part::Key(k) => k.to_string(),
            Part::Index(i) => i.to_string(),
        })
        .collect()
}

/// A secret shorter than this is not looked for elsewhere in the event (it would match too
/// much that is not secret).
const MIN_SECRET: usize = 8;

/// The strings of a sensitive value worth looking for elsewhere: the value itself, and the
/// values of the `key=value` pairs it holds (a `Cookie` header).
fn collect_secrets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if s.len() >= MIN_SECRET && s != FILTERED {
                out.push(s.clone());
            }
            for part in s.split([';', '&', ',']) {
                if let Some((_, value)) = part.split_once('=')
                    && value.trim().len() >= MIN_SECRET
                {
                    out.push(value.trim().to_string());
                }
            }
        }
        Value::Array(items) => items.iter().take(100).for_each(|i| collect_secrets(i, out)),
        Value::Object(map) => map.values().take(100).for_each(|i| collect_secrets(i, out)),
        _ => {}
    }
}

/// Replaces the known secrets wherever else they appear.
fn repeated<'a>(known: &AhoCorasick, v: &'a mut Value, path: &mut Vec<Part<'a>>, removed: &mut Vec<(Vec<String>, &'static str)>) {
    match v {
        Value::String(s) if s != FILTERED && known.is_match(s.as_str()) => {
            *s = known.replace_all(s, &vec![FILTERED; known.patterns_len()]);
            removed.push((owned(path), RULE_FIELD));
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                path.push(Part::Index(i));
                repeated(known, child, path, removed);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                path.push(Part::Key(key));
                repeated(known, child, path, removed);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Writes one removal into `_meta` at `path`.
fn record(meta: &mut Value, path: &[String], rule: &'static str) {
    let mut node = meta;
    for part in path {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        node = node.as_object_mut().expect("made an object").entry(part.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let own = node.as_object_mut().expect("made an object").entry("").or_insert_with(|| Value::Object(Map::new()));
    if !own.is_object() {
        *own = Value::Object(Map::new());
    }
    let rem = own.as_object_mut().expect("made an object").entry("rem").or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = rem {
        list.push(serde_json::json!([rule, "s"]));
    }
}

/// The raw-bytes scan for value patterns: a run of 13 or more digits (cards, IBANs written in
/// groups), an IBAN's opening, a URL with a password, or an escaped ASCII character.
fn has_value_pattern(raw: &[u8]) -> bool {
    value_patterns(raw) != 0
}

const DIGITS: u8 = 1;
const IBAN: u8 = 2;
const URL: u8 = 4;
const ESCAPE: u8 = 8;

/// Which value patterns the bytes may hold, as flags.
fn value_patterns(raw: &[u8]) -> u8 {
    let mut found = 0;
    let mut run = 0usize;
    for (i, &c) in raw.iter().enumerate() {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 13 {
                found |= DIGITS;
            }
            continue;
        }
        if !(c == b' ' || c == b'-') || i == 0 || !raw[i - 1].is_ascii_digit() {
            run = 0;
        }
        match c {
            b'\\' if raw.get(i + 1) == Some(&b'u') && raw.get(i + 2) == Some(&b'0') && raw.get(i + 3) == Some(&b'0') => {
                if matches!(raw.get(i + 4), Some(b'0'..=b'7')) {
                    found |= ESCAPE;
                }
            }
            b':' if raw.get(i + 1) == Some(&b'/') && raw.get(i + 2) == Some(&b'/') && url_has_password(&raw[i + 3..]) => {
                found |= URL;
            }
            b'A'..=b'Z' if i + 15 <= raw.len() && iban_shape(&raw[i..]) && (i == 0 || !raw[i - 1].is_ascii_alphanumeric()) => {
                found |= IBAN;
            }
            _ => {}
        }
    }
    found
}

/// The authority after `://`: whether it holds `user:password@`.
fn url_has_password(rest: &[u8]) -> bool {
    let end = rest.iter().position(|c| matches!(c, b'/' | b'?' | b'#' | b'"' | b'\'' | b' ' | b'\\')).unwrap_or(rest.len());
    let authority = &rest[..end];
    match authority.iter().rposition(|c| *c == b'@') {
        Some(at) => authority[..at].contains(&b':'),
        None => false,
    }
}

fn url_password(s: &str) -> Option<String> {
    if !s.contains("://") {
        return None;
    }
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(off) = s[from..].find("://") {
        let start = from + off + 3;
        let rest = &s[start..];
        let end = rest.find(['/', '?', '#', '"', '\'', ' ', '\\']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
            && &authority[colon + 1..at] != FILTERED
        {
            out.push_str(&s[copied..start + colon + 1]);
            out.push_str(FILTERED);
            copied = start + at;
        }
        from = start + end;
    }
    (copied > 0).then(|| {
        out.push_str(&s[copied..]);
        out
    })
}

/// `Bearer <token>` anywhere in a string.
fn bearer(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(off) = lower[from..].find("bearer ") {
        let start = from + off + "bearer ".len();
        let len = s[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=')))
            .unwrap_or(s.len() - start);
        if len >= 8 {
            out.push_str(&s[copied..start]);
            out.push_str(FILTERED);
            copied = start + len;
        }
        from = start + len.max(1).min(s.len() - start);
        if from >= s.len() {
            break;
        }
    }
    (copied > 0).then(|| {
        out.push_str(&s[copied..]);
        out
    })
}

/// A PEM private key block, up to its end line (or the end of the string).
fn pem(s: &str) -> Option<String> {
    let begin = s.find("-----BEGIN ")?;
    let header_end = s[begin + 11..].find("-----")? + begin + 11;
    if !s[begin..header_end].contains("PRIVATE KEY") {
        return None;
    }
    let end = match s[header_end + 5..].find("-----END ") {
        Some(e) => {
            let e = header_end + 5 + e + 9;
            s[e..].find("-----").map_or(s.len(), |p| e + p + 5)
        }
        None => s.len(),
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..begin]);
    out.push_str(FILTERED);
    let rest = &s[end..];
    // Another key further on.
    out.push_str(&pem(rest).unwrap_or_else(|| rest.to_string()));
    Some(out)
}

/// Replaces every run of digits (with single spaces or dashes between them) that `matches`
/// says is a secret, when it stands alone (no letter or digit right before or after).
fn digits(s: &str, matches: fn(&[u8]) -> bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        let mut found = [0u8; 20];
        let mut n = 0;
        while end < b.len() {
            if b[end].is_ascii_digit() {
                if n < found.len() {
                    found[n] = b[end];
                }
                n += 1;
                end += 1;
            } else if matches!(b[end], b' ' | b'-') && end + 1 < b.len() && b[end + 1].is_ascii_digit() {
                end += 1;
            } else {
                break;
            }
        }
        let alone = end == b.len() || !b[end].is_ascii_alphanumeric();
        if alone && n < found.len() && matches(&found[..n]) {
            out.push_str(&s[copied..start]);
            out.push_str(FILTERED);
            copied = end;
        }
        i = end.max(start + 1);
    }
    (copied > 0).then(|| {
        out.push_str(&s[copied..]);
        out
    })
}

/// 13 to 19 digits that start like a card number (2–6) and pass the Luhn check.
fn card_at(d: &[u8]) -> bool {
    if !(13..=19).contains(&d.len()) || !(b'2'..=b'6').contains(&d[0]) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let n = u32::from(c - b'0');
            if i % 2 == 1 {
                let m = n * 2;
                if m > 9 { m - 9 } else { m }
            } else {
                n
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Two capital letters and two digits, then at least 11 more capitals or digits.
fn iban_shape(b: &[u8]) -> bool {
    b.len() >= 15
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2].is_ascii_digit()
        && b[3].is_ascii_digit()
        && b[4..].iter().take(11).all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b' ')
}

/// IBANs (compact or in groups of four), checked with their mod-97 check digits.
fn iban(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i + 15 <= b.len() {
        if !(iban_shape(&b[i..]) && (i == 0 || !b[i - 1].is_ascii_alphanumeric())) {
            i += 1;
            continue;
        }
        let mut end = i + 4;
        let mut compact: Vec<u8> = b[i..i + 4].to_vec();
        while end < b.len() && compact.len() < 34 {
            let c = b[end];
            if c.is_ascii_uppercase() || c.is_ascii_digit() {
                compact.push(c);
                end += 1;
            } else if c == b' ' && end + 1 < b.len() && (b[end + 1].is_ascii_uppercase() || b[end + 1].is_ascii_digit()) {
                end += 1;
            } else {
                break;
            }
        }
        let alone = end == b.len() || !b[end].is_ascii_alphanumeric();
        if alone && (15..=34).contains(&compact.len()) && mod97(&compact) {
            out.push_str(&s[copied..i]);
            out.push_str(FILTERED);
            copied = end;
            i = end;
        } else {
            i += 1;
        }
    }
    (copied > 0).then(|| {
        out.push_str(&s[copied..]);
        out
    })
}

fn mod97(iban: &[u8]) -> bool {
    let rotated = iban[4..].iter().chain(&iban[..4]);
    let mut rem: u32 = 0;
    for c in rotated {
        let v = if c.is_ascii_digit() { u32::from(c - b'0') } else { u32::from(c - b'A') + 10 };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(config: &ScrubConfig, input: Value, expected: Value, paths: &[&str]) {
        let raw = serde_json::to_vec(&input).unwrap();
        let s = Scrubber::new(config);
        // The pass that builds nothing never misses what the full walk scrubs.
        if s.value(&mut input.clone()) > 0 {
            assert!(detect::holds_secrets(&s, &raw).unwrap(), "detect missed {input}");
        }
        let out = s.payload(&raw).map(|b| serde_json::from_slice::<Value>(&b).unwrap()).unwrap_or(input);
        let mut got = out.clone();
        let meta = got.as_object_mut().unwrap().remove("_meta");
        assert_eq!(got, expected);
        let mut found = Vec::new();
        fn collect(v: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
            if let Value::Object(m) = v {
                for (k, c) in m {
                    if k.is_empty() {
                        out.push(path.join("."));
                    } else {
                        path.push(k.clone());
                        collect(c, path, out);
                        path.pop();
                    }
                }
            }
        }
        if let Some(m) = &meta {
            collect(m, &mut Vec::new(), &mut found);
        }
        found.sort();
        assert_eq!(found, paths);
    }

    #[test]
    fn sensitive_fields_become_filtered_and_meta_says_where() {
        check(
            &ScrubConfig::default(),
            json!({"request": {"headers": {"Authorization": "Basic YWxpY2U6aHVudGVyMg==", "Cookie": "sessionid=abc", "Accept": "text/html"},
                    "cookies": {"sessionid": "abc"}, "data": {"password": "hunter2", "qty": 2}},
                   "extra": {"API_KEY": 12345, "nested": [{"db_password": {"a": 1}}], "token": "", "auth": {"sdk": "[Filtered]", "n": null}}}),
            json!({"request": {"headers": {"Authorization": "[Filtered]", "Cookie": "[Filtered]", "Accept": "text/html"},
                    "cookies": "[Filtered]", "data": {"password": "[Filtered]", "qty": 2}},
                   "extra": {"API_KEY": "[Filtered]", "nested": [{"db_password": "[Filtered]"}], "token": "", "auth": {"sdk": "[Filtered]", "n": null}}}),
            &["extra.API_KEY", "extra.nested.0.db_password", "request.cookies", "request.data.password", "request.headers.Authorization", "request.headers.Cookie"],
        );
    }

    #[test]
    fn values_inside_strings_are_scrubbed() {
        check(
            &ScrubConfig::default(),
            json!({"message": "paid with 4111 1111 1111 1111 from DE89 3704 0044 0532 0130 00",
                   "extra": {"dsn": "'http://0123:fedcba98@127.0.0.1:9000/1'", "q": "a=1&access_token=xyz&b=2",
                             "key": "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\ny",
                             "h": "Bearer abcdefghijkl", "sql": "WHERE \"auth_user\".\"id\" = 1 AND \"django_session\".\"session_key\" = 'k3y' LIMIT 1",
                             "repr": "{'password': 'hunter2', 'user': 'alice'}", "log": "login token: abc123 ok", "iban": "GB82WEST12345698765432", "not": "order 1700000000000 ok",
                             "id": "4111111111111111abc"},
                   "exception": {"values": [{"value": "bad card 5555555555554444"}]}}),
            json!({"message": "paid with [Filtered] from [Filtered]",
                   "extra": {"dsn": "'http://0123:[Filtered]@127.0.0.1:9000/1'", "q": "a=1&access_token=[Filtered]&b=2",
                             "key": "x\n[Filtered]\ny", "h": "Bearer [Filtered]", "sql": "WHERE \"auth_user\".\"id\" = 1 AND \"django_session\".\"session_key\" = '[Filtered]' LIMIT 1",
                             "repr": "{'password': '[Filtered]', 'user': 'alice'}", "log": "login token: [Filtered] ok", "iban": "[Filtered]", "not": "order 1700000000000 ok",
                             "id": "4111111111111111abc"},
                   "exception": {"values": [{"value": "bad card [Filtered]"}]}}),
            &["exception.values.0.value", "extra.dsn", "extra.h", "extra.iban", "extra.key", "extra.log", "extra.q", "extra.repr", "extra.sql", "message"],
        );
    }

    #[test]
    fn a_secret_is_scrubbed_wherever_else_it_appears() {
        check(
            &ScrubConfig::default(),
            json!({"request": {"cookies": {"sessionid": "1i9rtal05"}, "headers": {"Cookie": "a=1; sessionid=1i9rtal05"}},
                   "breadcrumbs": [{"message": "INSERT INTO s VALUES ('1i9rtal05', 'x')"}, {"message": "short 1"}]}),
            json!({"request": {"cookies": "[Filtered]", "headers": {"Cookie": "[Filtered]"}},
                   "breadcrumbs": [{"message": "INSERT INTO s VALUES ('[Filtered]', 'x')"}, {"message": "short 1"}]}),
            &["breadcrumbs.0.message", "request.cookies", "request.headers.Cookie"],
        );
    }

    #[test]
    fn project_fields_and_safe_fields() {
        let config = ScrubConfig { enabled: true, fields: vec!["Order_Id".into()], safe_fields: vec!["auth_method".into(), "csrftoken".into()] };
        check(
            &config,
            json!({"extra": {"order_id": "A-17", "auth_method": "sso", "csrftoken": "abc", "password": "x"}}),
            json!({"extra": {"order_id": "[Filtered]", "auth_method": "sso", "csrftoken": "abc", "password": "[Filtered]"}}),
            &["extra.order_id", "extra.password"],
        );
        let off = ScrubConfig { enabled: false, ..ScrubConfig::default() };
        check(&off, json!({"extra": {"password": "x"}}), json!({"extra": {"password": "x"}}), &[]);
    }

    #[test]
    fn pairs_lists_and_the_sdks_own_meta() {
        check(
            &ScrubConfig::default(),
            json!({"request": {"headers": [["X-Auth-Token", "t0k"], ["Accept", "*/*"]]},
                   "_meta": {"request": {"data": {"password": {"": {"rem": [["!config", "s"]]}}}}}}),
            json!({"request": {"headers": [["X-Auth-Token", "[Filtered]"], ["Accept", "*/*"]]}}),
            &["request.data.password", "request.headers.0.1"],
        );
    }

    #[test]
    fn nothing_to_scrub_keeps_the_bytes() {
        let s = Scrubber::default();
        let raw = br#"{"message":"hello","user":{"email":"alice@example.com"},"request":{"url":"http://127.0.0.1:9/x"},"event_id":"0123456789abcdef0123456789abcdef"}"#;
        assert!(!s.may_hold_secrets(raw));
        assert_eq!(s.payload(raw), None);
        assert!(s.may_hold_secrets(br#"{"m":"\u0070assword"}"#));
        assert_eq!(s.payload(b"not json password"), None);
        assert_eq!(s.payload(br#"["password"]"#), None);
    }

    #[test]
    fn luhn_and_mod97() {
        assert!(card_at(b"4111111111111111") && card_at(b"378282246310005"));
        assert!(!card_at(b"4111111111111112") && !card_at(b"1111111111111117"));
        assert!(mod97(b"GB82WEST12345698765432") && !mod97(b"GB83WEST12345698765432"));
    }
}
