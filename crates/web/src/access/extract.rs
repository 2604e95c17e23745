//! The extractors that carry the access check into handlers: who is asking ([`Principal`]: a
//! browser session, [`CurrentUser`], or an API token, [`Bearer`]), as an [`Actor`] loaded for
//! this request ([`Viewer`]), and the organisation or project of the URL once the actor may
//! see it ([`OrgScope`], [`ProjectScope`]). A handler asks for more with `require`, which is
//! [`can`] again; it never looks memberships up itself.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::header;
use axum::response::IntoResponse;
use store::{Organization, Project, Store, TeamId};

use super::{can, Action, Actor, Decision, Resource};
use crate::dashboard::auth::{token_hash, CurrentUser};
use crate::dashboard::PageError;
use crate::{ApiError, AppState};

/// A way of asking: it identifies the actor of a request, and says no in its own terms (a page
/// for a browser, JSON for an API client).
pub trait Principal: Sized + Send + Sync + 'static {
    type Error: IntoResponse + From<store::StoreError> + Send;

    /// Who asks, and the actor they are.
    fn identify(parts: &mut Parts, state: &AppState) -> impl Future<Output = Result<(Self, Actor), Self::Error>> + Send;

    /// The answer to a refusal: `what` names the thing asked for, as the person wrote it.
    fn refuse(decision: Decision, what: &str) -> Self::Error;
}

impl Principal for CurrentUser {
    type Error = PageError;

    async fn identify(parts: &mut Parts, state: &AppState) -> Result<(Self, Actor), PageError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        let store = state.store.clone();
        let id = user.user.id;
        let memberships = store::off_thread(move || store.memberships(id)).await?;
        let actor = Actor { user: Some(user.user.clone()), memberships, token: None };
        Ok((user, actor))
    }

    fn refuse(decision: Decision, what: &str) -> PageError {
        match decision {
            Decision::Hidden => PageError::NotFound(format!("there is no {what}")),
            _ => PageError::Forbidden(format!("your role does not allow this on {what}")),
        }
    }
}

/// A request authenticated by an API token: `Authorization: Bearer <token>`. Only a SHA-256 of
/// the token is looked up; using it records when it was last used. A revoked token, or the
/// personal token of someone no longer a member, is refused at its next request.
#[derive(Clone, Debug)]
pub struct Bearer {
    pub token: store::ApiToken,
}

impl Principal for Bearer {
    type Error = ApiError;

    async fn identify(parts: &mut Parts, state: &AppState) -> Result<(Self, Actor), ApiError> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let Some(secret) = header.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(ApiError::Unauthorized("Authentication credentials were not provided.".into()));
        };
        let hash = token_hash(secret);
        let store = state.store.clone();
        let found = store::off_thread(move || {
            let Some(token) = store.use_token(&hash)? else { return Ok(None) };
            let (user, memberships) = match token.user_id {
                Some(id) => {
                    (store.user(id)?, store.memberships(id)?)
                }
                None => (None, Vec::new()),
            };
            Ok::<_, store::StoreError>(Some((token, user, memberships)))
        })
        .await?;
        let Some((token, user, memberships)) = found else { return Err(ApiError::Unauthorized("Invalid token.".into())) };
        Ok((Bearer { token: token.clone() }, Actor { user, memberships, token: Some(token) }))
    }

    fn refuse(decision: Decision, what: &str) -> ApiError {
        match decision {
            Decision::Hidden => ApiError::NotFound(format!("There is no {what}.")),
            _ => ApiError::Forbidden("You do not have permission to perform this action.".into()),
        }
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> ApiError {
        match e {
            store::StoreError::NotFound(what) => ApiError::NotFound(format!("{what} does not exist")),
            store::StoreError::Invalid(why) | store::StoreError::Conflict(why) => ApiError::BadRequest(why),
            store::StoreError::Unavailable(why) => ApiError::Unavailable(why),
            e @ (store::StoreError::Backend(_) | store::StoreError::ClaimLost) => {
                tracing::error!(error = %e, "an API request failed");
                ApiError::Unavailable("something went wrong; try again".into())
            }
        }
    }
}

/// Anyone the principal `P` identifies, with their actor: pages that are not of one
/// organisation or project (the dashboard across projects, settings, the live stream of all).
pub struct Viewer<P = CurrentUser> {
    pub principal: P,
    pub actor: Actor,
}

impl<P: Principal> FromRequestParts<AppState> for Viewer<P> {
    type Rejection = P::Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, P::Error> {
        let (principal, actor) = P::identify(parts, state).await?;
        Ok(Viewer { principal, actor })
    }
}

