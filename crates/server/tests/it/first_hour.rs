//! A newcomer's first hour with the command line: a background start that fails says so, one
//! data directory serves one server, the first start with `--bind` prints the right DSN once,
//! `localhost:PORT` is an address, `user create` without a terminal points to
//! `--password-stdin`, `sentry groups` prints an aligned table, and a background start shows
//! the same working setup link on the terminal and in its log, and `config check` warns about
//! slugs that name no project and lists every valid section, and `user passwd` sets a new
//! password and ends the user's sessions.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{free_port, run_with_timeout, try_request, Server, ADMIN_EMAIL, ADMIN_PASSWORD, SENTRY_BIN};

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Waits until `GET /healthz` on `addr` answers 200, or panics if `child` exits or 30 s pass.
fn wait_healthy(child: &mut Child, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while try_request(addr, "GET", "/healthz", &[], b"", Duration::from_secs(1)).map(|r| r.status).ok() != Some(200) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited with {status} before answering");
        }
        assert!(Instant::now() < deadline, "the server never answered on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn background_start_on_a_taken_port_fails_and_says_why() {
    let server = Server::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let started = Instant::now();
    let out = server.cli(&["start", "--bind", &format!("127.0.0.1:{port}")]);
    let said = text(&out);
    assert!(!out.status.success(), "start succeeded on a taken port: {said}");
    assert!(!said.contains("is running in the background"), "{said}");
    assert!(said.contains("Address already in use") && said.contains(&format!("127.0.0.1:{port}")), "{said}");
    assert!(started.elapsed() < Duration::from_secs(20), "it waited for nothing");
    let stop = server.cli(&["stop"]);
    assert!(!stop.status.success());
    assert!(text(&stop).contains("not running"), "{}", text(&stop));
    drop(taken);
}

#[test]
fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let server = Server::start();
    let pid = server.pid().unwrap();
    let started = Instant::now();
    let out = server.cli(&["start", "--no-daemon", "--bind", &format!("127.0.0.1:{}", free_port())]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(started.elapsed() < Duration::from_secs(10), "it did not refuse at once");
    assert!(said.contains(&format!("another Sentry (pid {pid})")) && said.contains("data directory"), "{said}");
    assert!(said.contains(&server.data_dir().display().to_string()), "{said}");
    // In the background, the same refusal reaches the terminal.
    let out = server.cli(&["start", "--bind", &format!("127.0.0.1:{}", free_port())]);
    assert!(!out.status.success() && text(&out).contains("another Sentry"), "{}", text(&out));
    assert_eq!(server.get("/healthz").status, 200, "the first server still runs");
}

#[test]
fn first_start_with_bind_prints_the_dsn_once_on_that_port() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sentry.toml");
    let port = free_port();
    let command = || {
        let mut cmd = Command::new(SENTRY_BIN);
        cmd.arg("--config").arg(&conf).env("SENTRY_DATA_DIR", dir.path().join("data")).env_remove("SENTRY_BIND");
        cmd
    };
    let mut child = command()
        .args(["start", "--no-daemon", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_healthy(&mut child, SocketAddr::from(([127, 0, 0, 1], port)));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("@127.0.0.1:").count(), 1, "one DSN: {stdout}");
    assert!(stdout.contains(&format!("@127.0.0.1:{port}/1")), "{stdout}");
    assert_eq!(stdout.matches("Data ").count(), 1, "the data directory is named once: {stdout}");
    assert!(std::fs::read_to_string(&conf).unwrap().contains(&format!("bind = \"127.0.0.1:{port}\"")));

    // A user created afterwards is told the address the server really has.
    let mut cmd = command();
    cmd.args(["user", "create", "ann@example.com", "--admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"a long enough password 42\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("http://127.0.0.1:{port}/login")), "{}", text(&out));
}

