//! The normalised event: one shape for everything real clients send (modern envelopes, legacy
//! raven store bodies, transactions). Built leniently from JSON by [`normalize`]; the raw JSON
//! is kept beside it by the caller, so nothing a client sent is lost.

mod exception;
mod format;
mod interface;
mod normalize;
mod prune;
mod scan;
mod spans;
mod tags;
mod timestamp;

pub use interface::Interface;
pub use normalize::{
    MAX_MESSAGE_CHARS, NormalizeError, normalize, normalize_item, normalize_item_bytes, normalize_slice,
};
pub use scan::repair as repair_json;
pub use spans::span_queries;
pub use tags::{MAX_TAG_KEY_BYTES, MAX_TAG_VALUE_CHARS, MAX_TAGS};
pub use timestamp::{parse_timestamp, parse_timestamp_str};

use crate::ids::EventId;

/// What kind of event this is. The kind decides grouping, title and culprit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Has at least one exception value (or a legacy `sentry.interfaces.Exception`).
    Exception,
    /// A log message (`logentry` / `message`), with no exception.
    Message,
    /// An SQL query with its engine (raven's `sentry.interfaces.Query` / `query`), or a db span
    /// of a transaction turned into its own observation.
    Query,
    /// A performance transaction (`type: "transaction"`).
    Transaction,
    /// Anything else a client names itself (`type: "deploy"`, …): stored and grouped by its
    /// message, never rejected. Lowercase.
    Custom(String),
}

impl EventKind {
    /// The name used in the API, the CLI and the store: `exception`, `message`, `query`,
    /// `transaction`, or the custom kind's own name.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::Exception => "exception",
            EventKind::Message => "message",
            EventKind::Query => "query",
            EventKind::Transaction => "transaction",
            EventKind::Custom(s) => s,
        }
    }

    pub fn parse(s: &str) -> EventKind {
        match s.to_ascii_lowercase().as_str() {
            "exception" | "error" => EventKind::Exception,
            "message" | "default" => EventKind::Message,
            "query" => EventKind::Query,
            "transaction" => EventKind::Transaction,
            other => EventKind::Custom(other.to_string()),
        }
    }
}

/// Severity. Clients send strings (`"warning"`, `"warn"`, `"critical"`) or raven's numeric
/// logging levels (10, 20, 30, 40, 50); all map here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Fatal,
}

impl Level {
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// Parses the names and numbers clients use. Unknown text gives `None`.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "debug" | "trace" | "10" => Level::Debug,
            "info" | "log" | "notice" | "20" => Level::Info,
            "warning" | "warn" | "30" => Level::Warning,
            "error" | "err" | "40" => Level::Error,
            "fatal" | "critical" | "crit" | "50" => Level::Fatal,
            _ => return None,
        })
    }
}

/// A log message: `formatted` is what a person reads; `message` the template before params.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogEntry {
    pub message: Option<String>,
    pub formatted: String,
    pub params: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mechanism {
    pub ty: Option<String>,
    pub handled: Option<bool>,
    pub synthetic: bool,
}

/// One stack frame. Ordered caller → callee: the last frame is where it happened.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    pub filename: Option<String>,
    pub abs_path: Option<String>,
    pub module: Option<String>,
    pub function: Option<String>,
    pub lineno: Option<u64>,
    pub colno: Option<u64>,
    pub context_line: Option<String>,
    pub in_app: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stacktrace {
    pub frames: Vec<Frame>,
}

/// One exception of a chain. Chains are ordered oldest → newest (cause first), as on the wire.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exception {
    pub ty: Option<String>,
    pub value: Option<String>,
    pub module: Option<String>,
    pub mechanism: Option<Mechanism>,
    pub stacktrace: Option<Stacktrace>,
}

/// An SQL query: raven's `sentry.interfaces.Query`, or a db span.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    pub query: String,
    /// The database engine (`psycopg2`, `postgresql`, `mysql`, …), when known.
    pub engine: Option<String>,
}

