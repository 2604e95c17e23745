//! What only the PostgreSQL backend promises, beyond the conformance suite: retention drops
//! whole day partitions (seen in the catalog), every stream query can walk an index, and
//! several nodes' writers on one database store every event once, with exact counts.

use std::sync::Arc;

use protocol::EventId;
use store::postgres::PgStore;
use store::{Admin, ItemCounts, Level, Maintenance, NewEvent, Reads, Sort, Store, StreamQuery, WriteOutcome};

const DAY: f64 = 86400.0;

fn event(project: store::ProjectId, id: u32, hash: &str, received: f64) -> NewEvent {
    let mut event_id = [0u8; 16];
    event_id[..4].copy_from_slice(&id.to_be_bytes());
    NewEvent {
        project_id: project,
        event_id: EventId(event_id),
        kind: "exception".into(),
        timestamp: received,
        received,
        level: Level::Error,
        logger: None,
        title: format!("title {hash}"),
        culprit: String::new(),
        hash: hash.into(),
        components: "[]".into(),
        tags: vec![("server".into(), format!("web-{}", id % 3))],
        time_spent: Some(f64::from(id % 7)),
        payload: br#"{"message":"x"}"#.to_vec(),
    }
}

fn partitions(pg: &testkit::Postgres, url: &str) -> Vec<String> {
    let out = pg.psql_at(
        url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent JOIN pg_class c ON c.oid = i.inhrelid
         WHERE p.relname = 'events' ORDER BY 1",
    );
    out.lines().map(str::to_string).collect()
}

#[test]
fn retention_drops_whole_days_and_deletes_inside_the_day_it_cuts() {
    let pg = testkit::Postgres::shared();
    let url = pg.fresh_database();
    let store = PgStore::open(&url).unwrap();
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(100).unwrap();
    let day0 = (20_000.0 * DAY).floor();
    // Two events on each of three days; the second of each day at noon. And, on a fourth day,
    // events that sit at the same places in their partition as the third day's (the same row
    // positions): the cut inside the third day must not touch them.
    let mut events: Vec<NewEvent> =
        (0..6).map(|n| event(p.id, n, &format!("g{}", n / 2), day0 + f64::from(n / 2) * DAY + f64::from(n % 2) * DAY / 2.0)).collect();
    events.extend((6..8).map(|n| event(p.id, n, "g3", day0 + 3.0 * DAY + f64::from(n % 2) * DAY / 2.0)));
    w.write(events, ItemCounts::default()).unwrap().wait_blocking().unwrap();
    w.shutdown();
    let names = |d: f64| format!("events_d{}", ((day0 + d * DAY) / DAY) as i64);
    assert_eq!(partitions(pg, &url), [names(0.0), names(1.0), names(2.0), names(3.0)]);

    // The cutoff falls at 6 h into the third day: the first two days go whole, and the third
    // day's first event (at midnight) goes row by row.
    let cleaned = store.cleanup(&store::Retention::all(day0 + 2.0 * DAY + 6.0 * 3600.0), &mut |_| {}).unwrap();
    assert_eq!(cleaned.events, 5);
    assert_eq!(partitions(pg, &url), [names(2.0), names(3.0)]);
    assert_eq!(store.event_count(p.id).unwrap(), 3, "the fourth day's events are all kept");
    assert!(store.event(p.id, &event(p.id, 0, "g0", 0.0).event_id).unwrap().is_none());
    assert!(store.event(p.id, &event(p.id, 5, "g2", 0.0).event_id).unwrap().is_some());
    // Groups seen only before the cutoff went with their events.
    assert_eq!(cleaned.groups, 2);
}

