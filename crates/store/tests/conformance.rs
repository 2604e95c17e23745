//! The conformance suite: the behaviour every Store backend must have, written once against
//! the interface (`Arc<dyn Store>`) and run for each backend by `conformance!` — idempotency by
//! event id, folding into groups, regressions, the stream's sorts, filters, intervals and
//! cursors, counters, accounts, projects and keys, outbox claims with leases, retention.

use std::sync::Arc;

use protocol::EventId;
use store::{
    NewToken, Role, TokenId, UserId,
    ACTIVITY_CREATED, Enqueue, GroupId, GroupRow, GroupStatus, ItemCounts, Level, NewDelivery, NewEvent, ProjectId, Sort,
    SpoolMark, StatusFilter, Store, StoreError, StreamQuery, WriteOutcome,
};

/// A fresh, empty store of one backend, and what keeps it alive (its directory).
type Open = fn() -> (Box<dyn std::any::Any>, Arc<dyn Store>);

/// Runs every test of the suite against the backend `open` makes, as a module of tests.
macro_rules! conformance {
    ($backend:ident, $open:expr) => {
        mod $backend {
            const OPEN: super::Open = $open;
            conformance!(@tests writes_fold_into_groups_and_are_idempotent, sorts_and_tag_filters,
                resolved_group_reopens_as_regression, projects_keys_and_item_counts, concurrent_writers_share_batches,
                cleanup_removes_old_events_and_groups_seen_only_before, outbox_queues_once_per_firing_and_action,
                outbox_claims_hold_while_their_lease_does, stream_sorts_filters_intervals_and_pages_stably,
                hourly_daily_and_project_counters_follow_the_events, accounts_sessions_and_setup_links,
                events_keep_their_tags_and_page_by_position, spool_marks_are_committed_with_their_events,
                organisations_teams_and_roles, invitations_are_single_use_and_expire,
                tokens_are_found_by_hash_until_revoked, the_audit_log_keeps_changes_per_organisation,
                single_sign_on_settings_per_organisation, feedback_is_stored_once_with_the_issue_of_its_event,
                releases_deploys_and_their_projects,
                chunks_are_kept_by_sha1_and_artifacts_found_by_debug_id_or_name,
                a_release_knows_its_events_and_new_issues_and_an_issue_its_releases,
                client_reports_are_summed_per_project, retention_per_project_and_what_each_project_uses,
                a_size_cap_deletes_the_oldest_events_and_keeps_every_issue,
                stream_conditions_comparisons_users_and_assignees,
                the_stream_and_the_overview_narrow_to_environments,
                a_deleted_project_is_gone_at_once_and_its_data_afterwards, a_deleted_user_leaves_no_trace_but_an_owner_stays,
                ownership_rules_are_kept_and_assign_only_unassigned_issues,
                sessions_merge_by_id_and_give_each_release_its_crash_free_rates,
                logs_are_stored_once_filtered_paged_and_expire,
                monitors_record_runs_and_their_misses_and_timeouts_once);
        }
    };
    (@tests $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let (_keep, store) = OPEN();
                super::$name(store);
            }
        )*
    };
}

conformance!(sqlite, || {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&store::Backend::Sqlite { path: dir.path().join("sentry.db") }).unwrap();
    (Box::new(dir), store)
});

// A database of its own on one throwaway PostgreSQL server shared by the suite (started from
// the binaries `scripts/test.sh` installs; see `testkit`).
conformance!(postgres, || {
    let url = testkit::Postgres::shared().fresh_database();
    let store = store::open(&store::Backend::Postgres { url }).unwrap();
    (Box::new(()), store)
});

/// One page of a project's groups, as `sentry groups` lists them.
fn groups(store: &dyn Store, project: ProjectId, sort: Sort, status: StatusFilter, tags: &[(&str, &str)]) -> Vec<GroupRow> {
    let mut q = StreamQuery::new(project, 2e9);
    q.sort = sort;
    q.status = status;
    q.tags = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    q.limit = 100;
    store.stream(&q).unwrap().rows.into_iter().map(|r| r.group).collect()
}

fn unresolved(store: &dyn Store, project: ProjectId) -> Vec<GroupRow> {
    groups(store, project, Sort::LastSeen, StatusFilter::Only(GroupStatus::Unresolved), &[])
}

fn write(w: &Arc<dyn store::EventSink>, events: Vec<NewEvent>, counts: ItemCounts) -> Vec<WriteOutcome> {
    w.write(events, counts).unwrap().wait_blocking().unwrap()
}

fn event(project: ProjectId, n: u8, hash: &str, ts: f64) -> NewEvent {
    NewEvent {
        project_id: project,
        event_id: EventId([n; 16]),
        kind: "query".into(),
        timestamp: ts,
        received: ts,
        level: Level::Error,
        logger: Some("db".into()),
        title: format!("title {hash}"),
        culprit: "culprit".into(),
        hash: hash.into(),
        components: "[]".into(),
        tags: vec![("server".into(), format!("web-{}", n % 2)), ("level".into(), "error".into())],
        time_spent: Some(n as f64 * 10.0),
        payload: format!("{{\"n\":{n}}}").into_bytes(),
    }
}

fn writes_fold_into_groups_and_are_idempotent(store: Arc<dyn Store>) {
    let (p, _key) = store.create_project("Shop").unwrap();
    let w = store.start_writer(100).unwrap();
    let out = write(&w, vec![event(p.id, 1, "a", 1000.0), event(p.id, 2, "a", 1060.0), event(p.id, 3, "b", 1030.0)], ItemCounts::default());
    assert!(matches!(out[0], WriteOutcome::Stored { new_group: true, .. }));
    assert!(matches!(out[1], WriteOutcome::Stored { new_group: false, .. }));
    // The same ids again, in a later batch and twice within one batch: nothing changes.
    let again = write(&w, vec![event(p.id, 1, "a", 1000.0), event(p.id, 4, "a", 1090.0), event(p.id, 4, "a", 1090.0)], ItemCounts::default());
    assert_eq!(again[0], WriteOutcome::Duplicate);
    assert!(matches!(again[1], WriteOutcome::Stored { .. }));
    assert_eq!(again[2], WriteOutcome::Duplicate);
    assert_eq!(store.event_count(p.id).unwrap(), 4);

    let groups = groups(&*store, p.id, Sort::Frequency, StatusFilter::Only(GroupStatus::Unresolved), &[]);
    assert_eq!(groups.len(), 2);
    let a = &groups[0];
    assert_eq!((a.title.as_str(), a.count), ("title a", 3));
    assert_eq!((a.first_seen, a.last_seen), (1000.0, 1090.0));
    let ts = a.time_spent.as_ref().unwrap();
    assert_eq!((ts.count, ts.max_ms, ts.min_ms), (3, 40.0, 10.0));
    assert!((ts.avg_ms - 70.0 / 3.0).abs() < 1e-9);
    let tags = store.group_tags(a.id, 10).unwrap();
    let server = &tags.iter().find(|(k, _)| k == "server").unwrap().1;
    assert_eq!(server.iter().map(|t| t.count).sum::<u64>(), 3);
    assert_eq!(store.group_events(a.id, None, 10).unwrap().len(), 3);
    assert_eq!(store.group_events(a.id, None, 10).unwrap()[0].payload, b"{\"n\":4}");
    w.shutdown();
}

fn spool_marks_are_committed_with_their_events(store: Arc<dyn Store>) {
    let (p, _key) = store.create_project("Spooled").unwrap();
    let w = store.start_writer(100).unwrap();
    assert_eq!(store.spool_mark("node-a").unwrap(), None);
    let mark = |position| Some(SpoolMark { spool: "node-a".into(), position });
    let out = w.write_through(vec![event(p.id, 1, "a", 1000.0)], ItemCounts::default(), mark(120)).unwrap().wait_blocking().unwrap();
    assert!(matches!(out[0], WriteOutcome::Stored { .. }));
    assert_eq!(store.spool_mark("node-a").unwrap(), Some(120));
    // A replay of the same record: a duplicate, and the mark stays where it is.
    let again = w.write_through(vec![event(p.id, 1, "a", 1000.0)], ItemCounts::default(), mark(120)).unwrap().wait_blocking().unwrap();
    assert_eq!(again[0], WriteOutcome::Duplicate);
    // Marks only move forward; other spools keep their own; a mark alone (no events) is kept.
    w.write_through(vec![], ItemCounts::default(), mark(80)).unwrap().wait_blocking().unwrap();
    assert_eq!(store.spool_mark("node-a").unwrap(), Some(120));
    w.write_through(vec![], ItemCounts(vec![(p.id, "session".into(), 2)]), Some(SpoolMark { spool: "node-b".into(), position: 7 }))
        .unwrap()
        .wait_blocking()
        .unwrap();
    assert_eq!(store.spool_mark("node-b").unwrap(), Some(7));
    assert_eq!(store.spool_mark("node-a").unwrap(), Some(120));
    assert_eq!(store.item_counts(p.id).unwrap(), vec![("session".to_string(), 2)]);
    assert_eq!(store.event_count(p.id).unwrap(), 1);
    w.shutdown();
}

fn sorts_and_tag_filters(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(100).unwrap();
    write(&w, vec![event(p.id, 1, "old", 100.0), event(p.id, 2, "new", 500.0), event(p.id, 3, "new", 510.0)], ItemCounts::default());
    let titles = |sort, tags: Vec<(&str, &str)>| {
        groups(&*store, p.id, sort, StatusFilter::Only(GroupStatus::Unresolved), &tags)
            .into_iter()
            .map(|g| g.title)
            .collect::<Vec<_>>()
    };
    assert_eq!(titles(Sort::FirstSeen, vec![]), ["title new", "title old"]);
    assert_eq!(titles(Sort::TimeSpent, vec![]), ["title new", "title old"]);
    // server web-1 is on odd events only: 1 (old) and 3 (new); web-0 only on 2 (new).
    assert_eq!(titles(Sort::LastSeen, vec![("server", "web-0")]), ["title new"]);
    assert_eq!(titles(Sort::LastSeen, vec![("server", "web-1")]).len(), 2);
    assert!(titles(Sort::LastSeen, vec![("server", "nope")]).is_empty());
    w.shutdown();
}

fn resolved_group_reopens_as_regression(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(10).unwrap();
    let out = write(&w, vec![event(p.id, 1, "a", 100.0)], ItemCounts::default());
    let WriteOutcome::Stored { group_id, .. } = out[0] else { panic!() };
    store.set_group_status(group_id, GroupStatus::Resolved).unwrap();
    assert!(unresolved(&*store, p.id).is_empty());
    let out = write(&w, vec![event(p.id, 2, "a", 200.0)], ItemCounts::default());
    assert_eq!(out[0], WriteOutcome::Stored { group_id, new_group: false, regression: true });
    assert_eq!(unresolved(&*store, p.id).len(), 1);
    let kinds: Vec<String> = store.activity(group_id).unwrap().into_iter().map(|a| a.kind).collect();
    assert_eq!(kinds, ["created", "resolved", "regression"]);
    // Ignored groups stay ignored.
    store.set_group_status(group_id, GroupStatus::Ignored).unwrap();
    let out = write(&w, vec![event(p.id, 3, "a", 300.0)], ItemCounts::default());
    assert!(matches!(out[0], WriteOutcome::Stored { regression: false, .. }));
    let ignored = groups(&*store, p.id, Sort::LastSeen, StatusFilter::Only(GroupStatus::Ignored), &[]);
    assert_eq!(ignored[0].count, 3);
    w.shutdown();
}

