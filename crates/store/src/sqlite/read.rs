//! The read side: a group with its duration statistics and tag values; events of a group,
//! paged; an event by id; activity and item counts.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::SqliteStore;
use super::stream::{environment_count_on, group_series_on, interval_count_on, stream_sql};
use crate::{
    histogram, Activity, Cursor, DurationStats, EventNav, EventRow, GroupId, GroupRow, HistogramBar, ProjectId,
    Resolution, Result, Sort, StreamPage, StreamQuery, StreamRow, TagCount, Trending,
};

pub(super) const GROUP_COLUMNS: &str = "g.id, g.project_id, g.hash, g.kind, g.title, g.culprit, g.level, g.logger, g.status,
    g.times_seen, g.first_seen, g.last_seen, g.ts_count, g.ts_sum, g.ts_min, g.ts_max, g.last_event_id, g.components";

/// A group row with its raw duration columns (count, sum, min, max).
pub(super) type RawGroup = (GroupRow, i64, f64, Option<f64>, Option<f64>);

pub(super) fn group_from(r: &Row<'_>) -> rusqlite::Result<RawGroup> {
    let row = GroupRow {
        id: GroupId(r.get(0)?),
        project_id: ProjectId(r.get(1)?),
        hash: r.get(2)?,
        kind: r.get(3)?,
        title: r.get(4)?,
        culprit: r.get(5)?,
        level: r.get(6)?,
        logger: r.get(7)?,
        status: crate::GroupStatus::of_code(r.get(8)?),
        count: r.get::<_, i64>(9)?.max(0) as u64,
        first_seen: r.get(10)?,
        last_seen: r.get(11)?,
        time_spent: None,
        last_event_id: r.get(16)?,
        components: r.get(17)?,
    };
    Ok((row, r.get(12)?, r.get(13)?, r.get(14)?, r.get(15)?))
}

/// A group's distinct users since `since` (a user seen in the interval is one whose `user`
/// tag row was last seen in it; all time: the group's count), and its assignee.
fn users_and_assignee(conn: &Connection, group_id: i64, since: Option<f64>) -> Result<(u64, Option<crate::Assignee>)> {
    let (all, assignee) = assignee_on(conn, group_id)?;
    let users = match since {
        None => all,
        Some(since) => {
            let n: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM group_tags WHERE group_id = ?1 AND key = 'user' AND last_seen >= ?2")?
                .query_row(params![group_id, since], |r| r.get(0))?;
            n.max(0) as u64
        }
    };
    Ok((users, assignee))
}

