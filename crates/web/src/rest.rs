//! The REST API under `/api/0/`, in Sentry's shapes, for `sentry-cli` and people's scripts.
//! Every route is authenticated by an API token ([`Bearer`]) and goes through the access
//! check by its scope extractor ([`OrgScope`]`<Bearer>`, [`Viewer`]`<Bearer>`); refusals are
//! [`ApiError`]s (`{"detail": …}`). Lists carry Sentry's `Link` header (one page here).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use store::{Organization, Project, Team};

use crate::access::extract::{Bearer, OrgScope, Viewer};
use crate::access::{can, Action, Decision, Resource};
use crate::{ApiError, AppState, Routes};

/// The API's routes, listed (see [`crate::routes`]).
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/0/organizations/", organizations)
        .get("/api/0/organizations/{org}/projects/", org_projects)
}

/// A time as Sentry writes it: RFC 3339, UTC, milliseconds.
fn date(ts: f64) -> Value {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos((ts * 1e9) as i128).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let t = t.replace_nanosecond(t.millisecond() as u32 * 1_000_000).unwrap_or(t);
    Value::String(t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
}

fn org_json(o: &Organization) -> Value {
    json!({
        "id": o.id.to_string(),
        "slug": o.slug,
        "name": o.name,
        "dateCreated": date(o.created_at),
        "status": {"id": "active", "name": "active"},
        "isEarlyAdopter": false,
        "require2FA": false,
        "avatar": {"avatarType": "letter_avatar", "avatarUuid": null},
        "features": [],
    })
}

fn project_json(p: &Project, teams: &[Team], member: bool) -> Value {
    let teams: Vec<Value> = teams.iter().map(|t| json!({"id": t.id.to_string(), "slug": t.slug, "name": t.name})).collect();
    json!({
        "id": p.id.to_string(),
        "slug": p.slug,
        "name": p.name,
        "platform": null,
        "dateCreated": date(p.created_at),
        "isBookmarked": false,
        "isMember": member,
        "hasAccess": true,
        "status": "active",
        "features": [],
        "firstEvent": null,
        "team": teams.first().cloned(),
        "teams": teams,
    })
}

/// A one-page list with Sentry's `Link` header (no previous, no next page).
fn list(items: Vec<Value>, url: &str) -> Response {
    let link = format!(
        "<{url}?&cursor=0:0:1>; rel=\"previous\"; results=\"false\"; cursor=\"0:0:1\", \
         <{url}?&cursor=0:100:0>; rel=\"next\"; results=\"false\"; cursor=\"0:100:0\""
    );
    let mut resp = Json(Value::Array(items)).into_response();
    if let Ok(v) = HeaderValue::from_str(&link) {
        resp.headers_mut().insert(header::LINK, v);
    }
    resp
}

/// `GET /api/0/organizations/`: the organisations the token may read (`org:read`).
async fn organizations(State(state): State<AppState>, viewer: Viewer<Bearer>) -> Result<Response, ApiError> {
    let org = viewer.principal.token.org_id;
    let store = state.store.clone();
    let orgs = store::off_thread(move || store.organizations()).await?;
    let items = match can(&viewer.actor, Action::ViewOrg, Resource::Org(org)) {
        Decision::Allowed => orgs.iter().filter(|o| o.id == org).map(org_json).collect(),
        Decision::Forbidden => return Err(ApiError::Forbidden("You do not have permission to perform this action.".into())),
        Decision::Hidden => Vec::new(),
    };
    Ok(list(items, &format!("{}/api/0/organizations/", state.public_url)))
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
            items.push(project_json(&p, &of, ids.iter().any(|t| mine.contains(t))));
        }
        Ok::<_, store::StoreError>(items)
    })
    .await?;
    Ok(list(items, &url))
}
