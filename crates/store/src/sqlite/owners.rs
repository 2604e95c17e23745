//! Ownership rules on SQLite: a project's rules text, and assignments made by a rule.

use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::{now, Assignee, GroupId, ProjectId, Result, StoreError};

impl crate::Ownership for SqliteStore {
    fn ownership_rules(&self, project: ProjectId) -> Result<Option<String>> {
        let conn = self.conn()?;
        Ok(conn.query_row("SELECT rules FROM ownership_rules WHERE project_id = ?1", [project.0], |r| r.get(0)).optional()?)
    }

    fn set_ownership_rules(&self, project: ProjectId, text: &str) -> Result<()> {
        let conn = self.conn()?;
        let exists: bool = conn.query_row("SELECT EXISTS(SELECT 1 FROM projects WHERE id = ?1 AND deleted_at IS NULL)", [project.0], |r| r.get(0))?;
        if !exists {
            return Err(StoreError::NotFound(format!("project {project}")));
        }
        conn.execute(
            "INSERT INTO ownership_rules (project_id, rules, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (project_id) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at",
            params![project.0, text, now()],
        )?;
        Ok(())
    }

    fn assign_by_rule(&self, group: GroupId, to: Assignee, rule: &str) -> Result<bool> {
        let (user, team) = match to {
            Assignee::User(u) => (Some(u.0), None),
            Assignee::Team(t) => (None, Some(t.0)),
        };
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE groups SET assigned_user = ?2, assigned_team = ?3 WHERE id = ?1 AND assigned_user IS NULL AND assigned_team IS NULL",
            params![group.0, user, team],
        )?;
        if changed == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO group_activity (group_id, kind, at, data) VALUES (?1, ?2, ?3,
                json_object('to', COALESCE((SELECT email FROM users WHERE id = ?4), (SELECT '#' || slug FROM teams WHERE id = ?5)), 'user', ?4, 'team', ?5, 'rule', ?6))",
            params![group.0, crate::ACTIVITY_ASSIGNED, now(), user, team, rule],
        )?;
        tx.commit()?;
        Ok(true)
    }
}
