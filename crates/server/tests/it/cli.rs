//! The command line as an operator uses it: init and its refusal to overwrite, config errors
//! with file and line, projects and keys (a revoked key is refused), `sentry capture` for each
//! kind, and a background server that `sentry stop` stops.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Server, SENTRY_BIN};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_errors_name_the_file_line_and_what_is_valid() {
    let server = Server::with_config("\n[limits]\nmax_event_byts = 5\n");
    let out = server.cli(&["config", "check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let file = server.config_path().display().to_string();
    // The harness writes two lines, a blank one and [limits]: the bad key is on line 5.
    assert!(err.contains(&format!("{file}:5")), "{err}");
    assert!(err.contains("max_event_byts") && err.contains("max_event_bytes"), "{err}");

    let server = Server::with_config("\n[limits]\nmax_event_bytes = \"big\"\n");
    let err = stderr(&server.cli(&["config", "check"]));
    assert!(err.contains(&format!("{}:5", server.config_path().display())), "{err}");
    assert!(err.contains("whole number"), "{err}");

    // start refuses a bad config the same way, before listening.
    let out = server.cli(&["start", "--no-daemon"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&format!("{}:5", server.config_path().display())));

    let good = Server::new();
    let out = good.cli(&["config", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn init_writes_a_commented_config_once_and_prints_a_dsn() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sentry.toml");
    let run = |args: &[&str]| {
        Command::new(SENTRY_BIN)
            .arg("--config")
            .arg(&conf)
            .args(args)
            .env("SENTRY_DATA_DIR", dir.path().join("data"))
            .env("SENTRY_BIND", "127.0.0.1:9999")
            .output()
            .unwrap()
    };
    let out = run(&["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("http://") && stdout.contains("@127.0.0.1:9999/1"), "{stdout}");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.lines().filter(|l| l.starts_with('#')).count() > 10, "the config is commented");
    assert!(dir.path().join("data/sentry.db").exists());
    let again = run(&["init"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), text, "init did not touch the existing file");
    let list = run(&["project", "list", "--json"]);
    let projects: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(projects[0]["slug"], "default");
}

#[test]
fn keys_are_many_and_revocable() {
    let server = Server::start();
    let p = server.create_project("Keys Demo");
    assert_eq!(p.slug, "keys-demo");
    let second = server.cli_json(&["key", "create", "--project", "keys-demo", "--json"]);
    let second_key = second["key"].as_str().unwrap().to_string();
    let keys = server.cli_json(&["key", "list", "--project", "keys-demo", "--json"]);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let send = |key: &str, id: u32| {
        let auth = format!("Sentry sentry_key={key}, sentry_version=7");
        let body = format!(r#"{{"event_id":"{id:032x}","message":"via {key}"}}"#);
        server.post(&format!("/api/{}/store/", p.id), &[("X-Sentry-Auth", &auth)], body.as_bytes()).status
    };
    assert_eq!(send(&p.key(), 1), 200);
    assert_eq!(send(&second_key, 2), 200);
    server.cli_ok(&["key", "revoke", &second_key]);
    // The server caches keys for at most a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = 3;
    while send(&second_key, n) != 403 {
        assert!(Instant::now() < deadline, "the revoked key is still accepted");
        std::thread::sleep(Duration::from_millis(200));
        n += 1;
    }
    assert_eq!(send(&p.key(), 1000), 200, "the other key still works");
    let keys = server.cli_json(&["key", "list", "--project", "keys-demo", "--json"]);
    assert_eq!(keys.as_array().unwrap().iter().filter(|k| k["revoked"] == true).count(), 1);
    assert!(!server.cli(&["key", "revoke", "nosuchkey"]).status.success());
    let out = server.cli(&["groups", "--project", "nope"]);
    assert!(stderr(&out).contains("keys-demo"), "an unknown project lists the real ones: {}", stderr(&out));
}

#[test]
fn capture_sends_each_kind_like_a_client() {
    let server = Server::start();
    let p = server.create_project("captured");
    let capture = |args: &[&str]| {
        let mut all = vec!["capture"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--dsn", &p.dsn]);
        server.cli_ok(&all)
    };
    for ms in ["36", "40", "1200"] {
        capture(&["Query", "--field", "query=SELECT * FROM users WHERE id = 7", "--field", "engine=psycopg2", "--time-spent", ms, "--tag", "server=web-1"]);
    }
    capture(&["Exception", "--field", "type=ValueError", "--field", "value=bad input", "--tag", "logger=jobs"]);
    capture(&["Message", "--message", "disk almost full", "--level", "warning"]);
    capture(&["Deploy", "--message", "shop 1.2.4 deployed", "--field", "commit=abc123", "--time-spent", "95000"]);
    let groups = server.groups("captured");
    let find = |kind: &str| groups.iter().find(|g| g["kind"] == kind).unwrap_or_else(|| panic!("no {kind} group: {groups:#?}"));
    let q = find("query");
    assert_eq!(q["title"], "SELECT * FROM users WHERE id = ?");
    assert_eq!(q["count"], 3);
    assert_eq!(q["time_spent"]["count"], 3);
    assert_eq!(q["time_spent"]["max_ms"], 1200.0);
    assert!((q["time_spent"]["avg_ms"].as_f64().unwrap() - 425.333).abs() < 0.01);
    assert!(q["culprit"].as_str().unwrap().contains("postgresql"));
    assert_eq!(q["tags"]["server"][0]["value"], "web-1");
    assert_eq!(find("exception")["title"], "ValueError: bad input");
    let m = find("message");
    assert_eq!((m["title"].as_str(), m["level"].as_str()), (Some("disk almost full"), Some("warning")));
    let d = find("deploy");
    assert_eq!(d["time_spent"]["avg_ms"], 95000.0);
    let events = server.events_of(d);
    assert_eq!(events[0]["payload"]["extra"]["commit"], "abc123");
    // A Query without SQL is refused before anything is sent.
    let out = server.cli(&["capture", "Query", "--dsn", &p.dsn]);
    assert!(!out.status.success() && stderr(&out).contains("query="));
}

#[test]
fn background_server_starts_and_stops() {
    let server = Server::new();
    let out = server.cli(&["start"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sentry stop"), "{stdout}");
    assert_eq!(server.get("/healthz").status, 200);
    let pid: u32 = std::fs::read_to_string(server.data_dir().join("sentry.pid")).unwrap().trim().parse().unwrap();
    let again = server.cli(&["start"]);
    assert!(!again.status.success() && stderr(&again).contains("already running"));
    let out = server.cli(&["stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(std::fs::read_to_string(server.data_dir().join("sentry.log")).unwrap().contains("listening"));
    assert!(!server.cli(&["stop"]).status.success(), "stop without a server says so");
}

#[test]
fn cleanup_deletes_what_is_past_retention() {
    let server = Server::start();
    let p = server.create_project("old");
    let body = br#"{"event_id":"0000000000000000000000000000000a","message":"kept for now"}"#;
    assert_eq!(server.post(&format!("/api/{}/store/", p.id), &[("X-Sentry-Auth", &p.auth())], body).status, 200);
    // Received just now: a 1-day retention keeps it.
    let out = server.cli_ok(&["cleanup", "--days", "1"]);
    assert!(out.contains("Deleted 0 events"), "{out}");
    assert_eq!(server.groups("old").len(), 1);
    let out = server.cli_ok(&["cleanup", "--days", "0"]);
    assert!(out.contains("keep everything"), "{out}");
}

#[test]
fn first_start_without_a_config_creates_one_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sentry.toml");
    let port = crate::harness::free_port();
    let mut child = Command::new(SENTRY_BIN)
        .arg("--config")
        .arg(&conf)
        .args(["start", "--no-daemon"])
        .env("SENTRY_DATA_DIR", dir.path().join("data"))
        .env("SENTRY_BIND", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while crate::harness::try_request(addr, "GET", "/healthz", &[], b"", Duration::from_secs(1)).map(|r| r.status) .ok() != Some(200) {
        assert!(Instant::now() < deadline, "the first start never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("No config file") && stdout.contains("creating one first"), "{stdout}");
    assert!(stdout.contains(&format!("@127.0.0.1:{port}/1")), "a DSN for the default project: {stdout}");
    assert!(conf.exists(), "the config was written");
}