#[test]
fn every_sort_can_walk_an_index() {
    let url = testkit::Postgres::shared().fresh_database();
    let store = PgStore::open(&url).unwrap();
    let (p, _) = store.create_project("p").unwrap();
    let now = 2000.0 * DAY;
    for sort in [Sort::Priority, Sort::LastSeen, Sort::FirstSeen, Sort::Frequency, Sort::TimeSpent, Sort::TimeSpentTotal] {
        for tags in [vec![], vec![("server".to_string(), "web-1".to_string())]] {
            let mut q = StreamQuery::new(p.id, now);
            q.sort = sort;
            q.since = Some(now - DAY);
            q.tags = tags;
            let plan = store.explain_stream(&q).unwrap();
            assert!(plan.contains("Index Scan") || plan.contains("Index Only Scan"), "{sort:?}:\n{plan}");
            assert!(!plan.contains("Seq Scan on groups"), "{sort:?} scans the table:\n{plan}");
        }
    }
}

/// Two processes' stores (two nodes) on one database, each with its own writer, writing
/// overlapping groups and, half the time, the same event ids: every event stored once.
#[test]
fn writers_of_several_nodes_store_each_event_once_with_exact_counts() {
    let url = testkit::Postgres::shared().fresh_database();
    let a: Arc<dyn Store> = Arc::new(PgStore::open(&url).unwrap());
    let b: Arc<dyn Store> = Arc::new(PgStore::open(&url).unwrap());
    let (p, _) = a.create_project("p").unwrap();
    let now = store::now();
    let threads: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(node, s)| {
            std::thread::spawn(move || {
                let w = s.start_writer(50).unwrap();
                let mut stored = 0;
                for round in 0..20u32 {
                    // Ids 0..400 are sent by both nodes; 1000+ by one only.
                    let mut events: Vec<NewEvent> =
                        (0..20).map(|i| event(p.id, round * 20 + i, &format!("g{}", i % 5), now)).collect();
                    events.extend((0..10).map(|i| event(p.id, 1000 + node as u32 * 1000 + round * 10 + i, &format!("g{}", i % 5), now)));
                    let out = w.write(events, ItemCounts::default()).unwrap().wait_blocking().unwrap();
                    stored += out.iter().filter(|o| matches!(o, WriteOutcome::Stored { .. })).count();
                }
                w.shutdown();
                stored
            })
        })
        .collect();
    let stored: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(stored, 400 + 2 * 200);
    assert_eq!(a.event_count(p.id).unwrap(), 800);
    let mut q = StreamQuery::new(p.id, now + 1.0);
    q.limit = 10;
    let page = b.stream(&q).unwrap();
    assert_eq!(page.rows.len(), 5);
    assert_eq!(page.rows.iter().map(|r| r.group.count).sum::<u64>(), 800);
    for r in &page.rows {
        let tags: u64 = b.group_tags(r.group.id, 10).unwrap().iter().flat_map(|(_, v)| v).map(|t| t.count).sum();
        assert_eq!(tags, r.group.count, "tag counts of {}", r.group.hash);
    }
    assert_eq!(a.schema_version().unwrap().0, a.schema_version().unwrap().1);
}

/// `sslmode=require` with the authority in `sslrootcert`: the connections are TLS (seen in
/// `pg_stat_ssl`); without the authority, the certificate is refused and the store says why.
#[test]
fn tls_is_used_and_the_servers_certificate_checked() {
    let pg = testkit::Postgres::start_tls();
    let base = format!("postgres://postgres@localhost:{}/test", pg.port());
    let ca = pg.ca_file();
    let store = PgStore::open(&format!("{base}?sslmode=require&sslrootcert={}", ca.display())).unwrap();
    let (p, _) = store.create_project("p").unwrap();
    assert!(store.project(p.id).unwrap().is_some());
    let ssl = pg.psql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid WHERE s.ssl AND a.datname = 'test' AND a.pid <> pg_backend_pid()");
    assert!(ssl.trim().parse::<u32>().unwrap() >= 1, "no TLS connection from the store: {ssl}");
    // The web's authorities do not know this one.
    let refused = PgStore::open(&format!("{base}?sslmode=require")).err().expect("an unknown authority is refused");
    assert!(refused.to_string().to_lowercase().contains("certificate"), "{refused}");
}

