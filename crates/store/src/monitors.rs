//! Cron monitors: the values of a monitor (its schedule, time zone, margin and longest run) and
//! of its runs, the check-ins that ingest reads, and the schedule's arithmetic — when the next
//! check-in is expected, in the monitor's time zone. Pure; the backends store what it computes.

use std::str::FromStr;

use serde::Serialize;

use crate::{EventId, ProjectId};

/// The kind of the events that failed runs become (one issue per monitor and kind of failure).
pub const MONITOR_EVENT_KIND: &str = "monitor";

/// Minutes a check-in may be late before it is missed, when the monitor says nothing (Sentry's
/// default).
pub const DEFAULT_MARGIN_MINUTES: u32 = 1;
/// Minutes a run may stay in progress before it has timed out, when the monitor says nothing.
pub const DEFAULT_MAX_RUNTIME_MINUTES: u32 = 30;
/// The largest margin or longest run a monitor may name: 40 days, in minutes.
pub const MAX_MINUTES: u32 = 40 * 24 * 60;
/// The longest monitor slug, in characters (Sentry's limit).
pub const MAX_MONITOR_SLUG_CHARS: usize = 50;
/// The largest interval count (`{type: interval, value}`).
pub const MAX_INTERVAL: u32 = 10_000;

/// A monitor slug as a check-in names it, made a slug as project slugs are (lowercase letters,
/// digits, dashes), or why it can't be one.
pub fn monitor_slug(raw: &str) -> Result<String, String> {
    let slug = crate::slugify(raw);
    if slug.is_empty() {
        return Err(format!("\"{raw}\" cannot be a monitor slug: use letters, digits and dashes"));
    }
    if slug.chars().count() > MAX_MONITOR_SLUG_CHARS {
        return Err(format!("a monitor slug can be at most {MAX_MONITOR_SLUG_CHARS} characters long"));
    }
    Ok(slug)
}

/// The unit of an interval schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IntervalUnit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl IntervalUnit {
    pub const ALL: [IntervalUnit; 6] =
        [IntervalUnit::Minute, IntervalUnit::Hour, IntervalUnit::Day, IntervalUnit::Week, IntervalUnit::Month, IntervalUnit::Year];

    pub fn as_str(self) -> &'static str {
        match self {
            IntervalUnit::Minute => "minute",
            IntervalUnit::Hour => "hour",
            IntervalUnit::Day => "day",
            IntervalUnit::Week => "week",
            IntervalUnit::Month => "month",
            IntervalUnit::Year => "year",
        }
    }

    /// `minute`, `minutes`, … (as the SDKs send it).
    pub fn parse(s: &str) -> Option<IntervalUnit> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_suffix('s').unwrap_or(&s);
        IntervalUnit::ALL.into_iter().find(|u| u.as_str() == s)
    }

    fn span(self, n: i64) -> jiff::Span {
        let s = jiff::Span::new();
        match self {
            IntervalUnit::Minute => s.minutes(n),
            IntervalUnit::Hour => s.hours(n),
            IntervalUnit::Day => s.days(n),
            IntervalUnit::Week => s.weeks(n),
            IntervalUnit::Month => s.months(n),
            IntervalUnit::Year => s.years(n),
        }
    }
}

/// When a monitor's job runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// A crontab expression of five fields (`0 * * * *`) or an alias (`@daily`).
    Crontab(String),
    /// Every `n` units, counted from the last check-in.
    Interval(u32, IntervalUnit),
}

impl Schedule {
    /// A crontab expression, checked.
    pub fn crontab(expr: &str) -> Result<Schedule, String> {
        let expr = expr.trim();
        parse_crontab(expr)?;
        Ok(Schedule::Crontab(expr.to_string()))
    }

    /// An interval, checked.
    pub fn interval(n: u32, unit: IntervalUnit) -> Result<Schedule, String> {
        if n == 0 || n > MAX_INTERVAL {
            return Err(format!("an interval schedule's value must be between 1 and {MAX_INTERVAL}"));
        }
        Ok(Schedule::Interval(n, unit))
    }

