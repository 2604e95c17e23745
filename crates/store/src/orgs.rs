//! The values of organisations: roles, teams, members, API tokens, invitations and the audit
//! log. Backend-neutral: no SQL here.

use std::fmt;

use serde::Serialize;

use crate::{OrgId, TeamId, TokenId, User, UserId};

/// A member's role in an organisation, in the order of what it may do: each role may do what
/// the ones before it may (Sentry's meanings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees the projects of its teams and triages their issues.
    Member,
    /// Also manages the projects and teams it belongs to.
    Admin,
    /// Also manages members and every team and project.
    Manager,
    /// Everything, including the organisation itself and who owns it.
    Owner,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 4] = [Role::Member, Role::Admin, Role::Manager, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Owner => "owner",
        }
    }

    /// A role by its name (`owner`, `manager`, `admin`, `member`).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name.trim().to_ascii_lowercase())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Organization {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub created_at: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Team {
    pub id: TeamId,
    pub org_id: OrgId,
    pub slug: String,
    pub name: String,
}

/// What a user is in one organisation: their role and their teams there.
#[derive(Clone, Debug, PartialEq)]
pub struct Membership {
    pub org: Organization,
    pub role: Role,
    pub teams: Vec<TeamId>,
}

/// Whether someone of `role` in a project's organisation, in `teams`, sees a project that
/// belongs to `project_teams`: managers and owners see every project, others those of their
/// teams.
pub fn sees_project(role: Role, teams: &[TeamId], project_teams: &[TeamId]) -> bool {
    role >= Role::Manager || project_teams.iter().any(|t| teams.contains(t))
}

/// A member of an organisation, as its member list shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub teams: Vec<TeamId>,
    pub joined_at: f64,
}

/// An API token as stored (its secret is kept only hashed).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiToken {
    pub id: TokenId,
    pub name: String,
    pub org_id: OrgId,
    /// A personal token acts as this user, within their role; `None`: the organisation's own.
    pub user_id: Option<UserId>,
    pub scopes: Vec<String>,
    pub created_at: f64,
    pub last_used_at: Option<f64>,
    pub revoked_at: Option<f64>,
}

/// A token to record: `token_hash` is the SHA-256 of the secret handed out once.
#[derive(Clone, Debug)]
pub struct NewToken<'a> {
    pub token_hash: &'a str,
    pub name: &'a str,
    pub org_id: OrgId,
    pub user_id: Option<UserId>,
    pub scopes: &'a [String],
}

/// A pending invitation to an organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct Invitation {
    pub org: Organization,
    pub email: String,
    pub role: Role,
    pub team: Option<TeamId>,
    pub expires_at: f64,
}

/// One change recorded in an organisation's audit log.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    /// Who did it: an email, or `token <name>`, or `command line`.
    pub actor: String,
    /// What was done, e.g. `member.role`, `key.revoke`.
    pub action: String,
    /// What it was done to, in words.
    pub target: String,
    pub at: f64,
}

/// An organisation's single sign-on (OpenID Connect) settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SsoConfig {
    /// The provider's issuer URL (its discovery document is below it).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Members must sign in through the provider (owners may still use their password).
    pub required: bool,
    /// Email domains whose people a first sign-in makes members; empty: nobody new.
    pub allowed_domains: Vec<String>,
    /// The role of a member made by a first sign-in.
    pub default_role: Role,
}

impl SsoConfig {
    /// Whether a first sign-in with `email` may make a new member.
    pub fn admits(&self, email: &str) -> bool {
        email.rsplit_once('@').is_some_and(|(_, domain)| self.allowed_domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
    }
}
