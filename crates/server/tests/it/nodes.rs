//! Several `sentry` nodes on one PostgreSQL database: what one node stores, every node reads;
//! an event sent again to another node is still stored once; a rule fires once whichever
//! node stored the event; and neither a PostgreSQL crash nor `kill -9` of a node mid-load loses
//! an acknowledged event or stores one twice: received events wait in a queue all nodes share,
//! and what a killed node had taken from it, another node takes once its lease is over.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use std::io::{Read as _, Write as _};

use crate::harness::{HttpReceiver, Postgres, Redis, Server, try_request};
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

/// Nodes started at the same moment on a new database: each comes up (one makes the tables and
/// the first project, the others find them).
#[test]
fn nodes_started_together_on_a_new_database_all_come_up() {
    let pg = Postgres::start();
    let config = store_config(&pg);
    let nodes: Vec<Server> = thread::scope(|s| {
        let starts: Vec<_> = (0..3).map(|_| s.spawn(|| Server::start_with_config(&config))).collect();
        starts.into_iter().map(|t| t.join().expect("a node did not come up")).collect()
    });
    for node in &nodes {
        assert_eq!(node.get("/healthz").status, 200);
    }
    let projects: usize = pg.psql("SELECT count(*) FROM projects").trim().parse().unwrap();
    assert_eq!(projects, 1, "one first project, whichever node made it");
}

/// A node whose database is gone says so on `/healthz` (503, with the reason), so that a load
/// balancer takes it out; it answers 200 again once the database is back.
#[test]
fn healthz_fails_while_the_database_is_away() {
    let pg = Postgres::start_durable();
    let node = Server::start_with_config(&store_config(&pg));
    assert_eq!(node.get("/healthz").status, 200);
    let project = node.create_project("away");
    pg.stop();
    let down = node.get("/healthz");
    assert_eq!(down.status, 503, "{}", down.text());
    assert!(down.text().contains("store: unavailable"), "{}", down.text());
    // An event sent now is not acknowledged: nothing could keep it.
    let path = format!("/api/{}/envelope/", project.id);
    let auth = project.auth();
    let headers = [("X-Sentry-Auth", auth.as_str()), ("Content-Type", "application/x-sentry-envelope")];
    let id = "0123456789abcdef0123456789abcdef";
    let refused = try_request(node.addr(), "POST", &path, &headers, &envelope(id, 0), Duration::from_secs(40)).unwrap();
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("retry-after").is_some(), "503 says when to try again");
    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.get("/healthz").status != 200 {
        assert!(Instant::now() < deadline, "/healthz did not recover: {}", node.get("/healthz").text());
        thread::sleep(Duration::from_millis(300));
    }
    // The SDK's retry is acknowledged and stored.
    let deadline = Instant::now() + Duration::from_secs(30);
    while try_request(node.addr(), "POST", &path, &headers, &envelope(id, 0), Duration::from_secs(10)).map(|r| r.status).ok() != Some(200) {
        assert!(Instant::now() < deadline, "events are not accepted again after the database came back");
        thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(wait_for_events(&pg, 1, Duration::from_secs(30)), 1);
}

