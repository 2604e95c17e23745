//! The notification outbox and the engine's bookkeeping: deliveries written durably before they
//! are sent (one per rule action of a firing, never twice), their attempts and backoff; the
//! cursor into `group_activity`; when each rule last fired for each group (its throttle).
//!
//! Deliveries are claimed with a lease before they are sent (`claimed_by`, `claimed_until`):
//! a claim is taken in one write transaction, so two claimers never get the same row while its
//! lease holds, and a claimer that dies leaves rows that become due again when the lease ends.
//!
//! Architecture invariant: new deliveries, the throttle marks of their firings and the cursor
//! past the activity that caused them are committed in one transaction, so a crash either
//! loses nothing or repeats nothing.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::{ActivityEntry, Delivery, Enqueue, GroupId, ProjectId, Result};

const DELIVERY_COLUMNS: &str = "id, firing_id, action, project_id, group_id, rule, plugin, settings, payload, created_at,
    attempts, next_attempt_at, expires_at, delivered_at, failed_at, last_error";

fn delivery_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        firing_id: r.get(1)?,
        action: r.get(2)?,
        project_id: ProjectId(r.get(3)?),
        group_id: GroupId(r.get(4)?),
        rule: r.get(5)?,
        plugin: r.get(6)?,
        settings: r.get(7)?,
        payload: r.get(8)?,
        created_at: r.get(9)?,
        attempts: r.get(10)?,
        next_attempt_at: r.get(11)?,
        expires_at: r.get(12)?,
        delivered_at: r.get(13)?,
        failed_at: r.get(14)?,
        last_error: r.get(15)?,
    })
}

impl crate::Outbox for SqliteStore {
    /// The position of cursor `name`; `None` when it was never set.
    fn notify_cursor(&self, name: &str) -> Result<Option<i64>> {
        let conn = self.conn()?;
        Ok(conn.query_row("SELECT position FROM notify_cursors WHERE name = ?1", [name], |r| r.get(0)).optional()?)
    }

    /// The newest `group_activity` id (0 when there is none), where a new cursor starts.
    fn last_activity_id(&self) -> Result<i64> {
        let conn = self.conn()?;
        Ok(conn.query_row("SELECT COALESCE(MAX(id), 0) FROM group_activity", [], |r| r.get(0))?)
    }