fn projects_keys_and_item_counts(store: Arc<dyn Store>) {
    let (p, first) = store.create_project("p").unwrap();
    assert!(matches!(store.create_project("P"), Err(StoreError::Conflict(_))), "slugs are unique");
    assert!(matches!(store.create_project("***"), Err(StoreError::Invalid(_))));
    assert!(matches!(store.create_project(&"x".repeat(101)), Err(StoreError::Invalid(m)) if m.contains("at most 100 characters")));
    assert_eq!(store.create_project(&format!("  {}  ", "y".repeat(100))).unwrap().0.name.len(), 100, "100 is allowed");
    assert!(matches!(store.rename_project(p.id, &"x".repeat(100_000)), Err(StoreError::Invalid(_))));
    store.rename_project(p.id, "Shop floor").unwrap();
    assert_eq!(store.project_by_slug("p").unwrap().unwrap().name, "Shop floor");
    assert_eq!(store.project(p.id).unwrap().unwrap().slug, "p");
    assert!(matches!(store.rename_project(ProjectId(999), "x"), Err(StoreError::NotFound(_))));
    assert!(matches!(store.create_key(ProjectId(999), None, None), Err(StoreError::NotFound(_))));
    let second = store.create_key(p.id, Some("ci"), Some(5)).unwrap();
    assert_eq!(store.keys(p.id).unwrap().len(), 2);
    assert!(store.revoke_key(&first.public_key).unwrap());
    assert!(!store.key(&first.public_key).unwrap().unwrap().is_active());
    assert!(store.key(&second.public_key).unwrap().unwrap().is_active());
    assert!(!store.revoke_key("nope").unwrap());
    let w = store.start_writer(10).unwrap();
    write(&w, vec![], ItemCounts(vec![(p.id, "session".into(), 2), (p.id, "client_report".into(), 1)]));
    write(&w, vec![], ItemCounts(vec![(p.id, "session".into(), 1)]));
    assert_eq!(store.item_counts(p.id).unwrap(), [("client_report".to_string(), 1), ("session".to_string(), 3)]);
    w.shutdown();
}

fn concurrent_writers_share_batches(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(1000).unwrap();
    // Fifty requests queued at once, answered together.
    let tickets: Vec<_> =
        (0..50u8).map(|n| w.write(vec![event(p.id, n, "same", 1000.0 + n as f64)], ItemCounts::default()).unwrap()).collect();
    for t in tickets {
        assert!(matches!(t.wait_blocking().unwrap()[0], WriteOutcome::Stored { .. }));
    }
    let groups = unresolved(&*store, p.id);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].count, 50);
    w.shutdown();
}

fn cleanup_removes_old_events_and_groups_seen_only_before(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(10).unwrap();
    let mut old = event(p.id, 1, "old", 1000.0);
    old.received = 1000.0;
    let mut mixed_old = event(p.id, 2, "mixed", 1000.0);
    mixed_old.received = 1000.0;
    let mut mixed_new = event(p.id, 3, "mixed", 5000.0);
    mixed_new.received = 5000.0;
    write(&w, vec![old, mixed_old, mixed_new], ItemCounts::default());
    let cleaned = store.cleanup(&store::Retention::all(2000.0), &mut |_| {}).unwrap();
    assert_eq!(cleaned, store::Cleaned { events: 2, groups: 1 });
    let groups = unresolved(&*store, p.id);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].title, "title mixed");
    assert_eq!(store.event_count(p.id).unwrap(), 1);
    assert!(store.group_tags(groups[0].id, 10).unwrap().iter().all(|(_, v)| !v.is_empty()));
    // Nothing left to clean: a second run is a no-op.
    assert_eq!(store.cleanup(&store::Retention::all(2000.0), &mut |_| {}).unwrap(), store::Cleaned::default());
    w.shutdown();
}

fn retention_per_project_and_what_each_project_uses(store: Arc<dyn Store>) {
    let (a, _) = store.create_project("a").unwrap();
    let (b, _) = store.create_project("b").unwrap();
    let (c, _) = store.create_project("c").unwrap();
    let w = store.start_writer(10).unwrap();
    let mut n = 0;
    for p in [a.id, b.id, c.id] {
        for (hash, received) in [("old", 1000.0), ("mixed", 1000.0), ("mixed", 5000.0)] {
            n += 1;
            let mut e = event(p, n, hash, received);
            e.received = received;
            write(&w, vec![e], ItemCounts::default());
        }
    }
    // a: the common cutoff; b: a later one of its own; c: keeps everything.
    let retention = store::Retention { cutoff: Some(2000.0), projects: vec![(b.id, Some(6000.0)), (c.id, None)] };
    assert_eq!(retention.cutoff_of(a.id), Some(2000.0));
    assert_eq!(retention.common_cutoff(), None);
    assert_eq!(store.expired_events(&retention).unwrap(), 5);
    let mut seen = Vec::new();
    let cleaned = store.cleanup(&retention, &mut |done| seen.push(done)).unwrap();
    assert_eq!(cleaned, store::Cleaned { events: 5, groups: 3 });
    assert_eq!(seen.last(), Some(&5), "progress ends at what was deleted: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(store.event_count(a.id).unwrap(), 1);
    assert_eq!(store.event_count(b.id).unwrap(), 0);
    assert_eq!(store.event_count(c.id).unwrap(), 3);
    assert_eq!(unresolved(&*store, a.id).len(), 1);
    assert!(unresolved(&*store, b.id).is_empty());
    assert_eq!(unresolved(&*store, c.id).len(), 2);
    assert_eq!(store.expired_events(&retention).unwrap(), 0);
    // Keeping everything deletes nothing.
    let none = store::Retention { cutoff: None, projects: vec![] };
    assert!(none.keeps_everything());
    assert_eq!(store.cleanup(&none, &mut |_| {}).unwrap(), store::Cleaned::default());

    let usage = store.storage_usage().unwrap();
    assert!(usage.total_bytes > 0);
    let of = |p: ProjectId| usage.projects.iter().find(|u| u.project_id == p).cloned();
    let (ua, uc) = (of(a.id).unwrap(), of(c.id).unwrap());
    assert_eq!((ua.events, uc.events), (1, 3));
    assert_eq!(uc.oldest, Some(1000.0));
    assert!(uc.payload_bytes > ua.payload_bytes && ua.payload_bytes > 0, "{usage:?}");
    assert!(of(b.id).is_none(), "a project without events uses nothing: {usage:?}");
    assert_eq!(usage.projects[0].project_id, c.id, "most bytes first");
    w.shutdown();
}

fn a_size_cap_deletes_the_oldest_events_and_keeps_every_issue(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(100).unwrap();
    const DAY: f64 = 86_400.0;
    let today = (store::now() / DAY).floor() * DAY;
    // Four days of events, 100 a day, of two issues; the payloads compress poorly.
    let mut id = 0u16;
    let mut noise = 0x2545_f491_4f6c_dd1du64;
    for day in (0..4).rev() {
        let events: Vec<NewEvent> = (0..100)
            .map(|i| {
                id += 1;
                let received = today - f64::from(day) * DAY + 60.0 + f64::from(i);
                let mut e = event(p.id, 0, if i % 2 == 0 { "even" } else { "odd" }, received);
                e.event_id = EventId([id.to_be_bytes(), [7; 2], [7; 2], [7; 2], [7; 2], [7; 2], [7; 2], [7; 2]].concat().try_into().unwrap());
                e.received = received;
                let filler: String = (0..400)
                    .map(|_| {
                        noise ^= noise << 13;
                        noise ^= noise >> 7;
                        noise ^= noise << 17;
                        format!("{:02x}", noise as u8)
                    })
                    .collect();
                e.payload = format!("{{\"filler\":\"{filler}\"}}").into_bytes();
                e
            })
            .collect();
        write(&w, events, ItemCounts::default());
    }
    let before = store.storage_usage().unwrap();
    assert_eq!(store.event_count(p.id).unwrap(), 400);
    let counts = |s: &dyn Store| {
        let mut c: Vec<(String, u64)> = unresolved(s, p.id).into_iter().map(|g| (g.title, g.count)).collect();
        c.sort();
        c
    };
    let issues = counts(&*store);
    assert_eq!(issues, vec![("title even".to_string(), 200), ("title odd".to_string(), 200)]);
    // Under the cap already: nothing happens.
    assert_eq!(store.trim_to(before.total_bytes * 2).unwrap().events, 0);
    // Just over: the oldest go first, today's stay, every issue and its count stays.
    let trimmed = store.trim_to(before.total_bytes - 1).unwrap();
    assert!(trimmed.events > 0 && trimmed.events <= 100, "{trimmed:?}");
    assert!(trimmed.bytes_after < trimmed.bytes_before && trimmed.bytes_after < before.total_bytes, "{trimmed:?}");
    let left = store.event_count(p.id).unwrap();
    assert_eq!(left, 400 - trimmed.events);
    let oldest = store.storage_usage().unwrap().projects[0].oldest.unwrap();
    assert!(oldest >= today - 3.0 * DAY + 60.0 + trimmed.events as f64 - 0.5, "the oldest went first: {oldest} {trimmed:?}");
    assert_eq!(counts(&*store), issues, "issues and their counts stay");
    w.shutdown();
}

fn outbox_queues_once_per_firing_and_action(store: Arc<dyn Store>) {
    let (p, _key) = store.create_project("Shop").unwrap();
    let w = store.start_writer(100).unwrap();
    write(&w, vec![event(p.id, 1, "a", 1000.0)], ItemCounts::default());
    let activity = store.activity_after(0, 10).unwrap();
    assert_eq!(activity.len(), 1);
    assert_eq!((activity[0].kind.as_str(), activity[0].project_id), (ACTIVITY_CREATED, p.id));
    let group = activity[0].group_id;
    assert_eq!(store.notify_cursor("activity").unwrap(), None);
    assert_eq!(store.group_count_since(group, 0).unwrap(), 1);
    assert_eq!(store.group_count_since(group, 1000 / 60 + 1).unwrap(), 0);

    let delivery = |action| NewDelivery {
        firing_id: "r:new:1".into(),
        action,
        project_id: p.id,
        group_id: group,
        rule: "r".into(),
        plugin: "email".into(),
        settings: "{}".into(),
        payload: "{}".into(),
        expires_at: f64::MAX,
    };
    let e = Enqueue { deliveries: vec![delivery(0), delivery(1)], fired: vec![("r".into(), group)], cursor: Some(("activity".into(), activity[0].id)) };
    assert_eq!(store.enqueue_deliveries(&e).unwrap(), 2);
    // The same firing again (a crash before the cursor moved, say): nothing new.
    assert_eq!(store.enqueue_deliveries(&e).unwrap(), 0);
    assert_eq!(store.notify_cursor("activity").unwrap(), Some(activity[0].id));
    assert!(store.last_fired("r", group).unwrap().is_some());
    assert!(store.activity_after(activity[0].id, 10).unwrap().is_empty());

    let now = 2e9;
    let due = store.claim_deliveries("a", now, 30.0, 10).unwrap();
    assert_eq!(due.len(), 2);
    store.delivery_done(due[0].id).unwrap();
    store.delivery_failed(due[1].id, "mail server down", Some(now + 60.0)).unwrap();
    assert!(store.claim_deliveries("a", now, 30.0, 10).unwrap().is_empty());
    assert_eq!(store.next_delivery_at().unwrap(), Some(now + 60.0));
    // A restart makes it due at once.
    assert_eq!(store.resume_deliveries(now).unwrap(), 1);
    let again = store.claim_deliveries("a", now, 30.0, 10).unwrap();
    assert_eq!((again.len(), again[0].attempts, again[0].last_error.as_deref()), (1, 1, Some("mail server down")));
    store.delivery_failed(again[0].id, "refused", None).unwrap();
    assert!(store.claim_deliveries("a", now, 30.0, 10).unwrap().is_empty());
    let all = store.deliveries(10).unwrap();
    assert_eq!(all.iter().filter(|d| d.delivered_at.is_some()).count(), 1);
    assert_eq!(all.iter().filter(|d| d.failed_at.is_some()).count(), 1);
}

fn the_stream_and_the_overview_narrow_to_environments(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("Envs").unwrap();
    let w = store.start_writer(1000).unwrap();
    let now = 1_800_000_000.0;
    let ev = |n: u32, hash: &str, ago: f64, env: Option<&str>| {
        let mut e = tagged(p.id, n, hash, now - ago, "web-1", None);
        e.tags.extend(env.map(|v| ("environment".to_string(), v.to_string())));
        e
    };
    let day = 86400.0;
    // a: production twice now; b: staging now; c: no environment; d: production 3 days ago;
    // e: production 2 days ago, staging now.
    write(&w, vec![
        ev(1, "a", 60.0, Some("production")), ev(2, "a", 50.0, Some("production")),
        ev(3, "b", 120.0, Some("staging")),
        ev(4, "c", 30.0, None),
        ev(5, "d", 3.0 * day, Some("production")),
        ev(6, "e", 2.0 * day, Some("production")), ev(7, "e", 40.0, Some("staging")),
    ], ItemCounts::default());
    let page = |envs: &[&str], since: Option<f64>, sort: Sort| {
        let mut q = StreamQuery::new(p.id, now);
        q.environments = envs.iter().map(|e| e.to_string()).collect();
        q.since = since.map(|s| now - s);
        q.sort = sort;
        store.stream(&q).unwrap().rows.iter().map(|r| (r.group.title.replace("title ", ""), r.interval_count)).collect::<Vec<_>>()
    };
    let titles = |envs: &[&str], since: Option<f64>| {
        let mut t: Vec<String> = page(envs, since, Sort::LastSeen).into_iter().map(|r| r.0).collect();
        t.sort();
        t.join(",")
    };
    assert_eq!(titles(&[], Some(day)), "a,b,c,e");
    assert_eq!(titles(&["production"], Some(day)), "a", "e was in production only 2 days ago");
    assert_eq!(titles(&["production", "staging"], Some(day)), "a,b,e");
    assert_eq!(titles(&["production"], None), "a,d,e");
    assert_eq!(titles(&["nowhere"], None), "");
    // All time, the counts are those of the environments: e has 2 events, 1 in production.
    assert_eq!(page(&["production"], None, Sort::Frequency), [("a".to_string(), 2), ("e".into(), 1), ("d".into(), 1)]);
    assert_eq!(page(&["staging"], None, Sort::LastSeen), [("e".to_string(), 1), ("b".into(), 1)]);
    assert_eq!(page(&["production", "staging"], None, Sort::Frequency)[..2], [("e".to_string(), 2), ("a".into(), 2)], "ties: newest first");
    // In an interval, the buckets count every environment (and the query says so).
    let mut q = StreamQuery::new(p.id, now);
    q.environments = vec!["staging".into()];
    assert!(q.counts_by_environment());
    q.since = Some(now - day);
    assert!(!q.counts_by_environment());
    assert_eq!(page(&["staging"], Some(7.0 * day), Sort::Frequency), [("e".to_string(), 2), ("b".into(), 1)]);
    // Pages of the frequency sort by environment follow on.
    let mut q = StreamQuery::new(p.id, now);
    q.environments = vec!["production".into()];
    q.sort = Sort::Frequency;
    q.since = None;
    q.limit = 1;
    let first = store.stream(&q).unwrap();
    assert_eq!(first.rows[0].group.title, "title a");
    q.cursor = first.next;
    let second = store.stream(&q).unwrap();
    assert_eq!((second.rows[0].group.title.as_str(), second.rows[0].interval_count), ("title e", 1));

    // The overview: new issues and trending ones, narrowed the same way.
    let names = |rows: Vec<GroupRow>| {
        let mut t: Vec<String> = rows.into_iter().map(|g| g.title.replace("title ", "")).collect();
        t.sort();
        t.join(",")
    };
    let envs = |e: &[&str]| e.iter().map(|v| v.to_string()).collect::<Vec<_>>();
    assert_eq!(names(store.new_groups(&[p.id], now - 3600.0, &[], 10).unwrap()), "a,b,c");
    assert_eq!(names(store.new_groups(&[p.id], now - 3600.0, &envs(&["production"]), 10).unwrap()), "a");
    assert_eq!(names(store.new_groups(&[p.id], now - 3600.0, &envs(&["staging"]), 10).unwrap()), "b", "e is older than the hour");
    let trending = |e: &[&str]| names(store.trending(&[p.id], now, &envs(e), 10).unwrap().into_iter().map(|t| t.group).collect());
    assert_eq!(trending(&[]), "a,b,c,e");
    assert_eq!(trending(&["staging"]), "b,e");
    assert_eq!(trending(&["production"]), "a");
}

/// A Query event of group `hash` at `ts` with `server` and `customer` tags and a duration.
fn tagged(project: ProjectId, id: u32, hash: &str, ts: f64, server: &str, ms: Option<f64>) -> NewEvent {
    let mut e = event(project, 0, hash, ts);
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&id.to_be_bytes());
    e.event_id = EventId(bytes);
    e.tags = vec![("server".into(), server.into()), ("level".into(), "error".into())];
    e.time_spent = ms;
    e
}