/// An event received on a day whose partition retention dropped after the writer made it (an
/// old spool record replayed): the partition is made again and the event stored.
#[test]
fn a_day_dropped_by_retention_is_made_again_for_a_late_event() {
    let url = testkit::Postgres::shared().fresh_database();
    let store = PgStore::open(&url).unwrap();
    let (p, _) = store.create_project("p").unwrap();
    let w = store.start_writer(10).unwrap();
    let day0 = (20_100.0 * DAY).floor();
    w.write(vec![event(p.id, 1, "a", day0 + 10.0), event(p.id, 2, "a", day0 + DAY + 10.0)], ItemCounts::default())
        .unwrap()
        .wait_blocking()
        .unwrap();
    store.cleanup(&store::Retention::all(day0 + DAY), &mut |_| {}).unwrap();
    // The same writer, which made day 0's partition before, gets another event of day 0.
    let out = w.write(vec![event(p.id, 3, "a", day0 + 20.0)], ItemCounts::default()).unwrap().wait_blocking().unwrap();
    assert!(matches!(out[0], WriteOutcome::Stored { .. }), "{out:?}");
    assert_eq!(store.event_count(p.id).unwrap(), 2);
    w.shutdown();
}

/// `migrate-store` keeps which grouping hash each event of a merged group came with, so a
/// group merged on SQLite can be unmerged on PostgreSQL, with exact counts.
#[test]
fn a_group_merged_on_sqlite_unmerges_on_postgresql_after_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sentry.db");
    let (a, b) = {
        let sqlite = store::sqlite::SqliteStore::open(&path).unwrap();
        let (p, _) = sqlite.create_project("p").unwrap();
        let w = sqlite.start_writer(100).unwrap();
        let events: Vec<NewEvent> = (0..5).map(|n| event(p.id, n, if n < 3 { "ha" } else { "hb" }, 1_700_000_000.0 + f64::from(n))).collect();
        w.write(events, ItemCounts::default()).unwrap().wait_blocking().unwrap();
        w.shutdown();
        let page = sqlite.stream(&StreamQuery::new(p.id, 1_800_000_000.0)).unwrap();
        let id = |title: &str| page.rows.iter().find(|r| r.group.title == title).unwrap().group.id;
        let (a, b) = (id("title ha"), id("title hb"));
        store::Triage::merge_groups(&sqlite, a, &[b], None).unwrap();
        (a, b)
    };
    let pg = testkit::Postgres::shared();
    let url = pg.fresh_database();
    store::migrate_sqlite_to_postgres(&path, &url, &mut |_| {}).unwrap();
    let store = PgStore::open(&url).unwrap();
    assert_eq!(store.group(a).unwrap().unwrap().count, 5);
    assert!(store.group(b).unwrap().is_none(), "the merged group is gone");
    let back = store::Triage::unmerge(&store, a, "hb", None).unwrap();
    assert_eq!(store.group(a).unwrap().unwrap().count, 3);
    assert_eq!(store.group(back).unwrap().unwrap().count, 2);
    assert_eq!(store.group_events(back, None, 10).unwrap().len(), 2);
}

