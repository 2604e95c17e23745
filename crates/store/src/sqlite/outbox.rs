//! The notification outbox and the engine's bookkeeping: deliveries written durably before they
//! are sent (one per rule action of a firing, never twice), their attempts and backoff; the
//! cursor into `group_activity`; when each rule last fired for each group (its throttle).
//!
//! Architecture invariant: new deliveries, the throttle marks of their firings and the cursor
//! past the activity that caused them are committed in one transaction, so a crash either
//! loses nothing or repeats nothing.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::Result;

/// One `group_activity` row, with the project of its group.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityEntry {
    pub id: i64,
    pub group_id: i64,
    pub project_id: i64,
    /// `created`, `regression`, `resolved`, `ignored` or `reopened`.
    pub kind: String,
    pub at: f64,
}

/// A delivery to queue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewDelivery {
    /// The firing: the same for every action of it.
    pub firing_id: String,
    /// The action's index in its rule.
    pub action: i64,
    pub project_id: i64,
    pub group_id: i64,
    pub rule: String,
    pub plugin: String,
    /// The action's own settings (JSON object).
    pub settings: String,
    /// The notification (JSON).
    pub payload: String,
    pub expires_at: f64,
}

/// A queued delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub firing_id: String,
    pub action: i64,
    pub project_id: i64,
    pub group_id: i64,
    pub rule: String,
    pub plugin: String,
    pub settings: String,
    pub payload: String,
    pub created_at: f64,
    pub attempts: i64,
    pub next_attempt_at: f64,
    pub expires_at: f64,
    pub delivered_at: Option<f64>,
    pub failed_at: Option<f64>,
    pub last_error: Option<String>,
}

/// What [`SqliteStore::enqueue_deliveries`] writes in one transaction.
#[derive(Clone, Debug, Default)]
pub struct Enqueue {
    pub deliveries: Vec<NewDelivery>,
    /// `(rule, group_id)` pairs that fired now.
    pub fired: Vec<(String, i64)>,
    /// `(cursor name, position)` to move, if any.
    pub cursor: Option<(String, i64)>,
}

const DELIVERY_COLUMNS: &str = "id, firing_id, action, project_id, group_id, rule, plugin, settings, payload, created_at,
    attempts, next_attempt_at, expires_at, delivered_at, failed_at, last_error";

fn delivery_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        firing_id: r.get(1)?,
        action: r.get(2)?,
        project_id: r.get(3)?,
        group_id: r.get(4)?,
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

impl SqliteStore {
    /// The position of cursor `name`; `None` when it was never set.
    pub fn notify_cursor(&self, name: &str) -> Result<Option<i64>> {
        let conn = self.conn()?;
        Ok(conn.query_row("SELECT position FROM notify_cursors WHERE name = ?1", [name], |r| r.get(0)).optional()?)
    }

    /// The newest `group_activity` id (0 when there is none), where a new cursor starts.
    pub fn last_activity_id(&self) -> Result<i64> {
        let conn = self.conn()?;
        Ok(conn.query_row("SELECT COALESCE(MAX(id), 0) FROM group_activity", [], |r| r.get(0))?)
    }

    /// Activity after id `after`, oldest first, at most `limit` rows.
    pub fn activity_after(&self, after: i64, limit: usize) -> Result<Vec<ActivityEntry>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT a.id, a.group_id, g.project_id, a.kind, a.at FROM group_activity a JOIN groups g ON g.id = a.group_id
             WHERE a.id > ?1 ORDER BY a.id LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![after, limit as i64], |r| {
                Ok(ActivityEntry { id: r.get(0)?, group_id: r.get(1)?, project_id: r.get(2)?, kind: r.get(3)?, at: r.get(4)? })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// When `rule` last fired for `group_id`.
    pub fn last_fired(&self, rule: &str, group_id: i64) -> Result<Option<f64>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached("SELECT last_fired_at FROM notify_throttle WHERE rule = ?1 AND group_id = ?2")?;
        Ok(st.query_row(params![rule, group_id], |r| r.get(0)).optional()?)
    }