fn envelope(id: &str, n: usize) -> Vec<u8> {
    let payload = format!(r#"{{"event_id":"{id}","level":"error","message":"storm {}"}}"#, n % 7);
    format!("{{\"event_id\":\"{id}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{payload}\n", payload.len()).into_bytes()
}

#[test]
fn a_database_crash_and_a_killed_node_lose_no_acknowledged_event() {
    // Durable as in production: a crash keeps what the server confirmed.
    let pg = Postgres::start_durable();
    // A short lease, so that what the killed node holds goes to another node within the test.
    let config = format!("{}queue_lease_secs = 2\n", store_config(&pg));
    let mut nodes: Vec<Server> = (0..3).map(|_| Server::start_with_config(&config)).collect();
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
    // PostgreSQL crashes and comes back: the nodes answer 503 meanwhile, and acknowledge and
    // store again once it is back, without a restart of their own.
    pg.restart();
    let after_db = count();
    wait_acked(after_db + 200);
    // One node is killed mid-load and stays dead: what it acknowledged and had not stored is
    // in the shared queue, and what it had taken from there goes to the others.
    nodes[1].kill9();
    let after_kill = count();
    wait_acked(after_kill + 300);
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
    assert_eq!(pg.psql("SELECT count(*) FROM ingest_queue").trim(), "0", "nothing is left in the shared queue");
    nodes[1].restart();
    eprintln!("{} acknowledged, {} stored; {} before the database crash, {} before the kill", acked.len(), rows, after_db, after_kill);
}

/// Reads a live stream until `want` appears in it; what it read.
fn read_until(stream: &mut std::net::TcpStream, seen: &mut String, want: &str) -> bool {
    let mut buf = [0u8; 4096];
    while !seen.contains(want) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    true
}

fn open_live(node: &Server, slug: &str, cookie: &str) -> (std::net::TcpStream, String) {
    let mut stream = std::net::TcpStream::connect(node.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET /p/{slug}/live HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n", node.addr()).unwrap();
    let mut seen = String::new();
    assert!(read_until(&mut stream, &mut seen, "event: hello"), "the live stream opens: {seen}");
    (stream, seen)
}

/// With Redis beside PostgreSQL: a key limited to 20 a minute stores 20 however the requests
/// are spread over three nodes; a page open on one node hears of an event another stored. With
/// Redis gone, ingest goes on (each node counting alone); back, live updates resume.
#[test]
fn rate_limits_and_live_updates_are_shared_through_redis() {
    let pg = Postgres::start();
    let mut redis = Redis::start();
    let config = format!("{}\n[redis]\nurl = \"{}\"\n", store_config(&pg), redis.url());
    let nodes: Vec<Server> = (0..3).map(|_| Server::start_with_config(&config)).collect();
    let project = nodes[0].create_project("limited");
    let key = nodes[0].cli_json(&["key", "create", "--project", "limited", "--rate-limit", "20", "--json"]);
    let dsn = key["dsn"].as_str().unwrap_or_else(|| panic!("{key}"));
    let public = dsn.split("://").nth(1).unwrap().split('@').next().unwrap().to_string();
    let auth = format!("Sentry sentry_key={public}, sentry_version=7");

    // A page open on node 2.
    assert!(nodes[0].create_user("ops@example.com", "correct horse battery", true).status.success());
    let session = nodes[2].login("ops@example.com", "correct horse battery").unwrap_or_else(|r| panic!("{}", r.text()));
    let (mut live, mut seen) = open_live(&nodes[2], "limited", &session.cookie);

    // The burst must stay within one minute of the counters.
    while store_second() > 40 {
        thread::sleep(Duration::from_millis(500));
    }
    let send = |node: &Server, n: u32| {
        let body = serde_json::json!({"event_id": format!("{:032x}", 0xfeed_0000_u128 + u128::from(n)), "message": "limited", "level": "error"});
        node.post(&format!("/api/{}/store/", project.id), &[("X-Sentry-Auth", auth.as_str()), ("Content-Type", "application/json")], body.to_string().as_bytes())
            .status
    };
    // The first event goes to node 0; the page on node 2 hears of it.
    assert_eq!(send(&nodes[0], 0), 200);
    assert!(read_until(&mut live, &mut seen, "event: groups"), "node 2's page heard nothing of node 0's event: {seen}");
    let statuses: Vec<u16> = (1..60).map(|n| send(&nodes[n as usize % 3], n)).collect();
    let ok = statuses.iter().filter(|s| **s == 200).count() + 1;
    assert_eq!(ok, 20, "a key limited to 20 a minute, spread over three nodes: {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");

    // Guessing a password through two nodes is limited as through one: ten wrong attempts per
    // (email, address) in all, then 429 on either node.
    let answers: Vec<u16> = (0..16).map(|n| nodes[n % 2].login("nobody@example.com", "wrong guess").err().map_or(200, |r| r.status)).collect();
    let limited = answers.iter().filter(|s| **s == 429).count();
    assert_eq!(limited, 16 - web_login_attempts(), "wrong logins over two nodes: {answers:?}");

    // Redis goes away: events are still accepted and stored.
    redis.stop();
    let body = serde_json::json!({"message": "while redis is away", "level": "error"});
    let default_auth = project.auth();
    for node in &nodes {
        let r = node.post(&format!("/api/{}/store/", project.id), &[("X-Sentry-Auth", default_auth.as_str()), ("Content-Type", "application/json")], body.to_string().as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(wait_for_events(&pg, 23, Duration::from_secs(20)), 23);
    assert!(nodes[1].log().contains("Redis is unreachable"), "the node says why counting is local now");
    let health = nodes[1].get("/healthz");
    assert_eq!(health.status, 200, "Redis away does not take a node out");
    assert!(health.text().contains("store: ok") && health.text().contains("redis: unreachable"), "{}", health.text());
    // Back: a page opened now hears of another node's events again.
    redis.launch();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !nodes[1].get("/healthz").text().contains("redis: ok") {
        assert!(Instant::now() < deadline, "/healthz did not see Redis back: {}", nodes[1].get("/healthz").text());
        thread::sleep(Duration::from_millis(500));
    }
    let (mut live, mut seen) = open_live(&nodes[2], "limited", &session.cookie);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut heard = false;
    while !heard && Instant::now() < deadline {
        let body = serde_json::json!({"message": "after redis is back", "level": "error"});
        nodes[1].post(&format!("/api/{}/store/", project.id), &[("X-Sentry-Auth", default_auth.as_str()), ("Content-Type", "application/json")], body.to_string().as_bytes());
        live.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        heard = read_until(&mut live, &mut seen, "event: groups");
    }
    assert!(heard, "live updates did not resume after Redis came back: {seen}");
}

/// The second of the current minute.
fn store_second() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % 60
}

/// Every page a person reads, served from PostgreSQL: the dashboard, a project's stream in each
/// sort and interval, an issue, an event and its JSON, the settings; and a status change.
#[test]
fn the_dashboard_reads_and_changes_postgresql() {
    let pg = Postgres::start();
    let node = Server::start_with_config(&store_config(&pg));
    let project = node.create_project("shop");
    for n in 0..12u32 {
        send_message(&node, &project, if n % 2 == 0 { "card declined" } else { "stock exhausted" }, n);
    }
    assert!(node.create_user("ops@example.com", "correct horse battery", true).status.success());
    let s = node.login("ops@example.com", "correct horse battery").unwrap_or_else(|r| panic!("{}", r.text()));
    let groups = node.groups("shop");
    assert_eq!(groups.len(), 2);
    let group = &groups[0];
    let event = node.events_of(group)[0]["event_id"].as_str().unwrap().to_string();
    let id = group["id"].to_string();
    let mut pages = vec![
        "/dashboard".to_string(),
        "/settings/".to_string(),
        "/settings/projects/shop/".to_string(),
        "/o/default/settings/".to_string(),
        format!("/p/shop/issues/{id}/"),
        format!("/p/shop/issues/{id}/events/{event}/"),
        format!("/p/shop/issues/{id}/events/{event}/json"),
    ];
    for sort in ["priority", "last_seen", "first_seen", "frequency", "time_spent", "total_time_spent"] {
        for interval in ["", "&interval=1h", "&interval=24h", "&interval=30d"] {
            pages.push(format!("/p/shop/?sort={sort}{interval}&status=all"));
        }
    }
    for page in &pages {
        let r = node.get_as(&s, page);
        assert_eq!(r.status, 200, "{page}: {}", r.text());
    }
    let stream = node.get_as(&s, "/p/shop/?sort=frequency&interval=24h").text();
    assert!(stream.contains("card declined") && stream.contains("stock exhausted"), "the stream lists both issues");
    let r = node.post_form_as(&s, &format!("/p/shop/issues/{id}/status"), &[("csrf", &s.csrf), ("status", "resolved")]);
    assert!(r.status == 303 || r.status == 200, "{}", r.text());
    let after = node.groups("shop");
    assert_eq!(after.iter().find(|g| g["id"] == group["id"]).unwrap()["status"], "resolved");
}

/// The wrong logins allowed per (email, address) in a window.
fn web_login_attempts() -> usize {
    web::dashboard::auth::LOGIN_ATTEMPTS
}
