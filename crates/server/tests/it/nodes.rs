//! Several `sentry` nodes on one PostgreSQL database: what one node stores, every node reads;
//! an event sent again to another node is still stored once; a rule fires once whichever
//! node stored the event; and neither a PostgreSQL crash nor `kill -9` of a node mid-load loses
//! an acknowledged event or stores one twice.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{HttpReceiver, Postgres, Server, try_request};
use crate::notify::send_message;

fn store_config(pg: &Postgres) -> String {
    format!("[store]\nbackend = \"postgres\"\npostgres_url = \"{}\"\n", pg.url())
}

/// Waits until PostgreSQL holds `n` events (every node stores in the background).
fn wait_for_events(pg: &Postgres, n: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let stored: usize = pg.psql("SELECT count(*) FROM event_ids").trim().parse().unwrap();
        if stored >= n || Instant::now() > deadline {
            return stored;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn three_nodes_share_one_database_and_a_rule_fires_once() {
    let pg = Postgres::start();
    let hooks = HttpReceiver::start();
    let config = format!(
        "{}\n[plugins.webhook]\nurl = \"{}\"\n\n[[rules]]\nname = \"new\"\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"webhook\"]\n",
        store_config(&pg),
        hooks.url("/hook")
    );
    let nodes: Vec<Server> = (0..3).map(|_| Server::start_with_config(&config)).collect();
    // Made through one node, known to all.
    let project = nodes[0].create_project("shop");
    // Ten messages that group apart (numbers would be normalised away), three events each.
    const STEPS: [&str; 10] = ["cart", "address", "shipping", "coupon", "tax", "card", "fraud", "stock", "invoice", "mail"];
    let message = |n: u32| format!("checkout failed at the {} step", STEPS[n as usize % 10]);
    for n in 0..30u32 {
        send_message(&nodes[n as usize % 3], &project, &message(n), n);
    }
    // The same events again, each to another node than the first time: a client's retry that
    // the load balancer sent elsewhere.
    for n in 0..30u32 {
        send_message(&nodes[(n as usize + 1) % 3], &project, &message(n), n);
    }
    assert_eq!(wait_for_events(&pg, 30, Duration::from_secs(20)), 30);
    thread::sleep(Duration::from_secs(1));
    assert_eq!(wait_for_events(&pg, 31, Duration::from_secs(0)), 30, "an event sent twice was stored twice");
    for node in &nodes {
        let groups = node.groups("shop");
        assert_eq!(groups.len(), 10, "every node reads the same groups");
        assert!(groups.iter().all(|g| g["count"] == 3), "{groups:?}");
    }
    // Ten new groups, each stored by whichever node got its first event: ten notifications,
    // though three alert engines watch the same activity.
    hooks.wait_for(10, Duration::from_secs(30), |_| true);
    thread::sleep(Duration::from_secs(3));
    let titles: Vec<String> = hooks.requests().iter().map(|r| r.json()["title"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(titles.len(), 10, "{titles:?}");
    assert_eq!(titles.iter().collect::<HashSet<_>>().len(), 10, "a group was notified twice: {titles:?}");
}

fn envelope(id: &str, n: usize) -> Vec<u8> {
    let payload = format!(r#"{{"event_id":"{id}","level":"error","message":"storm {}"}}"#, n % 7);
    format!("{{\"event_id\":\"{id}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{payload}\n", payload.len()).into_bytes()
}

#[test]
fn a_database_crash_and_a_killed_node_lose_no_acknowledged_event() {
    // Durable as in production: a crash keeps what the server confirmed.
    let pg = Postgres::start_durable();
    let mut nodes: Vec<Server> = (0..3).map(|_| Server::start_with_config(&store_config(&pg))).collect();
    let project = nodes[0].create_project("crash");
    let path = format!("/api/{}/envelope/", project.id);
    let auth = project.auth();
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr()).collect();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let (acked, stop, path, auth, addrs) = (acked.clone(), stop.clone(), path.clone(), auth.clone(), addrs.clone());
            thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("{:08x}{:024x}", w, n);
                    n += 1;
                    let headers = [("X-Sentry-Auth", auth.as_str()), ("Content-Type", "application/x-sentry-envelope")];
                    // Round-robin over the nodes; a node that is down answers nothing.
                    if let Ok(r) = try_request(addrs[n % 3], "POST", &path, &headers, &envelope(&id, n), Duration::from_secs(5))
                        && r.status == 200
                    {
                        acked.lock().unwrap().push(id);
                    }
                }
            })
        })
        .collect();
    let count = || acked.lock().unwrap().len();
    let wait_acked = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while count() < n && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    };
    wait_acked(200);
    // PostgreSQL crashes and comes back: the nodes keep acknowledging from their spools and
    // store what waits once it is back, without a restart of their own.
    pg.restart();
    let after_db = count();
    wait_acked(after_db + 200);
    // One node is killed mid-load, then started again on its data directory.
    nodes[1].kill9();
    let after_kill = count();
    wait_acked(after_kill + 100);
    nodes[1].restart();
    wait_acked(count() + 100);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(acked.len() > after_kill, "nothing was acknowledged after the kill");
    let stored_n = wait_for_events(&pg, acked.len(), Duration::from_secs(60));
    let stored: HashSet<String> = pg.psql("SELECT encode(event_id, 'hex') FROM event_ids").lines().map(str::to_string).collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(missing.is_empty(), "{} of {} acknowledged events are missing, e.g. {:?}", missing.len(), acked.len(), &missing[..missing.len().min(3)]);
    let rows: usize = pg.psql("SELECT count(*) FROM events").trim().parse().unwrap();
    assert_eq!(rows, stored_n, "an event was stored twice");
    let counted: usize = pg.psql("SELECT COALESCE(sum(times_seen), 0) FROM groups").trim().parse().unwrap();
    assert_eq!(counted, rows, "group counts equal the stored events");
    eprintln!("{} acknowledged, {} stored; {} before the database crash, {} before the kill", acked.len(), rows, after_db, after_kill);
}
