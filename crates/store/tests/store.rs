//! The behaviour every Store backend must have, run against SQLite: writes are idempotent by
//! event id, groups fold their events' counts, tags, buckets and durations, resolved groups
//! reopen as regressions, and keys can be revoked.

use protocol::EventId;
use store::{GroupQuery, GroupStatus, ItemCounts, NewEvent, Sort, SqliteStore, StatusFilter, WriteOutcome};

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("sentry.db")).unwrap();
    (dir, store)
}

fn event(project: i64, n: u8, hash: &str, ts: f64) -> NewEvent {
    NewEvent {
        project_id: project,
        event_id: EventId([n; 16]),
        kind: "query".into(),
        timestamp: ts,
        received: ts,
        level: "error".into(),
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

#[test]
fn writes_fold_into_groups_and_are_idempotent() {
    let (_dir, store) = open();
    let (p, _key) = store.create_project("Shop").unwrap();
    let w = store.start_writer(100).unwrap();
    let out = w
        .write_blocking(vec![event(p.id, 1, "a", 1000.0), event(p.id, 2, "a", 1060.0), event(p.id, 3, "b", 1030.0)], ItemCounts::default())
        .unwrap();
    assert!(matches!(out[0], WriteOutcome::Stored { new_group: true, .. }));
    assert!(matches!(out[1], WriteOutcome::Stored { new_group: false, .. }));
    // The same ids again, in a later batch and twice within one batch: nothing changes.
    let again = w.write_blocking(vec![event(p.id, 1, "a", 1000.0), event(p.id, 4, "a", 1090.0), event(p.id, 4, "a", 1090.0)], ItemCounts::default()).unwrap();
    assert_eq!(again[0], WriteOutcome::Duplicate);
    assert!(matches!(again[1], WriteOutcome::Stored { .. }));
    assert_eq!(again[2], WriteOutcome::Duplicate);
    assert_eq!(store.event_count(p.id).unwrap(), 4);

    let mut q = GroupQuery::new(p.id);
    q.sort = Sort::Frequency;
    let groups = store.groups(&q).unwrap();
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
    assert_eq!(store.events(a.id, 10).unwrap().len(), 3);
    assert_eq!(store.events(a.id, 10).unwrap()[0].payload, b"{\"n\":4}");
    w.shutdown();
}

#[test]
fn sorts_and_tag_filters() {
    let (_dir, store) = open();
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(100).unwrap();
    w.write_blocking(vec![event(p.id, 1, "old", 100.0), event(p.id, 2, "new", 500.0), event(p.id, 3, "new", 510.0)], ItemCounts::default()).unwrap();
    let titles = |sort, tags: Vec<(&str, &str)>| {
        let mut q = GroupQuery::new(p.id);
        q.sort = sort;
        q.tags = tags.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        store.groups(&q).unwrap().into_iter().map(|g| g.title).collect::<Vec<_>>()
    };
    assert_eq!(titles(Sort::FirstSeen, vec![]), ["title new", "title old"]);
    assert_eq!(titles(Sort::TimeSpent, vec![]), ["title new", "title old"]);
    // server web-1 is on odd events only: 1 (old) and 3 (new); web-0 only on 2 (new).
    assert_eq!(titles(Sort::LastSeen, vec![("server", "web-0")]), ["title new"]);
    assert_eq!(titles(Sort::LastSeen, vec![("server", "web-1")]).len(), 2);
    assert!(titles(Sort::LastSeen, vec![("server", "nope")]).is_empty());
    w.shutdown();
}

#[test]
fn resolved_group_reopens_as_regression() {
    let (_dir, store) = open();
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(10).unwrap();
    let out = w.write_blocking(vec![event(p.id, 1, "a", 100.0)], ItemCounts::default()).unwrap();
    let WriteOutcome::Stored { group_id, .. } = out[0] else { panic!() };
    store.set_group_status(group_id, GroupStatus::Resolved).unwrap();
    let mut q = GroupQuery::new(p.id);
    assert!(store.groups(&q).unwrap().is_empty());
    let out = w.write_blocking(vec![event(p.id, 2, "a", 200.0)], ItemCounts::default()).unwrap();
    assert_eq!(out[0], WriteOutcome::Stored { group_id, new_group: false, regression: true });
    assert_eq!(store.groups(&q).unwrap().len(), 1);
    let kinds: Vec<String> = store.activity(group_id).unwrap().into_iter().map(|a| a.kind).collect();
    assert_eq!(kinds, ["created", "resolved", "regression"]);
    // Ignored groups stay ignored.
    store.set_group_status(group_id, GroupStatus::Ignored).unwrap();
    let out = w.write_blocking(vec![event(p.id, 3, "a", 300.0)], ItemCounts::default()).unwrap();
    assert!(matches!(out[0], WriteOutcome::Stored { regression: false, .. }));
    q.status = StatusFilter::Only(GroupStatus::Ignored);
    assert_eq!(store.groups(&q).unwrap()[0].count, 3);
    w.shutdown();
}

#[test]
fn keys_can_be_revoked_and_counts_kept() {
    let (_dir, store) = open();
    let (p, first) = store.create_project("p").unwrap();
    assert!(store.create_project("P").is_err(), "slugs are unique");
    let second = store.create_key(p.id, Some("ci"), Some(5)).unwrap();
    assert_eq!(store.keys(p.id).unwrap().len(), 2);
    assert!(store.revoke_key(&first.public_key).unwrap());
    assert!(!store.key(&first.public_key).unwrap().unwrap().is_active());
    assert!(store.key(&second.public_key).unwrap().unwrap().is_active());
    assert!(!store.revoke_key("nope").unwrap());
    let w = store.start_writer(10).unwrap();
    w.write_blocking(vec![], ItemCounts(vec![(p.id, "session".into(), 2), (p.id, "client_report".into(), 1)])).unwrap();
    w.write_blocking(vec![], ItemCounts(vec![(p.id, "session".into(), 1)])).unwrap();
    assert_eq!(store.item_counts(p.id).unwrap(), [("client_report".to_string(), 1), ("session".to_string(), 3)]);
    w.shutdown();
}

#[tokio::test]
async fn concurrent_writers_share_batches() {
    let (_dir, store) = open();
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(1000).unwrap();
    let mut tasks = Vec::new();
    for n in 0..50u8 {
        let w = w.clone();
        let ev = event(p.id, n, "same", 1000.0 + n as f64);
        tasks.push(tokio::spawn(async move { w.write(vec![ev], ItemCounts::default()).await }));
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap().unwrap()[0], WriteOutcome::Stored { .. }));
    }
    let groups = store.groups(&GroupQuery::new(p.id)).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].count, 50);
    w.shutdown();
}

