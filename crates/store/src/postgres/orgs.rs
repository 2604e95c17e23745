//! Organisations, teams, members and their roles, API tokens, invitation links and the audit
//! log. Secrets (tokens, invitation links) arrive hashed.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::PgStore;
use super::admin::{PROJECT_COLUMNS, insert_project, project_from};
use crate::{
    ApiToken, AuditEntry, ClientKey, Invitation, Member, Membership, NewToken, OrgId, Organization, Project, ProjectId, Result,
    Role, SsoConfig, StoreError, Team, TeamId, TokenId, User, UserId, checks, now,
};

const ORG_COLUMNS: &str = "o.id, o.slug, o.name, o.created_at";
const TOKEN_COLUMNS: &str = "id, name, org_id, user_id, scopes, created_at, last_used_at, revoked_at";

fn org_from(r: &Row) -> Organization {
    Organization { id: OrgId(r.get(0)), slug: r.get(1), name: r.get(2), created_at: r.get(3) }
}

fn team_from(r: &Row) -> Team {
    Team { id: TeamId(r.get(0)), org_id: OrgId(r.get(1)), slug: r.get(2), name: r.get(3) }
}

fn token_from(r: &Row) -> ApiToken {
    ApiToken {
        id: TokenId(r.get(0)),
        name: r.get(1),
        org_id: OrgId(r.get(2)),
        user_id: r.get::<_, Option<i64>>(3).map(UserId),
        scopes: r.get::<_, String>(4).split_whitespace().map(str::to_string).collect(),
        created_at: r.get(5),
        last_used_at: r.get(6),
        revoked_at: r.get(7),
    }
}

/// A stored role name; anything unknown reads as the weakest role.
fn role_of(name: &str) -> Role {
    Role::parse(name).unwrap_or(Role::Member)
}

/// A member's teams in their organisation.
async fn member_teams(c: &impl GenericClient, org: OrgId, user: UserId) -> Result<Vec<TeamId>> {
    let rows = c
        .query(
            "SELECT tm.team_id FROM team_members tm JOIN teams t ON t.id = tm.team_id
             WHERE t.org_id = $1 AND tm.user_id = $2 ORDER BY tm.team_id",
            &[&org.0, &user.0],
        )
        .await?;
    Ok(rows.iter().map(|r| TeamId(r.get(0))).collect())
}

/// Refuses a change that would leave the organisation without an owner. Locks the
/// organisation's owners, so that two such changes at once can't both pass.
pub(super) async fn keep_an_owner(tx: &impl GenericClient, org: OrgId, user: UserId) -> Result<()> {
    let owners = tx.query("SELECT user_id FROM members WHERE org_id = $1 AND role = 'owner' FOR UPDATE", &[&org.0]).await?;
    let is_owner = owners.iter().any(|r| r.get::<_, i64>(0) == user.0);
    if is_owner && owners.len() == 1 {
        return Err(StoreError::Invalid("an organisation needs an owner: make someone else owner first".into()));
    }
    Ok(())
}

async fn insert_member(tx: &impl GenericClient, org: OrgId, user: UserId, role: Role, team: Option<TeamId>) -> Result<()> {
    tx.execute(
        "INSERT INTO members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
        &[&org.0, &user.0, &role.as_str(), &now()],
    )
    .await
    .map_err(|e| super::taken(e, "that person is already a member of this organisation"))?;
    if let Some(team) = team {
        join_team_in(tx, team, user).await?;
    }
    Ok(())
}

/// Adds a member of a team's organisation to the team.
async fn join_team_in(c: &impl GenericClient, team: TeamId, user: UserId) -> Result<()> {
    let known: bool = c
        .query_one(
            "SELECT EXISTS(SELECT 1 FROM teams t JOIN members m ON m.org_id = t.org_id WHERE t.id = $1 AND m.user_id = $2)",
            &[&team.0, &user.0],
        )
        .await?
        .get(0);
    if !known {
        return Err(StoreError::NotFound(format!("a member {user} of team {team}'s organisation")));
    }
    c.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&team.0, &user.0]).await?;
    Ok(())
}

