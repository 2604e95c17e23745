//! Structured logs in the dashboard: a project's Logs page (newest first, a level filter, the
//! search box with `key:value` terms over attributes, older pages by cursor, a cheap refresh of
//! the first page while it is open) and the logs of an event's trace on the event's page.
//!
//! The search box reads as everywhere ([`super::search::parse`]); [`log_query`] lowers its
//! terms to a [`LogQuery`]: `level:` (one or a list), `trace:` / `trace_id:`, `release:`,
//! `environment:`, `message:` and free words (the body contains them), and any other
//! `key:value` an attribute (or the template parameter of that name).

use askama::Template;
use axum::extract::{Query, State};
use serde_json::Value;
use store::{LOG_LEVELS, LogCursor, LogQuery, LogRow, ProjectId, Store};

use super::pages::{Nav, nav};
use super::search::TermValue;
use super::{PageResult, blocking, format, paths, render};
use crate::AppState;
use crate::access::extract::ProjectScope;

/// Logs on one page.
pub const PAGE: usize = 100;
/// Logs of a trace shown on an event's page.
pub const OF_TRACE: usize = 50;

/// A level as the search box may write it: the SDKs' names, and `warning` / `critical`.
fn level_name(v: &str) -> Option<&'static str> {
    let v = v.to_ascii_lowercase();
    let v = match v.as_str() {
        "warning" => "warn",
        "critical" => "fatal",
        other => other,
    };
    LOG_LEVELS.iter().copied().find(|l| *l == v)
}

/// A trace id as stored (32 lowercase hex digits), from what a person typed.
fn trace_id(v: &str) -> Option<String> {
    protocol::EventId::parse(v).map(|t| t.to_string())
}

/// The logs query of a search box's text: what could be used, and why the rest could not.
pub fn log_query(project: ProjectId, q: &str, limit: usize) -> (LogQuery, Vec<String>) {
    let mut query = LogQuery::new(project, limit);
    let mut problems = Vec::new();
    for term in super::search::parse(q) {
        let term = match term {
            Ok(t) => t,
            Err(why) => {
                problems.push(why);
                continue;
            }
        };
        let key = term.key.as_deref();
        if term.negated {
            problems.push(format!("\"!{}\": logs can't be searched for what they don't have", key.unwrap_or_default()));
            continue;
        }
        let values = match (&term.value, key) {
            (TermValue::One(v), _) => vec![v.clone()],
            (TermValue::List(vs), Some("level")) => vs.clone(),
            (TermValue::List(_), Some(k)) => {
                problems.push(format!("\"{k}:[…]\": only level takes a list of values in logs"));
                continue;
            }
            (TermValue::Compare(..), k) | (TermValue::List(_), k @ None) => {
                problems.push(format!("\"{}\": logs are searched by equal values only", k.unwrap_or_default()));
                continue;
            }
        };
        match key {
            None | Some("message" | "body") => query.text.extend(values),
            Some("level") => {
                for v in values {
                    match level_name(&v) {
                        Some(l) => query.levels.push(l.to_string()),
                        None => problems.push(format!("\"{v}\" is not a log level: use one of {}", LOG_LEVELS.join(", "))),
                    }
                }
            }
            Some("trace" | "trace_id") => match trace_id(&values[0]) {
                Some(t) => query.trace_id = Some(t),
                None => problems.push(format!("\"{}\" is not a trace id (32 hexadecimal digits)", values[0])),
            },
            Some("release") => query.release = values.into_iter().next(),
            Some("environment") => query.environment = values.into_iter().next(),
            Some(k) => query.attributes.push((k.to_string(), values.into_iter().next().unwrap_or_default())),
        }
    }
    (query, problems)
}

/// Attributes shown as fields of their own, not again in the list.
const SHOWN_APART: [&str; 3] = ["sentry.message.template", "sentry.release", "sentry.environment"];

