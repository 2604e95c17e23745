//! The event model's rules, pure: a batch of new events plus the current state of the groups
//! they touch becomes a [`Plan`] — which events are stored and which are duplicates, their
//! clamped timestamps, new groups, regressions, each group's new counters and priority, the
//! summed deltas of tag counts, time buckets and duration histograms, and the activity rows.
//! A backend loads what [`Batch::group_keys`] and [`Batch::event_keys`] name, calls [`fold`],
//! and only applies the plan: no rule lives in SQL.

use std::collections::{HashMap, HashSet};

use crate::{
    ACTIVITY_CREATED, ACTIVITY_REGRESSION, ACTIVITY_UNIGNORED, EventId, GroupId, GroupStatus, ItemCounts, NewEvent, ProjectId,
    WriteOutcome, histogram,
};

/// How far into the future a client's clock may be: later timestamps count as "received + this".
pub const MAX_CLOCK_SKEW_SECS: f64 = 60.0;

/// The requests of one batch: each one's events and counts of non-event items.
pub struct Batch<'a> {
    pub jobs: Vec<(&'a [NewEvent], &'a ItemCounts)>,
}

impl<'a> Batch<'a> {
    /// The groups the batch touches, as (project, grouping hash), each once.
    pub fn group_keys(&self) -> Vec<(ProjectId, &'a str)> {
        let mut seen = HashSet::new();
        self.events().map(|e| (e.project_id, e.hash.as_str())).filter(|k| seen.insert(*k)).collect()
    }

    /// The event ids of the batch, each once: the backend says which are already stored.
    pub fn event_keys(&self) -> Vec<(ProjectId, EventId)> {
        let mut seen = HashSet::new();
        self.events().map(|e| (e.project_id, e.event_id)).filter(|k| seen.insert(*k)).collect()
    }

    fn events(&self) -> impl Iterator<Item = &'a NewEvent> + '_ {
        self.jobs.iter().flat_map(|(events, _)| events.iter())
    }
}

/// A group as the rules see it: before the batch (loaded by the backend), and after (in the
/// plan, for the backend to write back).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    /// `None` for a group this batch creates.
    pub id: Option<GroupId>,
    pub project_id: ProjectId,
    pub hash: String,
    pub kind: String,
    pub status: GroupStatus,
    pub times_seen: i64,
    pub first_seen: f64,
    pub last_seen: f64,
    /// Duration count, sum, min and max (ms).
    pub ts_count: i64,
    pub ts_sum: f64,
    pub ts_min: Option<f64>,
    pub ts_max: Option<f64>,
    /// The newest event's id, title, culprit, level, logger and grouping components: a group
    /// shows its latest event.
    pub last_event_id: String,
    pub title: String,
    pub culprit: String,
    pub level: String,
    pub logger: Option<String>,
    pub components: String,
    /// Recent and frequent first: `last_seen + 600 · ln(times_seen)` (the seed's score).
    pub priority: f64,
    /// The batch reopened it (it was resolved): its resolution time is cleared.
    pub reopened: bool,
    /// The batch stored an event in it: its row is written back.
    pub touched: bool,
    /// Other grouping hashes whose events go to this group (merged into it).
    pub aliases: Vec<String>,
    /// While ignored: when it comes back by itself (unix seconds), and at which `times_seen`.
    pub snooze_until: Option<f64>,
    pub snooze_count: Option<i64>,
    /// The batch brought it back from a snooze, and why ([`WAKE_UNTIL`], [`WAKE_COUNT`]): its
    /// snooze is cleared.
    pub woke: Option<&'static str>,
    /// While resolved in a release: the (older) releases whose events leave it resolved
    /// ([`crate::ReleaseResolution::keeps`]).
    pub keeps: Vec<String>,
}

/// Why an ignored group came back by itself: its time is over, it was seen the number of
/// times it waited for, or by the number of users.
pub const WAKE_UNTIL: &str = "until";
pub const WAKE_COUNT: &str = "count";
pub const WAKE_USERS: &str = "users";

/// The `data` of the activity row that says a group came back by itself.
pub fn wake_data(reason: &str) -> String {
    serde_json::json!({ "reason": reason }).to_string()
}