impl<P: Principal> Viewer<P> {
    /// The projects the actor may see, oldest first, across their organisations.
    pub fn projects(&self, store: &Arc<dyn Store>) -> store::Result<Vec<Project>> {
        visible_projects(store, &self.actor)
    }

    /// `action` on `resource` is allowed, else the principal's refusal.
    pub fn require(&self, action: Action, resource: Resource<'_>, what: &str) -> Result<(), P::Error> {
        match can(&self.actor, action, resource) {
            Decision::Allowed => Ok(()),
            d => Err(P::refuse(d, what)),
        }
    }
}

/// The projects `actor` may see, oldest first.
pub fn visible_projects(store: &Arc<dyn Store>, actor: &Actor) -> store::Result<Vec<Project>> {
    let mut orgs: Vec<_> = actor.memberships.iter().map(|m| m.org.id).collect();
    if let Some(t) = &actor.token
        && !orgs.contains(&t.org_id)
    {
        orgs.push(t.org_id);
    }
    let mut out = Vec::new();
    for org in orgs {
        for p in store.org_projects(org)? {
            let teams = store.project_teams(p.id)?;
            if can(actor, Action::ViewProject, Resource::Project { org, teams: &teams }) == Decision::Allowed {
                out.push(p);
            }
        }
    }
    out.sort_by_key(|p| p.id);
    Ok(out)
}

/// The value of path parameter `name` (the router names it; a route without it is a bug).
async fn path_param(parts: &mut Parts, state: &AppState, name: &str) -> Result<String, String> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state).await.map_err(|e| e.to_string())?;
    params.get(name).cloned().ok_or_else(|| format!("the route has no {{{name}}}"))
}

/// The organisation of the URL (`{org}`, its slug), which the actor may see.
pub struct OrgScope<P = CurrentUser> {
    pub viewer: Viewer<P>,
    pub org: Organization,
}

impl<P: Principal> FromRequestParts<AppState> for OrgScope<P> {
    type Rejection = P::Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, P::Error> {
        let viewer = Viewer::<P>::from_request_parts(parts, state).await?;
        let slug = path_param(parts, state, "org").await.map_err(|e| P::Error::from(store::StoreError::Backend(e)))?;
        let what = format!("organisation \"{slug}\"");
        let store = state.store.clone();
        let org = store::off_thread(move || store.organization_by_slug(&slug)).await?.ok_or_else(|| P::refuse(Decision::Hidden, &what))?;
        viewer.require(Action::ViewOrg, Resource::Org(org.id), &what)?;
        Ok(OrgScope { viewer, org })
    }
}

impl<P: Principal> OrgScope<P> {
    pub fn require(&self, action: Action) -> Result<(), P::Error> {
        self.viewer.require(action, Resource::Org(self.org.id), &format!("organisation \"{}\"", self.org.slug))
    }

    /// Whether `action` is allowed (to show or hide a form).
    pub fn allows(&self, action: Action) -> bool {
        can(&self.viewer.actor, action, Resource::Org(self.org.id)) == Decision::Allowed
    }
}

/// The project of the URL (`{slug}`), which the actor may see.
pub struct ProjectScope<P = CurrentUser> {
    pub viewer: Viewer<P>,
    pub project: Project,
    pub teams: Vec<TeamId>,
}

impl<P: Principal> FromRequestParts<AppState> for ProjectScope<P> {
    type Rejection = P::Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, P::Error> {
        let viewer = Viewer::<P>::from_request_parts(parts, state).await?;
        let slug = path_param(parts, state, "slug").await.map_err(|e| P::Error::from(store::StoreError::Backend(e)))?;
        let what = format!("project \"{slug}\"");
        let store = state.store.clone();
        let found = store::off_thread(move || {
            let Some(p) = store.project_by_slug(&slug)? else { return Ok(None) };
            let teams = store.project_teams(p.id)?;
            Ok::<_, store::StoreError>(Some((p, teams)))
        })
        .await?;
        let (project, teams) = found.ok_or_else(|| P::refuse(Decision::Hidden, &what))?;
        let scope = ProjectScope { viewer, project, teams };
        scope.require(Action::ViewProject)?;
        Ok(scope)
    }
}

impl<P: Principal> ProjectScope<P> {
    fn resource(&self) -> Resource<'_> {
        Resource::Project { org: self.project.org_id, teams: &self.teams }
    }

    pub fn require(&self, action: Action) -> Result<(), P::Error> {
        self.viewer.require(action, self.resource(), &format!("project \"{}\"", self.project.slug))
    }

    /// Whether `action` is allowed (to show or hide a form).
    pub fn allows(&self, action: Action) -> bool {
        can(&self.viewer.actor, action, self.resource()) == Decision::Allowed
    }
}
