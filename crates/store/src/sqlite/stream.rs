//! The dashboard's queries in SQL: the project stream (every sort × tag filters × interval ×
//! status, with keyset cursors that stay stable while events arrive), counts in an interval
//! from the minute / hour / day buckets, sparklines and event-rate series, the top tag values
//! of a project (the filter widgets' choices), duration histograms, new and trending groups.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection};

use super::read::GROUP_COLUMNS;
use super::SqliteStore;
use crate::query::like_pattern;
use crate::{Assignee, GroupField, Resolution, Result, Sort, StatusFilter, StreamQuery};

/// The per-group bucket table of a resolution, and its slot column.
fn group_table(res: Resolution) -> (&'static str, &'static str) {
    match res {
        Resolution::Minute => ("group_buckets", "minute"),
        Resolution::Hour => ("group_hours", "hour"),
        Resolution::Day => ("group_days", "day"),
    }
}


pub(super) fn bind(args: &mut Vec<Value>, v: Value) -> String {
    args.push(v);
    format!("?{}", args.len())
}

/// The SQL of an interval count for group `g`: events since `since` from the right buckets.
pub(super) fn count_sql(args: &mut Vec<Value>, since: f64, now: f64) -> String {
    let res = Resolution::for_span(now - since);
    let (table, col) = group_table(res);
    let p = bind(args, Value::Integer(res.slot(since)));
    format!("(SELECT COALESCE(SUM(b.count), 0) FROM {table} b WHERE b.group_id = g.id AND b.{col} >= {p})")
}

/// `{t}.key = 'environment' AND {t}.value IN (…)`: a `group_tags` row of a chosen environment.
fn environment_sql(args: &mut Vec<Value>, t: &str, environments: &[String]) -> String {
    let values: Vec<String> = environments.iter().map(|e| bind(args, Value::Text(e.clone()))).collect();
    format!("{t}.key = 'environment' AND {t}.value IN ({})", values.join(", "))
}

/// The SQL of group `group`'s events in the chosen environments, all time.
fn environment_count_sql(args: &mut Vec<Value>, group: &str, environments: &[String]) -> String {
    let cond = environment_sql(args, "e", environments);
    format!("(SELECT COALESCE(SUM(e.count), 0) FROM group_tags e WHERE e.group_id = {group} AND {cond})")
}

