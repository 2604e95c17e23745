//! The integration-test harness: the real `sentry` binary on a temp config, raw HTTP, a throwaway
//! PostgreSQL, and the paths of the real clients (Python venvs, the `rust-client` binary).
//!
//! ```ignore
//! let server = Server::start();                      // free port, temp data dir, waits for /healthz
//! let project = server.create_project("shop");       // `sentry project create shop --json`
//! let resp = server.post(&format!("/api/{}/store/", project.id), &[("X-Sentry-Auth", &project.auth())], br#"{}"#);
//! let groups = server.groups(&project.slug);         // `sentry groups --project shop --json --status all`
//! let group = find_group(&groups, "message", "hello");
//! assert_tag(group, "level", "error");
//! ```
//!
//! Everything a test starts is stopped on drop. When a test panics, its temp directory (config,
//! data, server log) is kept and its path printed, so the state can be inspected.
#![allow(dead_code)] // each test module uses a different part

use std::{
    env,
    ffi::OsStr,
    fs,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// The `sentry` binary under test.
pub const SENTRY_BIN: &str = env!("CARGO_BIN_EXE_sentry");

/// How long `Server::start` waits for `/healthz` to answer 200.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client scenario may run before it is killed.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// The repository root (`crates/server/../..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// A loopback port that was free a moment ago (bound to 127.0.0.1:0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("binding 127.0.0.1:0").port()
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
        let rest = self.dsn.split_once("://").map_or(self.dsn.as_str(), |(_, r)| r);
        rest.split('@').next().unwrap_or_default().split(':').next().unwrap_or_default().to_string()
    }

    /// The DSN with a legacy secret key added (`http://KEY:SECRET@host/ID`), as old raven
    /// set-ups have it. The server accepts a secret but does not require one.
    pub fn dsn_with_secret(&self, secret: &str) -> String {
        let key = self.key();
        self.dsn.replacen(&format!("{key}@"), &format!("{key}:{secret}@"), 1)
    }

    /// An `X-Sentry-Auth` header value for this project's key.
    pub fn auth(&self) -> String {
        format!("Sentry sentry_key={}, sentry_version=7, sentry_client=harness/1.0", self.key())
    }
}

impl Server {
    /// Writes a config (free port, temp data dir) without starting the server: for CLI tests.
    pub fn new() -> Server {
        Server::with_config("")
    }

    /// Like [`Server::new`], with `extra` TOML appended to the config file.
    pub fn with_config(extra: &str) -> Server {
        let dir = tempfile::Builder::new().prefix("sentry-it-").tempdir().expect("temp dir");
        let port = free_port();
        let data_dir = dir.path().join("data");
        fs::create_dir_all(&data_dir).expect("creating the data dir");
        let config = dir.path().join("sentry.toml");
        let text = format!(
            "bind = \"127.0.0.1:{port}\"\ndata_dir = {}\n{extra}\n",
            toml_string(&data_dir.to_string_lossy())
        );
        fs::write(&config, text).expect("writing the config");
        Server { dir, config, port, child: None }
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
        let log = fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("server log");
        let mut cmd = self.command();
        cmd.args(["start", "--no-daemon"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {SENTRY_BIN}: {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().expect("try_wait")) {
                self.child = None;
                panic!("sentry exited during start-up with {status}\n{}", self.describe());
            }
            if let Ok(resp) = try_request(self.addr(), "GET", "/healthz", &[], b"", Duration::from_secs(2)) {
                if resp.status == 200 {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("sentry did not answer GET /healthz with 200 within {START_TIMEOUT:?}\n{}", self.describe());
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
                panic!("sentry did not exit within 20 s of SIGTERM\n{}", self.describe());
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
            panic!("`sentry {}` failed with {}\n{}\n{}", show_args(args), out.status, show_output(&out), self.describe());
        }
        String::from_utf8(out.stdout).expect("CLI stdout is not UTF-8")
    }

    /// Runs a CLI command that must succeed and print JSON.
    pub fn cli_json<S: AsRef<OsStr>>(&self, args: &[S]) -> Value {
        let stdout = self.cli_ok(args);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("`sentry {}` printed no JSON ({e}):\n{stdout}", show_args(args)))
    }

    /// `sentry project create NAME --json`
    pub fn create_project(&self, name: &str) -> Project {
        let v = self.cli_json(&["project", "create", name, "--json"]);
        Project {
            id: as_u64(&v["id"]).unwrap_or_else(|| panic!("project without a numeric id: {v}")),
            slug: v["slug"].as_str().unwrap_or_else(|| panic!("project without a slug: {v}")).to_string(),
            dsn: v["dsn"].as_str().unwrap_or_else(|| panic!("project without a dsn: {v}")).to_string(),
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
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
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
            eprintln!("kept the failed test's server dir: {}", self.dir.path().display());
        }
    }
}

#[allow(unsafe_code)]
fn send_signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own, not yet reaped child.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn into_array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => panic!("expected a JSON array, got {other}"),
    }
}

