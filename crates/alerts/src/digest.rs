//! Digests: a daily or weekly report per project (new issues, regressions, the busiest issues,
//! the slowest queries), read from the store and mailed through the email plugin to its
//! recipients. The digest task sends one when a period ends (periods end at midnight UTC, weeks
//! on Monday); the end of the last one sent is a cursor in the store, so a restart does not
//! repeat one (after a stop of several periods, only the last is reported), and a failed send
//! is tried again a minute later.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use notify::{Digest, DigestIssue, Plugin, ProjectDigest, Settings};
use store::{ACTIVITY_REGRESSION, Enqueue, GroupRow, Sort, StatusFilter, Store, StreamQuery, now};
use tokio::sync::watch;

use super::{AlertConfig, Links, action_settings};

/// How many issues each list of a digest shows.
const TOP: usize = 5;
/// The most groups a digest looks at for one project's new issues.
const MAX_SCAN: usize = 10_000;

/// How often digests are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestPeriod {
    Daily,
    Weekly,
}

impl DigestPeriod {
    pub fn seconds(self) -> f64 {
        match self {
            DigestPeriod::Daily => 86_400.0,
            DigestPeriod::Weekly => 7.0 * 86_400.0,
        }
    }

    /// `Daily` or `Weekly`.
    pub fn title(self) -> &'static str {
        match self {
            DigestPeriod::Daily => "Daily",
            DigestPeriod::Weekly => "Weekly",
        }
    }

    /// The end of the last whole period at `t`: midnight UTC, or Monday midnight UTC.
    pub fn boundary(self, t: f64) -> f64 {
        // 1970-01-01 was a Thursday; the first Monday came 4 days later.
        let offset = if self == DigestPeriod::Weekly { 4.0 * 86_400.0 } else { 0.0 };
        ((t - offset) / self.seconds()).floor() * self.seconds() + offset
    }

    fn cursor(self) -> String {
        format!("digest:{}", self.title().to_lowercase())
    }
}

