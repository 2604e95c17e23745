//! Retention: deleting what is older than the configured number of days — events and user
//! feedback, then groups not seen since, with their tag counts, buckets, histograms and activity. Deletes in small
//! transactions so that ingest never waits long for the write lock. Also the schema version
//! and the spools' applied marks.

use rusqlite::params;

use super::SqliteStore;
use crate::{Cleaned, Result};

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

    /// Deletes events received before `cutoff` (unix seconds), and groups last seen before it.
    /// Group counts stay lifetime totals: they are what the issue was, not what is kept.
    pub(super) fn cleanup_impl(&self, cutoff: f64) -> Result<Cleaned> {
        let mut cleaned = Cleaned::default();
        let mut conn = self.conn()?;
        loop {
            let n = conn.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received < ?1 LIMIT ?2)",
                params![cutoff, CHUNK],
            )?;
            cleaned.events += n as u64;
            if (n as i64) < CHUNK {
                break;
            }
        }
        loop {
            let n = conn.execute(
                "DELETE FROM feedback WHERE id IN (SELECT id FROM feedback WHERE received < ?1 LIMIT ?2)",
                params![cutoff, CHUNK],
            )?;
            if (n as i64) < CHUNK {
                break;
            }
        }
        let minute = (cutoff / 60.0).floor() as i64;
        loop {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let ids: Vec<i64> = {
                let mut st = tx.prepare("SELECT id FROM groups WHERE last_seen < ?1 LIMIT ?2")?;
                st.query_map(params![cutoff, CHUNK], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
            };
            for id in &ids {
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
            tx.execute("DELETE FROM group_buckets WHERE minute < ?1", [minute])?;
            tx.execute("DELETE FROM project_minutes WHERE minute < ?1", [minute])?;
            tx.commit()?;
            if (ids.len() as i64) < CHUNK {
                break;
            }
        }
        Ok(cleaned)
    }
}
