//! Organisations, teams, members and their roles, API tokens, invitation links and the audit
//! log. Secrets (tokens, invitation links) arrive hashed.

use rusqlite::{params, OptionalExtension, Row};

use super::admin::{insert_project, project_from, PROJECT_COLUMNS};
use crate::checks;
use super::SqliteStore;
use crate::{
    now, ApiToken, AuditEntry, ClientKey, Invitation, Member, Membership, NewToken, OrgId, Organization, Project, ProjectId, Result,
    Role, SsoConfig, StoreError, Team, TeamId, TokenId, User, UserId,
};

const ORG_COLUMNS: &str = "o.id, o.slug, o.name, o.created_at";
const TOKEN_COLUMNS: &str = "id, name, org_id, user_id, scopes, created_at, last_used_at, revoked_at";

fn org_from(r: &Row<'_>) -> rusqlite::Result<Organization> {
    Ok(Organization { id: OrgId(r.get(0)?), slug: r.get(1)?, name: r.get(2)?, created_at: r.get(3)? })
}

fn team_from(r: &Row<'_>) -> rusqlite::Result<Team> {
    Ok(Team { id: TeamId(r.get(0)?), org_id: OrgId(r.get(1)?), slug: r.get(2)?, name: r.get(3)? })
}

fn token_from(r: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: TokenId(r.get(0)?),
        name: r.get(1)?,
        org_id: OrgId(r.get(2)?),
        user_id: r.get::<_, Option<i64>>(3)?.map(UserId),
        scopes: r.get::<_, String>(4)?.split_whitespace().map(str::to_string).collect(),
        created_at: r.get(5)?,
        last_used_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

/// A stored role name; anything unknown reads as the weakest role.
fn role_of(name: &str) -> Role {
    Role::parse(name).unwrap_or(Role::Member)
}

trait IntoNotFound {
    /// A broken constraint here means the organisation does not exist.
    fn into_not_found(self) -> StoreError;
}

impl IntoNotFound for StoreError {
    fn into_not_found(self) -> StoreError {
        match self {
            StoreError::Conflict(what) => StoreError::NotFound(what),
            e => e,
        }
    }
}

fn taken(e: rusqlite::Error, what: String) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => StoreError::Conflict(what),
        e => e.into(),
    }
}

/// A member's teams in their organisation.
fn member_teams(conn: &rusqlite::Connection, org: OrgId, user: UserId) -> Result<Vec<TeamId>> {
    let mut st = conn.prepare_cached(
        "SELECT tm.team_id FROM team_members tm JOIN teams t ON t.id = tm.team_id
         WHERE t.org_id = ?1 AND tm.user_id = ?2 ORDER BY tm.team_id",
    )?;
    let rows = st.query_map(params![org.0, user.0], |r| Ok(TeamId(r.get(0)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Refuses a change that would leave the organisation without an owner.
pub(super) fn keep_an_owner(tx: &rusqlite::Transaction<'_>, org: OrgId, user: UserId) -> Result<()> {
    let others: i64 = tx.query_row(
        "SELECT COUNT(*) FROM members WHERE org_id = ?1 AND role = 'owner' AND user_id <> ?2",
        params![org.0, user.0],
        |r| r.get(0),
    )?;
    let is_owner: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM members WHERE org_id = ?1 AND user_id = ?2 AND role = 'owner')",
        params![org.0, user.0],
        |r| r.get(0),
    )?;
    if is_owner && others == 0 {
        return Err(StoreError::Invalid("an organisation needs an owner: make someone else owner first".into()));
    }
    Ok(())
}

fn insert_member(tx: &rusqlite::Transaction<'_>, org: OrgId, user: UserId, role: Role, team: Option<TeamId>) -> Result<()> {
    tx.execute(
        "INSERT INTO members (org_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![org.0, user.0, role.as_str(), now()],
    )
    .map_err(|e| taken(e, "that person is already a member of this organisation".into()))?;
    if let Some(team) = team {
        join_team_in(tx, team, user)?;
    }
    Ok(())
}

/// Adds a member of a team's organisation to the team.
fn join_team_in(conn: &rusqlite::Connection, team: TeamId, user: UserId) -> Result<()> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO team_members (team_id, user_id)
         SELECT t.id, m.user_id FROM teams t JOIN members m ON m.org_id = t.org_id WHERE t.id = ?1 AND m.user_id = ?2",
        params![team.0, user.0],
    )?;
    let known: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM teams t JOIN members m ON m.org_id = t.org_id WHERE t.id = ?1 AND m.user_id = ?2)",
        params![team.0, user.0],
        |r| r.get(0),
    )?;
    if n == 0 && !known {
        return Err(StoreError::NotFound(format!("a member {user} of team {team}'s organisation")));
    }
    Ok(())
}

