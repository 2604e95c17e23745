//! User feedback in PostgreSQL: written by the writer in the batch's transaction, read per
//! project and per issue.

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

use super::PgStore;
use crate::{ClientReportSum, EventId, FeedbackRow, GroupId, NewClientReport, NewFeedback, ProjectId, Result};

/// Inserts feedback (one already stored for its project is left as it is), with the issue of
/// its event when that event is stored.
pub(super) async fn write(tx: &Transaction<'_>, feedback: &[NewFeedback]) -> Result<()> {
    for f in feedback {
        let group_id: Option<i64> = match f.event_id {
            Some(e) => tx
                .query_opt(
                    "SELECT e.group_id FROM events e JOIN event_ids i ON i.project_id = e.project_id AND i.event_id = e.event_id
                     AND i.received = e.received WHERE i.project_id = $1 AND i.event_id = $2",
                    &[&f.project_id.0, &&e.0[..]],
                )
                .await?
                .map(|r| r.get(0)),
            None => None,
        };
        tx.execute(
            "INSERT INTO feedback (project_id, feedback_id, event_id, group_id, name, email, message, url, timestamp, received)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (project_id, feedback_id) DO NOTHING",
            &[
                &f.project_id.0,
                &&f.feedback_id.0[..],
                &f.event_id.as_ref().map(|e| e.0.to_vec()),
                &group_id,
                &f.name,
                &f.email,
                &f.message,
                &f.url,
                &f.timestamp,
                &f.received,
            ],
        )
        .await?;
    }
    Ok(())
}

/// Adds client reports to their project's sums (keys sorted, so that two writers lock rows in
/// one order).
pub(super) async fn write_client_reports(tx: &Transaction<'_>, reports: &[NewClientReport]) -> Result<()> {
    let mut sums: std::collections::BTreeMap<(i64, &str, &str), i64> = std::collections::BTreeMap::new();
    for r in reports {
        *sums.entry((r.project_id.0, r.reason.as_str(), r.category.as_str())).or_insert(0) += r.quantity.min(i64::MAX as u64) as i64;
    }
    for ((project, reason, category), n) in sums {
        tx.execute(
            "INSERT INTO client_reports AS c (project_id, reason, category, quantity) VALUES ($1, $2, $3, $4)
             ON CONFLICT (project_id, reason, category) DO UPDATE SET quantity = c.quantity + excluded.quantity",
            &[&project, &reason, &category, &n],
        )
        .await?;
    }
    Ok(())
}

const COLUMNS: &str =
    "f.id, f.project_id, f.feedback_id, f.event_id, COALESCE(f.group_id, e.group_id), f.name, f.email, f.message, f.url, f.timestamp";

fn row(r: &Row) -> FeedbackRow {
    let id = |b: Vec<u8>| b.try_into().map(|a: [u8; 16]| EventId(a).to_string()).unwrap_or_default();
    FeedbackRow {
        id: r.get(0),
        project_id: ProjectId(r.get(1)),
        feedback_id: id(r.get(2)),
        event_id: r.get::<_, Option<Vec<u8>>>(3).map(id),
        group_id: r.get::<_, Option<i64>>(4).map(GroupId),
        name: r.get(5),
        email: r.get(6),
        message: r.get(7),
        url: r.get(8),
        timestamp: r.get(9),
    }
}

impl crate::Feedback for PgStore {
    fn client_reports(&self, project: ProjectId) -> Result<Vec<ClientReportSum>> {
        self.with(async |c| {
            let rows = c
                .query(
                    "SELECT reason, category, quantity FROM client_reports WHERE project_id = $1 ORDER BY quantity DESC, reason, category",
                    &[&project.0],
                )
                .await?;
            Ok(rows.iter().map(|r| ClientReportSum { reason: r.get(0), category: r.get(1), quantity: r.get::<_, i64>(2).max(0) as u64 }).collect())
        })
    }

    fn feedback(&self, project: ProjectId, limit: usize) -> Result<Vec<FeedbackRow>> {
        self.with(async |c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM feedback f
                         LEFT JOIN events e ON f.group_id IS NULL AND e.project_id = f.project_id AND e.event_id = f.event_id
                         WHERE f.project_id = $1 ORDER BY f.timestamp DESC, f.id DESC LIMIT $2"
                    ),
                    &[&project.0, &(limit as i64)],
                )
                .await?;
            Ok(rows.iter().map(row).collect())
        })
    }

    fn group_feedback(&self, group: GroupId, limit: usize) -> Result<Vec<FeedbackRow>> {
        self.with(async |c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM feedback f LEFT JOIN events e ON e.project_id = f.project_id AND e.event_id = f.event_id
                         WHERE f.group_id = $1 OR (f.group_id IS NULL AND f.event_id IS NOT NULL AND e.group_id = $1)
                         ORDER BY f.timestamp DESC, f.id DESC LIMIT $2"
                    ),
                    &[&group.0, &(limit as i64)],
                )
                .await?;
            Ok(rows.iter().map(row).collect())
        })
    }
}
