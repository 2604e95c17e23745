//! The dashboard's queries: the project stream (every sort × tag filters × interval × status,
//! with keyset cursors that stay stable while events arrive), counts in an interval from the
//! minute / hour / day buckets, sparklines and event-rate series, the top tag values of a
//! project (the filter widgets' choices), duration histograms, paged events, new and trending
//! groups.
//!
//! Counts in an interval are read from the coarsest buckets that still give about 24 points
//! over it (minutes up to 3 hours, hours up to 3 days, days beyond), so an interval's first
//! bucket may include up to one bucket of events from just before it.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection};

use super::read::{group_from, raw_event, with_durations, GROUP_COLUMNS};
use super::SqliteStore;
use crate::{EventRow, GroupRow, GroupStatus, Result, Sort, StatusFilter, TagCount};

/// Time resolution of a bucket table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    /// The coarsest resolution that still gives about 24 buckets over `span` seconds.
    pub fn for_span(span: f64) -> Resolution {
        if span <= 3.0 * 3600.0 {
            Resolution::Minute
        } else if span <= 3.0 * 86400.0 {
            Resolution::Hour
        } else {
            Resolution::Day
        }
    }

    pub fn seconds(self) -> f64 {
        match self {
            Resolution::Minute => 60.0,
            Resolution::Hour => 3600.0,
            Resolution::Day => 86400.0,
        }
    }

    fn slot(self, t: f64) -> i64 {
        (t / self.seconds()).floor() as i64
    }

    /// The per-group table and its slot column.
    fn group_table(self) -> (&'static str, &'static str) {
        match self {
            Resolution::Minute => ("group_buckets", "minute"),
            Resolution::Hour => ("group_hours", "hour"),
            Resolution::Day => ("group_days", "day"),
        }
    }
}

/// Where the next page starts: the sort value and id of the last row shown.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cursor {
    pub value: f64,
    pub id: i64,
}

impl Cursor {
    /// `VALUE:ID`, for URLs.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.value, self.id)
    }

    pub fn parse(s: &str) -> Option<Cursor> {
        let (v, id) = s.split_once(':')?;
        let value: f64 = v.parse().ok()?;
        value.is_finite().then_some(())?;
        Some(Cursor { value, id: id.parse().ok()? })
    }
}

/// A page request of the project stream.
#[derive(Clone, Debug)]
pub struct StreamQuery {
    pub project_id: i64,
    pub sort: Sort,
    pub status: StatusFilter,
    /// Only groups seen at or after this time (unix seconds); `None` is all time.
    pub since: Option<f64>,
    /// The end of the interval (normally now).
    pub now: f64,
    /// Every (key, value) must be a tag value seen in the group.
    pub tags: Vec<(String, String)>,
    /// Words that must appear in the title or culprit (case-insensitive for ASCII).
    pub text: Vec<String>,
    pub cursor: Option<Cursor>,
    pub limit: usize,
    /// Points in each row's sparkline (0 for none).
    pub sparkline_points: usize,
}

impl StreamQuery {
    pub fn new(project_id: i64, now: f64) -> StreamQuery {
        StreamQuery {
            project_id,
            sort: Sort::Priority,
            status: StatusFilter::Only(GroupStatus::Unresolved),
            since: None,
            now,
            tags: Vec::new(),
            text: Vec::new(),
            cursor: None,
            limit: 25,
            sparkline_points: 24,
        }
    }
}

/// One row of the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamRow {
    pub group: GroupRow,
    /// Events in the interval (all time without one).
    pub interval_count: u64,
    /// Distinct values of the `user` tag.
    pub users: u64,
    pub sparkline: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StreamPage {
    pub rows: Vec<StreamRow>,
    /// The cursor of the next page, when there is one.
    pub next: Option<Cursor>,
}

/// One bar of a duration histogram: `[lower_ms, upper_ms)` and how many durations fell in it.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramBar {
    pub lower_ms: f64,
    pub upper_ms: f64,
    pub count: u64,
}

/// A trending group: events in the last 15 minutes against its last 24 hours.
#[derive(Clone, Debug, PartialEq)]
pub struct Trending {
    pub group: GroupRow,
    pub last_15m: u64,
    pub last_24h: u64,
    /// How many times its 24-hour average rate the last 15 minutes ran at.
    pub ratio: f64,
}

fn bind(args: &mut Vec<Value>, v: Value) -> String {
    args.push(v);
    format!("?{}", args.len())
}

/// The SQL of an interval count for group `g`: events since `since` from the right buckets.
fn count_sql(args: &mut Vec<Value>, since: f64, now: f64) -> String {
    let res = Resolution::for_span(now - since);
    let (table, col) = res.group_table();
    let p = bind(args, Value::Integer(res.slot(since)));
    format!("(SELECT COALESCE(SUM(b.count), 0) FROM {table} b WHERE b.group_id = g.id AND b.{col} >= {p})")
}