/// The priority score of a group.
pub fn priority(last_seen: f64, times_seen: i64) -> f64 {
    last_seen + 600.0 * (times_seen.max(1) as f64).ln()
}

/// The timestamp an event is counted at: a time in the future (clock skew) counts as when it
/// was received; old ones are kept; a non-finite one is the receive time.
pub fn clamp_timestamp(timestamp: f64, received: f64) -> f64 {
    if timestamp.is_finite() { timestamp.min(received + MAX_CLOCK_SKEW_SECS) } else { received }
}

/// One event to insert, into the group at `group` (an index into [`Plan::groups`]).
#[derive(Debug)]
pub struct PlannedEvent<'a> {
    pub event: &'a NewEvent,
    pub group: usize,
    /// The clamped timestamp.
    pub timestamp: f64,
}

/// What happens to one event of the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planned {
    Stored { group: usize, new_group: bool, regression: bool },
    Duplicate,
}

/// Counter deltas of a batch, summed per key. Groups are indexes into [`Plan::groups`]; tag keys
/// and values borrow from the batch's events.
#[derive(Debug, Default)]
pub struct Deltas<'a> {
    /// (group, key, value) → (count, first seen, last seen).
    pub group_tags: HashMap<(usize, &'a str, &'a str), (i64, f64, f64)>,
    /// (project, key, value) → (count, last seen).
    pub project_tags: HashMap<(ProjectId, &'a str, &'a str), (i64, f64)>,
    /// (group, unix minute / hour / day) → count.
    pub group_minutes: HashMap<(usize, i64), i64>,
    pub group_hours: HashMap<(usize, i64), i64>,
    pub group_days: HashMap<(usize, i64), i64>,
    /// (project, unix minute / hour) → count.
    pub project_minutes: HashMap<(ProjectId, i64), i64>,
    pub project_hours: HashMap<(ProjectId, i64), i64>,
    /// (group, histogram bucket) → count.
    pub durations: HashMap<(usize, i64), i64>,
    /// (project, item type, unix day) → count of accepted non-event items.
    pub item_counts: HashMap<(ProjectId, &'a str, i64), i64>,
}

/// Everything a backend writes for one batch.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    /// Every group the batch names, in its new state (`touched` when an event was stored in
    /// it); those with `id: None` are created first, and their ids given back to
    /// [`Plan::outcomes`].
    pub groups: Vec<GroupState>,
    pub events: Vec<PlannedEvent<'a>>,
    /// Per request, per event.
    pub planned: Vec<Vec<Planned>>,
    pub deltas: Deltas<'a>,
    /// (group, `ACTIVITY_*` kind, when).
    pub activity: Vec<(usize, &'static str, f64)>,
}

impl Plan<'_> {
    /// The `data` (JSON) of activity row `i`, if it has any.
    pub fn activity_data(&self, i: usize) -> Option<String> {
        let (g, kind, _) = self.activity[i];
        if kind == ACTIVITY_UNIGNORED { self.groups[g].woke.map(wake_data) } else { None }
    }

    /// The answer to each request, once every group has its id (`ids[i]` for `groups[i]`).
    pub fn outcomes(&self, ids: &[GroupId]) -> Vec<Vec<WriteOutcome>> {
        self.planned
            .iter()
            .map(|job| {
                job.iter()
                    .map(|p| match *p {
                        Planned::Stored { group, new_group, regression } => {
                            WriteOutcome::Stored { group_id: ids[group], new_group, regression }
                        }
                        Planned::Duplicate => WriteOutcome::Duplicate,
                    })
                    .collect()
            })
            .collect()
    }
}