#[test]
fn cleanup_removes_old_events_and_groups_seen_only_before() {
    let (_dir, store) = open();
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(10).unwrap();
    let mut old = event(p.id, 1, "old", 1000.0);
    old.received = 1000.0;
    let mut mixed_old = event(p.id, 2, "mixed", 1000.0);
    mixed_old.received = 1000.0;
    let mut mixed_new = event(p.id, 3, "mixed", 5000.0);
    mixed_new.received = 5000.0;
    w.write_blocking(vec![old, mixed_old, mixed_new], ItemCounts::default()).unwrap();
    let cleaned = store.cleanup(2000.0).unwrap();
    assert_eq!(cleaned, store::Cleaned { events: 2, groups: 1 });
    let groups = store.groups(&GroupQuery::new(p.id)).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].title, "title mixed");
    assert_eq!(store.event_count(p.id).unwrap(), 1);
    assert!(store.group_tags(groups[0].id, 10).unwrap().iter().all(|(_, v)| !v.is_empty()));
    // Nothing left to clean: a second run is a no-op.
    assert_eq!(store.cleanup(2000.0).unwrap(), store::Cleaned::default());
    w.shutdown();
}

#[test]
fn outbox_queues_once_per_firing_and_action_and_moves_the_cursor() {
    use store::sqlite::{Enqueue, NewDelivery};
    let (_dir, store) = open();
    let (p, _key) = store.create_project("Shop").unwrap();
    let w = store.start_writer(100).unwrap();
    w.write_blocking(vec![event(p.id, 1, "a", 1000.0)], ItemCounts::default()).unwrap();
    let activity = store.activity_after(0, 10).unwrap();
    assert_eq!(activity.len(), 1);
    assert_eq!((activity[0].kind.as_str(), activity[0].project_id), ("created", p.id));
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
    let due = store.due_deliveries(now, 10).unwrap();
    assert_eq!(due.len(), 2);
    store.delivery_done(due[0].id).unwrap();
    store.delivery_failed(due[1].id, "mail server down", Some(now + 60.0)).unwrap();
    assert!(store.due_deliveries(now, 10).unwrap().is_empty());
    assert_eq!(store.next_delivery_at().unwrap(), Some(now + 60.0));
    // A restart makes it due at once.
    assert_eq!(store.resume_deliveries(now).unwrap(), 1);
    let again = store.due_deliveries(now, 10).unwrap();
    assert_eq!((again.len(), again[0].attempts, again[0].last_error.as_deref()), (1, 1, Some("mail server down")));
    store.delivery_failed(again[0].id, "refused", None).unwrap();
    assert!(store.due_deliveries(now, 10).unwrap().is_empty());
    let all = store.deliveries(10).unwrap();
    assert_eq!(all.iter().filter(|d| d.delivered_at.is_some()).count(), 1);
    assert_eq!(all.iter().filter(|d| d.failed_at.is_some()).count(), 1);
}