fn stream_conditions_comparisons_users_and_assignees(store: Arc<dyn Store>) {
    use store::{Assignee, AssigneeCondition, Cmp, Comparison, GroupField, TagCondition, TeamId};
    let (p, _) = store.create_project("Search").unwrap();
    let w = store.start_writer(1000).unwrap();
    let now = 1_800_000_000.0;
    let ev = |n: u32, hash: &str, ts: f64, tags: &[(&str, &str)]| {
        let mut e = tagged(p.id, n, hash, ts, "", None);
        e.tags = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        e
    };
    // a: two users (u1 two days ago, u2 now), releases 1.0 then 1.1; b: one user, 1.1; c: none.
    write(&w, vec![
        ev(1, "a", now - 2.0 * 86400.0, &[("server", "web-1"), ("user", "u1"), ("release", "1.0")]),
        ev(2, "a", now - 60.0, &[("server", "web-1"), ("user", "u2"), ("release", "1.1")]),
        ev(3, "b", now - 120.0, &[("server", "web-2"), ("user", "u1"), ("release", "1.1")]),
        ev(4, "c", now - 3.0 * 86400.0, &[("server", "db-1")]),
    ], ItemCounts::default());
    // Again u1 on a: still two users.
    write(&w, vec![ev(5, "a", now - 30.0, &[("server", "web-1"), ("user", "u1")])], ItemCounts::default());
    let titles = |q: &StreamQuery| {
        let mut t: Vec<String> = store.stream(q).unwrap().rows.iter().map(|r| r.group.title.replace("title ", "")).collect();
        t.sort();
        t.join(",")
    };
    let with = |f: &dyn Fn(&mut StreamQuery)| {
        let mut q = StreamQuery::new(p.id, now);
        f(&mut q);
        titles(&q)
    };
    let cond = |key: &str, values: &[&str], negated: bool, first_only: bool| TagCondition {
        key: key.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
        negated,
        first_only,
    };
    assert_eq!(with(&|q| q.conditions.push(cond("server", &["web-*"], false, false))), "a,b");
    assert_eq!(with(&|q| q.conditions.push(cond("server", &["WEB-2", "db-1"], false, false))), "c", "exact values are exact");
    assert_eq!(with(&|q| q.conditions.push(cond("server", &["web-*"], true, false))), "c");
    assert_eq!(with(&|q| q.conditions.push(cond("server", &["web_1"], false, false))), "", "_ is not a wildcard");
    assert_eq!(with(&|q| q.conditions.push(cond("user", &[], false, false))), "a,b");
    assert_eq!(with(&|q| q.conditions.push(cond("user", &[], true, false))), "c");
    assert_eq!(with(&|q| q.conditions.push(cond("release", &["1.1"], false, false))), "a,b");
    assert_eq!(with(&|q| q.conditions.push(cond("release", &["1.1"], false, true))), "b");
    assert_eq!(with(&|q| q.conditions.push(cond("release", &["1.1"], true, true))), "a,c");
    let cmp = |field, cmp, value| Comparison { field, cmp, value };
    assert_eq!(with(&|q| q.comparisons.push(cmp(GroupField::TimesSeen, Cmp::Gt, 1.0))), "a");
    assert_eq!(with(&|q| q.comparisons.push(cmp(GroupField::Users, Cmp::Ge, 1.0))), "a,b");
    assert_eq!(with(&|q| q.comparisons.push(cmp(GroupField::Users, Cmp::Eq, 0.0))), "c");
    assert_eq!(with(&|q| q.comparisons.push(cmp(GroupField::FirstSeen, Cmp::Ge, now - 86400.0))), "b");
    assert_eq!(with(&|q| q.comparisons.push(cmp(GroupField::LastSeen, Cmp::Le, now - 86400.0))), "c");

    // Users: all time, and in the interval; sorted by users.
    let mut q = StreamQuery::new(p.id, now);
    q.sort = Sort::Users;
    let rows = store.stream(&q).unwrap().rows;
    let users: Vec<(String, u64)> = rows.iter().map(|r| (r.group.title.clone(), r.users)).collect();
    assert_eq!(users[0], ("title a".to_string(), 2));
    assert_eq!(users.iter().map(|u| u.1).collect::<Vec<_>>(), [2, 1, 0]);
    q.since = Some(now - 3600.0);
    q.sort = Sort::LastSeen;
    let rows = store.stream(&q).unwrap().rows;
    assert_eq!(rows.iter().map(|r| r.users).collect::<Vec<_>>(), [2, 1], "u1 was seen again on a within the hour");
    q.since = Some(now - 45.0);
    assert_eq!(store.stream(&q).unwrap().rows.iter().map(|r| r.users).collect::<Vec<_>>(), [1], "only u1 on a in the last 45 s");

    // Assignees.
    let boss = store.create_user("boss@example.com", "h", false).unwrap();
    let org = store.organizations().unwrap()[0].clone();
    let team = store.create_team(org.id, "Ops").unwrap();
    let id = |t: &str| store.stream(&StreamQuery::new(p.id, now)).unwrap().rows.into_iter().find(|r| r.group.title == t).unwrap().group.id;
    let (a, b) = (id("title a"), id("title b"));
    assert_eq!(store.group_assignee(a).unwrap(), None);
    assert!(store.assign_group(a, Some(Assignee::User(boss.id))).unwrap());
    assert!(!store.assign_group(a, Some(Assignee::User(boss.id))).unwrap(), "unchanged: nothing recorded");
    assert!(store.assign_group(b, Some(Assignee::User(boss.id))).unwrap());
    assert!(store.assign_group(b, Some(Assignee::Team(team.id))).unwrap());
    assert_eq!(store.group_assignee(a).unwrap(), Some(Assignee::User(boss.id)));
    assert_eq!(store.group_assignee(b).unwrap(), Some(Assignee::Team(team.id)));
    assert!(matches!(store.group_assignee(GroupId(999_999)), Err(StoreError::NotFound(_))));
    let to = |list: Vec<Assignee>, negated| AssigneeCondition { to: Some(list), negated };
    assert_eq!(with(&|q| q.assigned.push(to(vec![Assignee::User(boss.id)], false))), "a");
    assert_eq!(with(&|q| q.assigned.push(to(vec![Assignee::Team(team.id)], false))), "b");
    assert_eq!(with(&|q| q.assigned.push(to(vec![Assignee::Team(team.id), Assignee::User(boss.id)], false))), "a,b");
    assert_eq!(with(&|q| q.assigned.push(to(vec![Assignee::User(boss.id)], true))), "b,c");
    assert_eq!(with(&|q| q.assigned.push(to(vec![Assignee::Team(TeamId(999))], false))), "");
    assert_eq!(with(&|q| q.assigned.push(AssigneeCondition { to: None, negated: true })), "c");
    assert_eq!(with(&|q| q.assigned.push(AssigneeCondition { to: None, negated: false })), "a,b");
    let rows = store.stream(&StreamQuery::new(p.id, now)).unwrap().rows;
    assert_eq!(rows.iter().find(|r| r.group.id == b).unwrap().assignee, Some(Assignee::Team(team.id)));
    assert!(store.assign_group(a, None).unwrap());
    assert_eq!(with(&|q| q.assigned.push(AssigneeCondition { to: None, negated: true })), "a,c");
    let kinds: Vec<String> = store.activity(a).unwrap().into_iter().map(|x| x.kind).collect();
    assert_eq!(kinds, ["created", "assigned", "unassigned"]);
    // Who assigned, and to whom by id, for the notifications that read the activity log.
    let before = store.last_activity_id().unwrap();
    assert!(store.assign_group_by(b, Some(Assignee::User(boss.id)), Some(boss.id)).unwrap());
    let entry = store.activity_after(before, 10).unwrap().pop().unwrap();
    assert_eq!((entry.kind.as_str(), entry.group_id, entry.actor), ("assigned", b, Some(boss.id)));
    let data: serde_json::Value = serde_json::from_str(entry.data.as_deref().unwrap()).unwrap();
    assert_eq!((data["to"].as_str(), data["user"].as_i64(), data["team"].is_null()), (Some("boss@example.com"), Some(boss.id.0), true));
    assert!(store.assign_group_by(b, Some(Assignee::Team(team.id)), None).unwrap());
    let entry = store.activity_after(before, 10).unwrap().pop().unwrap();
    let data: serde_json::Value = serde_json::from_str(entry.data.as_deref().unwrap()).unwrap();
    assert_eq!((entry.actor, data["to"].as_str(), data["team"].as_i64()), (None, Some("#ops"), Some(team.id.0)));
    // Every condition at once, with each sort: the SQL holds together.
    for sort in [Sort::Priority, Sort::LastSeen, Sort::FirstSeen, Sort::Frequency, Sort::TimeSpent, Sort::TimeSpentTotal, Sort::Users] {
        let mut q = StreamQuery::new(p.id, now);
        q.sort = sort;
        q.since = Some(now - 7.0 * 86400.0);
        q.conditions = vec![cond("server", &["web-*"], false, false), cond("user", &[], false, false), cond("server", &["db-*"], true, false)];
        q.comparisons = vec![cmp(GroupField::TimesSeen, Cmp::Ge, 1.0)];
        q.assigned = vec![AssigneeCondition { to: None, negated: false }];
        q.text = vec!["title".into()];
        let rows = store.stream(&q).unwrap().rows;
        let expect = if matches!(sort, Sort::TimeSpent | Sort::TimeSpentTotal) { 0 } else { 1 };
        assert_eq!(rows.len(), expect, "{sort:?}");
    }
}

