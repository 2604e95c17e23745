//! Cron monitors' `check_in` items (`{check_in_id, monitor_slug, status, duration?, release?,
//! environment?, monitor_config?}`, as `sentry_sdk.crons.monitor` and `Sentry.withMonitor`
//! send them). A check-in whose slug, status or configuration (schedule, time zone, margin,
//! longest run) is not valid is dropped whole and counted, never refused: the SDK would retry it.
//!
//! A failed run (an `error` check-in, a missed check-in, a timeout) becomes an event of kind
//! `monitor` ([`failure_event`]), grouped per monitor and kind of failure, so that repeated
//! failures count on one issue and alert rules see them as any event.

use protocol::EventId;
use serde_json::Value;
use store::{CheckInStatus, IntervalUnit, MonitorConfig, MonitorFailure, NewCheckIn, NewEvent, ProjectId, Schedule};


/// The longest release or environment kept, in characters (a tag value's limit).
pub const MAX_FIELD_CHARS: usize = 200;
/// How far back a check-in's own timestamp is believed, in seconds (older ones are clamped).
pub const MAX_AGE_SECS: f64 = 7.0 * 86_400.0;

/// Reads one check-in, or says why it is not one.
pub fn read(payload: &[u8], project_id: ProjectId, received: f64) -> Result<NewCheckIn, String> {
    let v: Value = serde_json::from_slice(payload).ok().filter(Value::is_object).ok_or("a check-in is a JSON object")?;
    let text = |key: &str| {
        v.get(key).and_then(Value::as_str).map(|s| s.trim().chars().take(MAX_FIELD_CHARS).collect::<String>()).filter(|s| !s.is_empty())
    };
    let monitor_slug = store::monitor_slug(v.get("monitor_slug").and_then(Value::as_str).ok_or("a check-in names its monitor_slug")?)?;
    let status = v.get("status").and_then(Value::as_str).and_then(CheckInStatus::parse).ok_or("a check-in's status is in_progress, ok or error")?;
    let check_in_id = v.get("check_in_id").and_then(Value::as_str).and_then(EventId::parse).ok_or("a check-in has a check_in_id")?;
    let duration = v.get("duration").and_then(Value::as_f64).filter(|d| d.is_finite() && *d >= 0.0);
    let config = match v.get("monitor_config") {
        None | Some(Value::Null) => None,
        Some(c) => Some(config(c)?),
    };
    let timestamp = v
        .get("timestamp")
        .and_then(protocol::event::parse_timestamp)
        .filter(|t| t.is_finite())
        .map_or(received, |t| t.clamp(received - MAX_AGE_SECS, received));
    Ok(NewCheckIn {
        project_id,
        check_in_id,
        monitor_slug,
        status,
        duration,
        release: text("release"),
        environment: text("environment"),
        config,
        timestamp,
        received,
    })
}

/// A `monitor_config`: `schedule` is `{type: crontab, value: "0 * * * *"}` or `{type: interval,
/// value: 5, unit: minute}`; `checkin_margin` and `max_runtime` are minutes; `timezone` an IANA name.
fn config(c: &Value) -> Result<MonitorConfig, String> {
    let s = c.get("schedule").ok_or("a monitor_config has a schedule")?;
    let schedule = match s.get("type").and_then(Value::as_str) {
        Some("crontab") => Schedule::crontab(s.get("value").and_then(Value::as_str).ok_or("a crontab schedule's value is text")?)?,
        Some("interval") => {
            let n = s.get("value").and_then(Value::as_u64).ok_or("an interval schedule's value is a whole number")?;
            let unit = s.get("unit").and_then(Value::as_str).and_then(IntervalUnit::parse).ok_or("an interval's unit is minute, hour, day, week, month or year")?;
            Schedule::interval(u32::try_from(n).unwrap_or(u32::MAX), unit)?
        }
        _ => return Err("a schedule's type is crontab or interval".into()),
    };
    let minutes = |key: &str| -> Result<Option<u32>, String> {
        match c.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(u32::try_from(n).unwrap_or(u32::MAX))).ok_or(format!("{key} is a whole number of minutes")),
        }
    };
    MonitorConfig::new(schedule, c.get("timezone").and_then(Value::as_str), minutes("checkin_margin")?, minutes("max_runtime")?)
}