/// The shared queue: claims of two nodes never overlap, a claim's rows are deleted only by the
/// write that stores them while the claim holds, and rows whose lease ran out go to the next
/// claimer, whose write wins; the first node's write then changes nothing.
#[test]
fn the_shared_queue_gives_each_record_to_one_claim_and_takes_it_back_when_the_lease_ends() {
    use std::time::Duration;
    use store::{QueueClaim, StoreError, WriteBatch};
    let pg = testkit::Postgres::shared();
    let url = pg.fresh_database();
    let node_a = PgStore::open(&url).unwrap();
    let node_b = PgStore::open(&url).unwrap();
    let (qa, qb) = (node_a.queue().unwrap(), node_b.queue().unwrap());
    assert_eq!(qa.newest().unwrap(), 0);
    assert!(qa.stored_through(0).unwrap());
    // Bytes that do not compress, so that a record takes about its own size in the queue.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut noise = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    };
    let records: Vec<Vec<u8>> = (0..10).map(|_| (0..100).map(|_| noise()).collect()).collect();
    let refs: Vec<(&[u8], u32)> = records.iter().map(|r| (r.as_slice(), 1)).collect();
    let ids = qa.append(&refs).unwrap();
    assert_eq!(ids.len(), 10);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(qb.newest().unwrap(), ids[9], "every node sees the newest record");
    let depth = qb.depth().unwrap();
    assert_eq!((depth.records, depth.events), (10, 10));
    assert!((1000..1200).contains(&depth.bytes), "{depth:?}");

    // Two claims take different records; a byte bound stops a claim early.
    let a = qa.claim(1, 0, 4, 1 << 20, Duration::from_secs(60)).unwrap();
    let b = qb.claim(2, 0, 100, 250, Duration::from_secs(60)).unwrap();
    assert_eq!(a.iter().map(|r| r.id).collect::<Vec<_>>(), ids[..4]);
    assert_eq!(a[0].data, records[0]);
    assert_eq!(b.iter().map(|r| r.id).collect::<Vec<_>>(), ids[4..6], "250 bytes hold two records of 100");

    // The writer deletes what its claim holds, in the transaction of the events.
    let (p, _) = node_a.create_project("p").unwrap();
    let wa = node_a.start_writer(100).unwrap();
    let claim_a = QueueClaim { claim: 1, ids: a.iter().map(|r| r.id).collect() };
    let stored = wa
        .write_batch(WriteBatch { events: vec![event(p.id, 1, "g", store::now())], claim: Some(claim_a), ..WriteBatch::default() })
        .unwrap()
        .wait_blocking()
        .unwrap();
    assert!(matches!(stored[0], WriteOutcome::Stored { .. }));
    assert!(qa.stored_through(ids[3]).unwrap());
    assert!(!qa.stored_through(ids[4]).unwrap());

    // Node b's lease runs out (here: a claim of no time at all); node a claims the same rows.
    let b2 = qa.claim(3, 0, 2, 1 << 20, Duration::ZERO).unwrap();
    assert_eq!(b2.iter().map(|r| r.id).collect::<Vec<_>>(), ids[6..8], "b's rows are still leased");
    let again = qa.claim(4, 0, 10, 1 << 20, Duration::from_secs(60)).unwrap();
    assert_eq!(again.iter().map(|r| r.id).collect::<Vec<_>>(), [&ids[6..8], &ids[8..10]].concat(), "an ended lease is free again");
    assert!(qb.claim(5, ids[9] + 1, 10, 1 << 20, Duration::from_secs(60)).unwrap().is_empty(), "nothing from past the newest id");
    // A write with a claim that lost its rows stores nothing at all.
    let lost = QueueClaim { claim: 3, ids: b2.iter().map(|r| r.id).collect() };
    let refused = wa
        .write_batch(WriteBatch { events: vec![event(p.id, 2, "g", store::now())], claim: Some(lost), ..WriteBatch::default() })
        .unwrap()
        .wait_blocking();
    assert!(matches!(refused, Err(StoreError::ClaimLost)), "{refused:?}");
    let group = node_a.stream(&StreamQuery::new(p.id, store::now())).unwrap().rows[0].group.id;
    assert_eq!(node_a.group_events(group, None, 10).unwrap().len(), 1, "the refused write stored no event");
    let claim_4 = QueueClaim { claim: 4, ids: again.iter().map(|r| r.id).collect() };
    wa.write_batch(WriteBatch { claim: Some(claim_4), ..WriteBatch::default() }).unwrap().wait_blocking().unwrap();
    wa.shutdown();
    let depth = qa.depth().unwrap();
    assert_eq!(depth.records, 2, "b's two records are left: {depth:?}");
    assert!(qa.stored_through(ids[3]).unwrap() && !qa.stored_through(ids[9]).unwrap());
}