impl crate::Orgs for PgStore {
    fn organizations(&self) -> Result<Vec<Organization>> {
        self.with(async |c| Ok(c.query(&format!("SELECT {ORG_COLUMNS} FROM organizations o ORDER BY o.id"), &[]).await?.iter().map(org_from).collect()))
    }

    fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>> {
        self.with(async |c| {
            Ok(c.query_opt(&format!("SELECT {ORG_COLUMNS} FROM organizations o WHERE o.slug = $1"), &[&slug]).await?.as_ref().map(org_from))
        })
    }

    fn create_organization(&self, name: &str, owner: UserId) -> Result<Organization> {
        let slug = checks::slug_for(name, "organisation")?;
        self.with(async |c| {
            let tx = c.transaction().await?;
            let t = now();
            let org: i64 = tx
                .query_one("INSERT INTO organizations (slug, name, created_at) VALUES ($1, $2, $3) RETURNING id", &[&slug, &name.trim(), &t])
                .await
                .map_err(|e| super::taken(e, format!("an organisation named \"{slug}\" already exists")))?
                .get(0);
            let team: i64 = tx
                .query_one(
                    "INSERT INTO teams (org_id, slug, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&org, &slug, &name.trim(), &t],
                )
                .await?
                .get(0);
            insert_member(&tx, OrgId(org), owner, Role::Owner, Some(TeamId(team)))
                .await
                .map_err(|e| if matches!(e, StoreError::Conflict(_)) { StoreError::NotFound(format!("user {owner}")) } else { e })?;
            tx.commit().await?;
            Ok(Organization { id: OrgId(org), slug: slug.clone(), name: name.trim().to_string(), created_at: t })
        })
    }

    fn teams(&self, org: OrgId) -> Result<Vec<Team>> {
        self.with(async |c| Ok(c.query("SELECT id, org_id, slug, name FROM teams WHERE org_id = $1 ORDER BY id", &[&org.0]).await?.iter().map(team_from).collect()))
    }

    fn create_team(&self, org: OrgId, name: &str) -> Result<Team> {
        let slug = checks::slug_for(name, "team")?;
        self.with(async |c| {
            let id: i64 = c
                .query_one(
                    "INSERT INTO teams (org_id, slug, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&org.0, &slug, &name.trim(), &now()],
                )
                .await
                .map_err(|e| super::taken(e, format!("a team named \"{slug}\" already exists here")))?
                .get(0);
            Ok(Team { id: TeamId(id), org_id: org, slug: slug.clone(), name: name.trim().to_string() })
        })
    }

    fn join_team(&self, team: TeamId, user: UserId) -> Result<()> {
        self.with(async |c| join_team_in(&*c, team, user).await)
    }

    fn memberships(&self, user: UserId) -> Result<Vec<Membership>> {
        self.with(async |c| {
            let rows = c
                .query(
                    &format!("SELECT {ORG_COLUMNS}, m.role FROM members m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.id"),
                    &[&user.0],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let org = org_from(r);
                out.push(Membership { teams: member_teams(&*c, org.id, user).await?, role: role_of(r.get(4)), org });
            }
            Ok(out)
        })
    }

    fn members(&self, org: OrgId) -> Result<Vec<Member>> {
        self.with(async |c| {
            let rows = c
                .query(
                    "SELECT u.id, u.email, u.is_admin, u.created_at, u.last_login, m.role, m.created_at
                     FROM members m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY m.created_at, u.id",
                    &[&org.0],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let user = User { id: UserId(r.get(0)), email: r.get(1), is_admin: r.get(2), created_at: r.get(3), last_login: r.get(4) };
                out.push(Member { teams: member_teams(&*c, org, user.id).await?, role: role_of(r.get(5)), joined_at: r.get(6), user });
            }
            Ok(out)
        })
    }

