//! The files of `dist/`, each used as an operator would: the systemd unit checked by
//! `systemd-analyze verify` and its command run as the unit runs it; the nginx example started
//! with a throwaway certificate, in front of a real server, with the real SDK and logins
//! through it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

fn dist(name: &str) -> String {
    std::fs::read_to_string(workspace_root().join("dist").join(name)).unwrap_or_else(|e| panic!("dist/{name}: {e}"))
}

/// A program from PATH or Debian's sbin directories.
fn program(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/sbin", "/sbin", "/usr/bin"]) {
        let path = Path::new(dir).join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!("{name} is not installed (scripts/test.sh installs it)")
}

/// Waits until `/healthz` on `port` answers 200.
fn wait_healthy(port: u16, child: &mut Child) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited with {status}");
        }
        if try_request(addr, "GET", "/healthz", &[], b"", Duration::from_secs(2)).is_ok_and(|r| r.status == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no /healthz on {port}");
}

#[test]
fn the_systemd_unit_is_valid_and_runs_the_server_as_it_says() {
    let unit = dist("sentry.service");
    let dir = tempfile::tempdir().unwrap();
    // Verified with this build's binary where the unit expects the installed one.
    assert!(unit.contains("ExecStart=/usr/local/bin/sentry "), "{unit}");
    let here = unit.replace("/usr/local/bin/sentry", SENTRY_BIN);
    let path = dir.path().join("sentry.service");
    std::fs::write(&path, &here).unwrap();
    let out = run_with_timeout(Command::new(program("systemd-analyze")).args(["verify", "--man=no"]).arg(&path), CLIENT_TIMEOUT);
    let said: Vec<String> = String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.contains("sentry.service")).map(String::from).collect();
    assert!(out.status.success() && said.is_empty(), "systemd-analyze verify:\n{}", show_output(&out));

    // Its command, with its environment, in a directory standing for /var/lib/sentry.
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let here = here.replace("/var/lib/sentry", &state.to_string_lossy());
    let value = |key: &'static str| here.lines().filter_map(move |l| l.strip_prefix(key)).map(str::trim);
    let exec: Vec<&str> = value("ExecStart=").next().unwrap().split_whitespace().collect();
    let port = free_port();
    let mut cmd = clean_command(exec[0]);
    cmd.args(&exec[1..]).current_dir(value("WorkingDirectory=").next().unwrap());
    for pair in value("Environment=") {
        let (k, v) = pair.split_once('=').unwrap();
        cmd.env(k, v);
    }
    cmd.env("SENTRY_BIND", format!("127.0.0.1:{port}")).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    wait_healthy(port, &mut child);
    assert!(state.join("sentry.toml").is_file(), "the first start writes its config where SENTRY_CONF says");
    assert!(state.join("data").join("sentry.db").is_file(), "the data is where SENTRY_DATA_DIR says");
    // systemd stops it with its KillSignal and waits TimeoutStopSec.
    assert!(here.contains("KillSignal=SIGTERM"));
    let timeout: u64 = value("TimeoutStopSec=").next().unwrap().parse().unwrap();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running {timeout} s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "stopped with {status}");
}

/// nginx started from `dist/nginx.conf` in front of `upstream`, on loopback ports, with a
/// throwaway certificate; stopped when dropped.
struct Nginx {
    dir: tempfile::TempDir,
    child: Child,
    http: u16,
    https: u16,
}

