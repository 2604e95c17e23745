//! A real Matrix homeserver for the Matrix notification tests: Synapse from `.venv-peers`,
//! on a free loopback port, with a throwaway config and SQLite database in a temp dir. Users
//! are registered with Synapse's own `register_new_matrix_user` (the shared secret), and
//! [`MatrixUser`] speaks the client-server API to log in, make rooms, join and read them.

use std::{
    fs,
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{Response, clean_command, free_port, python_peers, try_request};

const SHARED_SECRET: &str = "sentry-tests-registration-secret";

/// Synapse, stopped on drop.
pub struct Synapse {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Synapse {
    pub fn start() -> Synapse {
        let dir = tempfile::Builder::new().prefix("sentry-synapse-").tempdir().expect("temp dir");
        let port = free_port();
        let d = dir.path().display();
        // The generated config brings the signing key; then ours replaces it.
        let config = dir.path().join("homeserver.yaml");
        let out = clean_command(python_peers())
            .args(["-m", "synapse.app.homeserver", "--server-name", "localhost", "--generate-config", "--report-stats=no"])
            .arg("--config-path")
            .arg(&config)
            .arg("--data-directory")
            .arg(dir.path())
            .output()
            .expect("running synapse --generate-config");
        assert!(out.status.success(), "synapse --generate-config: {}", String::from_utf8_lossy(&out.stderr));
        let limit = "{per_second: 1000, burst_count: 1000}";
        fs::write(
            &config,
            format!(
                "server_name: localhost\npid_file: {d}/homeserver.pid\n\
                 listeners:\n  - port: {port}\n    bind_addresses: ['127.0.0.1']\n    type: http\n    tls: false\n    x_forwarded: false\n\
                 \x20   resources:\n      - names: [client]\n        compress: false\n\
                 database:\n  name: sqlite3\n  args:\n    database: {d}/homeserver.db\n\
                 media_store_path: {d}/media_store\nsigning_key_path: {d}/localhost.signing.key\n\
                 registration_shared_secret: {SHARED_SECRET}\nmacaroon_secret_key: sentry-tests-macaroon\nform_secret: sentry-tests-form\n\
                 report_stats: false\ntrusted_key_servers: []\nsuppress_key_server_warning: true\n\
                 rc_message: {limit}\nrc_login:\n  address: {limit}\n  account: {limit}\n  failed_attempts: {limit}\n\
                 rc_joins:\n  local: {limit}\nrc_invites:\n  per_room: {limit}\n  per_user: {limit}\n"
            ),
        )
        .expect("homeserver.yaml");
        let mut s = Synapse { dir, port, child: None };
        s.launch();
        s
    }

    /// Starts Synapse (again) on its port and database.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "Synapse already running");
        let log_path = self.dir.path().join("synapse.log");
        let log = fs::File::create(&log_path).expect("synapse log");
        let mut child = clean_command(python_peers())
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(self.dir.path().join("homeserver.yaml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("fd"))
            .stderr(log)
            .spawn()
            .expect("starting Synapse");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("Synapse exited at start with {status}:\n{}", fs::read_to_string(&log_path).unwrap_or_default());
            }
            if try_request(self.addr(), "GET", "/_matrix/client/versions", &[], b"", Duration::from_secs(2)).is_ok_and(|r| r.status == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "Synapse did not answer within 60 s:\n{}", fs::read_to_string(&log_path).unwrap_or_default());
            thread::sleep(Duration::from_millis(100));
        }
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        super::peers::stop(&mut self.child);
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Registers `name` with `password` and logs in.
    pub fn user(&self, name: &str, password: &str) -> MatrixUser {
        let tool: PathBuf = python_peers().with_file_name("register_new_matrix_user");
        let out = Command::new(&tool)
            .args(["-u", name, "-p", password, "--no-admin", "-k", SHARED_SECRET])
            .arg(self.url())
            .output()
            .expect("running register_new_matrix_user");
        assert!(out.status.success(), "registering {name}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let login = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": name}, "password": password});
        let mut user = MatrixUser { addr: self.addr(), token: String::new(), id: format!("@{name}:localhost") };
        let r = user.call("POST", "/_matrix/client/v3/login", Some(&login));
        assert_eq!(r.status, 200, "logging in as {name}: {}", r.text());
        user.token = r.json()["access_token"].as_str().expect("an access token").to_string();
        user
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A logged-in account on the [`Synapse`].
pub struct MatrixUser {
    addr: SocketAddr,
    pub token: String,
    pub id: String,
}

impl MatrixUser {
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let auth = format!("Bearer {}", self.token);
        let mut headers = vec![("Content-Type", "application/json")];
        if !self.token.is_empty() {
            headers.push(("Authorization", auth.as_str()));
        }
        let body = body.map(Value::to_string).unwrap_or_default();
        try_request(self.addr, method, path, &headers, body.as_bytes(), Duration::from_secs(30)).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Creates a room with the alias `#alias:localhost`, inviting `invite`; returns its id.
    pub fn create_room(&self, alias: &str, invite: &[&str]) -> String {
        let r = self.call("POST", "/_matrix/client/v3/createRoom", Some(&json!({"room_alias_name": alias, "invite": invite})));
        assert_eq!(r.status, 200, "creating a room: {}", r.text());
        r.json()["room_id"].as_str().expect("a room id").to_string()
    }

    pub fn join(&self, room_id: &str) {
        let r = self.call("POST", &format!("/_matrix/client/v3/join/{}", encode(room_id)), Some(&json!({})));
        assert_eq!(r.status, 200, "joining {room_id}: {}", r.text());
    }

    /// The `m.room.message` events of the room, oldest first, as its members read them.
    pub fn messages(&self, room_id: &str) -> Vec<Value> {
        let r = self.call("GET", &format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", encode(room_id)), None);
        assert_eq!(r.status, 200, "reading {room_id}: {}", r.text());
        let mut events: Vec<Value> =
            r.json()["chunk"].as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["type"] == "m.room.message").collect();
        events.reverse();
        events
    }

    /// Waits until the room holds at least `n` messages; returns them.
    #[track_caller]
    pub fn wait_for_messages(&self, room_id: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages(room_id);
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{} message(s) in {room_id} within {timeout:?}, expected {n}: {got:#?}", got.len());
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Percent-encodes a room id or alias for a path.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
