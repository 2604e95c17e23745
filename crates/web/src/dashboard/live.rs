//! Live updates: a server-sent events stream fed by the ingest pipeline's broadcast. It opens
//! with `event: hello` (data `{}`); then, per committed batch that touched a group of the page's
//! project (for `/live`, of any project the viewer may see), one `event: groups` whose data is a JSON array with one
//! object per group, `{"project_id": id, "group": id, "new": bool, "regression": bool}`. When the
//! stream fell behind and missed batches it sends `groups` with `[]`. While open, the stream
//! checks again (at most every two seconds, when a batch arrives) that its session is live and
//! still sees the projects; it ends when it sees none. A comment every 15 seconds
//! keeps the connection open; the stream ends when the server stops. The page's script reloads
//! its list when `groups` arrives; without script the page simply does not update itself.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use super::PageResult;
use crate::access::extract::{visible_projects, ProjectScope, Viewer};
use crate::access::Actor;
use crate::AppState;

/// How often an open stream checks again that its viewer may still see its projects.
const RECHECK: Duration = Duration::from_secs(2);

/// Who watches a stream: checked again while it is open, so that a removed member, a logout
/// or a new password ends it, as it would their next request.
struct Watcher {
    store: std::sync::Arc<dyn store::Store>,
    session_hash: String,
    user: store::UserId,
    checked: std::time::Instant,
}

impl Watcher {
    /// Narrows `projects` to those the viewer may still see (none: the session is over).
    async fn recheck(&mut self, projects: Vec<store::ProjectId>) -> Vec<store::ProjectId> {
        if self.checked.elapsed() < RECHECK {
            return projects;
        }
        self.checked = std::time::Instant::now();
        let (store, hash, user) = (self.store.clone(), self.session_hash.clone(), self.user);
        let visible = store::off_thread(move || {
            let Some(session) = store.session(&hash)? else { return Ok(Vec::new()) };
            let actor = Actor { user: Some(session.user), memberships: store.memberships(user)?, token: None };
            Ok::<_, store::StoreError>(visible_projects(&store, &actor)?.into_iter().map(|p| p.id).collect::<Vec<_>>())
        })
        .await
        .unwrap_or_default();
        projects.into_iter().filter(|p| visible.contains(p)).collect()
    }
}

/// The stream of the updates of `projects` (those the viewer could see when it opened, and
/// still can).
fn events(state: &AppState, viewer: &Viewer, project: Vec<store::ProjectId>) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
    let rx = state.pipeline.subscribe();
    let hello = Event::default().event("hello").data("{}");
    let watcher = Watcher {
        store: state.store.clone(),
        session_hash: viewer.principal.session_hash().to_string(),
        user: viewer.principal.user.id,
        checked: std::time::Instant::now(),
    };
    let updates = stream::unfold((rx, project, watcher), |(mut rx, project, mut watcher)| async move {
        let mut project = project;
        loop {
            let next = rx.recv().await;
            project = watcher.recheck(project).await;
            if project.is_empty() {
                return None;
            }
            match next {
                Ok(batch) => {
                    let mut seen = Vec::new();
                    let mut data = Vec::new();
                    for e in batch.iter() {
                        if !project.contains(&e.project_id) || seen.contains(&e.group_id) {
                            continue;
                        }
                        seen.push(e.group_id);
                        data.push(serde_json::json!({
                            "project_id": e.project_id, "group": e.group_id, "new": e.new_group, "regression": e.regression,
                        }));
                    }
                    if !data.is_empty() {
                        let ev = Event::default().event("groups").data(serde_json::Value::Array(data).to_string());
                        return Some((Ok(ev), (rx, project, watcher)));
                    }
                }
                // Missed some: say so, the page reloads its list anyway.
                Err(RecvError::Lagged(_)) => {
                    return Some((Ok(Event::default().event("groups").data("[]")), (rx, project, watcher)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let mut stopping = state.dashboard.stopping.subscribe();
    let stop = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    futures_util::StreamExt::take_until(stream::once(async move { Ok(hello) }).chain_updates(updates), stop)
}

/// `futures_util`'s `chain` without pulling in `StreamExt` names everywhere.
trait ChainUpdates: Stream + Sized {
    fn chain_updates<S: Stream<Item = Self::Item>>(self, next: S) -> futures_util::stream::Chain<Self, S> {
        futures_util::StreamExt::chain(self, next)
    }
}
impl<T: Stream> ChainUpdates for T {}

fn sse(stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

/// `GET /p/{slug}/live`
pub async fn project(State(state): State<AppState>, scope: ProjectScope) -> PageResult {
    Ok(sse(events(&state, &scope.viewer, vec![scope.project.id])))
}

/// `GET /live`: the updates of every project the viewer may see (the dashboard page).
pub async fn all(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let store = state.store.clone();
    let actor = viewer.actor.clone();
    let projects = store::off_thread(move || visible_projects(&store, &actor)).await?;
    Ok(sse(events(&state, &viewer, projects.into_iter().map(|p| p.id).collect())))
}