#[test]
fn localhost_is_an_address_to_bind() {
    let server = Server::new();
    let port = free_port();
    let mut child = server
        .command()
        .args(["start", "--no-daemon", "--bind", &format!("localhost:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_healthy(&mut child, SocketAddr::from(([127, 0, 0, 1], port)));
    let _ = child.kill();
    let _ = child.wait();
    let out = server.cli(&["start", "--no-daemon", "--bind", "no such host:1"]);
    assert!(!out.status.success() && text(&out).contains("HOST:PORT"), "{}", text(&out));
}

#[test]
fn user_create_without_a_terminal_points_to_password_stdin() {
    let server = Server::new();
    let mut cmd = server.command();
    cmd.args(["user", "create", "bob@example.com"]).stdin(Stdio::null());
    let out = run_with_timeout(&mut cmd, Duration::from_secs(30));
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("not a terminal") && said.contains("--password-stdin"), "{said}");
    assert!(!said.contains("No such device"), "{said}");
    assert!(server.cli_ok(&["user", "list"]).contains("No users yet"));
}

#[test]
fn groups_print_a_table_whose_rows_line_up_with_the_header() {
    let server = Server::start();
    let p = server.create_project("tables");
    let send = |body: &str| {
        assert_eq!(server.post(&format!("/api/{}/store/", p.id), &[("X-Sentry-Auth", &p.auth())], body.as_bytes()).status, 200);
    };
    send(r#"{"event_id":"00000000000000000000000000000001","message":"short","level":"info"}"#);
    // A query has a culprit (the database) and a duration.
    server.cli_ok(&["capture", "Query", "--dsn", &p.dsn, "--field", "query=SELECT 1", "--field", "engine=psycopg2", "--time-spent", "36"]);
    for n in 3..15 {
        send(&format!(r#"{{"event_id":"{n:032x}","message":"many times"}}"#));
    }
    let out = server.cli_ok(&["groups", "--project", "tables"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    let names = ["ID", "COUNT", "KIND", "LEVEL", "AVG MS", "TITLE"];
    let offsets: Vec<usize> = names.iter().map(|n| header.find(n).unwrap_or_else(|| panic!("no {n} in {header:?}"))).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{header:?}");
    let title = *offsets.last().unwrap();
    let (mut rows, mut culprits) = (0, 0);
    for line in lines {
        let chars: Vec<char> = line.chars().collect();
        if line.starts_with(' ') {
            // A culprit, under the title.
            assert!(chars[..title].iter().all(|c| *c == ' ') && chars[title] != ' ', "{line:?} in\n{out}");
            culprits += 1;
            continue;
        }
        rows += 1;
        for (i, &at) in offsets.iter().enumerate() {
            if names[i] == "AVG MS" {
                continue; // empty for groups without a duration
            }
            assert!(chars[at] != ' ' && (at == 0 || chars[at - 1] == ' '), "column {} of {line:?} is not at {at}:\n{out}", names[i]);
        }
    }
    assert_eq!(rows, 3, "{out}");
    assert!(culprits >= 1, "the query's culprit: {out}");
    assert!(out.contains("36.0"), "the query's average duration: {out}");

    // Event timestamps always have three digits of milliseconds.
    let groups = server.groups("tables");
    let short = groups.iter().find(|g| g["title"] == "short").unwrap();
    let events = server.cli_ok(&["events", "--group", &short["id"].to_string()]);
    let stamp = events.split("  ").nth(1).unwrap_or_default();
    assert!(stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.', "{events}");
    assert!(stamp[20..23].bytes().all(|b| b.is_ascii_digit()), "{events}");
}

/// Stops a background server when the test ends, even when it fails.
struct StopOnDrop<'a>(&'a Server);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.cli(&["stop"]);
    }
}

/// The setup links (`/setup/…` paths) in `text`, in order.
fn setup_paths(server: &Server, text: &str) -> Vec<String> {
    text.lines().filter_map(|l| l.trim().strip_prefix(&server.url("")).filter(|p| p.starts_with("/setup/")).map(str::to_string)).collect()
}

#[test]
fn background_start_shows_one_setup_link_that_works() {
    let server = Server::new();
    let log_path = server.data_dir().join("sentry.log");
    for start in ["first", "after a restart"] {
        let out = server.cli(&["start"]);
        let _stop = StopOnDrop(&server);
        assert!(out.status.success(), "{}", text(&out));
        let shown = setup_paths(&server, &String::from_utf8_lossy(&out.stdout));
        assert_eq!(shown.len(), 1, "{start}: the terminal shows one setup link:\n{}", text(&out));
        let logged = setup_paths(&server, &std::fs::read_to_string(&log_path).unwrap());
        assert_eq!(logged.last(), shown.first(), "{start}: the newest link in the log is the one on the terminal");
        let page = server.get(&shown[0]);
        assert_eq!(page.status, 200, "{start}");
        assert!(page.text().contains("setup-form") && !page.text().contains("used or has expired"), "{start}: {}", page.text());
        let stop = server.cli(&["stop"]);
        assert!(stop.status.success(), "{}", text(&stop));
    }
}

#[test]
fn config_check_warns_about_slugs_that_name_no_project() {
    // The harness writes two lines first: [projects.shop] is on line 4, the rule's project on 8.
    let mut server = Server::with_config(
        "\n[projects.shop]\nrate_limit_per_minute = 100\n\n[[rules]]\nproject = \"shp\"\nwhen = \"new_group\"\nactions = [\"webhook\"]\n\n\
         [plugins.webhook]\nurl = \"http://127.0.0.1:9/hook\"\n",
    );
    let file = server.config_path().display().to_string();
    // No data yet: nothing to compare with, and it says so.
    let out = server.cli(&["config", "check"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("project slugs not checked"), "{}", text(&out));

    server.launch();
    let out = server.cli(&["config", "check"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "a warning does not fail the check: {}", text(&out));
    assert!(
        err.contains(&format!("warning: {file}:4: [projects.shop] names no project; the projects are: default")),
        "{err}"
    );
    assert!(
        err.contains(&format!("warning: {file}:8: [[rules]] project = \"shp\" names no project; the projects are: default")),
        "{err}"
    );

    // Once the project exists, the warning about it goes away.
    server.create_project("shop");
    let err = String::from_utf8_lossy(&server.cli(&["config", "check"]).stderr).into_owned();
    assert!(!err.contains("[projects.shop]") && err.contains("project = \"shp\""), "{err}");
    assert!(err.contains("the projects are: default, shop"), "{err}");
}

#[test]
fn an_unknown_section_lists_every_valid_section() {
    let server = Server::with_config("\n[projcts.shop]\nslices = [\"level\"]\n");
    let out = server.cli(&["config", "check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains(&format!("{}:4: unknown section [projcts]", server.config_path().display())), "{err}");
    for section in ["[store]", "[limits]", "[ingest]", "[rate_limits]", "[retention]", "[notify]", "[projects.<slug>]", "[plugins.<name>]", "[[rules]]"] {
        assert!(err.contains(section), "{section} is missing from: {err}");
    }
}

/// `sentry user passwd EMAIL --password-stdin` with `password` on standard input.
fn passwd(server: &Server, email: &str, password: &str) -> std::process::Output {
    let mut cmd = server.command();
    cmd.args(["user", "passwd", email, "--password-stdin"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn user_passwd_sets_a_new_password_and_ends_the_sessions() {
    let server = Server::start();
    let old_session = server.admin_session();
    assert_eq!(server.get_as(&old_session, "/dashboard").status, 200);

    // Refusals change nothing.
    let out = passwd(&server, "nobody@example.com", "a new password");
    assert!(!out.status.success() && text(&out).contains("no user nobody@example.com"), "{}", text(&out));
    let out = passwd(&server, ADMIN_EMAIL, "short");
    assert!(!out.status.success() && text(&out).contains("the password was not changed"), "{}", text(&out));
    let mut cmd = server.command();
    cmd.args(["user", "passwd", ADMIN_EMAIL]).stdin(Stdio::null());
    let out = run_with_timeout(&mut cmd, Duration::from_secs(30));
    assert!(!out.status.success() && text(&out).contains("sentry user passwd admin@example.com --password-stdin"), "{}", text(&out));
    assert_eq!(server.get_as(&old_session, "/dashboard").status, 200, "a refused change keeps the session");

    let out = passwd(&server, "Admin@Example.com", "a new password");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(ADMIN_EMAIL), "{}", text(&out));
    assert!(server.login(ADMIN_EMAIL, ADMIN_PASSWORD).is_err(), "the old password still logs in");
    assert_ne!(server.get_as(&old_session, "/dashboard").status, 200, "the old session still works");
    let new_session = server.login(ADMIN_EMAIL, "a new password").unwrap_or_else(|r| panic!("{} {}", r.status, r.text()));
    assert_eq!(server.get_as(&new_session, "/dashboard").status, 200);
}
