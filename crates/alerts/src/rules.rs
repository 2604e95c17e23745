//! The rules task: on each wake-up (or tick), reads the group activity after its cursor and
//! checks the frequency and p95 rules of the groups just written; every rule that fires becomes
//! outbox rows, committed with its throttle mark and the cursor.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventInfo, Frame, Notification, Plugin, Reason};
use store::{
    ACTIVITY_ASSIGNED, ACTIVITY_CREATED, ACTIVITY_NOTE, ACTIVITY_REGRESSION, ACTIVITY_RESOLVED, ActivityEntry, Enqueue, GroupId, GroupRow, Level, NewDelivery, ProjectId, Sort, StatusFilter,
    Store, StoredEvent, StreamQuery, now,
};
use tokio::sync::{Notify, broadcast, watch};

use super::{ActionSpec, AlertConfig, Links, RuleSpec, When};

/// The cursor's name in `notify_cursors`.
const CURSOR: &str = "group_activity";
/// How many frames a notification shows.
const MAX_FRAMES: usize = 5;

pub(super) async fn run(
    store: Arc<dyn Store>,
    mut wakeups: broadcast::Receiver<Arc<Vec<StoredEvent>>>,
    config: Arc<AlertConfig>,
    links: Arc<dyn Links>,
    plugins: Vec<Arc<dyn Plugin>>,
    queued: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut engine = Engine { store, config, links, plugins, projects: HashMap::new() };
    let (check_store, check_config) = (engine.store.clone(), engine.config.clone());
    let _ = store::off_thread(move || {
        warn_unknown_projects(&*check_store, &check_config);
        Ok::<_, store::StoreError>(())
    })
    .await;
    let mut stopping = false;
    loop {
        let mut touched: Vec<StoredEvent> = Vec::new();
        tokio::select! {
            _ = stop.changed() => stopping = true,
            _ = tick.tick() => {}
            got = wakeups.recv() => match got {
                Ok(batch) => touched.extend(batch.iter().cloned()),
                Err(broadcast::error::RecvError::Lagged(n)) => tracing::debug!(missed = n, "notification engine missed wake-ups; the store has everything"),
                Err(broadcast::error::RecvError::Closed) => stopping = true,
            },
        }
        // Take everything else already waiting, so a burst is one pass.
        while let Ok(batch) = wakeups.try_recv() {
            touched.extend(batch.iter().cloned());
        }
        let (e, result) = store::off_thread(move || {
            let result = engine.pass(&touched);
            Ok::<_, store::StoreError>((engine, result))
        })
        .await
        .expect("the rules pass does not panic");
        engine = e;
        match result {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(deliveries = n, "alert rules fired");
                queued.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "could not evaluate alert rules; retrying"),
        }
        if stopping {
            return;
        }
        // At most ten passes a second: under a storm, wake-ups pile up in the channel (and are
        // taken together by the next pass) instead of costing a pass per committed batch.
        tokio::select! {
            _ = stop.changed() => stopping = true,
            () = tokio::time::sleep(MIN_PASS_INTERVAL) => {}
        }
        if stopping {
            let touched: Vec<StoredEvent> = std::iter::from_fn(|| wakeups.try_recv().ok()).flat_map(|b| b.iter().cloned().collect::<Vec<_>>()).collect();
            let _ = store::off_thread(move || engine.pass(&touched)).await;
            return;
        }
    }
}

/// The shortest time between two passes of the rules.
const MIN_PASS_INTERVAL: Duration = Duration::from_millis(100);

/// Says at start which rules name a project that does not exist (yet): they fire once it does.
fn warn_unknown_projects(store: &dyn Store, config: &AlertConfig) {
    if !config.rules.is_empty() {
        tracing::info!(rules = config.rules.len(), "alert rules loaded");
    }
    for rule in &config.rules {
        if let Ok(None) = store.project_by_slug(&rule.project) {
            tracing::warn!(rule = %rule.name, project = %rule.project, "alert rule for a project that does not exist (yet)");
        }
    }
}