    /// Activity after id `after`, oldest first, at most `limit` rows.
    fn activity_after(&self, after: i64, limit: usize) -> Result<Vec<ActivityEntry>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT a.id, a.group_id, g.project_id, a.kind, a.at, a.actor, a.data FROM group_activity a JOIN groups g ON g.id = a.group_id
             WHERE a.id > ?1 ORDER BY a.id LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![after, limit as i64], |r| {
                Ok(ActivityEntry {
                    id: r.get(0)?,
                    group_id: GroupId(r.get(1)?),
                    project_id: ProjectId(r.get(2)?),
                    kind: r.get(3)?,
                    at: r.get(4)?,
                    actor: r.get::<_, Option<i64>>(5)?.map(crate::UserId),
                    data: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// When `rule` last fired for `group_id`.
    fn last_fired(&self, rule: &str, group_id: GroupId) -> Result<Option<f64>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached("SELECT last_fired_at FROM notify_throttle WHERE rule = ?1 AND group_id = ?2")?;
        Ok(st.query_row(params![rule, group_id.0], |r| r.get(0)).optional()?)
    }

    /// Queues deliveries, marks the rules that fired and moves the cursor, in one transaction.
    /// A delivery whose (firing, action) is already queued is left out. Returns how many were
    /// queued.
    fn enqueue_deliveries(&self, e: &Enqueue) -> Result<usize> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = crate::now();
        let mut queued = 0;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO notify_outbox (firing_id, action, project_id, group_id, rule, plugin, settings, payload,
                                            created_at, next_attempt_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)
                 ON CONFLICT (firing_id, action) DO NOTHING",
            )?;
            for d in &e.deliveries {
                queued += st.execute(params![
                    d.firing_id, d.action, d.project_id.0, d.group_id.0, d.rule, d.plugin, d.settings, d.payload, now, d.expires_at
                ])?;
            }
            let mut st = tx.prepare_cached(
                "INSERT INTO notify_throttle (rule, group_id, last_fired_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (rule, group_id) DO UPDATE SET last_fired_at = excluded.last_fired_at",
            )?;
            for (rule, group) in &e.fired {
                st.execute(params![rule, group.0, now])?;
            }
            if let Some((name, pos)) = &e.cursor {
                tx.execute(
                    "INSERT INTO notify_cursors (name, position) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position)",
                    params![name, pos],
                )?;
            }
        }
        tx.commit()?;
        Ok(queued)
    }

    fn claim_deliveries(&self, claimer: &str, now: f64, lease_secs: f64, limit: usize) -> Result<Vec<Delivery>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut rows = {
            let mut st = tx.prepare_cached(&format!(
                "UPDATE notify_outbox SET claimed_by = ?1, claimed_until = ?2 + ?3
                 WHERE id IN (SELECT id FROM notify_outbox
                              WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?2 AND expires_at > ?2
                                AND (claimed_until IS NULL OR claimed_until <= ?2)
                              ORDER BY next_attempt_at, id LIMIT ?4)
                 RETURNING {DELIVERY_COLUMNS}"
            ))?;
            st.query_map(params![claimer, now, lease_secs, limit as i64], delivery_from)?.collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.commit()?;
        rows.sort_by(|a, b| a.next_attempt_at.total_cmp(&b.next_attempt_at).then(a.id.cmp(&b.id)));
        Ok(rows)
    }

    /// The earliest next attempt of a pending delivery, to know how long to sleep.
    fn next_delivery_at(&self) -> Result<Option<f64>> {
        let conn = self.conn()?;
        Ok(conn.query_row(
            "SELECT MIN(max(next_attempt_at, COALESCE(claimed_until, 0))) FROM notify_outbox WHERE delivered_at IS NULL AND failed_at IS NULL",
            [],
            |r| r.get(0),
        )?)
    }

    /// Every delivery, newest first (for tests and `sentry notify` listings).
    fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM notify_outbox ORDER BY id DESC LIMIT ?1"))?;
        let rows = st.query_map([limit as i64], delivery_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Records a successful attempt.
    fn delivery_done(&self, id: i64) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE notify_outbox SET attempts = attempts + 1, delivered_at = ?2, last_error = NULL,
                    claimed_by = NULL, claimed_until = NULL WHERE id = ?1",
            params![id, crate::now()],
        )?;
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or given up for good when `None`.
    fn delivery_failed(&self, id: i64, error: &str, retry_at: Option<f64>) -> Result<()> {
        let conn = self.conn()?;
        match retry_at {
            Some(at) => conn.execute(
                "UPDATE notify_outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3,
                        claimed_by = NULL, claimed_until = NULL WHERE id = ?1",
                params![id, error, at],
            )?,
            None => conn.execute(
                "UPDATE notify_outbox SET attempts = attempts + 1, last_error = ?2, failed_at = ?3,
                        claimed_by = NULL, claimed_until = NULL WHERE id = ?1",
                params![id, error, crate::now()],
            )?,
        };
        Ok(())
    }

    /// Gives up on pending deliveries whose time is over. Returns how many.
    fn expire_deliveries(&self, now: f64) -> Result<usize> {
        let conn = self.conn()?;
        Ok(conn.execute(
            "UPDATE notify_outbox SET failed_at = ?1,
                    last_error = 'expired: not delivered in time' || COALESCE(' (last error: ' || last_error || ')', '')
             WHERE delivered_at IS NULL AND failed_at IS NULL AND expires_at <= ?1",
            [now],
        )?)
    }

    /// After a restart: every pending delivery is due now (their backoff was for the last run).
    fn resume_deliveries(&self, now: f64) -> Result<usize> {
        let conn = self.conn()?;
        Ok(conn.execute(
            "UPDATE notify_outbox SET next_attempt_at = ?1
             WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at > ?1
               AND (claimed_until IS NULL OR claimed_until <= ?1)",
            [now],
        )?)
    }
}