    fn add_member(&self, org: OrgId, user: UserId, role: Role, team: Option<TeamId>) -> Result<()> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            insert_member(&tx, org, user, role, team).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn set_role(&self, org: OrgId, user: UserId, role: Role) -> Result<()> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            if role != Role::Owner {
                keep_an_owner(&tx, org, user).await?;
            }
            let n = tx.execute("UPDATE members SET role = $3 WHERE org_id = $1 AND user_id = $2", &[&org.0, &user.0, &role.as_str()]).await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("member {user}")));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn remove_member(&self, org: OrgId, user: UserId) -> Result<()> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            keep_an_owner(&tx, org, user).await?;
            if tx.execute("DELETE FROM members WHERE org_id = $1 AND user_id = $2", &[&org.0, &user.0]).await? == 0 {
                return Err(StoreError::NotFound(format!("member {user}")));
            }
            tx.execute(
                "DELETE FROM team_members WHERE user_id = $2 AND team_id IN (SELECT id FROM teams WHERE org_id = $1)",
                &[&org.0, &user.0],
            )
            .await?;
            tx.execute(
                "UPDATE api_tokens SET revoked_at = $3 WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL",
                &[&org.0, &user.0, &now()],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn project_teams(&self, project: ProjectId) -> Result<Vec<TeamId>> {
        self.with(async |c| {
            Ok(c.query("SELECT team_id FROM project_teams WHERE project_id = $1 ORDER BY team_id", &[&project.0]).await?.iter().map(|r| TeamId(r.get(0))).collect())
        })
    }

    fn create_project_in(&self, team: TeamId, name: &str) -> Result<(Project, ClientKey)> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            let made = insert_project(&tx, team, name).await?;
            tx.commit().await?;
            Ok(made)
        })
    }

    fn org_projects(&self, org: OrgId) -> Result<Vec<Project>> {
        self.with(async |c| {
            Ok(c.query(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE org_id = $1 AND deleted_at IS NULL ORDER BY id"), &[&org.0]).await?.iter().map(project_from).collect())
        })
    }

    fn create_invitation(&self, token_hash: &str, org: OrgId, email: &str, role: Role, team: Option<TeamId>, ttl_secs: f64) -> Result<()> {
        let email = checks::email(email)?;
        self.with(async |c| {
            let t = now();
            c.execute(
                "INSERT INTO invitations (token_hash, org_id, email, role, team_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&token_hash, &org.0, &email, &role.as_str(), &team.map(|t| t.0), &t, &(t + ttl_secs)],
            )
            .await?;
            Ok(())
        })
    }

    fn invitation(&self, token_hash: &str) -> Result<Option<Invitation>> {
        self.with(async |c| {
            let row = c
                .query_opt(
                    &format!(
                        "SELECT {ORG_COLUMNS}, i.email, i.role, i.team_id, i.expires_at FROM invitations i JOIN organizations o ON o.id = i.org_id
                         WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.expires_at > $2"
                    ),
                    &[&token_hash, &now()],
                )
                .await?;
            Ok(row.map(|r| Invitation {
                org: org_from(&r),
                email: r.get(4),
                role: role_of(r.get(5)),
                team: r.get::<_, Option<i64>>(6).map(TeamId),
                expires_at: r.get(7),
            }))
        })
    }

    fn accept_invitation(&self, token_hash: &str, user: UserId) -> Result<Organization> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            let t = now();
            // Used once: the row is taken in the same statement that checks it.
            let found = tx
                .query_opt(
                    "UPDATE invitations SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
                     RETURNING org_id, role, team_id",
                    &[&token_hash, &t],
                )
                .await?;
            let Some(r) = found else {
                return Err(StoreError::Invalid("this invitation has been used or has expired; ask for a new one".into()));
            };
            let org = OrgId(r.get(0));
            insert_member(&tx, org, user, role_of(r.get(1)), r.get::<_, Option<i64>>(2).map(TeamId)).await?;
            let o = org_from(&tx.query_one(&format!("SELECT {ORG_COLUMNS} FROM organizations o WHERE o.id = $1"), &[&org.0]).await?);
            tx.commit().await?;
            Ok(o)
        })
    }

    fn create_token(&self, token: &NewToken<'_>) -> Result<ApiToken> {
        let name = checks::token_name(token.name)?;
        self.with(async |c| {
            let t = now();
            let id: i64 = c
                .query_one(
                    "INSERT INTO api_tokens (token_hash, name, org_id, user_id, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[&token.token_hash, &name, &token.org_id.0, &token.user_id.map(|u| u.0), &token.scopes.join(" "), &t],
                )
                .await?
                .get(0);
            Ok(ApiToken {
                id: TokenId(id),
                name: name.to_string(),
                org_id: token.org_id,
                user_id: token.user_id,
                scopes: token.scopes.to_vec(),
                created_at: t,
                last_used_at: None,
                revoked_at: None,
            })
        })
    }

    fn use_token(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        self.with(async |c| {
            let row = c
                .query_opt(
                    &format!("UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL RETURNING {TOKEN_COLUMNS}"),
                    &[&token_hash, &now()],
                )
                .await?;
            Ok(row.as_ref().map(token_from))
        })
    }

    fn tokens(&self, org: OrgId) -> Result<Vec<ApiToken>> {
        self.with(async |c| Ok(c.query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE org_id = $1 ORDER BY id DESC"), &[&org.0]).await?.iter().map(token_from).collect()))
    }

    fn revoke_token(&self, org: OrgId, id: TokenId) -> Result<bool> {
        self.with(async |c| {
            let n = c
                .execute("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE org_id = $1 AND id = $2", &[&org.0, &id.0, &now()])
                .await?;
            Ok(n > 0)
        })
    }

    fn set_sso(&self, org: OrgId, sso: Option<&SsoConfig>) -> Result<()> {
        if let Some(s) = sso {
            checks::issuer(&s.issuer)?;
        }
        self.with(async |c| {
            let Some(s) = sso else {
                c.execute("DELETE FROM org_sso WHERE org_id = $1", &[&org.0]).await?;
                return Ok(());
            };
            c.execute(
                "INSERT INTO org_sso (org_id, issuer, client_id, client_secret, required, allowed_domains, default_role)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (org_id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id,
                    client_secret = excluded.client_secret, required = excluded.required,
                    allowed_domains = excluded.allowed_domains, default_role = excluded.default_role",
                &[&org.0, &s.issuer, &s.client_id, &s.client_secret, &s.required, &s.allowed_domains.join(" "), &s.default_role.as_str()],
            )
            .await
            .map_err(|e| match super::classify(e) {
                StoreError::Conflict(_) => StoreError::NotFound(format!("organisation {org}")),
                e => e,
            })?;
            Ok(())
        })
    }

    fn sso(&self, org: OrgId) -> Result<Option<SsoConfig>> {
        self.with(async |c| {
            let row = c
                .query_opt(
                    "SELECT issuer, client_id, client_secret, required, allowed_domains, default_role FROM org_sso WHERE org_id = $1",
                    &[&org.0],
                )
                .await?;
            Ok(row.map(|r| SsoConfig {
                issuer: r.get(0),
                client_id: r.get(1),
                client_secret: r.get(2),
                required: r.get(3),
                allowed_domains: r.get::<_, String>(4).split_whitespace().map(str::to_string).collect(),
                default_role: role_of(r.get(5)),
            }))
        })
    }

    fn record_audit(&self, org: OrgId, actor: &str, action: &str, target: &str) -> Result<()> {
        self.with(async |c| {
            c.execute(
                "INSERT INTO audit_log (org_id, actor, action, target, at) VALUES ($1, $2, $3, $4, $5)",
                &[&org.0, &actor, &action, &target, &now()],
            )
            .await?;
            Ok(())
        })
    }

    fn audit_log(&self, org: OrgId, limit: usize) -> Result<Vec<AuditEntry>> {
        self.with(async |c| {
            let rows = c
                .query("SELECT id, actor, action, target, at FROM audit_log WHERE org_id = $1 ORDER BY id DESC LIMIT $2", &[&org.0, &(limit as i64)])
                .await?;
            Ok(rows.iter().map(|r| AuditEntry { id: r.get(0), actor: r.get(1), action: r.get(2), target: r.get(3), at: r.get(4) }).collect())
        })
    }
}