struct Engine {
    store: Arc<dyn Store>,
    config: Arc<AlertConfig>,
    links: Arc<dyn Links>,
    plugins: Vec<Arc<dyn Plugin>>,
    /// Project id → slug.
    projects: HashMap<ProjectId, String>,
}

impl Engine {
    fn slug(&mut self, project_id: ProjectId) -> store::Result<Option<String>> {
        if !self.projects.contains_key(&project_id) {
            self.projects = self.store.projects()?.into_iter().map(|p| (p.id, p.slug)).collect();
        }
        Ok(self.projects.get(&project_id).cloned())
    }

    /// One pass: the activity log, then the groups `touched` by the last batches. Returns how
    /// many deliveries were queued.
    fn pass(&mut self, touched: &[StoredEvent]) -> store::Result<usize> {
        let mut queued = 0;
        let mut cursor = match self.store.notify_cursor(CURSOR)? {
            Some(c) => c,
            None => {
                // The first start: earlier activity is history, not news.
                let c = self.store.last_activity_id()?;
                self.store.enqueue_deliveries(&Enqueue { cursor: Some((CURSOR.into(), c)), ..Enqueue::default() })?;
                c
            }
        };
        loop {
            let activity = self.store.activity_after(cursor, 500)?;
            let Some(last) = activity.last() else { break };
            let mut plan = Plan::default();
            for a in &activity {
                if a.kind == ACTIVITY_CREATED {
                    super::owners::assign_new_issue(&*self.store, a.group_id, a.project_id);
                }
                if a.kind == ACTIVITY_RESOLVED {
                    self.resolved(&mut plan, a.group_id, a.project_id, a.id)?;
                    continue;
                }
                if a.kind == ACTIVITY_ASSIGNED || a.kind == ACTIVITY_NOTE {
                    self.personal(&mut plan, a)?;
                    continue;
                }
                let when = match a.kind.as_str() {
                    ACTIVITY_CREATED => When::NewGroup,
                    ACTIVITY_REGRESSION => When::Regression,
                    _ => continue,
                };
                let Some(slug) = self.slug(a.project_id)? else { continue };
                let rules: Vec<RuleSpec> =
                    self.config.rules.iter().filter(|r| r.project == slug && r.when == when).cloned().collect();
                let hooks = !self.plugins.is_empty();
                if rules.is_empty() && !hooks {
                    continue;
                }
                let Some(mut facts) = self.facts(a.group_id, &slug)? else { continue };
                for rule in &rules {
                    let reason = if when == When::NewGroup { Reason::NewGroup } else { Reason::Regression };
                    self.consider(&mut plan, rule, &facts, reason, format!("{}:activity:{}", rule.name, a.id))?;
                }
                facts.notification.reason = if when == When::NewGroup { Reason::NewGroup } else { Reason::Regression };
                for p in &self.plugins {
                    match when {
                        When::NewGroup => p.group_created(&facts.notification),
                        _ => p.group_regressed(&facts.notification),
                    }
                }
            }
            cursor = last.id;
            queued += self.commit(plan, Some(cursor))?;
        }
        queued += self.touched(touched)?;
        Ok(queued)
    }

