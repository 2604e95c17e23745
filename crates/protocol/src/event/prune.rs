//! Event JSON to a `serde_json::Value` holding only what the normaliser reads, in one pass that
//! also enforces the nesting-depth limit.
//!
//! An SDK's event carries much that we keep only in the raw payload: installed modules, the SDK's
//! own description, breadcrumbs, `extra`, request headers and bodies, and per frame the local
//! variables and the source lines around it. Building those into a tree of allocated values only
//! to drop it was the larger part of ingest's parsing cost. Here they are read by the parser and
//! skipped without allocating, but still counted for depth, so the limit holds for the whole
//! document, skipped parts included. The raw payload the caller stores is untouched.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Whether the normaliser reads this top-level key (modern names and the legacy
/// `sentry.interfaces.*`). A `match`, not a list: it runs for every key of every event.
pub(super) fn is_top_key(key: &str) -> bool {
    matches!(
        key,
        "contexts"
            | "culprit"
            | "dist"
            | "environment"
            | "event_id"
            | "exception"
            | "fingerprint"
            | "level"
            | "logentry"
            | "logger"
            | "message"
            | "platform"
            | "query"
            | "release"
            | "request"
            | "sentry.interfaces.Contexts"
            | "sentry.interfaces.Exception"
            | "sentry.interfaces.Http"
            | "sentry.interfaces.Message"
            | "sentry.interfaces.Query"
            | "sentry.interfaces.Stacktrace"
            | "sentry.interfaces.User"
            | "server_name"
            | "spans"
            | "stacktrace"
            | "start_timestamp"
            | "tags"
            | "threads"
            | "time_spent"
            | "timestamp"
            | "transaction"
            | "type"
            | "user"
    )
}


/// What part of an event a value is, which decides which of its keys are kept.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Part {
    /// The event object itself.
    Top,
    /// Everything kept as it is, apart from frames' skipped fields.
    Whole,
    /// The list under a `frames` key.
    Frames,
    /// One stack frame.
    Frame,
    /// `request`: only `url` and `method` are read.
    Request,
    /// `contexts`: each context is read for its `type`, `name` and `version`.
    Contexts,
    Context,
    /// Read for validity and depth, then dropped.
    Skipped,
}

impl Part {
    /// The part a key's value is, or `Skipped`.
    fn child(self, key: &str) -> Part {
        match self {
            Part::Top if is_top_key(key) => match key {
                "request" | "sentry.interfaces.Http" => Part::Request,
                "contexts" | "sentry.interfaces.Contexts" => Part::Contexts,
                _ => Part::Whole,
            },
            Part::Whole | Part::Frames if key == "frames" => Part::Frames,
            Part::Whole | Part::Frames => Part::Whole,
            // Locals and surrounding source lines: large, and never read.
            Part::Frame if matches!(key, "vars" | "pre_context" | "post_context") => Part::Skipped,
            Part::Frame => Part::Whole,
            Part::Request if key == "url" || key == "method" => Part::Whole,
            Part::Contexts => Part::Context,
            Part::Context if matches!(key, "type" | "name" | "version") => Part::Whole,
            _ => Part::Skipped,
        }
    }

    /// The part each element of an array is.
    fn element(self) -> Part {
        match self {
            Part::Frames => Part::Frame,
            Part::Top | Part::Skipped => Part::Skipped,
            _ => self,
        }
    }
}

/// Why a document was not parsed.
#[derive(Debug)]
pub(crate) enum PruneError {
    TooDeep,
    Json(serde_json::Error),
}

/// Parses `bytes` as one JSON value, kept as the normaliser needs it (see the module text).
/// The top-level object is depth 1; an array or object deeper than `max_depth` is `TooDeep`.
pub(crate) fn parse(bytes: &[u8], max_depth: usize) -> Result<Value, PruneError> {
    let too_deep = Cell::new(false);
    let node = Node { part: Part::Top, depth: 0, max_depth, too_deep: &too_deep };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = node.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match value {
        Ok(v) => Ok(v),
        Err(_) if too_deep.get() => Err(PruneError::TooDeep),
        Err(e) => Err(PruneError::Json(e)),
    }
}

/// One value being parsed: its part, and the depth of its parent container.
#[derive(Clone, Copy)]
struct Node<'c> {
    part: Part,
    depth: usize,
    max_depth: usize,
    too_deep: &'c Cell<bool>,
}

