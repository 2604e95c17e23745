//! Event tags: both wire forms (object, list of pairs), any scalar value, trimmed to Sentry's
//! limits, then the tags derived from the event itself (logger, level, server, url, …).
//!
//! At most [`MAX_TAGS`] tags are kept from what the client sent (the first ones, in the order
//! sent; an object's keys come sorted); the rest are counted and dropped. Derived tags are
//! added on top, so an event with too many tags still has its level, release and the like.

use std::collections::HashSet;

use serde_json::{Map, Value};

/// Longest tag key, in bytes (cut at a character boundary).
pub const MAX_TAG_KEY_BYTES: usize = 200;
/// Longest tag value, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 200;
/// Most tags kept from what a client sent, by distinct key.
pub const MAX_TAGS: usize = 200;

/// Tags being collected: first value per key wins, trimmed keys are remembered, tags past
/// the limit are counted.
#[derive(Default)]
pub(crate) struct TagSet {
    pub tags: Vec<(String, String)>,
    pub trimmed: Vec<String>,
    /// Tags sent past [`MAX_TAGS`] with a key not kept, each counted once per time sent.
    pub dropped: usize,
    /// The keys in `tags`, so that a duplicate is found in constant time.
    keys: HashSet<String>,
}

impl TagSet {
    /// Reads `tags` as sent: `{"k": v}` or `[["k", v], …]`. Anything else gives no tags.
    pub fn from_value(v: Option<&Value>) -> TagSet {
        let mut set = TagSet::default();
        match v {
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    set.push_sent(k, || tag_value(v));
                }
            }
            Some(Value::Array(pairs)) => {
                for pair in pairs {
                    if let Some((k, v)) = pair_of(pair) {
                        set.push_sent(&tag_value(k), || tag_value(v));
                    }
                }
            }
            _ => {}
        }
        set
    }

    /// A tag as the client sent it: kept while fewer than [`MAX_TAGS`] are, else counted in
    /// `dropped` (unless its key is already kept, when it is a duplicate as ever). The value is
    /// only built for a tag that is kept.
    fn push_sent(&mut self, key: &str, value: impl FnOnce() -> String) {
        if self.tags.len() < MAX_TAGS {
            self.push(key, value());
            return;
        }
        let key = key.trim();
        if !key.is_empty() && !self.keys.contains(clip_bytes(key, MAX_TAG_KEY_BYTES).0) {
            self.dropped += 1;
        }
    }

    /// Adds a tag unless its key is empty or already present. Trims key and value to the limits.
    pub fn push(&mut self, key: &str, value: String) {
        let key = key.trim();
        if key.is_empty() {
            return;
        }
        let (key, key_cut) = clip_bytes(key, MAX_TAG_KEY_BYTES);
        if self.keys.contains(key) {
            return;
        }
        let (value, value_cut) = clip_chars(value, MAX_TAG_VALUE_CHARS);
        if key_cut || value_cut {
            self.trimmed.push(key.to_string());
        }
        self.keys.insert(key.to_string());
        self.tags.push((key.to_string(), value));
    }

    /// Adds a derived tag when there is a non-empty value and no tag with that key yet; not
    /// bound by [`MAX_TAGS`].
    pub fn derive(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            self.push(key, value.to_string());
        }
    }
}

/// A tag value as text: strings as is, `null` as "", booleans as `True`/`False` (as Relay
/// does), numbers as written, arrays and objects as compact JSON.
pub(crate) fn tag_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// `["k", v]` (extra elements ignored) or `{"key": k, "value": v}`.
fn pair_of(v: &Value) -> Option<(&Value, &Value)> {
    match v {
        Value::Array(pair) => Some((pair.first()?, pair.get(1).unwrap_or(&Value::Null))),
        Value::Object(m) => Some((m.get("key")?, m.get("value").unwrap_or(&Value::Null))),
        _ => None,
    }
}

/// A URL without its query string and fragment, for the `url` tag.
pub(crate) fn url_without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// `"Chrome 120.0"` from `contexts.browser` (or the first context typed `browser`): name, and
/// version when there is one.
pub(crate) fn context_label(contexts: Option<&Value>, kind: &str) -> Option<String> {
    let contexts = contexts?.as_object()?;
    let ctx: &Map<String, Value> = match contexts.get(kind).and_then(Value::as_object) {
        Some(ctx) => ctx,
        None => contexts
            .values()
            .filter_map(Value::as_object)
            .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?,
    };
    let name = ctx
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())?;
    let version = match ctx.get("version") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Some(match version {
        Some(v) => format!("{name} {v}"),
        None => name.to_string(),
    })
}

/// The longest prefix of `s` of at most `max` bytes that ends at a character boundary, and
/// whether anything was cut.
fn clip_bytes(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s.get(..end).unwrap_or_default(), true)
}