    /// Frequency and p95 rules for the groups of the last batches, and the event hooks.
    fn touched(&mut self, touched: &[StoredEvent]) -> store::Result<usize> {
        let mut groups: Vec<(ProjectId, GroupId)> = Vec::new();
        let mut seen = HashSet::new();
        for ev in touched {
            if seen.insert(ev.group_id) {
                groups.push((ev.project_id, ev.group_id));
            }
        }
        for ev in touched {
            if let Some(project) = self.slug(ev.project_id)? {
                let info = EventInfo {
                    project,
                    group_id: ev.group_id.0,
                    event_id: ev.event_id.to_string(),
                    kind: ev.kind.clone(),
                    level: ev.level.as_str().to_string(),
                };
                for p in &self.plugins {
                    p.event_stored(&info);
                }
            }
        }
        let mut plan = Plan::default();
        let now = now();
        for (project_id, group_id) in groups {
            let Some(slug) = self.slug(project_id)? else { continue };
            let rules: Vec<RuleSpec> = self
                .config
                .rules
                .iter()
                .filter(|r| r.project == slug && matches!(r.when, When::Frequency { .. } | When::Slow { .. } | When::MonitorFailed))
                .cloned()
                .collect();
            if rules.is_empty() {
                continue;
            }
            let Some(facts) = self.facts(group_id, &slug)? else { continue };
            for rule in &rules {
                let minute = (now / 60.0).floor() as i64;
                if rule.when == When::MonitorFailed {
                    // Each new event of a monitor issue is a failed run (within the throttle).
                    for ev in touched.iter().filter(|e| e.group_id == group_id && e.kind == store::MONITOR_EVENT_KIND) {
                        self.consider(&mut plan, rule, &facts, Reason::MonitorFailed, format!("{}:monitor:event:{}", rule.name, ev.event_id))?;
                    }
                    continue;
                }
                let reason = match rule.when {
                    When::Frequency { count, minutes } => {
                        let observed = self.store.group_count_since(group_id, minute - minutes as i64 + 1)?;
                        if observed <= count {
                            continue;
                        }
                        Reason::Frequency { count, minutes, observed }
                    }
                    When::Slow { p95_ms } => {
                        let kind = facts.group.kind.as_str();
                        let p95 = facts.group.time_spent.as_ref().map(|t| t.p95_ms);
                        match p95 {
                            Some(p95) if (kind == "query" || kind == "transaction") && p95 > p95_ms => {
                                Reason::Slow { threshold_ms: p95_ms, p95_ms: p95 }
                            }
                            _ => continue,
                        }
                    }
                    _ => continue,
                };
                self.consider(&mut plan, rule, &facts, reason, format!("{}:{}:group:{group_id}:minute:{minute}", rule.name, rule.when.name()))?;
            }
        }
        self.commit(plan, None)
    }

    /// Fires `rule` for the group of `facts` unless its filters or its throttle say no.
    fn consider(&self, plan: &mut Plan, rule: &RuleSpec, facts: &Facts, reason: Reason, firing: String) -> store::Result<()> {
        if !level_at_least(&facts.group.level, rule.level) {
            return Ok(());
        }
        if !rule.tags.iter().all(|t| facts.notification.tags.contains(t)) {
            return Ok(());
        }
        let key = (rule.name.clone(), facts.group.id);
        if plan.fired.contains(&key) {
            return Ok(());
        }
        let throttle = match (rule.throttle_minutes, &rule.when) {
            (0, When::Frequency { minutes, .. }) => *minutes as f64 * 60.0,
            (m, _) => m as f64 * 60.0,
        };
        if let Some(last) = self.store.last_fired(&rule.name, facts.group.id)?
            && now() < last + throttle
        {
            return Ok(());
        }
        let mut n = facts.notification.clone();
        n.id = firing;
        n.rule = rule.name.clone();
        n.reason = reason;
        self.queue(plan, rule, &n, facts.group.project_id, |_| true);
        plan.fired.insert(key.clone());
        plan.enqueue.fired.push(key);
        tracing::info!(rule = %rule.name, group = %facts.group.id, reason = n.reason.name(), "alert rule fired");
        Ok(())
    }

