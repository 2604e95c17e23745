//! Acknowledged events survive `kill -9` and restarts, and are processed exactly once: a 200
//! is only sent after the batch holding the event is committed and fsynced, and the event id is
//! the idempotency key.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{try_request, Server};

/// Every event id stored in a project, with how many times each appears, and the sum of the
/// groups' counts.
fn stored(server: &Server, slug: &str) -> (HashMap<String, usize>, u64) {
    let mut ids = HashMap::new();
    let mut total = 0;
    for g in server.groups(slug) {
        total += g["count"].as_u64().unwrap();
        let events = server.cli_json(&["events", "--group", &g["id"].to_string(), "--limit", "1000000", "--json"]);
        for e in events.as_array().unwrap() {
            *ids.entry(e["event_id"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
    }
    (ids, total)
}

fn envelope(id: &str, n: usize) -> Vec<u8> {
    let payload = format!(
        r#"{{"event_id":"{id}","level":"error","logger":"load","message":"storm {}","tags":{{"worker":"w{}"}}}}"#,
        n % 5,
        n % 3
    );
    format!("{{\"event_id\":\"{id}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{payload}\n", payload.len()).into_bytes()
}

#[test]
fn acknowledged_events_survive_kill_9_exactly_once() {
    let mut server = Server::start();
    let project = server.create_project("crash");
    let path = format!("/api/{}/envelope/", project.id);
    let auth = project.auth();
    let addr = server.addr();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (acked, sent, stop, path, auth) = (acked.clone(), sent.clone(), stop.clone(), path.clone(), auth.clone());
        workers.push(std::thread::spawn(move || {
            let mut n = 0;
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let id = format!("{:08x}{:024x}", w, n);
                n += 1;
                sent.lock().unwrap().push(id.clone());
                let headers = [("X-Sentry-Auth", auth.as_str()), ("Content-Type", "application/x-sentry-envelope")];
                match try_request(addr, "POST", &path, &headers, &envelope(&id, n), Duration::from_secs(5)) {
                    Ok(r) if r.status == 200 => {
                        assert_eq!(r.json()["id"], id.as_str(), "the answer names the event");
                        acked.lock().unwrap().push(id);
                    }
                    Ok(r) => panic!("unexpected status {} before the kill: {}", r.status, r.text()),
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    // Let the load run, then kill the server in the middle of it.
    let start = Instant::now();
    while acked.lock().unwrap().len() < 300 && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let acked = acked.lock().unwrap().clone();
    let sent = sent.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} events were acknowledged before the kill", acked.len());

    server.restart();
    let (ids, total) = stored(&server, "crash");
    eprintln!("kill -9: {} sent, {} acknowledged, {} stored after restart", sent.len(), acked.len(), ids.len());
    let missing: Vec<&String> = acked.iter().filter(|id| !ids.contains_key(*id)).collect();
    assert!(missing.is_empty(), "{} of {} acknowledged events are missing, e.g. {:?}", missing.len(), acked.len(), &missing[..missing.len().min(5)]);
    let dups: Vec<(&String, &usize)> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "events stored twice: {dups:?}");
    let sent: HashSet<&String> = sent.iter().collect();
    assert!(ids.keys().all(|id| sent.contains(id)), "an event nobody sent was stored");
    assert_eq!(total, ids.len() as u64, "group counts equal the stored events");

    // Clients retry what got no answer: everything sent is then stored exactly once.
    for id in &sent {
        let r = server.post(&path, &[("X-Sentry-Auth", &auth)], &envelope(id, 0));
        assert_eq!(r.status, 200);
    }
    let (ids, total) = stored(&server, "crash");
    assert_eq!(ids.len(), sent.len(), "every event sent is stored after the retries");
    assert!(ids.values().all(|n| *n == 1));
    assert_eq!(total, sent.len() as u64);
}

#[test]
fn sigterm_writes_everything_accepted_then_exits() {
    let mut server = Server::start();
    let project = server.create_project("term");
    let path = format!("/api/{}/store/", project.id);
    let mut acked = Vec::new();
    for n in 0..50u32 {
        let id = format!("{n:032x}");
        let body = format!(r#"{{"event_id":"{id}","message":"graceful","level":"warning"}}"#);
        let r = server.post(&path, &[("X-Sentry-Auth", &project.auth())], body.as_bytes());
        assert_eq!(r.status, 200);
        acked.push(id);
    }
    let status = server.terminate();
    assert!(status.success(), "graceful exit, got {status}");
    server.launch();
    let (ids, total) = stored(&server, "term");
    assert_eq!(total, 50);
    assert!(acked.iter().all(|id| ids.get(id) == Some(&1)));
    let groups: Vec<Value> = server.groups("term");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["level"], "warning");
}

#[test]
fn a_torn_spool_tail_is_cut_at_start_and_every_acknowledged_event_kept() {
    let mut server = Server::start();
    let project = server.create_project("torn");
    let path = format!("/api/{}/envelope/", project.id);
    let headers = [("X-Sentry-Auth", project.auth()), ("Content-Type", "application/x-sentry-envelope".to_string())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ids: Vec<String> = (0..20).map(|n| format!("{n:032x}")).collect();
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(server.post(&path, &headers, &envelope(id, n)).status, 200);
    }
    server.kill9();
    // Power lost in the middle of an append: the segment holds part of a record that was never
    // acknowledged, after the last whole one.
    let spool = server.data_dir().join("spool");
    let mut segments: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    let last = segments.last().expect("a spool segment");
    let file = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    let len = file.metadata().unwrap().len();
    std::os::unix::fs::FileExt::write_all_at(&file, b"\x00\x10\x00\x00torn record, half written", len / 2).unwrap();
    drop(file);

    server.restart();
    assert!(server.log().contains("cut it off and kept every record before it"), "the log says what was cut:\n{}", server.log_tail(20));
    let (stored_ids, total) = stored(&server, "torn");
    assert!(ids.iter().all(|id| stored_ids.get(id) == Some(&1)), "every acknowledged event once: {stored_ids:?}");
    assert_eq!(total, 20);
    // Appends go on where the cut was, and survive the next restart.
    assert_eq!(server.post(&path, &headers, &envelope(&format!("{:032x}", 99), 99)).status, 200);
    server.kill9();
    server.restart();
    assert_eq!(stored(&server, "torn").1, 21);
}
