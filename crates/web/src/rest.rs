//! The REST API under `/api/0/`, in Sentry's shapes, for `sentry-cli` and people's scripts.
//! Every route is authenticated by an API token ([`Bearer`]) and goes through the access
//! check by its scope extractor ([`OrgScope`]`<Bearer>`, [`Viewer`]`<Bearer>`, [`ApiProject`]);
//! refusals are [`ApiError`]s (`{"detail": …}`). Lists carry Sentry's `Link` header, with a
//! cursor when there is a next page.
//!
//! - here: authentication info, organisations, projects, teams, members, client keys;
//! - `releases`: releases, deploys and a release's files;
//! - `uploads`: the chunk upload service and the assembly of artifact bundles and release files;
//! - `issues`: issues (list with search, bulk changes; one issue read, changed, deleted) and their events;
//! - `types`: the JSON the API answers with (its own types, never store rows);
//! - `/api/0/openapi.json`: the OpenAPI document, built from the route list and [`DOCS`].
//!
//! Bodies are read as bytes and parsed here, so that a body that is not JSON is a 400 with a
//! reason after the access check, never a rejection before it.

mod issues;
mod releases;
pub(crate) mod types;
mod uploads;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use store::{Project, Team};

use crate::access::extract::{Bearer, OrgScope, ProjectScope, Viewer};
use crate::access::{can, Action, Decision, Resource};
use crate::{ApiError, AppState, Routes};
use types::{ApiKey, ApiMember, ApiOrganization, ApiProject as ProjectJson, ApiTeam, AuthInfo};

/// The API's routes, listed (see [`crate::routes`]).
pub(crate) fn routes() -> Routes {
    let r = Routes::new()
        .get("/api/0/", auth_info)
        .get("/api/0/openapi.json", openapi)
        .get("/api/0/organizations/", organizations)
        .get("/api/0/organizations/{org}/", organization)
        .get("/api/0/organizations/{org}/projects/", org_projects)
        .get("/api/0/organizations/{org}/teams/", teams)
        .get("/api/0/organizations/{org}/members/", members)
        .get("/api/0/projects/{org}/{slug}/", project)
        .get("/api/0/projects/{org}/{slug}/keys/", keys)
        .post("/api/0/projects/{org}/{slug}/keys/", create_key)
        .delete("/api/0/projects/{org}/{slug}/keys/{key}/", revoke_key);
    let r = releases::routes(r);
    let r = uploads::routes(r);
    issues::routes(r)
}

/// The most items one page of a list holds.
pub(crate) const PAGE: usize = 100;

/// A list with Sentry's `Link` header: a previous page never (pages go forward), a next one
/// when `next` is a cursor.
pub(crate) fn list<T: serde::Serialize>(items: Vec<T>, url: &str, next: Option<String>) -> Response {
    let (more, cursor) = match &next {
        Some(c) => ("true", c.as_str()),
        None => ("false", "0:100:0"),
    };
    let link = format!(
        "<{url}?&cursor=0:0:1>; rel=\"previous\"; results=\"false\"; cursor=\"0:0:1\", \
         <{url}?&cursor={cursor}>; rel=\"next\"; results=\"{more}\"; cursor=\"{cursor}\""
    );
    let mut resp = Json(items).into_response();
    if let Ok(v) = HeaderValue::from_str(&link) {
        resp.headers_mut().insert(header::LINK, v);
    }
    resp
}

/// The pairs of a query string (`?id=1&id=2` gives both).
pub(crate) fn query_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref().and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default()
}

/// The first value of `key` in a query string.
pub(crate) fn query_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A JSON body, or a 400 that says what is wrong with it.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("the request needs a JSON body".into()));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON for this request: {e}")))
}

/// A JSON answer with a status.
pub(crate) fn answer<T: serde::Serialize>(status: StatusCode, value: T) -> Response {
    (status, Json(value)).into_response()
}

/// The project of the URL (`/api/0/projects/{org}/{slug}/…`), which the token's actor may
/// see, and which belongs to the organisation the URL names (else 404).
pub(crate) struct ApiProject {
    pub scope: ProjectScope<Bearer>,
    pub org: store::Organization,
}

