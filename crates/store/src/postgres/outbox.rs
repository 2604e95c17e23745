//! The notification outbox and the engine's bookkeeping, as in SQLite: deliveries written
//! before they are sent (one per rule action of a firing), claimed with a lease
//! (`FOR UPDATE SKIP LOCKED`: claimers on several nodes never wait for each other and never
//! share a row), the cursor into `group_activity`, and each rule's throttle marks.
//!
//! Architecture invariant: new deliveries, the throttle marks of their firings and the cursor
//! past the activity that caused them are committed in one transaction.

use tokio_postgres::Row;

use super::PgStore;
use crate::{ActivityEntry, Delivery, Enqueue, GroupId, ProjectId, Result};

const DELIVERY_COLUMNS: &str = "id, firing_id, action, project_id, group_id, rule, plugin, settings, payload, created_at,
    attempts, next_attempt_at, expires_at, delivered_at, failed_at, last_error";

fn delivery_from(r: &Row) -> Delivery {
    Delivery {
        id: r.get(0),
        firing_id: r.get(1),
        action: r.get(2),
        project_id: ProjectId(r.get(3)),
        group_id: GroupId(r.get(4)),
        rule: r.get(5),
        plugin: r.get(6),
        settings: r.get(7),
        payload: r.get(8),
        created_at: r.get(9),
        attempts: r.get(10),
        next_attempt_at: r.get(11),
        expires_at: r.get(12),
        delivered_at: r.get(13),
        failed_at: r.get(14),
        last_error: r.get(15),
    }
}

impl crate::Outbox for PgStore {
    fn notify_cursor(&self, name: &str) -> Result<Option<i64>> {
        self.with(async |c| Ok(c.query_opt("SELECT position FROM notify_cursors WHERE name = $1", &[&name]).await?.map(|r| r.get(0))))
    }

    fn last_activity_id(&self) -> Result<i64> {
        self.with(async |c| Ok(c.query_one("SELECT COALESCE(MAX(id), 0)::bigint FROM group_activity", &[]).await?.get(0)))
    }

