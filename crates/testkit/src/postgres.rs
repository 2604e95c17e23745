//! A throwaway PostgreSQL server for the tests that need one.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

use crate::{free_port, run_ok, run_with_timeout, show_output};

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
    run_as: Option<&'static str>,
    running: bool,
    /// The server's options, for starting it again.
    opts: String,
}

impl Postgres {
    pub const USER: &'static str = "postgres";
    pub const DATABASE: &'static str = "test";

    /// A server tuned for speed: fsync and synchronous commit off. A crash of such a server
    /// (see [`Postgres::restart`]) may lose commits it had confirmed.
    pub fn start() -> Postgres {
        Postgres::start_with(false, false)
    }

    /// A server as durable as a real installation (fsync and synchronous commit on): what it
    /// confirmed survives [`Postgres::restart`].
    pub fn start_durable() -> Postgres {
        Postgres::start_with(true, false)
    }

    /// A server that also speaks TLS, with a certificate for `localhost` and `127.0.0.1` signed
    /// by a throwaway authority ([`Postgres::ca_file`]), made with the `openssl` command.
    pub fn start_tls() -> Postgres {
        Postgres::start_with(false, true)
    }

    /// The authority that signed a [`Postgres::start_tls`] server's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn start_with(durable: bool, tls: bool) -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("sentry-it-pg-")
            .tempdir()
            .expect("temp dir");
        let run_as = (current_uid() == 0).then(|| {
            let (uid, gid) = (id_of(&["-u", "postgres"]), id_of(&["-g", "postgres"]));
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("chown of the postgres temp dir");
            "postgres"
        });
        let mut pg = Postgres {
            dir,
            bin: pg_bin_dir(),
            port: free_port(),
            run_as,
            running: false,
            opts: String::new(),
        };
        let data = pg.dir.path().join("data");
        let mut initdb = pg.tool("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", Self::USER, "--no-sync"]);
        pg.run(initdb);

        let fast = if durable { "" } else { " -c fsync=off -c synchronous_commit=off -c full_page_writes=off" };
        let mut opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1{fast}", pg.port, pg.dir.path().display());
        if tls {
            pg.make_certificates();
            opts.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        pg.opts = opts.clone();
        let mut start = pg.tool("pg_ctl");
        start
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-w", "-t", "60", "start", "-l"]);
        start.arg(pg.dir.path().join("postgres.log"));
        pg.run(start);
        pg.running = true;
        pg.create_database(Self::DATABASE);
        pg
    }

    /// A throwaway authority and a server certificate in the data directory (where `ssl=on`
    /// finds them), owned by the server's user.
    fn make_certificates(&self) {
        let dir = self.dir.path();
        let data = dir.join("data");
        crate::make_certificates(dir);
        for f in ["server.crt", "server.key"] {
            std::fs::copy(dir.join(f), data.join(f)).expect("copying the certificate");
            if self.run_as.is_some() {
                let (uid, gid) = (id_of(&["-u", "postgres"]), id_of(&["-g", "postgres"]));
                std::os::unix::fs::chown(data.join(f), Some(uid), Some(gid)).expect("chown of the certificate");
            }
        }
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600)).expect("chmod of the key");
        std::fs::set_permissions(dir.join("ca.crt"), std::fs::Permissions::from_mode(0o644)).expect("chmod of the authority");
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/test`
    pub fn url(&self) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{}",
            Self::USER,
            self.port,
            Self::DATABASE
        )
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

    /// `postgres://postgres@127.0.0.1:PORT/NAME`
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://{}@127.0.0.1:{}/{database}", Self::USER, self.port)
    }

    /// One server for the whole test process, started on first use. A watchdog process stops
    /// it and deletes its directory once this process has ended (statics are never dropped).
    pub fn shared() -> &'static Postgres {
        static SHARED: std::sync::OnceLock<Postgres> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            let pg = Postgres::start();
            let as_user = pg.run_as.map(|u| format!("runuser -u {u} -- ")).unwrap_or_default();
            let stop = format!(
                "{as_user}'{}' -D '{}' -m immediate -w stop",
                pg.bin.join("pg_ctl").display(),
                pg.dir.path().join("data").display()
            );
            let script = format!(
                "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
                pid = std::process::id(),
                dir = pg.dir.path().display()
            );
            // Outlives this process on purpose: it is what stops the server after the tests.
            #[allow(clippy::zombie_processes)]
            Command::new("sh")
                .args(["-c", &script])
                .current_dir("/")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting the PostgreSQL watchdog");
            pg
        })
    }

    /// A new, empty database on this server, named uniquely within the process; its URL.
    pub fn fresh_database(&self) -> String {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        self.create_database(&name);
        self.url_of(&name)
    }

    pub fn create_database(&self, name: &str) {
        let mut cmd = Command::new(self.bin.join("createdb"));
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            Self::USER,
            name,
        ]);
        run_ok(&mut cmd);
    }

    /// Runs SQL with `psql` on the `test` database; returns the unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            Self::USER,
        ]);
        cmd.args([
            "-d",
            Self::DATABASE,
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]);
        String::from_utf8_lossy(&run_ok(&mut cmd).stdout).into_owned()
    }

    /// Runs SQL with `psql` on the database at `url`; returns the unaligned, tuples-only output.
    pub fn psql_at(&self, url: &str, sql: &str) -> String {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args(["-d", url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        String::from_utf8_lossy(&run_ok(&mut cmd).stdout).into_owned()
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`), and starts it
    /// again on the same port and data, waiting until it accepts connections.
    pub fn restart(&self) {
        let mut cmd = self.tool("pg_ctl");
        cmd.arg("-D").arg(self.dir.path().join("data")).args(["-m", "immediate", "-w", "-t", "60", "restart", "-l"]);
        cmd.arg(self.dir.path().join("postgres.log"));
        self.run(cmd);
    }

    /// Stops the server at once (as a crash would), keeping its data: see [`Postgres::start_again`].
    pub fn stop(&self) {
        let mut cmd = self.tool("pg_ctl");
        cmd.arg("-D").arg(self.dir.path().join("data")).args(["-m", "immediate", "-w", "stop"]);
        self.run(cmd);
    }

    /// Starts a [`Postgres::stop`]ped server again on the same port and data.
    pub fn start_again(&self) {
        let mut cmd = self.tool("pg_ctl");
        cmd.arg("-D").arg(self.dir.path().join("data")).args(["-o", &self.opts, "-w", "-t", "60", "start", "-l"]);
        cmd.arg(self.dir.path().join("postgres.log"));
        self.run(cmd);
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// A server-side tool (initdb, pg_ctl), run as the `postgres` user when we are root.
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut cmd = match self.run_as {
            Some(user) => {
                let runuser = Path::new("/usr/sbin/runuser");
                let mut c = Command::new(if runuser.exists() {
                    runuser
                } else {
                    Path::new("runuser")
                });
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        cmd.current_dir(self.dir.path());
        cmd
    }

    fn run(&self, mut cmd: Command) -> Output {
        let out = run_with_timeout(&mut cmd, Duration::from_secs(90));
        if !out.status.success() {
            panic!(
                "{cmd:?} failed with {}\n{}\n--- postgres log:\n{}",
                out.status,
                show_output(&out),
                self.log()
            );
        }
        out
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let mut stop = self.tool("pg_ctl");
            stop.arg("-D").arg(self.dir.path().join("data"));
            stop.args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = stop.status();
        }
    }
}

/// The directory with `initdb`, `pg_ctl` and `postgres`.
pub fn pg_bin_dir() -> PathBuf {
    let has_tools = |d: &Path| {
        ["initdb", "pg_ctl", "postgres", "createdb"]
            .iter()
            .all(|t| d.join(t).exists())
    };
    if let Some(dir) = env::var_os("SENTRY_TEST_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            has_tools(&dir),
            "SENTRY_TEST_PG_BIN={} has no initdb/pg_ctl/postgres",
            dir.display()
        );
        return dir;
    }
    if let Some(path) = env::var_os("PATH")
        && let Some(dir) = env::split_paths(&path).find(|d| has_tools(d))
    {
        return dir;
    }
    // Some images link only initdb/pg_ctl/postgres onto PATH: follow the link to the real bin dir.
    if let Some(path) = env::var_os("PATH")
        && let Some(dir) = env::split_paths(&path)
            .filter_map(|d| fs::canonicalize(d.join("initdb")).ok())
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .find(|d| has_tools(d))
    {
        return dir;
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
        panic!(
            "PostgreSQL binaries not found (SENTRY_TEST_PG_BIN, PATH, /usr/lib/postgresql/*/bin): \
             run ./scripts/test.sh, which installs them"
        )
    })
}

fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective uid of the process
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or_else(|_| id_of(&["-u"]))
}

fn id_of(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().expect("running id");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`id {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    text.trim().parse().expect("numeric id")
}