impl FromRequestParts<AppState> for ApiProject {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let scope = ProjectScope::<Bearer>::from_request_parts(parts, state).await?;
        let Path(params) = Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let org = params.get("org").cloned().unwrap_or_default();
        let store = state.store.clone();
        let found = store::off_thread(move || store.organization_by_slug(&org)).await?;
        match found {
            Some(org) if org.id == scope.project.org_id => Ok(ApiProject { scope, org }),
            _ => Err(ApiError::NotFound(format!("There is no project \"{}\" in this organisation.", scope.project.slug))),
        }
    }
}

impl ApiProject {
    pub fn project(&self) -> &Project {
        &self.scope.project
    }

    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        self.scope.require(action)
    }
}

/// `GET /api/0/`: who the token is and what it may do (any live token).
async fn auth_info(viewer: Viewer<Bearer>) -> Json<AuthInfo> {
    Json(AuthInfo::of(&viewer.actor, &viewer.principal.token))
}

/// `GET /api/0/organizations/`: the organisations the token may read (`org:read`).
async fn organizations(State(state): State<AppState>, viewer: Viewer<Bearer>) -> Result<Response, ApiError> {
    let org = viewer.principal.token.org_id;
    let store = state.store.clone();
    let orgs = store::off_thread(move || store.organizations()).await?;
    let items: Vec<ApiOrganization> = match can(&viewer.actor, Action::ViewOrg, Resource::Org(org)) {
        Decision::Allowed => orgs.iter().filter(|o| o.id == org).map(ApiOrganization::from).collect(),
        Decision::Forbidden => return Err(ApiError::Forbidden("You do not have permission to perform this action.".into())),
        Decision::Hidden => Vec::new(),
    };
    Ok(list(items, &format!("{}/api/0/organizations/", state.public_url), None))
}

/// `GET /api/0/organizations/{org}/`.
async fn organization(scope: OrgScope<Bearer>) -> Json<ApiOrganization> {
    Json(ApiOrganization::from(&scope.org))
}

/// `GET /api/0/organizations/{org}/projects/`: the organisation's projects the token's actor
/// may know of (`org:read`).
async fn org_projects(State(state): State<AppState>, scope: OrgScope<Bearer>) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let url = format!("{}/api/0/organizations/{}/projects/", state.public_url, scope.org.slug);
    let items = store::off_thread(move || {
        let teams = store.teams(scope.org.id)?;
        let mine = scope.viewer.actor.membership(scope.org.id).map(|m| m.teams.clone()).unwrap_or_default();
        let mut items = Vec::new();
        for p in store.org_projects(scope.org.id)? {
            let ids = store.project_teams(p.id)?;
            if can(&scope.viewer.actor, Action::ViewProject, Resource::Project { org: p.org_id, teams: &ids }) == Decision::Hidden {
                continue;
            }
            let of: Vec<Team> = teams.iter().filter(|t| ids.contains(&t.id)).cloned().collect();
            items.push(ProjectJson::of(&p, &of, ids.iter().any(|t| mine.contains(t))).seen(&*store, &p)?);
        }
        Ok::<_, store::StoreError>(items)
    })
    .await?;
    Ok(list(items, &url, None))
}

/// `GET /api/0/organizations/{org}/teams/`.
async fn teams(State(state): State<AppState>, scope: OrgScope<Bearer>) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let url = format!("{}/api/0/organizations/{}/teams/", state.public_url, scope.org.slug);
    let org = scope.org.id;
    let mine = scope.viewer.actor.membership(org).map(|m| m.teams.clone()).unwrap_or_default();
    let items = store::off_thread(move || {
        let members = store.members(org)?;
        let projects = store.org_projects(org)?;
        let mut counts = std::collections::HashMap::new();
        for p in &projects {
            for t in store.project_teams(p.id)? {
                *counts.entry(t).or_insert(0usize) += 1;
            }
        }
        let teams = store.teams(org)?;
        Ok::<_, store::StoreError>(
            teams
                .iter()
                .map(|t| {
                    let n = members.iter().filter(|m| m.teams.contains(&t.id)).count();
                    ApiTeam::of(t, n, mine.contains(&t.id), counts.get(&t.id).copied().unwrap_or(0))
                })
                .collect::<Vec<_>>(),
        )
    })
    .await?;
    Ok(list(items, &url, None))
}

