//! What the tests of several crates share: a throwaway PostgreSQL server started from the
//! Debian binaries (`initdb`, `pg_ctl`) and a throwaway Redis (`redis-server`), each on a free
//! loopback port, deleted when dropped. Used by the store's conformance suite and the server's
//! integration tests; never by the product.

mod postgres;
mod redis;

pub use postgres::{Postgres, pg_bin_dir};
pub use redis::Redis;

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A port nobody listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("binding 127.0.0.1:0").port()
}

/// A command's stdout and stderr, for a failure message.
pub fn show_output(out: &Output) -> String {
    format!("--- stdout:\n{}\n--- stderr:\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs a command to its end, killing it after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    use std::process::Stdio;
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let deadline = Instant::now() + timeout;
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}")),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
    }
}

/// Makes, in `dir`, a throwaway authority (`ca.crt`, `ca.key`) and a server certificate it
/// signed for `localhost` and `127.0.0.1` (`server.crt`, `server.key`), with the `openssl`
/// command. Valid for two days.
pub fn make_certificates(dir: &std::path::Path) {
    let ssl = |args: &[&str]| {
        let mut cmd = Command::new("openssl");
        cmd.args(args).current_dir(dir);
        run_ok(&mut cmd);
    };
    ssl(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=sentry test authority", "-days", "2"]);
    ssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").expect("writing san.ext");
    ssl(&[
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2",
        "-extfile", "san.ext",
    ]);
}

/// Runs a command that must succeed.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run_with_timeout(cmd, Duration::from_secs(120));
    if !out.status.success() {
        panic!("{cmd:?} failed with {}\n{}", out.status, show_output(&out));
    }
    out
}
