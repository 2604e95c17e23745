//! The read side: group lists by sort, status, interval and tags; a group's tag values and
//! duration statistics; events of a group.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::{histogram, SqliteStore};
use crate::{
    Activity, DurationStats, EventRow, GroupQuery, GroupRow, GroupStatus, Result, Sort, StatusFilter, TagCount,
};

pub(super) const GROUP_COLUMNS: &str = "g.id, g.project_id, g.hash, g.kind, g.title, g.culprit, g.level, g.logger, g.status,
    g.times_seen, g.first_seen, g.last_seen, g.ts_count, g.ts_sum, g.ts_min, g.ts_max, g.last_event_id, g.components";

/// A group row with its raw duration columns (count, sum, min, max).
pub(super) type RawGroup = (GroupRow, i64, f64, Option<f64>, Option<f64>);

pub(super) fn group_from(r: &Row<'_>) -> rusqlite::Result<RawGroup> {
    let row = GroupRow {
        id: r.get(0)?,
        project_id: r.get(1)?,
        hash: r.get(2)?,
        kind: r.get(3)?,
        title: r.get(4)?,
        culprit: r.get(5)?,
        level: r.get(6)?,
        logger: r.get(7)?,
        status: GroupStatus::from_i64(r.get(8)?),
        count: r.get::<_, i64>(9)?.max(0) as u64,
        first_seen: r.get(10)?,
        last_seen: r.get(11)?,
        time_spent: None,
        last_event_id: r.get(16)?,
        components: r.get(17)?,
    };
    Ok((row, r.get(12)?, r.get(13)?, r.get(14)?, r.get(15)?))
}

