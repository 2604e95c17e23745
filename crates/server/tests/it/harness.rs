//! The integration-test harness: the real `sentry` binary on a temp config (here), raw HTTP
//! (`http`), looking at groups (`groups`), child processes and the real clients (`process`), a
//! throwaway PostgreSQL (`postgres`), the notification peers: SMTP, IRC, HTTP (`peers`), and the
//! dashboard over HTTP (`web`) and in headless Chromium (`browser`). Everything is re-exported:
//! `use crate::harness::{...}`.
//!
//! ```ignore
//! let server = Server::start();                      // free port, temp data dir, waits for /healthz
//! let project = server.create_project("shop");       // `sentry project create shop --json`
//! let resp = server.post(&format!("/api/{}/store/", project.id), &[("X-Sentry-Auth", project.auth().as_str())], br#"{}"#);
//! let groups = server.groups(&project.slug);         // `sentry groups --project shop --json --status all`
//! let group = find_group(&groups, "message", "hello");
//! assert_tag(group, "level", "error");
//! ```
//!
//! Everything a test starts is stopped on drop. When a test panics, its temp directory (config,
//! data, server log) is kept and its path printed, so the state can be inspected.
#![allow(dead_code)] // each test module uses a different part

mod browser;
mod groups;
mod http;
mod incidents;
mod peers;
mod process;
mod prosody;
mod synapse;
mod web;

