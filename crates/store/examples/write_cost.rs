//! The writer's ceiling: events per second through the store's `EventSink` with no HTTP and no parsing,
//! in batches like under load. `cargo run --release -p store --example write_cost -- [EVENTS] [BATCH]`.

use std::time::Instant;

use protocol::EventId;
use store::{ItemCounts, Level, NewEvent};

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let dir = std::env::temp_dir().join(format!("write-cost-{}", std::process::id()));
    let store = store::open(&store::Backend::Sqlite { path: dir.join("sentry.db") }).unwrap();
    let (p, _) = store.create_project("bench").unwrap();
    let w = store.start_writer(2000).unwrap();
    let payload = |n: usize| {
        format!(
            r#"{{"event_id":"{n:032x}","level":"error","platform":"python","exception":{{"values":[{{"type":"KeyError","value":"'SKU-{}'","stacktrace":{{"frames":[{{"module":"shop.views","function":"checkout","lineno":{}}}]}}}}]}},"tags":{{"server":"web-{}"}},"extra":{{"pad":"{}"}}}}"#,
            n % 50,
            n % 300,
            n % 4,
            "lorem ipsum ".repeat(400)
        )
        .into_bytes()
    };
    let start = Instant::now();
    let mut n = 0;
    while n < total {
        let events: Vec<NewEvent> = (n..(n + batch).min(total))
            .map(|i| NewEvent {
                project_id: p.id,
                event_id: EventId::new_random(),
                kind: "exception".into(),
                timestamp: 1.8e9 + i as f64 * 0.01,
                received: 1.8e9 + i as f64 * 0.01,
                level: Level::Error,
                logger: None,
                title: format!("KeyError: 'SKU-{}'", i % 50),
                culprit: "shop.views in checkout".into(),
                hash: format!("{:032x}", i % 50),
                components: "[]".into(),
                tags: vec![
                    ("server".into(), format!("web-{}", i % 4)),
                    ("level".into(), "error".into()),
                    ("environment".into(), "production".into()),
                    ("release".into(), "shop@1.2.3".into()),
                    ("user".into(), format!("{}", i % 1000)),
                    ("url".into(), "http://shop/checkout".into()),
                ],
                time_spent: None,
                payload: payload(i),
            })
            .collect();
        n += events.len();
        w.write(events, ItemCounts::default()).unwrap().wait_blocking().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    w.shutdown();
    let size: u64 = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.metadata().unwrap().len()).sum();
    println!("{total} events in batches of {batch}: {:.0} events/s, {:.1} µs/event, {:.0} bytes/event on disk", total as f64 / secs, secs * 1e6 / total as f64, size as f64 / total as f64);
    let _ = std::fs::remove_dir_all(&dir);
}
