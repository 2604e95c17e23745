//! Retention: deleting what is older than the configured number of days (per project where a
//! project has its own) — events, user feedback and cron monitors' runs, then groups not seen since, with their tag counts, buckets, histograms and activity. Deletes in small
//! transactions so that ingest never waits long for the write lock. Also the schema version
//! and the spools' applied marks.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection};

use super::SqliteStore;
use crate::{Cleaned, ProjectId, ProjectUsage, Result, Retention, StorageUsage, Trimmed};

/// Rows deleted per transaction.
const CHUNK: i64 = 2000;

impl SqliteStore {
    /// The schema version the file is at, and the newest this build knows.
    pub(super) fn schema_version_impl(&self) -> Result<(i64, i64)> {
        let conn = self.conn()?;
        Ok((super::migrate::current_version(&conn)?, super::migrate::latest_version()))
    }

    /// How far a spool is applied (written by the writer with the events, `spool_marks`).
    pub(super) fn spool_mark_impl(&self, spool: &str) -> Result<Option<u64>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached("SELECT position FROM spool_marks WHERE spool = ?1")?;
        let mut rows = st.query(params![spool])?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get::<_, i64>(0)? as u64),
            None => None,
        })
    }

    /// Deletes what is past `retention` (see [`crate::Maintenance::cleanup`]).
    pub(super) fn cleanup_impl(&self, retention: &Retention, progress: &mut dyn FnMut(u64)) -> Result<Cleaned> {
        let mut cleaned = Cleaned::default();
        if retention.keeps_everything() {
            return Ok(cleaned);
        }
        let mut conn = self.conn()?;
        let (cut_events, mut values) = cutoff_of_row(retention);
        let chunk = values.len() + 1;
        values.push(Value::Integer(CHUNK));
        for table in ["events", "feedback", "release_sessions", "release_session_counts"] {
            let sql = format!("DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE received < {cut_events} LIMIT ?{chunk})");
            loop {
                let n = conn.execute(&sql, params_from_iter(values.iter()))?;
                if table == "events" {
                    cleaned.events += n as u64;
                    progress(cleaned.events);
                }
                if (n as i64) < CHUNK {
                    break;
                }
            }
        }
        // Cron monitors' runs that ended before the cutoff (an open run stays until it ends).
        let runs_sql = format!(
            "DELETE FROM monitor_runs WHERE id IN (SELECT id FROM monitor_runs WHERE started < {cut_events} AND status <> 'in_progress' LIMIT ?{chunk})"
        );
        while (conn.execute(&runs_sql, params_from_iter(values.iter()))? as i64) >= CHUNK {}
        // Minute buckets matter for the last hours only: those before every project's cutoff go.
        let minute = retention.common_cutoff().map(|c| (c / 60.0).floor() as i64);
        let groups_sql = format!("SELECT id, {cut_events} FROM groups WHERE last_seen < {cut_events} LIMIT ?{chunk}");
        loop {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let ids: Vec<(i64, f64)> = {
                let mut st = tx.prepare(&groups_sql)?;
                st.query_map(params_from_iter(values.iter()), |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?
            };
            for (id, cutoff) in &ids {
                for table in ["group_tags", "group_buckets", "group_hours", "group_days", "group_durations", "group_activity"] {
                    tx.execute(&format!("DELETE FROM {table} WHERE group_id = ?1"), [id])?;
                }
                // Events of the group received after the cutoff keep it alive (old timestamps).
                let kept: bool = tx.query_row("SELECT EXISTS(SELECT 1 FROM events WHERE group_id = ?1)", [id], |r| r.get(0))?;
                if kept {
                    tx.execute("UPDATE groups SET last_seen = ?2 WHERE id = ?1", params![id, cutoff])?;
                } else {
                    tx.execute("UPDATE feedback SET group_id = NULL WHERE group_id = ?1", [id])?;
                    tx.execute("DELETE FROM groups WHERE id = ?1", [id])?;
                    cleaned.groups += 1;
                }
            }
            if let Some(minute) = minute {
                tx.execute("DELETE FROM group_buckets WHERE minute < ?1", [minute])?;
                tx.execute("DELETE FROM project_minutes WHERE minute < ?1", [minute])?;
            }
            tx.commit()?;
            if (ids.len() as i64) < CHUNK {
                break;
            }
        }
        Ok(cleaned)
    }

    pub(super) fn expired_events_impl(&self, retention: &Retention) -> Result<u64> {
        if retention.keeps_everything() {
            return Ok(0);
        }
        let conn = self.conn()?;
        let (cut, values) = cutoff_of_row(retention);
        let n: i64 =
            conn.query_row(&format!("SELECT COUNT(*) FROM events WHERE received < {cut}"), params_from_iter(values.iter()), |r| r.get(0))?;
        Ok(n as u64)
    }

    pub(super) fn storage_usage_impl(&self) -> Result<StorageUsage> {
        let conn = self.conn()?;
        let total_bytes = used_bytes(&conn)?;
        let mut st = conn.prepare(
            "SELECT project_id, COUNT(*), SUM(length(payload)), MIN(received) FROM events
             GROUP BY project_id ORDER BY SUM(length(payload)) DESC",
        )?;
        let projects = st
            .query_map([], |r| {
                Ok(ProjectUsage {
                    project_id: ProjectId(r.get(0)?),
                    events: r.get::<_, i64>(1)? as u64,
                    payload_bytes: r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
                    oldest: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(StorageUsage { total_bytes, projects })
    }

    pub(super) fn trim_to_impl(&self, max_bytes: u64) -> Result<Trimmed> {
        let conn = self.conn()?;
        trim(&conn, max_bytes)
    }
}

/// Bytes of the file's pages that hold data (free pages, which new rows reuse, not counted).
pub(super) fn used_bytes(conn: &Connection) -> Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// Events deleted per step of a trim: small, since the writer may be the one trimming.
const TRIM_CHUNK: i64 = 100;

/// Deletes the oldest events while the file's data is over `max_bytes`. Deleting the oldest
/// rows frees whole pages of the table (rows are in arrival order), which later writes reuse,
/// so the file stops growing.
pub(super) fn trim(conn: &Connection, max_bytes: u64) -> Result<Trimmed> {
    let before = used_bytes(conn)?;
    let mut trimmed = Trimmed { events: 0, bytes_before: before, bytes_after: before };
    if max_bytes == 0 {
        return Ok(trimmed);
    }
    while trimmed.bytes_after > max_bytes {
        let n = conn.execute(
            "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?1)",
            [TRIM_CHUNK],
        )?;
        trimmed.events += n as u64;
        trimmed.bytes_after = used_bytes(conn)?;
        if n == 0 {
            break;
        }
    }
    if trimmed.events > 0 {
        if trimmed.bytes_after > max_bytes {
            tracing::warn!(
                used = trimmed.bytes_after, max_bytes, "the store is over its size cap with no events left to delete (issues, \
                 counts and uploaded files take the rest): raise store.max_bytes"
            );
        } else {
            tracing::info!(events = trimmed.events, used = trimmed.bytes_after, max_bytes, "deleted the oldest events to stay under store.max_bytes");
        }
    }
    Ok(trimmed)
}

/// An SQL expression for the cutoff of a row's `project_id`, and its parameters.
fn cutoff_of_row(retention: &Retention) -> (String, Vec<Value>) {
    let (projects, other) = retention.as_numbers();
    let mut values = Vec::new();
    if projects.is_empty() {
        return ("?1".into(), vec![Value::Real(other)]);
    }
    let mut sql = String::from("(CASE project_id");
    for (p, c) in projects {
        values.push(Value::Integer(p));
        values.push(Value::Real(c));
        sql.push_str(&format!(" WHEN ?{} THEN ?{}", values.len() - 1, values.len()));
    }
    values.push(Value::Real(other));
    sql.push_str(&format!(" ELSE ?{} END)", values.len()));
    (sql, values)
}