/// `GET /api/0/organizations/{org}/members/` (`member:read`).
async fn members(State(state): State<AppState>, scope: OrgScope<Bearer>) -> Result<Response, ApiError> {
    scope.require(Action::ViewMembers)?;
    let store = state.store.clone();
    let url = format!("{}/api/0/organizations/{}/members/", state.public_url, scope.org.slug);
    let org = scope.org.id;
    let members = store::off_thread(move || store.members(org)).await?;
    Ok(list(members.iter().map(ApiMember::from).collect::<Vec<_>>(), &url, None))
}

/// `GET /api/0/projects/{org}/{project}/`.
async fn project(State(state): State<AppState>, p: ApiProject) -> Result<Json<ProjectJson>, ApiError> {
    let store = state.store.clone();
    let project = p.project().clone();
    let mine = p.scope.viewer.actor.membership(project.org_id).map(|m| m.teams.clone()).unwrap_or_default();
    let ids = p.scope.teams.clone();
    let member = p.scope.teams.iter().any(|t| mine.contains(t));
    let json = store::off_thread(move || {
        let of: Vec<Team> = store.teams(project.org_id)?.into_iter().filter(|t| ids.contains(&t.id)).collect();
        ProjectJson::of(&project, &of, member).seen(&*store, &project)
    })
    .await?;
    Ok(Json(json))
}

/// `GET /api/0/projects/{org}/{project}/keys/`: the client keys (DSNs), revoked ones not
/// included (`project:write`, like the project's settings page).
async fn keys(State(state): State<AppState>, p: ApiProject) -> Result<Response, ApiError> {
    p.require(Action::ManageProject)?;
    let store = state.store.clone();
    let project = p.project().clone();
    let url = format!("{}/api/0/projects/{}/{}/keys/", state.public_url, p.org.slug, project.slug);
    let keys = store::off_thread(move || store.keys(project.id)).await?;
    let items: Vec<ApiKey> = keys.iter().filter(|k| k.is_active()).filter_map(|k| ApiKey::of(k, &state.public_url)).collect();
    Ok(list(items, &url, None))
}

#[derive(serde::Deserialize)]
struct NewKey {
    name: Option<String>,
    #[serde(rename = "rateLimit")]
    rate_limit: Option<serde_json::Value>,
}

/// `POST /api/0/projects/{org}/{project}/keys/` with `{"name": …}`: a new client key, 201.
async fn create_key(State(state): State<AppState>, p: ApiProject, body: bytes::Bytes) -> Result<Response, ApiError> {
    p.require(Action::ManageProject)?;
    let new: NewKey = json_body(&body)?;
    // Sentry's shape: {"rateLimit": {"window": seconds, "count": n}}; kept per minute here.
    let per_minute = match &new.rate_limit {
        Some(serde_json::Value::Object(o)) => {
            let count = o.get("count").and_then(|v| v.as_u64()).unwrap_or(0);
            let window = o.get("window").and_then(|v| v.as_u64()).unwrap_or(60).max(1);
            (count > 0).then(|| (count * 60).div_ceil(window))
        }
        _ => None,
    };
    let name = new.name.map(|n| n.trim().chars().take(64).collect::<String>()).filter(|n| !n.is_empty());
    let store = state.store.clone();
    let project = p.project().id;
    let key = store::off_thread(move || store.create_key(project, name.as_deref(), per_minute)).await?;
    let json = ApiKey::of(&key, &state.public_url).ok_or_else(|| ApiError::Unavailable("something went wrong; try again".into()))?;
    Ok(answer(StatusCode::CREATED, json))
}

