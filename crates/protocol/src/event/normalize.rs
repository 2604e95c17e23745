//! The lenient event normaliser: whatever JSON object a client sent (modern SDK, legacy raven,
//! transaction) becomes one [`Event`]. Strict only on framing: the payload must be a JSON
//! object. Every field is read leniently; a field we cannot read is left out, never an error.

use serde_json::{Map, Value};
use thiserror::Error;

use super::exception::{crashed_thread, parse_exceptions, parse_stacktrace};
use super::interface::Interface;
use super::spans::parse_spans;
use super::tags::{TagSet, clip_chars, context_label, url_without_query};
use super::timestamp::parse_timestamp;
use super::prune::{self, PruneError};
use super::{Event, EventKind, Level, LogEntry, Query, Request, User, scan};
use crate::envelope::{Item, ItemType};
use crate::ids::EventId;
use crate::limits::Limits;

/// Longest message (`formatted`, template) and exception value kept, in characters, as in
/// Sentry. The raw JSON the caller keeps is not trimmed.
pub const MAX_MESSAGE_CHARS: usize = 8192;

/// Why a payload is not an event at all. `TooLarge` answers 413, the rest 400.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NormalizeError {
    #[error("event is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("event must be a JSON object, got {found}")]
    NotAnObject { found: &'static str },
    #[error("event JSON is nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("event is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

impl NormalizeError {
    /// Whether this is a size refusal (413) rather than a malformed event (400).
    pub fn is_too_large(&self) -> bool {
        matches!(self, NormalizeError::TooLarge { .. })
    }
}

/// Normalises an event that is already JSON. `received_at` (unix seconds) stands in for a
/// missing timestamp; `id_hint` (the envelope header's `event_id`) wins over the payload's.
pub fn normalize(
    value: Value,
    received_at: f64,
    id_hint: Option<EventId>,
) -> Result<Event, NormalizeError> {
    normalize_value(value, received_at, id_hint, false)
}

/// Parses and normalises an event body (an envelope item payload or a decoded store body):
/// size and nesting-depth checks first, then JSON, repairing Python's `NaN`/`Infinity`, lone
/// surrogate escapes and invalid UTF-8 when the plain parse fails.
pub fn normalize_slice(
    bytes: &[u8],
    limits: &Limits,
    received_at: f64,
    id_hint: Option<EventId>,
) -> Result<Event, NormalizeError> {
    normalize_value(parse_json(bytes, limits)?, received_at, id_hint, false)
}

/// Normalises an envelope's `event` or `transaction` item. A `transaction` item is a
/// transaction even when its payload has no `"type"` (the Rust SDK sends none).
pub fn normalize_item(
    item: &Item,
    limits: &Limits,
    received_at: f64,
    id_hint: Option<EventId>,
) -> Result<Event, NormalizeError> {
    normalize_item_bytes(item, &item.payload, limits, received_at, id_hint)
}

/// [`normalize_item`] over other bytes than the item's own (its payload once scrubbed).
pub fn normalize_item_bytes(
    item: &Item,
    bytes: &[u8],
    limits: &Limits,
    received_at: f64,
    id_hint: Option<EventId>,
) -> Result<Event, NormalizeError> {
    let value = parse_json(bytes, limits)?;
    normalize_value(
        value,
        received_at,
        id_hint,
        item.ty == ItemType::Transaction,
    )
}

fn parse_json(bytes: &[u8], limits: &Limits) -> Result<Value, NormalizeError> {
    if bytes.len() > limits.max_event_bytes {
        return Err(NormalizeError::TooLarge {
            limit: limits.max_event_bytes,
        });
    }
    let parse = |bytes: &[u8]| match prune::parse(bytes, limits.max_json_depth) {
        Ok(value) => Ok(value),
        Err(PruneError::TooDeep) => Err(NormalizeError::TooDeep {
            limit: limits.max_json_depth,
        }),
        Err(PruneError::Json(e)) => Err(NormalizeError::InvalidJson(e.to_string())),
    };
    match parse(bytes) {
        Err(NormalizeError::InvalidJson(first)) => match scan::repair(bytes) {
            Some(fixed) => parse(&fixed).map_err(|e| match e {
                NormalizeError::InvalidJson(_) => NormalizeError::InvalidJson(first),
                other => other,
            }),
            None => Err(NormalizeError::InvalidJson(first)),
        },
        other => other,
    }
}

/// Event `type`s that are ordinary messages when they carry no exception.
const MESSAGE_TYPES: [&str; 8] = [
    "error",
    "default",
    "csp",
    "hpkp",
    "expectct",
    "expectstaple",
    "nel",
    "security",
];

fn normalize_value(
    value: Value,
    received_at: f64,
    id_hint: Option<EventId>,
    transaction_item: bool,
) -> Result<Event, NormalizeError> {
    let obj = match value {
        Value::Object(obj) => obj,
        other => {
            return Err(NormalizeError::NotAnObject {
                found: json_type(&other),
            });
        }
    };
    let exceptions = parse_exceptions(Interface::Exception.get(&obj));
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .map(|t| t.trim().to_ascii_lowercase());
    // Without a `type` (the Rust SDK sends none), a `start_timestamp` marks a transaction too:
    // error events never carry one.
    let is_transaction = transaction_item
        || ty.as_deref() == Some("transaction")
        || (ty.is_none()
            && obj.get("start_timestamp").is_some_and(|v| !v.is_null())
            && exceptions.is_empty());

    let event_id = id_hint
        .or_else(|| {
            obj.get("event_id")
                .and_then(Value::as_str)
                .and_then(EventId::parse)
        })
        .unwrap_or_else(EventId::new_random);
    let timestamp = obj
        .get("timestamp")
        .and_then(parse_timestamp)
        .unwrap_or(received_at);
    let query = Interface::Query.get(&obj).and_then(parse_query);
    // Without a level, a transaction or a query is a measurement (info); anything else an error.
    let level = obj.get("level").and_then(parse_level);
    let level = level.unwrap_or(if is_transaction || (exceptions.is_empty() && query.is_some()) {
        Level::Info
    } else {
        Level::Error
    });
    let stacktrace = parse_stacktrace(Interface::Stacktrace.get(&obj))
    .or_else(|| {
        exceptions
            .is_empty()
            .then(|| crashed_thread(obj.get("threads")))
            .flatten()
    });
    let start_timestamp = is_transaction
        .then(|| obj.get("start_timestamp").and_then(parse_timestamp))
        .flatten();
    let time_spent = match start_timestamp {
        Some(start) => Some(((timestamp - start) * 1000.0).max(0.0)),
        None => obj.get("time_spent").and_then(number).filter(|t| *t >= 0.0),
    };
    let kind = if is_transaction {
        EventKind::Transaction
    } else if !exceptions.is_empty() {
        EventKind::Exception
    } else if query.is_some() {
        EventKind::Query
    } else {
        kind_from_type(ty)
    };

    let mut event = Event {
        event_id,
        kind,
        timestamp,
        platform: text(obj.get("platform"))
            .map_or_else(|| "other".to_string(), |p| clip_chars(p, 64).0),
        level,
        logger: text(obj.get("logger")),
        transaction: text(obj.get("transaction")),
        server_name: text(obj.get("server_name")),
        release: text(obj.get("release")),
        dist: text(obj.get("dist")),
        environment: text(obj.get("environment")),
        message: Interface::Message
            .keys()
            .iter()
            .chain(&["message"])
            .find_map(|k| obj.get(*k).and_then(parse_logentry)),
        exceptions,
        stacktrace,
        query,
        time_spent,
        tags: Vec::new(),
        trimmed_tags: Vec::new(),
        dropped_tags: 0,
        fingerprint: obj.get("fingerprint").and_then(parse_fingerprint),
        culprit: text(obj.get("culprit")),
        user: Interface::User.get(&obj).and_then(parse_user),
        request: Interface::Request.get(&obj).and_then(parse_request),
        start_timestamp,
        spans: if is_transaction {
            parse_spans(obj.get("spans"))
        } else {
            Vec::new()
        },
    };
    (event.tags, event.trimmed_tags, event.dropped_tags) = tags(&obj, &event);
    Ok(event)
}

/// An event without exception or query: a message, unless the client named a kind of its own.
/// Names that collide with our kinds (`exception`, `query`, …) are messages too, so a stored kind
/// always reads back as itself.
fn kind_from_type(ty: Option<String>) -> EventKind {
    match ty {
        Some(t) if !t.is_empty() && !MESSAGE_TYPES.contains(&t.as_str()) => {
            match EventKind::parse(&t) {
                EventKind::Custom(_) => EventKind::Custom(clip_chars(t, 64).0),
                _ => EventKind::Message,
            }
        }
        _ => EventKind::Message,
    }
}

/// The tags as sent, then the derived ones, the keys that were trimmed, and how many tags were
/// dropped.
fn tags(obj: &Map<String, Value>, event: &Event) -> (Vec<(String, String)>, Vec<String>, usize) {
    let mut tags = TagSet::from_value(obj.get("tags"));
    let contexts = Interface::Contexts.get(obj);
    tags.derive("logger", event.logger.as_deref());
    tags.derive("level", Some(event.level.as_str()));
    tags.derive("server", event.server_name.as_deref());
    tags.derive(
        "url",
        event
            .request
            .as_ref()
            .and_then(|r| r.url.as_deref())
            .map(url_without_query),
    );
    tags.derive("environment", event.environment.as_deref());
    tags.derive("release", event.release.as_deref());
    tags.derive("transaction", event.transaction.as_deref());
    tags.derive("user", event.user.as_ref().and_then(User::label));
    tags.derive("browser", context_label(contexts, "browser").as_deref());
    tags.derive("os", context_label(contexts, "os").as_deref());
    (tags.tags, tags.trimmed, tags.dropped)
}

/// A non-empty string, or a number or boolean as text.
pub(super) fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A finite number, or a string holding one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// A non-negative integer, or a string holding one (`"10"`).
pub(super) fn unsigned(v: Option<&Value>) -> Option<u64> {
    let n = number(v?)?;
    (n >= 0.0 && n.fract() == 0.0 && n <= u64::MAX as f64).then_some(n as u64)
}

pub(super) fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        _ => None,
    }
}

