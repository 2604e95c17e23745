//! A project's releases (`/p/{slug}/releases/`) and a release's page
//! (`/p/{slug}/releases/{version}/`): when it was created and released, its deploys, the
//! events that carried it in this project (first, last, how many), the issues it brought, and
//! the files uploaded for it. Releases belong to the organisation; a project lists those that
//! name it.

use askama::Template;
use axum::extract::{Path, State};
use store::Release;

use super::pages::{nav, Nav};
use super::{blocking, format, paths, render, PageError, PageResult};
use crate::access::extract::ProjectScope;
use crate::access::Action;
use crate::AppState;

/// One row of the releases list.
struct ReleaseLine {
    version: String,
    href: String,
    created: String,
    released: String,
    events: String,
    new_issues: String,
    last_event: String,
    deploys: String,
}

#[derive(Template)]
#[template(path = "releases.html")]
struct ReleasesPage {
    nav: Nav,
    slug: String,
    name: String,
    releases: Vec<ReleaseLine>,
}

/// `GET /p/{slug}/releases/`: newest first, 100 at most.
pub async fn list(State(state): State<AppState>, scope: ProjectScope) -> PageResult {
    scope.require(Action::ViewReleases)?;
    let store = state.store.clone();
    blocking(move || {
        let p = scope.project.clone();
        let now = store::now();
        let mut releases = Vec::new();
        for r in store.releases(p.org_id, Some(p.id), None, 100)? {
            let a = store.release_activity(p.id, &r.version)?;
            releases.push(ReleaseLine {
                href: paths::release(&p.slug, &r.version),
                created: format::ago(r.created_at, now),
                released: r.released_at.map(|t| format::ago(t, now)).unwrap_or_else(|| "not yet".into()),
                events: format::count(a.events),
                new_issues: format::count(a.new_groups.len() as u64),
                last_event: a.last_seen.map(|t| format::ago(t, now)).unwrap_or_else(|| "none".into()),
                deploys: format::count(store.deploys(r.id)?.len() as u64),
                version: r.version,
            });
        }
        render(&ReleasesPage { nav: nav(&store, &scope.viewer, &p.slug, "releases")?, slug: p.slug, name: p.name, releases })
    })
    .await
}

#[derive(Template)]
#[template(path = "release.html")]
struct ReleasePage {
    nav: Nav,
    slug: String,
    version: String,
    reference: String,
    created: String,
    released: String,
    first_event: String,
    last_event: String,
    events: String,
    /// (environment, name, when)
    deploys: Vec<(String, String, String)>,
    /// (title, href, count)
    new_issues: Vec<(String, String, String)>,
    /// (name, kind, size, debug id)
    files: Vec<(String, String, String, String)>,
}

/// `GET /p/{slug}/releases/{version}/`.
pub async fn page(State(state): State<AppState>, scope: ProjectScope, Path((_, version)): Path<(String, String)>) -> PageResult {
    scope.require(Action::ViewReleases)?;
    let store = state.store.clone();
    blocking(move || {
        let p = scope.project.clone();
        let r: Release = store
            .release(p.org_id, &version)?
            .ok_or_else(|| PageError::NotFound(format!("there is no release \"{version}\"")))?;
        let now = store::now();
        let when = |t: Option<f64>, none: &str| t.map(|t| format!("{} ({})", format::ago(t, now), format::utc(t))).unwrap_or_else(|| none.into());
        let a = store.release_activity(p.id, &r.version)?;
        let mut new_issues = Vec::new();
        for id in &a.new_groups {
            if let Some(g) = store.group(*id)? {
                new_issues.push((g.title.clone(), paths::issue(&p.slug, g.id), format::count(g.count)));
            }
        }
        let deploys = store.deploys(r.id)?.iter().map(|d| (d.environment.clone(), d.name.clone().unwrap_or_default(), when(Some(d.finished_at), ""))).collect();
        let files = store
            .release_artifacts(p.org_id, &r.version)?
            .into_iter()
            .map(|f| (f.name, f.kind.as_str().replace('_', " "), format!("{} bytes", format::count(f.size)), f.debug_id.unwrap_or_default()))
            .collect();
        render(&ReleasePage {
            nav: nav(&store, &scope.viewer, &p.slug, "releases")?,
            slug: p.slug,
            reference: r.reference.clone().unwrap_or_default(),
            created: when(Some(r.created_at), ""),
            released: when(r.released_at, "not yet (finalise it with sentry-cli releases finalize)"),
            first_event: when(a.first_seen, "none yet"),
            last_event: when(a.last_seen, "none yet"),
            events: format::count(a.events),
            deploys,
            new_issues,
            files,
            version: r.version,
        })
    })
    .await
}
