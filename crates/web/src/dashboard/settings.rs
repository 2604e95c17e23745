//! Settings pages: the projects one may see and the organisations one is in, and a project's
//! settings (rename, client keys: create with a rate limit, revoke, show the DSN) for those
//! whose role allows it, and one's own password. Every change to a project is recorded in its
//! organisation's audit log.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use protocol::{Dsn, ProjectId, PublicKey};
use serde::Deserialize;

use super::auth::{busy, check_new_password, hash_password, logged_in, start_session, verify_password};
use super::pages::{nav, Nav};
use super::{blocking, format, paths, render, PageError, PageResult};
use crate::access::extract::{ProjectScope, Viewer};
use crate::access::Action;
use crate::AppState;

/// The DSN an SDK uses to send to a project with a key, on the server's public URL.
pub fn dsn(public_url: &str, public_key: &str, project_id: ProjectId) -> PageResult<String> {
    Dsn::for_project(public_url, &PublicKey(public_key.to_string()), project_id)
        .map(|d| d.to_string())
        .map_err(|e| PageError::Internal(format!("the public URL {public_url} cannot be used in a DSN: {e}")))
}

pub struct ProjectLine {
    pub slug: String,
    pub name: String,
    pub dsn: String,
    pub href: String,
    /// Its events, their size, the oldest, and how long they are kept.
    pub events: String,
    pub size: String,
    pub oldest: String,
    pub kept: String,
}

pub struct OrgLine {
    pub name: String,
    pub role: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Nav,
    projects: Vec<ProjectLine>,
    orgs: Vec<OrgLine>,
    message: Option<String>,
    /// "The data takes 12.3 MB of its 1.0 GB cap."
    storage: String,
}

#[derive(Deserialize)]
pub struct MessageQuery {
    pub(super) done: Option<String>,
}

/// `GET /settings/`: the projects the viewer may see (with a DSN where they may manage the
/// project) and their organisations.
pub async fn index(State(state): State<AppState>, viewer: Viewer, axum::extract::Query(q): axum::extract::Query<MessageQuery>) -> PageResult {
    let store = state.store.clone();
    let url = state.public_url.clone();
    let dashboard = state.dashboard.clone();
    blocking(move || {
        let usage = storage_usage(&dashboard, &store)?;
        let config = &dashboard.config;
        let now = store::now();
        let mut projects = Vec::new();
        for p in viewer.projects(&store)? {
            let used = usage.projects.iter().find(|u| u.project_id == p.id);
            let days = config.project_retention_days.get(&p.slug).copied().unwrap_or(config.retention_days);
            let teams = store.project_teams(p.id)?;
            let resource = crate::access::Resource::Project { org: p.org_id, teams: &teams };
            let manages = crate::access::can(&viewer.actor, Action::ManageProject, resource) == crate::access::Decision::Allowed;
            let dsn_text = match manages {
                true => match store.keys(p.id)?.into_iter().find(|k| k.is_active()) {
                    Some(k) => dsn(&url, &k.public_key, p.id)?,
                    None => "(no active key)".into(),
                },
                false => "(ask an admin of this project)".into(),
            };
            projects.push(ProjectLine {
                events: format::count(used.map_or(0, |u| u.events)),
                size: used.map_or_else(|| "nothing".into(), |u| format::bytes(u.payload_bytes)),
                oldest: used.and_then(|u| u.oldest).map_or_else(|| "—".into(), |t| format::ago(t, now)),
                kept: if days == 0 { "forever".into() } else { format!("{days} days") },
                dsn: dsn_text,
                href: if manages { paths::project_settings(&p.slug) } else { paths::stream(&p.slug) },
                slug: p.slug,
                name: p.name,
            });
        }
        let orgs = viewer
            .actor
            .memberships
            .iter()
            .map(|m| OrgLine { name: m.org.name.clone(), role: m.role.to_string(), href: paths::org_settings(&m.org.slug) })
            .collect();
        let storage = match config.max_bytes {
            0 => format!("The data takes {} (no size cap is set).", format::bytes(usage.total_bytes)),
            cap => format!(
                "The data takes {} of its {} cap; past it, the oldest events are deleted first.",
                format::bytes(usage.total_bytes),
                format::bytes(cap)
            ),
        };
        render(&SettingsPage { nav: nav(&store, &viewer, "", "settings")?, projects, orgs, message: q.done, storage })
    })
    .await
}

