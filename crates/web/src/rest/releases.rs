//! Releases, their deploys and files: `/api/0/organizations/{org}/releases/…`, as
//! `sentry-cli releases` and `deploys` use them. A release belongs to the organisation and
//! names some of its projects; reading needs `project:releases` (or `project:read`,
//! `org:read`), changing needs `project:releases` (or `project:write`).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::{NewDeploy, OrgId, Project, ProjectId, Release, ReleaseChange};

use super::types::{ApiDeploy, ApiFile, ApiRelease, ReleaseProject};
use super::{answer, cursor_id, json_body, list, next_cursor, query_pairs, query_value, ApiProject, PAGE};
use crate::access::extract::{Bearer, OrgScope};
use crate::access::Action;
use crate::{ApiError, AppState, Routes};

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/api/0/organizations/{org}/releases/", releases)
        .get("/api/0/projects/{org}/{slug}/releases/", project_releases)
        .post("/api/0/organizations/{org}/releases/", create_release)
        .get("/api/0/organizations/{org}/releases/{version}/", release)
        .put("/api/0/organizations/{org}/releases/{version}/", update_release)
        .delete("/api/0/organizations/{org}/releases/{version}/", delete_release)
        .get("/api/0/organizations/{org}/releases/{version}/deploys/", deploys)
        .post("/api/0/organizations/{org}/releases/{version}/deploys/", create_deploy)
        .get("/api/0/organizations/{org}/releases/{version}/files/", files)
}

/// Sentry's dates: RFC 3339 (with or without fraction and offset).
pub(super) fn parse_date(s: &str) -> Result<f64, ApiError> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .or_else(|_| time::PrimitiveDateTime::parse(s, &time::format_description::well_known::Iso8601::DEFAULT).map(|t| t.assume_utc()))
        .map_err(|_| ApiError::BadRequest(format!("\"{s}\" is not a date: use RFC 3339, like 2026-01-31T12:00:00Z")))?;
    Ok(t.unix_timestamp_nanos() as f64 / 1e9)
}

fn opt_date(s: &Option<String>) -> Result<Option<f64>, ApiError> {
    s.as_deref().map(parse_date).transpose()
}

/// The organisation's projects by slug: each named one must exist and be the actor's to see.
fn projects_named(store: &dyn store::Store, org: OrgId, slugs: &[String]) -> Result<Vec<ProjectId>, ApiError> {
    let all = store.org_projects(org)?;
    slugs
        .iter()
        .map(|s| {
            all.iter()
                .find(|p| &p.slug == s)
                .map(|p| p.id)
                .ok_or_else(|| ApiError::BadRequest(format!("the organisation has no project \"{s}\"")))
        })
        .collect()
}

/// A release as the API shows it, with its projects and deploys.
fn shown(store: &dyn store::Store, r: &Release) -> Result<ApiRelease, ApiError> {
    let projects: Vec<Project> = store.org_projects(r.org_id)?;
    let deploys = store.deploys(r.id)?;
    // Events and new issues, over the release's projects.
    let (mut first, mut last, mut new) = (None::<f64>, None::<f64>, 0);
    let mut refs = Vec::new();
    for p in projects.iter().filter(|p| r.projects.contains(&p.id)) {
        let a = store.release_activity(p.id, &r.version)?;
        first = match (first, a.first_seen) { (Some(x), Some(y)) => Some(x.min(y)), (x, y) => x.or(y) };
        last = match (last, a.last_seen) { (Some(x), Some(y)) => Some(x.max(y)), (x, y) => x.or(y) };
        new += a.new_groups.len() as u64;
        refs.push(ReleaseProject { id: p.id.0, slug: p.slug.clone(), name: p.name.clone(), new_groups: a.new_groups.len() as u64, platform: None, platforms: Vec::new() });
    }
    let mut json = ApiRelease::of(r, refs, &deploys);
    json.first_event = first.map(super::types::date);
    json.last_event = last.map(super::types::date);
    json.new_groups = new;
    Ok(json)
}

