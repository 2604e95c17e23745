//! Who may do what: the one access check, [`can`]`(actor, action, resource)`, and the
//! extractors every page, form, stream and API route gets it through ([`extract`]).
//!
//! An actor is a user (by their browser session or a personal API token) with their
//! memberships, or an organisation's own token. What a role may do is Sentry's:
//!
//! - member: sees the projects of its teams, triages their issues, sees the organisation and
//!   its members;
//! - admin: also changes the projects of its teams (name, client keys), creates projects, and
//!   adds members to its teams;
//! - manager: also sees and changes every project, manages members, teams, tokens, and reads
//!   the audit log;
//! - owner: everything, including making others owners and single sign-on.
//!
//! A token may do no more than its scopes allow, and a personal token no more than its user.
//! What an actor may not see answers as if it did not exist (404); what it sees but may not
//! change answers 403.

pub mod extract;

use store::{ApiToken, Membership, OrgId, Role, TeamId, User};

/// The scopes a token can carry (Sentry's names).
pub const SCOPES: &[&str] = &[
    "org:read",
    "org:write",
    "org:admin",
    "project:read",
    "project:write",
    "project:admin",
    "project:releases",
    "team:read",
    "team:write",
    "team:admin",
    "member:read",
    "member:write",
    "member:admin",
    "event:read",
    "event:write",
    "event:admin",
];

/// Something an actor may want to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// See the organisation, its teams and its projects' list.
    ViewOrg,
    /// See the organisation's members.
    ViewMembers,
    /// See a project and its issues.
    ViewProject,
    /// See a project's events.
    ViewEvents,
    /// Resolve, ignore or reopen an issue; delete issues.
    Triage,
    /// See the organisation's releases, their deploys and uploaded files.
    ViewReleases,
    /// Create, change and delete releases and deploys; upload source maps.
    Release,
    /// Rename a project, create and revoke its client keys, see its DSNs.
    ManageProject,
    /// Create a project in the organisation.
    CreateProject,
    /// Create teams.
    ManageTeams,
    /// Add a member to a team: managers to any team, admins to the teams they are in.
    AddToTeam,
    /// Invite and remove members.
    ManageMembers,
    /// Give a member this role, or change the role of a member who has it.
    AssignRole(Role),
    /// Create and revoke the organisation's API tokens.
    ManageTokens,
    /// Read the audit log.
    ViewAudit,
    /// Set up the organisation's single sign-on.
    ManageSso,
}

impl Action {
    /// The weakest role that may do it.
    pub fn least_role(self) -> Role {
        match self {
            Action::ViewOrg
            | Action::ViewMembers
            | Action::ViewProject
            | Action::ViewEvents
            | Action::Triage
            | Action::ViewReleases
            | Action::Release => Role::Member,
            Action::ManageProject | Action::CreateProject | Action::AddToTeam => Role::Admin,
            Action::ManageTeams | Action::ManageMembers | Action::ManageTokens | Action::ViewAudit => Role::Manager,
            Action::AssignRole(role) => role.max(Role::Manager),
            Action::ManageSso => Role::Owner,
        }
    }

    /// The scopes of which a token needs one to do it.
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Action::ViewOrg => &["org:read", "org:write", "org:admin"],
            Action::ViewMembers => &["member:read", "member:write", "member:admin"],
            Action::ViewProject => &["project:read", "project:write", "project:admin"],
            Action::ViewEvents => &["event:read", "event:write", "event:admin"],
            Action::Triage => &["event:write", "event:admin"],
            Action::ViewReleases => &["project:releases", "project:read", "project:write", "project:admin", "org:read"],
            Action::Release => &["project:releases", "project:write", "project:admin"],
            Action::ManageProject | Action::CreateProject => &["project:write", "project:admin"],
            Action::ManageTeams | Action::AddToTeam => &["team:write", "team:admin"],
            Action::ManageMembers | Action::AssignRole(_) => &["member:write", "member:admin"],
            Action::ManageTokens | Action::ViewAudit => &["org:write", "org:admin"],
            Action::ManageSso => &["org:admin"],
        }
    }
}