/// A group's all-time distinct users and its assignee.
pub(super) fn assignee_on(conn: &Connection, group_id: i64) -> Result<(u64, Option<crate::Assignee>)> {
    let row: Option<(i64, Option<i64>, Option<i64>)> = conn
        .prepare_cached("SELECT users, assigned_user, assigned_team FROM groups WHERE id = ?1")?
        .query_row([group_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((users, user, team)) = row else { return Err(crate::StoreError::NotFound(format!("group {group_id}"))) };
    let assignee = match (user, team) {
        (Some(u), _) => Some(crate::Assignee::User(crate::UserId(u))),
        (None, Some(t)) => Some(crate::Assignee::Team(crate::TeamId(t))),
        _ => None,
    };
    Ok((users.max(0) as u64, assignee))
}

pub(super) fn with_durations(conn: &Connection, raw: RawGroup) -> Result<GroupRow> {
    let (mut row, count, sum, min, max) = raw;
    if count > 0 {
        let mut st = conn.prepare_cached("SELECT bucket, count FROM group_durations WHERE group_id = ?1 ORDER BY bucket")?;
        let buckets = st
            .query_map([row.id.0], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        row.time_spent = Some(DurationStats::from_histogram(count, sum, min, max, &buckets));
    }
    Ok(row)
}

impl crate::Reads for SqliteStore {
    fn group(&self, id: GroupId) -> Result<Option<GroupRow>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.id = ?1"))?;
        let raw = st.query_row([id.0], group_from).optional()?;
        raw.map(|r| with_durations(&conn, r)).transpose()
    }

    fn group_assignee(&self, id: GroupId) -> Result<Option<crate::Assignee>> {
        let conn = self.conn()?;
        Ok(assignee_on(&conn, id.0)?.1)
    }

    /// The most frequent values per tag key of a group (at most `per_key` each), keys sorted.
    fn group_tags(&self, group_id: GroupId, per_key: usize) -> Result<Vec<(String, Vec<TagCount>)>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT key, value, count FROM group_tags WHERE group_id = ?1 ORDER BY key, count DESC, value",
        )?;
        let rows = st
            .query_map([group_id.0], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(crate::query::per_key(rows.into_iter(), per_key))
    }

    /// A group's events, newest first, from just before `before` (a row id).
    fn group_events(&self, group_id: GroupId, before: Option<i64>, limit: usize) -> Result<Vec<EventRow>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE group_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
        ))?;
        let rows = st
            .query_map(params![group_id.0, before.unwrap_or(i64::MAX), limit as i64], raw_event)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows.into_iter().map(|raw| self.finish_event(&conn, raw)).collect())
    }

    fn event_nav(&self, group_id: GroupId, position: i64) -> Result<EventNav> {
        let conn = self.conn()?;
        let one = |sql: &str| -> Result<Option<String>> {
            let mut st = conn.prepare_cached(&format!("SELECT event_id FROM events WHERE group_id = ?1 AND {sql} LIMIT 1"))?;
            let id: Option<Vec<u8>> = st.query_row(params![group_id.0, position], |r| r.get(0)).optional()?;
            Ok(id.map(hex::encode))
        };
        Ok(EventNav {
            oldest: one("id < ?2 ORDER BY id ASC")?,
            older: one("id < ?2 ORDER BY id DESC")?,
            newer: one("id > ?2 ORDER BY id ASC")?,
            newest: one("id > ?2 ORDER BY id DESC")?,
        })
    }

    /// One event of a project by its id (32 hex digits).
    fn event(&self, project_id: ProjectId, event_id: &protocol::EventId) -> Result<Option<EventRow>> {
        let conn = self.conn()?;
        let mut st =
            conn.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE project_id = ?1 AND event_id = ?2"))?;
        let raw = st.query_row(params![project_id.0, &event_id.0[..]], raw_event).optional()?;
        Ok(raw.map(|raw| self.finish_event(&conn, raw)))
    }

    /// How many events a project has stored.
    fn event_count(&self, project_id: ProjectId) -> Result<u64> {
        let conn = self.conn()?;
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM events WHERE project_id = ?1", [project_id.0], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// The life of a group, oldest first.
    fn activity(&self, group_id: GroupId) -> Result<Vec<Activity>> {
        let conn = self.conn()?;
        let mut st =
            conn.prepare_cached("SELECT group_id, kind, at, id, actor, data FROM group_activity WHERE group_id = ?1 ORDER BY id")?;
        let rows = st
            .query_map([group_id.0], |r| {
                Ok(Activity {
                    group_id: GroupId(r.get(0)?),
                    kind: r.get(1)?,
                    at: r.get(2)?,
                    id: r.get(3)?,
                    actor: r.get::<_, Option<i64>>(4)?.map(crate::UserId),
                    data: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Accepted non-event items per type, summed over all days.
    fn item_counts(&self, project_id: ProjectId) -> Result<Vec<(String, u64)>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT item_type, SUM(count) FROM item_counts WHERE project_id = ?1 GROUP BY item_type ORDER BY item_type",
        )?;
        let rows = st
            .query_map([project_id.0], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn group_count_since(&self, group_id: GroupId, from_minute: i64) -> Result<u64> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached("SELECT COALESCE(SUM(count), 0) FROM group_buckets WHERE group_id = ?1 AND minute >= ?2")?;
        let n: i64 = st.query_row(params![group_id.0, from_minute], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// One page of the project stream.
    fn stream(&self, q: &StreamQuery) -> Result<StreamPage> {
        let conn = self.conn()?;
        let (sql, args) = stream_sql(q);
        let mut st = conn.prepare_cached(&sql)?;
        let mut raws = st
            .query_map(params_from_iter(args), |r| Ok((group_from(r)?, r.get::<_, f64>(18)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let next = if raws.len() > q.limit {
            raws.truncate(q.limit);
            raws.last().map(|(raw, sv)| Cursor { value: *sv, id: raw.0.id.0 })
        } else {
            None
        };
        let spark_since = q.since.unwrap_or(q.now - 30.0 * 86400.0);
        let mut rows = Vec::with_capacity(raws.len());
        for (raw, sv) in raws {
            let group = with_durations(&conn, raw)?;
            let interval_count = match (q.sort, q.since) {
                (Sort::Frequency, _) => sv.max(0.0) as u64,
                (_, None) if q.counts_by_environment() => environment_count_on(&conn, group.id.0, &q.environments)?,
                (_, None) => group.count,
                (_, since) => interval_count_on(&conn, group.id.0, since, q.now)?,
            };
            let (users, assignee) = users_and_assignee(&conn, group.id.0, q.since)?;
            let sparkline = if q.sparkline_points > 0 {
                group_series_on(&conn, group.id.0, spark_since, q.now, q.sparkline_points)?
            } else {
                Vec::new()
            };
            rows.push(StreamRow { group, interval_count, users, assignee, sparkline });
        }
        Ok(StreamPage { rows, next })
    }

    /// A group's events in the interval (all time without one).
    fn group_interval_count(&self, group_id: GroupId, since: Option<f64>, now: f64) -> Result<u64> {
        let conn = self.conn()?;
        interval_count_on(&conn, group_id.0, since, now)
    }

    /// A group's events over [since, now] in `points` equal parts.
    fn group_series(&self, group_id: GroupId, since: f64, now: f64, points: usize) -> Result<Vec<u64>> {
        let conn = self.conn()?;
        group_series_on(&conn, group_id.0, since, now, points)
    }

    /// The events of some projects over [since, now] in `points` equal parts.
    fn project_series(&self, project_ids: &[ProjectId], since: f64, now: f64, points: usize) -> Result<Vec<u64>> {
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
                .query_map(params![p.0, res.slot(since), res.slot(now)], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.extend(part);
        }
        Ok(crate::query::spread(rows.into_iter(), res, since, now, points))
    }

    /// The most frequent values of a tag key in a project (the choices of a filter widget).
    fn project_tag_values(&self, project_id: ProjectId, key: &str, limit: usize) -> Result<Vec<TagCount>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT value, count FROM project_tags WHERE project_id = ?1 AND key = ?2 ORDER BY count DESC, value LIMIT ?3",
        )?;
        let rows = st
            .query_map(params![project_id.0, key, limit as i64], |r| {
                Ok(TagCount { value: r.get(0)?, count: r.get::<_, i64>(1)?.max(0) as u64 })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// A group's duration histogram, bar by bar (empty without durations).
    fn duration_histogram(&self, group_id: GroupId) -> Result<Vec<HistogramBar>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached("SELECT bucket, count FROM group_durations WHERE group_id = ?1 ORDER BY bucket")?;
        let rows = st
            .query_map([group_id.0], |r| {
                let (lower, upper) = histogram::bounds(r.get(0)?);
                Ok(HistogramBar { lower_ms: lower, upper_ms: upper, count: r.get::<_, i64>(1)?.max(0) as u64 })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Unresolved groups first seen since `since`, newest first, across projects.
    fn new_groups(&self, project_ids: &[ProjectId], since: f64, environments: &[String], limit: usize) -> Result<Vec<GroupRow>> {
        let conn = self.conn()?;
        let mut args = vec![Value::Integer(0), Value::Real(since), Value::Integer(limit as i64)];
        let env = seen_in_environments(&mut args, environments, "?2");
        let mut st = conn.prepare_cached(&format!(
            "SELECT {GROUP_COLUMNS} FROM groups g WHERE g.project_id = ?1 AND g.status = 0 AND g.first_seen >= ?2{env}
             ORDER BY g.first_seen DESC LIMIT ?3"
        ))?;
        let mut out = Vec::new();
        for p in project_ids {
            args[0] = Value::Integer(p.0);
            for raw in st.query_map(params_from_iter(args.iter()), group_from)? {
                out.push(with_durations(&conn, raw?)?);
            }
        }
        out.sort_by(|a, b| b.first_seen.total_cmp(&a.first_seen));
        out.truncate(limit);
        Ok(out)
    }

    /// Unresolved groups whose last 15 minutes ran hottest against their last 24 hours (the
    /// seed's "last 24 hours vs last 15 minutes"), across projects.
    fn trending(&self, project_ids: &[ProjectId], now: f64, environments: &[String], limit: usize) -> Result<Vec<Trending>> {
        let conn = self.conn()?;
        let recent_since = now - 900.0;
        let mut args = vec![Value::Integer(0), Value::Real(recent_since), Value::Integer(Resolution::Minute.slot(recent_since)), Value::Integer(Resolution::Hour.slot(now - 86400.0))];
        let env = seen_in_environments(&mut args, environments, "?2");
        let mut st = conn.prepare_cached(&format!(
            "SELECT {GROUP_COLUMNS},
                (SELECT COALESCE(SUM(b.count), 0) FROM group_buckets b WHERE b.group_id = g.id AND b.minute >= ?3),
                (SELECT COALESCE(SUM(h.count), 0) FROM group_hours h WHERE h.group_id = g.id AND h.hour >= ?4)
             FROM groups g WHERE g.project_id = ?1 AND g.status = 0 AND g.last_seen >= ?2{env}
             ORDER BY g.last_seen DESC LIMIT 500"
        ))?;
        let mut out = Vec::new();
        for p in project_ids {
            args[0] = Value::Integer(p.0);
            let rows = st
                .query_map(
                    params_from_iter(args.iter()),
                    |r| Ok((group_from(r)?, r.get::<_, i64>(18)?.max(0) as u64, r.get::<_, i64>(19)?.max(0) as u64)),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for (raw, recent, day) in rows {
                if recent == 0 {
                    continue;
                }
                let (last_24h, ratio) = crate::query::trending_ratio(recent, day);
                out.push(Trending { group: with_durations(&conn, raw)?, last_15m: recent, last_24h, ratio });
            }
        }
        out.sort_by(|a, b| b.ratio.total_cmp(&a.ratio).then(b.last_15m.cmp(&a.last_15m)));
        out.truncate(limit);
        Ok(out)
    }

}

/// ` AND` the group had events in one of `environments` since the time bound as `since`
/// (nothing when none are chosen).
fn seen_in_environments(args: &mut Vec<Value>, environments: &[String], since: &str) -> String {
    if environments.is_empty() {
        return String::new();
    }
    let values: Vec<String> = environments.iter().map(|e| super::stream::bind(args, Value::Text(e.clone()))).collect();
    format!(
        " AND g.id IN (SELECT t.group_id FROM group_tags t WHERE t.key = 'environment' AND t.value IN ({}) AND t.last_seen >= {since})",
        values.join(", ")
    )
}

/// The columns [`raw_event`] reads.
pub(super) const EVENT_COLUMNS: &str =
    "event_id, project_id, group_id, kind, timestamp, received, level, title, dict, time_spent, payload, id, tags_len";

/// An event row as read, before its payload is decompressed.
pub(super) struct RawEvent {
    row: EventRow,
    dict: Option<i64>,
    blob: Vec<u8>,
    tags_len: Option<i64>,
}

pub(super) fn raw_event(r: &Row<'_>) -> rusqlite::Result<RawEvent> {
    let id: Vec<u8> = r.get(0)?;
    Ok(RawEvent {
        row: EventRow {
            event_id: hex::encode(id),
            project_id: ProjectId(r.get(1)?),
            group_id: GroupId(r.get(2)?),
            position: r.get(11)?,
            kind: r.get(3)?,
            timestamp: r.get(4)?,
            received: r.get(5)?,
            level: r.get(6)?,
            title: r.get(7)?,
            tags: Vec::new(),
            time_spent: r.get(9)?,
            payload: Vec::new(),
        },
        dict: r.get(8)?,
        blob: r.get(10)?,
        tags_len: r.get(12)?,
    })
}

impl SqliteStore {
    /// Decompresses the stored blob: the event's tags (as written by ingest) and its payload.
    pub(super) fn finish_event(&self, conn: &Connection, raw: RawEvent) -> EventRow {
        let mut row = raw.row;
        let data = self.payloads.decompress(conn, raw.dict, &raw.blob);
        match raw.tags_len.and_then(|n| usize::try_from(n).ok()).filter(|n| *n <= data.len()) {
            Some(n) => {
                row.tags = serde_json::from_slice(&data[..n]).unwrap_or_default();
                row.payload = data[n..].to_vec();
            }
            None => {
                // Written before the tags were stored with the event (schema version 4 and
                // older): derive them from the payload, as ingest did then.
                row.payload = data;
                let limits = protocol::Limits { max_json_depth: 512, ..protocol::Limits::default() };
                if let Ok(event) = protocol::event::normalize_slice(&row.payload, &limits, row.received, None) {
                    row.tags = event.tags;
                }
            }
        }
        row
    }
}
