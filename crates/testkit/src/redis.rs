//! A throwaway Redis server for the tests of several nodes.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// `redis-server` on 127.0.0.1 and a free port, in memory only (no snapshot, no append-only
/// file), killed on drop. The binary comes from PATH (`scripts/test.sh` installs Debian's
/// `redis-server`).
pub struct Redis {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::Builder::new().prefix("sentry-it-redis-").tempdir().expect("temp dir");
        let mut r = Redis { port: free_port(), child: None, dir };
        r.launch();
        r
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (what it held is gone; it holds only counters and messages).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "redis already running");
        let log = std::fs::File::create(self.log_path()).expect("redis log");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting redis-server ({e}): run ./scripts/test.sh, which installs it"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen: {}", std::fs::read_to_string(self.log_path()).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
