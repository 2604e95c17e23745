//! Projects, client keys and group status: the rare writes that go straight to the database
//! (not through the event writer), each in its own short transaction.

use rusqlite::{params, OptionalExtension, Row};

use super::SqliteStore;
use crate::checks;
use crate::{now, OrgId, TeamId, ClientKey, GroupId, GroupStatus, Project, ProjectId, Result, StoreError, ACTIVITY_IGNORED, ACTIVITY_REOPENED, ACTIVITY_RESOLVED};

pub(super) fn project_from(r: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project { id: ProjectId(r.get(0)?), slug: r.get(1)?, name: r.get(2)?, created_at: r.get(3)?, org_id: OrgId(r.get(4)?) })
}

pub(super) const PROJECT_COLUMNS: &str = "id, slug, name, created_at, org_id";

fn key_from(r: &Row<'_>) -> rusqlite::Result<ClientKey> {
    Ok(ClientKey {
        public_key: r.get(0)?,
        project_id: ProjectId(r.get(1)?),
        label: r.get(2)?,
        rate_limit_per_minute: r.get::<_, Option<i64>>(3)?.map(|v| v.max(0) as u64),
        created_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

const KEY_COLUMNS: &str = "public_key, project_id, label, rate_limit_per_minute, created_at, revoked_at";

impl crate::Admin for SqliteStore {
    /// Creates a project and its first client key, in the first organisation's first team.
    fn create_project(&self, name: &str) -> Result<(Project, ClientKey)> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let team: i64 = tx
            .query_row("SELECT t.id FROM teams t ORDER BY t.org_id, t.id LIMIT 1", [], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound("an organisation with a team".into()))?;
        let made = insert_project(&tx, TeamId(team), name)?;
        tx.commit()?;
        Ok(made)
    }

    fn projects(&self) -> Result<Vec<Project>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE deleted_at IS NULL ORDER BY id"))?;
        let rows = st.query_map([], project_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1 AND deleted_at IS NULL"))?;
        Ok(st.query_row([id.0], project_from).optional()?)
    }

    fn project_by_slug(&self, slug: &str) -> Result<Option<Project>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE slug = ?1 AND deleted_at IS NULL"))?;
        Ok(st.query_row([slug], project_from).optional()?)
    }

    /// Gives a project a new display name (its slug, and so its URLs, stay the same).
    fn rename_project(&self, id: ProjectId, name: &str) -> Result<()> {
        let name = checks::project_name(name)?;
        if name.is_empty() {
            return Err(StoreError::Invalid("a project needs a name".into()));
        }
        let conn = self.conn()?;
        if conn.execute("UPDATE projects SET name = ?2 WHERE id = ?1", params![id.0, name])? == 0 {
            return Err(StoreError::NotFound(format!("project {id}")));
        }
        Ok(())
    }

    /// Adds a client key to a project.
    fn create_key(&self, project_id: ProjectId, label: Option<&str>, rate_limit_per_minute: Option<u64>) -> Result<ClientKey> {
        let conn = self.conn()?;
        insert_key(&conn, project_id, label, rate_limit_per_minute)
    }

    /// The keys of a project, oldest first, revoked ones included.
    fn keys(&self, project_id: ProjectId) -> Result<Vec<ClientKey>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM project_keys WHERE project_id = ?1 ORDER BY created_at, public_key"
        ))?;
        let rows = st.query_map([project_id.0], key_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn key(&self, public_key: &str) -> Result<Option<ClientKey>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM project_keys WHERE public_key = ?1"))?;
        Ok(st.query_row([public_key], key_from).optional()?)
    }

    /// Revokes a key: from then on it is refused. Returns false when no such key exists.
    fn revoke_key(&self, public_key: &str) -> Result<bool> {
        let conn = self.conn()?;
        let n = conn.execute(
            "UPDATE project_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE public_key = ?1",
            params![public_key, now()],
        )?;
        Ok(n > 0)
    }

    fn delete_project(&self, id: ProjectId) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        let n = tx.execute(
            "UPDATE projects SET deleted_at = ?2, slug = slug || '~deleted-' || id WHERE id = ?1 AND deleted_at IS NULL",
            params![id.0, t],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("project {id}")));
        }
        tx.execute("UPDATE project_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE project_id = ?1", params![id.0, t])?;
        tx.execute("DELETE FROM project_teams WHERE project_id = ?1", [id.0])?;
        tx.commit()?;
        Ok(())
    }

    fn purge_deleted_projects(&self, limit: usize) -> Result<u64> {
        let found: Vec<(GroupId, i64)> = {
            let conn = self.conn()?;
            let mut st = conn.prepare_cached(
                "SELECT g.id, g.project_id FROM groups g JOIN projects p ON p.id = g.project_id WHERE p.deleted_at IS NOT NULL LIMIT ?1",
            )?;
            st.query_map([limit as i64], |r| Ok((GroupId(r.get(0)?), r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let ids: Vec<GroupId> = found.iter().map(|(g, _)| *g).collect();
        for chunk in ids.chunks(crate::triage::BULK_CHUNK) {
            crate::Triage::delete_groups(self, chunk)?;
        }
        let mut conn = self.conn()?;
        if !found.is_empty() {
            // Issues came back (events still in the spool when it was deleted): its other rows
            // are to be deleted again.
            let mut st = conn.prepare_cached("UPDATE projects SET purged_at = NULL WHERE id = ?1")?;
            for (_, p) in &found {
                st.execute([p])?;
            }
            return Ok(ids.len() as u64);
        }
        let pending: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM projects WHERE deleted_at IS NOT NULL AND purged_at IS NULL)", [], |r| r.get(0))?;
        if pending {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for table in crate::api::PROJECT_DATA {
                tx.execute(&format!("DELETE FROM {table} WHERE project_id IN (SELECT id FROM projects WHERE deleted_at IS NOT NULL AND purged_at IS NULL)"), [])?;
            }
            tx.execute("UPDATE projects SET purged_at = ?1 WHERE deleted_at IS NOT NULL AND purged_at IS NULL", [now()])?;
            tx.commit()?;
        }
        Ok(0)
    }

    /// Resolves, ignores or reopens a group, and records it in the group's activity.
    fn set_group_status(&self, group_id: GroupId, status: GroupStatus) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        let n = tx.execute(
            "UPDATE groups SET status = ?2, resolved_at = CASE WHEN ?2 = 1 THEN ?3 ELSE NULL END WHERE id = ?1",
            params![group_id.0, status.code(), t],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("group {group_id}")));
        }
        let kind = match status {
            GroupStatus::Resolved => ACTIVITY_RESOLVED,
            GroupStatus::Ignored => ACTIVITY_IGNORED,
            GroupStatus::Unresolved => ACTIVITY_REOPENED,
        };
        tx.execute("INSERT INTO group_activity (group_id, kind, at) VALUES (?1, ?2, ?3)", params![group_id.0, kind, t])?;
        tx.commit()?;
        Ok(())
    }
    fn assign_group_by(&self, group_id: GroupId, to: Option<crate::Assignee>, actor: Option<crate::UserId>) -> Result<bool> {
        let (user, team) = match to {
            Some(crate::Assignee::User(u)) => (Some(u.0), None),
            Some(crate::Assignee::Team(t)) => (None, Some(t.0)),
            None => (None, None),
        };
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if super::read::assignee_on(&tx, group_id.0)?.1 == to {
            return Ok(false);
        }
        tx.execute("UPDATE groups SET assigned_user = ?2, assigned_team = ?3 WHERE id = ?1", params![group_id.0, user, team])?;
        let kind = if to.is_some() { crate::ACTIVITY_ASSIGNED } else { crate::ACTIVITY_UNASSIGNED };
        // To whom, as people read it (an email or #team), and by id.
        tx.execute(
            "INSERT INTO group_activity (group_id, kind, at, actor, data) VALUES (?1, ?2, ?3, ?6,
                json_object('to', COALESCE((SELECT email FROM users WHERE id = ?4), (SELECT '#' || slug FROM teams WHERE id = ?5)), 'user', ?4, 'team', ?5))",
            params![group_id.0, kind, now(), user, team, actor.map(|a| a.0)],
        )?;
        tx.commit()?;
        Ok(true)
    }

}