/// Folds a batch into a plan. `existing` holds the stored state of the groups the batch touches
/// (those not in it are new), `stored` the event ids already stored, `now` the commit time
/// (activity rows and item-count days).
pub fn fold<'a>(batch: &Batch<'a>, existing: Vec<GroupState>, stored: &HashSet<(ProjectId, EventId)>, now: f64) -> Plan<'a> {
    let mut plan = Plan::default();
    // Project → grouping hash → index in `plan.groups`; looked up by `&str`, no copy per event.
    let mut slots: HashMap<ProjectId, HashMap<String, usize>> = HashMap::new();
    for g in existing {
        let of_project = slots.entry(g.project_id).or_default();
        for h in std::iter::once(&g.hash).chain(&g.aliases) {
            of_project.insert(h.clone(), plan.groups.len());
        }
        plan.groups.push(g);
    }
    let mut seen: HashSet<(ProjectId, EventId)> = HashSet::new();
    let day = (now / 86400.0).floor() as i64;
    for (events, counts) in &batch.jobs {
        let mut planned = Vec::with_capacity(events.len());
        for ev in events.iter() {
            let key = (ev.project_id, ev.event_id);
            if stored.contains(&key) || !seen.insert(key) {
                planned.push(Planned::Duplicate);
                continue;
            }
            let ts = clamp_timestamp(ev.timestamp, ev.received);
            let of_project = slots.entry(ev.project_id).or_default();
            let (slot, new_group) = match of_project.get(ev.hash.as_str()) {
                Some(&slot) => (slot, false),
                None => {
                    let slot = plan.groups.len();
                    of_project.insert(ev.hash.clone(), slot);
                    plan.groups.push(new_group_state(ev, ts));
                    plan.activity.push((slot, ACTIVITY_CREATED, now));
                    (slot, true)
                }
            };
            let g = &mut plan.groups[slot];
            let mut regression = false;
            if g.status == GroupStatus::Resolved && keeps_resolved(g, ev) {
                // An event of a release older than the one it was resolved in.
            } else if g.status == GroupStatus::Resolved {
                g.keeps.clear();
                g.status = GroupStatus::Unresolved;
                g.reopened = true;
                regression = true;
                plan.activity.push((slot, ACTIVITY_REGRESSION, now));
            }
            fold_event(g, slot, ev, ts, &mut plan.deltas);
            if g.status == GroupStatus::Ignored && g.woke.is_none() {
                let woke = if g.snooze_until.is_some_and(|u| now >= u) {
                    Some(WAKE_UNTIL)
                } else if g.snooze_count.is_some_and(|c| g.times_seen >= c) {
                    Some(WAKE_COUNT)
                } else {
                    None
                };
                if woke.is_some() {
                    g.status = GroupStatus::Unresolved;
                    g.woke = woke;
                    g.snooze_until = None;
                    g.snooze_count = None;
                    plan.activity.push((slot, ACTIVITY_UNIGNORED, now));
                }
            }
            plan.events.push(PlannedEvent { event: ev, group: slot, timestamp: ts });
            planned.push(Planned::Stored { group: slot, new_group, regression });
        }
        plan.planned.push(planned);
        for (project, ty, n) in &counts.0 {
            *plan.deltas.item_counts.entry((*project, ty.as_str(), day)).or_default() += *n as i64;
        }
    }
    for g in plan.groups.iter_mut().filter(|g| g.touched) {
        g.priority = priority(g.last_seen, g.times_seen);
    }
    plan
}

/// Whether `ev`, in a group resolved in a release, is of one of the older releases that leave it
/// resolved. An event of no release is not.
fn keeps_resolved(g: &GroupState, ev: &NewEvent) -> bool {
    !g.keeps.is_empty() && ev.tags.iter().find(|(k, _)| k == "release").is_some_and(|(_, v)| g.keeps.contains(v))
}

fn new_group_state(ev: &NewEvent, ts: f64) -> GroupState {
    GroupState {
        id: None,
        project_id: ev.project_id,
        hash: ev.hash.clone(),
        kind: ev.kind.clone(),
        status: GroupStatus::Unresolved,
        times_seen: 0,
        first_seen: ts,
        last_seen: ts,
        ts_count: 0,
        ts_sum: 0.0,
        ts_min: None,
        ts_max: None,
        last_event_id: String::new(),
        title: ev.title.clone(),
        culprit: ev.culprit.clone(),
        level: ev.level.as_str().to_string(),
        logger: ev.logger.clone(),
        components: ev.components.clone(),
        priority: 0.0,
        reopened: false,
        touched: false,
        aliases: Vec::new(),
        snooze_until: None,
        snooze_count: None,
        woke: None,
        keeps: Vec::new(),
    }
}

