//! What only the SQLite backend promises, beyond the conformance suite: every stream query
//! walks an index, and data written before the tags were stored with each event still reads.

use protocol::EventId;
use store::sqlite::SqliteStore;
use store::{Accounts, Maintenance, Orgs, Role, Admin, ItemCounts, Level, NewEvent, Reads, Sort, Store, StreamQuery};

fn event(project: store::ProjectId, n: u8, hash: &str) -> NewEvent {
    NewEvent {
        project_id: project,
        event_id: EventId([n; 16]),
        kind: "exception".into(),
        timestamp: 1000.0,
        received: 1000.0,
        level: Level::Error,
        logger: None,
        title: format!("title {hash}"),
        culprit: String::new(),
        hash: hash.into(),
        components: "[]".into(),
        tags: vec![("server".into(), "web-1".into())],
        time_spent: Some(5.0),
        payload: br#"{"tags":{"from_payload":"yes"}}"#.to_vec(),
    }
}

#[test]
fn every_sort_walks_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(10).unwrap();
    w.write((0..20).map(|n| event(p.id, n, &format!("g{n}"))).collect(), ItemCounts::default()).unwrap().wait_blocking().unwrap();
    let now = 2000.0;
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
    w.shutdown();
}

#[test]
fn events_written_before_tags_were_stored_derive_them_from_the_payload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SqliteStore::open(&path).unwrap();
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(10).unwrap();
    w.write(vec![event(p.id, 1, "a")], ItemCounts::default()).unwrap().wait_blocking().unwrap();
    w.shutdown();
    assert_eq!(store.event(p.id, &EventId([1; 16])).unwrap().unwrap().tags, [("server".to_string(), "web-1".to_string())]);
    // An old row: no stored tags, the blob is the payload alone.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let payload = br#"{"tags":{"from_payload":"yes"}}"#;
    conn.execute(
        "UPDATE events SET tags_len = NULL, dict = NULL, payload = ?1",
        [zstd::bulk::compress(payload, 3).unwrap()],
    )
    .unwrap();
    let old = store.event(p.id, &EventId([1; 16])).unwrap().unwrap();
    assert_eq!(old.payload, payload);
    assert!(old.tags.contains(&("from_payload".to_string(), "yes".to_string())), "{:?}", old.tags);
}

/// A data file written by the release before organisations (schema 5: an administrator, a
/// user, two projects, one event each) opens with every project and user in the default
/// organisation: the administrator as its owner, the user as a member of its one team, which
/// every project belongs to.
#[test]
fn a_release_file_migrates_into_the_default_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sentry.db");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/release_schema_5.db"), &path).unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let (now, newest) = store.schema_version().unwrap();
    assert_eq!(now, newest, "every migration applied");
    let orgs = store.organizations().unwrap();
    assert_eq!(orgs.iter().map(|o| o.slug.as_str()).collect::<Vec<_>>(), ["default"]);
    let team = store.teams(orgs[0].id).unwrap();
    assert_eq!(team.len(), 1);
    let projects = store.projects().unwrap();
    assert_eq!(projects.iter().map(|p| p.slug.as_str()).collect::<Vec<_>>(), ["default", "shop"]);
    for p in &projects {
        assert_eq!(p.org_id, orgs[0].id);
        assert_eq!(store.project_teams(p.id).unwrap(), [team[0].id]);
        assert_eq!(store.event_count(p.id).unwrap(), 1, "events stay");
    }
    let members = store.members(orgs[0].id).unwrap();
    assert_eq!(
        members.iter().map(|m| (m.user.email.as_str(), m.role, m.teams.clone())).collect::<Vec<_>>(),
        [("admin@example.com", Role::Owner, vec![team[0].id]), ("dev@example.com", Role::Member, vec![team[0].id])]
    );
    // The old password hashes still log in (the file kept them).
    assert!(store.user_for_login("dev@example.com").unwrap().unwrap().1.starts_with("$argon2id$"));
}
