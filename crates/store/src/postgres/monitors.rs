//! Cron monitors in PostgreSQL: check-ins written by the writer in the batch's transaction (the
//! monitor's row locked while its run is opened or closed), and what the scheduler asks. Several
//! nodes run the scheduler: a missed check-in or a timeout is recorded by a conditional update
//! that only one of them can win.

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

use super::PgStore;
use crate::{CheckInStatus, MonitorConfig, MonitorFailure, MonitorFailureKind, MonitorRow, MonitorRunRow, NewCheckIn, ProjectId, Result, Schedule};

/// Stores check-ins, as the SQLite writer does (`sqlite/monitors.rs`).
pub(super) async fn write(tx: &Transaction<'_>, check_ins: &[NewCheckIn]) -> Result<()> {
    for c in check_ins {
        let row = match &c.config {
            Some(config) => Some(
                tx.query_one(
                    &format!(
                        "INSERT INTO monitors AS m (project_id, slug, schedule_type, schedule, timezone, margin_minutes, max_runtime_minutes, status, created)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8)
                         ON CONFLICT (project_id, slug) DO UPDATE SET schedule_type = excluded.schedule_type, schedule = excluded.schedule,
                         timezone = excluded.timezone, margin_minutes = excluded.margin_minutes, max_runtime_minutes = excluded.max_runtime_minutes
                         RETURNING {MONITOR_COLUMNS}"
                    ),
                    &[
                        &c.project_id.0,
                        &c.monitor_slug,
                        &config.schedule.kind(),
                        &config.schedule.value(),
                        &config.timezone,
                        &(config.margin_minutes as i32),
                        &(config.max_runtime_minutes as i32),
                        &c.received,
                    ],
                )
                .await?,
            ),
            None => {
                tx.query_opt(
                    &format!("SELECT {MONITOR_COLUMNS} FROM monitors WHERE project_id = $1 AND slug = $2 FOR UPDATE"),
                    &[&c.project_id.0, &c.monitor_slug],
                )
                .await?
            }
        };
        let Some(m) = row.as_ref().map(monitor_row) else { continue };
        let run = crate::monitors::plan_run(c, &m.config);
        let open = tx
            .query_opt("SELECT id, status, started FROM monitor_runs WHERE monitor_id = $1 AND check_in_id = $2", &[&m.id, &&c.check_in_id.0[..]])
            .await?;
        match (c.status, open) {
            (_, None) => {
                tx.execute(
                    "INSERT INTO monitor_runs (project_id, monitor_id, check_in_id, status, started, finished, duration, deadline, release, environment)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (monitor_id, check_in_id) DO NOTHING",
                    &[
                        &c.project_id.0,
                        &m.id,
                        &&c.check_in_id.0[..],
                        &c.status.as_str(),
                        &run.started,
                        &run.finished,
                        &run.duration,
                        &run.deadline,
                        &c.release,
                        &c.environment,
                    ],
                )
                .await?;
            }
            (CheckInStatus::Ok | CheckInStatus::Error, Some(r)) if r.get::<_, String>(1) == "in_progress" => {
                let (run_id, started): (i64, f64) = (r.get(0), r.get(2));
                tx.execute(
                    "UPDATE monitor_runs SET status = $2, finished = $3, duration = $4, deadline = NULL,
                     release = COALESCE($5, release), environment = COALESCE($6, environment) WHERE id = $1",
                    &[&run_id, &c.status.as_str(), &c.timestamp, &crate::monitors::closing_duration(c, started), &c.release, &c.environment],
                )
                .await?;
            }
            _ => {}
        }
        let newest = m.last_check_in.is_none_or(|l| c.timestamp >= l);
        let at = m.last_check_in.map_or(c.timestamp, |l| l.max(c.timestamp));
        let status: Option<&str> = match c.status {
            CheckInStatus::InProgress => None,
            s => Some(s.as_str()),
        };
        tx.execute(
            "UPDATE monitors SET last_check_in = $2, next_expected = $3, status = CASE WHEN $4 AND $5::text IS NOT NULL THEN $5::text ELSE status END WHERE id = $1",
            &[&m.id, &at, &m.config.next_expected(at), &newest, &status],
        )
        .await?;
    }
    Ok(())
}

const MONITOR_COLUMNS: &str =
    "id, project_id, slug, schedule_type, schedule, timezone, margin_minutes, max_runtime_minutes, status, last_check_in, next_expected, created";

fn monitor_row(r: &Row) -> MonitorRow {
    let (kind, value): (String, String) = (r.get(3), r.get(4));
    MonitorRow {
        id: r.get(0),
        project_id: ProjectId(r.get(1)),
        slug: r.get(2),
        config: MonitorConfig {
            schedule: Schedule::from_stored(&kind, &value).unwrap_or(Schedule::Crontab(value)),
            timezone: r.get(5),
            margin_minutes: r.get::<_, i32>(6).max(0) as u32,
            max_runtime_minutes: r.get::<_, i32>(7).max(0) as u32,
        },
        status: r.get(8),
        last_check_in: r.get(9),
        next_expected: r.get(10),
        created: r.get(11),
    }
}

