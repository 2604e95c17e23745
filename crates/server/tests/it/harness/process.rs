//! Child processes with clean environments and timeouts, and where the real clients live
//! (the Python venvs, the scenario scripts, the `rust-client` binary).

use std::{
    env,
    ffi::OsStr,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{CLIENT_TIMEOUT, show_output, workspace_root};

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
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
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
            panic!(
                "{cmd:?} did not finish within {timeout:?}\n{}",
                show_output(&out)
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Runs `cmd` (with [`CLIENT_TIMEOUT`]) and panics with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run_with_timeout(cmd, CLIENT_TIMEOUT);
    if !out.status.success() {
        panic!("{cmd:?} failed with {}\n{}", out.status, show_output(&out));
    }
    out
}

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

/// The Python of the venv with the peers of the notification tests (Synapse, `gntp`):
/// `SENTRY_TEST_PYTHON_PEERS`, else `.venv-peers/bin/python`.
pub fn python_peers() -> PathBuf {
    venv_python("SENTRY_TEST_PYTHON_PEERS", ".venv-peers")
}

fn venv_python(var: &str, venv: &str) -> PathBuf {
    if let Some(p) = env::var_os(var) {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "{var}={} does not exist: run ./scripts/test.sh, which installs the Python SDKs",
            p.display()
        );
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
    candidates.push(PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/debug/rust-client"
    )));
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
