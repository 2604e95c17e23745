//! User feedback in the dashboard: a project's Feedback page (newest first), and the lines the
//! issue page shows of what people wrote about its events.

use askama::Template;
use axum::extract::State;
use store::{FeedbackRow, Store};

use super::pages::{Nav, nav};
use super::{PageResult, blocking, format, paths, render};
use crate::AppState;
use crate::access::extract::ProjectScope;

/// The most shown on one page.
const LIMIT: usize = 200;

/// One piece of feedback as shown.
pub(crate) struct FeedbackView {
    pub who: String,
    pub email: String,
    pub message: String,
    pub ago: String,
    pub utc: String,
    pub url: String,
    /// The issue it is about, when its event is stored.
    pub issue_href: Option<String>,
    pub issue: String,
}

impl FeedbackView {
    pub(crate) fn of(slug: &str, f: &FeedbackRow, now: f64) -> FeedbackView {
        FeedbackView {
            who: if f.name.is_empty() { "Someone".into() } else { f.name.clone() },
            email: f.email.clone(),
            message: f.message.clone(),
            ago: format::ago(f.timestamp, now),
            utc: format::utc(f.timestamp),
            url: f.url.clone().unwrap_or_default(),
            issue_href: f.group_id.map(|g| paths::issue(slug, g)),
            issue: f.group_id.map(|g| format!("issue {g}")).unwrap_or_default(),
        }
    }
}

/// The feedback about an issue's events, for its page.
pub(crate) fn of_group(store: &std::sync::Arc<dyn Store>, slug: &str, group: store::GroupId, now: f64) -> PageResult<Vec<FeedbackView>> {
    Ok(store.group_feedback(group, 20)?.iter().map(|f| FeedbackView::of(slug, f, now)).collect())
}

#[derive(Template)]
#[template(path = "feedback.html")]
struct FeedbackPage {
    nav: Nav,
    slug: String,
    name: String,
    items: Vec<FeedbackView>,
}

/// `GET /p/{slug}/feedback/`.
pub async fn page(State(state): State<AppState>, scope: ProjectScope) -> PageResult {
    let store = state.store.clone();
    blocking(move || {
        let now = store::now();
        let project = &scope.project;
        let items = store.feedback(project.id, LIMIT)?.iter().map(|f| FeedbackView::of(&project.slug, f, now)).collect();
        render(&FeedbackPage {
            nav: nav(&store, &scope.viewer, &project.slug, "feedback")?,
            slug: project.slug.clone(),
            name: project.name.clone(),
            items,
        })
    })
    .await
}
