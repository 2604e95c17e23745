//! Envelope framing: a JSON header line, then items, each a JSON header line and a payload that
//! is either `length` bytes long or runs to the next newline.
//!
//! Strict on framing, lenient on content: unknown item types and unknown header attributes are
//! kept, a trailing `\r` on a header line and empty lines between items are tolerated. Item
//! indexes in errors count from 0.
//!
//! Two rules on the items as a whole, as in Relay: at most one `event` or `transaction` item
//! (an envelope is one event and what belongs to it), and at most `max_envelope_items` items.

use serde_json::{Map, Value};
use thiserror::Error;

use crate::ids::EventId;
use crate::limits::Limits;

/// A parsed envelope. Payloads are copied out of the body; headers keep every attribute sent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Envelope {
    pub headers: Map<String, Value>,
    pub items: Vec<Item>,
}

/// One item: its type, all of its headers as sent (including `type` and `length`), its payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub ty: ItemType,
    pub headers: Map<String, Value>,
    pub payload: Vec<u8>,
}

/// The item types we name. Everything else is `Other` and is kept, never refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ItemType {
    Event,
    Transaction,
    Attachment,
    Session,
    Sessions,
    ClientReport,
    CheckIn,
    Log,
    Span,
    Other(String),
}

/// Why an envelope was refused. [`EnvelopeError::is_too_large`] errors answer 413, the rest 400;
/// the `Display` text is the reason shown to the client.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    #[error("envelope does not start with a JSON header line")]
    MissingHeader,
    #[error("envelope header {0}")]
    InvalidHeader(String),
    #[error("envelope item {index}: header {reason}")]
    InvalidItemHeader { index: usize, reason: String },
    #[error("envelope item {index}: header has no `type`")]
    MissingItemType { index: usize },
    #[error(
        "envelope item {index}: header says length {expected} but only {available} bytes follow"
    )]
    LengthMismatch {
        index: usize,
        expected: usize,
        available: usize,
    },
    #[error("envelope item {index}: payload of the declared length is not followed by a newline")]
    TrailingBytesAfterPayload { index: usize },
    #[error(
        "envelope item {index}: a second {ty} item; an envelope carries at most one event or \
         transaction (item {first} is the first)"
    )]
    DuplicateEvent {
        index: usize,
        first: usize,
        ty: String,
    },
    #[error("envelope has more than {limit} items")]
    TooManyItems { limit: usize },
    #[error("envelope item {index}: {ty} item is larger than {limit} bytes")]
    ItemTooLarge {
        index: usize,
        ty: String,
        limit: usize,
    },
}

impl EnvelopeError {
    /// Whether this is a size refusal (413) rather than a malformed envelope (400).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            EnvelopeError::ItemTooLarge { .. } | EnvelopeError::TooManyItems { .. }
        )
    }
}

impl ItemType {
    /// Reads an item header's `type`. Never fails: unknown names become `Other`.
    pub fn parse(s: &str) -> ItemType {
        match s {
            "event" => ItemType::Event,
            "transaction" => ItemType::Transaction,
            "attachment" => ItemType::Attachment,
            "session" => ItemType::Session,
            "sessions" => ItemType::Sessions,
            "client_report" => ItemType::ClientReport,
            "check_in" => ItemType::CheckIn,
            "log" => ItemType::Log,
            "span" => ItemType::Span,
            other => ItemType::Other(other.to_string()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            ItemType::Other(s) => s,
            known => known.category(),
        }
    }

    /// The wire name of a type we know, `unknown` for any other: a bounded set of names, for
    /// counters.
    pub fn category(&self) -> &'static str {
        match self {
            ItemType::Event => "event",
            ItemType::Transaction => "transaction",
            ItemType::Attachment => "attachment",
            ItemType::Session => "session",
            ItemType::Sessions => "sessions",
            ItemType::ClientReport => "client_report",
            ItemType::CheckIn => "check_in",
            ItemType::Log => "log",
            ItemType::Span => "span",
            ItemType::Other(_) => "unknown",
        }
    }

    /// Whether this is an `event` or a `transaction`: an envelope carries at most one of them.
    pub fn is_event(&self) -> bool {
        matches!(self, ItemType::Event | ItemType::Transaction)
    }

    /// The size limit that applies to one item of this type, if any.
    pub fn size_limit(&self, limits: &Limits) -> Option<usize> {
        match self {
            ItemType::Event | ItemType::Transaction | ItemType::Span | ItemType::Log => {
                Some(limits.max_event_bytes)
            }
            ItemType::Attachment => Some(limits.max_attachment_bytes),
            _ => None,
        }
    }
}

impl Item {
    /// An item with only a `type` header.
    pub fn new(ty: ItemType, payload: impl Into<Vec<u8>>) -> Item {
        let mut headers = Map::new();
        headers.insert("type".into(), Value::String(ty.as_str().to_string()));
        Item {
            ty,
            headers,
            payload: payload.into(),
        }
    }

    /// The `content_type` header.
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get("content_type").and_then(Value::as_str)
    }

    /// An attachment's `filename` header.
    pub fn filename(&self) -> Option<&str> {
        self.headers.get("filename").and_then(Value::as_str)
    }
}

