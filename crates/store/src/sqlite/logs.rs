//! Structured logs in SQLite: written by the writer in the batch's transaction (a log already
//! stored is left as it is), read newest first with the query's filters, deleted past their
//! retention a chunk at a time.

use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use super::SqliteStore;
use crate::logs::contains_pattern;
use crate::query::like_pattern;
use crate::{EventId, LogQuery, LogRow, NewLog, ProjectId, Result};

/// Rows deleted per transaction.
const CHUNK: i64 = 5000;

pub(super) fn write(tx: &Connection, logs: &[NewLog]) -> rusqlite::Result<()> {
    if logs.is_empty() {
        return Ok(());
    }
    let mut ins = tx.prepare_cached(
        "INSERT INTO logs (project_id, log_id, timestamp, received, trace_id, level, body, template, release, environment, attributes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (project_id, log_id) DO NOTHING",
    )?;
    for l in logs {
        ins.execute(params![
            l.project_id.0,
            &l.log_id.0[..],
            l.timestamp,
            l.received,
            l.trace_id,
            l.level,
            l.body,
            l.template,
            l.release,
            l.environment,
            l.attributes,
        ])?;
    }
    Ok(())
}

/// An attribute's value as text (`true`/`false` for booleans, as PostgreSQL writes them).
fn attribute_text(path: usize) -> String {
    format!(
        "(CASE json_type(attributes, ?{path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
         ELSE CAST(json_extract(attributes, ?{path}) AS TEXT) END)"
    )
}

impl crate::Logs for SqliteStore {
    fn logs(&self, q: &LogQuery) -> Result<Vec<LogRow>> {
        q.check()?;
        let mut sql = String::from(
            "SELECT id, project_id, log_id, timestamp, trace_id, level, body, template, release, environment, attributes
             FROM logs WHERE project_id = ?1",
        );
        let mut values: Vec<Value> = vec![Value::Integer(q.project.0)];
        let push = |values: &mut Vec<Value>, v: Value| {
            values.push(v);
            values.len()
        };
        if !q.levels.is_empty() {
            let marks: Vec<String> = q.levels.iter().map(|l| format!("?{}", push(&mut values, Value::Text(l.clone())))).collect();
            sql += &format!(" AND level IN ({})", marks.join(", "));
        }
        for (column, value) in [("trace_id", &q.trace_id), ("release", &q.release), ("environment", &q.environment)] {
            if let Some(v) = value {
                sql += &format!(" AND {column} = ?{}", push(&mut values, Value::Text(v.clone())));
            }
        }
        for word in &q.text {
            sql += &format!(" AND body LIKE ?{} ESCAPE '\\'", push(&mut values, Value::Text(contains_pattern(word))));
        }
        for (key, value) in &q.attributes {
            // `*` is a wildcard; else the value is compared exactly.
            let (op, v) = match value.contains('*') {
                true => ("LIKE", Value::Text(like_pattern(value))),
                false => ("=", Value::Text(value.clone())),
            };
            let v = push(&mut values, v);
            let escape = if op == "LIKE" { " ESCAPE '\\'" } else { "" };
            let alternatives: Vec<String> = LogQuery::attribute_names(key)
                .iter()
                .map(|name| format!("{} {op} ?{v}{escape}", attribute_text(push(&mut values, Value::Text(format!("$.\"{name}\""))))))
                .collect();
            sql += &format!(" AND ({})", alternatives.join(" OR "));
        }
        if let Some(c) = q.before {
            let t = push(&mut values, Value::Real(c.timestamp));
            let id = push(&mut values, Value::Integer(c.id));
            sql += &format!(" AND (timestamp < ?{t} OR (timestamp = ?{t} AND id < ?{id}))");
        }
        sql += &format!(" ORDER BY timestamp DESC, id DESC LIMIT ?{}", push(&mut values, Value::Integer(q.page())));
        let conn = self.conn()?;
        let mut st = conn.prepare(&sql)?;
        let rows = st.query_map(params_from_iter(values.iter()), row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn delete_logs_before(&self, cutoff: f64) -> Result<u64> {
        let conn = self.conn()?;
        let mut total = 0u64;
        loop {
            let n = conn.execute(
                "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE received < ?1 LIMIT ?2)",
                params![cutoff, CHUNK],
            )?;
            total += n as u64;
            if (n as i64) < CHUNK {
                return Ok(total);
            }
        }
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogRow> {
    let log_id: Vec<u8> = r.get(2)?;
    Ok(LogRow {
        id: r.get(0)?,
        project_id: ProjectId(r.get(1)?),
        log_id: log_id.try_into().map(|a: [u8; 16]| EventId(a).to_string()).unwrap_or_default(),
        timestamp: r.get(3)?,
        trace_id: r.get(4)?,
        level: r.get(5)?,
        body: r.get(6)?,
        template: r.get(7)?,
        release: r.get(8)?,
        environment: r.get(9)?,
        attributes: r.get(10)?,
    })
}
