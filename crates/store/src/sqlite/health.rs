//! Release health in SQLite: session updates merged by session id, the SDKs' counts summed,
//! both written in the batch's transaction; read by one query (`crate::health::health_sql`).

use rusqlite::{Connection, params};

use super::SqliteStore;
use crate::{HealthDay, NewSession, NewSessionCounts, ProjectId, ReleaseHealth, Result};

/// Merges session updates: a session keeps its first start and user, its worst status, and
/// whether it ever saw an error.
pub(super) fn write(tx: &Connection, sessions: &[NewSession], counts: &[NewSessionCounts]) -> rusqlite::Result<()> {
    if !sessions.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT INTO release_sessions (project_id, sid, did, release, environment, started, received, status, errored)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (project_id, sid) DO UPDATE SET
                did = COALESCE(did, excluded.did), started = MIN(started, excluded.started),
                status = MAX(status, excluded.status), errored = MAX(errored, excluded.errored)",
        )?;
        let now = crate::now();
        for s in sessions {
            st.execute(params![s.project_id.0, s.sid, s.did, s.release, s.environment, s.started, now, s.status.code(), s.errored as i64])?;
        }
    }
    if !counts.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT INTO release_session_counts (project_id, release, environment, started, did, received, exited, errored, abnormal, crashed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (project_id, release, environment, started, did) DO UPDATE SET
                exited = exited + excluded.exited, errored = errored + excluded.errored,
                abnormal = abnormal + excluded.abnormal, crashed = crashed + excluded.crashed",
        )?;
        let now = crate::now();
        let n = |v: u64| v.min(i64::MAX as u64) as i64;
        for c in counts {
            st.execute(params![
                c.project_id.0,
                c.release,
                c.environment,
                c.started,
                c.did.as_deref().unwrap_or(""),
                now,
                n(c.exited),
                n(c.errored),
                n(c.abnormal),
                n(c.crashed)
            ])?;
        }
    }
    Ok(())
}

fn health(key: String, r: &rusqlite::Row<'_>) -> rusqlite::Result<ReleaseHealth> {
    let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
    Ok(ReleaseHealth { release: key, sessions: n(1)?, errored: n(2)?, abnormal: n(3)?, crashed: n(4)?, users: n(5)?, crashed_users: n(6)? })
}

impl crate::Health for SqliteStore {
    fn release_health(&self, project: ProjectId, since: f64) -> Result<Vec<ReleaseHealth>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&crate::health::health_sql("release", ""))?;
        let rows = st.query_map(params![project.0, since], |r| health(r.get(0)?, r))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn health_by_day(&self, project: ProjectId, release: Option<&str>, since: f64) -> Result<Vec<HealthDay>> {
        let conn = self.conn()?;
        let key = "CAST(started / 86400 AS INTEGER) * 86400";
        let rows = match release {
            Some(r) => {
                let mut st = conn.prepare_cached(&crate::health::health_sql(key, "AND release = $3"))?;
                st.query_map(params![project.0, since, r], |row| Ok(HealthDay { day: row.get::<_, i64>(0)? as f64, health: health(r.to_string(), row)? }))?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            }
            None => {
                let mut st = conn.prepare_cached(&crate::health::health_sql(key, ""))?;
                st.query_map(params![project.0, since], |row| Ok(HealthDay { day: row.get::<_, i64>(0)? as f64, health: health(String::new(), row)? }))?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            }
        };
        Ok(rows)
    }
}