pub(super) fn with_durations(conn: &Connection, raw: RawGroup) -> Result<GroupRow> {
    let (mut row, count, sum, min, max) = raw;
    if count > 0 {
        let mut st = conn.prepare_cached("SELECT bucket, count FROM group_durations WHERE group_id = ?1 ORDER BY bucket")?;
        let buckets = st
            .query_map([row.id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let (min, max) = (min.unwrap_or(0.0), max.unwrap_or(0.0));
        row.time_spent = Some(DurationStats {
            count: count as u64,
            avg_ms: sum / count as f64,
            p95_ms: histogram::quantile(&buckets, 0.95, min, max),
            max_ms: max,
            min_ms: min,
            sum_ms: sum,
        });
    }
    Ok(row)
}

impl SqliteStore {
    /// One page of groups of a project.
    pub fn groups(&self, q: &GroupQuery) -> Result<Vec<GroupRow>> {
        let conn = self.conn()?;
        let mut sql = format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.project_id = ?");
        let mut args: Vec<Value> = vec![Value::Integer(q.project_id)];
        if let StatusFilter::Only(s) = q.status {
            sql.push_str(" AND g.status = ?");
            args.push(Value::Integer(s.as_i64()));
        }
        if let Some(since) = q.since {
            sql.push_str(" AND g.last_seen >= ?");
            args.push(Value::Real(since));
        }
        for (k, v) in &q.tags {
            sql.push_str(" AND EXISTS (SELECT 1 FROM group_tags t WHERE t.group_id = g.id AND t.key = ? AND t.value = ?)");
            args.push(Value::Text(k.clone()));
            args.push(Value::Text(v.clone()));
        }
        let order = match q.sort {
            Sort::Priority => "g.priority DESC".to_string(),
            Sort::LastSeen => "g.last_seen DESC".to_string(),
            Sort::FirstSeen => "g.first_seen DESC".to_string(),
            Sort::Frequency => match q.since {
                Some(since) => {
                    args.push(Value::Integer((since / 60.0).floor() as i64));
                    "(SELECT COALESCE(SUM(b.count), 0) FROM group_buckets b WHERE b.group_id = g.id AND b.minute >= ?) DESC"
                        .to_string()
                }
                None => "g.times_seen DESC".to_string(),
            },
            Sort::TimeSpent => "CASE WHEN g.ts_count > 0 THEN g.ts_sum / g.ts_count END DESC NULLS LAST".to_string(),
            Sort::TimeSpentTotal => "g.ts_sum DESC".to_string(),
        };
        sql.push_str(&format!(" ORDER BY {order}, g.id DESC LIMIT ? OFFSET ?"));
        args.push(Value::Integer(q.limit as i64));
        args.push(Value::Integer(q.offset as i64));
        let mut st = conn.prepare(&sql)?;
        let raws = st.query_map(params_from_iter(args), group_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(|raw| with_durations(&conn, raw)).collect()
    }

    pub fn group(&self, id: i64) -> Result<Option<GroupRow>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.id = ?1"))?;
        let raw = st.query_row([id], group_from).optional()?;
        raw.map(|r| with_durations(&conn, r)).transpose()
    }

    /// The most frequent values per tag key of a group (at most `per_key` each), keys sorted.
    pub fn group_tags(&self, group_id: i64, per_key: usize) -> Result<Vec<(String, Vec<TagCount>)>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT key, value, count FROM group_tags WHERE group_id = ?1 ORDER BY key, count DESC, value",
        )?;
        let mut out: Vec<(String, Vec<TagCount>)> = Vec::new();
        let rows = st.query_map([group_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
        for row in rows {
            let (k, v, n) = row?;
            if out.last().map(|(lk, _)| lk != &k).unwrap_or(true) {
                out.push((k, Vec::new()));
            }
            if let Some((_, vals)) = out.last_mut().filter(|(_, vals)| vals.len() < per_key) {
                vals.push(TagCount { value: v, count: n.max(0) as u64 });
            }
        }
        Ok(out)
    }

    /// The newest events of a group first.
    pub fn events(&self, group_id: i64, limit: usize) -> Result<Vec<EventRow>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT event_id, project_id, group_id, kind, timestamp, received, level, title, dict, time_spent, payload
             FROM events WHERE group_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![group_id, limit as i64], raw_event)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows.into_iter().map(|raw| self.finish_event(&conn, raw)).collect())
    }

    /// One event of a project by its id (32 hex digits).
    pub fn event(&self, project_id: i64, event_id: &protocol::EventId) -> Result<Option<EventRow>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT event_id, project_id, group_id, kind, timestamp, received, level, title, dict, time_spent, payload
             FROM events WHERE project_id = ?1 AND event_id = ?2",
        )?;
        let raw = st.query_row(params![project_id, &event_id.0[..]], raw_event).optional()?;
        Ok(raw.map(|raw| self.finish_event(&conn, raw)))
    }

    /// How many events a project has stored.
    pub fn event_count(&self, project_id: i64) -> Result<u64> {
        let conn = self.conn()?;
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM events WHERE project_id = ?1", [project_id], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// The life of a group, oldest first.
    pub fn activity(&self, group_id: i64) -> Result<Vec<Activity>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached("SELECT group_id, kind, at FROM group_activity WHERE group_id = ?1 ORDER BY id")?;
        let rows = st
            .query_map([group_id], |r| Ok(Activity { group_id: r.get(0)?, kind: r.get(1)?, at: r.get(2)? }))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Accepted non-event items per type, summed over all days.
    pub fn item_counts(&self, project_id: i64) -> Result<Vec<(String, u64)>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT item_type, SUM(count) FROM item_counts WHERE project_id = ?1 GROUP BY item_type ORDER BY item_type",
        )?;
        let rows = st
            .query_map([project_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

/// An event row as read, before its payload is decompressed.
pub(super) struct RawEvent {
    row: EventRow,
    dict: Option<i64>,
    blob: Vec<u8>,
}

pub(super) fn raw_event(r: &Row<'_>) -> rusqlite::Result<RawEvent> {
    let id: Vec<u8> = r.get(0)?;
    Ok(RawEvent {
        row: EventRow {
            event_id: id.iter().map(|b| format!("{b:02x}")).collect(),
            project_id: r.get(1)?,
            group_id: r.get(2)?,
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
    })
}

impl SqliteStore {
    /// Decompresses the payload and derives the tags from it again, exactly as ingest did.
    pub(super) fn finish_event(&self, conn: &Connection, raw: RawEvent) -> EventRow {
        let mut row = raw.row;
        row.payload = self.payloads.decompress(conn, raw.dict, &raw.blob);
        let limits = protocol::Limits { max_json_depth: 512, ..protocol::Limits::default() };
        if let Ok(event) = protocol::event::normalize_slice(&row.payload, &limits, row.received, None) {
            row.tags = event.tags;
        }
        row
    }
}