    /// The kind as stored: `crontab` or `interval`.
    pub fn kind(&self) -> &'static str {
        match self {
            Schedule::Crontab(_) => "crontab",
            Schedule::Interval(..) => "interval",
        }
    }

    /// The value as stored: the expression, or `5 minute`.
    pub fn value(&self) -> String {
        match self {
            Schedule::Crontab(e) => e.clone(),
            Schedule::Interval(n, u) => format!("{n} {}", u.as_str()),
        }
    }

    /// Reads what [`kind`](Self::kind) and [`value`](Self::value) stored.
    pub fn from_stored(kind: &str, value: &str) -> Option<Schedule> {
        match kind {
            "crontab" => Some(Schedule::Crontab(value.to_string())),
            "interval" => {
                let (n, unit) = value.split_once(' ')?;
                Some(Schedule::Interval(n.parse().ok()?, IntervalUnit::parse(unit)?))
            }
            _ => None,
        }
    }

    /// The schedule in words: "every 5 minutes", "at minute 0 of every hour" (croner's words).
    pub fn describe(&self) -> String {
        match self {
            Schedule::Interval(1, u) => format!("every {}", u.as_str()),
            Schedule::Interval(n, u) => format!("every {n} {}s", u.as_str()),
            Schedule::Crontab(e) => match parse_crontab(e) {
                Ok(c) => {
                    let words = c.describe();
                    let mut chars = words.trim_end_matches('.').chars();
                    let first = chars.next().map(|f| f.to_lowercase().collect::<String>()).unwrap_or_default();
                    format!("{first}{} ({e})", chars.as_str())
                }
                Err(_) => e.clone(),
            },
        }
    }
}

fn parse_crontab(expr: &str) -> Result<croner::Cron, String> {
    // Sentry's crontabs have five fields (minute granularity); croner would also read seconds.
    if !expr.starts_with('@') && expr.split_whitespace().count() != 5 {
        return Err(format!("\"{expr}\" is not a crontab schedule: write five fields, as in \"0 * * * *\""));
    }
    croner::Cron::from_str(expr).map_err(|e| format!("\"{expr}\" is not a crontab schedule: {e}"))
}

/// A monitor's configuration, as a check-in's `monitor_config` gives it, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorConfig {
    pub schedule: Schedule,
    /// An IANA time zone name (`Europe/Vienna`); crontab schedules are read in it.
    pub timezone: String,
    /// Minutes a check-in may be late before it counts as missed.
    pub margin_minutes: u32,
    /// Minutes a run may stay in progress before it counts as timed out.
    pub max_runtime_minutes: u32,
}

impl MonitorConfig {
    /// A configuration with the defaults for what is not given; a time zone that does not
    /// exist, or a margin or run time past [`MAX_MINUTES`], is refused.
    pub fn new(schedule: Schedule, timezone: Option<&str>, margin: Option<u32>, max_runtime: Option<u32>) -> Result<MonitorConfig, String> {
        let timezone = timezone.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("UTC").to_string();
        jiff::tz::TimeZone::get(&timezone).map_err(|_| format!("\"{timezone}\" is not a time zone: name one such as \"Europe/Vienna\" or \"UTC\""))?;
        let margin_minutes = margin.unwrap_or(DEFAULT_MARGIN_MINUTES).max(1);
        let max_runtime_minutes = max_runtime.unwrap_or(DEFAULT_MAX_RUNTIME_MINUTES).max(1);
        if margin_minutes > MAX_MINUTES || max_runtime_minutes > MAX_MINUTES {
            return Err(format!("checkin_margin and max_runtime can be at most {MAX_MINUTES} minutes"));
        }
        Ok(MonitorConfig { schedule, timezone, margin_minutes, max_runtime_minutes })
    }

    fn zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// When the check-in after one at `after` (unix seconds) is expected: the crontab's next
    /// time after that minute, in the monitor's time zone, or that minute plus the interval.
    /// `None` past what the calendar can count.
    pub fn next_expected(&self, after: f64) -> Option<f64> {
        let minute = (after / 60.0).floor() as i64 * 60;
        let at = jiff::Timestamp::from_second(minute).ok()?.to_zoned(self.zone());
        let next = match &self.schedule {
            Schedule::Crontab(e) => parse_crontab(e).ok()?.find_next_occurrence(&at, false).ok()?,
            Schedule::Interval(n, unit) => at.checked_add(unit.span(*n as i64)).ok()?,
        };
        Some(next.timestamp().as_second() as f64)
    }

    /// The expected time after a missed one at `missed`, seen at `now`: the first one whose
    /// margin is not over yet (a monitor whose job stopped for days misses once, not once per
    /// time it was due).
    pub fn next_after_missed(&self, missed: f64, now: f64) -> Option<f64> {
        let late = self.margin_minutes as f64 * 60.0;
        let mut next = self.next_expected(missed)?;
        for _ in 0..1_000 {
            if next + late > now {
                return Some(next);
            }
            next = self.next_expected(next)?;
        }
        self.next_expected(now)
    }

    /// The schedule in words, with its time zone when that is not UTC.
    pub fn describe(&self) -> String {
        let s = self.schedule.describe();
        match (&self.schedule, self.timezone.as_str()) {
            (Schedule::Crontab(_), tz) if tz != "UTC" => format!("{s}, {tz} time"),
            _ => s,
        }
    }
}