const RUN_COLUMNS: &str = "id, monitor_id, check_in_id, status, started, finished, duration, release, environment";

fn run_row(r: &Row) -> MonitorRunRow {
    let id = |b: Vec<u8>| b.try_into().map(|a: [u8; 16]| crate::EventId(a).to_string()).unwrap_or_default();
    MonitorRunRow {
        id: r.get(0),
        monitor_id: r.get(1),
        check_in_id: r.get::<_, Option<Vec<u8>>>(2).map(id),
        status: r.get(3),
        started: r.get(4),
        finished: r.get(5),
        duration: r.get(6),
        release: r.get(7),
        environment: r.get(8),
    }
}

impl crate::Monitors for PgStore {
    fn monitors(&self, project: ProjectId) -> Result<Vec<MonitorRow>> {
        self.with(async |c| {
            let rows = c.query(&format!("SELECT {MONITOR_COLUMNS} FROM monitors WHERE project_id = $1 ORDER BY slug"), &[&project.0]).await?;
            Ok(rows.iter().map(monitor_row).collect())
        })
    }

    fn monitor_runs(&self, monitor: i64, limit: usize) -> Result<Vec<MonitorRunRow>> {
        self.with(async |c| {
            let rows = c
                .query(
                    &format!("SELECT {RUN_COLUMNS} FROM monitor_runs WHERE monitor_id = $1 ORDER BY started DESC, id DESC LIMIT $2"),
                    &[&monitor, &(limit as i64)],
                )
                .await?;
            Ok(rows.iter().map(run_row).collect())
        })
    }

    fn mark_missed(&self, now: f64) -> Result<usize> {
        self.with(async |c| {
            let due = c
                .query(
                    &format!(
                        "SELECT {MONITOR_COLUMNS} FROM monitors WHERE next_expected IS NOT NULL AND next_expected + margin_minutes * 60 < $1
                         ORDER BY id LIMIT 1000"
                    ),
                    &[&now],
                )
                .await?;
            let mut missed = 0;
            for m in due.iter().map(monitor_row) {
                let Some(expected) = m.next_expected else { continue };
                let next = m.config.next_after_missed(expected, now);
                let tx = c.transaction().await?;
                // Another node that saw the same monitor moved it first: then this matches nothing.
                let moved = tx
                    .execute(
                        "UPDATE monitors SET next_expected = $2, status = 'missed' WHERE id = $1 AND next_expected = $3",
                        &[&m.id, &next, &expected],
                    )
                    .await?;
                if moved == 1 {
                    tx.execute(
                        "INSERT INTO monitor_runs (project_id, monitor_id, status, started) VALUES ($1, $2, 'missed', $3)",
                        &[&m.project_id.0, &m.id, &expected],
                    )
                    .await?;
                    missed += 1;
                }
                tx.commit().await?;
            }
            Ok(missed)
        })
    }

    fn mark_timeouts(&self, now: f64) -> Result<usize> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            let rows = tx
                .query(
                    "UPDATE monitor_runs SET status = 'timeout', finished = deadline, duration = deadline - started, deadline = NULL
                     WHERE status = 'in_progress' AND deadline < $1 RETURNING monitor_id",
                    &[&now],
                )
                .await?;
            let mut monitors: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            monitors.sort_unstable();
            monitors.dedup();
            tx.execute("UPDATE monitors SET status = 'timeout' WHERE id = ANY($1)", &[&monitors]).await?;
            tx.commit().await?;
            Ok(rows.len())
        })
    }

    fn unreported_failures(&self, limit: usize) -> Result<Vec<MonitorFailure>> {
        self.with(async |c| {
            let rows = c
                .query(
                    "SELECT r.id, r.project_id, r.monitor_id, m.slug, r.status, COALESCE(r.finished, r.started), r.release, r.environment
                     FROM monitor_runs r JOIN monitors m ON m.id = r.monitor_id
                     WHERE NOT r.reported AND r.status IN ('error', 'missed', 'timeout') ORDER BY r.id LIMIT $1",
                    &[&(limit as i64)],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| MonitorFailure {
                    run_id: r.get(0),
                    project_id: ProjectId(r.get(1)),
                    monitor_id: r.get(2),
                    slug: r.get(3),
                    kind: MonitorFailureKind::of_status(r.get(4)).unwrap_or(MonitorFailureKind::Error),
                    at: r.get(5),
                    release: r.get(6),
                    environment: r.get(7),
                })
                .collect())
        })
    }

    fn mark_reported(&self, runs: &[i64]) -> Result<()> {
        self.with(async |c| {
            c.execute("UPDATE monitor_runs SET reported = true WHERE id = ANY($1)", &[&runs]).await?;
            Ok(())
        })
    }
}
