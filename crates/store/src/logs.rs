//! Structured logs (the SDKs' `log` items): one row per log line, kept beside events for their
//! own retention, read newest first per project with a level filter, `key:value` terms over
//! the attributes, free text over the body and a keyset cursor.

use serde::Serialize;

use crate::{EventId, ProjectId};

/// The levels a log may have, lowest first (OpenTelemetry's severity names, as the SDKs send
/// them).
pub const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];

/// The most logs one read returns.
pub const MAX_LOG_PAGE: usize = 1000;

/// A log to store, as ingest read it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewLog {
    pub project_id: ProjectId,
    /// Its own id: a replay or a client's retry of the same log stores it once.
    pub log_id: EventId,
    /// Unix seconds, as the SDK stamped it.
    pub timestamp: f64,
    pub received: f64,
    /// 32 lowercase hex digits.
    pub trace_id: Option<String>,
    /// One of [`LOG_LEVELS`].
    pub level: String,
    pub body: String,
    /// The message template (`sentry.message.template`), when the body was formatted from one.
    pub template: Option<String>,
    pub release: Option<String>,
    pub environment: Option<String>,
    /// A JSON object: attribute name to value (the value alone, not its type).
    pub attributes: String,
}

/// Which logs of a project to read, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct LogQuery {
    pub project: ProjectId,
    /// Any of these levels; empty: every level.
    pub levels: Vec<String>,
    /// Words or phrases the body contains (case-insensitively for ASCII letters), all of them.
    pub text: Vec<String>,
    /// Attributes with these values (compared as text): a key names an attribute, or the
    /// template parameter of that name (`order_id` is also `sentry.message.parameter.order_id`).
    pub attributes: Vec<(String, String)>,
    pub trace_id: Option<String>,
    pub release: Option<String>,
    pub environment: Option<String>,
    /// Only logs older than this one (the last row of the previous page).
    pub before: Option<LogCursor>,
    /// At most this many (capped at [`MAX_LOG_PAGE`]).
    pub limit: usize,
}

/// Where a page of logs ends: its last row's time and id.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogCursor {
    pub timestamp: f64,
    pub id: i64,
}

impl LogCursor {
    /// The cursor after `row`.
    pub fn after(row: &LogRow) -> LogCursor {
        LogCursor { timestamp: row.timestamp, id: row.id }
    }

    /// As written in a URL: `<timestamp>:<id>`.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.timestamp, self.id)
    }

    /// Reads [`LogCursor::encode`]'s form; `None` for anything else.
    pub fn decode(s: &str) -> Option<LogCursor> {
        let (t, id) = s.split_once(':')?;
        let timestamp: f64 = t.parse().ok().filter(|t: &f64| t.is_finite())?;
        Some(LogCursor { timestamp, id: id.parse().ok()? })
    }
}

/// A stored log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogRow {
    pub id: i64,
    pub project_id: ProjectId,
    pub log_id: String,
    pub timestamp: f64,
    pub trace_id: Option<String>,
    pub level: String,
    pub body: String,
    pub template: Option<String>,
    pub release: Option<String>,
    pub environment: Option<String>,
    /// A JSON object, as stored.
    pub attributes: String,
}

impl LogQuery {
    /// The newest `limit` logs of a project, with no filter.
    pub fn new(project: ProjectId, limit: usize) -> LogQuery {
        LogQuery {
            project,
            levels: Vec::new(),
            text: Vec::new(),
            attributes: Vec::new(),
            trace_id: None,
            release: None,
            environment: None,
            before: None,
            limit,
        }
    }

    /// The limit a backend uses.
    pub(crate) fn page(&self) -> i64 {
        self.limit.clamp(1, MAX_LOG_PAGE) as i64
    }

    /// The attribute names a key stands for: the attribute itself and the template parameter.
    pub(crate) fn attribute_names(key: &str) -> [String; 2] {
        [key.to_string(), format!("sentry.message.parameter.{key}")]
    }

    /// Refuses what a backend can't put in a query: keys with quotes or backslashes (they
    /// would end a JSON path), and empty keys.
    pub(crate) fn check(&self) -> crate::Result<()> {
        for (k, _) in &self.attributes {
            if k.is_empty() || k.contains(['"', '\\']) || k.len() > 200 {
                return Err(crate::StoreError::Invalid(format!("\"{k}\" can't be an attribute name")));
            }
        }
        Ok(())
    }
}

/// Free text as a `LIKE` pattern that finds it anywhere (`*` is a wildcard, as in every search).
pub(crate) fn contains_pattern(text: &str) -> String {
    format!("%{}%", crate::query::like_pattern(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_patterns() {
        let c = LogCursor { timestamp: 1_700_000_000.125, id: 42 };
        assert_eq!(LogCursor::decode(&c.encode()), Some(c));
        assert_eq!(LogCursor::decode("nan:1"), None);
        assert_eq!(LogCursor::decode("12"), None);
        assert_eq!(contains_pattern("50%_off"), "%50\\%\\_off%");
    }
}