/// A span of a transaction, reduced to what we index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Span {
    pub span_id: String,
    pub op: Option<String>,
    pub description: Option<String>,
    /// Unix seconds.
    pub start_timestamp: f64,
    /// Unix seconds.
    pub timestamp: f64,
    /// `data["db.system"]`, when present.
    pub db_system: Option<String>,
}

impl Span {
    pub fn duration_ms(&self) -> f64 {
        ((self.timestamp - self.start_timestamp) * 1000.0).max(0.0)
    }

    /// Whether this span is a database query we turn into a Query observation: op `db` or
    /// `db.*` (but not redis / mongodb / clickhouse sub-ops), with SQL in the description.
    pub fn is_db_query(&self) -> bool {
        let Some(op) = self.op.as_deref() else { return false };
        let op = op.to_ascii_lowercase();
        if !(op == "db" || op.starts_with("db.")) {
            return false;
        }
        if ["redis", "mongodb", "clickhouse"].iter().any(|s| op.contains(s)) {
            return false;
        }
        // Connection set-up spans (Django's `connect`) carry no SQL.
        self.description.as_deref().map(str::trim).is_some_and(|d| !d.is_empty() && !d.eq_ignore_ascii_case("connect"))
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    pub id: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub ip_address: Option<String>,
}

impl User {
    /// The best single label for the user: id, then email, username, ip.
    pub fn label(&self) -> Option<&str> {
        self.id
            .as_deref()
            .or(self.email.as_deref())
            .or(self.username.as_deref())
            .or(self.ip_address.as_deref())
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Request {
    /// Full URL as sent (may carry a query string).
    pub url: Option<String>,
    pub method: Option<String>,
}

/// One event, normalised. Every field that a client may omit is optional; `normalize` fills
/// the required ones (`event_id`, `timestamp`, `level`, `platform`).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub event_id: EventId,
    pub kind: EventKind,
    /// Unix seconds. Old timestamps are kept as sent; a missing one is `received_at`.
    pub timestamp: f64,
    pub platform: String,
    pub level: Level,
    pub logger: Option<String>,
    pub transaction: Option<String>,
    pub server_name: Option<String>,
    pub release: Option<String>,
    pub dist: Option<String>,
    pub environment: Option<String>,
    pub message: Option<LogEntry>,
    pub exceptions: Vec<Exception>,
    /// A top-level stacktrace (raven's `stack=True`, or the crashing thread's), for events
    /// without an exception.
    pub stacktrace: Option<Stacktrace>,
    pub query: Option<Query>,
    /// Duration in milliseconds: `time_spent` as sent, or a transaction's own duration.
    pub time_spent: Option<f64>,
    /// Tags as sent (both wire forms), then the derived ones (logger, level, server, url,
    /// environment, release, transaction, browser, os, user) where not already present.
    /// Keys trimmed to 200 bytes, values to 200 chars; at most `MAX_TAGS` of the tags sent.
    pub tags: Vec<(String, String)>,
    /// Tag keys whose value was trimmed.
    pub trimmed_tags: Vec<String>,
    /// How many tags were sent past `MAX_TAGS` and dropped.
    pub dropped_tags: usize,
    /// Client fingerprint, if sent. May contain `{{ default }}`.
    pub fingerprint: Option<Vec<String>>,
    /// Culprit as sent by the client (legacy); grouping computes one when absent.
    pub culprit: Option<String>,
    pub user: Option<User>,
    pub request: Option<Request>,
    /// Transactions only, unix seconds.
    pub start_timestamp: Option<f64>,
    /// Transactions only.
    pub spans: Vec<Span>,
}

impl Event {
    /// The first tag value for `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The exception a person thinks of as "the error": the newest of the chain.
    pub fn main_exception(&self) -> Option<&Exception> {
        self.exceptions.last()
    }
}