/// The digest of every project over the period that ends at `to`.
pub fn build(store: &dyn Store, links: &dyn Links, period: DigestPeriod, to: f64) -> store::Result<Digest> {
    let from = to - period.seconds();
    let mut projects = Vec::new();
    let mut regressed: Vec<(store::ProjectId, store::GroupId)> = Vec::new();
    let mut seen = HashSet::new();
    let mut after = 0;
    loop {
        let page = store.activity_after(after, 1000)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for a in page.iter().filter(|a| a.kind == ACTIVITY_REGRESSION && a.at >= from && a.at < to) {
            if seen.insert(a.group_id) {
                regressed.push((a.project_id, a.group_id));
            }
        }
    }
    for project in store.projects()? {
        let slug = project.slug.clone();
        let issue = |g: &GroupRow, events: u64, p95_ms: Option<f64>| DigestIssue {
            title: g.title.clone(),
            level: g.level.clone(),
            events,
            p95_ms,
            link: links.issue(&slug, g.id),
        };
        let query = |sort: Sort, limit: usize| StreamQuery {
            sort,
            status: StatusFilter::All,
            since: Some(from),
            limit,
            sparkline_points: 0,
            ..StreamQuery::new(project.id, to)
        };
        // New issues: by first seen, newest first, until the period's start.
        let (mut new_issues, mut new_count, mut cursor) = (Vec::new(), 0u64, None);
        'pages: for _ in 0..MAX_SCAN / 100 {
            let page = store.stream(&StreamQuery { cursor: cursor.take(), ..query(Sort::FirstSeen, 100) })?;
            for row in &page.rows {
                if row.group.first_seen < from {
                    break 'pages;
                }
                if row.group.first_seen < to {
                    new_count += 1;
                    if new_issues.len() < TOP {
                        new_issues.push(issue(&row.group, row.interval_count, None));
                    }
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let busiest: Vec<DigestIssue> = store
            .stream(&query(Sort::Frequency, TOP))?
            .rows
            .iter()
            .filter(|r| r.interval_count > 0)
            .map(|r| issue(&r.group, r.interval_count, None))
            .collect();
        let mut slowest: Vec<DigestIssue> = store
            .stream(&query(Sort::TimeSpent, 100))?
            .rows
            .iter()
            .filter(|r| r.group.kind == "query" && r.interval_count > 0)
            .filter_map(|r| r.group.time_spent.as_ref().map(|t| issue(&r.group, r.interval_count, Some(t.p95_ms))))
            .collect();
        slowest.sort_by(|a, b| b.p95_ms.unwrap_or(0.0).total_cmp(&a.p95_ms.unwrap_or(0.0)));
        slowest.truncate(TOP);
        let mut regressions = Vec::new();
        let mut regression_count = 0;
        for (_, group_id) in regressed.iter().filter(|(p, _)| *p == project.id) {
            regression_count += 1;
            if regressions.len() < TOP
                && let Some(g) = store.group(*group_id)?
            {
                let events = store.group_interval_count(g.id, Some(from), to)?;
                regressions.push(issue(&g, events, None));
            }
        }
        let events = store.project_series(&[project.id], from, to, 1)?.iter().sum();
        projects.push(ProjectDigest {
            project: slug.clone(),
            link: links.project(&slug),
            events,
            new_issues,
            new_count,
            regressions,
            regression_count,
            busiest,
            slowest,
        });
    }
    Ok(Digest { period: period.title().to_string(), from, to, projects })
}

/// Builds the digest of the period that ends at `to` and mails it through the email plugin,
/// with its `[plugins.email]` settings (recipients included).
pub async fn send(
    store: Arc<dyn Store>,
    config: &AlertConfig,
    links: Arc<dyn Links>,
    plugins: &[Arc<dyn Plugin>],
    period: DigestPeriod,
    to: f64,
) -> Result<Digest, String> {
    let email = notify::find(plugins, "email").ok_or("there is no email plugin")?;
    let settings: Settings = action_settings(config, email.as_ref(), &Settings::new())
        .map_err(|e| format!("digests are mailed through the email plugin, and [plugins.email] is not complete: {e}"))?;
    let digest = store::off_thread(move || build(&*store, &*links, period, to)).await.map_err(|e| e.to_string())?;
    notify::email::send_digest(&digest, &settings).await.map_err(|e| e.to_string())?;
    Ok(digest)
}

/// The digest task: sends a digest when a period ends.
pub(super) async fn run(
    store: Arc<dyn Store>,
    config: Arc<AlertConfig>,
    links: Arc<dyn Links>,
    plugins: Vec<Arc<dyn Plugin>>,
    period: DigestPeriod,
    mut stop: watch::Receiver<bool>,
) {
    let name = period.cursor();
    loop {
        let (s, n) = (store.clone(), name.clone());
        let last = store::off_thread(move || s.notify_cursor(&n)).await;
        match last.map(|last| next(last, now(), period)) {
            Ok(Next::Start(at)) => set_cursor(&store, &name, at).await,
            Ok(Next::Send(end)) => match send(store.clone(), &config, links.clone(), &plugins, period, end).await {
                Ok(_) => {
                    tracing::info!(period = period.title(), "digest sent");
                    set_cursor(&store, &name, end).await;
                }
                Err(e) => tracing::warn!(period = period.title(), error = %e, "digest not sent; trying again in a minute"),
            },
            Ok(Next::Wait) => {}
            Err(e) => tracing::error!(error = %e, "could not read the digest's cursor"),
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

/// What the digest task does now.
#[derive(Debug, PartialEq)]
enum Next {
    /// The first start: remember this boundary; the period after it is the first reported.
    Start(f64),
    /// A period ended: send the report of the period that ends here.
    Send(f64),
    Wait,
}

/// `last` is the end of the last period reported (the cursor), if any.
fn next(last: Option<i64>, now: f64, period: DigestPeriod) -> Next {
    let due = period.boundary(now);
    match last {
        None => Next::Start(due),
        Some(last) if (last as f64) < due => Next::Send(due),
        Some(_) => Next::Wait,
    }
}

async fn set_cursor(store: &Arc<dyn Store>, name: &str, at: f64) {
    let (s, e) = (store.clone(), Enqueue { cursor: Some((name.to_string(), at as i64)), ..Enqueue::default() });
    if let Err(err) = store::off_thread(move || s.enqueue_deliveries(&e)).await {
        tracing::error!(error = %err, "could not record the digest sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_end_at_midnight_and_on_mondays() {
        // 2023-11-15 (a Wednesday) 13:00 UTC.
        let t = 1_700_053_200.0;
        assert_eq!(DigestPeriod::Daily.boundary(t), 1_700_006_400.0, "2023-11-15 00:00");
        assert_eq!(DigestPeriod::Weekly.boundary(t), 1_699_833_600.0, "Monday 2023-11-13 00:00");
        assert_eq!(DigestPeriod::Weekly.boundary(1_699_833_600.0), 1_699_833_600.0);
    }

    #[test]
    fn one_report_per_period_and_none_at_the_first_start() {
        let midnight = 1_700_006_400.0;
        let day = DigestPeriod::Daily;
        assert_eq!(next(None, midnight + 3600.0, day), Next::Start(midnight));
        assert_eq!(next(Some(midnight as i64), midnight + 3600.0, day), Next::Wait);
        assert_eq!(next(Some(midnight as i64), midnight + 86_400.0 + 5.0, day), Next::Send(midnight + 86_400.0));
        // Down for three days: the last day is reported, once.
        assert_eq!(next(Some(midnight as i64), midnight + 3.5 * 86_400.0, day), Next::Send(midnight + 3.0 * 86_400.0));
    }
}
