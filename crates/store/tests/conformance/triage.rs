//! Working issues, on every backend: the timeline with who did what, comments, snoozes that
//! end by themselves, merging and unmerging (every event kept exactly once, counts equal to
//! the events stored), deleting.

use std::sync::Arc;

use store::{GroupId, GroupStatus, ItemCounts, NewEvent, Snooze, Store, StoreError, WriteOutcome};

use super::{event, write};

macro_rules! triage {
    ($backend:ident, $open:expr) => {
        mod $backend {
            const OPEN: crate::Open = $open;
            triage!(@tests comments_and_status_changes_are_on_the_timeline_with_who,
                a_snoozed_issue_comes_back_after_its_events_its_users_or_its_time,
                merge_and_unmerge_keep_every_event_once_with_counts_equal_to_the_events,
                deleting_issues_deletes_their_events,
                an_issue_resolved_in_a_release_comes_back_only_for_a_newer_one);
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

triage!(sqlite, || {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&store::Backend::Sqlite { path: dir.path().join("sentry.db") }).unwrap();
    (Box::new(dir), store)
});

triage!(postgres, || {
    let url = testkit::Postgres::shared().fresh_database();
    let store = store::open(&store::Backend::Postgres { url }).unwrap();
    (Box::new(()), store)
});

fn stored(out: &[WriteOutcome]) -> GroupId {
    match out[0] {
        WriteOutcome::Stored { group_id, .. } => group_id,
        WriteOutcome::Duplicate => panic!("a duplicate"),
    }
}

fn with_user(mut e: NewEvent, user: &str) -> NewEvent {
    e.tags.push(("user".into(), user.into()));
    e
}

fn kinds(store: &dyn Store, g: GroupId) -> Vec<String> {
    store.activity(g).unwrap().into_iter().map(|a| a.kind).collect()
}

fn comments_and_status_changes_are_on_the_timeline_with_who(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("p").unwrap();
    let ann = store.create_user("ann@example.com", "h", false).unwrap();
    let w = store.start_writer(10).unwrap();
    let g = stored(&write(&w, vec![event(p.id, 1, "a", 100.0)], ItemCounts::default()));
    let note = store.add_note(g, ann.id, "  Looks like **the cache**.  ", &[]).unwrap();
    assert_eq!(note.data.as_deref(), Some(r#"{"text":"Looks like **the cache**."}"#));
    let bob = store.create_user("bob@example.com", "h", false).unwrap();
    let mention = store.add_note(g, ann.id, "@bob@example.com look", &[bob.id]).unwrap();
    assert_eq!(mention.data.as_deref(), Some(&*format!(r#"{{"mentions":[{}],"text":"@bob@example.com look"}}"#, bob.id)));
    assert!(matches!(store.add_note(g, ann.id, "   ", &[]), Err(StoreError::Invalid(_))));
    assert!(matches!(store.add_note(g, ann.id, &"x".repeat(store::MAX_NOTE_BYTES + 1), &[]), Err(StoreError::Invalid(_))));
    assert!(matches!(store.add_note(GroupId(999_999), ann.id, "hi", &[]), Err(StoreError::NotFound(_))));
    assert_eq!(store.change_status(&[g], GroupStatus::Resolved, &Snooze::default(), Some(ann.id)).unwrap(), 1);
    assert_eq!(store.change_status(&[g], GroupStatus::Resolved, &Snooze::default(), Some(ann.id)).unwrap(), 0, "already resolved");
    assert!(matches!(store.change_status(&[GroupId(999_999)], GroupStatus::Resolved, &Snooze::default(), None), Err(StoreError::NotFound(_))));
    let timeline = store.activity(g).unwrap();
    let got: Vec<(&str, Option<store::UserId>)> = timeline.iter().map(|a| (a.kind.as_str(), a.actor)).collect();
    assert_eq!(got, [("created", None), ("note", Some(ann.id)), ("note", Some(ann.id)), ("resolved", Some(ann.id))]);
    assert!(timeline.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(store.group(g).unwrap().unwrap().status, GroupStatus::Resolved);
    let many: Vec<GroupId> = (0..=store::BULK_CHUNK as i64).map(GroupId).collect();
    assert!(matches!(store.change_status(&many, GroupStatus::Resolved, &Snooze::default(), None), Err(StoreError::Invalid(_))));
    w.shutdown();
}

fn a_snoozed_issue_comes_back_after_its_events_its_users_or_its_time(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(10).unwrap();
    // Two more events.
    let g = stored(&write(&w, vec![event(p.id, 1, "count", 100.0)], ItemCounts::default()));
    store.change_status(&[g], GroupStatus::Ignored, &Snooze { count: Some(2), ..Snooze::default() }, None).unwrap();
    write(&w, vec![event(p.id, 2, "count", 101.0)], ItemCounts::default());
    assert_eq!(store.group(g).unwrap().unwrap().status, GroupStatus::Ignored, "one of two");
    write(&w, vec![event(p.id, 3, "count", 102.0)], ItemCounts::default());
    assert_eq!(store.group(g).unwrap().unwrap().status, GroupStatus::Unresolved, "two of two");
    let last = store.activity(g).unwrap().pop().unwrap();
    assert_eq!((last.kind.as_str(), last.data.as_deref()), ("unignored", Some(r#"{"reason":"count"}"#)));
    assert_eq!(kinds(&*store, g), ["created", "ignored", "unignored"]);
    // Once back, the snooze is gone: ignoring for good stays ignored.
    store.change_status(&[g], GroupStatus::Ignored, &Snooze::default(), None).unwrap();
    write(&w, vec![event(p.id, 4, "count", 103.0), event(p.id, 5, "count", 104.0)], ItemCounts::default());
    assert_eq!(store.group(g).unwrap().unwrap().status, GroupStatus::Ignored);

    // One more user: a user already seen does not count.
    let u = stored(&write(&w, vec![with_user(event(p.id, 10, "users", 100.0), "ann")], ItemCounts::default()));
    store.change_status(&[u], GroupStatus::Ignored, &Snooze { users: Some(1), ..Snooze::default() }, None).unwrap();
    write(&w, vec![with_user(event(p.id, 11, "users", 101.0), "ann")], ItemCounts::default());
    assert_eq!(store.group(u).unwrap().unwrap().status, GroupStatus::Ignored);
    write(&w, vec![with_user(event(p.id, 12, "users", 102.0), "bob")], ItemCounts::default());
    assert_eq!(store.group(u).unwrap().unwrap().status, GroupStatus::Unresolved);
    assert_eq!(store.activity(u).unwrap().pop().unwrap().data.as_deref(), Some(r#"{"reason":"users"}"#));

    // A time: by the sweep, or by the next event after it.
    let t = stored(&write(&w, vec![event(p.id, 20, "time", 100.0)], ItemCounts::default()));
    let e = stored(&write(&w, vec![event(p.id, 21, "event-after", 100.0)], ItemCounts::default()));
    let soon = store::now() + 3600.0;
    store.change_status(&[t], GroupStatus::Ignored, &Snooze { until: Some(soon), ..Snooze::default() }, None).unwrap();
    store.change_status(&[e], GroupStatus::Ignored, &Snooze { until: Some(store::now() - 1.0), ..Snooze::default() }, None).unwrap();
    assert!(!store.wake_snoozed(soon - 60.0).unwrap().contains(&t));
    assert_eq!(store.group(t).unwrap().unwrap().status, GroupStatus::Ignored);
    assert!(store.wake_snoozed(soon + 1.0).unwrap().contains(&t));
    assert_eq!(store.group(t).unwrap().unwrap().status, GroupStatus::Unresolved);
    assert_eq!(store.activity(t).unwrap().pop().unwrap().data.as_deref(), Some(r#"{"reason":"until"}"#));
    let ignored = store.activity(t).unwrap().into_iter().find(|a| a.kind == "ignored").unwrap();
    assert!(ignored.data.unwrap().contains("ignoreUntil"));
    write(&w, vec![event(p.id, 22, "event-after", 101.0)], ItemCounts::default());
    assert_eq!(store.group(e).unwrap().unwrap().status, GroupStatus::Unresolved);
    w.shutdown();
}

/// Every event of the project, each once, with its group, and each group's count.
fn check_counts(store: &dyn Store, groups: &[GroupId]) -> Vec<u64> {
    groups
        .iter()
        .map(|g| {
            let row = store.group(*g).unwrap().unwrap();
            let events = store.group_events(*g, None, 1000).unwrap();
            assert_eq!(row.count, events.len() as u64, "group {g}: its count is its stored events");
            let tags = store.group_tags(*g, 100).unwrap();
            let level: u64 = tags.iter().find(|(k, _)| k == "level").map_or(0, |(_, v)| v.iter().map(|t| t.count).sum());
            assert_eq!(level, row.count, "group {g}: each event's tag counted once");
            let spans = store.group_interval_count(*g, None, 2e9).unwrap();
            assert_eq!(spans, row.count, "group {g}: the chart buckets");
            row.count
        })
        .collect()
}

fn merge_and_unmerge_keep_every_event_once_with_counts_equal_to_the_events(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("p").unwrap();
    let (other, _) = store.create_project("other").unwrap();
    let ann = store.create_user("ann@example.com", "h", false).unwrap();
    let w = store.start_writer(10).unwrap();
    let a = stored(&write(&w, (1..=3).map(|n| event(p.id, n, "a", 100.0 + f64::from(n) * 60.0)).collect(), ItemCounts::default()));
    let b = stored(&write(&w, (4..=5).map(|n| event(p.id, n, "b", 1000.0 + f64::from(n) * 60.0)).collect(), ItemCounts::default()));
    let c = stored(&write(&w, vec![event(p.id, 6, "c", 100.0)], ItemCounts::default()));
    let elsewhere = stored(&write(&w, vec![event(other.id, 7, "x", 100.0)], ItemCounts::default()));
    assert!(matches!(store.merge_groups(a, &[elsewhere], None), Err(StoreError::Invalid(_))));
    let total = store.event_count(p.id).unwrap();

    store.merge_groups(a, &[b, c], Some(ann.id)).unwrap();
    assert!(store.group(b).unwrap().is_none() && store.group(c).unwrap().is_none());
    assert_eq!(check_counts(&*store, &[a]), [6]);
    let merged = store.group(a).unwrap().unwrap();
    assert_eq!((merged.first_seen, merged.last_seen), (100.0, 1300.0));
    assert_eq!(merged.title, "title b", "it shows the latest event");
    let merge = store.activity(a).unwrap().pop().unwrap();
    assert_eq!((merge.kind.as_str(), merge.actor), ("merge", Some(ann.id)));
    assert!(merge.data.unwrap().contains("\"hash\":\"b\""));
    // Later events of a merged hash go to the merged group.
    let out = write(&w, vec![event(p.id, 8, "b", 2000.0)], ItemCounts::default());
    assert_eq!(out[0], WriteOutcome::Stored { group_id: a, new_group: false, regression: false });
    assert_eq!(check_counts(&*store, &[a]), [7]);
    let hashes: Vec<(String, u64, bool)> = store.group_hashes(a).unwrap().into_iter().map(|h| (h.hash, h.events, h.primary)).collect();
    assert_eq!(hashes, [("a".into(), 3, true), ("b".into(), 3, false), ("c".into(), 1, false)]);

    // Unmerge b: its three events leave, with their counts.
    let split = store.unmerge(a, "b", Some(ann.id)).unwrap();
    assert_eq!(check_counts(&*store, &[a, split]), [4, 3]);
    assert_eq!(store.group(split).unwrap().unwrap().hash, "b");
    assert_eq!(store.event_count(p.id).unwrap(), total + 1, "every event once");
    let out = write(&w, vec![event(p.id, 9, "b", 2100.0)], ItemCounts::default());
    assert_eq!(stored(&out), split, "b's events go to its own group again");
    assert_eq!(kinds(&*store, split), ["unmerge"]);
    // The group's own hash can go too: the other one stays the group's.
    let split_a = store.unmerge(a, "a", None).unwrap();
    assert_eq!(store.group(a).unwrap().unwrap().hash, "c");
    assert_eq!(check_counts(&*store, &[a, split_a, split]), [1, 3, 4]);
    assert!(matches!(store.unmerge(a, "c", None), Err(StoreError::Invalid(_))), "its only hash");
    assert!(matches!(store.unmerge(a, "zzz", None), Err(StoreError::NotFound(_))));
    let out = write(&w, vec![event(p.id, 10, "a", 2200.0), event(p.id, 11, "c", 2200.0)], ItemCounts::default());
    assert_eq!(out.iter().map(|o| match o { WriteOutcome::Stored { group_id, .. } => *group_id, _ => GroupId(0) }).collect::<Vec<_>>(), [split_a, a]);
    assert_eq!(store.event_count(p.id).unwrap(), total + 4);
    w.shutdown();
}

fn deleting_issues_deletes_their_events(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(10).unwrap();
    let a = stored(&write(&w, vec![event(p.id, 1, "a", 100.0), event(p.id, 2, "a", 101.0)], ItemCounts::default()));
    let b = stored(&write(&w, vec![event(p.id, 3, "b", 100.0)], ItemCounts::default()));
    assert_eq!(store.delete_groups(&[a]).unwrap(), 2);
    assert!(store.group(a).unwrap().is_none());
    assert!(store.activity(a).unwrap().is_empty());
    assert_eq!(store.event_count(p.id).unwrap(), 1);
    assert!(store.group(b).unwrap().is_some());
    // The same event sent again is a new issue, not a duplicate of what was deleted.
    let out = write(&w, vec![event(p.id, 1, "a", 100.0)], ItemCounts::default());
    assert!(matches!(out[0], WriteOutcome::Stored { new_group: true, .. }));
    w.shutdown();
}

fn in_release(p: store::ProjectId, n: u8, hash: &str, at: f64, release: Option<&str>) -> NewEvent {
    let mut e = event(p, n, hash, at);
    e.tags.extend(release.map(|r| ("release".to_string(), r.to_string())));
    e
}

fn an_issue_resolved_in_a_release_comes_back_only_for_a_newer_one(store: Arc<dyn Store>) {
    let (p, _) = store.create_project("p").unwrap();
    let ann = store.create_user("ann@example.com", "h", false).unwrap();
    let w = store.start_writer(10).unwrap();
    let status = |g| store.group(g).unwrap().unwrap().status;
    // In the next release: every release seen so far is older.
    let g = stored(&write(&w, vec![in_release(p.id, 1, "next", 100.0, Some("a1")), in_release(p.id, 2, "next", 101.0, Some("b2"))], ItemCounts::default()));
    assert_eq!(store.resolve_in_release(&[g], &store::InRelease::Next, Some(ann.id)).unwrap(), 1);
    let r = store.resolution(g).unwrap().expect("resolved in a release");
    assert_eq!((r.release.as_deref(), r.after.as_deref()), (None, Some("b2")));
    let resolved = store.activity(g).unwrap().pop().unwrap();
    assert_eq!((resolved.kind.as_str(), resolved.actor), ("resolved", Some(ann.id)));
    assert_eq!(resolved.data.as_deref(), Some(r#"{"after":"b2","inNextRelease":true}"#));
    write(&w, vec![in_release(p.id, 3, "next", 102.0, Some("a1")), in_release(p.id, 4, "next", 103.0, Some("b2"))], ItemCounts::default());
    assert_eq!(status(g), GroupStatus::Resolved, "events of older releases");
    assert_eq!(store.group(g).unwrap().unwrap().count, 4, "and they are counted");
    write(&w, vec![in_release(p.id, 5, "next", 104.0, Some("c3"))], ItemCounts::default());
    assert_eq!(status(g), GroupStatus::Unresolved, "a new release brings it back");
    assert_eq!(kinds(&*store, g), ["created", "resolved", "regression"]);
    assert_eq!(store.resolution(g).unwrap(), None, "the resolution ends with the regression");

    // In a named release, known by the API before any event of it: semantic versions.
    let org = store.organizations().unwrap()[0].id;
    store.upsert_release(org, "shop@2.0.0", &store::ReleaseChange { projects: vec![p.id], ..Default::default() }).unwrap();
    let h = stored(&write(&w, vec![in_release(p.id, 10, "named", 200.0, Some("shop@1.9.0"))], ItemCounts::default()));
    store.resolve_in_release(&[h], &store::InRelease::Named("shop@2.0.0".into()), None).unwrap();
    write(&w, vec![in_release(p.id, 11, "named", 201.0, Some("shop@1.9.0"))], ItemCounts::default());
    assert_eq!(status(h), GroupStatus::Resolved);
    write(&w, vec![in_release(p.id, 12, "named", 202.0, None)], ItemCounts::default());
    assert_eq!(status(h), GroupStatus::Unresolved, "an event of no release is a regression");
    store.resolve_in_release(&[h], &store::InRelease::Named("shop@2.0.0".into()), None).unwrap();
    write(&w, vec![in_release(p.id, 13, "named", 203.0, Some("shop@2.0.0"))], ItemCounts::default());
    assert_eq!(status(h), GroupStatus::Unresolved, "an event of the release it was resolved in");
    // A plain resolve or a reopen drops the resolution.
    store.resolve_in_release(&[h], &store::InRelease::Next, None).unwrap();
    store.change_status(&[h], GroupStatus::Unresolved, &Snooze::default(), None).unwrap();
    store.change_status(&[h], GroupStatus::Resolved, &Snooze::default(), None).unwrap();
    assert_eq!(store.resolution(h).unwrap(), None);
    write(&w, vec![in_release(p.id, 14, "named", 204.0, Some("shop@1.9.0"))], ItemCounts::default());
    assert_eq!(status(h), GroupStatus::Unresolved, "resolved plainly: any event brings it back");
    assert!(matches!(store.resolve_in_release(&[GroupId(999_999)], &store::InRelease::Next, None), Err(StoreError::NotFound(_))));
    w.shutdown();
}