    fn activity_after(&self, after: i64, limit: usize) -> Result<Vec<ActivityEntry>> {
        self.with(async |c| {
            let rows = c
                .query(
                    "SELECT a.id, a.group_id, g.project_id, a.kind, a.at, a.actor, a.data FROM group_activity a JOIN groups g ON g.id = a.group_id
                     WHERE a.id > $1 ORDER BY a.id LIMIT $2",
                    &[&after, &(limit as i64)],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| ActivityEntry {
                    id: r.get(0),
                    group_id: GroupId(r.get(1)),
                    project_id: ProjectId(r.get(2)),
                    kind: r.get(3),
                    at: r.get(4),
                    actor: r.get::<_, Option<i64>>(5).map(crate::UserId),
                    data: r.get(6),
                })
                .collect())
        })
    }

    fn last_fired(&self, rule: &str, group_id: GroupId) -> Result<Option<f64>> {
        self.with(async |c| {
            Ok(c.query_opt("SELECT last_fired_at FROM notify_throttle WHERE rule = $1 AND group_id = $2", &[&rule, &group_id.0])
                .await?
                .map(|r| r.get(0)))
        })
    }

    fn enqueue_deliveries(&self, e: &Enqueue) -> Result<usize> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            let now = crate::now();
            let mut queued = 0;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO notify_outbox (firing_id, action, project_id, group_id, rule, plugin, settings, payload,
                                                created_at, next_attempt_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)
                     ON CONFLICT (firing_id, action) DO NOTHING",
                )
                .await?;
            for d in &e.deliveries {
                queued += tx
                    .execute(
                        &insert,
                        &[&d.firing_id, &d.action, &d.project_id.0, &d.group_id.0, &d.rule, &d.plugin, &d.settings, &d.payload, &now, &d.expires_at],
                    )
                    .await?;
            }
            for (rule, group) in &e.fired {
                tx.execute(
                    "INSERT INTO notify_throttle (rule, group_id, last_fired_at) VALUES ($1, $2, $3)
                     ON CONFLICT (rule, group_id) DO UPDATE SET last_fired_at = excluded.last_fired_at",
                    &[rule, &group.0, &now],
                )
                .await?;
            }
            if let Some((name, pos)) = &e.cursor {
                tx.execute(
                    "INSERT INTO notify_cursors AS c (name, position) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET position = GREATEST(c.position, excluded.position)",
                    &[name, pos],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(queued as usize)
        })
    }

    fn claim_deliveries(&self, claimer: &str, now: f64, lease_secs: f64, limit: usize) -> Result<Vec<Delivery>> {
        self.with(async |c| {
            let rows = c
                .query(
                    &format!(
                        "UPDATE notify_outbox SET claimed_by = $1, claimed_until = $2 + $3
                         WHERE id IN (SELECT id FROM notify_outbox
                                      WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 AND expires_at > $2
                                        AND (claimed_until IS NULL OR claimed_until <= $2)
                                      ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
                         RETURNING {DELIVERY_COLUMNS}"
                    ),
                    &[&claimer, &now, &lease_secs, &(limit as i64)],
                )
                .await?;
            let mut out: Vec<Delivery> = rows.iter().map(delivery_from).collect();
            out.sort_by(|a, b| a.next_attempt_at.total_cmp(&b.next_attempt_at).then(a.id.cmp(&b.id)));
            Ok(out)
        })
    }

    fn next_delivery_at(&self) -> Result<Option<f64>> {
        self.with(async |c| {
            Ok(c.query_one(
                "SELECT MIN(GREATEST(next_attempt_at, COALESCE(claimed_until, 0))) FROM notify_outbox WHERE delivered_at IS NULL AND failed_at IS NULL",
                &[],
            )
            .await?
            .get(0))
        })
    }

    fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>> {
        self.with(async |c| {
            Ok(c.query(&format!("SELECT {DELIVERY_COLUMNS} FROM notify_outbox ORDER BY id DESC LIMIT $1"), &[&(limit as i64)])
                .await?
                .iter()
                .map(delivery_from)
                .collect())
        })
    }

    fn delivery_done(&self, id: i64) -> Result<()> {
        self.with(async |c| {
            c.execute(
                "UPDATE notify_outbox SET attempts = attempts + 1, delivered_at = $2, last_error = NULL,
                        claimed_by = NULL, claimed_until = NULL WHERE id = $1",
                &[&id, &crate::now()],
            )
            .await?;
            Ok(())
        })
    }

    fn delivery_failed(&self, id: i64, error: &str, retry_at: Option<f64>) -> Result<()> {
        self.with(async |c| {
            match retry_at {
                Some(at) => {
                    c.execute(
                        "UPDATE notify_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3,
                                claimed_by = NULL, claimed_until = NULL WHERE id = $1",
                        &[&id, &error, &at],
                    )
                    .await?
                }
                None => {
                    c.execute(
                        "UPDATE notify_outbox SET attempts = attempts + 1, last_error = $2, failed_at = $3,
                                claimed_by = NULL, claimed_until = NULL WHERE id = $1",
                        &[&id, &error, &crate::now()],
                    )
                    .await?
                }
            };
            Ok(())
        })
    }

    fn expire_deliveries(&self, now: f64) -> Result<usize> {
        self.with(async |c| {
            let n = c
                .execute(
                    "UPDATE notify_outbox SET failed_at = $1,
                            last_error = 'expired: not delivered in time' || COALESCE(' (last error: ' || last_error || ')', '')
                     WHERE delivered_at IS NULL AND failed_at IS NULL AND expires_at <= $1",
                    &[&now],
                )
                .await?;
            Ok(n as usize)
        })
    }

    fn resume_deliveries(&self, now: f64) -> Result<usize> {
        self.with(async |c| {
            let n = c
                .execute(
                    "UPDATE notify_outbox SET next_attempt_at = $1
                     WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at > $1
                       AND (claimed_until IS NULL OR claimed_until <= $1)",
                    &[&now],
                )
                .await?;
            Ok(n as usize)
        })
    }
}