/// What an action is done to.
#[derive(Clone, Copy, Debug)]
pub enum Resource<'a> {
    Org(OrgId),
    /// A project of `org`, belonging to `teams`.
    Project { org: OrgId, teams: &'a [TeamId] },
    /// A team of `org`.
    Team { org: OrgId, team: TeamId },
}

impl Resource<'_> {
    fn org(&self) -> OrgId {
        match self {
            Resource::Org(org) | Resource::Project { org, .. } | Resource::Team { org, .. } => *org,
        }
    }
}

/// Who is asking: a user with their memberships (from a session or a personal token), or an
/// organisation's token (no user). Loaded afresh for every request, so a removed member or a
/// revoked token is refused at the next one.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub user: Option<User>,
    pub memberships: Vec<Membership>,
    pub token: Option<ApiToken>,
}

impl Actor {
    /// The actor's membership of an organisation.
    pub fn membership(&self, org: OrgId) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.org.id == org)
    }

    /// How the audit log names the actor.
    pub fn name(&self) -> String {
        match (&self.user, &self.token) {
            (Some(u), None) => u.email.clone(),
            (Some(u), Some(t)) => format!("{} (token {})", u.email, t.name),
            (None, Some(t)) => format!("token {}", t.name),
            (None, None) => "nobody".into(),
        }
    }
}

/// The answer of [`can`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// The actor sees the resource but may not do this (403).
    Forbidden,
    /// The actor may not know the resource exists (404).
    Hidden,
}

/// The one access check: may `actor` do `action` to `resource`?
pub fn can(actor: &Actor, action: Action, resource: Resource<'_>) -> Decision {
    let org = resource.org();
    if let Some(token) = &actor.token {
        if token.org_id != org {
            return Decision::Hidden;
        }
        if token.user_id.is_none() {
            // The organisation's own token: its scopes alone decide.
            return scoped(token, action);
        }
    }
    let Some(m) = actor.membership(org) else { return Decision::Hidden };
    let sees = match resource {
        Resource::Org(_) | Resource::Team { .. } => true,
        Resource::Project { teams, .. } => store::sees_project(m.role, &m.teams, teams),
    };
    if !sees {
        return Decision::Hidden;
    }
    if m.role < action.least_role() {
        return Decision::Forbidden;
    }
    // Below manager, a team is changed only by those in it.
    if let Resource::Team { team, .. } = resource
        && m.role < Role::Manager
        && action.least_role() > Role::Member
        && !m.teams.contains(&team)
    {
        return Decision::Forbidden;
    }
    match &actor.token {
        Some(token) => scoped(token, action),
        None => Decision::Allowed,
    }
}

fn scoped(token: &ApiToken, action: Action) -> Decision {
    if token.scopes.iter().any(|s| action.scopes().contains(&s.as_str())) { Decision::Allowed } else { Decision::Forbidden }
}

