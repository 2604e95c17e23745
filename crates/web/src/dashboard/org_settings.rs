//! An organisation's settings page: its projects (create), teams (create, add a member),
//! members (change a role, remove), invitations (a one-time link, shown once), API tokens
//! (create — the secret is shown once —, revoke) and the audit log. Each section and form is
//! shown to those whose role allows it, and every handler checks again through its
//! [`OrgScope`]. Every change is recorded in the audit log.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use serde::Deserialize;
use store::{NewToken, Role, Store, TeamId, TokenId, UserId};

use super::auth::{random_token, token_hash};
use super::pages::{nav, Nav};
use super::settings::MessageQuery;
use super::{blocking, format, paths, render, PageError, PageResult};
use crate::access::extract::OrgScope;
use crate::access::{check_scopes, Action, Resource, SCOPES};
use crate::AppState;

/// How long an invitation link stays usable.
pub const INVITATION_TTL_SECS: f64 = 7.0 * 86400.0;

pub struct MemberLine {
    pub id: UserId,
    pub email: String,
    pub role: String,
    pub teams: String,
    /// The viewer may change this member's role and remove them.
    pub manageable: bool,
}

pub struct TokenLine {
    pub id: TokenId,
    pub name: String,
    pub owner: String,
    pub scopes: String,
    pub created: String,
    pub last_used: String,
    pub revoked: Option<String>,
}

pub struct AuditLine {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
}

#[derive(Template)]
#[template(path = "org_settings.html")]
struct OrgPage {
    nav: Nav,
    slug: String,
    name: String,
    role: String,
    message: Option<String>,
    /// A secret shown once: an invitation link or a token, with what it is.
    secret: Option<(String, String)>,
    projects: Vec<(String, String)>,
    teams: Vec<(TeamId, String)>,
    /// The teams a new project may go to, and that the viewer may add members to.
    project_teams: Vec<(TeamId, String)>,
    members: Vec<MemberLine>,
    roles: Vec<&'static str>,
    tokens: Vec<TokenLine>,
    scopes: &'static [&'static str],
    audit: Vec<AuditLine>,
    can_create_project: bool,
    can_manage_teams: bool,
    can_add_to_teams: bool,
    can_manage_members: bool,
    can_manage_tokens: bool,
    can_view_audit: bool,
    /// The single sign-on settings, when the viewer may change them (the secret is not shown).
    sso: Option<SsoView>,
}

#[derive(Default)]
pub struct SsoView {
    pub issuer: String,
    pub client_id: String,
    pub required: bool,
    pub domains: String,
    pub role: String,
    pub link: String,
    /// The redirect URI to register at the provider.
    pub redirect: String,
}