fn stream_sorts_filters_intervals_and_pages_stably(store: Arc<dyn Store>) {
    use store::Cursor;
    let (p, _) = store.create_project("Stream").unwrap();
    let (other, _) = store.create_project("Other").unwrap();
    let w = store.start_writer(1000).unwrap();
    let now = 1_800_000_000.0;
    // Group gN has N+1 events: the old ones two days ago, one within the last 10 minutes for
    // even N. Odd groups run on web-2.
    let mut evs = Vec::new();
    let mut id = 0;
    for n in 0..30u32 {
        let hash = format!("g{n:02}");
        let server = if n % 2 == 0 { "web-1" } else { "web-2" };
        for k in 0..=n {
            id += 1;
            let ts = if k == 0 && n % 2 == 0 { now - 300.0 } else { now - 2.0 * 86400.0 - f64::from(k) };
            evs.push(tagged(p.id, id, &hash, ts, server, (n > 20).then_some(f64::from(n))));
        }
    }
    id += 1;
    evs.push(tagged(other.id, id, "x", now - 10.0, "web-1", None));
    write(&w, evs, ItemCounts::default());

    // Frequency in the last hour: only the even groups, each with one event there.
    let mut q = StreamQuery::new(p.id, now);
    q.sort = Sort::Frequency;
    q.since = Some(now - 3600.0);
    let page = store.stream(&q).unwrap();
    assert_eq!(page.rows.len(), 15);
    assert!(page.rows.iter().all(|r| r.interval_count == 1 && r.group.title.ends_with(|c: char| "02468".contains(c))));
    assert_eq!(page.rows[0].sparkline.iter().sum::<u64>(), 1);

    // All time by frequency, filtered by tag: odd groups only, most events first.
    let mut q = StreamQuery::new(p.id, now);
    q.sort = Sort::Frequency;
    q.tags = vec![("server".into(), "web-2".into())];
    let titles: Vec<String> = store.stream(&q).unwrap().rows.iter().map(|r| r.group.title.clone()).collect();
    assert_eq!(titles.first().map(String::as_str), Some("title g29"));
    assert_eq!(titles.len(), 15);

    // Time spent: only groups with durations, slowest first.
    let mut q = StreamQuery::new(p.id, now);
    q.sort = Sort::TimeSpent;
    let rows = store.stream(&q).unwrap().rows;
    assert_eq!(rows.len(), 9);
    assert_eq!(rows[0].group.title, "title g29");

    // Text search.
    let mut q = StreamQuery::new(p.id, now);
    q.text = vec!["G1".into()];
    assert_eq!(store.stream(&q).unwrap().rows.len(), 10, "g10..g19, case-insensitively");

    // Paging by last seen, 7 at a time, while a new event lands between pages: every group
    // shows up exactly once.
    for sort in [Sort::LastSeen, Sort::Priority, Sort::FirstSeen, Sort::Frequency] {
        let mut q = StreamQuery::new(p.id, now);
        q.sort = sort;
        q.limit = 7;
        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            q.cursor = cursor;
            let page = store.stream(&q).unwrap();
            seen.extend(page.rows.iter().map(|r| r.group.id));
            if seen.len() == 7 && sort == Sort::LastSeen {
                id += 1;
                write(&w, vec![tagged(p.id, id, "g29", now - 1.0, "web-2", Some(29.0))], ItemCounts::default());
            }
            match page.next {
                Some(c) => cursor = Some(Cursor::parse(&c.encode()).unwrap()),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{sort:?}: no group twice");
        assert!(seen.len() >= 29, "{sort:?}: {} groups", seen.len());
    }

    // The filter widgets' choices count events of this project only.
    let servers = store.project_tag_values(p.id, "server", 10).unwrap();
    let web2: u64 = (0..30u64).filter(|n| n % 2 == 1).map(|n| n + 1).sum::<u64>() + 1;
    assert_eq!(servers[0].value, "web-2");
    assert_eq!(servers[0].count, web2);
    let series = store.project_series(&[p.id], now - 86400.0 * 3.0, now, 12).unwrap();
    assert_eq!(series.iter().sum::<u64>(), store.event_count(p.id).unwrap());

}

fn hourly_daily_and_project_counters_follow_the_events(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("p").unwrap();
    let (other, _) = store.create_project("other").unwrap();
    let w = store.start_writer(1000).unwrap();
    let base = 1_800_000_000.0;
    // Two groups of one project across two hours, in two batches; another project beside them.
    let first: Vec<NewEvent> = (0..30u8).map(|n| event(p.id, n, if n % 2 == 0 { "a" } else { "b" }, base + f64::from(n) * 200.0)).collect();
    let second: Vec<NewEvent> = (30..40u8).map(|n| event(p.id, n, "a", base + f64::from(n) * 200.0)).collect();
    write(&w, first, ItemCounts::default());
    write(&w, second, ItemCounts::default());
    write(&w, vec![event(other.id, 200, "a", base)], ItemCounts::default());
    let now = base + 40.0 * 200.0;
    let series: u64 = store.project_series(&[p.id], base - 60.0, now + 60.0, 10).unwrap().iter().sum();
    assert_eq!(series, 40, "the project's event-rate series counts every event once");
    let groups = unresolved(&*store, p.id);
    for g in &groups {
        assert_eq!(store.group_interval_count(g.id, Some(base - 60.0), now + 60.0).unwrap(), g.count, "{}", g.title);
    }
    // server is web-0 on even events, web-1 on odd ones: 20 each; the other project's is apart.
    let servers = store.project_tag_values(p.id, "server", 10).unwrap();
    assert_eq!(servers.iter().map(|t| t.count).sum::<u64>(), 40, "{servers:?}");
    assert!(servers.iter().all(|t| t.count == 20), "{servers:?}");
    assert_eq!(store.project_tag_values(other.id, "server", 10).unwrap().iter().map(|t| t.count).sum::<u64>(), 1);
    w.shutdown();
}

fn outbox_claims_hold_while_their_lease_does(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("Shop").unwrap();
    let w = store.start_writer(10).unwrap();
    let WriteOutcome::Stored { group_id, .. } = write(&w, vec![event(p.id, 1, "a", 1000.0)], ItemCounts::default())[0] else {
        panic!()
    };
    let deliveries = (0..6)
        .map(|i| NewDelivery {
            firing_id: format!("r:{i}"),
            action: 0,
            project_id: p.id,
            group_id,
            rule: "r".into(),
            plugin: "webhook".into(),
            settings: "{}".into(),
            payload: "{}".into(),
            expires_at: f64::MAX,
        })
        .collect();
    assert_eq!(store.enqueue_deliveries(&Enqueue { deliveries, ..Enqueue::default() }).unwrap(), 6);
    let now = 2e9;
    // Two claimers at once, from two threads: every row goes to exactly one of them.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| (0..3).flat_map(|_| store.claim_deliveries("a", now, 60.0, 2).unwrap()).collect::<Vec<_>>());
        let b = s.spawn(|| (0..3).flat_map(|_| store.claim_deliveries("b", now, 60.0, 2).unwrap()).collect::<Vec<_>>());
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut ids: Vec<i64> = a.iter().chain(&b).map(|d| d.id).collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), 6, "{} + {} claimed", a.len(), b.len());
    ids.dedup();
    assert_eq!(ids.len(), 6, "no delivery was claimed twice");
    // While the leases hold, nobody else gets them, not even after a restart's resume.
    assert!(store.claim_deliveries("c", now + 30.0, 60.0, 10).unwrap().is_empty());
    assert_eq!(store.resume_deliveries(now + 30.0).unwrap(), 0);
    // A claimer that died: its rows are due again once the lease is over.
    let done = a.first().or(b.first()).unwrap().id;
    store.delivery_done(done).unwrap();
    let taken_over = store.claim_deliveries("c", now + 61.0, 60.0, 10).unwrap();
    assert_eq!(taken_over.len(), 5);
    assert!(taken_over.iter().all(|d| d.id != done), "a delivered row is not claimed again");
    w.shutdown();
}

fn accounts_sessions_and_setup_links(store: Arc<dyn Store>) {
    store.create_setup_token("t1", 60.0).unwrap();
    assert!(store.setup_token_valid("t1").unwrap());
    assert!(!store.setup_token_valid("nope").unwrap());
    let u = store.use_setup_token("t1", "Admin@Example.com", "hash").unwrap();
    assert!(u.is_admin);
    let m = store.memberships(u.id).unwrap();
    assert_eq!((m.len(), m[0].org.slug.as_str(), m[0].role, m[0].teams.len()), (1, "default", Role::Owner, 1), "the first user owns the first organisation");
    // Used once: refused afterwards, and no second first user.
    assert!(!store.setup_token_valid("t1").unwrap());
    assert!(store.use_setup_token("t1", "b@example.com", "h").is_err());
    assert!(
        matches!(store.create_user("admin@example.com", "h", false), Err(StoreError::Conflict(_))),
        "emails are unique case-insensitively"
    );
    assert!(matches!(store.create_user("not an email", "h", false), Err(StoreError::Invalid(_))));
    let (found, hash) = store.user_for_login("ADMIN@example.com").unwrap().unwrap();
    assert_eq!((found.id, hash.as_str()), (u.id, "hash"));
    let bob = store.create_user("bob@example.com", "h2", false).unwrap();
    assert_eq!(store.user(bob.id).unwrap().map(|u| u.email), Some("bob@example.com".to_string()));
    assert!(store.user(store::UserId(999)).unwrap().is_none());
    assert_eq!(store.user_count().unwrap(), 2);
    assert_eq!(store.users().unwrap().iter().map(|u| u.email.as_str()).collect::<Vec<_>>(), ["Admin@Example.com", "bob@example.com"]);

    store.create_session(u.id, "sess", "csrf", 60.0).unwrap();
    store.create_session(bob.id, "bob", "c2", 60.0).unwrap();
    let sess = store.session("sess").unwrap().unwrap();
    assert_eq!((sess.user.id, sess.csrf_token.as_str()), (u.id, "csrf"));
    assert!(sess.user.last_login.is_some());
    store.create_session(u.id, "old", "c", -1.0).unwrap();
    assert!(store.session("old").unwrap().is_none(), "expired sessions are not live");
    store.set_password(u.id, "new").unwrap();
    assert!(store.session("sess").unwrap().is_none(), "a new password ends the user's sessions");
    assert!(store.session("bob").unwrap().is_some(), "and only theirs");
    store.delete_session("bob").unwrap();
    assert!(store.session("bob").unwrap().is_none());
    assert!(matches!(store.set_password(store::UserId(999), "x"), Err(StoreError::NotFound(_))));
}

