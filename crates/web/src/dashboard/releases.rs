//! A project's releases (`/p/{slug}/releases/`) and a release's page
//! (`/p/{slug}/releases/{version}/`): when it was created and released, its deploys, the
//! events that carried it in this project (first, last, how many), the issues it brought, and
//! the files uploaded for it, and its health: the sessions SDKs reported for it, and how many
//! of them (and of their users) did not crash, day by day. Releases belong to the organisation;
//! a project lists those that name it, and those its SDKs reported sessions for.

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
    crash_free_sessions: String,
    crash_free_users: String,
}

/// How far back release health is counted.
pub const HEALTH_DAYS: u32 = 14;

fn health_since(now: f64) -> f64 {
    now - f64::from(HEALTH_DAYS) * 86_400.0
}

/// "98.5%", or "no sessions".
///
/// ```text
/// 75.0 → 75%   66.666 → 66.67%   99.999 → 99.99%   100.0 → 100%
/// ```
pub fn rate(r: Option<f64>) -> String {
    match r {
        // Two decimals at most, without trailing zeros: 75%, 98.5%, 66.67%.
        // A crash keeps it under 100.
        Some(r) => {
            let r = if r < 100.0 { r.min(99.99) } else { r };
            format!("{}%", format!("{r:.2}").trim_end_matches('0').trim_end_matches('.'))
        }
        None => "no sessions".into(),
    }
}

/// The crash-free users rate, or why there is none.
fn users_rate(h: &store::ReleaseHealth) -> String {
    if h.sessions > 0 && h.users == 0 { "no user named in its sessions".into() } else { rate(h.crash_free_users()) }
}

/// A project's health over the last days, all releases together, for its stream page:
/// `None` while no SDK reported sessions.
pub fn project_health(store: &dyn store::Store, project: store::ProjectId, now: f64) -> store::Result<Option<String>> {
    let all = store.health_by_day(project, None, health_since(now))?;
    let sessions: u64 = all.iter().map(|d| d.health.sessions).sum();
    if sessions == 0 {
        return Ok(None);
    }
    let crashed: u64 = all.iter().map(|d| d.health.crashed).sum();
    let per_release = store.release_health(project, health_since(now))?;
    let users: u64 = per_release.iter().map(|h| h.users).sum();
    let crashed_users: u64 = per_release.iter().map(|h| h.crashed_users).sum();
    let h = store::ReleaseHealth { sessions, crashed, users, crashed_users, ..store::ReleaseHealth::default() };
    let users = if h.users > 0 { format!(", crash-free users {}", rate(h.crash_free_users())) } else { String::new() };
    Ok(Some(format!(
        "Last {HEALTH_DAYS} days: crash-free sessions {} of {}{users}",
        rate(h.crash_free_sessions()),
        format::plural(sessions, "session"),
    )))
}

#[derive(Template)]
#[template(path = "releases.html")]
struct ReleasesPage {
    nav: Nav,
    slug: String,
    name: String,
    releases: Vec<ReleaseLine>,
    health_days: u32,
}