async fn find(state: &AppState, org: OrgId, version: String) -> Result<Release, ApiError> {
    let store = state.store.clone();
    let what = version.clone();
    store::off_thread(move || store.release(org, &version))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("There is no release \"{what}\".")))
}

/// `GET …/releases/?project=ID&query=TEXT`: newest first, 100 a page.
async fn releases(State(state): State<AppState>, scope: OrgScope<Bearer>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    scope.require(Action::ViewReleases)?;
    let pairs = query_pairs(&raw);
    let project = query_value(&pairs, "project").and_then(|p| p.parse().ok()).map(ProjectId);
    let text = query_value(&pairs, "query").map(str::to_string).unwrap_or_default();
    let after = cursor_id(&raw);
    let org = scope.org.id;
    let url = format!("{}/api/0/organizations/{}/releases/", state.public_url, scope.org.slug);
    let store = state.store.clone();
    let (items, next) = store::off_thread(move || {
        let rows = store.releases(org, project, after, PAGE + 1)?;
        let next = (rows.len() > PAGE).then(|| next_cursor(rows[PAGE - 1].id));
        let mut items = Vec::new();
        for r in rows.iter().take(PAGE).filter(|r| r.version.contains(text.as_str())) {
            items.push(shown(&*store, r)?);
        }
        Ok::<_, ApiError>((items, next))
    })
    .await?;
    Ok(list(items, &url, next))
}

