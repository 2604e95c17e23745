//! Release health in PostgreSQL: as in SQLite (`crate::sqlite::health`), with arrays per
//! statement.

use deadpool_postgres::Transaction;

use super::PgStore;
use crate::{HealthDay, NewSession, NewSessionCounts, ProjectId, ReleaseHealth, Result};

pub(super) async fn write(tx: &Transaction<'_>, sessions: &[NewSession], counts: &[NewSessionCounts]) -> Result<()> {
    let now = crate::now();
    if !sessions.is_empty() {
        // One row per session id in a statement (ON CONFLICT may not touch a row twice): the
        // updates of one session in this batch are merged first.
        let mut merged: Vec<NewSession> = Vec::with_capacity(sessions.len());
        let mut at = std::collections::HashMap::new();
        for s in sessions {
            match at.get(&(s.project_id, s.sid.as_str())) {
                Some(&i) => {
                    let m: &mut NewSession = &mut merged[i];
                    m.did = m.did.take().or_else(|| s.did.clone());
                    m.started = m.started.min(s.started);
                    m.status = m.status.max(s.status);
                    m.errored |= s.errored;
                }
                None => {
                    at.insert((s.project_id, s.sid.as_str()), merged.len());
                    merged.push(s.clone());
                }
            }
        }
        let col = |f: fn(&NewSession) -> String| merged.iter().map(f).collect::<Vec<String>>();
        let projects: Vec<i64> = merged.iter().map(|s| s.project_id.0).collect();
        let dids: Vec<Option<String>> = merged.iter().map(|s| s.did.clone()).collect();
        let started: Vec<f64> = merged.iter().map(|s| s.started).collect();
        let status: Vec<i32> = merged.iter().map(|s| s.status.code() as i32).collect();
        let errored: Vec<i32> = merged.iter().map(|s| s.errored as i32).collect();
        tx.execute(
            "INSERT INTO release_sessions (project_id, sid, did, release, environment, started, received, status, errored)
             SELECT p, s, d, r, e, st, $7, stat, err FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $8::int[], $9::int[])
                AS u(p, s, d, r, e, st, stat, err)
             ON CONFLICT (project_id, sid) DO UPDATE SET
                did = COALESCE(release_sessions.did, excluded.did), started = LEAST(release_sessions.started, excluded.started),
                status = GREATEST(release_sessions.status, excluded.status), errored = GREATEST(release_sessions.errored, excluded.errored)",
            &[&projects, &col(|s| s.sid.clone()), &dids, &col(|s| s.release.clone()), &col(|s| s.environment.clone()), &started, &now, &status, &errored],
        )
        .await?;
    }
    for c in counts {
        let n = |v: u64| v.min(i64::MAX as u64) as i64;
        tx.execute(
            "INSERT INTO release_session_counts AS c (project_id, release, environment, started, did, received, exited, errored, abnormal, crashed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (project_id, release, environment, started, did) DO UPDATE SET
                exited = c.exited + excluded.exited, errored = c.errored + excluded.errored,
                abnormal = c.abnormal + excluded.abnormal, crashed = c.crashed + excluded.crashed",
            &[
                &c.project_id.0,
                &c.release,
                &c.environment,
                &c.started,
                &c.did.as_deref().unwrap_or(""),
                &now,
                &n(c.exited),
                &n(c.errored),
                &n(c.abnormal),
                &n(c.crashed),
            ],
        )
        .await?;
    }
    Ok(())
}

fn health(release: String, r: &tokio_postgres::Row) -> ReleaseHealth {
    let n = |i: usize| r.get::<_, Option<i64>>(i).unwrap_or(0).max(0) as u64;
    ReleaseHealth { release, sessions: n(1), errored: n(2), abnormal: n(3), crashed: n(4), users: n(5), crashed_users: n(6) }
}

impl crate::Health for PgStore {
    fn release_health(&self, project: ProjectId, since: f64) -> Result<Vec<ReleaseHealth>> {
        self.with(async |c| {
            let sql = crate::health::health_sql("release", "");
            let rows = c.query(&sql, &[&project.0, &since]).await?;
            Ok(rows.iter().map(|r| health(r.get(0), r)).collect())
        })
    }

    fn health_by_day(&self, project: ProjectId, release: Option<&str>, since: f64) -> Result<Vec<HealthDay>> {
        let key = "(floor(started / 86400) * 86400)::float8";
        let filter = if release.is_some() { "AND release = $3" } else { "" };
        let sql = crate::health::health_sql(key, filter);
        self.with(async |c| {
            let rows = match release {
                Some(r) => c.query(&sql, &[&project.0, &since, &r]).await?,
                None => c.query(&sql, &[&project.0, &since]).await?,
            };
            Ok(rows.iter().map(|row| HealthDay { day: row.get(0), health: health(release.unwrap_or_default().to_string(), row) }).collect())
        })
    }
}
