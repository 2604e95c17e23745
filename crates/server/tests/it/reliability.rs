//! Sentry keeps working when everything else is failing: overload is refused with 503 and
//! `Retry-After` within a memory bound and recovers at once; rate limits make the real SDK back
//! off; slow or vanishing clients are cut off without leaving anything half-written; a full
//! disk gives 503s and ingest resumes, without a restart, when space returns.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{clean_command, python, run_with_timeout, try_request, Project, Server};

fn metric(server: &Server, name: &str) -> u64 {
    let text = server.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

fn event(id: usize, message: &str, pad: usize) -> Vec<u8> {
    format!(r#"{{"event_id":"{id:032x}","message":"{message}","extra":{{"pad":"{}"}}}}"#, "x".repeat(pad)).into_bytes()
}

#[test]
fn overload_is_refused_with_retry_after_within_the_memory_bound_and_recovers() {
    // A tiny memory budget (256 KiB) against 16 clients sending 48 KiB events at once.
    let server = Server::start_with_config("[ingest]\nmax_inflight_bytes = 262144\nqueue_capacity = 4\n");
    let p = server.create_project("storm");
    let addr = server.addr();
    let path = format!("/api/{}/store/", p.id);
    /// Status, Retry-After and latency of one request.
    type Outcome = (u16, Option<String>, Duration);
    let results: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let mut threads = Vec::new();
    for t in 0..16 {
        let (results, path, auth) = (results.clone(), path.clone(), p.auth());
        threads.push(std::thread::spawn(move || {
            for n in 0..25 {
                let body = event(t * 1000 + n, "storm", 48 * 1024);
                let start = Instant::now();
                let r = try_request(addr, "POST", &path, &[("X-Sentry-Auth", &auth)], &body, Duration::from_secs(30)).unwrap();
                results.lock().unwrap().push((r.status, r.header("retry-after").map(str::to_string), start.elapsed()));
                // Peak memory held by the pipeline never passes the bound.
            }
        }));
    }
    let mut peak = 0;
    while threads.iter().any(|t| !t.is_finished()) {
        peak = peak.max(metric(&server, "sentry_ingest_memory_bytes"));
        std::thread::sleep(Duration::from_millis(5));
    }
    for t in threads {
        t.join().unwrap();
    }
    let results = results.lock().unwrap();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(ok + refused.len(), results.len(), "only 200 and 503: {:?}", results.iter().map(|r| r.0).collect::<Vec<_>>());
    assert!(!refused.is_empty(), "the storm was never refused");
    assert!(ok > 0, "nothing got through");
    assert!(refused.iter().all(|r| r.1.as_deref() == Some("1")), "every 503 says when to retry");
    assert!(peak <= 256 * 1024, "memory held {peak} bytes, over the 256 KiB bound");
    let slowest_ok = results.iter().filter(|r| r.0 == 200).map(|r| r.2).max().unwrap();
    eprintln!("overload: {ok} accepted, {} refused, peak budget {peak} bytes, slowest accepted {slowest_ok:?}", refused.len());
    // Recovers at once: the next request is accepted as soon as the few events waiting in the
    // spool are stored (a moment).
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let r = server.post(&path, &[("X-Sentry-Auth", &p.auth())], &event(99_999, "after", 10));
        if r.status != 503 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(metric(&server, "sentry_ingest_memory_bytes"), 0, "everything was released");
    // Exactly what was accepted was stored.
    let stored: u64 = server.groups("storm").iter().map(|g| g["count"].as_u64().unwrap()).sum();
    assert_eq!(stored, ok as u64 + 1);
}

#[test]
fn rate_limits_make_the_real_sdk_back_off() {
    let server = Server::start();
    let p = server.create_project("limited");
    let key = server.cli_json(&["key", "create", "--project", "limited", "--rate-limit", "2", "--json"]);
    let dsn = key["dsn"].as_str().unwrap();
    let script = r#"
import sys, sentry_sdk
sentry_sdk.init(sys.argv[1], transport_queue_size=100)
for i in range(10):
    sentry_sdk.capture_message("limited %d" % i, level="error")
    sentry_sdk.flush(timeout=5)
"#;
    let out = run_with_timeout(clean_command(python()).args(["-c", script, dsn]), Duration::from_secs(60));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let accepted = metric(&server, "sentry_ingest_requests_total{status=\"200\"}");
    let limited = metric(&server, "sentry_ingest_requests_total{status=\"429\"}");
    // Two accepted, then one 429 that tells the SDK to stop: it drops the rest itself instead of
    // sending them (it may still send its client report of what it dropped).
    assert_eq!(limited, 1, "the SDK backed off after the first 429 ({accepted} accepted)");
    assert!(accepted <= 3, "{accepted}");
    let stored: u64 = server.groups("limited").iter().map(|g| g["count"].as_u64().unwrap()).sum();
    assert_eq!(stored, 2);
    // The other key of the project is not limited.
    let r = server.post(&format!("/api/{}/store/", p.id), &[("X-Sentry-Auth", &p.auth())], &event(7, "other key", 0));
    assert_eq!(r.status, 200);
    // The refusal is in the form SDKs read.
    let r = server.post(&format!("/api/{}/store/", p.id), &[("X-Sentry-Auth", &format!("Sentry sentry_key={}, sentry_version=7", key["key"].as_str().unwrap()))], &event(8, "again", 0));
    assert_eq!(r.status, 429);
    let header = r.header("x-sentry-rate-limits").unwrap();
    assert!(header.ends_with("::key:key_quota"), "{header}");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
}

#[test]
fn idle_connections_are_closed_and_the_server_keeps_answering() {
    let server = Server::start_with_config("[ingest]\nrequest_timeout_secs = 1\n");
    // Connections that send nothing at all, and one that sends only the HTTP/2 preface.
    let mut silent: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(server.addr()).unwrap()).collect();
    let mut preface = TcpStream::connect(server.addr()).unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    silent.push(preface);
    let start = Instant::now();
    // Meanwhile the server answers.
    assert_eq!(server.get("/healthz").status, 200);
    for s in &mut silent {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let closed = s.read_to_end(&mut buf).is_ok();
        assert!(closed, "a connection that sent nothing was still open after {:?}", start.elapsed());
    }
    assert!(start.elapsed() < Duration::from_secs(5), "idle connections stayed open {:?}", start.elapsed());
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn at_the_connection_cap_silent_sockets_make_room_for_a_health_check() {
    // Silent sockets would be closed only after a minute; the cap is 30 connections.
    let server = Server::start_with_config("[limits]\nmax_connections = 30\n\n[ingest]\nrequest_timeout_secs = 60\n");
    let silent: Vec<TcpStream> = (0..100).map(|_| TcpStream::connect(server.addr()).unwrap()).collect();
    let start = Instant::now();
    for _ in 0..5 {
        assert_eq!(server.get("/healthz").status, 200);
    }
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the health checks waited {:?}, as long as the silent sockets' timeout",
        start.elapsed()
    );
    // The oldest silent sockets were closed to make room; the server said why, once.
    let mut first = &silent[0];
    first.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(first.read(&mut buf).unwrap_or(1), 0, "the oldest silent socket is still open");
    let log = server.log();
    assert_eq!(
        log.matches("the cap of open connections is reached").count(),
        1,
        "the cap is said once:\n{log}"
    );
    assert!(log.contains("closed to make room"), "{log}");
}

#[test]
fn slow_and_vanishing_clients_leave_nothing_behind() {
    let server = Server::start_with_config("[ingest]\nrequest_timeout_secs = 1\n");
    let p = server.create_project("slow");
    let auth = p.auth();
    // Headers that never finish: the server hangs up.
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(b"POST /api/1/store/ HTTP/1.1\r\nHost: x\r\nX-Sentry-").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(start.elapsed() < Duration::from_secs(5), "the connection stayed open {:?}", start.elapsed());
    // A body that stops half-way: 408, nothing stored.
    let body = event(1, "half", 1000);
    let mut s = TcpStream::connect(server.addr()).unwrap();
    let head = format!(
        "POST /api/{}/store/ HTTP/1.1\r\nHost: x\r\nX-Sentry-Auth: {auth}\r\nContent-Length: {}\r\n\r\n",
        p.id,
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..body.len() / 2]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A client that disconnects mid-body: nothing stored, the server carries on.
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..body.len() / 3]).unwrap();
    drop(s);
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.groups("slow").is_empty(), "a half-sent event was stored");
    let r = server.post(&format!("/api/{}/store/", p.id), &[("X-Sentry-Auth", &auth)], &event(2, "whole", 10));
    assert_eq!(r.status, 200);
    assert_eq!(server.groups("slow").len(), 1);
}