/// One log as shown.
pub(crate) struct LogView {
    pub level: String,
    pub body: String,
    pub ago: String,
    pub utc: String,
    pub template: String,
    pub release: String,
    pub environment: String,
    /// The attributes, sorted by name, each value as text.
    pub attributes: Vec<(String, String)>,
    pub trace_id: String,
    /// The project's logs of the same trace.
    pub trace_href: String,
}

impl LogView {
    fn of(slug: &str, l: &LogRow, now: f64) -> LogView {
        let attributes = match serde_json::from_str::<Value>(&l.attributes) {
            Ok(Value::Object(m)) => m
                .into_iter()
                .filter(|(k, _)| !SHOWN_APART.contains(&k.as_str()))
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, text)
                })
                .collect(),
            _ => Vec::new(),
        };
        let trace_id = l.trace_id.clone().unwrap_or_default();
        LogView {
            level: l.level.clone(),
            body: l.body.clone(),
            ago: format::ago(l.timestamp, now),
            utc: format::utc(l.timestamp),
            template: l.template.clone().unwrap_or_default(),
            release: l.release.clone().unwrap_or_default(),
            environment: l.environment.clone().unwrap_or_default(),
            attributes,
            trace_href: if trace_id.is_empty() { String::new() } else { search_href(slug, &format!("trace:{trace_id}"), "") },
            trace_id,
        }
    }
}

/// The Logs page of a project with a search and a level.
fn search_href(slug: &str, q: &str, level: &str) -> String {
    let mut pairs = Vec::new();
    if !q.is_empty() {
        pairs.push(("q".to_string(), q.to_string()));
    }
    if !level.is_empty() {
        pairs.push(("level".to_string(), level.to_string()));
    }
    format!("{}{}", paths::logs(slug), format::query_string(&pairs))
}

/// The trace id of an event (`contexts.trace.trace_id`), if it has one.
pub(crate) fn trace_of(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Event {
        contexts: Option<Contexts>,
    }
    #[derive(serde::Deserialize)]
    struct Contexts {
        trace: Option<Trace>,
    }
    #[derive(serde::Deserialize)]
    struct Trace {
        trace_id: Option<Value>,
    }
    let e: Event = serde_json::from_slice(payload).ok()?;
    e.contexts?.trace?.trace_id?.as_str().and_then(trace_id)
}

/// What an event's page shows of its trace's logs.
pub(crate) struct TraceLogs {
    pub trace_id: String,
    pub logs: Vec<LogView>,
    /// The Logs page of the trace.
    pub href: String,
}

/// The newest logs of an event's trace, when the event names one.
pub(crate) fn of_event(store: &dyn Store, project: ProjectId, slug: &str, payload: &[u8], now: f64) -> PageResult<Option<TraceLogs>> {
    let Some(trace) = trace_of(payload) else { return Ok(None) };
    let mut q = LogQuery::new(project, OF_TRACE);
    q.trace_id = Some(trace.clone());
    let logs = store.logs(&q)?.iter().map(|l| LogView::of(slug, l, now)).collect();
    Ok(Some(TraceLogs { href: search_href(slug, &format!("trace:{trace}"), ""), trace_id: trace, logs }))
}

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    nav: Nav,
    slug: String,
    name: String,
    q: String,
    level: String,
    /// (label, href, active) of each level choice, "any" first.
    levels: Vec<(String, String, bool)>,
    problems: Vec<String>,
    rows: LogRows,
}

#[derive(Template)]
#[template(path = "log_rows.html")]
struct LogRows {
    logs: Vec<LogView>,
    older_href: Option<String>,
    newest_href: Option<String>,
    empty: String,
}