/// Level names (`"warning"`, `"warn"`, `"critical"`) and raven's logging numbers, rounded up to
/// the next level (10 debug, 20 info, 30 warning, 40 error, 50 fatal).
fn parse_level(v: &Value) -> Option<Level> {
    match v {
        Value::String(s) => Level::parse(s).or_else(|| number(v).map(level_from_number)),
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(level_from_number),
        _ => None,
    }
}

fn level_from_number(n: f64) -> Level {
    match n {
        n if n <= 10.0 => Level::Debug,
        n if n <= 20.0 => Level::Info,
        n if n <= 30.0 => Level::Warning,
        n if n <= 40.0 => Level::Error,
        _ => Level::Fatal,
    }
}

/// `logentry`/`message` as an object `{message, formatted, params}`, or a bare string.
fn parse_logentry(v: &Value) -> Option<LogEntry> {
    let clip = |s: String| clip_chars(s, MAX_MESSAGE_CHARS).0;
    match v {
        Value::Object(m) => {
            let message = text(m.get("message")).map(clip);
            let formatted = text(m.get("formatted"))
                .map(clip)
                .or_else(|| {
                    let template = message.as_deref()?;
                    super::format::format_params(template, m.get("params")?).map(clip)
                })
                .or_else(|| message.clone())?;
            let params = match m.get("params") {
                Some(Value::Array(list)) => list.clone(),
                None | Some(Value::Null) => Vec::new(),
                Some(other) => vec![other.clone()],
            };
            Some(LogEntry {
                message,
                formatted,
                params,
            })
        }
        other => Some(LogEntry {
            message: None,
            formatted: clip(text(Some(other))?),
            params: Vec::new(),
        }),
    }
}

