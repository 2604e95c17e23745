//! Benchmark of the project stream query (not a test): loads 1,000,000 events in 10,000 groups
//! with realistic tags through the store's writer, then times `SqliteStore::stream` (one page of
//! 25 rows with counts and sparklines, as the dashboard asks for it) for every sort, without and
//! with a tag filter, over the intervals 15m, 1h, 24h, 7d, 30d and all time, and prints p50 and
//! p95 per sort and filter; then the search box's other filters (an assignee, unassigned,
//! distinct users, a negated tag, `has:`, a wildcard), each over every sort and interval.
//!
//!     cargo bench -p store --bench stream
//!     STREAM_BENCH_EVENTS=200000 cargo bench -p store --bench stream     # a smaller load
//!
//! The data file goes to a temporary directory (STREAM_BENCH_DIR to choose where).
//! `STREAM_BENCH_KEEP=PATH` loads the data, copies the file to PATH and stops without timing:
//! `bench/stream_under_load.sh` serves that file with the real binary and times the dashboard's
//! stream page while ingest runs.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protocol::EventId;
use store::sqlite::SqliteStore;
use store::{
    Accounts, Admin, Assignee, AssigneeCondition, Cmp, Comparison, GroupField, GroupId, GroupStatus, ItemCounts, Level, NewEvent, Reads, Sort,
    Store, StreamQuery, TagCondition, UserId,
};

/// xorshift64*: fast and reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Skewed towards 0: a few values get most of the weight (roughly Zipf).
    fn skewed(&mut self, n: u64) -> u64 {
        ((n as f64).powf(self.unit()) - 1.0).floor() as u64 % n.max(1)
    }
}

const LEVELS: &[(&str, f64)] = &[("error", 0.6), ("warning", 0.85), ("info", 0.95), ("fatal", 1.0)];