    /// An issue was resolved: every rule that fired for it sends a [`Reason::Resolved`] through
    /// its actions whose plugin closes what it opened ([`Plugin::resolves`]). Not throttled, and
    /// no throttle mark: the next regression fires as usual.
    fn resolved(&mut self, plan: &mut Plan, group_id: GroupId, project_id: ProjectId, activity: i64) -> store::Result<()> {
        let Some(slug) = self.slug(project_id)? else { return Ok(()) };
        let resolving = |name: &str| notify::find(&self.plugins, name).is_some_and(|p| p.resolves());
        let rules: Vec<RuleSpec> = self
            .config
            .rules
            .iter()
            .filter(|r| r.project == slug && r.actions.iter().any(|a| resolving(&a.plugin)))
            .cloned()
            .collect();
        if rules.is_empty() {
            return Ok(());
        }
        let Some(facts) = self.facts(group_id, &slug)? else { return Ok(()) };
        for rule in &rules {
            if self.store.last_fired(&rule.name, group_id)?.is_none() {
                continue;
            }
            let mut n = facts.notification.clone();
            n.id = format!("{}:resolved:group:{group_id}:activity:{activity}", rule.name);
            n.rule = rule.name.clone();
            n.reason = Reason::Resolved;
            self.queue(plan, rule, &n, project_id, |a| resolving(&a.plugin));
            tracing::info!(rule = %rule.name, group = %group_id, "issue resolved; closing what the rule opened");
        }
        Ok(())
    }

    /// An assignment or a comment's mentions: one email to each member concerned (the assignee,
    /// each member of the team assigned, each member mentioned) who may see the project, never
    /// to the one who acted. Through the email plugin, its `[plugins.email]` settings with `to`
    /// replaced; nothing when that section is missing or incomplete.
    fn personal(&mut self, plan: &mut Plan, a: &ActivityEntry) -> store::Result<()> {
        let Some(email) = notify::find(&self.plugins, "email").cloned() else { return Ok(()) };
        let to = |addr: &str| -> notify::Settings {
            let mut s = notify::Settings::new();
            s.insert("to".into(), serde_json::json!([addr]));
            s
        };
        if super::action_settings(&self.config, email.as_ref(), &to("someone@example.com")).is_err() {
            return Ok(());
        }
        let data: serde_json::Value = a.data.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
        let Some(project) = self.store.project(a.project_id)? else { return Ok(()) };
        let project_teams = self.store.project_teams(project.id)?;
        let members = self.store.members(project.org_id)?;
        let by = match data["rule"].as_str() {
            Some(rule) => format!("The ownership rule `{rule}`"),
            None => a.actor.and_then(|u| members.iter().find(|m| m.user.id == u)).map_or_else(|| "Sentry".to_string(), |m| m.user.email.clone()),
        };
        let (chosen, reason): (Vec<&store::Member>, Reason) = match a.kind.as_str() {
            ACTIVITY_ASSIGNED => match (data["user"].as_i64(), data["team"].as_i64()) {
                (Some(u), _) => (members.iter().filter(|m| m.user.id.0 == u).collect(), Reason::Assigned { by, to: "you".into() }),
                (None, Some(t)) => {
                    let team = data["to"].as_str().unwrap_or("a team").to_string();
                    (members.iter().filter(|m| m.teams.contains(&store::TeamId(t))).collect(), Reason::Assigned { by, to: format!("{team}, a team of yours") })
                }
                _ => return Ok(()),
            },
            _ => {
                let mentioned: Vec<i64> = data["mentions"].as_array().map(|v| v.iter().filter_map(serde_json::Value::as_i64).collect()).unwrap_or_default();
                let text = data["text"].as_str().unwrap_or_default().to_string();
                (members.iter().filter(|m| mentioned.contains(&m.user.id.0)).collect(), Reason::Mentioned { by, text })
            }
        };
        let Some(slug) = self.slug(project.id)? else { return Ok(()) };
        let Some(facts) = self.facts(a.group_id, &slug)? else { return Ok(()) };
        let expires_at = now() + self.config.retry.expire.as_secs_f64();
        for m in chosen {
            if Some(m.user.id) == a.actor || !store::sees_project(m.role, &m.teams, &project_teams) {
                continue;
            }
            let mut n = facts.notification.clone();
            n.id = format!("{}:activity:{}:user:{}", reason.name(), a.id, m.user.id);
            n.rule = String::new();
            n.reason = reason.clone();
            plan.enqueue.deliveries.push(NewDelivery {
                firing_id: n.id.clone(),
                action: 0,
                project_id: project.id,
                group_id: a.group_id,
                rule: reason.name().to_string(),
                plugin: email.name().to_string(),
                settings: serde_json::Value::Object(to(&m.user.email)).to_string(),
                payload: serde_json::to_string(&n).unwrap_or_default(),
                expires_at,
            });
            tracing::info!(to = %m.user.email, group = %a.group_id, why = reason.name(), "emailing a member about an issue");
        }
        Ok(())
    }

