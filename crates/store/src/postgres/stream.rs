//! The dashboard's queries in SQL: the project stream (every sort × tag filters × interval ×
//! status, keyset cursors), counts in an interval from the minute / hour / day buckets,
//! sparklines. The same shape as SQLite's, in PostgreSQL's dialect.

use tokio_postgres::types::ToSql;

use super::read::GROUP_COLUMNS;
use crate::query::like_pattern;
use crate::{Assignee, GroupField, Resolution, Result, Sort, StatusFilter, StreamQuery};

/// A bound parameter of a query built at run time.
pub(super) enum Arg {
    Int(i64),
    Real(f64),
    Text(String),
}

impl Arg {
    pub(super) fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Arg::Int(v) => v,
            Arg::Real(v) => v,
            Arg::Text(v) => v,
        }
    }
}

fn bind(args: &mut Vec<Arg>, v: Arg) -> String {
    args.push(v);
    format!("${}", args.len())
}

/// The per-group bucket table of a resolution, and its slot column.
fn group_table(res: Resolution) -> (&'static str, &'static str) {
    match res {
        Resolution::Minute => ("group_buckets", "minute"),
        Resolution::Hour => ("group_hours", "hour"),
        Resolution::Day => ("group_days", "day"),
    }
}

/// The SQL of an interval count for the group `g`: events since `since` from the right buckets.
fn count_sql(args: &mut Vec<Arg>, group: &str, since: f64, now: f64) -> String {
    let res = Resolution::for_span(now - since);
    let (table, col) = group_table(res);
    let p = bind(args, Arg::Int(res.slot(since)));
    format!("(SELECT COALESCE(SUM(b.count), 0)::float8 FROM {table} b WHERE b.group_id = {group} AND b.{col} >= {p})")
}

/// `{t}.key = 'environment' AND {t}.value IN (…)`: a `group_tags` row of a chosen environment.
fn environment_sql(args: &mut Vec<Arg>, t: &str, environments: &[String]) -> String {
    let values: Vec<String> = environments.iter().map(|e| bind(args, Arg::Text(e.clone()))).collect();
    format!("{t}.key = 'environment' AND {t}.value IN ({})", values.join(", "))
}

/// The SQL of group `group`'s events in the chosen environments, all time.
fn environment_count_sql(args: &mut Vec<Arg>, group: &str, environments: &[String]) -> String {
    let cond = environment_sql(args, "e", environments);
    format!("(SELECT COALESCE(SUM(e.count), 0)::float8 FROM group_tags e WHERE e.group_id = {group} AND {cond})")
}

/// A group's events in the chosen environments, all time.
pub(super) async fn environment_count_on(c: &tokio_postgres::Client, group_id: i64, environments: &[String]) -> Result<u64> {
    let mut args = vec![Arg::Int(group_id)];
    let sql = environment_count_sql(&mut args, "$1", environments);
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(Arg::as_sql).collect();
    let n: f64 = c.query_one(&format!("SELECT {sql}"), &params).await?.get(0);
    Ok(n.max(0.0) as u64)
}