fn events_keep_their_tags_and_page_by_position(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(100).unwrap();
    let mut evs: Vec<NewEvent> = (1..=5u8).map(|n| event(p.id, n, "a", 1000.0 + f64::from(n))).collect();
    // The tags are what ingest derived, not something read from the payload again.
    evs[4].tags = vec![("customer".into(), "acme".into()), ("release".into(), "1.2 \"beta\"".into())];
    evs[4].payload = b"not even json".to_vec();
    let out = write(&w, evs, ItemCounts::default());
    let WriteOutcome::Stored { group_id, .. } = out[0] else { panic!() };
    let newest = store.event(p.id, &EventId([5; 16])).unwrap().unwrap();
    assert_eq!(newest.tags, [("customer".to_string(), "acme".to_string()), ("release".to_string(), "1.2 \"beta\"".to_string())]);
    assert_eq!(newest.payload, b"not even json");
    assert_eq!((newest.group_id, newest.project_id, newest.level.as_str()), (group_id, p.id, "error"));
    assert!(store.event(p.id, &EventId([9; 16])).unwrap().is_none());
    // Pages of two, newest first, each starting after the last one's position.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.group_events(group_id, before, 2).unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|e| e.position);
        seen.extend(page.into_iter().map(|e| e.event_id[..2].to_string()));
    }
    assert_eq!(seen, ["05", "04", "03", "02", "01"]);
    // Stepping from one event to its neighbours, and to both ends.
    let all = store.group_events(group_id, None, 5).unwrap();
    let id = |n: u8| Some(format!("{n:02x}").repeat(16));
    let nav = |i: usize| store.event_nav(group_id, all[i].position).unwrap();
    assert_eq!(nav(2), store::EventNav { oldest: id(1), older: id(2), newer: id(4), newest: id(5) }, "the middle one");
    assert_eq!(nav(0), store::EventNav { oldest: id(1), older: id(4), newer: None, newest: None }, "the newest");
    assert_eq!(nav(4), store::EventNav { oldest: None, older: None, newer: id(2), newest: id(5) }, "the oldest");
    assert!(store.group(GroupId(group_id.0 + 1000)).unwrap().is_none());
    w.shutdown();
}

fn organisations_teams_and_roles(store: Arc<dyn Store>) {
    // A fresh store has the default organisation; new users and projects go there.
    let orgs = store.organizations().unwrap();
    assert_eq!(orgs.iter().map(|o| o.slug.as_str()).collect::<Vec<_>>(), ["default"]);
    let default = orgs[0].id;
    let boss = store.create_user("boss@example.com", "h", true).unwrap();
    let dev = store.create_user("dev@example.com", "h", false).unwrap();
    assert!(store.memberships(dev.id).unwrap().is_empty(), "a new user is in no organisation");
    let (p, _) = store.create_project("shop").unwrap();
    assert_eq!(p.org_id, default);
    let team = store.teams(default).unwrap()[0].id;
    store.add_member(default, boss.id, Role::Owner, Some(team)).unwrap();
    store.add_member(default, dev.id, Role::Member, Some(team)).unwrap();
    assert_eq!(store.project_teams(p.id).unwrap(), [team]);
    let m = store.memberships(boss.id).unwrap();
    assert_eq!((m.len(), m[0].role, m[0].teams.clone()), (1, Role::Owner, vec![team]));
    assert_eq!(store.memberships(dev.id).unwrap()[0].role, Role::Member);

    // A second organisation, with its own team and projects.
    let acme = store.create_organization("Acme Corp", dev.id).unwrap();
    assert_eq!(acme.slug, "acme-corp");
    assert!(matches!(store.create_organization("acme corp", boss.id), Err(StoreError::Conflict(_))));
    assert!(matches!(store.create_organization("!!", boss.id), Err(StoreError::Invalid(_))));
    let acme_team = store.teams(acme.id).unwrap()[0].id;
    let backend = store.create_team(acme.id, "Backend").unwrap();
    assert!(matches!(store.create_team(acme.id, "backend"), Err(StoreError::Conflict(_))));
    let (api, _) = store.create_project_in(backend.id, "api").unwrap();
    assert_eq!((api.org_id, store.project_teams(api.id).unwrap()), (acme.id, vec![backend.id]));
    assert_eq!(store.org_projects(acme.id).unwrap().iter().map(|p| p.slug.as_str()).collect::<Vec<_>>(), ["api"]);
    assert_eq!(store.org_projects(default).unwrap().len(), 1);
    assert_eq!(store.memberships(dev.id).unwrap().iter().map(|m| (m.org.id, m.role)).collect::<Vec<_>>(), [(default, Role::Member), (acme.id, Role::Owner)]);

    // Members, roles, teams.
    assert!(matches!(store.join_team(backend.id, boss.id), Err(StoreError::NotFound(_))), "only members join a team");
    store.add_member(acme.id, boss.id, Role::Admin, Some(backend.id)).unwrap();
    assert!(matches!(store.add_member(acme.id, boss.id, Role::Member, None), Err(StoreError::Conflict(_))));
    store.join_team(acme_team, boss.id).unwrap();
    store.join_team(acme_team, boss.id).unwrap();
    let members = store.members(acme.id).unwrap();
    assert_eq!(members.iter().map(|m| (m.user.email.as_str(), m.role, m.teams.len())).collect::<Vec<_>>(), [("dev@example.com", Role::Owner, 1), ("boss@example.com", Role::Admin, 2)]);
    assert!(matches!(store.set_role(acme.id, dev.id, Role::Manager), Err(StoreError::Invalid(_))), "the last owner stays one");
    assert!(matches!(store.remove_member(acme.id, dev.id), Err(StoreError::Invalid(_))));
    store.set_role(acme.id, boss.id, Role::Owner).unwrap();
    store.set_role(acme.id, dev.id, Role::Manager).unwrap();
    assert!(matches!(store.set_role(acme.id, UserId(999), Role::Member), Err(StoreError::NotFound(_))));
    store.remove_member(acme.id, dev.id).unwrap();
    assert_eq!(store.memberships(dev.id).unwrap().len(), 1, "still in the default organisation");
    assert_eq!(store.members(acme.id).unwrap().len(), 1);
    assert!(matches!(store.remove_member(acme.id, dev.id), Err(StoreError::NotFound(_))));
}

fn invitations_are_single_use_and_expire(store: Arc<dyn Store>) {
    let owner = store.create_user("owner@example.com", "h", true).unwrap();
    let acme = store.create_organization("acme", owner.id).unwrap();
    let team = store.teams(acme.id).unwrap()[0].id;
    let guest = store.create_user("guest@example.com", "h", false).unwrap();
    assert!(matches!(store.create_invitation("bad", acme.id, "not an email", Role::Member, None, 60.0), Err(StoreError::Invalid(_))));
    store.create_invitation("inv", acme.id, "guest@example.com", Role::Admin, Some(team), 60.0).unwrap();
    store.create_invitation("old", acme.id, "late@example.com", Role::Member, None, -1.0).unwrap();
    let i = store.invitation("inv").unwrap().unwrap();
    assert_eq!((i.org.id, i.email.as_str(), i.role, i.team), (acme.id, "guest@example.com", Role::Admin, Some(team)));
    assert!(store.invitation("old").unwrap().is_none(), "expired");
    assert!(matches!(store.accept_invitation("old", guest.id), Err(StoreError::Invalid(_))));
    assert_eq!(store.accept_invitation("inv", guest.id).unwrap().id, acme.id);
    let m = store.memberships(guest.id).unwrap();
    assert_eq!(m.iter().map(|m| (m.org.id, m.role, m.teams.clone())).next_back(), Some((acme.id, Role::Admin, vec![team])));
    assert!(store.invitation("inv").unwrap().is_none(), "used");
    assert!(matches!(store.accept_invitation("inv", owner.id), Err(StoreError::Invalid(_))), "single use");
    assert!(matches!(store.accept_invitation("nope", owner.id), Err(StoreError::Invalid(_))));
}

fn tokens_are_found_by_hash_until_revoked(store: Arc<dyn Store>) {
    let owner = store.create_user("owner@example.com", "h", true).unwrap();
    let acme = store.create_organization("acme", owner.id).unwrap();
    let default = store.organizations().unwrap()[0].id;
    let scopes = vec!["project:read".to_string(), "org:read".to_string()];
    let personal = store
        .create_token(&NewToken { token_hash: "t1", name: "laptop", org_id: acme.id, user_id: Some(owner.id), scopes: &scopes })
        .unwrap();
    let org_token = store.create_token(&NewToken { token_hash: "t2", name: "ci", org_id: acme.id, user_id: None, scopes: &scopes[..1] }).unwrap();
    let found = store.use_token("t1").unwrap().unwrap();
    assert_eq!((found.id, found.user_id, found.scopes.clone()), (personal.id, Some(owner.id), scopes.clone()));
    assert!(found.last_used_at.is_some(), "using a token records when");
    assert!(store.use_token("nope").unwrap().is_none());
    assert_eq!(store.tokens(acme.id).unwrap().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["ci", "laptop"]);
    assert!(!store.revoke_token(default, org_token.id).unwrap(), "another organisation's token");
    assert!(store.revoke_token(acme.id, org_token.id).unwrap());
    assert!(store.use_token("t2").unwrap().is_none(), "revoked");
    assert!(!store.revoke_token(acme.id, TokenId(999)).unwrap());
    // Removing a member revokes their personal tokens there.
    let other = store.create_user("other@example.com", "h", false).unwrap();
    store.add_member(acme.id, other.id, Role::Owner, None).unwrap();
    store.remove_member(acme.id, owner.id).unwrap();
    assert!(store.use_token("t1").unwrap().is_none());
}

fn the_audit_log_keeps_changes_per_organisation(store: Arc<dyn Store>) {
    let owner = store.create_user("owner@example.com", "h", true).unwrap();
    let acme = store.create_organization("acme", owner.id).unwrap();
    let default = store.organizations().unwrap()[0].id;
    store.record_audit(acme.id, "owner@example.com", "member.add", "dev@example.com as member").unwrap();
    store.record_audit(acme.id, "owner@example.com", "key.revoke", "shop: abc").unwrap();
    store.record_audit(default, "x", "project.create", "p").unwrap();
    let log = store.audit_log(acme.id, 10).unwrap();
    assert_eq!(log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["key.revoke", "member.add"]);
    assert_eq!(store.audit_log(acme.id, 1).unwrap().len(), 1);
}

fn single_sign_on_settings_per_organisation(store: Arc<dyn Store>) {
    let default = store.organizations().unwrap()[0].id;
    assert!(store.sso(default).unwrap().is_none());
    let mut sso = store::SsoConfig {
        issuer: "https://id.example.com".into(),
        client_id: "sentry".into(),
        client_secret: "s3cret".into(),
        required: true,
        allowed_domains: vec!["example.com".into()],
        default_role: Role::Admin,
    };
    store.set_sso(default, Some(&sso)).unwrap();
    assert_eq!(store.sso(default).unwrap().as_ref(), Some(&sso));
    assert!(sso.admits("a@EXAMPLE.com") && !sso.admits("a@example.org") && !sso.admits("nobody"));
    sso.required = false;
    store.set_sso(default, Some(&sso)).unwrap();
    assert!(!store.sso(default).unwrap().unwrap().required, "set again: replaced");
    sso.issuer = "not a url".into();
    assert!(matches!(store.set_sso(default, Some(&sso)), Err(StoreError::Invalid(_))));
    store.set_sso(default, None).unwrap();
    assert!(store.sso(default).unwrap().is_none());
}