/// What the data takes, from the store at most once a minute.
fn storage_usage(dashboard: &super::Dashboard, store: &std::sync::Arc<dyn store::Store>) -> PageResult<store::StorageUsage> {
    let fresh = |at: &std::time::Instant| at.elapsed() < std::time::Duration::from_secs(60);
    if let Some((at, usage)) = dashboard.usage.lock().ok().and_then(|u| u.clone())
        && fresh(&at)
    {
        return Ok(usage);
    }
    let usage = store.storage_usage()?;
    if let Ok(mut cached) = dashboard.usage.lock() {
        *cached = Some((std::time::Instant::now(), usage.clone()));
    }
    Ok(usage)
}

pub struct KeyLine {
    pub public_key: String,
    pub label: String,
    pub dsn: String,
    pub rate: String,
    pub created: String,
    pub revoked: Option<String>,
    pub revoke_href: String,
}

#[derive(Template)]
#[template(path = "project_settings.html")]
struct ProjectPage {
    nav: Nav,
    slug: String,
    name: String,
    keys: Vec<KeyLine>,
    message: Option<String>,
    /// What the project's SDKs said they dropped: (reason, category, how many).
    client_reports: Vec<(String, String, String)>,
    /// What the server did not store, for all projects: (reason, item, how many).
    server_discards: Vec<(String, String, String)>,
    /// The DSN of the first active key and how to set up an SDK with it.
    guide: Option<super::onboarding::Guide>,
    /// The project's ownership rules as saved.
    ownership: String,
}

/// `GET /settings/projects/{slug}/`
pub async fn project(
    State(state): State<AppState>,
    scope: ProjectScope,
    axum::extract::Query(q): axum::extract::Query<MessageQuery>,
) -> PageResult {
    scope.require(Action::ManageProject)?;
    let store = state.store.clone();
    let url = state.public_url.clone();
    let discards = state.pipeline.discards();
    blocking(move || {
        let p = scope.project.clone();
        let base = paths::project_settings(&p.slug);
        let keys = store
            .keys(p.id)?
            .into_iter()
            .map(|k| Ok(KeyLine {
                dsn: dsn(&url, &k.public_key, p.id)?,
                label: k.label.clone().unwrap_or_default(),
                rate: k.rate_limit_per_minute.map(|r| format!("{r} / min")).unwrap_or_else(|| "server default".into()),
                created: format::utc(k.created_at),
                revoked: k.revoked_at.map(format::utc),
                revoke_href: format!("{base}keys/{}/revoke", format::url_encode(&k.public_key)),
                public_key: k.public_key,
            }))
            .collect::<PageResult<Vec<KeyLine>>>()?;
        let guide = keys.iter().find(|k| k.revoked.is_none()).map(|k| super::onboarding::Guide::new(k.dsn.clone()));
        let client_reports = store
            .client_reports(p.id)?
            .into_iter()
            .map(|r| (r.reason.replace('_', " "), r.category.replace('_', " "), format::count(r.quantity)))
            .collect();
        let server_discards = discards
            .iter()
            .map(|(reason, item, n)| (reason.as_str().replace('_', " "), item.replace('_', " "), format::count(*n)))
            .collect();
        render(&ProjectPage {
            nav: nav(&store, &scope.viewer, &p.slug, "settings")?,
            slug: p.slug,
            name: p.name,
            keys,
            message: q.done,
            client_reports,
            server_discards,
            guide,
            ownership: store.ownership_rules(p.id)?.unwrap_or_default(),
        })
    })
    .await
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// `POST /settings/projects/{slug}/rename`
pub async fn rename_project(
    State(state): State<AppState>,
    scope: ProjectScope,
    headers: HeaderMap,
    Form(form): Form<NameForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::ManageProject)?;
    let store = state.store.clone();
    let slug = blocking(move || {
        let p = &scope.project;
        store.rename_project(p.id, &form.name)?;
        audit(&store, &scope, "project.rename", &format!("{} to \"{}\"", p.slug, form.name.trim()))?;
        Ok(p.slug.clone())
    })
    .await?;
    Ok(Redirect::to(&format!("{}?done=renamed", paths::project_settings(&slug))).into_response())
}