/// What a check-in says of its run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckInStatus {
    InProgress,
    Ok,
    Error,
}

impl CheckInStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckInStatus::InProgress => "in_progress",
            CheckInStatus::Ok => "ok",
            CheckInStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<CheckInStatus> {
        match s {
            "in_progress" => Some(CheckInStatus::InProgress),
            "ok" => Some(CheckInStatus::Ok),
            "error" => Some(CheckInStatus::Error),
            _ => None,
        }
    }
}

/// A check-in to store, as ingest read it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCheckIn {
    pub project_id: ProjectId,
    /// The run's id: an `in_progress` check-in and the `ok` / `error` that closes it share it.
    pub check_in_id: EventId,
    /// A slug ([`monitor_slug`]).
    pub monitor_slug: String,
    pub status: CheckInStatus,
    /// Seconds, as the client measured them.
    pub duration: Option<f64>,
    pub release: Option<String>,
    pub environment: Option<String>,
    /// Creates the monitor, or replaces its configuration.
    pub config: Option<MonitorConfig>,
    /// Unix seconds.
    pub timestamp: f64,
    pub received: f64,
}

/// Why a monitor's run failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorFailureKind {
    /// No check-in by the expected time plus the margin.
    Missed,
    /// In progress for longer than the longest run.
    Timeout,
    /// The job said it failed.
    Error,
}

impl MonitorFailureKind {
    /// The run's status for it.
    pub fn status(self) -> &'static str {
        match self {
            MonitorFailureKind::Missed => "missed",
            MonitorFailureKind::Timeout => "timeout",
            MonitorFailureKind::Error => "error",
        }
    }

    pub fn of_status(s: &str) -> Option<MonitorFailureKind> {
        match s {
            "missed" => Some(MonitorFailureKind::Missed),
            "timeout" => Some(MonitorFailureKind::Timeout),
            "error" => Some(MonitorFailureKind::Error),
            _ => None,
        }
    }

    /// In words, for an issue's title.
    pub fn describe(self) -> &'static str {
        match self {
            MonitorFailureKind::Missed => "missed check-in",
            MonitorFailureKind::Timeout => "timed out",
            MonitorFailureKind::Error => "check-in failed",
        }
    }
}

/// A stored monitor.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorRow {
    pub id: i64,
    pub project_id: ProjectId,
    pub slug: String,
    pub config: MonitorConfig,
    /// `active` (no run finished yet), `ok`, `error`, `missed` or `timeout`: how its last run went.
    pub status: String,
    pub last_check_in: Option<f64>,
    pub next_expected: Option<f64>,
    pub created: f64,
}

/// One run of a monitor: a job's check-ins, or a missed one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MonitorRunRow {
    pub id: i64,
    pub monitor_id: i64,
    /// The check-ins' id (none for a missed run).
    pub check_in_id: Option<String>,
    /// `in_progress`, `ok`, `error`, `missed` or `timeout`.
    pub status: String,
    /// Unix seconds: when it started (a missed run: when it was expected).
    pub started: f64,
    pub finished: Option<f64>,
    /// Seconds.
    pub duration: Option<f64>,
    pub release: Option<String>,
    pub environment: Option<String>,
}

/// A failed run not yet made an issue's event.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorFailure {
    pub run_id: i64,
    pub project_id: ProjectId,
    pub monitor_id: i64,
    pub slug: String,
    pub kind: MonitorFailureKind,
    /// When it happened (a missed run: when it was expected).
    pub at: f64,
    pub release: Option<String>,
    pub environment: Option<String>,
}

/// The times of a run a check-in opens (or is alone): backends insert what this says.
pub(crate) struct RunTimes {
    pub started: f64,
    pub finished: Option<f64>,
    pub duration: Option<f64>,
    /// When it times out, if it is open.
    pub deadline: Option<f64>,
}

/// The run of a check-in that finds none open: `in_progress` opens one, due to end within the
/// longest run; `ok` / `error` alone are a run of their own, started its duration earlier.
pub(crate) fn plan_run(c: &NewCheckIn, config: &MonitorConfig) -> RunTimes {
    match c.status {
        CheckInStatus::InProgress => RunTimes {
            started: c.timestamp,
            finished: None,
            duration: None,
            deadline: Some(c.timestamp + config.max_runtime_minutes as f64 * 60.0),
        },
        _ => {
            let duration = c.duration.unwrap_or(0.0).max(0.0);
            RunTimes { started: c.timestamp - duration, finished: Some(c.timestamp), duration: Some(duration), deadline: None }
        }
    }
}