/// `GET /api/0/projects/{org}/{project}/releases/`: the releases of one project.
async fn project_releases(State(state): State<AppState>, p: ApiProject, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    p.require(Action::ViewReleases)?;
    let after = cursor_id(&raw);
    let (org, project) = (p.org.id, p.project().id);
    let url = format!("{}/api/0/projects/{}/{}/releases/", state.public_url, p.org.slug, p.project().slug);
    let store = state.store.clone();
    let (items, next) = store::off_thread(move || {
        let rows = store.releases(org, Some(project), after, PAGE + 1)?;
        let next = (rows.len() > PAGE).then(|| next_cursor(rows[PAGE - 1].id));
        let items = rows.iter().take(PAGE).map(|r| shown(&*store, r)).collect::<Result<Vec<_>, _>>()?;
        Ok::<_, ApiError>((items, next))
    })
    .await?;
    Ok(list(items, &url, next))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReleaseBody {
    version: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    url: Option<String>,
    date_released: Option<String>,
    #[serde(default)]
    projects: Vec<String>,
}

/// `POST …/releases/` with `{"version", "projects", "ref", "url", "dateReleased"}`: 201, or 208
/// with the release when it exists already (its projects then grow).
async fn create_release(State(state): State<AppState>, scope: OrgScope<Bearer>, body: bytes::Bytes) -> Result<Response, ApiError> {
    scope.require(Action::Release)?;
    let b: ReleaseBody = json_body(&body)?;
    let version = b.version.clone().filter(|v| !v.trim().is_empty()).ok_or_else(|| ApiError::BadRequest("a release needs a \"version\"".into()))?;
    let released_at = opt_date(&b.date_released)?;
    let org = scope.org.id;
    let store = state.store.clone();
    let (json, created) = store::off_thread(move || {
        let projects = projects_named(&*store, org, &b.projects)?;
        let change = ReleaseChange { reference: b.reference, url: b.url, released_at, projects };
        let (r, created) = store.upsert_release(org, &version, &change)?;
        Ok::<_, ApiError>((shown(&*store, &r)?, created))
    })
    .await?;
    Ok(answer(if created { StatusCode::CREATED } else { StatusCode::ALREADY_REPORTED }, json))
}

/// `GET …/releases/{version}/`.
async fn release(State(state): State<AppState>, scope: OrgScope<Bearer>, Path((_, version)): Path<(String, String)>) -> Result<Response, ApiError> {
    scope.require(Action::ViewReleases)?;
    let r = find(&state, scope.org.id, version).await?;
    let store = state.store.clone();
    let json = store::off_thread(move || shown(&*store, &r)).await?;
    Ok(answer(StatusCode::OK, json))
}

/// `PUT …/releases/{version}/` with any of `{"ref", "url", "dateReleased", "projects"}`
/// (`sentry-cli releases finalize` sets `dateReleased`).
async fn update_release(
    State(state): State<AppState>,
    scope: OrgScope<Bearer>,
    Path((_, version)): Path<(String, String)>,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    scope.require(Action::Release)?;
    let b: ReleaseBody = json_body(&body)?;
    let released_at = opt_date(&b.date_released)?;
    let r = find(&state, scope.org.id, version).await?;
    let store = state.store.clone();
    let json = store::off_thread(move || {
        let projects = projects_named(&*store, r.org_id, &b.projects)?;
        let change = ReleaseChange { reference: b.reference, url: b.url, released_at, projects };
        let (r, _) = store.upsert_release(r.org_id, &r.version, &change)?;
        shown(&*store, &r)
    })
    .await?;
    Ok(answer(StatusCode::OK, json))
}

/// `DELETE …/releases/{version}/`: the release, its deploys and files; 204.
async fn delete_release(State(state): State<AppState>, scope: OrgScope<Bearer>, Path((_, version)): Path<(String, String)>) -> Result<Response, ApiError> {
    scope.require(Action::Release)?;
    let org = scope.org.id;
    let store = state.store.clone();
    let what = version.clone();
    if !store::off_thread(move || store.delete_release(org, &version)).await? {
        return Err(ApiError::NotFound(format!("There is no release \"{what}\".")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET …/releases/{version}/deploys/`: newest first.
async fn deploys(State(state): State<AppState>, scope: OrgScope<Bearer>, Path((_, version)): Path<(String, String)>) -> Result<Response, ApiError> {
    scope.require(Action::ViewReleases)?;
    let r = find(&state, scope.org.id, version.clone()).await?;
    let store = state.store.clone();
    let deploys = store::off_thread(move || store.deploys(r.id)).await?;
    let url = format!("{}/api/0/organizations/{}/releases/{version}/deploys/", state.public_url, scope.org.slug);
    Ok(list(deploys.iter().map(ApiDeploy::from).collect::<Vec<_>>(), &url, None))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeployBody {
    environment: Option<String>,
    name: Option<String>,
    url: Option<String>,
    date_started: Option<String>,
    date_finished: Option<String>,
}

/// `POST …/releases/{version}/deploys/` with `{"environment", "name", "url", "dateStarted",
/// "dateFinished"}`: 201.
async fn create_deploy(
    State(state): State<AppState>,
    scope: OrgScope<Bearer>,
    Path((_, version)): Path<(String, String)>,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    scope.require(Action::Release)?;
    let b: DeployBody = json_body(&body)?;
    let environment = b.environment.filter(|e| !e.trim().is_empty()).ok_or_else(|| ApiError::BadRequest("a deploy needs an \"environment\"".into()))?;
    let new = NewDeploy { environment, name: b.name, url: b.url, started_at: opt_date(&b.date_started)?, finished_at: opt_date(&b.date_finished)? };
    let r = find(&state, scope.org.id, version).await?;
    let store = state.store.clone();
    let d = store::off_thread(move || store.create_deploy(r.id, &new)).await?;
    Ok(answer(StatusCode::CREATED, ApiDeploy::from(&d)))
}

/// `GET …/releases/{version}/files/`: the files uploaded for the release by name (the older
/// upload; artifact bundles are found by debug id).
async fn files(State(state): State<AppState>, scope: OrgScope<Bearer>, Path((_, version)): Path<(String, String)>) -> Result<Response, ApiError> {
    scope.require(Action::ViewReleases)?;
    let r = find(&state, scope.org.id, version.clone()).await?;
    let store = state.store.clone();
    let files = store::off_thread(move || store.release_artifacts(r.org_id, &r.version)).await?;
    let url = format!("{}/api/0/organizations/{}/releases/{version}/files/", state.public_url, scope.org.slug);
    Ok(list(files.iter().map(ApiFile::from).collect::<Vec<_>>(), &url, None))
}