impl crate::Orgs for SqliteStore {
    fn organizations(&self) -> Result<Vec<Organization>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {ORG_COLUMNS} FROM organizations o ORDER BY o.id"))?;
        let rows = st.query_map([], org_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {ORG_COLUMNS} FROM organizations o WHERE o.slug = ?1"))?;
        Ok(st.query_row([slug], org_from).optional()?)
    }

    fn create_organization(&self, name: &str, owner: UserId) -> Result<Organization> {
        let slug = checks::slug_for(name, "organisation")?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        tx.execute("INSERT INTO organizations (slug, name, created_at) VALUES (?1, ?2, ?3)", params![slug, name.trim(), t])
            .map_err(|e| taken(e, format!("an organisation named \"{slug}\" already exists")))?;
        let org = OrgId(tx.last_insert_rowid());
        tx.execute("INSERT INTO teams (org_id, slug, name, created_at) VALUES (?1, ?2, ?3, ?4)", params![org.0, slug, name.trim(), t])?;
        let team = TeamId(tx.last_insert_rowid());
        insert_member(&tx, org, owner, Role::Owner, Some(team))
            .map_err(|e| if matches!(e, StoreError::Conflict(_)) { StoreError::NotFound(format!("user {owner}")) } else { e })?;
        tx.commit()?;
        Ok(Organization { id: org, slug, name: name.trim().to_string(), created_at: t })
    }