#[derive(Deserialize)]
pub struct OwnershipForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rules: String,
}

/// `POST /settings/projects/{slug}/ownership`: the rules are saved only when every line reads
/// and every owner is a team or member of the project's organisation.
pub async fn set_ownership(
    State(state): State<AppState>,
    scope: ProjectScope,
    headers: HeaderMap,
    Form(form): Form<OwnershipForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::ManageProject)?;
    let store = state.store.clone();
    let slug = blocking(move || {
        let p = &scope.project;
        let bad = |e: store::owners::RuleError| PageError::BadRequest(format!("The ownership rules were not saved: {e}."));
        let rules = store::owners::Rules::parse(&form.rules).map_err(bad)?;
        let teams = store.teams(p.org_id)?;
        let members = store.members(p.org_id)?;
        let slugs: Vec<&str> = teams.iter().map(|t| t.slug.as_str()).collect();
        let emails: Vec<&str> = members.iter().map(|m| m.user.email.as_str()).collect();
        rules.check_owners(&slugs, &emails).map_err(bad)?;
        store.set_ownership_rules(p.id, &form.rules)?;
        audit(&store, &scope, "project.ownership", &format!("{}: {} rules", p.slug, rules.rules.len()))?;
        Ok(p.slug.clone())
    })
    .await?;
    Ok(Redirect::to(&format!("{}?done=ownership rules saved", paths::project_settings(&slug))).into_response())
}

#[derive(Deserialize)]
pub struct DeleteProjectForm {
    #[serde(default)]
    csrf: String,
    /// The project's slug, typed to say yes.
    #[serde(default)]
    confirm: String,
}

/// `POST /settings/projects/{slug}/delete`: the project leaves every list and its keys stop
/// working at once; its issues and events are deleted in the background within minutes.
pub async fn delete_project(
    State(state): State<AppState>,
    scope: ProjectScope,
    headers: HeaderMap,
    Form(form): Form<DeleteProjectForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::ManageProject)?;
    let store = state.store.clone();
    let slug = scope.project.slug.clone();
    blocking(move || {
        let p = &scope.project;
        if form.confirm.trim() != p.slug {
            return Err(PageError::BadRequest(format!(
                "to delete the project, type its slug \"{}\" in the box; nothing was deleted",
                p.slug
            )));
        }
        store.delete_project(p.id)?;
        audit(&store, &scope, "project.delete", &p.slug)
    })
    .await?;
    // Its data now rather than at the next minute's housekeeping.
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || match store::purge_deleted_projects(&*store, None) {
        Ok(issues) => tracing::info!(project = %slug, issues, "deleted a project's issues and events"),
        Err(e) => tracing::warn!(project = %slug, error = %e, "could not delete a project's data yet; housekeeping tries again every minute"),
    });
    Ok(Redirect::to("/settings/?done=project+deleted").into_response())
}

#[derive(Deserialize)]
pub struct DeleteAccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
}

/// `POST /settings/account/delete`: deletes one's own account, after the current password; the
/// last owner of an organisation is told to make someone else owner first.
pub async fn delete_account(State(state): State<AppState>, viewer: Viewer, headers: HeaderMap, Form(form): Form<DeleteAccountForm>) -> PageResult {
    let me = &viewer.principal;
    me.check_csrf(&form.csrf, &headers)?;
    if form.current.is_empty() {
        return Err(PageError::BadRequest("type your current password to delete your account; nothing was deleted".into()));
    }
    let Some(slot) = state.dashboard.logins.hash_slot().await else { return Ok(busy()) };
    let store = state.store.clone();
    let (id, email) = (me.user.id, me.user.email.clone());
    blocking(move || {
        let _slot = slot;
        current_password(&store, &email, &form.current, "nothing was deleted")?;
        let orgs = store.memberships(id)?;
        store.delete_user(id)?;
        for m in orgs {
            store.record_audit(m.org.id, &email, "user.delete", &email)?;
        }
        Ok(())
    })
    .await?;
    let mut resp = Redirect::to("/login").into_response();
    super::auth::set_cookie(&mut resp, super::auth::SESSION_COOKIE, "", Some(0), state.dashboard.secure_cookies);
    Ok(resp)
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    rate_limit: String,
}

