//! Projects, client keys and group status: the rare writes that go straight to the database
//! (not through the event writer), each in its own short transaction.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::PgStore;
use crate::{
    ACTIVITY_IGNORED, ACTIVITY_REOPENED, ACTIVITY_RESOLVED, ClientKey, GroupId, GroupStatus, OrgId, Project, ProjectId, Result,
    StoreError, TeamId, checks, now,
};

pub(super) const PROJECT_COLUMNS: &str = "id, slug, name, created_at, org_id";
const KEY_COLUMNS: &str = "public_key, project_id, label, rate_limit_per_minute, created_at, revoked_at";

pub(super) fn project_from(r: &Row) -> Project {
    Project { id: ProjectId(r.get(0)), slug: r.get(1), name: r.get(2), created_at: r.get(3), org_id: OrgId(r.get(4)) }
}

fn key_from(r: &Row) -> ClientKey {
    ClientKey {
        public_key: r.get(0),
        project_id: ProjectId(r.get(1)),
        label: r.get(2),
        rate_limit_per_minute: r.get::<_, Option<i64>>(3).map(|v| v.max(0) as u64),
        created_at: r.get(4),
        revoked_at: r.get(5),
    }
}

impl crate::Admin for PgStore {
    fn create_project(&self, name: &str) -> Result<(Project, ClientKey)> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            let team = tx
                .query_opt("SELECT id FROM teams ORDER BY org_id, id LIMIT 1", &[])
                .await?
                .ok_or_else(|| StoreError::NotFound("an organisation with a team".into()))?;
            let made = insert_project(&tx, TeamId(team.get(0)), name).await?;
            tx.commit().await?;
            Ok(made)
        })
    }

    fn projects(&self) -> Result<Vec<Project>> {
        self.with(async |c| Ok(c.query(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE deleted_at IS NULL ORDER BY id"), &[]).await?.iter().map(project_from).collect()))
    }

    fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        self.with(async |c| {
            Ok(c.query_opt(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1 AND deleted_at IS NULL"), &[&id.0]).await?.as_ref().map(project_from))
        })
    }

    fn project_by_slug(&self, slug: &str) -> Result<Option<Project>> {
        self.with(async |c| {
            Ok(c.query_opt(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE slug = $1 AND deleted_at IS NULL"), &[&slug]).await?.as_ref().map(project_from))
        })
    }

    fn rename_project(&self, id: ProjectId, name: &str) -> Result<()> {
        let name = checks::project_name(name)?;
        if name.is_empty() {
            return Err(StoreError::Invalid("a project needs a name".into()));
        }
        self.with(async |c| {
            if c.execute("UPDATE projects SET name = $2 WHERE id = $1", &[&id.0, &name]).await? == 0 {
                return Err(StoreError::NotFound(format!("project {id}")));
            }
            Ok(())
        })
    }

    fn create_key(&self, project_id: ProjectId, label: Option<&str>, rate_limit_per_minute: Option<u64>) -> Result<ClientKey> {
        self.with(async |c| insert_key(&*c, project_id, label, rate_limit_per_minute).await)
    }

    fn keys(&self, project_id: ProjectId) -> Result<Vec<ClientKey>> {
        self.with(async |c| {
            let rows = c
                .query(&format!("SELECT {KEY_COLUMNS} FROM project_keys WHERE project_id = $1 ORDER BY created_at, public_key"), &[&project_id.0])
                .await?;
            Ok(rows.iter().map(key_from).collect())
        })
    }

    fn key(&self, public_key: &str) -> Result<Option<ClientKey>> {
        self.with(async |c| {
            Ok(c.query_opt(&format!("SELECT {KEY_COLUMNS} FROM project_keys WHERE public_key = $1"), &[&public_key]).await?.as_ref().map(key_from))
        })
    }

    fn revoke_key(&self, public_key: &str) -> Result<bool> {
        self.with(async |c| {
            let n = c
                .execute("UPDATE project_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE public_key = $1", &[&public_key, &now()])
                .await?;
            Ok(n > 0)
        })
    }

    fn delete_project(&self, id: ProjectId) -> Result<()> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            let t = now();
            let n = tx
                .execute(
                    "UPDATE projects SET deleted_at = $2, slug = slug || '~deleted-' || id WHERE id = $1 AND deleted_at IS NULL",
                    &[&id.0, &t],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("project {id}")));
            }
            tx.execute("UPDATE project_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE project_id = $1", &[&id.0, &t]).await?;
            tx.execute("DELETE FROM project_teams WHERE project_id = $1", &[&id.0]).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn purge_deleted_projects(&self, limit: usize) -> Result<u64> {
        let found: Vec<(GroupId, i64)> = self.with(async |c| {
            let rows = c
                .query(
                    "SELECT g.id, g.project_id FROM groups g JOIN projects p ON p.id = g.project_id WHERE p.deleted_at IS NOT NULL LIMIT $1",
                    &[&(limit as i64)],
                )
                .await?;
            Ok(rows.iter().map(|r| (GroupId(r.get(0)), r.get(1))).collect())
        })?;
        let ids: Vec<GroupId> = found.iter().map(|(g, _)| *g).collect();
        for chunk in ids.chunks(crate::triage::BULK_CHUNK) {
            crate::Triage::delete_groups(self, chunk)?;
        }
        let projects: Vec<i64> = found.iter().map(|(_, p)| *p).collect();
        self.with(async |c| {
            if !projects.is_empty() {
                // Issues came back (events still in the spool when it was deleted): its other
                // rows are to be deleted again.
                c.execute("UPDATE projects SET purged_at = NULL WHERE id = ANY($1)", &[&projects]).await?;
                return Ok(());
            }
            let pending: bool = c.query_one("SELECT EXISTS (SELECT 1 FROM projects WHERE deleted_at IS NOT NULL AND purged_at IS NULL)", &[]).await?.get(0);
            if pending {
                let tx = c.transaction().await?;
                for table in crate::api::PROJECT_DATA {
                    tx.execute(&format!("DELETE FROM {table} WHERE project_id IN (SELECT id FROM projects WHERE deleted_at IS NOT NULL AND purged_at IS NULL)"), &[]).await?;
                }
                tx.execute("UPDATE projects SET purged_at = $1 WHERE deleted_at IS NOT NULL AND purged_at IS NULL", &[&now()]).await?;
                tx.commit().await?;
            }
            Ok(())
        })?;
        Ok(ids.len() as u64)
    }

    fn set_group_status(&self, group_id: GroupId, status: GroupStatus) -> Result<()> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            let t = now();
            let n = tx
                .execute(
                    "UPDATE groups SET status = $2::bigint, resolved_at = CASE WHEN $2::bigint = 1 THEN $3::float8 ELSE NULL END WHERE id = $1",
                    &[&group_id.0, &status.code(), &t],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("group {group_id}")));
            }
            let kind = match status {
                GroupStatus::Resolved => ACTIVITY_RESOLVED,
                GroupStatus::Ignored => ACTIVITY_IGNORED,
                GroupStatus::Unresolved => ACTIVITY_REOPENED,
            };
            tx.execute("INSERT INTO group_activity (group_id, kind, at) VALUES ($1, $2, $3)", &[&group_id.0, &kind, &t]).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn assign_group_by(&self, group_id: GroupId, to: Option<crate::Assignee>, actor: Option<crate::UserId>) -> Result<bool> {
        let (user, team) = match to {
            Some(crate::Assignee::User(u)) => (Some(u.0), None),
            Some(crate::Assignee::Team(t)) => (None, Some(t.0)),
            None => (None, None),
        };
        self.with(async |c| {
            let tx = c.transaction().await?;
            // Locks the row: two assignments at once are recorded one after the other.
            tx.execute("SELECT 1 FROM groups WHERE id = $1 FOR UPDATE", &[&group_id.0]).await?;
            if super::read::assignee_on(&tx, group_id.0).await?.1 == to {
                return Ok(false);
            }
            tx.execute("UPDATE groups SET assigned_user = $2, assigned_team = $3 WHERE id = $1", &[&group_id.0, &user, &team]).await?;
            let kind = if to.is_some() { crate::ACTIVITY_ASSIGNED } else { crate::ACTIVITY_UNASSIGNED };
            // To whom, as people read it (an email or #team), and by id.
            let actor = actor.map(|a| a.0);
            tx.execute(
                "INSERT INTO group_activity (group_id, kind, at, actor, data) VALUES ($1, $2, $3, $6,
                    json_build_object('to', COALESCE((SELECT email FROM users WHERE id = $4), (SELECT '#' || slug FROM teams WHERE id = $5)), 'user', $4::bigint, 'team', $5::bigint)::text)",
                &[&group_id.0, &kind, &now(), &user, &team, &actor],
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}

/// Inserts a project of `team`'s organisation, belonging to `team`, with its first key, in
/// the caller's transaction.
pub(super) async fn insert_project(tx: &impl GenericClient, team: TeamId, name: &str) -> Result<(Project, ClientKey)> {
    let slug = checks::project_slug(name)?;
    let org: i64 = tx
        .query_opt("SELECT org_id FROM teams WHERE id = $1", &[&team.0])
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("team {team}")))?
        .get(0);
    let t = now();
    let row = tx
        .query_one(
            "INSERT INTO projects (slug, name, created_at, org_id) VALUES ($1, $2, $3, $4) RETURNING id",
            &[&slug, &name.trim(), &t, &org],
        )
        .await
        .map_err(|e| super::taken(e, format!("a project named \"{slug}\" already exists")))?;
    let id = ProjectId(row.get(0));
    tx.execute("INSERT INTO project_teams (project_id, team_id) VALUES ($1, $2)", &[&id.0, &team.0]).await?;
    let key = insert_key(tx, id, Some("Default"), None).await?;
    Ok((Project { id, slug, name: name.trim().to_string(), created_at: t, org_id: OrgId(org) }, key))
}

async fn insert_key(c: &impl GenericClient, project_id: ProjectId, label: Option<&str>, rate: Option<u64>) -> Result<ClientKey> {
    let key = ClientKey {
        public_key: protocol::PublicKey::new_random().0,
        project_id,
        label: label.map(str::to_string),
        rate_limit_per_minute: rate,
        created_at: now(),
        revoked_at: None,
    };
    c.execute(
        &format!("INSERT INTO project_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL)"),
        &[&key.public_key, &project_id.0, &key.label, &rate.map(|r| r as i64), &key.created_at],
    )
    .await
    .map_err(|e| match super::classify(e) {
        StoreError::Conflict(_) => StoreError::NotFound(format!("project {project_id}")),
        e => e,
    })?;
    Ok(key)
}