/// A tmpfs of its own, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        let out = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).output().unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill it, which needs root (as in CI): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }

    fn remount(&self, options: &str) {
        let out = std::process::Command::new("mount").args(["-o", &format!("remount,{options}")]).arg(&self.0).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// An event that does not compress much: 4 KiB of pseudo-random hex per 4 KiB asked.
fn bulky_event(n: usize) -> Vec<u8> {
    let mut x = n as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let pad: String = (0..16 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect();
    format!(r#"{{"event_id":"{n:032x}","message":"disk","extra":{{"pad":"{pad}"}}}}"#).into_bytes()
}

/// Sends bulky events until five are refused; the statuses, and the first refusal's text and
/// Retry-After.
fn fill(server: &Server, p: &Project) -> (Vec<u16>, String, Option<String>) {
    let path = format!("/api/{}/store/", p.id);
    let mut statuses = Vec::new();
    let mut refusal = None;
    for n in 0..400 {
        let r = server.post(&path, &[("X-Sentry-Auth", &p.auth())], &bulky_event(n));
        if r.status == 503 && refusal.is_none() {
            refusal = Some((r.text(), r.header("retry-after").map(str::to_string)));
        }
        statuses.push(r.status);
        if statuses.iter().filter(|s| **s == 503).count() >= 5 {
            break;
        }
    }
    assert!(statuses.contains(&503), "the disk never filled up: {} events accepted", statuses.len());
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    let (reason, retry_after) = refusal.unwrap();
    assert_eq!(retry_after.as_deref(), Some("1"), "the 503 says when to retry: {reason}");
    (statuses, reason, retry_after)
}

/// After space returns: ingest resumes within a retry or two (as soon as the store takes what
/// waited in the spool), and everything acknowledged is stored, once.
fn resumes_with_everything_stored(server: &Server, p: &Project, disk: &Tmpfs, accepted: u64) {
    disk.remount("size=64m");
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let r = server.post(&format!("/api/{}/store/", p.id), &[("X-Sentry-Auth", &p.auth())], &bulky_event(10_000));
        if r.status == 200 || Instant::now() > deadline {
            break r;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(r.status, 200, "{}", r.text());
    let stored: u64 = server.groups(&p.slug).iter().map(|g| g["count"].as_u64().unwrap()).sum();
    assert_eq!(stored, accepted + 1, "every acknowledged event, and only those");
}

#[test]
fn a_full_disk_gives_503_and_ingest_resumes_without_restart() {
    // Database and spool share one small disk.
    let mut server = Server::with_config("[ingest]\nspool_segment_bytes = 65536\n");
    let disk = Tmpfs::mount(&server.data_dir(), "3m");
    server.launch();
    let p = server.create_project("disk");
    let (statuses, reason, _) = fill(&server, &p);
    assert!(reason.contains("No space left"), "the 503 says why: {reason}");
    let accepted = statuses.iter().filter(|s| **s == 200).count() as u64;
    resumes_with_everything_stored(&server, &p, &disk, accepted);
    eprintln!("disk full: {accepted} accepted before 503s; all stored after growing it");
    server.terminate();
}

#[test]
fn a_store_that_cannot_write_fills_the_spool_to_its_budget_then_503() {
    // The database on a small disk of its own; the spool (256 KiB at most) in the data directory.
    let db = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(db.path(), "3m");
    let mut server = Server::with_config(&format!(
        "[ingest]\nspool_max_bytes = 262144\nspool_segment_bytes = 65536\n\n[store]\nsqlite_path = \"{}\"\n",
        db.path().join("sentry.db").display()
    ));
    server.launch();
    let p = server.create_project("disk");
    let (statuses, reason, _) = fill(&server, &p);
    assert!(reason.contains("retry later"), "the spool's budget refuses: {reason}");
    assert!(server.log().contains("the store cannot write now"), "the log says why:\n{}", server.log_tail(20));
    let waiting = metric(&server, "sentry_ingest_queued_events");
    let spooled = metric(&server, "sentry_spool_bytes");
    assert!(waiting >= 10, "acknowledged events wait in the spool: {waiting}");
    assert!(spooled <= 262_144 && spooled > 262_144 - 2 * 17 * 1024, "the spool holds {spooled} bytes: full to its 256 KiB budget");
    let accepted = statuses.iter().filter(|s| **s == 200).count() as u64;
    resumes_with_everything_stored(&server, &p, &disk, accepted);
    eprintln!("store full: {accepted} accepted, {waiting} of them waited in the spool ({spooled} bytes); all stored after growing the disk");
    server.terminate();
}

#[test]
fn a_project_limit_spans_its_keys_and_spares_other_projects() {
    let mut server = Server::with_config("[projects.capped]\nrate_limit_per_minute = 3\n");
    let capped = server.create_project("capped");
    let free = server.create_project("free");
    let second = server.cli_json(&["key", "create", "--project", "capped", "--json"]);
    let second_auth = format!("Sentry sentry_key={}, sentry_version=7", second["key"].as_str().unwrap());
    server.launch();
    let send = |p: &crate::harness::Project, auth: &str, n: usize| server.post(&format!("/api/{}/store/", p.id), &[("X-Sentry-Auth", auth)], &event(n, "capped", 0));
    assert_eq!(send(&capped, &capped.auth(), 1).status, 200);
    assert_eq!(send(&capped, &second_auth, 2).status, 200);
    assert_eq!(send(&capped, &capped.auth(), 3).status, 200);
    let over = send(&capped, &second_auth, 4);
    // Unless the minute turned over between the requests, the fourth is refused for the project.
    if over.status == 429 {
        assert!(over.header("x-sentry-rate-limits").unwrap().ends_with("::project:project_quota"));
    } else {
        assert_eq!(over.status, 200);
        assert_eq!(send(&capped, &capped.auth(), 5).status, 200);
        assert_eq!(send(&capped, &capped.auth(), 6).status, 200);
        assert_eq!(send(&capped, &second_auth, 7).status, 429);
    }
    for n in 10..20 {
        assert_eq!(send(&free, &free.auth(), n).status, 200, "another project is not limited");
    }
    let bad = Server::with_config("[projects.capped]\nrate_limit_per_minute = \"many\"\n");
    let out = bad.cli(&["config", "check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("sentry.toml:4:") && err.contains("whole number"), "{err}");
}
