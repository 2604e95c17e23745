//! Release health from the SDKs: `session` items (one update of one session: `{sid, did, init,
//! started, status, errors, attrs: {release, environment}}`) and `sessions` items (what an SDK
//! counted itself, per request in server apps: `{attrs, aggregates: [{started, did, exited,
//! errored, abnormal, crashed}]}`). As in Sentry, a session without a release is not counted
//! (it says nothing about any release), and neither is one whose status is unknown.

use serde_json::Value;
use store::{NewSession, NewSessionCounts, ProjectId, SessionStatus};

/// The most aggregate rows read from one `sessions` item.
pub const MAX_AGGREGATES: usize = 100;
/// Longest session id, user id, release and environment kept.
const MAX_TEXT: usize = 200;

fn text(v: Option<&Value>) -> Option<String> {
    let s = v?.as_str()?.trim();
    (!s.is_empty() && s.len() <= MAX_TEXT).then(|| s.to_string())
}

/// `did` may be a string or a number.
fn user(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        other => text(Some(other)),
    }
}

fn release_and_environment(attrs: Option<&Value>) -> Option<(String, String)> {
    let attrs = attrs?;
    let release = text(attrs.get("release"))?;
    let environment = text(attrs.get("environment")).unwrap_or_else(|| "production".into());
    Some((release, environment))
}

fn time(v: Option<&Value>, default: f64) -> f64 {
    v.and_then(protocol::event::parse_timestamp).unwrap_or(default)
}

/// One `session` item; `None` when it cannot count (no release, no id, an unknown status).
pub fn read_session(payload: &[u8], project_id: ProjectId, received: f64) -> Option<NewSession> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let (release, environment) = release_and_environment(v.get("attrs"))?;
    let status = match v.get("status").and_then(Value::as_str) {
        None => SessionStatus::Ok,
        Some(s) => SessionStatus::parse(s)?,
    };
    let errors = v.get("errors").and_then(Value::as_u64).unwrap_or(0);
    Some(NewSession {
        project_id,
        sid: text(v.get("sid"))?,
        did: user(v.get("did")),
        release,
        environment,
        started: time(v.get("started"), received),
        status,
        errored: errors > 0 || status >= SessionStatus::Errored,
    })
}

/// One `sessions` item: its rows (at most [`MAX_AGGREGATES`]), and how many rows were left out.
pub fn read_counts(payload: &[u8], project_id: ProjectId, received: f64) -> Option<(Vec<NewSessionCounts>, u64)> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let (release, environment) = release_and_environment(v.get("attrs"))?;
    let rows = v.get("aggregates")?.as_array()?;
    let n = |r: &Value, k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
    let counts = rows
        .iter()
        .take(MAX_AGGREGATES)
        .filter(|r| r.is_object())
        .map(|r| NewSessionCounts {
            project_id,
            release: release.clone(),
            environment: environment.clone(),
            started: time(r.get("started"), received),
            did: user(r.get("did")),
            exited: n(r, "exited"),
            errored: n(r, "errored"),
            abnormal: n(r, "abnormal"),
            crashed: n(r, "crashed"),
        })
        .collect();
    Some((counts, rows.len().saturating_sub(MAX_AGGREGATES) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_update_counts_with_its_worst_news() {
        let s = read_session(
            br#"{"sid":"a1","did":42,"init":true,"started":"2024-05-01T10:00:00Z","status":"exited","errors":1,"attrs":{"release":"shop@1.0"}}"#,
            ProjectId(1),
            5.0,
        )
        .unwrap();
        assert_eq!((s.sid.as_str(), s.did.as_deref(), s.release.as_str(), s.environment.as_str()), ("a1", Some("42"), "shop@1.0", "production"));
        assert_eq!((s.status, s.errored), (SessionStatus::Exited, true));
        assert_eq!(s.started, 1_714_557_600.0);
        // Without a release, or with a status no SDK sends, it does not count.
        assert!(read_session(br#"{"sid":"a1","status":"ok","attrs":{}}"#, ProjectId(1), 5.0).is_none());
        assert!(read_session(br#"{"sid":"a1","status":"weird","attrs":{"release":"r"}}"#, ProjectId(1), 5.0).is_none());
    }

    #[test]
    fn aggregates_are_bounded() {
        let rows: Vec<String> = (0..150).map(|i| format!(r#"{{"started":{i},"exited":2,"crashed":1}}"#)).collect();
        let body = format!(r#"{{"attrs":{{"release":"r","environment":"staging"}},"aggregates":[{}]}}"#, rows.join(","));
        let (counts, left) = read_counts(body.as_bytes(), ProjectId(1), 5.0).unwrap();
        assert_eq!((counts.len(), left), (MAX_AGGREGATES, 50));
        assert_eq!((counts[3].started, counts[3].exited, counts[3].crashed, counts[3].environment.as_str()), (3.0, 2, 1, "staging"));
    }
}