/// `{query, engine}` (raven's `sentry.interfaces.Query`), or a bare SQL string.
fn parse_query(v: &Value) -> Option<Query> {
    let (query, engine) = match v {
        Value::Object(m) => (text(m.get("query"))?, text(m.get("engine"))),
        Value::String(s) => (s.clone(), None),
        _ => return None,
    };
    (!query.trim().is_empty()).then_some(Query { query, engine })
}

fn parse_user(v: &Value) -> Option<User> {
    let m = v.as_object()?;
    let user = User {
        id: text(m.get("id")),
        email: text(m.get("email")),
        username: text(m.get("username")),
        ip_address: text(m.get("ip_address")),
    };
    (user != User::default()).then_some(user)
}

fn parse_request(v: &Value) -> Option<Request> {
    let m = v.as_object()?;
    let request = Request {
        url: text(m.get("url")),
        method: text(m.get("method")),
    };
    (request != Request::default()).then_some(request)
}

/// A list of strings (other values as text, nulls dropped), or a single string.
fn parse_fingerprint(v: &Value) -> Option<Vec<String>> {
    let parts: Vec<String> = match v {
        Value::Array(list) => list
            .iter()
            .filter(|p| !p.is_null())
            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => return None,
    };
    (!parts.is_empty()).then_some(parts)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
