//! Cron monitors in SQLite: check-ins written by the writer in the batch's transaction (the
//! monitor made or reconfigured, the run opened or closed), and what the scheduler asks —
//! overdue monitors and runs marked with conditional updates, failures not yet reported.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::{CheckInStatus, MonitorConfig, MonitorFailure, MonitorFailureKind, MonitorRow, MonitorRunRow, NewCheckIn, ProjectId, Result, Schedule};

/// Stores check-ins: the monitor is created by a check-in that brings a configuration (and
/// reconfigured by each later one); a check-in of a monitor that does not exist and brings none
/// has nothing to attach to and is left out. Replaying a check-in changes nothing.
pub(super) fn write(tx: &Connection, check_ins: &[NewCheckIn]) -> rusqlite::Result<()> {
    for c in check_ins {
        let found = tx
            .query_row(
                &format!("SELECT {MONITOR_COLUMNS} FROM monitors WHERE project_id = ?1 AND slug = ?2"),
                params![c.project_id.0, c.monitor_slug],
                monitor_row,
            )
            .optional()?;
        let (id, config, last) = match (found, &c.config) {
            (Some(m), Some(config)) => {
                tx.execute(
                    "UPDATE monitors SET schedule_type = ?2, schedule = ?3, timezone = ?4, margin_minutes = ?5, max_runtime_minutes = ?6 WHERE id = ?1",
                    params![m.id, config.schedule.kind(), config.schedule.value(), config.timezone, config.margin_minutes, config.max_runtime_minutes],
                )?;
                (m.id, config.clone(), m.last_check_in)
            }
            (Some(m), None) => (m.id, m.config, m.last_check_in),
            (None, Some(config)) => {
                let id = tx.query_row(
                    "INSERT INTO monitors (project_id, slug, schedule_type, schedule, timezone, margin_minutes, max_runtime_minutes, status, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8) RETURNING id",
                    params![
                        c.project_id.0,
                        c.monitor_slug,
                        config.schedule.kind(),
                        config.schedule.value(),
                        config.timezone,
                        config.margin_minutes,
                        config.max_runtime_minutes,
                        c.received
                    ],
                    |r| r.get(0),
                )?;
                (id, config.clone(), None)
            }
            (None, None) => continue,
        };
        let run = crate::monitors::plan_run(c, &config);
        let open: Option<(i64, String, f64)> = tx
            .query_row(
                "SELECT id, status, started FROM monitor_runs WHERE monitor_id = ?1 AND check_in_id = ?2",
                params![id, &c.check_in_id.0[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        match (c.status, open) {
            (_, None) => {
                tx.execute(
                    "INSERT INTO monitor_runs (project_id, monitor_id, check_in_id, status, started, finished, duration, deadline, release, environment)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        c.project_id.0,
                        id,
                        &c.check_in_id.0[..],
                        c.status.as_str(),
                        run.started,
                        run.finished,
                        run.duration,
                        run.deadline,
                        c.release,
                        c.environment
                    ],
                )?;
            }
            (CheckInStatus::Ok | CheckInStatus::Error, Some((run_id, status, started))) if status == "in_progress" => {
                tx.execute(
                    "UPDATE monitor_runs SET status = ?2, finished = ?3, duration = ?4, deadline = NULL,
                     release = COALESCE(?5, release), environment = COALESCE(?6, environment) WHERE id = ?1",
                    params![run_id, c.status.as_str(), c.timestamp, crate::monitors::closing_duration(c, started), c.release, c.environment],
                )?;
            }
            // A replay, or a run already closed (or timed out): as it was.
            _ => {}
        }
        let newest = last.is_none_or(|l| c.timestamp >= l);
        let at = last.map_or(c.timestamp, |l| l.max(c.timestamp));
        let status = match c.status {
            CheckInStatus::InProgress => None,
            s => Some(s.as_str()),
        };
        tx.execute(
            "UPDATE monitors SET last_check_in = ?2, next_expected = ?3, status = CASE WHEN ?4 AND ?5 IS NOT NULL THEN ?5 ELSE status END WHERE id = ?1",
            params![id, at, config.next_expected(at), newest, status],
        )?;
    }
    Ok(())
}

const MONITOR_COLUMNS: &str =
    "id, project_id, slug, schedule_type, schedule, timezone, margin_minutes, max_runtime_minutes, status, last_check_in, next_expected, created";

fn monitor_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MonitorRow> {
    let (kind, value): (String, String) = (r.get(3)?, r.get(4)?);
    Ok(MonitorRow {
        id: r.get(0)?,
        project_id: ProjectId(r.get(1)?),
        slug: r.get(2)?,
        config: MonitorConfig {
            schedule: Schedule::from_stored(&kind, &value).unwrap_or(Schedule::Crontab(value)),
            timezone: r.get(5)?,
            margin_minutes: r.get(6)?,
            max_runtime_minutes: r.get(7)?,
        },
        status: r.get(8)?,
        last_check_in: r.get(9)?,
        next_expected: r.get(10)?,
        created: r.get(11)?,
    })
}

const RUN_COLUMNS: &str = "id, monitor_id, check_in_id, status, started, finished, duration, release, environment";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MonitorRunRow> {
    let id = |b: Vec<u8>| b.try_into().map(|a: [u8; 16]| crate::EventId(a).to_string()).unwrap_or_default();
    Ok(MonitorRunRow {
        id: r.get(0)?,
        monitor_id: r.get(1)?,
        check_in_id: r.get::<_, Option<Vec<u8>>>(2)?.map(id),
        status: r.get(3)?,
        started: r.get(4)?,
        finished: r.get(5)?,
        duration: r.get(6)?,
        release: r.get(7)?,
        environment: r.get(8)?,
    })
}

impl crate::Monitors for SqliteStore {
    fn monitors(&self, project: ProjectId) -> Result<Vec<MonitorRow>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {MONITOR_COLUMNS} FROM monitors WHERE project_id = ?1 ORDER BY slug"))?;
        let rows = st.query_map([project.0], monitor_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn monitor_runs(&self, monitor: i64, limit: usize) -> Result<Vec<MonitorRunRow>> {
        let conn = self.conn()?;
        let mut st =
            conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM monitor_runs WHERE monitor_id = ?1 ORDER BY started DESC, id DESC LIMIT ?2"))?;
        let rows = st.query_map(params![monitor, limit as i64], run_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn mark_missed(&self, now: f64) -> Result<usize> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let due: Vec<MonitorRow> = {
            let mut st = tx.prepare_cached(&format!(
                "SELECT {MONITOR_COLUMNS} FROM monitors WHERE next_expected IS NOT NULL AND next_expected + margin_minutes * 60 < ?1 LIMIT 1000"
            ))?;
            st.query_map([now], monitor_row)?.collect::<rusqlite::Result<_>>()?
        };
        let mut missed = 0;
        for m in due {
            let Some(expected) = m.next_expected else { continue };
            let next = m.config.next_after_missed(expected, now);
            // Only if no one moved it meanwhile: a missed check-in is recorded once.
            let moved = tx.execute(
                "UPDATE monitors SET next_expected = ?2, status = 'missed' WHERE id = ?1 AND next_expected = ?3",
                params![m.id, next, expected],
            )?;
            if moved == 1 {
                tx.execute(
                    "INSERT INTO monitor_runs (project_id, monitor_id, status, started) VALUES (?1, ?2, 'missed', ?3)",
                    params![m.project_id.0, m.id, expected],
                )?;
                missed += 1;
            }
        }
        tx.commit()?;
        Ok(missed)
    }

    fn mark_timeouts(&self, now: f64) -> Result<usize> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let timed_out: Vec<i64> = {
            let mut st = tx.prepare_cached(
                "UPDATE monitor_runs SET status = 'timeout', finished = deadline, duration = deadline - started, deadline = NULL
                 WHERE status = 'in_progress' AND deadline < ?1 RETURNING monitor_id",
            )?;
            st.query_map([now], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        for m in &timed_out {
            tx.execute("UPDATE monitors SET status = 'timeout' WHERE id = ?1", [m])?;
        }
        tx.commit()?;
        Ok(timed_out.len())
    }

    fn unreported_failures(&self, limit: usize) -> Result<Vec<MonitorFailure>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT r.id, r.project_id, r.monitor_id, m.slug, r.status, COALESCE(r.finished, r.started), r.release, r.environment
             FROM monitor_runs r JOIN monitors m ON m.id = r.monitor_id
             WHERE r.reported = 0 AND r.status IN ('error', 'missed', 'timeout') ORDER BY r.id LIMIT ?1",
        )?;
        let rows = st
            .query_map([limit as i64], |r| {
                let status: String = r.get(4)?;
                Ok(MonitorFailure {
                    run_id: r.get(0)?,
                    project_id: ProjectId(r.get(1)?),
                    monitor_id: r.get(2)?,
                    slug: r.get(3)?,
                    kind: MonitorFailureKind::of_status(&status).unwrap_or(MonitorFailureKind::Error),
                    at: r.get(5)?,
                    release: r.get(6)?,
                    environment: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn mark_reported(&self, runs: &[i64]) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for id in runs {
            tx.execute("UPDATE monitor_runs SET reported = 1 WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(())
    }
}