/// The event a failed run becomes: level error, titled `Monitor failure: nightly (missed
/// check-in)`, its fingerprint the monitor and the kind of failure. Its id comes from the run, so
/// that reporting one twice (after a crash, or by two nodes) stores it once.
pub fn failure_event(f: &MonitorFailure, limits: &protocol::Limits, grouping: &grouping::GroupingConfig, received: f64) -> Option<NewEvent> {
    let event_id = EventId([0; 16]).derive(&format!("monitor-run\u{0}{}\u{0}{}", f.project_id.0, f.run_id));
    let failure = f.kind.status();
    let mut tags = serde_json::json!({ "monitor.slug": f.slug, "monitor.failure": failure });
    if let Some(e) = &f.environment {
        tags["environment"] = Value::from(e.as_str());
    }
    let payload = serde_json::json!({
        "event_id": event_id.to_string(),
        "timestamp": f.at,
        "level": "error",
        "logger": "monitors",
        "message": format!("Monitor failure: {} ({})", f.slug, f.kind.describe()),
        "fingerprint": ["monitor", f.slug, failure],
        "release": f.release,
        "environment": f.environment,
        "tags": tags,
        "contexts": { "monitor": { "slug": f.slug, "failure": failure, "run": f.run_id } },
    });
    let payload = serde_json::to_vec(&payload).ok()?;
    let event = protocol::event::normalize_slice(&payload, limits, received, None).ok()?;
    let mut new = crate::process::new_event(f.project_id, &event, payload, grouping, received);
    new.kind = store::MONITOR_EVENT_KIND.to_string();
    Some(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(payload: &str) -> Result<NewCheckIn, String> {
        read(payload.as_bytes(), ProjectId(1), 1_800_000_000.0)
    }

    #[test]
    fn check_ins_as_the_sdks_send_them() {
        let c = check(
            r#"{"type":"check_in","monitor_slug":"Nightly Backup","check_in_id":"ef6d64cfa102437e940cd6ad496e1e87","status":"in_progress",
            "duration":null,"environment":"production","release":"1.0","monitor_config":{"schedule":{"type":"crontab","value":"0 2 * * *"},
            "timezone":"Europe/Vienna","checkin_margin":5,"max_runtime":20,"failure_issue_threshold":2}}"#,
        )
        .unwrap();
        assert_eq!((c.monitor_slug.as_str(), c.status, c.duration), ("nightly-backup", CheckInStatus::InProgress, None));
        assert_eq!((c.release.as_deref(), c.environment.as_deref(), c.timestamp), (Some("1.0"), Some("production"), 1_800_000_000.0));
        let config = c.config.unwrap();
        assert_eq!(config.schedule, Schedule::Crontab("0 2 * * *".into()));
        assert_eq!((config.timezone.as_str(), config.margin_minutes, config.max_runtime_minutes), ("Europe/Vienna", 5, 20));

        let c = check(
            r#"{"monitor_slug":"sync","check_in_id":"ef6d64cfa102437e940cd6ad496e1e87","status":"ok","duration":1.5,"timestamp":1799999000,
            "monitor_config":{"schedule":{"type":"interval","value":10,"unit":"minute"}}}"#,
        )
        .unwrap();
        assert_eq!((c.status, c.duration, c.timestamp), (CheckInStatus::Ok, Some(1.5), 1_799_999_000.0));
        assert_eq!(c.config.unwrap().schedule, Schedule::Interval(10, IntervalUnit::Minute));
        let future = check(r#"{"monitor_slug":"sync","check_in_id":"ef6d64cfa102437e940cd6ad496e1e87","status":"error","timestamp":1900000000}"#);
        assert_eq!(future.unwrap().timestamp, 1_800_000_000.0, "never after it arrived");
    }

    #[test]
    fn failures_become_one_issue_per_monitor_and_kind() {
        use store::MonitorFailureKind;
        let failure = |run_id, slug: &str, kind| MonitorFailure {
            run_id,
            project_id: ProjectId(1),
            monitor_id: 1,
            slug: slug.into(),
            kind,
            at: 1_800_000_000.0,
            release: None,
            environment: Some("production".into()),
        };
        let event = |f: &MonitorFailure| failure_event(f, &protocol::Limits::default(), &grouping::GroupingConfig::default(), 1_800_000_060.0).unwrap();
        let a = event(&failure(1, "nightly", MonitorFailureKind::Missed));
        assert_eq!((a.kind.as_str(), a.level, a.title.as_str()), ("monitor", store::Level::Error, "Monitor failure: nightly (missed check-in)"));
        assert!(a.tags.contains(&("monitor.slug".into(), "nightly".into())), "{:?}", a.tags);
        let again = event(&failure(1, "nightly", MonitorFailureKind::Missed));
        assert_eq!(a.event_id, again.event_id, "a run reported twice is one event");
        let b = event(&failure(2, "nightly", MonitorFailureKind::Missed));
        assert_ne!(a.event_id, b.event_id);
        assert_eq!(a.hash, b.hash, "repeated misses share an issue");
        assert_ne!(a.hash, event(&failure(3, "nightly", MonitorFailureKind::Error)).hash);
        assert_ne!(a.hash, event(&failure(4, "backup", MonitorFailureKind::Missed)).hash);
    }

    #[test]
    fn bad_check_ins_say_why() {
        let id = r#""check_in_id":"ef6d64cfa102437e940cd6ad496e1e87""#;
        for (payload, why) in [
            ("[1]".to_string(), "JSON object"),
            (format!(r#"{{{id},"status":"ok"}}"#), "monitor_slug"),
            (format!(r#"{{{id},"monitor_slug":"***","status":"ok"}}"#), "slug"),
            (format!(r#"{{{id},"monitor_slug":"a","status":"done"}}"#), "status"),
            (r#"{"monitor_slug":"a","status":"ok"}"#.to_string(), "check_in_id"),
            (format!(r#"{{{id},"monitor_slug":"a","status":"ok","monitor_config":{{"schedule":{{"type":"crontab","value":"61 * * * *"}}}}}}"#), "crontab"),
            (format!(r#"{{{id},"monitor_slug":"a","status":"ok","monitor_config":{{"schedule":{{"type":"interval","value":5,"unit":"fortnight"}}}}}}"#), "unit"),
            (format!(r#"{{{id},"monitor_slug":"a","status":"ok","monitor_config":{{"schedule":{{"type":"interval","value":0,"unit":"day"}}}}}}"#), "between"),
            (format!(r#"{{{id},"monitor_slug":"a","status":"ok","monitor_config":{{"schedule":{{"type":"cron"}}}}}}"#), "type"),
            (format!(r#"{{{id},"monitor_slug":"a","status":"ok","monitor_config":{{"schedule":{{"type":"crontab","value":"* * * * *"}},"timezone":"Nowhere/Else"}}}}"#), "time zone"),
            (format!(r#"{{{id},"monitor_slug":"a","status":"ok","monitor_config":{{"schedule":{{"type":"crontab","value":"* * * * *"}},"checkin_margin":"x"}}}}"#), "checkin_margin"),
        ] {
            let err = check(&payload).unwrap_err();
            assert!(err.contains(why), "{payload}: {err}");
        }
    }
}
