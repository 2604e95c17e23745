//! The exec plugin: runs a program of the operator's with the notification as JSON on its
//! standard input — the way to reach anything not built in. The program gets a clean
//! environment (only `PATH=/usr/local/bin:/usr/bin:/bin` and `SENTRY_REASON`), no arguments
//! but the configured ones, and `timeout_seconds` to finish.
//!
//! Its exit status decides what happens next:
//! - `0`: delivered;
//! - `75` (`EX_TEMPFAIL` in `sysexits.h`), killed by a signal, or still running at the
//!   timeout (then killed): tried again later, with backoff;
//! - any other status, or a program that can't be started: given up, with the last line it
//!   wrote to standard error as the reason in `sentry notify outbox`.
//!
//! It is also called when an issue it was told about is resolved (`reason.type` is
//! `"resolved"`), so a program can close what it opened.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::plugin::{Delivery, DeliveryError, Field, FieldKind, Plugin, SettingError, Settings, SettingsExt};
use crate::Notification;

/// The exit status that asks for another attempt later (`EX_TEMPFAIL`).
pub const EXIT_RETRY: i32 = 75;
/// The `PATH` the program gets.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// How much of the program's standard error is kept for the reason.
const STDERR_MAX: u64 = 4096;

const FIELDS: &[Field] = &[
    Field { name: "command", kind: FieldKind::List, required: true, default: "", help: "the program and its arguments, for example [\"/usr/local/bin/page-oncall\", \"--team\", \"ops\"]" },
    Field { name: "timeout_seconds", kind: FieldKind::Number { min: 1, max: 3600 }, required: false, default: "30", help: "how long the program may run before it is killed (and tried again later)" },
];

/// Runs a program per notification.
pub struct Exec;

impl Plugin for Exec {
    fn name(&self) -> &'static str {
        "exec"
    }
    fn description(&self) -> &'static str {
        "runs a program with the notification as JSON on its standard input"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn validate(&self, s: &Settings) -> Result<(), SettingError> {
        match s.list("command").first() {
            Some(p) if p.starts_with('/') => Ok(()),
            _ => Err(SettingError::new("command", "`command` must start with the program's absolute path, like [\"/usr/local/bin/notify-me\"]")),
        }
    }
    fn resolves(&self) -> bool {
        true
    }
    fn rule_fired<'a>(&'a self, n: &'a Notification, s: &'a Settings) -> Delivery<'a> {
        Box::pin(async move {
            let command = s.list("command");
            let (program, args) = command.split_first().ok_or_else(|| DeliveryError::Permanent("no command".into()))?;
            let timeout = Duration::from_secs(s.number("timeout_seconds").unwrap_or(30));
            let input = serde_json::to_vec(n).map_err(|e| DeliveryError::Permanent(e.to_string()))?;
            let mut child = tokio::process::Command::new(program)
                .args(args)
                .env_clear()
                .env("PATH", PATH)
                .env("SENTRY_REASON", n.reason.name())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| DeliveryError::Permanent(format!("can't run {program}: {e}")))?;
            let mut stdin = child.stdin.take().expect("piped");
            let mut stderr = child.stderr.take().expect("piped");
            let run = async {
                // A program that does not read its input may close it early: not an error.
                let _ = stdin.write_all(&input).await;
                drop(stdin);
                let mut err = Vec::new();
                let _ = (&mut stderr).take(STDERR_MAX).read_to_end(&mut err).await;
                (child.wait().await, err)
            };
            let (status, err) = tokio::time::timeout(timeout, run)
                .await
                .map_err(|_| DeliveryError::Retry(format!("{program} did not finish within {timeout:?}; killed")))?;
            let status = status.map_err(|e| DeliveryError::Retry(format!("waiting for {program}: {e}")))?;
            let said = String::from_utf8_lossy(&err).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
            let why = |what: String| if said.is_empty() { what } else { format!("{what}: {said}") };
            match status.code() {
                Some(0) => Ok(()),
                Some(EXIT_RETRY) => Err(DeliveryError::Retry(why(format!("{program} exited with {EXIT_RETRY} (try again later)")))),
                Some(code) => Err(DeliveryError::Permanent(why(format!("{program} exited with {code}")))),
                None => Err(DeliveryError::Retry(why(format!("{program} was killed by a signal")))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::sample;
    use crate::plugin::check_settings;

    fn settings(command: &[&str], timeout: u64) -> Settings {
        let v = serde_json::json!({"command": command, "timeout_seconds": timeout});
        check_settings(&Exec, v.as_object().unwrap()).unwrap()
    }

    async fn run(script: &str, timeout: u64) -> Result<(), DeliveryError> {
        Exec.rule_fired(&sample(), &settings(&["/bin/sh", "-c", script], timeout)).await
    }

    #[tokio::test]
    async fn exit_status_decides() {
        let dir = std::env::temp_dir().join(format!("sentry-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("in.json");
        run(&format!("cat > {}; env > {}.env", out.display(), out.display()), 10).await.unwrap();
        let got: Notification = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(got, sample());
        let env = std::fs::read_to_string(format!("{}.env", out.display())).unwrap();
        let mut names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
        names.sort();
        // sh adds PWD, SHLVL and _ of its own.
        assert!(names.iter().all(|n| ["PATH", "SENTRY_REASON", "PWD", "SHLVL", "_"].contains(n)), "{names:?}");
        assert!(env.contains("SENTRY_REASON=new_group"), "{env}");
        std::fs::remove_dir_all(&dir).unwrap();

        assert!(matches!(run("echo busy >&2; exit 75", 10).await, Err(DeliveryError::Retry(e)) if e.ends_with("exited with 75 (try again later): busy")));
        assert!(matches!(run("echo 'no such team' >&2; exit 2", 10).await, Err(DeliveryError::Permanent(e)) if e.ends_with("exited with 2: no such team")));
        assert!(matches!(run("sleep 5", 1).await, Err(DeliveryError::Retry(e)) if e.contains("did not finish")));
        assert!(matches!(run("kill -9 $$", 10).await, Err(DeliveryError::Retry(e)) if e.contains("signal")));
        let missing = Exec.rule_fired(&sample(), &settings(&["/nonexistent/program"], 5)).await;
        assert!(matches!(missing, Err(DeliveryError::Permanent(_))));
    }

    #[test]
    fn command_needs_an_absolute_path() {
        let v = serde_json::json!({"command": ["notify-me"]});
        assert_eq!(check_settings(&Exec, v.as_object().unwrap()).unwrap_err().key.as_deref(), Some("command"));
    }
}