/// Counts stored events again into `base` (a group whose counters were reset by
/// [`GroupState::reset_counters`]), as the writer counted them: for a group whose events
/// changed (merged out of it). Only the group's own deltas are kept: the project's stay as
/// they are, the events are still in the project.
pub fn recount<'a>(base: &mut GroupState, events: &'a [NewEvent]) -> Deltas<'a> {
    let mut d = Deltas::default();
    for ev in events {
        fold_event(base, 0, ev, ev.timestamp, &mut d);
    }
    base.priority = priority(base.last_seen, base.times_seen);
    d.project_tags.clear();
    d.project_minutes.clear();
    d.project_hours.clear();
    d
}

/// A stored event as the rules count it (what the group shows beyond the event stays the
/// group's).
pub fn stored_event(g: &GroupState, e: crate::EventRow) -> NewEvent {
    NewEvent {
        project_id: e.project_id,
        event_id: e.event_id.parse().unwrap_or(protocol::EventId([0; 16])),
        kind: e.kind,
        timestamp: e.timestamp,
        received: e.received,
        level: crate::Level::parse(&e.level).unwrap_or(crate::Level::Error),
        logger: g.logger.clone(),
        title: e.title,
        culprit: g.culprit.clone(),
        hash: g.hash.clone(),
        components: g.components.clone(),
        tags: e.tags,
        time_spent: e.time_spent,
        payload: Vec::new(),
    }
}

impl GroupState {
    /// Its counters back to none, before [`recount`]; what the group shows stays.
    pub fn reset_counters(&mut self) {
        self.times_seen = 0;
        self.first_seen = f64::INFINITY;
        self.last_seen = f64::NEG_INFINITY;
        self.ts_count = 0;
        self.ts_sum = 0.0;
        self.ts_min = None;
        self.ts_max = None;
        self.last_event_id.clear();
    }
}

