//! A project's Monitors page: each cron monitor with its schedule in words, how its last run
//! went, when it last checked in and when it is next expected, its recent runs as a row of
//! coloured marks (newest on the right) and a link to its issues.

use askama::Template;
use axum::extract::State;
use store::{MonitorRow, MonitorRunRow};

use super::pages::{Nav, nav};
use super::{PageResult, blocking, format, paths, render};
use crate::AppState;
use crate::access::extract::ProjectScope;

/// Runs shown per monitor.
const RUNS: usize = 30;
/// Monitors shown on one page.
const MONITORS: usize = 200;

/// One run as a mark.
struct RunView {
    status: String,
    /// What a hover says: status, start, duration.
    title: String,
}

struct MonitorView {
    slug: String,
    schedule: String,
    status: String,
    margin: String,
    last: String,
    last_utc: String,
    next: String,
    next_utc: String,
    /// Oldest first, so the newest is on the right.
    runs: Vec<RunView>,
    issues_href: String,
}

/// "in 3 min", "2 min ago": a time around now.
fn relative(ts: f64, now: f64) -> String {
    if ts > now { format!("in {}", format::span(ts - now)) } else { format::ago(ts, now) }
}

fn status_words(status: &str) -> &str {
    match status {
        "active" => "waiting for its first run",
        "in_progress" => "in progress",
        "timeout" => "timed out",
        "missed" => "missed",
        "error" => "failed",
        other => other,
    }
}

impl MonitorView {
    fn of(slug: &str, m: &MonitorRow, runs: &[MonitorRunRow], now: f64) -> MonitorView {
        MonitorView {
            slug: m.slug.clone(),
            schedule: m.config.describe(),
            status: m.status.clone(),
            margin: format::span(m.config.margin_minutes as f64 * 60.0),
            last: m.last_check_in.map_or("never".into(), |t| relative(t, now)),
            last_utc: m.last_check_in.map(format::utc).unwrap_or_default(),
            next: m.next_expected.map_or("—".into(), |t| relative(t, now)),
            next_utc: m.next_expected.map(format::utc).unwrap_or_default(),
            runs: runs
                .iter()
                .rev()
                .map(|r| RunView {
                    status: r.status.clone(),
                    title: format!(
                        "{}, {}{}",
                        status_words(&r.status),
                        format::utc(r.started),
                        r.duration.map(|d| format!(", took {}", format::span(d))).unwrap_or_default()
                    ),
                })
                .collect(),
            issues_href: paths::monitor_issues(slug, &m.slug),
        }
    }

    fn status_text(&self) -> &str {
        status_words(&self.status)
    }
}

#[derive(Template)]
#[template(path = "monitors.html")]
struct MonitorsPage {
    nav: Nav,
    slug: String,
    name: String,
    monitors: Vec<MonitorView>,
}

/// `GET /p/{slug}/monitors/`.
pub async fn page(State(state): State<AppState>, scope: ProjectScope) -> PageResult {
    let store = state.store.clone();
    blocking(move || {
        let now = store::now();
        let project = &scope.project;
        let mut monitors = Vec::new();
        for m in store.monitors(project.id)?.iter().take(MONITORS) {
            let runs = store.monitor_runs(m.id, RUNS)?;
            monitors.push(MonitorView::of(&project.slug, m, &runs, now));
        }
        render(&MonitorsPage {
            nav: nav(&store, &scope.viewer, &project.slug, "monitors")?,
            slug: project.slug.clone(),
            name: project.name.clone(),
            monitors,
        })
    })
    .await
}