/// The SQL and arguments of one stream page (one row more than the limit, to know whether
/// there is a next page).
pub(super) fn stream_sql(q: &StreamQuery) -> (String, Vec<Value>) {
    let mut args = Vec::new();
    let mut wh = format!("g.project_id = {}", bind(&mut args, Value::Integer(q.project_id)));
    if let StatusFilter::Only(s) = q.status {
        wh.push_str(&format!(" AND g.status = {}", bind(&mut args, Value::Integer(s.as_i64()))));
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
    let sv = match q.sort {
        Sort::Priority => "g.priority".to_string(),
        Sort::LastSeen => "g.last_seen".to_string(),
        Sort::FirstSeen => "g.first_seen".to_string(),
        Sort::Frequency => match q.since {
            Some(since) => count_sql(&mut args, since, q.now),
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

/// Spreads `(slot, count)` rows of resolution `res` over `points` equal parts of [since, now].
fn spread(rows: impl Iterator<Item = (i64, u64)>, res: Resolution, since: f64, now: f64, points: usize) -> Vec<u64> {
    let mut out = vec![0u64; points];
    let span = (now - since).max(1.0);
    for (slot, n) in rows {
        let t = (slot as f64 + 0.5) * res.seconds();
        let i = (((t - since) / span) * points as f64).floor();
        let i = (i.max(0.0) as usize).min(points.saturating_sub(1));
        if let Some(o) = out.get_mut(i) {
            *o += n;
        }
    }
    out
}

fn group_series_on(conn: &Connection, group_id: i64, since: f64, now: f64, points: usize) -> Result<Vec<u64>> {
    let res = Resolution::for_span(now - since);
    let (table, col) = res.group_table();
    let mut st = conn.prepare_cached(&format!(
        "SELECT {col}, count FROM {table} WHERE group_id = ?1 AND {col} >= ?2 AND {col} <= ?3"
    ))?;
    let rows = st
        .query_map(params![group_id, res.slot(since), res.slot(now)], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(spread(rows.into_iter(), res, since, now, points))
}

fn interval_count_on(conn: &Connection, group_id: i64, since: Option<f64>, now: f64) -> Result<u64> {
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
    /// One page of the project stream.
    pub fn stream(&self, q: &StreamQuery) -> Result<StreamPage> {
        let conn = self.conn()?;
        let (sql, args) = stream_sql(q);
        let mut st = conn.prepare_cached(&sql)?;
        let mut raws = st
            .query_map(params_from_iter(args), |r| Ok((group_from(r)?, r.get::<_, f64>(18)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let next = if raws.len() > q.limit {
            raws.truncate(q.limit);
            raws.last().map(|(raw, sv)| Cursor { value: *sv, id: raw.0.id })
        } else {
            None
        };
        let spark_since = q.since.unwrap_or(q.now - 30.0 * 86400.0);
        let mut rows = Vec::with_capacity(raws.len());
        for (raw, sv) in raws {
            let group = with_durations(&conn, raw)?;
            let interval_count = match (q.sort, q.since) {
                (Sort::Frequency, _) => sv.max(0.0) as u64,
                (_, None) => group.count,
                (_, since) => interval_count_on(&conn, group.id, since, q.now)?,
            };
            let users: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM group_tags WHERE group_id = ?1 AND key = 'user'")?
                .query_row([group.id], |r| r.get(0))?;
            let sparkline = if q.sparkline_points > 0 {
                group_series_on(&conn, group.id, spark_since, q.now, q.sparkline_points)?
            } else {
                Vec::new()
            };
            rows.push(StreamRow { group, interval_count, users: users.max(0) as u64, sparkline });
        }
        Ok(StreamPage { rows, next })
    }

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

    /// A group's events in the interval (all time without one).
    pub fn group_interval_count(&self, group_id: i64, since: Option<f64>, now: f64) -> Result<u64> {
        let conn = self.conn()?;
        interval_count_on(&conn, group_id, since, now)
    }

    /// A group's events over [since, now] in `points` equal parts.
    pub fn group_series(&self, group_id: i64, since: f64, now: f64, points: usize) -> Result<Vec<u64>> {
        let conn = self.conn()?;
        group_series_on(&conn, group_id, since, now, points)
    }

    /// The events of some projects over [since, now] in `points` equal parts.
    pub fn project_series(&self, project_ids: &[i64], since: f64, now: f64, points: usize) -> Result<Vec<u64>> {
        let conn = self.conn()?;
        let res = if now - since <= 3.0 * 3600.0 { Resolution::Minute } else { Resolution::Hour };
        let (table, col) = match res {
            Resolution::Minute => ("project_minutes", "minute"),
            _ => ("project_hours", "hour"),
        };
        let mut st = conn.prepare_cached(&format!(
            "SELECT {col}, count FROM {table} WHERE project_id = ?1 AND {col} >= ?2 AND {col} <= ?3"
        ))?;
        let mut rows = Vec::new();
        for p in project_ids {
            let part = st
                .query_map(params![p, res.slot(since), res.slot(now)], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.extend(part);
        }
        Ok(spread(rows.into_iter(), res, since, now, points))
    }

    /// The most frequent values of a tag key in a project (the choices of a filter widget).
    pub fn project_tag_values(&self, project_id: i64, key: &str, limit: usize) -> Result<Vec<TagCount>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT value, count FROM project_tags WHERE project_id = ?1 AND key = ?2 ORDER BY count DESC, value LIMIT ?3",
        )?;
        let rows = st
            .query_map(params![project_id, key, limit as i64], |r| {
                Ok(TagCount { value: r.get(0)?, count: r.get::<_, i64>(1)?.max(0) as u64 })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// A group's duration histogram, bar by bar (empty without durations).
    pub fn duration_histogram(&self, group_id: i64) -> Result<Vec<HistogramBar>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached("SELECT bucket, count FROM group_durations WHERE group_id = ?1 ORDER BY bucket")?;
        let rows = st
            .query_map([group_id], |r| {
                let (lower, upper) = super::histogram::bounds(r.get(0)?);
                Ok(HistogramBar { lower_ms: lower, upper_ms: upper, count: r.get::<_, i64>(1)?.max(0) as u64 })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// A page of a group's events, newest first, each with its row id (the cursor: pass the
    /// last one as `before` for the next page).
    pub fn group_events_page(&self, group_id: i64, before: Option<i64>, limit: usize) -> Result<Vec<(i64, EventRow)>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT event_id, project_id, group_id, kind, timestamp, received, level, title, dict, time_spent, payload, id
             FROM events WHERE group_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = st
            .query_map(params![group_id, before.unwrap_or(i64::MAX), limit as i64], |r| Ok((r.get::<_, i64>(11)?, raw_event(r)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows.into_iter().map(|(id, raw)| (id, self.finish_event(&conn, raw))).collect())
    }

    /// Unresolved groups first seen since `since`, newest first, across projects.
    pub fn new_groups(&self, project_ids: &[i64], since: f64, limit: usize) -> Result<Vec<GroupRow>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {GROUP_COLUMNS} FROM groups g WHERE g.project_id = ?1 AND g.status = 0 AND g.first_seen >= ?2
             ORDER BY g.first_seen DESC LIMIT ?3"
        ))?;
        let mut out = Vec::new();
        for p in project_ids {
            for raw in st.query_map(params![p, since, limit as i64], group_from)? {
                out.push(with_durations(&conn, raw?)?);
            }
        }
        out.sort_by(|a, b| b.first_seen.total_cmp(&a.first_seen));
        out.truncate(limit);
        Ok(out)
    }

    /// Unresolved groups whose last 15 minutes ran hottest against their last 24 hours (the
    /// seed's "last 24 hours vs last 15 minutes"), across projects.
    pub fn trending(&self, project_ids: &[i64], now: f64, limit: usize) -> Result<Vec<Trending>> {
        let conn = self.conn()?;
        let recent_since = now - 900.0;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {GROUP_COLUMNS},
                (SELECT COALESCE(SUM(b.count), 0) FROM group_buckets b WHERE b.group_id = g.id AND b.minute >= ?3),
                (SELECT COALESCE(SUM(h.count), 0) FROM group_hours h WHERE h.group_id = g.id AND h.hour >= ?4)
             FROM groups g WHERE g.project_id = ?1 AND g.status = 0 AND g.last_seen >= ?2
             ORDER BY g.last_seen DESC LIMIT 500"
        ))?;
        let mut out = Vec::new();
        for p in project_ids {
            let rows = st
                .query_map(
                    params![p, recent_since, Resolution::Minute.slot(recent_since), Resolution::Hour.slot(now - 86400.0)],
                    |r| Ok((group_from(r)?, r.get::<_, i64>(18)?.max(0) as u64, r.get::<_, i64>(19)?.max(0) as u64)),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for (raw, recent, day) in rows {
                if recent == 0 {
                    continue;
                }
                // Rate per minute in the last 15 minutes over the 24-hour average rate.
                let ratio = (recent as f64 / 15.0) / (day.max(recent) as f64 / 1440.0);
                out.push(Trending { group: with_durations(&conn, raw)?, last_15m: recent, last_24h: day.max(recent), ratio });
            }
        }
        out.sort_by(|a, b| b.ratio.total_cmp(&a.ratio).then(b.last_15m.cmp(&a.last_15m)));
        out.truncate(limit);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = Cursor { value: 1_700_000_000.123_456_7, id: 42 };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        assert_eq!(Cursor::parse("x:1"), None);
        assert_eq!(Cursor::parse("inf:1"), None);
    }

    #[test]
    fn spread_puts_buckets_in_their_part() {
        let now = 86400.0 * 10.0;
        let since = now - 3600.0;
        let rows = vec![(Resolution::Minute.slot(since), 2), (Resolution::Minute.slot(now - 1.0), 5)];
        let s = spread(rows.into_iter(), Resolution::Minute, since, now, 12);
        assert_eq!(s.len(), 12);
        assert_eq!((s[0], s[11], s.iter().sum::<u64>()), (2, 5, 7));
    }
}