fn feedback_is_stored_once_with_the_issue_of_its_event(store: Arc<dyn Store>) {
    let (p, _key) = store.create_project("Shop").unwrap();
    let (other, _key) = store.create_project("Other").unwrap();
    let w = store.start_writer(100).unwrap();
    let feedback = |n: u8, about: Option<u8>, at: f64| store::NewFeedback {
        project_id: p.id,
        feedback_id: EventId([100 + n; 16]),
        event_id: about.map(|e| EventId([e; 16])),
        name: format!("person {n}"),
        email: format!("p{n}@example.com"),
        message: format!("it broke {n}"),
        url: None,
        timestamp: at,
        received: at,
    };
    let batch = |events: Vec<NewEvent>, feedback: Vec<store::NewFeedback>| {
        w.write_batch(store::WriteBatch { events, items: store::NewItems { feedback, ..Default::default() }, ..store::WriteBatch::default() }).unwrap().wait_blocking().unwrap()
    };
    // Feedback about an event of the same batch, one about no event, one about an event that
    // comes later, and a retry of the first.
    let out = batch(vec![event(p.id, 1, "a", 1000.0)], vec![feedback(1, Some(1), 1001.0), feedback(2, None, 1002.0), feedback(3, Some(2), 1003.0)]);
    let WriteOutcome::Stored { group_id: group, .. } = out[0] else { panic!("{out:?}") };
    batch(vec![event(p.id, 2, "a", 1004.0)], vec![feedback(1, Some(1), 1001.0)]);
    let all = store.feedback(p.id, 10).unwrap();
    assert_eq!(all.iter().map(|f| f.message.as_str()).collect::<Vec<_>>(), ["it broke 3", "it broke 2", "it broke 1"]);
    assert_eq!(all[0].group_id, Some(group), "found when read: its event came after it");
    assert_eq!(all[1].group_id, None);
    assert_eq!(all[2].group_id, Some(group));
    assert_eq!(all[2].event_id.as_deref(), Some(EventId([1; 16]).to_string().as_str()));
    let of_group = store.group_feedback(group, 10).unwrap();
    assert_eq!(of_group.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["person 3", "person 1"]);
    assert_eq!(store.feedback(p.id, 1).unwrap().len(), 1);
    assert!(store.feedback(other.id, 10).unwrap().is_empty());
    // Retention: feedback received before the cutoff goes, like events.
    store.cleanup(&store::Retention::all(1001.5), &mut |_| {}).unwrap();
    assert_eq!(store.feedback(p.id, 10).unwrap().iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["person 3", "person 2"]);
}

fn releases_deploys_and_their_projects(store: Arc<dyn Store>) {
    use store::{NewDeploy, ReleaseChange};
    let default = store.organizations().unwrap()[0].id;
    let (shop, _) = store.create_project("shop").unwrap();
    let (api, _) = store.create_project("api").unwrap();
    let (r, created) = store.upsert_release(default, "1.0.0", &ReleaseChange { projects: vec![shop.id], ..Default::default() }).unwrap();
    assert!(created);
    assert_eq!((r.version.as_str(), r.projects.clone(), r.released_at), ("1.0.0", vec![shop.id], None));
    // The same version again adds projects and fields; it is not a second release.
    let change = ReleaseChange { projects: vec![api.id], reference: Some("abc123".into()), released_at: Some(5.0), ..Default::default() };
    let (again, created) = store.upsert_release(default, "1.0.0", &change).unwrap();
    assert!(!created);
    assert_eq!((again.id, again.projects.clone(), again.reference.as_deref(), again.released_at), (r.id, vec![shop.id, api.id], Some("abc123"), Some(5.0)));
    assert!(matches!(store.upsert_release(default, "a/b", &ReleaseChange::default()), Err(StoreError::Invalid(_))));
    assert!(matches!(store.upsert_release(default, " ", &ReleaseChange::default()), Err(StoreError::Invalid(_))));
    let (r2, _) = store.upsert_release(default, "1.1.0", &ReleaseChange { projects: vec![api.id], ..Default::default() }).unwrap();
    // Newest first, by project, paged after an id.
    let all: Vec<_> = store.releases(default, None, None, 10).unwrap().into_iter().map(|r| r.version).collect();
    assert_eq!(all, ["1.1.0", "1.0.0"]);
    let of_shop: Vec<_> = store.releases(default, Some(shop.id), None, 10).unwrap().into_iter().map(|r| r.version).collect();
    assert_eq!(of_shop, ["1.0.0"]);
    let page: Vec<_> = store.releases(default, None, Some(r2.id), 10).unwrap().into_iter().map(|r| r.version).collect();
    assert_eq!(page, ["1.0.0"]);
    // Another organisation's releases are its own, and its projects are not ours.
    let boss = store.create_user("boss@example.com", "h", false).unwrap();
    let acme = store.create_organization("Acme", boss.id).unwrap();
    assert!(store.release(acme.id, "1.0.0").unwrap().is_none());
    assert!(matches!(
        store.upsert_release(acme.id, "9", &ReleaseChange { projects: vec![shop.id], ..Default::default() }),
        Err(StoreError::Invalid(_))
    ));
    // Deploys, newest first; a deploy needs an environment.
    let d = store.create_deploy(r.id, &NewDeploy { environment: "staging".into(), ..Default::default() }).unwrap();
    store.create_deploy(r.id, &NewDeploy { environment: "production".into(), name: Some("friday".into()), ..Default::default() }).unwrap();
    assert!(d.finished_at > 0.0);
    let envs: Vec<_> = store.deploys(r.id).unwrap().into_iter().map(|d| d.environment).collect();
    assert_eq!(envs, ["production", "staging"]);
    assert!(matches!(store.create_deploy(r.id, &NewDeploy::default()), Err(StoreError::Invalid(_))));
    // Deleting a release takes its deploys along.
    assert!(store.delete_release(default, "1.0.0").unwrap());
    assert!(!store.delete_release(default, "1.0.0").unwrap());
    assert!(store.release(default, "1.0.0").unwrap().is_none());
    assert!(store.deploys(r.id).unwrap().is_empty());
}

fn chunks_are_kept_by_sha1_and_artifacts_found_by_debug_id_or_name(store: Arc<dyn Store>) {
    use store::{ArtifactKind, NewArtifact};
    let default = store.organizations().unwrap()[0].id;
    // sha1("hello") and sha1("world").
    let hello = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d".to_string();
    let world = "7c211433f02071597741e6ff5a8ea34789abbf43".to_string();
    store.put_chunk(default, &hello, b"hello").unwrap();
    store.put_chunk(default, &hello, b"hello").unwrap();
    assert!(matches!(store.put_chunk(default, &world, b"not world"), Err(StoreError::Invalid(_))));
    assert_eq!(store.missing_chunks(default, &[hello.clone(), world.clone()]).unwrap(), [world]);
    assert_eq!(store.chunk(default, &hello).unwrap().as_deref(), Some(&b"hello"[..]));
    let boss = store.create_user("boss@example.com", "h", false).unwrap();
    let acme = store.create_organization("Acme", boss.id).unwrap();
    assert!(store.chunk(acme.id, &hello).unwrap().is_none(), "chunks are per organisation");
    store.delete_chunks(default, std::slice::from_ref(&hello)).unwrap();
    assert!(store.chunk(default, &hello).unwrap().is_none());
    // Chunks never assembled go once they are older than the cutoff, in every organisation.
    store.put_chunk(default, &hello, b"hello").unwrap();
    store.put_chunk(acme.id, &hello, b"hello").unwrap();
    assert_eq!(store.delete_stale_chunks(store::now() - store::UNASSEMBLED_CHUNK_SECS).unwrap(), 0);
    assert!(store.chunk(default, &hello).unwrap().is_some(), "a chunk uploaded just now stays");
    assert_eq!(store.delete_stale_chunks(store::now() + 1.0).unwrap(), 2);
    assert_eq!(store.missing_chunks(default, std::slice::from_ref(&hello)).unwrap(), std::slice::from_ref(&hello));
    assert!(store.chunk(acme.id, &hello).unwrap().is_none());

    let id = "0F3B482C-D9AE-4943-9D00-000000000001";
    let file = |name: &str, kind, debug_id: Option<&str>, release: Option<&str>, data: &[u8]| NewArtifact {
        name: name.into(),
        kind,
        debug_id: debug_id.map(str::to_string),
        release: release.map(str::to_string),
        dist: None,
        headers: None,
        data: data.to_vec(),
    };
    store
        .put_artifacts(default, &[
            file("~/app.min.js", ArtifactKind::MinifiedSource, Some(id), None, b"code"),
            file("~/app.min.js.map", ArtifactKind::SourceMap, Some(id), None, b"{\"version\":3}"),
            file("~/legacy.js.map", ArtifactKind::SourceMap, None, Some("1.0"), b"old"),
        ])
        .unwrap();
    let (a, data) = store.artifact_by_debug_id(default, &id.to_lowercase(), ArtifactKind::SourceMap).unwrap().unwrap();
    assert_eq!((a.name.as_str(), a.size, data.as_slice()), ("~/app.min.js.map", 13, &b"{\"version\":3}"[..]));
    assert_eq!(a.sha1.len(), 40);
    assert!(store.artifact_by_debug_id(acme.id, id, ArtifactKind::SourceMap).unwrap().is_none());
    // A later upload of the same file replaces it.
    store.put_artifacts(default, &[file("~/legacy.js.map", ArtifactKind::SourceMap, None, Some("1.0"), b"new")]).unwrap();
    let (_, data) = store.artifact_by_name(default, "1.0", None, "~/legacy.js.map").unwrap().unwrap();
    assert_eq!(data, b"new");
    assert!(store.artifact_by_name(default, "1.0", Some("web"), "~/legacy.js.map").unwrap().is_none());
    assert_eq!(store.release_artifacts(default, "1.0").unwrap().len(), 1);
}

fn a_release_knows_its_events_and_new_issues_and_an_issue_its_releases(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("shop").unwrap();
    let w = store.start_writer(100).unwrap();
    let of = |n: u8, hash: &str, ts: f64, release: &str| {
        let mut e = event(p.id, n, hash, ts);
        e.tags.push(("release".into(), release.into()));
        e
    };
    // Issue a starts in 1.0 and goes on in 1.1; issue b starts in 1.1.
    write(&w, vec![of(1, "a", 1000.0, "1.0"), of(2, "a", 2000.0, "1.1"), of(3, "b", 2100.0, "1.1"), of(4, "b", 2200.0, "1.1")], ItemCounts::default());
    let all = groups(&*store, p.id, Sort::FirstSeen, StatusFilter::All, &[]);
    let id = |title: &str| all.iter().find(|g| g.title == title).unwrap().id;
    let (a, b) = (id("title a"), id("title b"));
    let old = store.release_activity(p.id, "1.0").unwrap();
    assert_eq!((old.first_seen, old.last_seen, old.events, old.new_groups.clone()), (Some(1000.0), Some(1000.0), 1, vec![a]));
    let new = store.release_activity(p.id, "1.1").unwrap();
    assert_eq!((new.first_seen, new.last_seen, new.events, new.new_groups.clone()), (Some(2000.0), Some(2200.0), 3, vec![b]));
    assert_eq!(store.release_activity(p.id, "9.9").unwrap(), store::ReleaseActivity::default());
    assert_eq!(store.group_releases(a).unwrap(), (Some("1.0".into()), Some("1.1".into())));
    assert_eq!(store.group_releases(b).unwrap(), (Some("1.1".into()), Some("1.1".into())));
}