/// `s` cut to `max` characters, and whether anything was cut.
pub(crate) fn clip_chars(mut s: String, max: usize) -> (String, bool) {
    match s.char_indices().nth(max) {
        Some((end, _)) => {
            s.truncate(end);
            (s, true)
        }
        None => (s, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tags(v: Value) -> Vec<(String, String)> {
        TagSet::from_value(Some(&v)).tags
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn both_wire_forms_and_scalar_values() {
        assert_eq!(
            tags(json!({"b": 1, "a": true, "c": null, "d": 1.5, "e": "x", "f": [1]})),
            pairs(&[
                ("a", "True"),
                ("b", "1"),
                ("c", ""),
                ("d", "1.5"),
                ("e", "x"),
                ("f", "[1]")
            ])
        );
        assert_eq!(
            tags(
                json!([["server", "web-1"], [" logger ", false], ["n", 3], ["", "no key"], ["lone"], 7, {"key": "k", "value": "v"}, ["server", "dup"]])
            ),
            pairs(&[
                ("server", "web-1"),
                ("logger", "False"),
                ("n", "3"),
                ("lone", ""),
                ("k", "v")
            ])
        );
        assert!(tags(json!("a:b")).is_empty());
        assert!(TagSet::from_value(None).tags.is_empty());
    }

    #[test]
    fn trimming_records_the_key() {
        let long_key = "é".repeat(150); // 300 bytes
        let long_value = "日".repeat(250);
        let set = TagSet::from_value(Some(
            &json!({ long_key.clone(): "v", "lang": long_value, "ok": "日本語" }),
        ));
        // Object keys come out in sorted order: lang, ok, é….
        assert_eq!(set.tags[0].1.chars().count(), 200);
        assert_eq!(set.tags[1].1, "日本語");
        let (key, value) = &set.tags[2];
        assert_eq!(key.len(), 200);
        assert_eq!(value, "v");
        assert_eq!(set.trimmed, vec!["lang".to_string(), key.clone()]);
    }

    #[test]
    fn at_most_max_tags_from_the_client_and_derived_ones_on_top() {
        // The list form, with duplicates of kept keys past the limit.
        let mut list: Vec<Value> = (0..108_000).map(|i| json!([format!("k{i}"), i])).collect();
        list.push(json!(["k0", "again"]));
        list.push(json!(["", "no key"]));
        let mut set = TagSet::from_value(Some(&Value::Array(list)));
        assert_eq!(set.tags.len(), MAX_TAGS);
        assert_eq!(set.tags[0], ("k0".to_string(), "0".to_string()));
        assert_eq!(set.tags[MAX_TAGS - 1].0, format!("k{}", MAX_TAGS - 1));
        assert_eq!(set.dropped, 108_000 - MAX_TAGS);
        set.derive("level", Some("error"));
        set.derive("k5", Some("derived"));
        assert_eq!(set.tags.len(), MAX_TAGS + 1);
        assert_eq!(set.tags[MAX_TAGS], ("level".to_string(), "error".to_string()));
        assert_eq!(set.tags[5].1, "5");
        // The object form: keys sorted, the first MAX_TAGS kept.
        let map: Map<String, Value> = (0..1000).map(|i| (format!("t{i:04}"), json!("v"))).collect();
        let set = TagSet::from_value(Some(&Value::Object(map)));
        assert_eq!(set.tags.len(), MAX_TAGS);
        assert_eq!(set.tags[MAX_TAGS - 1].0, format!("t{:04}", MAX_TAGS - 1));
        assert_eq!(set.dropped, 1000 - MAX_TAGS);
        // Duplicates and empty keys do not use up the limit.
        let mut list: Vec<Value> = (0..500).map(|_| json!(["same", "v"])).collect();
        list.extend((0..500).map(|_| json!([" ", "v"])));
        list.extend((0..MAX_TAGS).map(|i| json!([format!("k{i}"), "v"])));
        let set = TagSet::from_value(Some(&Value::Array(list)));
        assert_eq!(set.tags.len(), MAX_TAGS);
        assert_eq!(set.dropped, 1);
        // Keys that differ only past the key limit are one key.
        let long = "x".repeat(MAX_TAG_KEY_BYTES);
        let set = TagSet::from_value(Some(&json!([[format!("{long}a"), 1], [format!("{long}b"), 2]])));
        assert_eq!(set.tags, vec![(long, "1".to_string())]);
    }

    #[test]
    fn derived_tags_do_not_override() {
        let mut set = TagSet::from_value(Some(&json!({"server": "web-1.example.com"})));
        set.derive("server", Some("web-1"));
        set.derive("release", Some("shop@1.2.3"));
        set.derive("user", None);
        set.derive("logger", Some("  "));
        assert_eq!(
            set.tags,
            pairs(&[("server", "web-1.example.com"), ("release", "shop@1.2.3")])
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(
            url_without_query("http://h/orders/42/checkout/?coupon=S#x"),
            "http://h/orders/42/checkout/"
        );
        assert_eq!(url_without_query("http://h/a#frag"), "http://h/a");
        let contexts = json!({
            "browser": {"name": "Chrome", "version": "120.0"},
            "client_os": {"type": "os", "name": "Linux", "version": 6},
            "runtime": {"name": ""}
        });
        assert_eq!(
            context_label(Some(&contexts), "browser").as_deref(),
            Some("Chrome 120.0")
        );
        assert_eq!(
            context_label(Some(&contexts), "os").as_deref(),
            Some("Linux 6")
        );
        assert_eq!(context_label(Some(&contexts), "runtime"), None);
        assert_eq!(
            context_label(Some(&json!({"os": {"name": "Linux"}})), "os").as_deref(),
            Some("Linux")
        );
        assert_eq!(clip_chars("abc".into(), 2), ("ab".to_string(), true));
        assert_eq!(clip_bytes("aé", 2), ("a", true));
    }
}