/// The SQL and arguments of one stream page (one row more than the limit, to know whether
/// there is a next page).
pub(super) fn stream_sql(q: &StreamQuery) -> (String, Vec<Arg>) {
    let mut args = Vec::new();
    let mut wh = format!("g.project_id = {}", bind(&mut args, Arg::Int(q.project_id.0)));
    if let StatusFilter::Only(s) = q.status {
        wh.push_str(&format!(" AND g.status = {}", bind(&mut args, Arg::Int(s.code()))));
    }
    if let Some(since) = q.since {
        wh.push_str(&format!(" AND g.last_seen >= {}", bind(&mut args, Arg::Real(since))));
    }
    for (k, v) in &q.tags {
        let (k, v) = (bind(&mut args, Arg::Text(k.clone())), bind(&mut args, Arg::Text(v.clone())));
        wh.push_str(&format!(" AND g.id IN (SELECT t.group_id FROM group_tags t WHERE t.key = {k} AND t.value = {v})"));
    }
    for word in q.text.iter().filter(|w| !w.is_empty()) {
        let pattern = format!("%{}%", word.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let p = bind(&mut args, Arg::Text(pattern));
        wh.push_str(&format!(" AND (g.title ILIKE {p} OR g.culprit ILIKE {p})"));
    }
    conditions_sql(q, &mut args, &mut wh);
    if !q.environments.is_empty() {
        let mut cond = environment_sql(&mut args, "t", &q.environments);
        if let Some(since) = q.since {
            cond.push_str(&format!(" AND t.last_seen >= {}", bind(&mut args, Arg::Real(since))));
        }
        wh.push_str(&format!(" AND g.id IN (SELECT t.group_id FROM group_tags t WHERE {cond})"));
    }
    let sv = match q.sort {
        Sort::Priority => "g.priority".to_string(),
        Sort::LastSeen => "g.last_seen".to_string(),
        Sort::FirstSeen => "g.first_seen".to_string(),
        Sort::Frequency => match q.since {
            Some(since) => count_sql(&mut args, "g.id", since, q.now),
            None if q.counts_by_environment() => environment_count_sql(&mut args, "g.id", &q.environments),
            None => "g.times_seen::float8".to_string(),
        },
        Sort::TimeSpent => {
            wh.push_str(" AND g.ts_avg IS NOT NULL");
            "g.ts_avg".to_string()
        }
        Sort::TimeSpentTotal => {
            wh.push_str(" AND g.ts_count > 0");
            "g.ts_sum".to_string()
        }
        Sort::Users => "g.users::float8".to_string(),
    };
    if let Some(c) = q.cursor {
        let v = bind(&mut args, Arg::Real(c.value));
        let id = bind(&mut args, Arg::Int(c.id));
        wh.push_str(&format!(" AND ({sv}, g.id) < ({v}, {id})"));
    }
    let limit = bind(&mut args, Arg::Int(q.limit as i64 + 1));
    let sql = format!("SELECT {GROUP_COLUMNS}, {sv} AS sv FROM groups g WHERE {wh} ORDER BY sv DESC, g.id DESC LIMIT {limit}");
    (sql, args)
}

/// Appends the tag conditions, comparisons and assignee conditions of `q` to `wh` (as
/// SQLite's: positive values through the `(key, value, group_id)` index, `has:` and negations
/// through the group's own rows).
fn conditions_sql(q: &StreamQuery, args: &mut Vec<Arg>, wh: &mut String) {
    for c in &q.conditions {
        let mut cond = format!("t.key = {}", bind(args, Arg::Text(c.key.clone())));
        let ors: Vec<String> = c
            .values
            .iter()
            .map(|v| match v.contains('*') {
                true => format!("t.value ILIKE {}", bind(args, Arg::Text(like_pattern(v)))),
                false => format!("t.value = {}", bind(args, Arg::Text(v.clone()))),
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
            wh.push_str(&format!(" AND {not}EXISTS (SELECT 1 FROM group_tags t WHERE t.group_id = g.id AND {cond})"));
        } else {
            wh.push_str(&format!(" AND g.id IN (SELECT t.group_id FROM group_tags t WHERE {cond})"));
        }
    }
    for c in &q.comparisons {
        let (col, v) = match c.field {
            GroupField::TimesSeen => ("g.times_seen", Arg::Int(c.value.clamp(i64::MIN as f64, i64::MAX as f64) as i64)),
            GroupField::Users => ("g.users", Arg::Int(c.value.clamp(i64::MIN as f64, i64::MAX as f64) as i64)),
            GroupField::FirstSeen => ("g.first_seen", Arg::Real(c.value)),
            GroupField::LastSeen => ("g.last_seen", Arg::Real(c.value)),
        };
        wh.push_str(&format!(" AND {col} {} {}", c.cmp.sql(), bind(args, v)));
    }
    for c in &q.assigned {
        let cond = match &c.to {
            None => "(g.assigned_user IS NOT NULL OR g.assigned_team IS NOT NULL)".to_string(),
            Some(to) if to.is_empty() => "false".to_string(),
            Some(to) => {
                let ors: Vec<String> = to
                    .iter()
                    .map(|a| match a {
                        Assignee::User(u) => format!("g.assigned_user IS NOT DISTINCT FROM {}", bind(args, Arg::Int(u.0))),
                        Assignee::Team(t) => format!("g.assigned_team IS NOT DISTINCT FROM {}", bind(args, Arg::Int(t.0))),
                    })
                    .collect();
                format!("({})", ors.join(" OR "))
            }
        };
        let not = if c.negated { "NOT " } else { "" };
        wh.push_str(&format!(" AND {not}{cond}"));
    }
}

pub(super) async fn group_series_on(c: &tokio_postgres::Client, group_id: i64, since: f64, now: f64, points: usize) -> Result<Vec<u64>> {
    let res = Resolution::for_span(now - since);
    let (table, col) = group_table(res);
    let rows = c
        .query(
            &format!("SELECT {col}, count FROM {table} WHERE group_id = $1 AND {col} >= $2 AND {col} <= $3"),
            &[&group_id, &res.slot(since), &res.slot(now)],
        )
        .await?;
    let rows = rows.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1).max(0) as u64));
    Ok(crate::query::spread(rows, res, since, now, points))
}

pub(super) async fn interval_count_on(c: &tokio_postgres::Client, group_id: i64, since: Option<f64>, now: f64) -> Result<u64> {
    let n: f64 = match since {
        None => c.query_one("SELECT times_seen::float8 FROM groups WHERE id = $1", &[&group_id]).await?.get(0),
        Some(since) => {
            let mut args = vec![Arg::Int(group_id)];
            let sql = count_sql(&mut args, "$1", since, now);
            let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(Arg::as_sql).collect();
            c.query_one(&format!("SELECT {sql}"), &params).await?.get(0)
        }
    };
    Ok(n.max(0.0) as u64)
}