/// A group's events in the chosen environments, all time.
pub(super) fn environment_count_on(conn: &Connection, group_id: i64, environments: &[String]) -> Result<u64> {
    let mut args = vec![Value::Integer(group_id)];
    let sql = environment_count_sql(&mut args, "?1", environments);
    let n: i64 = conn.query_row(&format!("SELECT {sql}"), params_from_iter(args), |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// The SQL and arguments of one stream page (one row more than the limit, to know whether
/// there is a next page).
pub(super) fn stream_sql(q: &StreamQuery) -> (String, Vec<Value>) {
    let mut args = Vec::new();
    let mut wh = format!("g.project_id = {}", bind(&mut args, Value::Integer(q.project_id.0)));
    if let StatusFilter::Only(s) = q.status {
        wh.push_str(&format!(" AND g.status = {}", bind(&mut args, Value::Integer(s.code()))));
    }
    if let Some(since) = q.since {
        wh.push_str(&format!(" AND g.last_seen >= {}", bind(&mut args, Value::Real(since))));
    }
    for (k, v) in &q.tags {
        let (k, v) = (bind(&mut args, Value::Text(k.clone())), bind(&mut args, Value::Text(v.clone())));
        wh.push_str(&format!(" AND g.id IN (SELECT t.group_id FROM group_tags t WHERE t.key = {k} AND t.value = {v})"));
    }
    for word in q.text.iter().filter(|w| !w.is_empty()) {
        let pattern = format!("%{}%", word.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let p = bind(&mut args, Value::Text(pattern));
        wh.push_str(&format!(" AND (g.title LIKE {p} ESCAPE '\\' OR g.culprit LIKE {p} ESCAPE '\\')"));
    }
    conditions_sql(q, &mut args, &mut wh);
    if !q.environments.is_empty() {
        let mut cond = environment_sql(&mut args, "t", &q.environments);
        if let Some(since) = q.since {
            cond.push_str(&format!(" AND t.last_seen >= {}", bind(&mut args, Value::Real(since))));
        }
        wh.push_str(&format!(" AND g.id IN (SELECT t.group_id FROM group_tags t WHERE {cond})"));
    }
    let sv = match q.sort {
        Sort::Priority => "g.priority".to_string(),
        Sort::LastSeen => "g.last_seen".to_string(),
        Sort::FirstSeen => "g.first_seen".to_string(),
        Sort::Frequency => match q.since {
            Some(since) => count_sql(&mut args, since, q.now),
            None if q.counts_by_environment() => environment_count_sql(&mut args, "g.id", &q.environments),
            None => "g.times_seen".to_string(),
        },
        Sort::TimeSpent => {
            wh.push_str(" AND g.ts_avg IS NOT NULL");
            "g.ts_avg".to_string()
        }
        Sort::TimeSpentTotal => {
            wh.push_str(" AND g.ts_count > 0");
            "g.ts_sum".to_string()
        }
        Sort::Users => "g.users".to_string(),
    };
    if let Some(c) = q.cursor {
        let v = bind(&mut args, Value::Real(c.value));
        let id = bind(&mut args, Value::Integer(c.id));
        // `sv <= v` first: a range the sort's index can start from.
        wh.push_str(&format!(" AND {sv} <= {v} AND ({sv} < {v} OR g.id < {id})"));
    }
    let limit = bind(&mut args, Value::Integer(q.limit as i64 + 1));
    let sql = format!("SELECT {GROUP_COLUMNS}, {sv} AS sv FROM groups g WHERE {wh} ORDER BY sv DESC, g.id DESC LIMIT {limit}");
    (sql, args)
}

/// The column of a compared field.
fn field_column(f: GroupField) -> &'static str {
    match f {
        GroupField::TimesSeen => "g.times_seen",
        GroupField::Users => "g.users",
        GroupField::FirstSeen => "g.first_seen",
        GroupField::LastSeen => "g.last_seen",
    }
}

/// Appends the tag conditions, comparisons and assignee conditions of `q` to `wh`. A positive
/// condition on values reads the `(key, value, group_id)` index; `has:` and negations look at
/// the group's own rows through the primary key.
fn conditions_sql(q: &StreamQuery, args: &mut Vec<Value>, wh: &mut String) {
    for c in &q.conditions {
        let mut cond = format!("t.key = {}", bind(args, Value::Text(c.key.clone())));
        let ors: Vec<String> = c
            .values
            .iter()
            .map(|v| match v.contains('*') {
                true => format!("t.value LIKE {} ESCAPE '\\'", bind(args, Value::Text(like_pattern(v)))),
                false => format!("t.value = {}", bind(args, Value::Text(v.clone()))),
            })
            .collect();
        if !ors.is_empty() {
            cond.push_str(&format!(" AND ({})", ors.join(" OR ")));
        }
        if c.first_only {
            cond.push_str(" AND t.first_seen = (SELECT MIN(o.first_seen) FROM group_tags o WHERE o.group_id = t.group_id AND o.key = t.key)");
        }
        if c.negated || c.values.is_empty() {
            let not = if c.negated { "NOT " } else { "" };
            // LIMIT 1 keeps SQLite from turning the EXISTS into an IN over every row of the key
            // (a scan of all its values), where one seek per group is what is wanted.
            wh.push_str(&format!(" AND {not}EXISTS (SELECT 1 FROM group_tags t WHERE t.group_id = g.id AND {cond} LIMIT 1)"));
        } else {
            wh.push_str(&format!(" AND g.id IN (SELECT t.group_id FROM group_tags t WHERE {cond})"));
        }
    }
    for c in &q.comparisons {
        let v = match c.field {
            GroupField::TimesSeen | GroupField::Users => Value::Integer(c.value.clamp(i64::MIN as f64, i64::MAX as f64) as i64),
            _ => Value::Real(c.value),
        };
        wh.push_str(&format!(" AND {} {} {}", field_column(c.field), c.cmp.sql(), bind(args, v)));
    }
    for c in &q.assigned {
        let cond = match &c.to {
            None => "(g.assigned_user IS NOT NULL OR g.assigned_team IS NOT NULL)".to_string(),
            Some(to) if to.is_empty() => "0".to_string(),
            Some(to) => {
                let ors: Vec<String> = to
                    .iter()
                    .map(|a| match a {
                        Assignee::User(u) => format!("g.assigned_user IS {}", bind(args, Value::Integer(u.0))),
                        Assignee::Team(t) => format!("g.assigned_team IS {}", bind(args, Value::Integer(t.0))),
                    })
                    .collect();
                format!("({})", ors.join(" OR "))
            }
        };
        let not = if c.negated { "NOT " } else { "" };
        wh.push_str(&format!(" AND {not}{cond}"));
    }
}

pub(super) fn group_series_on(conn: &Connection, group_id: i64, since: f64, now: f64, points: usize) -> Result<Vec<u64>> {
    let res = Resolution::for_span(now - since);
    let (table, col) = group_table(res);
    let mut st = conn.prepare_cached(&format!(
        "SELECT {col}, count FROM {table} WHERE group_id = ?1 AND {col} >= ?2 AND {col} <= ?3"
    ))?;
    let rows = st
        .query_map(params![group_id, res.slot(since), res.slot(now)], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(crate::query::spread(rows.into_iter(), res, since, now, points))
}

pub(super) fn interval_count_on(conn: &Connection, group_id: i64, since: Option<f64>, now: f64) -> Result<u64> {
    let n: i64 = match since {
        None => conn.query_row("SELECT times_seen FROM groups WHERE id = ?1", [group_id], |r| r.get(0))?,
        Some(since) => {
            let mut args = vec![Value::Integer(group_id)];
            let sql = count_sql(&mut args, since, now).replace("g.id", "?1");
            conn.query_row(&format!("SELECT {sql}"), params_from_iter(args), |r| r.get(0))?
        }
    };
    Ok(n.max(0) as u64)
}

impl SqliteStore {
    /// SQLite's plan for a stream query, one line per step (for tests and the benchmark).
    pub fn explain_stream(&self, q: &StreamQuery) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let (sql, args) = stream_sql(q);
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let rows = st.query_map(params_from_iter(args), |r| r.get::<_, String>(3))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Recomputes the statistics SQLite's query planner uses (cheap; run after bulk loads).
    pub fn optimize(&self) -> Result<()> {
        let conn = self.conn()?;
        conn.execute_batch("PRAGMA analysis_limit = 1000; ANALYZE;")?;
        Ok(())
    }
}
