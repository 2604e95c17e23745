//! Transaction spans: reading them leniently, and turning a transaction's database spans into
//! Query observations (the modern form of raven's "SQL query with time_spent").

use std::collections::HashSet;

use serde_json::Value;

use super::timestamp::parse_timestamp;
use super::{Event, EventKind, Level, Query, Span};

/// Reads `spans` as sent. Spans that are not objects, or lack either timestamp, are skipped (a
/// duration cannot be known for them); a missing `span_id` becomes `span-<index>`.
pub(crate) fn parse_spans(v: Option<&Value>) -> Vec<Span> {
    let Some(Value::Array(list)) = v else {
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .filter_map(|(i, span)| {
            let span = span.as_object()?;
            let text = |key: &str| match span.get(key)? {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            let db_system = span
                .get("data")
                .and_then(|d| d.get("db.system"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            Some(Span {
                span_id: text("span_id").unwrap_or_else(|| format!("span-{i}")),
                op: text("op"),
                description: text("description"),
                start_timestamp: parse_timestamp(span.get("start_timestamp")?)?,
                timestamp: parse_timestamp(span.get("timestamp")?)?,
                db_system,
            })
        })
        .collect()
}

/// One Query event per database span of a transaction (see [`Span::is_db_query`]); nothing for
/// other kinds of events.
///
/// Each gets a stable id derived from the transaction's id and the span id, the SQL as its
/// query, `db.system` as its engine, the span's duration as `time_spent` and its end as its
/// timestamp, level info, and the transaction's context (platform, release, environment,
/// server, transaction name, user, request) and tags, with `level=info` and `engine=…`.
pub fn span_queries(tx: &Event) -> Vec<Event> {
    if tx.kind != EventKind::Transaction {
        return Vec::new();
    }
    let base_tags: Vec<(String, String)> = tx
        .tags
        .iter()
        .filter(|(k, _)| k != "level" && k != "engine")
        .cloned()
        .collect();
    let mut seen = HashSet::new();
    tx.spans
        .iter()
        .enumerate()
        .filter(|(_, span)| span.is_db_query())
        .map(|(i, span)| {
            // A span id repeated within one transaction still gets its own stable id.
            let label = if seen.insert(span.span_id.as_str()) {
                span.span_id.clone()
            } else {
                format!("{}#{i}", span.span_id)
            };
            let engine = span.db_system.clone();
            let mut tags = base_tags.clone();
            tags.push(("level".into(), Level::Info.as_str().into()));
            if let Some(engine) = &engine {
                tags.push(("engine".into(), engine.clone()));
            }
            Event {
                event_id: tx.event_id.derive(&label),
                kind: EventKind::Query,
                timestamp: span.timestamp,
                platform: tx.platform.clone(),
                level: Level::Info,
                logger: None,
                transaction: tx.transaction.clone(),
                server_name: tx.server_name.clone(),
                release: tx.release.clone(),
                dist: tx.dist.clone(),
                environment: tx.environment.clone(),
                message: None,
                exceptions: Vec::new(),
                stacktrace: None,
                query: Some(Query {
                    query: span.description.clone().unwrap_or_default(),
                    engine,
                }),
                time_spent: Some(span.duration_ms()),
                tags,
                trimmed_tags: tx.trimmed_tags.clone(),
                dropped_tags: tx.dropped_tags,
                fingerprint: None,
                culprit: None,
                user: tx.user.clone(),
                request: tx.request.clone(),
                start_timestamp: None,
                spans: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::normalize;
    use serde_json::json;

    fn tx() -> Event {
        normalize(
            json!({
                "type": "transaction",
                "event_id": "49599456fa114afd91d38f769eaa0ca2",
                "transaction": "/orders/",
                "platform": "python",
                "release": "shop@1.2.3",
                "environment": "production",
                "server_name": "web-1",
                "tags": {"http.status_code": "200", "engine": "client-set"},
                "start_timestamp": "2026-11-24T05:14:53.438395Z",
                "timestamp": "2026-11-24T05:14:53.513657Z",
                "spans": [
                    {"span_id": "b99cff6559d4d08a", "op": "db", "description": "connect",
                     "start_timestamp": "2026-11-24T05:14:53.439432Z", "timestamp": "2026-11-24T05:14:53.450371Z",
                     "data": {"db.system": "postgresql"}},
                    {"span_id": "9df8d52fce55a25d", "op": "db", "description": "SELECT pg_sleep(0.05)",
                     "start_timestamp": "2026-11-24T05:14:53.462815Z", "timestamp": "2026-11-24T05:14:53.513259Z",
                     "data": {"db.system": "postgresql"}},
                    {"span_id": "9df8d52fce55a25d", "op": "db.sql.query", "description": "SELECT 1",
                     "start_timestamp": 1795497293.0, "timestamp": 1795497293.002},
                    {"span_id": "x1", "op": "db.redis", "description": "GET k", "start_timestamp": 1.0, "timestamp": 2.0},
                    {"span_id": "x2", "op": "event.django", "description": "signal", "start_timestamp": 1.0, "timestamp": 2.0},
                    {"span_id": "x3", "op": "db", "description": "no end", "start_timestamp": 1.0},
                    {"op": "db", "description": "  ", "start_timestamp": 1.0, "timestamp": 2.0},
                    "not a span"
                ]
            }),
            1.0,
            None,
        )
        .unwrap()
    }

    #[test]
    fn parses_spans_leniently() {
        let tx = tx();
        assert_eq!(tx.spans.len(), 6);
        assert_eq!(tx.spans[5].span_id, "span-6");
        assert_eq!(tx.spans[1].db_system.as_deref(), Some("postgresql"));
        assert!((tx.spans[1].duration_ms() - 50.444).abs() < 0.01);
    }

    #[test]
    fn db_spans_become_queries() {
        let tx = tx();
        let queries = span_queries(&tx);
        let sql: Vec<&str> = queries
            .iter()
            .map(|q| q.query.as_ref().unwrap().query.as_str())
            .collect();
        // `connect` spans carry no SQL and are not queries.
        assert_eq!(sql, ["SELECT pg_sleep(0.05)", "SELECT 1"]);
        let sleep = &queries[0];
        assert_eq!(sleep.kind, EventKind::Query);
        assert_eq!(sleep.level, Level::Info);
        assert_eq!(sleep.event_id, tx.event_id.derive("9df8d52fce55a25d"));
        assert_ne!(queries[1].event_id, sleep.event_id);
        assert!((sleep.time_spent.unwrap() - 50.444).abs() < 0.01);
        assert_eq!(sleep.timestamp, tx.spans[1].timestamp);
        assert_eq!(
            sleep.query.as_ref().unwrap().engine.as_deref(),
            Some("postgresql")
        );
        assert_eq!(sleep.transaction.as_deref(), Some("/orders/"));
        assert_eq!(
            (sleep.platform.as_str(), sleep.release.as_deref()),
            ("python", Some("shop@1.2.3"))
        );
        assert_eq!(sleep.tag("level"), Some("info"));
        assert_eq!(sleep.tag("engine"), Some("postgresql"));
        assert_eq!(sleep.tag("http.status_code"), Some("200"));
        assert_eq!(
            sleep
                .tags
                .iter()
                .filter(|(k, _)| k == "level" || k == "engine")
                .count(),
            2
        );
        assert_eq!(queries[1].tag("engine"), None);
        // Replaying gives the same ids.
        assert_eq!(span_queries(&tx)[0].event_id, sleep.event_id);
        assert!(span_queries(&queries[0]).is_empty());
    }
}