impl Envelope {
    /// Parses an envelope body (already decompressed). Items over their type's size limit are
    /// refused with [`EnvelopeError::ItemTooLarge`], a second event or transaction with
    /// [`EnvelopeError::DuplicateEvent`], more than `max_envelope_items` items with
    /// [`EnvelopeError::TooManyItems`].
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Envelope, EnvelopeError> {
        let (line, mut pos) = next_line(body, 0);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(EnvelopeError::MissingHeader);
        }
        let headers = json_object(line).map_err(EnvelopeError::InvalidHeader)?;
        let mut items = Vec::new();
        let mut first_event = None;
        while pos < body.len() {
            let (line, after_header) = next_line(body, pos);
            if line.iter().all(u8::is_ascii_whitespace) {
                pos = after_header;
                continue;
            }
            let index = items.len();
            if index >= limits.max_envelope_items {
                return Err(EnvelopeError::TooManyItems {
                    limit: limits.max_envelope_items,
                });
            }
            let (item, next) = parse_item(body, line, after_header, index, limits)?;
            if item.ty.is_event() {
                if let Some(first) = first_event {
                    return Err(EnvelopeError::DuplicateEvent {
                        index,
                        first,
                        ty: item.ty.as_str().to_string(),
                    });
                }
                first_event = Some(index);
            }
            items.push(item);
            pos = next;
        }
        Ok(Envelope { headers, items })
    }

    /// The envelope header's `event_id` (32 hex digits or a dashed UUID).
    pub fn event_id(&self) -> Option<EventId> {
        EventId::parse(self.headers.get("event_id")?.as_str()?)
    }

    /// The envelope header's `dsn`, used as auth when the request carries none.
    pub fn dsn(&self) -> Option<&str> {
        self.headers.get("dsn").and_then(Value::as_str)
    }

    /// The envelope header's `sent_at` (RFC 3339), for clock-drift correction.
    pub fn sent_at(&self) -> Option<&str> {
        self.headers.get("sent_at").and_then(Value::as_str)
    }

    /// Writes the envelope back out, with an accurate `length` (and `type`) on every item.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_json_line(&mut out, &self.headers);
        for item in &self.items {
            let mut headers = item.headers.clone();
            headers.insert("type".into(), Value::String(item.ty.as_str().to_string()));
            headers.insert("length".into(), Value::from(item.payload.len()));
            write_json_line(&mut out, &headers);
            out.extend_from_slice(&item.payload);
            out.push(b'\n');
        }
        out
    }
}

/// Parses the item whose header is `line`; its payload starts at `start`. Returns the item and
/// the position after it.
fn parse_item(
    body: &[u8],
    line: &[u8],
    start: usize,
    index: usize,
    limits: &Limits,
) -> Result<(Item, usize), EnvelopeError> {
    let invalid = |reason: String| EnvelopeError::InvalidItemHeader { index, reason };
    let headers = json_object(line).map_err(invalid)?;
    let ty = match headers.get("type") {
        None | Some(Value::Null) => return Err(EnvelopeError::MissingItemType { index }),
        Some(Value::String(s)) => ItemType::parse(s),
        Some(_) => return Err(invalid("`type` is not a string".into())),
    };
    let length = match headers.get("length") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "`length` is not a non-negative integer: {}",
                        clip(v)
                    ))
                })?,
        ),
    };
    let rest = body.get(start..).unwrap_or_default();
    let (payload, next) = match length {
        Some(len) => {
            let payload = rest.get(..len).ok_or(EnvelopeError::LengthMismatch {
                index,
                expected: len,
                available: rest.len(),
            })?;
            let next = match rest.get(len..).unwrap_or_default() {
                [] => body.len(),
                [b'\n', ..] => start + len + 1,
                [b'\r', b'\n', ..] => start + len + 2,
                _ => return Err(EnvelopeError::TrailingBytesAfterPayload { index }),
            };
            (payload, next)
        }
        None => next_raw_line(body, start),
    };
    if let Some(limit) = ty.size_limit(limits)
        && payload.len() > limit
    {
        return Err(EnvelopeError::ItemTooLarge {
            index,
            ty: ty.as_str().to_string(),
            limit,
        });
    }
    Ok((
        Item {
            ty,
            headers,
            payload: payload.to_vec(),
        },
        next,
    ))
}

/// The bytes from `pos` to the next `\n` (or the end), and the position after that newline.
fn next_raw_line(body: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = body.get(pos..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (rest.get(..i).unwrap_or_default(), pos + i + 1),
        None => (rest, body.len()),
    }
}

/// A header line: like [`next_raw_line`], without a trailing `\r`.
fn next_line(body: &[u8], pos: usize) -> (&[u8], usize) {
    let (line, next) = next_raw_line(body, pos);
    (line.strip_suffix(b"\r").unwrap_or(line), next)
}

/// Parses a header line as a JSON object; the error completes "header …" for a person.
fn json_object(line: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("is not a JSON object (got {})", json_type(&other))),
        Err(e) => Err(format!("is not valid JSON: {e}")),
    }
}

/// At most 64 characters of a client's JSON value, for error messages.
fn clip(v: &Value) -> String {
    v.to_string().chars().take(64).collect()
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

fn write_json_line(out: &mut Vec<u8>, map: &Map<String, Value>) {
    // Serialising a map of JSON values cannot fail; an empty object is a valid fallback anyway.
    let json = serde_json::to_vec(map).unwrap_or_else(|_| b"{}".to_vec());
    out.extend_from_slice(&json);
    out.push(b'\n');
}

#[cfg(test)]
mod tests;