/// `GET /p/{slug}/logs/?q=…&level=…&cursor=…` (`fragment=1`: only the list, for the refresh).
pub async fn page(State(state): State<AppState>, scope: ProjectScope, Query(params): Query<Vec<(String, String)>>) -> PageResult {
    let store = state.store.clone();
    blocking(move || {
        let param = |k: &str| params.iter().rev().find(|(pk, _)| pk == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
        let project = &scope.project;
        let (q, level, cursor) = (param("q"), param("level"), param("cursor"));
        let (mut query, mut problems) = log_query(project.id, &q, PAGE);
        let level = match level_name(&level) {
            Some(l) => {
                query.levels = vec![l.to_string()];
                l.to_string()
            }
            None if level.is_empty() => String::new(),
            None => {
                problems.push(format!("\"{level}\" is not a log level: showing every level"));
                String::new()
            }
        };
        if !cursor.is_empty() {
            match LogCursor::decode(&cursor) {
                Some(c) => query.before = Some(c),
                None => problems.push("the page link is broken; showing the newest logs".into()),
            }
        }
        let now = store::now();
        let rows = store.logs(&query)?;
        let older_href = (rows.len() == PAGE).then(|| rows.last().map(LogCursor::after)).flatten().map(|c| {
            let mut href = search_href(&project.slug, &q, &level);
            href.push(if href.contains('?') { '&' } else { '?' });
            href.push_str(&format!("cursor={}", format::url_encode(&c.encode())));
            href
        });
        let filtered = !q.is_empty() || !level.is_empty();
        let rows = LogRows {
            logs: rows.iter().map(|l| LogView::of(&project.slug, l, now)).collect(),
            older_href,
            newest_href: query.before.is_some().then(|| search_href(&project.slug, &q, &level)),
            empty: match (filtered, query.before.is_some()) {
                (_, true) => "No older logs.".into(),
                (true, false) => "No logs match.".into(),
                (false, false) => "No logs yet. Turn them on in the SDK (enable_logs=True in Python, enableLogs: true in JavaScript) and send some with its logger.".into(),
            },
        };
        if params.iter().any(|(k, _)| k == "fragment") {
            return render(&rows);
        }
        let levels = std::iter::once(("any", ""))
            .chain(LOG_LEVELS.iter().map(|l| (*l, *l)))
            .map(|(label, value)| (label.to_string(), search_href(&project.slug, &q, value), value == level))
            .collect();
        render(&LogsPage {
            nav: nav(&store, &scope.viewer, &project.slug, "logs")?,
            slug: project.slug.clone(),
            name: project.name.clone(),
            q,
            level,
            levels,
            problems,
            rows,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(q: &str) -> (LogQuery, Vec<String>) {
        log_query(ProjectId(1), q, 10)
    }

    #[test]
    fn the_search_box_becomes_a_logs_query() {
        let (q, problems) = check(r#"order_id:7 level:[error,warning] paid "card declined" trace:5F066C6F17BD443E963BC7DF5800E0FC release:shop@1.0"#);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(q.attributes, [("order_id".to_string(), "7".to_string())]);
        assert_eq!(q.levels, ["error", "warn"]);
        assert_eq!(q.text, ["paid", "card declined"]);
        assert_eq!(q.trace_id.as_deref(), Some("5f066c6f17bd443e963bc7df5800e0fc"));
        assert_eq!(q.release.as_deref(), Some("shop@1.0"));

        let (q, problems) = check("level:loud trace:xyz !user:1 count:>5 user:[a,b] words");
        assert_eq!(q.text, ["words"], "what can be used still is");
        assert!(q.levels.is_empty() && q.trace_id.is_none() && q.attributes.is_empty());
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems[0].contains("not a log level"), "{problems:?}");
    }

    #[test]
    fn an_event_s_trace_id() {
        assert_eq!(trace_of(br#"{"contexts":{"trace":{"trace_id":"5f066c6f17bd443e963bc7df5800e0fc","span_id":"a"}},"x":[1]}"#).as_deref(), Some("5f066c6f17bd443e963bc7df5800e0fc"));
        assert_eq!(trace_of(br#"{"contexts":{"trace":{"trace_id":7}}}"#), None);
        assert_eq!(trace_of(br#"{"contexts":{"os":{}}}"#), None);
        assert_eq!(trace_of(b"[1]"), None);
    }
}