/// The page, with a notice or a secret to show once.
fn page_for(store: &Arc<dyn Store>, scope: &OrgScope, public_url: &str, message: Option<String>, secret: Option<(String, String)>) -> PageResult {
    let org = &scope.org;
    let viewer = &scope.viewer;
    let mine = viewer.actor.membership(org.id).ok_or_else(|| PageError::NotFound(format!("there is no organisation \"{}\"", org.slug)))?;
    let teams = store.teams(org.id)?;
    let team_name = |id: TeamId| teams.iter().find(|t| t.id == id).map_or_else(String::new, |t| t.name.clone());
    let manages = scope.allows(Action::ManageMembers);
    let members = if scope.allows(Action::ViewMembers) { store.members(org.id)? } else { Vec::new() };
    let member_lines = members
        .iter()
        .map(|m| MemberLine {
            id: m.user.id,
            email: m.user.email.clone(),
            role: m.role.to_string(),
            teams: m.teams.iter().map(|t| team_name(*t)).collect::<Vec<_>>().join(", "),
            manageable: manages && scope.allows(Action::AssignRole(m.role)),
        })
        .collect();
    let tokens = if scope.allows(Action::ManageTokens) {
        store
            .tokens(org.id)?
            .into_iter()
            .map(|t| TokenLine {
                owner: t
                    .user_id
                    .and_then(|u| members.iter().find(|m| m.user.id == u).map(|m| m.user.email.clone()))
                    .unwrap_or_else(|| if t.user_id.is_some() { "a former member".into() } else { "the organisation".into() }),
                scopes: t.scopes.join(" "),
                created: format::utc(t.created_at),
                last_used: t.last_used_at.map_or_else(|| "never".into(), format::utc),
                revoked: t.revoked_at.map(format::utc),
                id: t.id,
                name: t.name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let audit = if scope.allows(Action::ViewAudit) {
        store
            .audit_log(org.id, 100)?
            .into_iter()
            .map(|e| AuditLine { at: format::utc(e.at), actor: e.actor, action: e.action, target: e.target })
            .collect()
    } else {
        Vec::new()
    };
    let sso = if scope.allows(Action::ManageSso) {
        let redirect = format!("{public_url}/sso/callback");
        Some(store.sso(org.id)?.map_or_else(
            || SsoView { redirect: redirect.clone(), role: Role::Member.to_string(), ..SsoView::default() },
            |s| SsoView {
                issuer: s.issuer,
                client_id: s.client_id,
                required: s.required,
                domains: s.allowed_domains.join(" "),
                role: s.default_role.to_string(),
                link: paths::sso(&org.slug),
                redirect: redirect.clone(),
            },
        ))
    } else {
        None
    };
    let all_teams: Vec<(TeamId, String)> = teams.iter().map(|t| (t.id, t.name.clone())).collect();
    let project_teams = all_teams.iter().filter(|(id, _)| mine.role >= Role::Manager || mine.teams.contains(id)).cloned().collect();
    let page = OrgPage {
        nav: nav(store, viewer, "", "settings")?,
        slug: org.slug.clone(),
        name: org.name.clone(),
        role: mine.role.to_string(),
        message,
        secret,
        projects: viewer.projects(store)?.into_iter().filter(|p| p.org_id == org.id).map(|p| (paths::stream(&p.slug), p.name)).collect(),
        teams: all_teams,
        project_teams,
        members: member_lines,
        roles: Role::ALL.iter().filter(|r| scope.allows(Action::AssignRole(**r))).map(|r| r.as_str()).collect(),
        tokens,
        scopes: SCOPES,
        audit,
        can_create_project: scope.allows(Action::CreateProject),
        can_manage_teams: scope.allows(Action::ManageTeams),
        can_add_to_teams: scope.allows(Action::AddToTeam),
        can_manage_members: manages,
        can_manage_tokens: scope.allows(Action::ManageTokens),
        can_view_audit: scope.allows(Action::ViewAudit),
        sso,
    };
    render(&page)
}

/// `GET /o/{org}/settings/`
pub async fn page(State(state): State<AppState>, scope: OrgScope, Query(q): Query<MessageQuery>) -> PageResult {
    let store = state.store.clone();
    blocking(move || page_for(&store, &scope, &state.public_url, q.done, None)).await
}

fn done(scope: &OrgScope, what: &str) -> PageResult {
    Ok(Redirect::to(&format!("{}?done={}", paths::org_settings(&scope.org.slug), format::url_encode(what))).into_response())
}

fn audit(store: &Arc<dyn Store>, scope: &OrgScope, action: &str, target: &str) -> PageResult<()> {
    Ok(store.record_audit(scope.org.id, &scope.viewer.actor.name(), action, target)?)
}

/// A team of this organisation, by the id a form sent.
fn team_of(store: &Arc<dyn Store>, scope: &OrgScope, id: &str) -> PageResult<TeamId> {
    let id = id.trim();
    store
        .teams(scope.org.id)?
        .into_iter()
        .find(|t| t.id.to_string() == id)
        .map(|t| t.id)
        .ok_or_else(|| PageError::BadRequest(format!("this organisation has no team \"{id}\"")))
}

/// A member of this organisation, by the id in the URL, and their role.
fn member_of(store: &Arc<dyn Store>, scope: &OrgScope, id: &str) -> PageResult<(store::Member, String)> {
    store
        .members(scope.org.id)?
        .into_iter()
        .find(|m| m.user.id.to_string() == id)
        .map(|m| {
            let email = m.user.email.clone();
            (m, email)
        })
        .ok_or_else(|| PageError::BadRequest(format!("user {id} is not a member of this organisation")))
}

#[derive(Deserialize)]
pub struct ProjectForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    team: String,
}

/// `POST /o/{org}/projects`: a new project, in one of the teams the creator may add to.
pub async fn create_project(State(state): State<AppState>, scope: OrgScope, headers: HeaderMap, Form(form): Form<ProjectForm>) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::CreateProject)?;
    let store = state.store.clone();
    let slug = blocking(move || {
        let mine = scope.viewer.actor.membership(scope.org.id).cloned();
        let allowed = |t: &TeamId| mine.as_ref().is_some_and(|m| m.role >= Role::Manager || m.teams.contains(t));
        let team = match form.team.trim() {
            "" => store.teams(scope.org.id)?.into_iter().map(|t| t.id).find(allowed),
            id => Some(team_of(&store, &scope, id)?).filter(allowed),
        }
        .ok_or_else(|| PageError::BadRequest("choose one of your teams for the project".into()))?;
        let (p, _) = store.create_project_in(team, &form.name)?;
        audit(&store, &scope, "project.create", &p.slug)?;
        Ok(p.slug)
    })
    .await?;
    Ok(Redirect::to(&format!("{}?done=created", paths::project_settings(&slug))).into_response())
}