/// `POST /settings/projects/{slug}/keys`
pub async fn create_key(
    State(state): State<AppState>,
    scope: ProjectScope,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::ManageProject)?;
    let rate = match form.rate_limit.trim() {
        "" => None,
        r => Some(r.parse::<u64>().map_err(|_| PageError::BadRequest(format!("\"{r}\" is not a number of events per minute")))?),
    };
    let store = state.store.clone();
    let slug = blocking(move || {
        let p = &scope.project;
        let label = Some(form.label.trim()).filter(|l| !l.is_empty());
        let key = store.create_key(p.id, label, rate)?;
        audit(&store, &scope, "key.create", &format!("{}: {}", p.slug, key.public_key))?;
        Ok(p.slug.clone())
    })
    .await?;
    Ok(Redirect::to(&format!("{}?done=key+created", paths::project_settings(&slug))).into_response())
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /settings/projects/{slug}/keys/{key}/revoke`
pub async fn revoke_key(
    State(state): State<AppState>,
    scope: ProjectScope,
    headers: HeaderMap,
    Path((_, key)): Path<(String, String)>,
    Form(form): Form<CsrfOnly>,
) -> PageResult {
    scope.viewer.principal.check_csrf(&form.csrf, &headers)?;
    scope.require(Action::ManageProject)?;
    let store = state.store.clone();
    let slug = blocking(move || {
        let p = &scope.project;
        match store.key(&key)? {
            Some(k) if k.project_id == p.id => store.revoke_key(&key)?,
            _ => return Err(PageError::NotFound(format!("the project \"{}\" has no key {key}", p.slug))),
        };
        audit(&store, &scope, "key.revoke", &format!("{}: {key}", p.slug))?;
        Ok(p.slug.clone())
    })
    .await?;
    Ok(Redirect::to(&format!("{}?done=key+revoked", paths::project_settings(&slug))).into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
}

/// `POST /settings/password`: a new password for oneself. Every session opened with the old
/// one ends (elsewhere too); this browser gets a new session.
pub async fn change_password(State(state): State<AppState>, viewer: Viewer, headers: HeaderMap, Form(form): Form<PasswordForm>) -> PageResult {
    let me = &viewer.principal;
    me.check_csrf(&form.csrf, &headers)?;
    check_new_password(&form.password, Some(&form.password_again)).map_err(PageError::BadRequest)?;
    let Some(slot) = state.dashboard.logins.hash_slot().await else { return Ok(busy()) };
    let store = state.store.clone();
    let (id, email) = (me.user.id, me.user.email.clone());
    let session = blocking(move || {
        let _slot = slot;
        current_password(&store, &email, &form.current, "nothing was changed")?;
        store.set_password(id, &hash_password(&form.password).map_err(PageError::Internal)?)?;
        start_session(&store, id)
    })
    .await?;
    Ok(logged_in(&state, "/settings/?done=password+changed", &session))
}

/// Checks `given` against the password of `email` (a hash slot held by the caller); a wrong
/// one is refused, ending with `nothing_done`.
fn current_password(store: &std::sync::Arc<dyn store::Store>, email: &str, given: &str, nothing_done: &str) -> PageResult<()> {
    let Some((_, stored)) = store.user_for_login(email)? else { return Err(PageError::NotFound("your account".into())) };
    if !verify_password(given, &stored) {
        return Err(PageError::Forbidden(format!("that is not your current password; {nothing_done}")));
    }
    Ok(())
}

/// Records a change to a project in its organisation's audit log.
fn audit(store: &std::sync::Arc<dyn store::Store>, scope: &ProjectScope, action: &str, target: &str) -> PageResult<()> {
    Ok(store.record_audit(scope.project.org_id, &scope.viewer.actor.name(), action, target)?)
}