impl Nginx {
    fn start(upstream: u16) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        testkit::make_certificates(d);
        let (http, https) = (free_port(), free_port());
        let example = dist("nginx.conf");
        for expected in ["server 127.0.0.1:9000;", "listen 80;", "listen 443 ssl;", "proxy_buffering off;", "X-Forwarded-For"] {
            assert!(example.contains(expected), "dist/nginx.conf has no {expected:?}");
        }
        // Only the ports, the certificate and where the server is are changed; IPv6 may not
        // exist here.
        let site: String = example
            .replace("server 127.0.0.1:9000;", &format!("server 127.0.0.1:{upstream};"))
            .replace("listen 80;", &format!("listen 127.0.0.1:{http};"))
            .replace("listen 443 ssl;", &format!("listen 127.0.0.1:{https} ssl;"))
            .replace("/etc/letsencrypt/live/sentry.example.com/fullchain.pem", &d.join("server.crt").to_string_lossy())
            .replace("/etc/letsencrypt/live/sentry.example.com/privkey.pem", &d.join("server.key").to_string_lossy())
            .lines()
            .filter(|l| !l.trim_start().starts_with("listen [::]"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(d.join("sentry.conf"), site).unwrap();
        let tmp = d.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o777)).unwrap();
        let p = |name: &str| d.join(name).to_string_lossy().into_owned();
        let main = format!(
            "pid {pid};\nerror_log {err} warn;\nevents {{}}\nhttp {{\n  access_log {access};\n  client_body_temp_path {t}/body;\n  proxy_temp_path {t}/proxy;\n  \
             fastcgi_temp_path {t}/fastcgi;\n  uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;\n  include {site};\n}}\n",
            pid = p("nginx.pid"),
            err = p("error.log"),
            access = p("access.log"),
            t = tmp.to_string_lossy(),
            site = p("sentry.conf"),
        );
        std::fs::write(d.join("nginx.conf"), main).unwrap();
        let nginx = program("nginx");
        let args = |cmd: &mut Command| {
            cmd.arg("-p").arg(d).arg("-c").arg(d.join("nginx.conf")).arg("-e").arg(d.join("error.log"));
        };
        let mut check = Command::new(&nginx);
        args(&mut check);
        let out = run_with_timeout(check.arg("-t"), CLIENT_TIMEOUT);
        assert!(out.status.success(), "nginx -t:\n{}", show_output(&out));
        let mut cmd = Command::new(&nginx);
        args(&mut cmd);
        let child = cmd.args(["-g", "daemon off;"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", https)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen:\n{}", std::fs::read_to_string(d.join("error.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { dir, child, http, https }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_nginx_example_serves_sdks_logins_and_live_pages_over_tls() {
    let server = Server::start_with_config("trusted_proxies = \"127.0.0.1\"\n");
    let project = server.create_project("proxied");
    let (email, password) = ("owner@example.com", "a long password");
    let mut create = server.command();
    create.args(["user", "create", email, "--admin", "--password-stdin"]).stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = create.spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let nginx = Nginx::start(server.port());
    let https = format!("https://127.0.0.1:{}", nginx.https);
    let dsn = format!("https://{}@127.0.0.1:{}/{}", project.key(), nginx.https, project.id);
    let mut cmd = clean_command(python());
    cmd.arg(workspace_root().join("tests/clients/python/through_proxy.py"))
        .arg(&https)
        .arg(format!("http://127.0.0.1:{}", nginx.http))
        .arg(nginx.dir.path().join("ca.crt"))
        .arg(&dsn)
        .args([email, password, &project.slug])
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = run_ok(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let facts: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FACTS "))
        .map(|j| serde_json::from_str(j).unwrap())
        .unwrap_or_else(|| panic!("no FACTS:\n{}", show_output(&out)));
    // Plain HTTP goes to https.
    assert_eq!(facts["http_status"], 301, "{facts}");
    let location = facts["http_location"].as_str().unwrap();
    assert!(location.starts_with("https://") && location.ends_with("/login"), "{facts}");
    // Ten wrong passwords from one address, then that address waits; the owner, from
    // another address (as X-Forwarded-For tells through the proxy), still logs in.
    let wrong: Vec<u64> = facts["wrong_logins"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
    assert!(wrong[..10].iter().all(|s| *s == 401), "{facts}");
    assert_eq!(wrong[10], 429, "{facts}");
    assert_eq!(facts["right_login"], 303, "{facts}");
    // The SDK's event arrived through TLS and the proxy, and the live page heard of it
    // (server-sent events, not held back by the proxy's buffering).
    assert_eq!(facts["sdk_errors"], serde_json::json!([]), "{facts}");
    assert!(facts["live_after_seconds"].as_f64().is_some(), "no live update through the proxy: {facts}");
    let groups = server.groups("proxied");
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["title"], "sent through the proxy");
}