/// `GET /p/{slug}/releases/`: newest first, 100 at most.
pub async fn list(State(state): State<AppState>, scope: ProjectScope) -> PageResult {
    scope.require(Action::ViewReleases)?;
    let store = state.store.clone();
    blocking(move || {
        let p = scope.project.clone();
        let now = store::now();
        let mut releases = Vec::new();
        let mut health = store.release_health(p.id, health_since(now))?;
        let created = store.releases(p.org_id, Some(p.id), None, 100)?;
        for r in &created {
            let a = store.release_activity(p.id, &r.version)?;
            let h = health.iter().position(|h| h.release == r.version).map(|i| health.swap_remove(i)).unwrap_or_default();
            releases.push(ReleaseLine {
                crash_free_sessions: rate(h.crash_free_sessions()),
                crash_free_users: users_rate(&h),
                href: paths::release(&p.slug, &r.version),
                created: format::ago(r.created_at, now),
                released: r.released_at.map(|t| format::ago(t, now)).unwrap_or_else(|| "not yet".into()),
                events: format::count(a.events),
                new_issues: format::count(a.new_groups.len() as u64),
                last_event: a.last_seen.map(|t| format::ago(t, now)).unwrap_or_else(|| "none".into()),
                deploys: format::count(store.deploys(r.id)?.len() as u64),
                version: r.version.clone(),
            });
        }
        // Releases the SDKs report sessions for, never created with sentry-cli or the API.
        for h in health {
            let a = store.release_activity(p.id, &h.release)?;
            releases.push(ReleaseLine {
                href: paths::release(&p.slug, &h.release),
                created: "not created".into(),
                released: "not yet".into(),
                events: format::count(a.events),
                new_issues: format::count(a.new_groups.len() as u64),
                last_event: a.last_seen.map(|t| format::ago(t, now)).unwrap_or_else(|| "none".into()),
                deploys: "0".into(),
                crash_free_sessions: rate(h.crash_free_sessions()),
                crash_free_users: users_rate(&h),
                version: h.release,
            });
        }
        render(&ReleasesPage { nav: nav(&store, &scope.viewer, &p.slug, "releases")?, slug: p.slug, name: p.name, releases, health_days: HEALTH_DAYS })
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
    health: store::ReleaseHealth,
    crash_free_sessions: String,
    crash_free_users: String,
    health_days: u32,
    /// Day by day: (date, sessions, crashed, crash-free %, bar width %)
    days: Vec<(String, String, String, String, u32)>,
}

/// `GET /p/{slug}/releases/{version}/`.
pub async fn page(State(state): State<AppState>, scope: ProjectScope, Path((_, version)): Path<(String, String)>) -> PageResult {
    scope.require(Action::ViewReleases)?;
    let store = state.store.clone();
    blocking(move || {
        let p = scope.project.clone();
        let now = store::now();
        let health = store.release_health(p.id, health_since(now))?.into_iter().find(|h| h.release == version);
        let r: Release = match (store.release(p.org_id, &version)?, &health) {
            (Some(r), _) => r,
            // Known from its sessions only.
            (None, Some(_)) => Release {
                id: 0,
                org_id: p.org_id,
                version: version.clone(),
                reference: None,
                url: None,
                created_at: 0.0,
                released_at: None,
                projects: vec![p.id],
            },
            (None, None) => return Err(PageError::NotFound(format!("there is no release \"{version}\""))),
        };
        let health = health.unwrap_or_default();
        let days: Vec<(String, String, String, String, u32)> = store
            .health_by_day(p.id, Some(&version), health_since(now))?
            .into_iter()
            .map(|d| {
                let free = d.health.crash_free_sessions();
                (format::utc(d.day)[..10].to_string(), format::count(d.health.sessions), format::count(d.health.crashed), rate(free), free.unwrap_or(0.0).round() as u32)
            })
            .collect();
        let when = |t: Option<f64>, none: &str| t.map(|t| format!("{} ({})", format::ago(t, now), format::utc(t))).unwrap_or_else(|| none.into());
        let a = store.release_activity(p.id, &r.version)?;
        let mut new_issues = Vec::new();
        for id in &a.new_groups {
            if let Some(g) = store.group(*id)? {
                new_issues.push((g.title.clone(), paths::issue(&p.slug, g.id), format::count(g.count)));
            }
        }
        let deploys = if r.id == 0 { vec![] } else { store.deploys(r.id)? };
        let deploys = deploys.iter().map(|d| (d.environment.clone(), d.name.clone().unwrap_or_default(), when(Some(d.finished_at), ""))).collect();
        let files = store
            .release_artifacts(p.org_id, &r.version)?
            .into_iter()
            .map(|f| (f.name, f.kind.as_str().replace('_', " "), format!("{} bytes", format::count(f.size)), f.debug_id.unwrap_or_default()))
            .collect();
        render(&ReleasePage {
            nav: nav(&store, &scope.viewer, &p.slug, "releases")?,
            slug: p.slug,
            reference: r.reference.clone().unwrap_or_default(),
            created: if r.id == 0 { "not created (its SDKs report sessions for it)".into() } else { when(Some(r.created_at), "") },
            released: when(r.released_at, "not yet (finalise it with sentry-cli releases finalize)"),
            first_event: when(a.first_seen, "none yet"),
            last_event: when(a.last_seen, "none yet"),
            events: format::count(a.events),
            deploys,
            new_issues,
            files,
            crash_free_sessions: rate(health.crash_free_sessions()),
            crash_free_users: users_rate(&health),
            health,
            health_days: HEALTH_DAYS,
            days,
            version: r.version,
        })
    })
    .await
}