    /// One outbox row for each of `rule`'s actions that `wanted` keeps, carrying `n`.
    fn queue(&self, plan: &mut Plan, rule: &RuleSpec, n: &Notification, project_id: ProjectId, wanted: impl Fn(&ActionSpec) -> bool) {
        let payload = serde_json::to_string(n).unwrap_or_default();
        let expires_at = now() + self.config.retry.expire.as_secs_f64();
        for (i, action) in rule.actions.iter().enumerate().filter(|(_, a)| wanted(a)) {
            plan.enqueue.deliveries.push(NewDelivery {
                firing_id: n.id.clone(),
                action: i as i64,
                project_id,
                group_id: GroupId(n.group_id),
                rule: rule.name.clone(),
                plugin: action.plugin.clone(),
                settings: serde_json::to_string(&action.settings).unwrap_or_else(|_| "{}".into()),
                payload: payload.clone(),
                expires_at,
            });
        }
    }

    fn commit(&self, mut plan: Plan, cursor: Option<i64>) -> store::Result<usize> {
        plan.enqueue.cursor = cursor.map(|c| (CURSOR.to_string(), c));
        if plan.enqueue.deliveries.is_empty() && plan.enqueue.fired.is_empty() && plan.enqueue.cursor.is_none() {
            return Ok(0);
        }
        self.store.enqueue_deliveries(&plan.enqueue)
    }

    fn facts(&self, group_id: GroupId, slug: &str) -> store::Result<Option<Facts>> {
        facts(&*self.store, group_id, slug, &*self.links)
    }
}

#[derive(Default)]
struct Plan {
    enqueue: Enqueue,
    fired: HashSet<(String, GroupId)>,
}

/// A group and the notification about it, before a rule names its reason.
struct Facts {
    group: GroupRow,
    notification: Notification,
}

fn facts(store: &dyn Store, group_id: GroupId, slug: &str, links: &dyn Links) -> store::Result<Option<Facts>> {
    let Some(group) = store.group(group_id)? else { return Ok(None) };
    let latest = store.group_events(group_id, None, 1)?.into_iter().next();
    let (tags, frames, event_id) = match &latest {
        Some(ev) => (ev.tags.clone(), frames_of(&ev.payload, ev.received), Some(ev.event_id.clone())),
        None => (Vec::new(), Vec::new(), None),
    };
    let notification = Notification {
        id: String::new(),
        project: slug.to_string(),
        group_id: group_id.0,
        title: group.title.clone(),
        culprit: group.culprit.clone(),
        level: group.level.clone(),
        kind: group.kind.clone(),
        count: group.count,
        first_seen: group.first_seen,
        last_seen: group.last_seen,
        link: links.issue(slug, group_id),
        rule: String::new(),
        reason: Reason::NewGroup,
        event_id,
        tags,
        frames,
        test: false,
    };
    Ok(Some(Facts { group, notification }))
}