impl Node<'_> {
    fn with(self, part: Part) -> Self {
        Node { part, depth: self.depth + 1, ..self }
    }

    fn enter<E: de::Error>(&self) -> Result<(), E> {
        if self.depth + 1 > self.max_depth {
            self.too_deep.set(true);
            return Err(E::custom("nested too deep"));
        }
        Ok(())
    }

    fn keep(&self) -> bool {
        self.part != Part::Skipped
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(if self.keep() { Value::String(v.to_owned()) } else { Value::Null })
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let child = self.with(self.part.element());
        if !child.keep() {
            while seq.next_element_seed(child)?.is_some() {}
            return Ok(Value::Array(Vec::new()));
        }
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(child)? {
            list.push(v);
        }
        Ok(Value::Array(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let child = self.with(if self.keep() { self.part.child(&key) } else { Part::Skipped });
            let value = map.next_value_seed(child)?;
            if child.keep() {
                out.insert(key.into_owned(), value);
            }
        }
        Ok(Value::Object(out))
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.to_owned().into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pruned(text: &str) -> Value {
        parse(text.as_bytes(), 64).unwrap()
    }

    #[test]
    fn keeps_what_the_normaliser_reads_and_drops_the_rest() {
        let event = json!({
            "event_id": "a", "level": "error", "modules": {"django": "5.2"}, "sdk": {"name": "x"},
            "breadcrumbs": {"values": [{"message": "m"}]}, "extra": {"k": [1, 2]},
            "request": {"url": "http://x/a?b", "method": "GET", "headers": {"Cookie": "secret"}, "data": "body"},
            "contexts": {"browser": {"name": "Chrome", "version": "120", "extra": 1}, "gpu": {"type": "os", "name": "Linux", "big": [1]}},
            "exception": {"values": [{"type": "E", "value": {"vars": 1},
                "stacktrace": {"frames": [{"function": "f", "context_line": "x()", "vars": {"a": 1},
                    "pre_context": ["a"], "post_context": ["b"], "lineno": 3}]}}]},
            "threads": {"values": [{"stacktrace": {"frames": [{"function": "g", "vars": {"b": 2}}]}}]},
        });
        let expected = json!({
            "event_id": "a", "level": "error",
            "request": {"url": "http://x/a?b", "method": "GET"},
            "contexts": {"browser": {"name": "Chrome", "version": "120"}, "gpu": {"type": "os", "name": "Linux"}},
            "exception": {"values": [{"type": "E", "value": {"vars": 1},
                "stacktrace": {"frames": [{"function": "f", "context_line": "x()", "lineno": 3}]}}]},
            "threads": {"values": [{"stacktrace": {"frames": [{"function": "g"}]}}]},
        });
        assert_eq!(pruned(&event.to_string()), expected);
    }

    #[test]
    fn escaped_keys_and_values_are_read() {
        assert_eq!(pruned(r#"{"lev\u0065l": "w\"x", "\u0078": 1}"#), json!({"level": "w\"x"}));
    }

    #[test]
    fn depth_counts_skipped_parts_too() {
        let deep = |n: usize| format!(r#"{{"extra": {}1{}}}"#, "[".repeat(n), "]".repeat(n));
        assert!(parse(deep(63).as_bytes(), 64).is_ok());
        assert!(matches!(parse(deep(64).as_bytes(), 64), Err(PruneError::TooDeep)));
        let kept = format!(r#"{{"tags": {}1{}}}"#, "[".repeat(64), "]".repeat(64));
        assert!(matches!(parse(kept.as_bytes(), 64), Err(PruneError::TooDeep)));
    }

    #[test]
    fn brackets_in_strings_are_not_nesting() {
        assert!(parse(br#"{"tags":[{"b":"[[[[[[{{{{"}]}"#, 3).is_ok());
        assert!(matches!(parse(br#"{"tags":[{"b":[]}]}"#, 3), Err(PruneError::TooDeep)));
        assert!(matches!(parse(&b"[".repeat(100_000), 64), Err(PruneError::TooDeep)));
    }

    #[test]
    fn invalid_json_is_an_error_even_in_a_skipped_part() {
        assert!(matches!(parse(br#"{"extra": {"a": tru}}"#, 64), Err(PruneError::Json(_))));
        assert!(matches!(parse(br#"{"level": "x"} trailing"#, 64), Err(PruneError::Json(_))));
        assert!(matches!(parse(br#"{"extra": "\ud800"}"#, 64), Err(PruneError::Json(_))));
    }

    #[test]
    fn other_top_level_values_keep_their_type() {
        assert_eq!(pruned("[1, 2]"), json!([]));
        assert_eq!(pruned("\"s\""), json!("s"));
        assert_eq!(pruned("null"), Value::Null);
    }
}