fn client_reports_are_summed_per_project(store: Arc<dyn Store>) {
    let (p, _key) = store.create_project("Shop").unwrap();
    let (other, _key) = store.create_project("Other").unwrap();
    let w = store.start_writer(100).unwrap();
    let report = |project: ProjectId, reason: &str, category: &str, quantity: u64| store::NewClientReport {
        project_id: project,
        reason: reason.into(),
        category: category.into(),
        quantity,
    };
    for reports in [
        vec![report(p.id, "before_send", "error", 3), report(p.id, "sample_rate", "transaction", 10)],
        vec![report(p.id, "before_send", "error", 2), report(other.id, "before_send", "error", 1)],
    ] {
        w.write_batch(store::WriteBatch { items: store::NewItems { client_reports: reports, ..Default::default() }, ..store::WriteBatch::default() }).unwrap().wait_blocking().unwrap();
    }
    let sums: Vec<(String, String, u64)> = store.client_reports(p.id).unwrap().into_iter().map(|r| (r.reason, r.category, r.quantity)).collect();
    assert_eq!(sums, [("sample_rate".into(), "transaction".into(), 10), ("before_send".into(), "error".into(), 5)]);
    assert_eq!(store.client_reports(other.id).unwrap().len(), 1);
}

fn sessions_merge_by_id_and_give_each_release_its_crash_free_rates(store: Arc<dyn Store>) {
    use store::{NewSession, NewSessionCounts, SessionStatus};
    let (p, _) = store.create_project("shop").unwrap();
    let (other, _) = store.create_project("other").unwrap();
    let w = store.start_writer(100).unwrap();
    let day = 20_000.0 * 86400.0;
    let session = |sid: &str, did: Option<&str>, release: &str, status: SessionStatus, errored: bool, started: f64| NewSession {
        project_id: p.id,
        sid: sid.into(),
        did: did.map(str::to_string),
        release: release.into(),
        environment: "production".into(),
        started,
        status,
        errored,
    };
    let counts = |release: &str, did: Option<&str>, exited: u64, crashed: u64, started: f64| NewSessionCounts {
        project_id: p.id,
        release: release.into(),
        environment: "production".into(),
        started,
        did: did.map(str::to_string),
        exited,
        errored: 0,
        abnormal: 0,
        crashed,
    };
    let batches = [
        // Session a starts, sees an error, then crashes; b exits cleanly; c (another user) too.
        vec![session("a", Some("alice"), "1.0", SessionStatus::Ok, false, day + 10.0), session("b", Some("bob"), "1.0", SessionStatus::Ok, false, day + 20.0)],
        vec![session("a", None, "1.0", SessionStatus::Ok, true, day + 10.0), session("b", Some("bob"), "1.0", SessionStatus::Exited, false, day + 20.0)],
        vec![session("a", Some("alice"), "1.0", SessionStatus::Crashed, true, day + 10.0), session("c", Some("carol"), "1.0", SessionStatus::Exited, false, day + 86400.0)],
    ];
    for sessions in batches.iter().chain(batches.iter().take(1)).cloned() {
        w.write_batch(store::WriteBatch { items: store::NewItems { sessions, ..Default::default() }, ..store::WriteBatch::default() }).unwrap().wait_blocking().unwrap();
    }
    // A server app's own counts for 2.0: 10 sessions, one crashed (no users named), twice.
    for _ in 0..2 {
        let session_counts = vec![counts("2.0", None, 4, 1, day), counts("2.0", Some("dave"), 0, 0, day)];
        w.write_batch(store::WriteBatch { items: store::NewItems { session_counts, ..Default::default() }, ..store::WriteBatch::default() }).unwrap().wait_blocking().unwrap();
    }
    let mut other_session = session("z", None, "1.0", SessionStatus::Crashed, true, day);
    other_session.project_id = other.id;
    w.write_batch(store::WriteBatch { items: store::NewItems { sessions: vec![other_session], ..Default::default() }, ..store::WriteBatch::default() }).unwrap().wait_blocking().unwrap();

    let health = store.release_health(p.id, 0.0).unwrap();
    assert_eq!(health.len(), 2, "{health:?}");
    let v1 = &health[0];
    assert_eq!(v1.release, "1.0");
    assert_eq!((v1.sessions, v1.errored, v1.crashed, v1.abnormal), (3, 0, 1, 0), "a crashed session is not also errored: {v1:?}");
    assert_eq!((v1.users, v1.crashed_users), (3, 1));
    assert!((v1.crash_free_sessions().unwrap() - 200.0 / 3.0).abs() < 1e-9);
    let v2 = &health[1];
    assert_eq!((v2.release.as_str(), v2.sessions, v2.crashed, v2.users, v2.crashed_users), ("2.0", 10, 2, 1, 0));
    assert_eq!(v2.crash_free_sessions(), Some(80.0));

    let days = store.health_by_day(p.id, Some("1.0"), 0.0).unwrap();
    let per_day: Vec<(f64, u64, u64)> = days.iter().map(|d| (d.day, d.health.sessions, d.health.crashed)).collect();
    assert_eq!(per_day, [(day, 2, 1), (day + 86400.0, 1, 0)]);
    let all = store.health_by_day(p.id, None, 0.0).unwrap();
    assert_eq!(all.iter().map(|d| d.health.sessions).sum::<u64>(), 13);
    assert_eq!(store.release_health(other.id, 0.0).unwrap()[0].crashed, 1);
    assert!(store.release_health(p.id, store::now() + 10.0).unwrap().is_empty(), "nothing received after now");
}

/// Working issues: comments, snoozes, merge and unmerge, delete.
#[path = "conformance/triage.rs"]
mod triage;

fn a_deleted_project_is_gone_at_once_and_its_data_afterwards(store: Arc<dyn Store>) {
    let (p, key) = store.create_project("shop").unwrap();
    let (other, _) = store.create_project("other").unwrap();
    let w = store.start_writer(100).unwrap();
    let evs: Vec<NewEvent> = (1..=5u8).map(|n| event(p.id, n, &format!("h{n}"), 1000.0 + f64::from(n))).collect();
    write(&w, evs, ItemCounts(vec![(p.id, "session".into(), 2)]));
    write(&w, vec![event(other.id, 9, "o", 1000.0)], ItemCounts::default());
    let groups = store.stream(&{ let mut q = StreamQuery::new(p.id, 2000.0); q.status = StatusFilter::All; q.since = None; q }).unwrap().rows;
    assert_eq!(groups.len(), 5);

    store.delete_project(p.id).unwrap();
    assert!(store.project(p.id).unwrap().is_none() && store.project_by_slug("shop").unwrap().is_none());
    assert_eq!(store.projects().unwrap().iter().map(|x| x.slug.as_str()).collect::<Vec<_>>(), ["other"]);
    assert!(store.org_projects(p.org_id).unwrap().iter().all(|x| x.id != p.id));
    assert!(!store.key(&key.public_key).unwrap().unwrap().is_active(), "its keys are revoked");
    assert!(matches!(store.delete_project(p.id), Err(StoreError::NotFound(_))), "once");
    // Its slug is free again, for a new project with nothing in it.
    let (again, _) = store.create_project("shop").unwrap();
    assert_ne!(again.id, p.id);
    assert_eq!(store.event_count(again.id).unwrap(), 0);
    // An event already on its way when the project was deleted is still written, then purged.
    write(&w, vec![event(p.id, 6, "late", 1006.0)], ItemCounts::default());

    // The data goes a chunk at a time; the other projects keep theirs.
    let mut deleted = Vec::new();
    loop {
        let n = store.purge_deleted_projects(2).unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= 2);
        deleted.push(n);
    }
    assert_eq!(deleted.iter().sum::<u64>(), 6, "{deleted:?}");
    assert_eq!(store.event_count(p.id).unwrap(), 0);
    assert!(groups.iter().all(|g| store.group(g.group.id).unwrap().is_none()));
    assert!(store.item_counts(p.id).unwrap().is_empty());
    assert_eq!(store.event_count(other.id).unwrap(), 1);
    assert_eq!(store.purge_deleted_projects(2).unwrap(), 0);
    // One more straggler after the purge finished: its issue and its counts go too.
    write(&w, vec![event(p.id, 7, "later", 1007.0)], ItemCounts(vec![(p.id, "session".into(), 1)]));
    assert_eq!(store::purge_deleted_projects(&*store, None).unwrap(), 1);
    assert_eq!(store.event_count(p.id).unwrap(), 0);
    assert!(store.item_counts(p.id).unwrap().is_empty(), "the project's other rows are deleted again");
    w.shutdown();
}

fn a_deleted_user_leaves_no_trace_but_an_owner_stays(store: Arc<dyn Store>) {
    let boss = store.create_user("boss@example.com", "h", true).unwrap();
    let dev = store.create_user("dev@example.com", "h", false).unwrap();
    let org = store.organizations().unwrap()[0].id;
    store.add_member(org, dev.id, Role::Member, None).unwrap();
    store.create_session(dev.id, "dev-session", "c", 60.0).unwrap();
    let (p, _) = store.create_project("shop").unwrap();
    let w = store.start_writer(10).unwrap();
    write(&w, vec![event(p.id, 1, "a", 1000.0)], ItemCounts::default());
    w.shutdown();
    let g = store.stream(&{ let mut q = StreamQuery::new(p.id, 2000.0); q.since = None; q }).unwrap().rows[0].group.id;
    store.assign_group(g, Some(store::Assignee::User(dev.id))).unwrap();

    store.delete_user(dev.id).unwrap();
    assert!(store.user(dev.id).unwrap().is_none());
    assert!(store.user_for_login("dev@example.com").unwrap().is_none());
    assert!(store.session("dev-session").unwrap().is_none(), "their sessions end");
    assert!(store.memberships(dev.id).unwrap().is_empty());
    assert_eq!(store.group_assignee(g).unwrap(), None, "their issues are unassigned");
    assert!(matches!(store.delete_user(dev.id), Err(StoreError::NotFound(_))));
    // The email can be used again.
    store.create_user("dev@example.com", "h", false).unwrap();

    // The only owner stays until someone else is owner.
    if store.memberships(boss.id).unwrap().is_empty() {
        store.add_member(org, boss.id, Role::Owner, None).unwrap();
    }
    assert_eq!(store.members(org).unwrap().iter().filter(|m| m.role == Role::Owner).count(), 1);
    assert!(matches!(store.delete_user(boss.id), Err(StoreError::Invalid(m)) if m.contains("owner")));
    assert!(store.user(boss.id).unwrap().is_some());
    let other = store.create_user("second@example.com", "h", false).unwrap();
    store.add_member(org, other.id, Role::Owner, None).unwrap();
    store.delete_user(boss.id).unwrap();
    assert!(store.user(boss.id).unwrap().is_none());
}

fn ownership_rules_are_kept_and_assign_only_unassigned_issues(store: Arc<dyn Store>) {
    use store::{Assignee, ACTIVITY_ASSIGNED};
    let (p, _) = store.create_project("Owned").unwrap();
    let (other, _) = store.create_project("Other").unwrap();
    assert_eq!(store.ownership_rules(p.id).unwrap(), None);
    store.set_ownership_rules(p.id, "path:src/* #ops").unwrap();
    store.set_ownership_rules(p.id, "path:src/billing/* #billing\nurl:* #web").unwrap();
    assert_eq!(store.ownership_rules(p.id).unwrap().as_deref(), Some("path:src/billing/* #billing\nurl:* #web"));
    assert_eq!(store.ownership_rules(other.id).unwrap(), None, "per project");
    assert!(matches!(store.set_ownership_rules(ProjectId(999_999), "x"), Err(StoreError::NotFound(_))));

    let w = store.start_writer(1000).unwrap();
    let now = 1_800_000_000.0;
    write(&w, vec![tagged(p.id, 1, "a", now, "", None), tagged(p.id, 2, "b", now, "", None)], ItemCounts::default());
    let id = |t: &str| store.stream(&StreamQuery::new(p.id, now)).unwrap().rows.into_iter().find(|r| r.group.title == t).unwrap().group.id;
    let (a, b) = (id("title a"), id("title b"));
    let org = store.organizations().unwrap()[0].clone();
    let team = store.create_team(org.id, "Billing").unwrap();
    let boss = store.create_user("boss@example.com", "h", false).unwrap();

    assert!(store.assign_by_rule(a, Assignee::Team(team.id), "path:src/billing/* #billing").unwrap());
    assert_eq!(store.group_assignee(a).unwrap(), Some(Assignee::Team(team.id)));
    let last = store.activity(a).unwrap().pop().unwrap();
    assert_eq!(last.kind, ACTIVITY_ASSIGNED);
    assert_eq!(last.actor, None);
    let data: serde_json::Value = serde_json::from_str(last.data.as_deref().unwrap()).unwrap();
    assert_eq!((data["to"].as_str(), data["rule"].as_str()), (Some("#billing"), Some("path:src/billing/* #billing")));
    // A rule never overrides an assignee, its own or a person's.
    assert!(!store.assign_by_rule(a, Assignee::User(boss.id), "url:* #web").unwrap());
    assert!(store.assign_group(b, Some(Assignee::User(boss.id))).unwrap());
    let before = store.activity(b).unwrap().len();
    assert!(!store.assign_by_rule(b, Assignee::Team(team.id), "url:* #web").unwrap());
    assert_eq!(store.group_assignee(b).unwrap(), Some(Assignee::User(boss.id)));
    assert_eq!(store.activity(b).unwrap().len(), before, "nothing recorded");
}