#[derive(Deserialize)]
pub struct TeamForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// `POST /o/{org}/teams`
pub async fn create_team(State(state): State<AppState>, scope: OrgScope, headers: HeaderMap, Form(form): Form<TeamForm>) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::ManageTeams)?;
    let store = state.store.clone();
    blocking(move || {
        let team = store.create_team(scope.org.id, &form.name)?;
        audit(&store, &scope, "team.create", &team.slug)?;
        done(&scope, "team created")
    })
    .await
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    team: String,
}

fn role_from(name: &str) -> PageResult<Role> {
    Role::parse(name).ok_or_else(|| PageError::BadRequest(format!("\"{name}\" is not a role: use owner, manager, admin or member")))
}

/// `POST /o/{org}/invitations`: answers with the page showing the one-time link (once).
pub async fn invite(State(state): State<AppState>, scope: OrgScope, headers: HeaderMap, Form(form): Form<InviteForm>) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::ManageMembers)?;
    let role = role_from(&form.role)?;
    scope.require(Action::AssignRole(role))?;
    let store = state.store.clone();
    let public_url = state.public_url.clone();
    blocking(move || {
        let team = match form.team.trim() {
            "" => None,
            id => Some(team_of(&store, &scope, id)?),
        };
        let token = random_token();
        store.create_invitation(&token_hash(&token), scope.org.id, &form.email, role, team, INVITATION_TTL_SECS)?;
        audit(&store, &scope, "member.invite", &format!("{} as {role}", form.email.trim()))?;
        let link = format!("{public_url}{}", paths::invite(&token));
        let what = format!("Send this link to {}. It works once, for 7 days, and is not shown again:", form.email.trim());
        page_for(&store, &scope, &public_url, None, Some((what, link)))
    })
    .await
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

