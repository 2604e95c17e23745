//! User feedback and client reports in SQLite: written by the writer in the batch's
//! transaction; feedback read per project and per issue, client reports summed per project.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::{ClientReportSum, EventId, FeedbackRow, GroupId, NewClientReport, NewFeedback, ProjectId, Result};

/// Inserts feedback (one already stored for its project is left as it is), with the issue of
/// its event when that event is stored.
pub(super) fn write(tx: &Connection, feedback: &[NewFeedback]) -> rusqlite::Result<()> {
    if feedback.is_empty() {
        return Ok(());
    }
    let mut group = tx.prepare_cached("SELECT group_id FROM events WHERE project_id = ?1 AND event_id = ?2")?;
    let mut ins = tx.prepare_cached(
        "INSERT INTO feedback (project_id, feedback_id, event_id, group_id, name, email, message, url, timestamp, received)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (project_id, feedback_id) DO NOTHING",
    )?;
    for f in feedback {
        let group_id: Option<i64> = match f.event_id {
            Some(e) => group.query_row(params![f.project_id.0, &e.0[..]], |r| r.get(0)).optional()?,
            None => None,
        };
        ins.execute(params![
            f.project_id.0,
            &f.feedback_id.0[..],
            f.event_id.as_ref().map(|e| e.0.to_vec()),
            group_id,
            f.name,
            f.email,
            f.message,
            f.url,
            f.timestamp,
            f.received,
        ])?;
    }
    Ok(())
}

/// Adds client reports to their project's sums.
pub(super) fn write_client_reports(tx: &Connection, reports: &[NewClientReport]) -> rusqlite::Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO client_reports (project_id, reason, category, quantity) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project_id, reason, category) DO UPDATE SET quantity = quantity + excluded.quantity",
    )?;
    for r in reports {
        st.execute(params![r.project_id.0, r.reason, r.category, r.quantity.min(i64::MAX as u64) as i64])?;
    }
    Ok(())
}

const COLUMNS: &str = "f.id, f.project_id, f.feedback_id, f.event_id, COALESCE(f.group_id, e.group_id), f.name, f.email, f.message, f.url, f.timestamp";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FeedbackRow> {
    let id = |b: Vec<u8>| b.try_into().map(|a: [u8; 16]| EventId(a).to_string()).unwrap_or_default();
    Ok(FeedbackRow {
        id: r.get(0)?,
        project_id: ProjectId(r.get(1)?),
        feedback_id: id(r.get(2)?),
        event_id: r.get::<_, Option<Vec<u8>>>(3)?.map(id),
        group_id: r.get::<_, Option<i64>>(4)?.map(GroupId),
        name: r.get(5)?,
        email: r.get(6)?,
        message: r.get(7)?,
        url: r.get(8)?,
        timestamp: r.get(9)?,
    })
}

impl crate::Feedback for SqliteStore {
    fn feedback(&self, project: ProjectId, limit: usize) -> Result<Vec<FeedbackRow>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM feedback f LEFT JOIN events e ON f.group_id IS NULL AND e.project_id = f.project_id AND e.event_id = f.event_id
             WHERE f.project_id = ?1 ORDER BY f.timestamp DESC, f.id DESC LIMIT ?2"
        ))?;
        let rows = st.query_map(params![project.0, limit as i64], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn group_feedback(&self, group: GroupId, limit: usize) -> Result<Vec<FeedbackRow>> {
        let conn = self.conn()?;
        // Stored with its issue, or about an event of the issue that came after it.
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM feedback f LEFT JOIN events e ON e.project_id = f.project_id AND e.event_id = f.event_id
             WHERE f.group_id = ?1
                OR (f.group_id IS NULL AND f.event_id IS NOT NULL AND e.group_id = ?1)
             ORDER BY f.timestamp DESC, f.id DESC LIMIT ?2"
        ))?;
        let rows = st.query_map(params![group.0, limit as i64], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn client_reports(&self, project: ProjectId) -> Result<Vec<ClientReportSum>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT reason, category, quantity FROM client_reports WHERE project_id = ?1 ORDER BY quantity DESC, reason, category",
        )?;
        let rows = st
            .query_map(params![project.0], |r| {
                Ok(ClientReportSum { reason: r.get(0)?, category: r.get(1)?, quantity: r.get::<_, i64>(2)?.max(0) as u64 })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}