/// Checks a list of scopes given for a new token: every one known, at least one.
pub fn check_scopes(scopes: &[String]) -> Result<(), String> {
    if scopes.is_empty() {
        return Err(format!("a token needs at least one scope: {}", SCOPES.join(", ")));
    }
    match scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        Some(bad) => Err(format!("\"{bad}\" is not a scope; the scopes are {}", SCOPES.join(", "))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{Organization, TokenId, UserId};

    fn org(id: i64) -> Organization {
        Organization { id: OrgId(id), slug: format!("o{id}"), name: String::new(), created_at: 0.0 }
    }

    fn member(role: Role, teams: &[i64]) -> Actor {
        Actor {
            user: Some(User { id: UserId(1), email: "a@x".into(), is_admin: false, created_at: 0.0, last_login: None }),
            memberships: vec![Membership { org: org(1), role, teams: teams.iter().map(|t| TeamId(*t)).collect() }],
            token: None,
        }
    }

    fn token(user: Option<UserId>, scopes: &[&str]) -> ApiToken {
        ApiToken {
            id: TokenId(1),
            name: "t".into(),
            org_id: OrgId(1),
            user_id: user,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            created_at: 0.0,
            last_used_at: None,
            revoked_at: None,
        }
    }

    /// `check(actor, [(action, resource, expected)])`.
    fn check(actor: &Actor, cases: &[(Action, Resource<'_>, Decision)]) {
        for (action, resource, expected) in cases {
            assert_eq!(can(actor, *action, *resource), *expected, "{action:?} on {resource:?} by {actor:?}");
        }
    }

    const MINE: Resource<'static> = Resource::Project { org: OrgId(1), teams: &[TeamId(1)] };
    const OTHER_TEAM: Resource<'static> = Resource::Project { org: OrgId(1), teams: &[TeamId(2)] };
    const FOREIGN: Resource<'static> = Resource::Project { org: OrgId(2), teams: &[TeamId(1)] };
    const ORG: Resource<'static> = Resource::Org(OrgId(1));

    use Decision::*;

    #[test]
    fn roles_decide_within_their_teams_and_organisation() {
        check(&member(Role::Member, &[1]), &[
            (Action::ViewProject, MINE, Allowed),
            (Action::Triage, MINE, Allowed),
            (Action::ManageProject, MINE, Forbidden),
            (Action::ViewProject, OTHER_TEAM, Hidden),
            (Action::ViewProject, FOREIGN, Hidden),
            (Action::ViewOrg, ORG, Allowed),
            (Action::CreateProject, ORG, Forbidden),
            (Action::ManageMembers, ORG, Forbidden),
        ]);
        check(&member(Role::Admin, &[1]), &[
            (Action::AddToTeam, Resource::Team { org: OrgId(1), team: TeamId(1) }, Allowed),
            (Action::AddToTeam, Resource::Team { org: OrgId(1), team: TeamId(2) }, Forbidden),
            (Action::ManageProject, MINE, Allowed),
            (Action::ManageProject, OTHER_TEAM, Hidden),
            (Action::CreateProject, ORG, Allowed),
            (Action::ManageMembers, ORG, Forbidden),
        ]);
        check(&member(Role::Member, &[1]), &[(Action::AddToTeam, Resource::Team { org: OrgId(1), team: TeamId(1) }, Forbidden)]);
        check(&member(Role::Manager, &[]), &[
            (Action::AddToTeam, Resource::Team { org: OrgId(1), team: TeamId(2) }, Allowed),
            (Action::ManageProject, OTHER_TEAM, Allowed),
            (Action::ManageMembers, ORG, Allowed),
            (Action::AssignRole(Role::Manager), ORG, Allowed),
            (Action::AssignRole(Role::Owner), ORG, Forbidden),
            (Action::ViewProject, FOREIGN, Hidden),
        ]);
        check(&member(Role::Owner, &[]), &[(Action::AssignRole(Role::Owner), ORG, Allowed), (Action::ViewAudit, ORG, Allowed)]);
    }

    #[test]
    fn tokens_are_bounded_by_their_scopes_and_their_user() {
        let mut personal = member(Role::Member, &[1]);
        personal.token = Some(token(Some(UserId(1)), &["project:read", "project:write"]));
        check(&personal, &[
            (Action::ViewProject, MINE, Allowed),
            (Action::ManageProject, MINE, Forbidden),
            (Action::ViewProject, OTHER_TEAM, Hidden),
            (Action::ViewOrg, ORG, Forbidden),
        ]);
        let org_token = Actor { token: Some(token(None, &["project:read"])), ..Actor::default() };
        check(&org_token, &[
            (Action::ViewProject, OTHER_TEAM, Allowed),
            (Action::ManageProject, MINE, Forbidden),
            (Action::ViewProject, FOREIGN, Hidden),
        ]);
    }

    #[test]
    fn scopes_are_checked() {
        assert!(check_scopes(&["org:read".into(), "event:write".into()]).is_ok());
        assert!(check_scopes(&[]).is_err());
        assert!(check_scopes(&["org:everything".into()]).unwrap_err().contains("org:everything"));
    }
}
