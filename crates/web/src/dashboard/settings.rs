//! Settings pages: projects (create, rename), client keys (create with a rate limit, revoke,
//! show the DSN), and users (administrators only).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use protocol::{Dsn, ProjectId, PublicKey};
use serde::Deserialize;

use super::auth::{check_new_password, hash_password, CurrentUser};
use super::pages::{nav, project_by_slug, Nav};
use super::{blocking, format, render, PageError, PageResult};
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
}

pub struct UserLine {
    pub email: String,
    pub admin: bool,
    pub last_login: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Nav,
    projects: Vec<ProjectLine>,
    users: Vec<UserLine>,
    message: Option<String>,
}

#[derive(Deserialize)]
pub struct MessageQuery {
    done: Option<String>,
}

/// `GET /settings/`
pub async fn index(State(state): State<AppState>, user: CurrentUser, axum::extract::Query(q): axum::extract::Query<MessageQuery>) -> PageResult {
    let store = state.store.clone();
    let url = state.public_url.clone();
    blocking(move || {
        let mut projects = Vec::new();
        for p in store.projects()? {
            let key = store.keys(p.id)?.into_iter().find(|k| k.is_active());
            projects.push(ProjectLine {
                dsn: key.map(|k| dsn(&url, &k.public_key, p.id)).transpose()?.unwrap_or_else(|| "(no active key)".into()),
                href: format!("/settings/projects/{}/", format::url_encode(&p.slug)),
                slug: p.slug,
                name: p.name,
            });
        }
        let users = if user.user.is_admin {
            store
                .users()?
                .into_iter()
                .map(|u| UserLine {
                    email: u.email,
                    admin: u.is_admin,
                    last_login: u.last_login.map(format::utc).unwrap_or_else(|| "never".into()),
                })
                .collect()
        } else {
            Vec::new()
        };
        render(&SettingsPage { nav: nav(&store, &user, "", "settings")?, projects, users, message: q.done })
    })
    .await
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
}

/// `GET /settings/projects/{slug}/`
pub async fn project(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(slug): Path<String>,
    axum::extract::Query(q): axum::extract::Query<MessageQuery>,
) -> PageResult {
    let store = state.store.clone();
    let url = state.public_url.clone();
    blocking(move || {
        let p = project_by_slug(&store, &slug)?;
        let base = format!("/settings/projects/{}/", format::url_encode(&p.slug));
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
            .collect::<PageResult<_>>()?;
        render(&ProjectPage { nav: nav(&store, &user, &p.slug, "settings")?, slug: p.slug, name: p.name, keys, message: q.done })
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

/// `POST /settings/projects`
pub async fn create_project(State(state): State<AppState>, user: CurrentUser, headers: HeaderMap, Form(form): Form<NameForm>) -> PageResult {
    user.check_csrf(&form.csrf, &headers)?;
    let store = state.store.clone();
    let slug = blocking(move || Ok(store.create_project(&form.name)?.0.slug)).await?;
    Ok(Redirect::to(&format!("/settings/projects/{}/?done=created", format::url_encode(&slug))).into_response())
}

/// `POST /settings/projects/{slug}/rename`
pub async fn rename_project(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Form(form): Form<NameForm>,
) -> PageResult {
    user.check_csrf(&form.csrf, &headers)?;
    let store = state.store.clone();
    let slug = blocking(move || {
        let p = project_by_slug(&store, &slug)?;
        store.rename_project(p.id, &form.name)?;
        Ok(p.slug)
    })
    .await?;
    Ok(Redirect::to(&format!("/settings/projects/{}/?done=renamed", format::url_encode(&slug))).into_response())
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
    user: CurrentUser,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Form(form): Form<KeyForm>,
) -> PageResult {
    user.check_csrf(&form.csrf, &headers)?;
    let rate = match form.rate_limit.trim() {
        "" => None,
        r => Some(r.parse::<u64>().map_err(|_| PageError::BadRequest(format!("\"{r}\" is not a number of events per minute")))?),
    };
    let store = state.store.clone();
    let slug = blocking(move || {
        let p = project_by_slug(&store, &slug)?;
        let label = Some(form.label.trim()).filter(|l| !l.is_empty());
        store.create_key(p.id, label, rate)?;
        Ok(p.slug)
    })
    .await?;
    Ok(Redirect::to(&format!("/settings/projects/{}/?done=key+created", format::url_encode(&slug))).into_response())
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /settings/projects/{slug}/keys/{key}/revoke`
pub async fn revoke_key(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path((slug, key)): Path<(String, String)>,
    Form(form): Form<CsrfOnly>,
) -> PageResult {
    user.check_csrf(&form.csrf, &headers)?;
    let store = state.store.clone();
    let slug = blocking(move || {
        let p = project_by_slug(&store, &slug)?;
        match store.key(&key)? {
            Some(k) if k.project_id == p.id => store.revoke_key(&key)?,
            _ => return Err(PageError::NotFound(format!("the project \"{}\" has no key {key}", p.slug))),
        };
        Ok(p.slug)
    })
    .await?;
    Ok(Redirect::to(&format!("/settings/projects/{}/?done=key+revoked", format::url_encode(&slug))).into_response())
}

#[derive(Deserialize)]
pub struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    admin: Option<String>,
}

/// `POST /settings/users` (administrators only)
pub async fn create_user(State(state): State<AppState>, user: CurrentUser, headers: HeaderMap, Form(form): Form<UserForm>) -> PageResult {
    user.check_csrf(&form.csrf, &headers)?;
    user.require_admin()?;
    check_new_password(&form.password, None).map_err(PageError::BadRequest)?;
    let store = state.store.clone();
    blocking(move || {
        let hash = hash_password(&form.password).map_err(PageError::Internal)?;
        store.create_user(&form.email, &hash, form.admin.is_some())?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/settings/?done=user+created").into_response())
}