/// A Query event of group `hash` at `ts` with `server` and `customer` tags and a duration.
fn tagged(project: i64, id: u32, hash: &str, ts: f64, server: &str, ms: Option<f64>) -> NewEvent {
    let mut e = event(project, 0, hash, ts);
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&id.to_be_bytes());
    e.event_id = EventId(bytes);
    e.tags = vec![("server".into(), server.into()), ("level".into(), "error".into())];
    e.time_spent = ms;
    e
}

#[test]
fn stream_sorts_filters_intervals_and_pages_stably() {
    use store::{Cursor, StreamQuery};
    let (_dir, store) = open();
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
    w.write_blocking(evs, ItemCounts::default()).unwrap();

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
                w.write_blocking(vec![tagged(p.id, id, "g29", now - 1.0, "web-2", Some(29.0))], ItemCounts::default()).unwrap();
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

    // Every sort, with and without a tag filter, walks an index of the sort or the tag.
    for sort in [Sort::Priority, Sort::LastSeen, Sort::FirstSeen, Sort::Frequency, Sort::TimeSpent, Sort::TimeSpentTotal] {
        for tags in [vec![], vec![("server".to_string(), "web-1".to_string())]] {
            let mut q = StreamQuery::new(p.id, now);
            q.sort = sort;
            q.since = Some(now - 86400.0);
            q.tags = tags;
            let plan = store.explain_stream(&q).unwrap().join("\n");
            assert!(plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"), "{sort:?}:\n{plan}");
            assert!(!plan.contains("SCAN g\n") && !plan.ends_with("SCAN g"), "{sort:?} scans the table:\n{plan}");
        }
    }
}

#[test]
fn hourly_daily_and_project_counters_follow_the_events() {
    let (_dir, store) = open();
    let (p, _) = store.create_project("p").unwrap();
    let (other, _) = store.create_project("other").unwrap();
    let w = store.start_writer(1000).unwrap();
    let base = 1_800_000_000.0;
    // Two groups of one project across two hours, in two batches; another project beside them.
    let first: Vec<NewEvent> = (0..30u8).map(|n| event(p.id, n, if n % 2 == 0 { "a" } else { "b" }, base + f64::from(n) * 200.0)).collect();
    let second: Vec<NewEvent> = (30..40u8).map(|n| event(p.id, n, "a", base + f64::from(n) * 200.0)).collect();
    w.write_blocking(first, ItemCounts::default()).unwrap();
    w.write_blocking(second, ItemCounts::default()).unwrap();
    w.write_blocking(vec![event(other.id, 200, "a", base)], ItemCounts::default()).unwrap();
    let now = base + 40.0 * 200.0;
    let series: u64 = store.project_series(&[p.id], base - 60.0, now + 60.0, 10).unwrap().iter().sum();
    assert_eq!(series, 40, "the project's event-rate series counts every event once");
    let groups = store.groups(&GroupQuery::new(p.id)).unwrap();
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