/// `POST /o/{org}/members/{user}/role`: one may give, and take away, only roles up to one's
/// own (a manager can't make or unmake owners).
pub async fn set_role(
    State(state): State<AppState>,
    scope: OrgScope,
    headers: HeaderMap,
    Path((_, user)): Path<(String, String)>,
    Form(form): Form<RoleForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::ManageMembers)?;
    let role = role_from(&form.role)?;
    let store = state.store.clone();
    blocking(move || {
        let (member, email) = member_of(&store, &scope, &user)?;
        scope.require(Action::AssignRole(member.role))?;
        scope.require(Action::AssignRole(role))?;
        store.set_role(scope.org.id, member.user.id, role)?;
        audit(&store, &scope, "member.role", &format!("{email}: {} to {role}", member.role))?;
        done(&scope, "role changed")
    })
    .await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /o/{org}/members/{user}/remove`: the member loses access at their next request.
pub async fn remove_member(
    State(state): State<AppState>,
    scope: OrgScope,
    headers: HeaderMap,
    Path((_, user)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::ManageMembers)?;
    let store = state.store.clone();
    blocking(move || {
        let (member, email) = member_of(&store, &scope, &user)?;
        scope.require(Action::AssignRole(member.role))?;
        store.remove_member(scope.org.id, member.user.id)?;
        audit(&store, &scope, "member.remove", &email)?;
        done(&scope, "member removed")
    })
    .await
}

#[derive(Deserialize)]
pub struct JoinForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    team: String,
}

/// `POST /o/{org}/members/{user}/teams`: adds a member to a team (an admin: to one of theirs).
pub async fn join_team(
    State(state): State<AppState>,
    scope: OrgScope,
    headers: HeaderMap,
    Path((_, user)): Path<(String, String)>,
    Form(form): Form<JoinForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::AddToTeam)?;
    let store = state.store.clone();
    blocking(move || {
        let team = team_of(&store, &scope, &form.team)?;
        let what = format!("team {team} of \"{}\"", scope.org.slug);
        scope.viewer.require(Action::AddToTeam, Resource::Team { org: scope.org.id, team }, &what)?;
        let (member, email) = member_of(&store, &scope, &user)?;
        store.join_team(team, member.user.id)?;
        audit(&store, &scope, "team.join", &format!("{email} to team {team}"))?;
        done(&scope, "added to the team")
    })
    .await
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    /// Scopes, space-separated (the form's checkboxes are gathered by the browser as repeated
    /// `scope` fields; see [`TokenForm::scopes`]).
    #[serde(default)]
    scope: Vec<String>,
    /// Set: a personal token, acting as its creator within their role.
    personal: Option<String>,
}

/// `POST /o/{org}/tokens`: answers with the page showing the token (once).
pub async fn create_token(State(state): State<AppState>, scope: OrgScope, headers: HeaderMap, body: axum::body::Bytes) -> PageResult {
    let form: TokenForm = parse_repeated(&body)?;
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::ManageTokens)?;
    check_scopes(&form.scope).map_err(PageError::BadRequest)?;
    let store = state.store.clone();
    blocking(move || {
        let public_url = &state.public_url;
        let secret = random_token();
        let user = form.personal.as_ref().map(|_| scope.viewer.principal.user.id);
        let name = if form.name.trim().is_empty() { "token" } else { form.name.trim() };
        let token = NewToken { token_hash: &token_hash(&secret), name, org_id: scope.org.id, user_id: user, scopes: &form.scope };
        let made = store.create_token(&token)?;
        audit(&store, &scope, "token.create", &format!("{} ({})", made.name, made.scopes.join(" ")))?;
        let what = format!("The token \"{}\". Use it as Authorization: Bearer …; it is not shown again:", made.name);
        page_for(&store, &scope, public_url, None, Some((what, secret)))
    })
    .await
}

/// A form body whose fields may repeat (checkboxes), into `T` (repeated fields as lists).
fn parse_repeated<T: serde::de::DeserializeOwned>(body: &[u8]) -> PageResult<T> {
    let mut map = serde_json::Map::new();
    for (k, v) in form_urlencoded_pairs(body) {
        if k == "scope" {
            let list = map.entry(k).or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if let serde_json::Value::Array(a) = list {
                a.extend(v.split_whitespace().map(|s| serde_json::Value::String(s.to_string())));
            }
        } else {
            map.insert(k, serde_json::Value::String(v));
        }
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| PageError::BadRequest(format!("the form could not be read: {e}")))
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| super::auth::percent_decode(&s.replace('+', " "));
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// `POST /o/{org}/tokens/{id}/revoke`
pub async fn revoke_token(
    State(state): State<AppState>,
    scope: OrgScope,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::ManageTokens)?;
    let store = state.store.clone();
    blocking(move || {
        let bad = || PageError::BadRequest(format!("this organisation has no token {id}"));
        let token = id.trim().parse::<i64>().map(TokenId).map_err(|_| bad())?;
        if !store.revoke_token(scope.org.id, token)? {
            return Err(bad());
        }
        audit(&store, &scope, "token.revoke", &format!("token {token}"))?;
        done(&scope, "token revoked")
    })
    .await
}

#[derive(Deserialize)]
pub struct SsoForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    /// Empty: keep the secret already set.
    #[serde(default)]
    client_secret: String,
    required: Option<String>,
    #[serde(default)]
    domains: String,
    #[serde(default)]
    role: String,
    /// Set: turn single sign-on off.
    off: Option<String>,
}

/// `POST /o/{org}/sso` (owners): sets single sign-on up, or turns it off.
pub async fn set_sso(State(state): State<AppState>, scope: OrgScope, headers: HeaderMap, Form(form): Form<SsoForm>) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::ManageSso)?;
    let store = state.store.clone();
    blocking(move || {
        if form.off.is_some() {
            store.set_sso(scope.org.id, None)?;
            audit(&store, &scope, "sso.off", &scope.org.slug)?;
            return done(&scope, "single sign-on turned off");
        }
        let default_role = role_from(&form.role)?;
        let secret = match form.client_secret.trim() {
            "" => store.sso(scope.org.id)?.map(|s| s.client_secret).ok_or_else(|| PageError::BadRequest("give the client secret".into()))?,
            s => s.to_string(),
        };
        if form.client_id.trim().is_empty() {
            return Err(PageError::BadRequest("give the client id Sentry has at the provider".into()));
        }
        let sso = store::SsoConfig {
            issuer: form.issuer.trim().to_string(),
            client_id: form.client_id.trim().to_string(),
            client_secret: secret,
            required: form.required.is_some(),
            allowed_domains: form.domains.split([' ', ',']).map(str::trim).filter(|d| !d.is_empty()).map(str::to_string).collect(),
            default_role,
        };
        store.set_sso(scope.org.id, Some(&sso))?;
        audit(&store, &scope, "sso.set", &format!("{} ({})", sso.issuer, if sso.required { "required" } else { "optional" }))?;
        done(&scope, "single sign-on saved")
    })
    .await
}
