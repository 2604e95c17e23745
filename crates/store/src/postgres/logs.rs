//! Structured logs in PostgreSQL: written by the writer in the batch's transaction as whole
//! arrays (a log already stored is left as it is), read newest first with the query's filters,
//! deleted past their retention a chunk at a time. The same shape as SQLite's.

use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PgStore;
use super::stream::Arg;
use crate::logs::contains_pattern;
use crate::query::like_pattern;
use crate::{EventId, LogQuery, LogRow, NewLog, ProjectId, Result};

/// Rows deleted per transaction.
const CHUNK: i64 = 5000;

pub(super) async fn write(tx: &Transaction<'_>, logs: &[NewLog]) -> Result<()> {
    if logs.is_empty() {
        return Ok(());
    }
    // Keys sorted, so that two nodes' writers take the unique index's locks in one order.
    let mut sorted: Vec<&NewLog> = logs.iter().collect();
    sorted.sort_by_key(|l| (l.project_id.0, l.log_id.0));
    let text = |f: fn(&NewLog) -> &str| sorted.iter().map(|l| f(l)).collect::<Vec<&str>>();
    let opt = |f: fn(&NewLog) -> Option<&str>| sorted.iter().map(|l| f(l)).collect::<Vec<Option<&str>>>();
    let st = tx
        .prepare_cached(
            "INSERT INTO logs (project_id, log_id, timestamp, received, trace_id, level, body, template, release, environment, attributes)
             SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::float8[], $4::float8[], $5::text[], $6::text[], $7::text[], $8::text[],
                                  $9::text[], $10::text[], $11::text[])
             ON CONFLICT (project_id, log_id) DO NOTHING",
        )
        .await?;
    tx.execute(
        &st,
        &[
            &sorted.iter().map(|l| l.project_id.0).collect::<Vec<i64>>(),
            &sorted.iter().map(|l| &l.log_id.0[..]).collect::<Vec<&[u8]>>(),
            &sorted.iter().map(|l| l.timestamp).collect::<Vec<f64>>(),
            &sorted.iter().map(|l| l.received).collect::<Vec<f64>>(),
            &opt(|l| l.trace_id.as_deref()),
            &text(|l| &l.level),
            &text(|l| &l.body),
            &opt(|l| l.template.as_deref()),
            &opt(|l| l.release.as_deref()),
            &opt(|l| l.environment.as_deref()),
            &text(|l| &l.attributes),
        ],
    )
    .await?;
    Ok(())
}

fn bind(args: &mut Vec<Arg>, v: Arg) -> String {
    args.push(v);
    format!("${}", args.len())
}

fn sql(q: &LogQuery) -> (String, Vec<Arg>) {
    let mut args = vec![Arg::Int(q.project.0)];
    let mut sql = String::from(
        "SELECT id, project_id, log_id, timestamp, trace_id, level, body, template, release, environment, attributes
         FROM logs WHERE project_id = $1",
    );
    if !q.levels.is_empty() {
        let marks: Vec<String> = q.levels.iter().map(|l| bind(&mut args, Arg::Text(l.clone()))).collect();
        sql += &format!(" AND level IN ({})", marks.join(", "));
    }
    for (column, value) in [("trace_id", &q.trace_id), ("release", &q.release), ("environment", &q.environment)] {
        if let Some(v) = value {
            sql += &format!(" AND {column} = {}", bind(&mut args, Arg::Text(v.clone())));
        }
    }
    for word in &q.text {
        sql += &format!(" AND body ILIKE {}", bind(&mut args, Arg::Text(contains_pattern(word))));
    }
    for (key, value) in &q.attributes {
        // `*` is a wildcard; else the value is compared exactly.
        let (op, v) = match value.contains('*') {
            true => ("ILIKE", bind(&mut args, Arg::Text(like_pattern(value)))),
            false => ("=", bind(&mut args, Arg::Text(value.clone()))),
        };
        let alternatives: Vec<String> = LogQuery::attribute_names(key)
            .into_iter()
            .map(|name| format!("(attributes::jsonb ->> {}) {op} {v}", bind(&mut args, Arg::Text(name))))
            .collect();
        sql += &format!(" AND ({})", alternatives.join(" OR "));
    }
    if let Some(c) = q.before {
        let t = bind(&mut args, Arg::Real(c.timestamp));
        let id = bind(&mut args, Arg::Int(c.id));
        sql += &format!(" AND (timestamp < {t} OR (timestamp = {t} AND id < {id}))");
    }
    sql += &format!(" ORDER BY timestamp DESC, id DESC LIMIT {}", bind(&mut args, Arg::Int(q.page())));
    (sql, args)
}

impl crate::Logs for PgStore {
    fn logs(&self, q: &LogQuery) -> Result<Vec<LogRow>> {
        q.check()?;
        let (sql, args) = sql(q);
        self.with(async |c| {
            let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(Arg::as_sql).collect();
            let rows = c.query(&sql, &params).await?;
            Ok(rows.iter().map(row).collect())
        })
    }

    fn delete_logs_before(&self, cutoff: f64) -> Result<u64> {
        self.with(async |c| {
            let mut total = 0u64;
            loop {
                let n = c
                    .execute("DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE received < $1 LIMIT $2)", &[&cutoff, &CHUNK])
                    .await?;
                total += n;
                if (n as i64) < CHUNK {
                    return Ok(total);
                }
            }
        })
    }
}

fn row(r: &Row) -> LogRow {
    let log_id: Vec<u8> = r.get(2);
    LogRow {
        id: r.get(0),
        project_id: ProjectId(r.get(1)),
        log_id: log_id.try_into().map(|a: [u8; 16]| EventId(a).to_string()).unwrap_or_default(),
        timestamp: r.get(3),
        trace_id: r.get(4),
        level: r.get(5),
        body: r.get(6),
        template: r.get(7),
        release: r.get(8),
        environment: r.get(9),
        attributes: r.get(10),
    }
}