use std::{
    env,
    ffi::OsStr,
    fs,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

pub use browser::*;
pub use groups::*;
pub use http::*;
pub use incidents::*;
pub use peers::*;
pub use testkit::{Postgres, Redis};
pub use process::*;
pub use prosody::*;
pub use synapse::*;
pub use web::*;

/// The `sentry` binary under test.
pub const SENTRY_BIN: &str = env!("CARGO_BIN_EXE_sentry");

/// How long `Server::start` waits for `/healthz` to answer 200.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client scenario may run before it is killed.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// The repository root (`crates/server/../..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// A loopback port that was free a moment ago (bound to 127.0.0.1:0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// One `sentry` server with its own config file, data directory and port.
pub struct Server {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// A project as `sentry project create NAME --json` prints it.
#[derive(Debug, Clone)]
pub struct Project {
    pub id: u64,
    pub slug: String,
    pub dsn: String,
}

impl Project {
    /// The public key of the DSN (`http://KEY@host/ID`).
    pub fn key(&self) -> String {
        let rest = self
            .dsn
            .split_once("://")
            .map_or(self.dsn.as_str(), |(_, r)| r);
        rest.split('@')
            .next()
            .unwrap_or_default()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// The DSN with a legacy secret key added (`http://KEY:SECRET@host/ID`), as old raven
    /// set-ups have it. The server accepts a secret but does not require one.
    pub fn dsn_with_secret(&self, secret: &str) -> String {
        let key = self.key();
        self.dsn
            .replacen(&format!("{key}@"), &format!("{key}:{secret}@"), 1)
    }

    /// An `X-Sentry-Auth` header value for this project's key.
    pub fn auth(&self) -> String {
        format!(
            "Sentry sentry_key={}, sentry_version=7, sentry_client=harness/1.0",
            self.key()
        )
    }
}

impl Server {
    /// Writes a config (free port, temp data dir) without starting the server: for CLI tests.
    pub fn new() -> Server {
        Server::with_config("")
    }

    /// Like [`Server::new`], with `extra` TOML appended to the config file.
    pub fn with_config(extra: &str) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("sentry-it-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let data_dir = dir.path().join("data");
        fs::create_dir_all(&data_dir).expect("creating the data dir");
        let config = dir.path().join("sentry.toml");
        let text = format!(
            "bind = \"127.0.0.1:{port}\"\ndata_dir = {}\n{extra}\n",
            toml_string(&data_dir.to_string_lossy())
        );
        fs::write(&config, text).expect("writing the config");
        Server {
            dir,
            config,
            port,
            child: None,
        }
    }

    /// Starts a server on a fresh config and waits until `/healthz` answers 200.
    pub fn start() -> Server {
        Server::start_with_config("")
    }

    /// [`Server::start`] with `extra` TOML appended to the config file.
    pub fn start_with_config(extra: &str) -> Server {
        let mut server = Server::with_config(extra);
        server.launch();
        server
    }

    /// Starts `sentry start --no-daemon` on this config and waits for `/healthz`.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("server log");
        let mut cmd = self.command();
        cmd.args(["start", "--no-daemon"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {SENTRY_BIN}: {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("try_wait"))
            {
                self.child = None;
                panic!(
                    "sentry exited during start-up with {status}\n{}",
                    self.describe()
                );
            }
            if let Ok(resp) = try_request(
                self.addr(),
                "GET",
                "/healthz",
                &[],
                b"",
                Duration::from_secs(2),
            ) && resp.status == 200
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "sentry did not answer GET /healthz with 200 within {START_TIMEOUT:?}\n{}",
                    self.describe()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => c.try_wait().expect("try_wait").is_none(),
        }
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (up to 20 s) for a graceful exit. Returns the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server not running");
        send_signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sentry did not exit within 20 s of SIGTERM\n{}",
                    self.describe()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server if it runs (SIGTERM), then starts it again on the same config, data
    /// directory and port (so DSNs stay valid).
    pub fn restart(&mut self) {
        if self.is_running() {
            self.terminate();
        }
        self.child = None;
        self.launch();
    }

    /// The process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The temp directory holding the config, the data dir and the server log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Everything the server printed so far (stdout and stderr, all runs).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last `max` bytes of the server log, for panic messages.
    pub fn log_tail(&self, max: usize) -> String {
        let log = self.log();
        let mut start = log.len().saturating_sub(max);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        log[start..].to_string()
    }

    fn describe(&self) -> String {
        format!(
            "--- config {}:\n{}--- server log (tail):\n{}",
            self.config.display(),
            fs::read_to_string(&self.config).unwrap_or_default(),
            self.log_tail(8000)
        )
    }

    /// `sentry --config C` with the environment cleaned of `SENTRY_*` variables (the binary
    /// reads config overrides from them).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(SENTRY_BIN);
        for (key, _) in env::vars_os() {
            if key.to_string_lossy().starts_with("SENTRY_") {
                cmd.env_remove(key);
            }
        }
        cmd.arg("--config").arg(&self.config);
        cmd
    }

    /// Runs `sentry --config C ARGS...` to completion (works whether or not the server runs).
    pub fn cli<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        let mut cmd = self.command();
        cmd.args(args).stdin(Stdio::null());
        run_with_timeout(&mut cmd, Duration::from_secs(60))
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn cli_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let out = self.cli(args);
        if !out.status.success() {
            panic!(
                "`sentry {}` failed with {}\n{}\n{}",
                show_args(args),
                out.status,
                show_output(&out),
                self.describe()
            );
        }
        String::from_utf8(out.stdout).expect("CLI stdout is not UTF-8")
    }

    /// Runs a CLI command that must succeed and print JSON.
    pub fn cli_json<S: AsRef<OsStr>>(&self, args: &[S]) -> Value {
        let stdout = self.cli_ok(args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "`sentry {}` printed no JSON ({e}):\n{stdout}",
                show_args(args)
            )
        })
    }

    /// `sentry project create NAME --json`
    pub fn create_project(&self, name: &str) -> Project {
        let v = self.cli_json(&["project", "create", name, "--json"]);
        Project {
            id: as_u64(&v["id"]).unwrap_or_else(|| panic!("project without a numeric id: {v}")),
            slug: v["slug"]
                .as_str()
                .unwrap_or_else(|| panic!("project without a slug: {v}"))
                .to_string(),
            dsn: v["dsn"]
                .as_str()
                .unwrap_or_else(|| panic!("project without a dsn: {v}"))
                .to_string(),
        }
    }

    /// All groups of a project, any status: `sentry groups --project SLUG --json --status all`.
    pub fn groups(&self, slug: &str) -> Vec<Value> {
        self.groups_with(slug, &["--status", "all", "--limit", "1000"])
    }

    /// `sentry groups --project SLUG --json EXTRA...`
    pub fn groups_with(&self, slug: &str, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["groups", "--project", slug, "--json"];
        args.extend_from_slice(extra);
        into_array(self.cli_json(&args))
    }

    /// All events of a group: `sentry events --group ID --json`.
    pub fn events(&self, group_id: u64) -> Vec<Value> {
        let id = group_id.to_string();
        into_array(self.cli_json(&["events", "--group", &id, "--json", "--limit", "1000"]))
    }

    /// The events of a group as returned by `groups` (takes its `id`).
    pub fn events_of(&self, group: &Value) -> Vec<Value> {
        self.events(as_u64(&group["id"]).unwrap_or_else(|| panic!("group without an id: {group}")))
    }

    /// A raw HTTP/1.1 request to this server (`Connection: close`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http_request(self.addr(), method, path, headers, body)
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.request("POST", path, headers, body)
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "kept the failed test's server dir: {}",
                self.dir.path().display()
            );
        }
    }
}

#[allow(unsafe_code)]
fn send_signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own, not yet reaped child.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

pub fn into_array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => panic!("expected a JSON array, got {other}"),
    }
}

fn show_args<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// stdout and stderr of a finished process, for panic messages.
pub fn show_output(out: &Output) -> String {
    format!(
        "--- stdout:\n{}\n--- stderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