/// Inserts a project of `team`'s organisation, belonging to `team`, with its first key, in
/// the caller's transaction.
pub(super) fn insert_project(tx: &rusqlite::Transaction<'_>, team: TeamId, name: &str) -> Result<(Project, ClientKey)> {
    let slug = checks::project_slug(name)?;
    let org: i64 = tx
        .query_row("SELECT org_id FROM teams WHERE id = ?1", [team.0], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("team {team}")))?;
    let exists: bool = tx.query_row("SELECT EXISTS(SELECT 1 FROM projects WHERE slug = ?1)", [&slug], |r| r.get(0))?;
    if exists {
        return Err(StoreError::Conflict(format!("a project named \"{slug}\" already exists")));
    }
    let t = now();
    tx.execute(
        "INSERT INTO projects (slug, name, created_at, org_id) VALUES (?1, ?2, ?3, ?4)",
        params![slug, name.trim(), t, org],
    )?;
    let id = ProjectId(tx.last_insert_rowid());
    tx.execute("INSERT INTO project_teams (project_id, team_id) VALUES (?1, ?2)", params![id.0, team.0])?;
    let key = insert_key(tx, id, Some("Default"), None)?;
    Ok((Project { id, slug, name: name.trim().to_string(), created_at: t, org_id: OrgId(org) }, key))
}

fn insert_key(conn: &rusqlite::Connection, project_id: ProjectId, label: Option<&str>, rate: Option<u64>) -> Result<ClientKey> {
    let key = ClientKey {
        public_key: protocol::PublicKey::new_random().0,
        project_id,
        label: label.map(str::to_string),
        rate_limit_per_minute: rate,
        created_at: now(),
        revoked_at: None,
    };
    conn.execute(
        &format!("INSERT INTO project_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, NULL)"),
        params![key.public_key, project_id.0, key.label, rate.map(|r| r as i64), key.created_at],
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::NotFound(format!("project {project_id}"))
        }
        e => e.into(),
    })?;
    Ok(key)
}