/// The top in-app frames of a stored event's payload, innermost first (all frames when none is
/// marked in-app).
pub(super) fn frames_of(payload: &[u8], received: f64) -> Vec<Frame> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload) else { return Vec::new() };
    let Ok(event) = protocol::event::normalize(value, received, None) else { return Vec::new() };
    let stack = event
        .main_exception()
        .and_then(|e| e.stacktrace.as_ref())
        .or(event.stacktrace.as_ref());
    let Some(stack) = stack else { return Vec::new() };
    let any_in_app = stack.frames.iter().any(|f| f.in_app == Some(true));
    stack
        .frames
        .iter()
        .rev()
        .filter(|f| !any_in_app || f.in_app == Some(true))
        .take(MAX_FRAMES)
        .map(|f| Frame {
            module: f.module.clone().or_else(|| f.filename.clone()).or_else(|| f.abs_path.clone()).unwrap_or_else(|| "?".into()),
            function: f.function.clone().unwrap_or_else(|| "?".into()),
            lineno: f.lineno,
            context_line: f.context_line.clone(),
        })
        .collect()
}

/// The message `sentry notify test` sends: about the project's latest group, or made up.
pub(super) fn test_notification(store: &dyn Store, slug: &str, links: &dyn Links) -> Result<Notification, String> {
    let project = store
        .project_by_slug(slug)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("there is no project {slug:?}; see `sentry project list`"))?;
    let query = StreamQuery {
        sort: Sort::LastSeen,
        status: StatusFilter::All,
        limit: 1,
        sparkline_points: 0,
        ..StreamQuery::new(project.id, now())
    };
    let latest = store.stream(&query).map_err(|e| e.to_string())?.rows.into_iter().next();
    let now = now();
    let mut n = match latest.map(|r| facts(store, r.group.id, slug, links)) {
        Some(Ok(Some(f))) => f.notification,
        _ => Notification {
            id: String::new(),
            project: slug.to_string(),
            group_id: 0,
            title: "Test message".into(),
            culprit: String::new(),
            level: "info".into(),
            kind: "message".into(),
            count: 0,
            first_seen: now,
            last_seen: now,
            link: links.project(slug),
            rule: String::new(),
            reason: Reason::Test,
            event_id: None,
            tags: Vec::new(),
            frames: Vec::new(),
            test: true,
        },
    };
    n.id = format!("test:{slug}:{}", now as i64);
    n.rule = "sentry notify test".into();
    n.reason = Reason::Test;
    n.test = true;
    Ok(n)
}

/// Whether a group's level (as stored; unknown text counts as `error`) is at least `min`.
fn level_at_least(level: &str, min: Option<Level>) -> bool {
    min.is_none_or(|m| Level::parse(level).unwrap_or(Level::Error) >= m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert!(level_at_least("error", Some(Level::Warning)));
        assert!(level_at_least("fatal", Some(Level::Error)));
        assert!(!level_at_least("info", Some(Level::Error)));
        assert!(!level_at_least("warning", Some(Level::Error)));
        assert!(level_at_least("critical", Some(Level::Fatal)), "aliases rank as their level");
        assert!(level_at_least("something odd", Some(Level::Error)), "unknown counts as error");
        assert!(level_at_least("debug", None));
    }

    #[test]
    fn in_app_frames_innermost_first() {
        let payload = br#"{"event_id":"0123456789abcdef0123456789abcdef","exception":{"values":[{"type":"ZeroDivisionError","value":"division by zero",
            "stacktrace":{"frames":[
              {"module":"runpy","function":"_run","lineno":1,"in_app":false},
              {"module":"shop.views","function":"checkout","lineno":7,"in_app":true},
              {"module":"shop.cart","function":"total","lineno":42,"context_line":"  return a / b","in_app":true}]}}]}}"#;
        let frames = frames_of(payload, 1e9);
        let names: Vec<(&str, &str)> = frames.iter().map(|f| (f.module.as_str(), f.function.as_str())).collect();
        assert_eq!(names, [("shop.cart", "total"), ("shop.views", "checkout")]);
        assert_eq!(frames[0].context_line.as_deref(), Some("  return a / b"));
        assert!(frames_of(b"not json", 1e9).is_empty());
    }
}