fn show_args<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
}

/// stdout and stderr of a finished process, for panic messages.
pub fn show_output(out: &Output) -> String {
    format!(
        "--- stdout:\n{}\n--- stderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------------

/// A response read off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names as sent; look them up with [`Response::header`].
    pub headers: Vec<(String, String)>,
    /// The body, with chunked transfer coding undone.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (showing the body) when it isn't.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): status {} body {:?}", self.status, self.text()))
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the whole response.
///
/// `Host`, `Content-Length` and `Connection` are added unless `headers` has them (so a test can
/// send a wrong length, or `Transfer-Encoding: chunked` with a body it framed itself). Panics on
/// I/O errors and after a 30 s timeout.
pub fn http_request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    try_request(addr, method, path, headers, body, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"))
}

/// [`http_request`] returning I/O errors (connection refused, timeout, bad framing).
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    if !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    if !has("content-length") && !has("transfer-encoding") && (!body.is_empty() || method != "GET") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    // The server may answer (say 413) and close before it read the whole body: then the write
    // fails, but the response is still there to read.
    let written = stream.write_all(&request).and_then(|()| stream.flush());
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    match (parse_response(&raw, method), written, read) {
        (Ok(resp), _, _) => Ok(resp),
        (Err(_), Err(e), _) | (Err(_), Ok(()), Err(e)) => Err(e),
        (Err(e), Ok(()), Ok(_)) => Err(e),
    }
}

fn parse_response(raw: &[u8], method: &str) -> std::io::Result<Response> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad HTTP response: {what}: {:?}", String::from_utf8_lossy(&raw[..raw.len().min(400)])));
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let header = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let body = if method == "HEAD" || status == 204 || status == 304 {
        Vec::new()
    } else if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        dechunk(rest).ok_or_else(|| bad("chunked body"))?
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if rest.len() < len {
            return Err(bad("body shorter than Content-Length"));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Looking at groups
// ---------------------------------------------------------------------------------------------

/// One line per group (`#id kind ×count level "title" culprit`), for assertion messages.
pub fn summary(groups: &[Value]) -> String {
    groups
        .iter()
        .map(|g| {
            format!(
                "  #{} {} x{} {} {:?} culprit={:?}",
                g["id"], g["kind"].as_str().unwrap_or("?"), g["count"], g["level"].as_str().unwrap_or("?"),
                g["title"].as_str().unwrap_or("?"), g["culprit"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The groups of one kind.
pub fn groups_of_kind<'a>(groups: &'a [Value], kind: &str) -> Vec<&'a Value> {
    groups.iter().filter(|g| g["kind"] == kind).collect()
}

/// The only group of `kind` whose title contains `needle`; panics listing all groups otherwise.
pub fn find_group<'a>(groups: &'a [Value], kind: &str, needle: &str) -> &'a Value {
    let found: Vec<&Value> = groups
        .iter()
        .filter(|g| g["kind"] == kind && g["title"].as_str().is_some_and(|t| t.contains(needle)))
        .collect();
    match found.as_slice() {
        [one] => one,
        [] => panic!("no {kind} group with {needle:?} in its title; groups:\n{}", summary(groups)),
        _ => panic!("{} {kind} groups with {needle:?} in their title; groups:\n{}", found.len(), summary(groups)),
    }
}

/// A group's `count`.
pub fn count(group: &Value) -> u64 {
    as_u64(&group["count"]).unwrap_or_else(|| panic!("group without a count: {group}"))
}

/// The values (with counts) of one tag key in a group's `tags`.
pub fn tag_values(group: &Value, key: &str) -> Vec<(String, u64)> {
    group["tags"][key]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| (v["value"].as_str().unwrap_or_default().to_string(), as_u64(&v["count"]).unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that the group's tag `key` has the value `value` (among others, maybe).
#[track_caller]
pub fn assert_tag(group: &Value, key: &str, value: &str) {
    let values = tag_values(group, key);
    assert!(
        values.iter().any(|(v, _)| v == value),
        "group {:?}: tag {key:?} should have value {value:?}, has {values:?}; all tags: {}",
        group["title"],
        group["tags"]
    );
}

/// Asserts that the group's tag `key` has exactly these values, each seen `count` times.
#[track_caller]
pub fn assert_tag_counts(group: &Value, key: &str, expected: &[(&str, u64)]) {
    let mut values = tag_values(group, key);
    values.sort();
    let mut expected: Vec<(String, u64)> = expected.iter().map(|(v, n)| (v.to_string(), *n)).collect();
    expected.sort();
    assert_eq!(values, expected, "group {:?}: tag {key:?}; all tags: {}", group["title"], group["tags"]);
}

/// The `[k, v]` pairs of an event's `tags` as a lookup.
pub fn event_tag<'a>(event: &'a Value, key: &str) -> Option<&'a str> {
    event["tags"].as_array()?.iter().find(|kv| kv[0] == key).and_then(|kv| kv[1].as_str())
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A command with a clean environment: only PATH, HOME, LANG and TZ survive (no `SENTRY_*`,
/// no proxies, nothing from the developer's shell that a client library would pick up).
pub fn clean_command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for key in ["PATH", "HOME", "TZ"] {
        if let Some(v) = env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.env("LANG", "C.UTF-8");
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion, capturing stdout and stderr; kills it and panics after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = Output {
                status: child.wait().expect("wait"),
                stdout: out_reader.join().unwrap_or_default(),
                stderr: err_reader.join().unwrap_or_default(),
            };
            panic!("{cmd:?} did not finish within {timeout:?}\n{}", show_output(&out));
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: out_reader.join().unwrap_or_default(), stderr: err_reader.join().unwrap_or_default() }
}

/// Runs `cmd` (with [`CLIENT_TIMEOUT`]) and panics with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run_with_timeout(cmd, CLIENT_TIMEOUT);
    if !out.status.success() {
        panic!("{cmd:?} failed with {}\n{}", out.status, show_output(&out));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Real clients
// ---------------------------------------------------------------------------------------------

/// The Python of the venv with the real SDKs (sentry-sdk, raven, Django, psycopg2, Logbook):
/// `SENTRY_TEST_PYTHON`, else `.venv/bin/python` in the repository. Panics when neither exists.
pub fn python() -> PathBuf {
    venv_python("SENTRY_TEST_PYTHON", ".venv")
}

/// The Python of the venv where sentry-sdk finds `brotli` (and so sends `br` bodies):
/// `SENTRY_TEST_PYTHON_BROTLI`, else `.venv-br/bin/python`.
pub fn python_brotli() -> PathBuf {
    venv_python("SENTRY_TEST_PYTHON_BROTLI", ".venv-br")
}

fn venv_python(var: &str, venv: &str) -> PathBuf {
    if let Some(p) = env::var_os(var) {
        let p = PathBuf::from(p);
        assert!(p.exists(), "{var}={} does not exist: run ./scripts/test.sh, which installs the Python SDKs", p.display());
        return p;
    }
    let p = workspace_root().join(venv).join("bin/python");
    assert!(
        p.exists(),
        "{var} is not set and {} does not exist: run ./scripts/test.sh, which installs the Python SDKs",
        p.display()
    );
    p
}

/// A scenario script under `tests/clients/python/`.
pub fn client_script(name: &str) -> PathBuf {
    workspace_root().join("tests/clients/python").join(name)
}

/// The `rust-client` binary (package `tests/rust-client`), next to this test binary's directory
/// (`target/<profile>/rust-client`, whatever the target dir). `cargo build --workspace` builds it.
pub fn rust_client() -> PathBuf {
    let mut candidates = Vec::new();
    if let Ok(exe) = env::current_exe() {
        // target/<profile>/deps/it-HASH -> target/<profile>/rust-client
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            candidates.push(profile_dir.join("rust-client"));
        }
    }
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("debug/rust-client"));
    }
    candidates.push(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/debug/rust-client")));
    candidates.iter().find(|p| p.exists()).cloned().unwrap_or_else(|| {
        panic!(
            "the rust-client binary is not built (looked at {candidates:?}): run ./scripts/test.sh, \
             or `cargo build -p rust-client` before `cargo test`"
        )
    })
}

/// The `FACTS {json}` line a Python scenario prints last.
pub fn facts(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("FACTS "))
        .unwrap_or_else(|| panic!("the scenario printed no FACTS line\n{}", show_output(out)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad FACTS line ({e}): {line}"))
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

/// A throwaway PostgreSQL server: `initdb` into a temp dir, listening on 127.0.0.1 on a free port
/// (and a unix socket in the temp dir), user `postgres` with trust auth, database `test`.
/// Stopped (`pg_ctl stop -m immediate`) and deleted on drop.
///
/// Binaries come from `SENTRY_TEST_PG_BIN`, else PATH, else the newest `/usr/lib/postgresql/*/bin`.
/// As root (initdb refuses to run as root) the server runs as the `postgres` OS user via `runuser`.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<String>,
    running: bool,
}

impl Postgres {
    pub const USER: &'static str = "postgres";
    pub const DATABASE: &'static str = "test";

    pub fn start() -> Postgres {
        let bin = pg_bin_dir();
        let dir = tempfile::Builder::new().prefix("sentry-it-pg-").tempdir().expect("temp dir");
        let run_as = if current_uid() == 0 {
            let user = "postgres";
            let uid = id_of(&["-u", user]);
            let gid = id_of(&["-g", user]);
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown of the postgres temp dir");
            Some(user.to_string())
        } else {
            None
        };
        let mut pg = Postgres { dir, bin, port: free_port(), run_as, running: false };
        let data = pg.dir.path().join("data");
        pg.run_pg(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                Self::USER.as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            pg.port,
            pg.dir.path().display()
        );
        let log = pg.dir.path().join("postgres.log");
        pg.run_pg(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                opts.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ],
        );
        pg.running = true;
        pg.create_database(Self::DATABASE);
        pg
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/test`
    pub fn url(&self) -> String {
        format!("postgres://{}@127.0.0.1:{}/{}", Self::USER, self.port, Self::DATABASE)
    }

    /// libpq's variables (PGHOST, PGPORT, PGUSER, PGDATABASE) for the `test` database.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PGHOST", self.host().to_string()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", Self::USER.to_string()),
            ("PGDATABASE", Self::DATABASE.to_string()),
        ]
    }

    pub fn create_database(&self, name: &str) {
        let port = self.port.to_string();
        let mut cmd = Command::new(self.bin.join("createdb"));
        cmd.args(["-h", "127.0.0.1", "-p", &port, "-U", Self::USER, name]);
        run_ok(&mut cmd);
    }

    /// Runs SQL with `psql` on the `test` database; returns the unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args(["-h", "127.0.0.1", "-p", &port, "-U", Self::USER, "-d", Self::DATABASE, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        String::from_utf8_lossy(&run_ok(&mut cmd).stdout).into_owned()
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn run_pg(&self, tool: &str, args: &[&OsStr]) -> Output {
        let program = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        cmd.args(args).current_dir(self.dir.path());
        let out = run_with_timeout(&mut cmd, Duration::from_secs(90));
        if !out.status.success() {
            panic!("{cmd:?} failed with {}\n{}\n--- postgres log:\n{}", out.status, show_output(&out), self.log());
        }
        out
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.dir.path().join("data");
            let program = self.bin.join("pg_ctl");
            let mut cmd = match &self.run_as {
                Some(user) => {
                    let mut c = Command::new("runuser");
                    c.args(["-u", user, "--"]).arg(&program);
                    c
                }
                None => Command::new(&program),
            };
            cmd.arg("-D").arg(&data).args(["-m", "immediate", "-w", "stop"]);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let _ = cmd.status();
        }
    }
}

/// The directory with `initdb`, `pg_ctl` and `postgres`.
pub fn pg_bin_dir() -> PathBuf {
    let has_tools = |d: &Path| ["initdb", "pg_ctl", "postgres"].iter().all(|t| d.join(t).exists());
    if let Some(dir) = env::var_os("SENTRY_TEST_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(has_tools(&dir), "SENTRY_TEST_PG_BIN={} has no initdb/pg_ctl/postgres", dir.display());
        return dir;
    }
    if let Some(path) = env::var_os("PATH") {
        if let Some(dir) = env::split_paths(&path).find(|d| has_tools(d)) {
            return dir;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, d)| has_tools(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d).unwrap_or_else(|| {
        panic!("PostgreSQL binaries not found (SENTRY_TEST_PG_BIN, PATH, /usr/lib/postgresql/*/bin): run ./scripts/test.sh, which installs them")
    })
}

fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective uid of the process
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or_else(|_| id_of(&["-u"]))
}

fn id_of(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().expect("running id");
    assert!(out.status.success(), "`id {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("numeric id")
}