fn logs_are_stored_once_filtered_paged_and_expire(store: Arc<dyn Store>) {
    use store::{LogCursor, LogQuery, NewLog};
    let (p, _key) = store.create_project("Shop").unwrap();
    let (other, _key) = store.create_project("Other").unwrap();
    let w = store.start_writer(100).unwrap();
    let log = |project: ProjectId, n: u8, level: &str, body: &str, attributes: &str, at: f64| NewLog {
        project_id: project,
        log_id: EventId([n; 16]),
        timestamp: at,
        received: at,
        trace_id: n.is_multiple_of(2).then(|| "5f066c6f17bd443e963bc7df5800e0fc".to_string()),
        level: level.into(),
        body: body.into(),
        template: Some("Order {order_id} paid".into()),
        release: Some("shop@1.0".into()),
        environment: Some(if n < 3 { "production" } else { "staging" }.into()),
        attributes: attributes.into(),
    };
    let logs = vec![
        log(p.id, 1, "info", "Order 7 paid", r#"{"sentry.message.parameter.order_id":7,"paid":true}"#, 1000.0),
        log(p.id, 2, "error", "Payment of 50% failed", r#"{"sentry.message.parameter.order_id":8,"paid":false,"card":"visa"}"#, 1001.0),
        log(p.id, 3, "warn", "Stock low", r#"{"sku":"A-1","ratio":0.5}"#, 1002.0),
        log(p.id, 4, "info", "Order 9 paid", r#"{"sentry.message.parameter.order_id":9}"#, 1002.0),
        log(other.id, 5, "info", "Order 7 paid elsewhere", r#"{"sentry.message.parameter.order_id":7}"#, 1003.0),
    ];
    let write = |logs: Vec<NewLog>| {
        w.write_batch(store::WriteBatch { items: store::NewItems { logs, ..Default::default() }, ..store::WriteBatch::default() })
            .unwrap()
            .wait_blocking()
            .unwrap()
    };
    write(logs.clone());
    write(logs[..2].to_vec()); // a replayed record
    let bodies = |q: &LogQuery| store.logs(q).unwrap().iter().map(|l| l.body.clone()).collect::<Vec<_>>();
    let all = LogQuery::new(p.id, 10);
    assert_eq!(bodies(&all), ["Order 9 paid", "Stock low", "Payment of 50% failed", "Order 7 paid"], "newest first, each once");
    let newest = &store.logs(&all).unwrap()[0];
    assert_eq!(
        (newest.log_id.as_str(), newest.level.as_str(), newest.template.as_deref(), newest.trace_id.as_deref()),
        (EventId([4; 16]).to_string().as_str(), "info", Some("Order {order_id} paid"), Some("5f066c6f17bd443e963bc7df5800e0fc"))
    );
    assert_eq!(newest.attributes, r#"{"sentry.message.parameter.order_id":9}"#);

    let q = |f: &dyn Fn(&mut LogQuery)| {
        let mut q = all.clone();
        f(&mut q);
        bodies(&q)
    };
    assert_eq!(q(&|q| q.levels = vec!["error".into(), "warn".into()]), ["Stock low", "Payment of 50% failed"]);
    assert_eq!(q(&|q| q.attributes = vec![("order_id".into(), "7".into())]), ["Order 7 paid"], "a template parameter by its name");
    assert_eq!(q(&|q| q.attributes = vec![("paid".into(), "false".into())]), ["Payment of 50% failed"]);
    assert_eq!(q(&|q| q.attributes = vec![("ratio".into(), "0.5".into())]), ["Stock low"]);
    assert_eq!(q(&|q| q.attributes = vec![("sku".into(), "A-*".into())]), ["Stock low"], "a wildcard");
    assert_eq!(q(&|q| q.attributes = vec![("card".into(), "amex".into())]), Vec::<String>::new());
    assert_eq!(q(&|q| q.text = vec!["ORDER".into(), "paid".into()]), ["Order 9 paid", "Order 7 paid"], "free text, every word");
    assert_eq!(q(&|q| q.text = vec!["50%".into()]), ["Payment of 50% failed"], "% is not a wildcard");
    assert_eq!(q(&|q| q.trace_id = Some("5f066c6f17bd443e963bc7df5800e0fc".into())), ["Order 9 paid", "Payment of 50% failed"]);
    assert_eq!(q(&|q| q.environment = Some("staging".into())), ["Order 9 paid", "Stock low"]);
    assert_eq!(q(&|q| q.release = Some("shop@2.0".into())), Vec::<String>::new());
    let mut bad = all.clone();
    bad.attributes = vec![("a\"b".into(), "1".into())];
    assert!(matches!(store.logs(&bad), Err(StoreError::Invalid(_))));

    // Pages: two logs share a time; the cursor keeps them apart.
    let mut page = all.clone();
    page.limit = 1;
    let mut seen = Vec::new();
    loop {
        let rows = store.logs(&page).unwrap();
        let Some(last) = rows.last() else { break };
        seen.push(last.body.clone());
        page.before = Some(LogCursor::after(last));
    }
    assert_eq!(seen, bodies(&all));
    page.limit = 0;
    page.before = None;
    assert_eq!(store.logs(&page).unwrap().len(), 1, "a limit of 0 still reads one");

    // Retention: logs received before the cutoff go; deleting a project purges the rest.
    assert_eq!(store.delete_logs_before(1001.5).unwrap(), 2);
    assert_eq!(bodies(&all), ["Order 9 paid", "Stock low"]);
    store.delete_project(p.id).unwrap();
    while store.purge_deleted_projects(100).unwrap() > 0 {}
    store.purge_deleted_projects(100).unwrap();
    assert!(store.logs(&all).unwrap().is_empty());
    assert_eq!(bodies(&LogQuery::new(other.id, 10)), ["Order 7 paid elsewhere"]);
}

fn monitors_record_runs_and_their_misses_and_timeouts_once(store: Arc<dyn Store>) {
    use store::{CheckInStatus, IntervalUnit, MonitorConfig, MonitorFailureKind, NewCheckIn, Schedule};
    let (p, _key) = store.create_project("Crons").unwrap();
    let w = store.start_writer(100).unwrap();
    let five = MonitorConfig::new(Schedule::interval(5, IntervalUnit::Minute).unwrap(), None, Some(2), Some(10)).unwrap();
    let check_in = |id: u8, slug: &str, status: CheckInStatus, at: f64, config: Option<&MonitorConfig>| NewCheckIn {
        project_id: p.id,
        check_in_id: EventId([id; 16]),
        monitor_slug: slug.into(),
        status,
        duration: None,
        release: Some("1.0".into()),
        environment: Some("production".into()),
        config: config.cloned(),
        timestamp: at,
        received: at,
    };
    let write = |check_ins: Vec<NewCheckIn>| {
        w.write_batch(store::WriteBatch { items: store::NewItems { check_ins, ..Default::default() }, ..store::WriteBatch::default() })
            .unwrap()
            .wait_blocking()
            .unwrap()
    };
    let t0 = 1_800_000_000.0; // on a whole minute
    // A run opened and closed, a failed run alone, a check-in of an unknown monitor without a
    // configuration (nothing to attach it to), and a replay of the whole batch.
    let batch = vec![
        check_in(1, "nightly", CheckInStatus::InProgress, t0, Some(&five)),
        check_in(1, "nightly", CheckInStatus::Ok, t0 + 30.0, None),
        check_in(2, "nightly", CheckInStatus::Error, t0 + 60.0, Some(&five)),
        check_in(3, "unknown", CheckInStatus::Ok, t0, None),
    ];
    write(batch.clone());
    write(batch);
    let monitors = store.monitors(p.id).unwrap();
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    let m = &monitors[0];
    assert_eq!((m.slug.as_str(), m.status.as_str(), m.last_check_in), ("nightly", "error", Some(t0 + 60.0)));
    assert_eq!(m.config, five);
    assert_eq!(m.next_expected, Some(t0 + 60.0 + 300.0));
    let runs = store.monitor_runs(m.id, 10).unwrap();
    assert_eq!(runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(), ["error", "ok"], "newest first, a replay changes nothing");
    assert_eq!((runs[1].started, runs[1].duration), (t0, Some(30.0)), "closed by its check-in id, timed from its opening");
    assert_eq!(runs[0].release.as_deref(), Some("1.0"));
    assert_eq!(store.monitor_runs(m.id, 1).unwrap().len(), 1);

    // The error is a failure to report, once.
    let failures = store.unreported_failures(10).unwrap();
    assert_eq!(failures.iter().map(|f| (f.slug.as_str(), f.kind)).collect::<Vec<_>>(), [("nightly", MonitorFailureKind::Error)]);
    store.mark_reported(&[failures[0].run_id]).unwrap();
    assert!(store.unreported_failures(10).unwrap().is_empty());

    // Not yet missed within the margin; missed after it, once however often asked.
    assert_eq!(store.mark_missed(t0 + 360.0 + 110.0).unwrap(), 0);
    assert_eq!(store.mark_missed(t0 + 360.0 + 130.0).unwrap(), 1);
    assert_eq!(store.mark_missed(t0 + 360.0 + 131.0).unwrap(), 0);
    let m = store.monitors(p.id).unwrap().remove(0);
    assert_eq!((m.status.as_str(), m.next_expected), ("missed", Some(t0 + 660.0)));
    let failures = store.unreported_failures(10).unwrap();
    assert_eq!(failures.iter().map(|f| (f.kind, f.at)).collect::<Vec<_>>(), [(MonitorFailureKind::Missed, t0 + 360.0)]);
    store.mark_reported(&[failures[0].run_id]).unwrap();

    // A run left in progress times out after the longest run (10 minutes), once.
    write(vec![check_in(4, "nightly", CheckInStatus::InProgress, t0 + 600.0, None)]);
    assert_eq!(store.mark_timeouts(t0 + 600.0 + 590.0).unwrap(), 0);
    assert_eq!(store.mark_timeouts(t0 + 600.0 + 610.0).unwrap(), 1);
    assert_eq!(store.mark_timeouts(t0 + 600.0 + 620.0).unwrap(), 0);
    assert_eq!(store.monitors(p.id).unwrap()[0].status, "timeout");
    // Its late ok leaves it timed out.
    write(vec![check_in(4, "nightly", CheckInStatus::Ok, t0 + 1300.0, None)]);
    let runs = store.monitor_runs(m.id, 10).unwrap();
    assert_eq!(runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(), ["timeout", "missed", "error", "ok"]);
    assert_eq!(runs[0].duration, Some(600.0));
    assert_eq!(store.unreported_failures(10).unwrap().iter().map(|f| f.kind).collect::<Vec<_>>(), [MonitorFailureKind::Timeout]);

    // Retention: runs that started before the cutoff go, like events; the monitor stays.
    store.cleanup(&store::Retention::all(t0 + 500.0), &mut |_| {}).unwrap();
    let runs = store.monitor_runs(m.id, 10).unwrap();
    assert_eq!(runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(), ["timeout"]);

    // A deleted project's monitors go with its data.
    store.delete_project(p.id).unwrap();
    store::purge_deleted_projects(&*store, None).unwrap();
    assert!(store.monitors(p.id).unwrap().is_empty());
}