fn fold_event<'a>(g: &mut GroupState, slot: usize, ev: &'a NewEvent, ts: f64, d: &mut Deltas<'a>) {
    g.touched = true;
    g.times_seen += 1;
    g.first_seen = g.first_seen.min(ts);
    if ts >= g.last_seen || g.last_event_id.is_empty() {
        g.last_seen = g.last_seen.max(ts);
        g.last_event_id = ev.event_id.to_string();
        g.title.clone_from(&ev.title);
        g.culprit.clone_from(&ev.culprit);
        g.level = ev.level.as_str().to_string();
        g.logger.clone_from(&ev.logger);
        g.components.clone_from(&ev.components);
    }
    if let Some(ms) = ev.time_spent.filter(|m| m.is_finite() && *m >= 0.0) {
        g.ts_count += 1;
        g.ts_sum += ms;
        g.ts_min = Some(g.ts_min.map_or(ms, |m| m.min(ms)));
        g.ts_max = Some(g.ts_max.map_or(ms, |m| m.max(ms)));
        *d.durations.entry((slot, histogram::bucket(ms))).or_default() += 1;
    }
    for (k, v) in &ev.tags {
        let e = d.group_tags.entry((slot, k.as_str(), v.as_str())).or_insert((0, ts, ts));
        e.0 += 1;
        e.1 = e.1.min(ts);
        e.2 = e.2.max(ts);
        let p = d.project_tags.entry((ev.project_id, k.as_str(), v.as_str())).or_insert((0, ts));
        p.0 += 1;
        p.1 = p.1.max(ts);
    }
    let minute = (ts / 60.0).floor() as i64;
    *d.group_minutes.entry((slot, minute)).or_default() += 1;
    *d.group_hours.entry((slot, minute.div_euclid(60))).or_default() += 1;
    *d.group_days.entry((slot, minute.div_euclid(1440))).or_default() += 1;
    *d.project_minutes.entry((ev.project_id, minute)).or_default() += 1;
    *d.project_hours.entry((ev.project_id, minute.div_euclid(60))).or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Level;

    const P: ProjectId = ProjectId(1);

    fn ev(n: u8, hash: &str, ts: f64, received: f64) -> NewEvent {
        NewEvent {
            project_id: P,
            event_id: EventId([n; 16]),
            kind: "exception".into(),
            timestamp: ts,
            received,
            level: Level::Error,
            logger: None,
            title: format!("title {n}"),
            culprit: "c".into(),
            hash: hash.into(),
            components: "[]".into(),
            tags: vec![("server".into(), format!("web-{}", n % 2))],
            time_spent: Some(f64::from(n)),
            payload: Vec::new(),
        }
    }

    fn stored_group(id: i64, hash: &str, status: GroupStatus) -> GroupState {
        GroupState {
            id: Some(GroupId(id)),
            status,
            times_seen: 5,
            first_seen: 100.0,
            last_seen: 500.0,
            last_event_id: "old".into(),
            ..new_group_state(&ev(0, hash, 100.0, 100.0), 100.0)
        }
    }

    fn plan_of<'a>(events: &'a [NewEvent], counts: &'a ItemCounts, existing: Vec<GroupState>, stored: &[(ProjectId, EventId)]) -> Plan<'a> {
        let batch = Batch { jobs: vec![(events, counts)] };
        fold(&batch, existing, &stored.iter().copied().collect(), 10_000.0)
    }

    #[test]
    fn new_groups_are_created_once_with_an_activity_row() {
        let events = [ev(1, "a", 1000.0, 1000.0), ev(2, "a", 1060.0, 1060.0), ev(3, "b", 1030.0, 1030.0)];
        let counts = ItemCounts::default();
        let plan = plan_of(&events, &counts, vec![], &[]);
        assert_eq!(plan.groups.len(), 2);
        assert!(plan.groups.iter().all(|g| g.id.is_none()));
        assert_eq!(
            plan.planned[0],
            [
                Planned::Stored { group: 0, new_group: true, regression: false },
                Planned::Stored { group: 0, new_group: false, regression: false },
                Planned::Stored { group: 1, new_group: true, regression: false },
            ]
        );
        assert_eq!(plan.activity, [(0, ACTIVITY_CREATED, 10_000.0), (1, ACTIVITY_CREATED, 10_000.0)]);
        let a = &plan.groups[0];
        assert_eq!((a.times_seen, a.first_seen, a.last_seen), (2, 1000.0, 1060.0));
        assert_eq!((a.ts_count, a.ts_sum, a.ts_min, a.ts_max), (2, 3.0, Some(1.0), Some(2.0)));
        assert_eq!(a.title, "title 2", "a group shows its latest event");
        assert_eq!(a.priority, priority(1060.0, 2));
        let ids = [GroupId(7), GroupId(8)];
        assert_eq!(plan.outcomes(&ids)[0][2], WriteOutcome::Stored { group_id: GroupId(8), new_group: true, regression: false });
    }

    #[test]
    fn duplicates_change_nothing_within_a_batch_and_across_batches() {
        let events = [ev(1, "a", 1000.0, 1000.0), ev(1, "a", 1000.0, 1000.0), ev(2, "a", 1000.0, 1000.0)];
        let counts = ItemCounts::default();
        let plan = plan_of(&events, &counts, vec![], &[(P, EventId([2; 16]))]);
        assert_eq!(plan.planned[0][1], Planned::Duplicate);
        assert_eq!(plan.planned[0][2], Planned::Duplicate);
        assert_eq!(plan.events.len(), 1);
        assert_eq!(plan.groups[0].times_seen, 1);
        // An event whose id is stored creates no group.
        let only_dup = [ev(2, "z", 1000.0, 1000.0)];
        let plan = plan_of(&only_dup, &counts, vec![], &[(P, EventId([2; 16]))]);
        assert!(plan.groups.is_empty() && plan.activity.is_empty() && plan.deltas.group_tags.is_empty());
    }

    #[test]
    fn a_group_resolved_in_a_release_comes_back_only_for_a_newer_one() {
        let of = |n: u8, release: Option<&str>| {
            let mut e = ev(n, "a", 600.0 + f64::from(n), 600.0 + f64::from(n));
            e.tags.extend(release.map(|r| ("release".to_string(), r.to_string())));
            e
        };
        let counts = ItemCounts::default();
        let resolved = || GroupState { keeps: vec!["1.0".into(), "0.9".into()], ..stored_group(4, "a", GroupStatus::Resolved) };
        // Older releases: counted, still resolved.
        let older = [of(1, Some("1.0")), of(2, Some("0.9"))];
        let plan = plan_of(&older, &counts, vec![resolved()], &[]);
        assert!(plan.planned[0].iter().all(|p| *p == Planned::Stored { group: 0, new_group: false, regression: false }));
        assert_eq!(plan.groups[0].status, GroupStatus::Resolved);
        assert_eq!(plan.groups[0].times_seen, 7);
        assert!(plan.activity.is_empty() && !plan.groups[0].reopened);
        // A newer release, or no release: a regression, and the resolution is over.
        for newer in [of(3, Some("1.1")), of(4, None)] {
            let events = [newer, of(5, Some("1.0"))];
            let plan = plan_of(&events, &counts, vec![resolved()], &[]);
            assert_eq!(plan.planned[0][0], Planned::Stored { group: 0, new_group: false, regression: true });
            assert_eq!(plan.planned[0][1], Planned::Stored { group: 0, new_group: false, regression: false });
            assert!(plan.groups[0].reopened && plan.groups[0].keeps.is_empty());
            assert_eq!(plan.groups[0].status, GroupStatus::Unresolved);
        }
    }

    #[test]
    fn a_resolved_group_regresses_once_and_an_ignored_one_stays_ignored() {
        let events = [ev(1, "a", 600.0, 600.0), ev(2, "a", 610.0, 610.0), ev(3, "i", 600.0, 600.0)];
        let counts = ItemCounts::default();
        let existing = vec![stored_group(4, "a", GroupStatus::Resolved), stored_group(5, "i", GroupStatus::Ignored)];
        let plan = plan_of(&events, &counts, existing, &[]);
        assert_eq!(plan.planned[0][0], Planned::Stored { group: 0, new_group: false, regression: true });
        assert_eq!(plan.planned[0][1], Planned::Stored { group: 0, new_group: false, regression: false });
        assert_eq!(plan.planned[0][2], Planned::Stored { group: 1, new_group: false, regression: false });
        assert_eq!(plan.activity, [(0, ACTIVITY_REGRESSION, 10_000.0)]);
        assert!(plan.groups[0].reopened && plan.groups[0].status == GroupStatus::Unresolved);
        assert_eq!(plan.groups[1].status, GroupStatus::Ignored);
        assert_eq!(plan.groups[0].times_seen, 7);
        assert!(plan.groups.iter().all(|g| g.touched));
    }

    #[test]
    fn a_snoozed_group_comes_back_after_its_count_or_its_time() {
        let events = [ev(1, "c", 600.0, 600.0), ev(2, "c", 601.0, 601.0), ev(3, "t", 600.0, 600.0)];
        let counts = ItemCounts::default();
        let by_count = GroupState { snooze_count: Some(7), ..stored_group(4, "c", GroupStatus::Ignored) };
        let by_time = GroupState { snooze_until: Some(9_000.0), ..stored_group(5, "t", GroupStatus::Ignored) };
        let plan = plan_of(&events, &counts, vec![by_count, by_time], &[]);
        assert_eq!(plan.groups[0].status, GroupStatus::Unresolved, "5 + 2 events reach 7");
        assert_eq!(plan.groups[0].woke, Some(WAKE_COUNT));
        assert_eq!(plan.groups[1].woke, Some(WAKE_UNTIL), "now (10000) is past 9000");
        assert_eq!(plan.activity, [(0, ACTIVITY_UNIGNORED, 10_000.0), (1, ACTIVITY_UNIGNORED, 10_000.0)]);
        assert_eq!(plan.activity_data(0).as_deref(), Some(r#"{"reason":"count"}"#));
        let early = [ev(1, "c", 600.0, 600.0)];
        let waiting = GroupState { snooze_count: Some(7), ..stored_group(4, "c", GroupStatus::Ignored) };
        let plan = plan_of(&early, &counts, vec![waiting], &[]);
        assert_eq!((plan.groups[0].status, plan.groups[0].woke), (GroupStatus::Ignored, None));
    }

    #[test]
    fn an_alias_hash_goes_to_its_merged_group() {
        let events = [ev(1, "b", 600.0, 600.0), ev(2, "a", 601.0, 601.0)];
        let counts = ItemCounts::default();
        let merged = GroupState { aliases: vec!["b".into()], ..stored_group(4, "a", GroupStatus::Unresolved) };
        let plan = plan_of(&events, &counts, vec![merged], &[]);
        assert_eq!(plan.groups.len(), 1);
        assert_eq!(plan.groups[0].times_seen, 7);
    }

    #[test]
    fn recounting_gives_what_the_writer_counted() {
        let events = [ev(1, "a", 60.0, 60.0), ev(3, "a", 61.0, 61.0)];
        let counts = ItemCounts::default();
        let plan = plan_of(&events, &counts, vec![], &[]);
        let mut again = plan.groups[0].clone();
        again.reset_counters();
        let d = recount(&mut again, &events);
        assert_eq!((again.times_seen, again.first_seen, again.last_seen), (2, 60.0, 61.0));
        assert_eq!(again.priority, plan.groups[0].priority);
        assert_eq!(d.group_tags, plan.deltas.group_tags);
        assert!(d.project_tags.is_empty() && d.project_minutes.is_empty());
    }

    #[test]
    fn future_timestamps_are_clamped_and_old_ones_kept() {
        assert_eq!(clamp_timestamp(5000.0, 1000.0), 1000.0 + MAX_CLOCK_SKEW_SECS);
        assert_eq!(clamp_timestamp(10.0, 1000.0), 10.0);
        assert_eq!(clamp_timestamp(f64::NAN, 1000.0), 1000.0);
        let events = [ev(1, "a", 1e12, 1000.0)];
        let counts = ItemCounts::default();
        let plan = plan_of(&events, &counts, vec![], &[]);
        assert_eq!(plan.events[0].timestamp, 1060.0);
        assert_eq!(plan.groups[0].last_seen, 1060.0);
        assert!(plan.deltas.group_minutes.contains_key(&(0, 17)), "{:?}", plan.deltas.group_minutes);
    }

    #[test]
    fn an_older_event_counts_but_does_not_become_the_latest() {
        let events = [ev(9, "a", 200.0, 900.0)];
        let counts = ItemCounts::default();
        let plan = plan_of(&events, &counts, vec![stored_group(4, "a", GroupStatus::Unresolved)], &[]);
        let g = &plan.groups[0];
        assert_eq!((g.first_seen, g.last_seen, g.last_event_id.as_str(), g.times_seen), (100.0, 500.0, "old", 6));
        // A group named only by a duplicate is left as it was.
        let dup = [ev(9, "a", 200.0, 900.0)];
        let plan = plan_of(&dup, &counts, vec![stored_group(4, "a", GroupStatus::Unresolved)], &[(P, EventId([9; 16]))]);
        assert!(!plan.groups[0].touched);
        assert_eq!(plan.groups[0].times_seen, 5);
    }

    #[test]
    fn deltas_are_summed_per_key() {
        let events = [ev(1, "a", 60.0, 60.0), ev(3, "a", 61.0, 61.0), ev(2, "b", 3700.0, 3700.0)];
        let counts = ItemCounts(vec![(P, "session".into(), 3), (P, "session".into(), 2)]);
        let plan = plan_of(&events, &counts, vec![], &[]);
        let d = &plan.deltas;
        assert_eq!(d.group_tags[&(0, "server", "web-1")], (2, 60.0, 61.0));
        assert_eq!(d.project_tags[&(P, "server", "web-1")], (2, 61.0));
        assert_eq!(d.project_tags[&(P, "server", "web-0")], (1, 3700.0));
        assert_eq!(d.group_minutes[&(0, 1)], 2);
        assert_eq!(d.project_hours[&(P, 0)], 2);
        assert_eq!(d.project_hours[&(P, 1)], 1);
        assert_eq!(d.durations.values().sum::<i64>(), 3);
        assert_eq!(d.item_counts[&(P, "session", 0)], 5);
    }
}
