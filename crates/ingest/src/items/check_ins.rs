//! Cron monitors' `check_in` items (`{check_in_id, monitor_slug, status, duration?, release?,
//! environment?, monitor_config?}`, as `sentry_sdk.crons.monitor` and `Sentry.withMonitor`
//! send them). A check-in whose slug, status or configuration (schedule, time zone, margin,
//! longest run) is not valid is dropped whole and counted, never refused: the SDK would retry it.

use protocol::EventId;
use serde_json::Value;
use store::{CheckInStatus, IntervalUnit, MonitorConfig, NewCheckIn, ProjectId, Schedule};

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