/// A closing check-in's duration: the client's, else since the run was opened.
pub(crate) fn closing_duration(c: &NewCheckIn, started: f64) -> f64 {
    c.duration.unwrap_or(c.timestamp - started).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> f64 {
        s.parse::<jiff::Timestamp>().unwrap().as_second() as f64
    }

    fn config(schedule: Schedule, tz: Option<&str>) -> MonitorConfig {
        MonitorConfig::new(schedule, tz, None, None).unwrap()
    }

    #[test]
    fn next_expected_from_a_crontab_in_its_time_zone() {
        let hourly = config(Schedule::crontab("0 * * * *").unwrap(), None);
        assert_eq!(hourly.next_expected(at("2026-03-01T10:00:30Z")), Some(at("2026-03-01T11:00:00Z")));
        assert_eq!(hourly.next_expected(at("2026-03-01T10:59:59Z")), Some(at("2026-03-01T11:00:00Z")));
        // 02:30 every day in Vienna: one hour ahead of UTC in winter, two in summer.
        let vienna = config(Schedule::crontab("30 2 * * *").unwrap(), Some("Europe/Vienna"));
        assert_eq!(vienna.next_expected(at("2026-01-10T12:00:00Z")), Some(at("2026-01-11T01:30:00Z")));
        assert_eq!(vienna.next_expected(at("2026-07-10T12:00:00Z")), Some(at("2026-07-11T00:30:00Z")));
        assert!(vienna.describe().contains("Europe/Vienna"), "{}", vienna.describe());
        let daily = config(Schedule::crontab("@daily").unwrap(), None);
        assert_eq!(daily.next_expected(at("2026-03-01T10:00:00Z")), Some(at("2026-03-02T00:00:00Z")));
    }

    #[test]
    fn next_expected_from_an_interval() {
        let five = config(Schedule::interval(5, IntervalUnit::Minute).unwrap(), None);
        assert_eq!(five.next_expected(at("2026-03-01T10:00:42Z")), Some(at("2026-03-01T10:05:00Z")));
        let monthly = config(Schedule::interval(1, IntervalUnit::Month).unwrap(), None);
        assert_eq!(monthly.next_expected(at("2026-01-31T08:00:00Z")), Some(at("2026-02-28T08:00:00Z")));
        assert_eq!(Schedule::interval(5, IntervalUnit::Minute).unwrap().describe(), "every 5 minutes");
        assert_eq!(Schedule::interval(1, IntervalUnit::Day).unwrap().describe(), "every day");
        let stored = Schedule::from_stored("interval", "5 minute").unwrap();
        assert_eq!(stored, Schedule::Interval(5, IntervalUnit::Minute));
    }

    #[test]
    fn a_long_silence_is_missed_once() {
        let five = config(Schedule::interval(5, IntervalUnit::Minute).unwrap(), None);
        let missed = at("2026-03-01T10:05:00Z");
        // Seen three hours later: the next expected time is the next one still within its margin.
        let next = five.next_after_missed(missed, at("2026-03-01T13:02:30Z")).unwrap();
        assert_eq!(next, at("2026-03-01T13:05:00Z"));
        let next = five.next_after_missed(missed, at("2026-03-01T10:06:30Z")).unwrap();
        assert_eq!(next, at("2026-03-01T10:10:00Z"));
    }

    #[test]
    fn bad_configs_are_refused() {
        for bad in ["", "* * * *", "61 * * * *", "* * * * * * *", "0 0 32 * *", "every day"] {
            assert!(Schedule::crontab(bad).is_err(), "{bad:?}");
        }
        assert!(Schedule::interval(0, IntervalUnit::Hour).is_err());
        assert!(Schedule::interval(MAX_INTERVAL + 1, IntervalUnit::Hour).is_err());
        let hourly = Schedule::crontab("0 * * * *").unwrap();
        assert!(MonitorConfig::new(hourly.clone(), Some("Mars/Olympus"), None, None).unwrap_err().contains("not a time zone"));
        assert!(MonitorConfig::new(hourly.clone(), None, Some(MAX_MINUTES + 1), None).is_err());
        let c = MonitorConfig::new(hourly, None, None, None).unwrap();
        assert_eq!((c.timezone.as_str(), c.margin_minutes, c.max_runtime_minutes), ("UTC", 1, 30));
        assert_eq!(IntervalUnit::parse("Minutes"), Some(IntervalUnit::Minute));
        assert_eq!(IntervalUnit::parse("fortnight"), None);
        assert_eq!(monitor_slug("Nightly Backup").unwrap(), "nightly-backup");
        assert!(monitor_slug("***").is_err());
        assert!(monitor_slug(&"a".repeat(51)).is_err());
    }
}