fn main() {
    let total: u64 = std::env::var("STREAM_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let groups: u64 = 10_000;
    let dir = match std::env::var_os("STREAM_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("bench.db")).expect("store");
    let (project, _) = store.create_project("bench").expect("project");
    let writer = store.start_writer(5000).expect("writer");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    // Each group has a kind, a level, a logger and a "home" server; events vary around them.
    println!("loading {total} events in {groups} groups…");
    let started = Instant::now();
    let mut batch = Vec::with_capacity(5000);
    for i in 0..total {
        let g = rng.skewed(groups);
        let timed = g % 10 < 3;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&i.to_be_bytes());
        id[8..].copy_from_slice(&rng.next().to_be_bytes());
        // Recent-biased over 30 days: half the events in the last ~2 days.
        let age = 30.0 * 86400.0 * rng.unit().powi(4);
        let level = {
            let u = ((g * 7919) % 1000) as f64 / 1000.0;
            LEVELS.iter().find(|(_, c)| u < *c).map_or("error", |l| l.0)
        };
        let tags = vec![
            ("level".to_string(), level.to_string()),
            ("logger".to_string(), format!("app.module{}", g % 30)),
            ("server".to_string(), format!("web-{}", (g + rng.below(3)) % 20 + 1)),
            ("environment".to_string(), if rng.below(10) < 8 { "production" } else { "staging" }.to_string()),
            ("release".to_string(), format!("shop@1.{}", 50 - rng.skewed(50))),
            ("customer".to_string(), format!("customer-{}", rng.skewed(500))),
            ("user".to_string(), format!("user-{}", rng.skewed(20_000))),
        ];
        batch.push(NewEvent {
            project_id: project.id,
            event_id: EventId(id),
            kind: if timed { "query" } else { "exception" }.into(),
            timestamp: now - age,
            received: now,
            level: Level::parse(level).unwrap_or(Level::Error),
            logger: Some(format!("app.module{}", g % 30)),
            title: format!("{} number {g} in the shop", if timed { "SELECT FROM orders" } else { "KeyError" }),
            culprit: format!("app.module{}.handler{}", g % 30, g % 7),
            hash: format!("{g:032x}"),
            components: "[]".into(),
            tags,
            time_spent: timed.then(|| 5.0 + 200.0 * rng.unit().powi(3)),
            payload: br#"{"message":"bench"}"#.to_vec(),
        });
        if batch.len() == 5000 {
            writer.write(std::mem::take(&mut batch), ItemCounts::default()).expect("write").wait_blocking().expect("write");
        }
    }
    writer.write(batch, ItemCounts::default()).expect("write").wait_blocking().expect("write");
    writer.shutdown();
    // A tenth of the groups resolved, a twentieth ignored.
    for g in 1..=groups as i64 {
        match g % 20 {
            0 => store.set_group_status(GroupId(g), GroupStatus::Ignored).ok(),
            1 | 2 => store.set_group_status(GroupId(g), GroupStatus::Resolved).ok(),
            _ => None,
        };
    }
    store.optimize().expect("analyze");
    let load = started.elapsed();
    println!(
        "loaded in {:.1} s ({:.0} events/s); data file {} MB",
        load.as_secs_f64(),
        total as f64 / load.as_secs_f64(),
        std::fs::metadata(dir.path().join("bench.db")).map(|m| m.len() / 1_000_000).unwrap_or(0)
    );

    if let Some(keep) = std::env::var_os("STREAM_BENCH_KEEP") {
        // Dropping the store closes its connections, which checkpoints the WAL into the file.
        drop(store);
        std::fs::copy(dir.path().join("bench.db"), &keep).expect("copying the data file");
        println!("data file copied to {}", std::path::Path::new(&keep).display());
        return;
    }

    let sorts = [
        ("priority", Sort::Priority),
        ("last_seen", Sort::LastSeen),
        ("first_seen", Sort::FirstSeen),
        ("frequency", Sort::Frequency),
        ("time_spent", Sort::TimeSpent),
        ("total_time_spent", Sort::TimeSpentTotal),
    ];
    let filters: [(&str, Vec<(String, String)>); 3] = [
        ("none", vec![]),
        ("server=web-3", vec![("server".into(), "web-3".into())]),
        ("customer=customer-7", vec![("customer".into(), "customer-7".into())]),
    ];
    let intervals = [("15m", Some(900.0)), ("1h", Some(3600.0)), ("24h", Some(86400.0)), ("7d", Some(7.0 * 86400.0)), ("30d", Some(30.0 * 86400.0)), ("all", None)];
    let rounds = 15;

    println!("\nstream query, 25 rows with counts and sparklines; {rounds} runs per interval × 6 intervals, unresolved tab");
    println!("{:<18} {:<22} {:>9} {:>9} {:>9}  slowest interval (p95)", "sort", "tag filter", "p50 ms", "p95 ms", "max ms");
    let mut worst = Duration::ZERO;
    for (sort_name, sort) in sorts {
        for (filter_name, tags) in &filters {
            let mut times = Vec::new();
            let mut per_interval = Vec::new();
            for (iname, secs) in intervals {
                let mut these = Vec::new();
                for round in 0..rounds {
                    let mut q = StreamQuery::new(project.id, now);
                    q.sort = sort;
                    q.since = secs.map(|s| now - s);
                    q.tags = tags.clone();
                    // Every third run asks for the second page.
                    if round % 3 == 2 {
                        let first = store.stream(&q).expect("stream");
                        q.cursor = first.next;
                    }
                    let t = Instant::now();
                    let page = store.stream(&q).expect("stream");
                    these.push(t.elapsed());
                    std::hint::black_box(page);
                }
                these.sort();
                per_interval.push((iname, these[these.len() * 95 / 100]));
                times.extend(these);
            }
            times.sort();
            let p = |q: usize| times[(times.len() * q / 100).min(times.len() - 1)];
            let slowest = per_interval.iter().max_by_key(|(_, d)| *d).expect("intervals");
            worst = worst.max(p(95));
            println!(
                "{:<18} {:<22} {:>9.2} {:>9.2} {:>9.2}  {} ({:.2} ms)",
                sort_name,
                filter_name,
                ms(p(50)),
                ms(p(95)),
                ms(*times.last().expect("runs")),
                slowest.0,
                ms(slowest.1)
            );
        }
    }
    println!("\nworst p95: {:.2} ms (goal: under 50 ms)", ms(worst));

    // The search box's other filters, each with every sort over every interval: an assignee
    // (1% of the groups are assigned), distinct users, a negated tag, has:, a wildcard.
    let boss = store.create_user("boss@example.com", "h", false).expect("user");
    for g in (1..=groups as i64).step_by(100) {
        store.assign_group(GroupId(g), Some(Assignee::User(boss.id))).expect("assign");
    }
    store.optimize().expect("analyze");
    type Narrow = fn(&mut StreamQuery, UserId);
    let searches: [(&str, Narrow); 6] = [
        ("assigned:boss", |q, u| q.assigned.push(AssigneeCondition { to: Some(vec![Assignee::User(u)]), negated: false })),
        ("is:unassigned", |q, _| q.assigned.push(AssigneeCondition { to: None, negated: true })),
        ("users:>10", |q, _| q.comparisons.push(Comparison { field: GroupField::Users, cmp: Cmp::Gt, value: 10.0 })),
        ("!server:web-3", |q, _| q.conditions.push(TagCondition { negated: true, ..TagCondition::any_of("server", vec!["web-3".into()]) })),
        ("has:customer", |q, _| q.conditions.push(TagCondition::any_of("customer", vec![]))),
        ("server:web-1*", |q, _| q.conditions.push(TagCondition::any_of("server", vec!["web-1*".into()]))),
    ];
    println!("\nsearch filters: {rounds} runs per interval × 6 intervals × 6 sorts each");
    println!("{:<18} {:>9} {:>9} {:>9}  slowest (p95)", "filter", "p50 ms", "p95 ms", "max ms");
    let mut worst_search = Duration::ZERO;
    for (name, narrow) in searches {
        let mut times = Vec::new();
        let mut slowest = ("", "", Duration::ZERO);
        for (sort_name, sort) in sorts {
            for (iname, secs) in intervals {
                let mut these = Vec::new();
                for _ in 0..rounds {
                    let mut q = StreamQuery::new(project.id, now);
                    q.sort = sort;
                    q.since = secs.map(|s| now - s);
                    narrow(&mut q, boss.id);
                    let t = Instant::now();
                    std::hint::black_box(store.stream(&q).expect("stream"));
                    these.push(t.elapsed());
                }
                these.sort();
                let p95 = these[these.len() * 95 / 100];
                if p95 > slowest.2 {
                    slowest = (sort_name, iname, p95);
                }
                times.extend(these);
            }
        }
        times.sort();
        let p = |q: usize| times[(times.len() * q / 100).min(times.len() - 1)];
        worst_search = worst_search.max(p(95));
        println!("{:<18} {:>9.2} {:>9.2} {:>9.2}  {} × {} ({:.2} ms)", name, ms(p(50)), ms(p(95)), ms(*times.last().expect("runs")), slowest.0, slowest.1, ms(slowest.2));
    }
    println!("\nworst p95 of the search filters: {:.2} ms (goal: under 50 ms)", ms(worst_search));
    let mut q = StreamQuery::new(project.id, now);
    q.sort = Sort::Frequency;
    q.since = Some(now - 86400.0);
    q.tags = vec![("server".into(), "web-3".into())];
    println!("\nplan of frequency × server=web-3 × 24h:\n  {}", store.explain_stream(&q).expect("plan").join("\n  "));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
