//! Ownership rules on PostgreSQL: a project's rules text, and assignments made by a rule.

use super::PgStore;
use crate::{now, Assignee, GroupId, ProjectId, Result, StoreError};

impl crate::Ownership for PgStore {
    fn ownership_rules(&self, project: ProjectId) -> Result<Option<String>> {
        self.with(async |c| {
            let row = c.query_opt("SELECT rules FROM ownership_rules WHERE project_id = $1", &[&project.0]).await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn set_ownership_rules(&self, project: ProjectId, text: &str) -> Result<()> {
        self.with(async |c| {
            let n = c
                .execute(
                    "INSERT INTO ownership_rules (project_id, rules, updated_at)
                     SELECT id, $2, $3 FROM projects WHERE id = $1 AND deleted_at IS NULL
                     ON CONFLICT (project_id) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at",
                    &[&project.0, &text, &now()],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("project {project}")));
            }
            Ok(())
        })
    }

    fn assign_by_rule(&self, group: GroupId, to: Assignee, rule: &str) -> Result<bool> {
        let (user, team) = match to {
            Assignee::User(u) => (Some(u.0), None),
            Assignee::Team(t) => (None, Some(t.0)),
        };
        self.with(async |c| {
            let tx = c.transaction().await?;
            let changed = tx
                .execute(
                    "UPDATE groups SET assigned_user = $2, assigned_team = $3 WHERE id = $1 AND assigned_user IS NULL AND assigned_team IS NULL",
                    &[&group.0, &user, &team],
                )
                .await?;
            if changed == 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO group_activity (group_id, kind, at, data) VALUES ($1, $2, $3,
                    json_build_object('to', COALESCE((SELECT email FROM users WHERE id = $4), (SELECT '#' || slug FROM teams WHERE id = $5)), 'user', $4::bigint, 'team', $5::bigint, 'rule', $6::text)::text)",
                &[&group.0, &crate::ACTIVITY_ASSIGNED, &now(), &user, &team, &rule],
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}