    fn teams(&self, org: OrgId) -> Result<Vec<Team>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached("SELECT id, org_id, slug, name FROM teams WHERE org_id = ?1 ORDER BY id")?;
        let rows = st.query_map([org.0], team_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn create_team(&self, org: OrgId, name: &str) -> Result<Team> {
        let slug = checks::slug_for(name, "team")?;
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO teams (org_id, slug, name, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![org.0, slug, name.trim(), now()],
        )
        .map_err(|e| taken(e, format!("a team named \"{slug}\" already exists here")))?;
        Ok(Team { id: TeamId(conn.last_insert_rowid()), org_id: org, slug, name: name.trim().to_string() })
    }

    fn join_team(&self, team: TeamId, user: UserId) -> Result<()> {
        let conn = self.conn()?;
        join_team_in(&conn, team, user)
    }

    fn memberships(&self, user: UserId) -> Result<Vec<Membership>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {ORG_COLUMNS}, m.role FROM members m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = ?1 ORDER BY o.id"
        ))?;
        let rows = st
            .query_map([user.0], |r| Ok((org_from(r)?, r.get::<_, String>(4)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(org, role)| Ok(Membership { teams: member_teams(&conn, org.id, user)?, role: role_of(&role), org }))
            .collect()
    }

    fn members(&self, org: OrgId) -> Result<Vec<Member>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT u.id, u.email, u.is_admin, u.created_at, u.last_login, m.role, m.created_at
             FROM members m JOIN users u ON u.id = m.user_id WHERE m.org_id = ?1 ORDER BY m.created_at, u.id",
        )?;
        let rows = st
            .query_map([org.0], |r| {
                let user = User { id: UserId(r.get(0)?), email: r.get(1)?, is_admin: r.get::<_, i64>(2)? != 0, created_at: r.get(3)?, last_login: r.get(4)? };
                Ok((user, r.get::<_, String>(5)?, r.get::<_, f64>(6)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(user, role, joined_at)| Ok(Member { teams: member_teams(&conn, org, user.id)?, role: role_of(&role), joined_at, user }))
            .collect()
    }

    fn add_member(&self, org: OrgId, user: UserId, role: Role, team: Option<TeamId>) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        insert_member(&tx, org, user, role, team)?;
        tx.commit()?;
        Ok(())
    }

    fn set_role(&self, org: OrgId, user: UserId, role: Role) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if role != Role::Owner {
            keep_an_owner(&tx, org, user)?;
        }
        let n = tx.execute("UPDATE members SET role = ?3 WHERE org_id = ?1 AND user_id = ?2", params![org.0, user.0, role.as_str()])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("member {user}")));
        }
        tx.commit()?;
        Ok(())
    }

    fn remove_member(&self, org: OrgId, user: UserId) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        keep_an_owner(&tx, org, user)?;
        if tx.execute("DELETE FROM members WHERE org_id = ?1 AND user_id = ?2", params![org.0, user.0])? == 0 {
            return Err(StoreError::NotFound(format!("member {user}")));
        }
        tx.execute(
            "DELETE FROM team_members WHERE user_id = ?2 AND team_id IN (SELECT id FROM teams WHERE org_id = ?1)",
            params![org.0, user.0],
        )?;
        tx.execute(
            "UPDATE api_tokens SET revoked_at = ?3 WHERE org_id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
            params![org.0, user.0, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn project_teams(&self, project: ProjectId) -> Result<Vec<TeamId>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached("SELECT team_id FROM project_teams WHERE project_id = ?1 ORDER BY team_id")?;
        let rows = st.query_map([project.0], |r| Ok(TeamId(r.get(0)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn create_project_in(&self, team: TeamId, name: &str) -> Result<(Project, ClientKey)> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let made = insert_project(&tx, team, name)?;
        tx.commit()?;
        Ok(made)
    }

    fn org_projects(&self, org: OrgId) -> Result<Vec<Project>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE org_id = ?1 AND deleted_at IS NULL ORDER BY id"))?;
        let rows = st.query_map([org.0], project_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn create_invitation(&self, token_hash: &str, org: OrgId, email: &str, role: Role, team: Option<TeamId>, ttl_secs: f64) -> Result<()> {
        let email = checks::email(email)?;
        let conn = self.conn()?;
        let t = now();
        conn.execute(
            "INSERT INTO invitations (token_hash, org_id, email, role, team_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![token_hash, org.0, email, role.as_str(), team.map(|t| t.0), t, t + ttl_secs],
        )?;
        Ok(())
    }

    fn invitation(&self, token_hash: &str) -> Result<Option<Invitation>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {ORG_COLUMNS}, i.email, i.role, i.team_id, i.expires_at FROM invitations i JOIN organizations o ON o.id = i.org_id
             WHERE i.token_hash = ?1 AND i.used_at IS NULL AND i.expires_at > ?2"
        ))?;
        Ok(st
            .query_row(params![token_hash, now()], |r| {
                Ok(Invitation {
                    org: org_from(r)?,
                    email: r.get(4)?,
                    role: role_of(&r.get::<_, String>(5)?),
                    team: r.get::<_, Option<i64>>(6)?.map(TeamId),
                    expires_at: r.get(7)?,
                })
            })
            .optional()?)
    }

    fn accept_invitation(&self, token_hash: &str, user: UserId) -> Result<Organization> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        let found = tx
            .query_row(
                "SELECT org_id, role, team_id FROM invitations WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![token_hash, t],
                |r| Ok((OrgId(r.get(0)?), r.get::<_, String>(1)?, r.get::<_, Option<i64>>(2)?.map(TeamId))),
            )
            .optional()?;
        let Some((org, role, team)) = found else {
            return Err(StoreError::Invalid("this invitation has been used or has expired; ask for a new one".into()));
        };
        tx.execute("UPDATE invitations SET used_at = ?2 WHERE token_hash = ?1", params![token_hash, t])?;
        insert_member(&tx, org, user, role_of(&role), team)?;
        let o = tx.query_row(&format!("SELECT {ORG_COLUMNS} FROM organizations o WHERE o.id = ?1"), [org.0], org_from)?;
        tx.commit()?;
        Ok(o)
    }

    fn create_token(&self, token: &NewToken<'_>) -> Result<ApiToken> {
        let name = checks::token_name(token.name)?;
        let conn = self.conn()?;
        let t = now();
        conn.execute(
            "INSERT INTO api_tokens (token_hash, name, org_id, user_id, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![token.token_hash, name, token.org_id.0, token.user_id.map(|u| u.0), token.scopes.join(" "), t],
        )?;
        Ok(ApiToken {
            id: TokenId(conn.last_insert_rowid()),
            name: name.to_string(),
            org_id: token.org_id,
            user_id: token.user_id,
            scopes: token.scopes.to_vec(),
            created_at: t,
            last_used_at: None,
            revoked_at: None,
        })
    }

    fn use_token(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let conn = self.conn()?;
        let t = now();
        let mut st = conn.prepare_cached(&format!(
            "UPDATE api_tokens SET last_used_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL RETURNING {TOKEN_COLUMNS}"
        ))?;
        Ok(st.query_row(params![token_hash, t], token_from).optional()?)
    }

    fn tokens(&self, org: OrgId) -> Result<Vec<ApiToken>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE org_id = ?1 ORDER BY id DESC"))?;
        let rows = st.query_map([org.0], token_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn revoke_token(&self, org: OrgId, id: TokenId) -> Result<bool> {
        let conn = self.conn()?;
        let n = conn.execute(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?3) WHERE org_id = ?1 AND id = ?2",
            params![org.0, id.0, now()],
        )?;
        Ok(n > 0)
    }

    fn set_sso(&self, org: OrgId, sso: Option<&SsoConfig>) -> Result<()> {
        let conn = self.conn()?;
        let Some(s) = sso else {
            conn.execute("DELETE FROM org_sso WHERE org_id = ?1", [org.0])?;
            return Ok(());
        };
        checks::issuer(&s.issuer)?;
        conn.execute(
            "INSERT INTO org_sso (org_id, issuer, client_id, client_secret, required, allowed_domains, default_role)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (org_id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id,
                client_secret = excluded.client_secret, required = excluded.required,
                allowed_domains = excluded.allowed_domains, default_role = excluded.default_role",
            params![org.0, s.issuer, s.client_id, s.client_secret, s.required as i64, s.allowed_domains.join(" "), s.default_role.as_str()],
        )
        .map_err(|e| taken(e, format!("organisation {org}")).into_not_found())?;
        Ok(())
    }

    fn sso(&self, org: OrgId) -> Result<Option<SsoConfig>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT issuer, client_id, client_secret, required, allowed_domains, default_role FROM org_sso WHERE org_id = ?1",
        )?;
        Ok(st
            .query_row([org.0], |r| {
                Ok(SsoConfig {
                    issuer: r.get(0)?,
                    client_id: r.get(1)?,
                    client_secret: r.get(2)?,
                    required: r.get::<_, i64>(3)? != 0,
                    allowed_domains: r.get::<_, String>(4)?.split_whitespace().map(str::to_string).collect(),
                    default_role: role_of(&r.get::<_, String>(5)?),
                })
            })
            .optional()?)
    }

    fn record_audit(&self, org: OrgId, actor: &str, action: &str, target: &str) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO audit_log (org_id, actor, action, target, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![org.0, actor, action, target, now()],
        )?;
        Ok(())
    }

    fn audit_log(&self, org: OrgId, limit: usize) -> Result<Vec<AuditEntry>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached("SELECT id, actor, action, target, at FROM audit_log WHERE org_id = ?1 ORDER BY id DESC LIMIT ?2")?;
        let rows = st
            .query_map(params![org.0, limit as i64], |r| {
                Ok(AuditEntry { id: r.get(0)?, actor: r.get(1)?, action: r.get(2)?, target: r.get(3)?, at: r.get(4)? })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}