/// `DELETE /api/0/projects/{org}/{project}/keys/{key}/`: revokes a client key, 204.
async fn revoke_key(
    State(state): State<AppState>,
    p: ApiProject,
    Path((_, _, key)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    p.require(Action::ManageProject)?;
    let store = state.store.clone();
    let project = p.project().id;
    let done = store::off_thread(move || {
        match store.key(&key)? {
            Some(k) if k.project_id == project => store.revoke_key(&key),
            _ => Ok(false),
        }
    })
    .await?;
    if !done {
        return Err(ApiError::NotFound("There is no such client key in this project.".into()));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The page of a query string's `cursor` (ours: the last id shown, `0:<id>:0`).
pub(crate) fn cursor_id(raw: &Option<String>) -> Option<i64> {
    let pairs = query_pairs(raw);
    let c = query_value(&pairs, "cursor")?;
    c.split(':').nth(1).and_then(|id| id.parse().ok()).filter(|id: &i64| *id > 0)
}

/// The `Link` cursor after the last id shown.
pub(crate) fn next_cursor(last_id: i64) -> String {
    format!("0:{last_id}:0")
}

/// What each route is for and the scopes it needs (all of them; `project:releases` may be
/// `project:write`, a `…:read` scope its `…:write` or `…:admin`): the OpenAPI document is built from
/// this table and the route list ([`routes`]); a test keeps the two the same.
const DOCS: &[(&str, &str, &str, &str)] = &[
    ("GET", "/api/0/", "Who the token is and its scopes", ""),
    ("GET", "/api/0/openapi.json", "This document", ""),
    ("GET", "/api/0/organizations/", "The organisations the token may read", "org:read"),
    ("GET", "/api/0/organizations/{org}/", "An organisation", "org:read"),
    ("GET", "/api/0/organizations/{org}/projects/", "An organisation's projects", "org:read"),
    ("GET", "/api/0/organizations/{org}/teams/", "An organisation's teams", "org:read"),
    ("GET", "/api/0/organizations/{org}/members/", "An organisation's members", "org:read member:read"),
    ("GET", "/api/0/projects/{org}/{slug}/", "A project", "project:read"),
    ("GET", "/api/0/projects/{org}/{slug}/keys/", "A project's client keys (DSNs)", "project:read project:write"),
    ("POST", "/api/0/projects/{org}/{slug}/keys/", "Creates a client key: {\"name\"}", "project:read project:write"),
    ("DELETE", "/api/0/projects/{org}/{slug}/keys/{key}/", "Revokes a client key", "project:read project:write"),
    ("GET", "/api/0/organizations/{org}/releases/", "An organisation's releases, newest first (?project=ID, ?query=TEXT)", "org:read"),
    ("GET", "/api/0/projects/{org}/{slug}/releases/", "A project's releases, newest first", "project:read"),
    ("POST", "/api/0/organizations/{org}/releases/", "Creates a release: {\"version\", \"projects\", \"ref\", \"url\", \"dateReleased\"}; 208 when it exists", "org:read project:releases"),
    ("GET", "/api/0/organizations/{org}/releases/{version}/", "A release", "org:read"),
    ("PUT", "/api/0/organizations/{org}/releases/{version}/", "Changes or finalises a release: {\"dateReleased\", \"ref\", \"url\", \"projects\"}", "org:read project:releases"),
    ("DELETE", "/api/0/organizations/{org}/releases/{version}/", "Deletes a release with its deploys and files", "org:read project:releases"),
    ("GET", "/api/0/organizations/{org}/releases/{version}/deploys/", "A release's deploys, newest first", "org:read"),
    ("POST", "/api/0/organizations/{org}/releases/{version}/deploys/", "Records a deploy: {\"environment\", \"name\", \"url\", \"dateStarted\", \"dateFinished\"}", "org:read project:releases"),
    ("GET", "/api/0/organizations/{org}/releases/{version}/files/", "The files uploaded for a release by name", "org:read"),
    ("GET", "/api/0/organizations/{org}/chunk-upload/", "How to upload chunks: sizes, SHA-1, gzip", "org:read project:releases"),
    ("POST", "/api/0/organizations/{org}/chunk-upload/", "Uploads chunks (multipart, each named by its SHA-1; gzip as file_gzip)", "org:read project:releases"),
    ("POST", "/api/0/organizations/{org}/artifactbundle/assemble/", "Assembles an artifact bundle from chunks: {\"checksum\", \"chunks\", \"projects\"}; answers the missing ones", "org:read project:releases"),
    ("POST", "/api/0/organizations/{org}/releases/{version}/assemble/", "Assembles a release's files from chunks", "org:read project:releases"),
    ("GET", "/api/0/projects/{org}/{slug}/issues/", "A project's issues (?query= in the search syntax, ?statsPeriod=24h, ?sort=, ?cursor=)", "project:read"),
    ("PUT", "/api/0/projects/{org}/{slug}/issues/", "Changes issues (?id=…, or those ?query= selects): {\"status\", \"statusDetails\", \"assignedTo\"}", "project:read event:write"),
    ("GET", "/api/0/projects/{org}/{slug}/events/{event_id}/", "An event", "project:read event:read"),
    ("GET", "/api/0/projects/{org}/{slug}/events/{event_id}/json/", "An event's JSON as stored", "project:read event:read"),
    ("GET", "/api/0/organizations/{org}/issues/{id}/", "An issue", "org:read project:read"),
    ("PUT", "/api/0/organizations/{org}/issues/{id}/", "Changes an issue: {\"status\", \"statusDetails\", \"assignedTo\"}; answers the issue", "org:read project:read event:write"),
    ("DELETE", "/api/0/organizations/{org}/issues/{id}/", "Deletes an issue with its events (202)", "org:read project:read event:write"),
    ("GET", "/api/0/issues/{id}/", "An issue of the token's organisation", "org:read project:read"),
    ("PUT", "/api/0/issues/{id}/", "Changes an issue of the token's organisation: {\"status\", \"statusDetails\", \"assignedTo\"}", "org:read project:read event:write"),
    ("DELETE", "/api/0/issues/{id}/", "Deletes an issue of the token's organisation with its events (202)", "org:read project:read event:write"),
    ("GET", "/api/0/issues/{id}/comments/", "An issue's comments, newest first", "org:read project:read"),
    ("POST", "/api/0/issues/{id}/comments/", "Comments on an issue: {\"text\"} (Markdown; @email mentions a member, who is emailed); a personal token", "org:read project:read event:write"),
    ("GET", "/api/0/organizations/{org}/issues/{id}/events/", "An issue's events, newest first", "org:read project:read event:read"),
    ("GET", "/api/0/organizations/{org}/issues/{id}/events/latest/", "An issue's newest event", "org:read project:read event:read"),
];

/// `GET /api/0/openapi.json`: the API's routes, parameters, what each is for and the scope it
/// needs, as OpenAPI 3.1 (public: it tells no data).
async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(openapi_document(&state.public_url))
}

fn openapi_document(server: &str) -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for (method, path) in routes().list {
        let Some((_, _, summary, scope)) = DOCS.iter().find(|d| d.0 == method && d.1 == path) else { continue };
        let params: Vec<serde_json::Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| serde_json::json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let security = match (path.ends_with("openapi.json"), scope.is_empty()) {
            (true, _) => serde_json::json!([]),
            (false, true) => serde_json::json!([{"token": []}]),
            (false, false) => serde_json::json!([{"token": scope.split(' ').collect::<Vec<_>>()}]),
        };
        let op = serde_json::json!({
            "summary": summary,
            "parameters": params,
            "security": security,
            "responses": {
                "200": {"description": "OK"},
                "400": {"description": "The request is malformed; `detail` says how"},
                "401": {"description": "No token, or one that is unknown or revoked"},
                "403": {"description": "The token's scopes or its user's role do not allow this"},
                "404": {"description": "No such thing, or not visible to the token"}
            }
        });
        let entry = paths.entry(path.to_string()).or_insert_with(|| serde_json::json!({}));
        entry[method.to_ascii_lowercase()] = op;
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "Sentry API", "version": env!("CARGO_PKG_VERSION"), "description": "The Sentry-compatible subset of /api/0/ that sentry-cli and scripts use."},
        "servers": [{"url": server}],
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer", "description": "An API token: sentry token create"}}},
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc = super::openapi_document("http://x");
        for (method, path) in super::routes().list {
            let op = &doc["paths"][path][method.to_ascii_lowercase()];
            assert!(op["summary"].is_string(), "{method} {path} has no entry in rest::DOCS");
        }
        assert!(super::DOCS.iter().all(|d| super::routes().list.contains(&(d.0, d.1))), "DOCS names a route that does not exist");
    }
}