    /// Events of a group with a timestamp in minute `from_minute` (unix minutes) or later.
    pub fn group_count_since(&self, group_id: i64, from_minute: i64) -> Result<u64> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached("SELECT COALESCE(SUM(count), 0) FROM group_buckets WHERE group_id = ?1 AND minute >= ?2")?;
        let n: i64 = st.query_row(params![group_id, from_minute], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Queues deliveries, marks the rules that fired and moves the cursor, in one transaction.
    /// A delivery whose (firing, action) is already queued is left out. Returns how many were
    /// queued.
    pub fn enqueue_deliveries(&self, e: &Enqueue) -> Result<usize> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = super::now();
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
                    d.firing_id, d.action, d.project_id, d.group_id, d.rule, d.plugin, d.settings, d.payload, now, d.expires_at
                ])?;
            }
            let mut st = tx.prepare_cached(
                "INSERT INTO notify_throttle (rule, group_id, last_fired_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (rule, group_id) DO UPDATE SET last_fired_at = excluded.last_fired_at",
            )?;
            for (rule, group) in &e.fired {
                st.execute(params![rule, group, now])?;
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

    /// Pending deliveries due at `now` (not delivered, not failed, not expired), oldest first.
    pub fn due_deliveries(&self, now: f64, limit: usize) -> Result<Vec<Delivery>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM notify_outbox
             WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?1 AND expires_at > ?1
             ORDER BY next_attempt_at, id LIMIT ?2"
        ))?;
        let rows = st.query_map(params![now, limit as i64], delivery_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The earliest next attempt of a pending delivery, to know how long to sleep.
    pub fn next_delivery_at(&self) -> Result<Option<f64>> {
        let conn = self.conn()?;
        Ok(conn.query_row(
            "SELECT MIN(next_attempt_at) FROM notify_outbox WHERE delivered_at IS NULL AND failed_at IS NULL",
            [],
            |r| r.get(0),
        )?)
    }

    /// Every delivery, newest first (for tests and `sentry notify` listings).
    pub fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM notify_outbox ORDER BY id DESC LIMIT ?1"))?;
        let rows = st.query_map([limit as i64], delivery_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Records a successful attempt.
    pub fn delivery_done(&self, id: i64) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE notify_outbox SET attempts = attempts + 1, delivered_at = ?2, last_error = NULL WHERE id = ?1",
            params![id, super::now()],
        )?;
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or given up for good when `None`.
    pub fn delivery_failed(&self, id: i64, error: &str, retry_at: Option<f64>) -> Result<()> {
        let conn = self.conn()?;
        match retry_at {
            Some(at) => conn.execute(
                "UPDATE notify_outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
                params![id, error, at],
            )?,
            None => conn.execute(
                "UPDATE notify_outbox SET attempts = attempts + 1, last_error = ?2, failed_at = ?3 WHERE id = ?1",
                params![id, error, super::now()],
            )?,
        };
        Ok(())
    }

    /// Gives up on pending deliveries whose time is over. Returns how many.
    pub fn expire_deliveries(&self, now: f64) -> Result<usize> {
        let conn = self.conn()?;
        Ok(conn.execute(
            "UPDATE notify_outbox SET failed_at = ?1,
                    last_error = 'expired: not delivered in time' || COALESCE(' (last error: ' || last_error || ')', '')
             WHERE delivered_at IS NULL AND failed_at IS NULL AND expires_at <= ?1",
            [now],
        )?)
    }

    /// After a restart: every pending delivery is due now (their backoff was for the last run).
    pub fn resume_deliveries(&self, now: f64) -> Result<usize> {
        let conn = self.conn()?;
        Ok(conn.execute(
            "UPDATE notify_outbox SET next_attempt_at = ?1 WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at > ?1",
            [now],
        )?)
    }
}
