//! The [`Notification`] value every plugin renders: which group, why the rule fired, the top
//! in-app frames and the link back; plus the plain-text renderings plugins share.

use serde::{Deserialize, Serialize};

/// One message about one group, as a rule firing produced it. Serialised as JSON into the
/// outbox, and (as is) the body of the generic webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The firing id: the same for every attempt and every plugin call of one firing.
    pub id: String,
    /// The project's slug.
    pub project: String,
    pub group_id: i64,
    pub title: String,
    pub culprit: String,
    /// `fatal`, `error`, `warning`, `info` or `debug`.
    pub level: String,
    /// The event kind: `Exception`, `Message`, `Query`, `Transaction`, or a custom one.
    pub kind: String,
    /// Events in the group so far.
    pub count: u64,
    /// Unix seconds.
    pub first_seen: f64,
    pub last_seen: f64,
    /// The group's page on the dashboard, as the web crate's path table spells it.
    pub link: String,
    /// The rule that fired.
    pub rule: String,
    pub reason: Reason,
    /// The latest event's id (32 hex digits), when known.
    #[serde(default)]
    pub event_id: Option<String>,
    /// The latest event's tags.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// The top in-app frames of the stack trace, innermost first.
    #[serde(default)]
    pub frames: Vec<Frame>,
    /// A test message (`sentry notify test`), not a real firing.
    #[serde(default)]
    pub test: bool,
}

/// Why a rule fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reason {
    /// The group was seen for the first time.
    NewGroup,
    /// A resolved group had a new event.
    Regression,
    /// More than `count` events in `minutes` minutes; `observed` were counted.
    Frequency { count: u64, minutes: u64, observed: u64 },
    /// The group's p95 duration is above `threshold_ms`.
    Slow { threshold_ms: f64, p95_ms: f64 },
    /// The issue was resolved: plugins that opened something for it (an incident, an alert)
    /// close it. Sent only to the actions of plugins whose [`crate::Plugin::resolves`] is true,
    /// of rules that fired for the group.
    Resolved,
    /// A cron monitor's run failed: missed, timed out or an error (the issue's title says which).
    MonitorFailed,
    /// `sentry notify test`.
    Test,
    /// Someone (`by`, an email) assigned the issue to the recipient, or to `to`, a team of
    /// theirs (`you` when to them). Sent by email to that person only, not through rules.
    Assigned { by: String, to: String },
    /// Someone (`by`) mentioned the recipient in a comment (`text`). Sent by email to them only.
    Mentioned { by: String, text: String },
}

impl Reason {
    /// The machine name: `new_group`, `regression`, `frequency`, `slow`, `resolved` or `test`.
    pub fn name(&self) -> &'static str {
        match self {
            Reason::NewGroup => "new_group",
            Reason::Regression => "regression",
            Reason::Frequency { .. } => "frequency",
            Reason::Slow { .. } => "slow",
            Reason::Resolved => "resolved",
            Reason::MonitorFailed => "monitor_failed",
            Reason::Test => "test",
            Reason::Assigned { .. } => "assigned",
            Reason::Mentioned { .. } => "mentioned",
        }
    }

    /// In plain words, for people.
    pub fn describe(&self) -> String {
        match self {
            Reason::NewGroup => "New issue".into(),
            Reason::Regression => "Regression: a resolved issue happened again".into(),
            Reason::Frequency { count, minutes, observed } => {
                format!("{observed} events in {minutes} minutes (the rule allows {count})")
            }
            Reason::Slow { threshold_ms, p95_ms } => {
                format!("Slow: p95 duration {p95_ms:.0} ms is above {threshold_ms:.0} ms")
            }
            Reason::Resolved => "Resolved".into(),
            Reason::MonitorFailed => "A cron monitor failed".into(),
            Reason::Test => "Test message from `sentry notify test`".into(),
            Reason::Assigned { by, to } => format!("{by} assigned this issue to {to}."),
            Reason::Mentioned { by, text } => format!("{by} mentioned you in a comment:\n\n{text}"),
        }
    }

    /// Why the recipient got it, for the end of a message.
    pub fn why_sent(&self, rule: &str) -> String {
        match self {
            Reason::Assigned { .. } => "Sent by Sentry because this issue was assigned to you or your team.".into(),
            Reason::Mentioned { .. } => "Sent by Sentry because you were mentioned in a comment.".into(),
            _ => format!("Sent by Sentry because the rule \"{rule}\" fired."),
        }
    }
}

/// One stack frame, as notifications show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Module, or file name when there is no module.
    pub module: String,
    pub function: String,
    #[serde(default)]
    pub lineno: Option<u64>,
    /// The source line, when the client sent it.
    #[serde(default)]
    pub context_line: Option<String>,
}

impl Frame {
    /// `module in function at line 12`
    pub fn describe(&self) -> String {
        let mut s = format!("{} in {}", self.module, self.function);
        if let Some(line) = self.lineno {
            s.push_str(&format!(" at line {line}"));
        }
        s
    }
}

impl Notification {
    /// The key that names this notification's issue at an incident service (PagerDuty's
    /// `dedup_key`, Opsgenie's `alias`): the same for every firing about the group, so a
    /// resolve closes what the firings opened. A test message has a key of its own, so it
    /// never joins a real incident.
    pub fn issue_key(&self) -> String {
        if self.test {
            format!("sentry-{}-test", self.project)
        } else {
            format!("sentry-{}-{}", self.project, self.group_id)
        }
    }

    /// Whether this notification closes the issue (an incident service resolves it) rather
    /// than reports it.
    pub fn is_resolve(&self) -> bool {
        self.reason == Reason::Resolved
    }

    /// The one-line summary chat plugins post: `[project] LEVEL: title (reason) link`.
    pub fn one_line(&self) -> String {
        let title: String = self.title.chars().filter(|c| !c.is_control()).take(200).collect();
        format!(
            "[{}] {}: {} ({}) {}",
            self.project,
            self.level.to_uppercase(),
            title,
            self.reason.describe(),
            self.link
        )
    }

    /// The subject line of an email, the seed's style: `[Sentry] ERROR: title`.
    pub fn subject(&self, prefix: &str) -> String {
        let title: String = self.title.chars().filter(|c| !c.is_control()).take(150).collect();
        let test = if self.test { "TEST " } else { "" };
        let personal = match self.reason {
            Reason::Assigned { .. } => "Assigned to you: ",
            Reason::Mentioned { .. } => "You were mentioned: ",
            _ => "",
        };
        format!("{prefix}{test}{personal}{}: {title}", self.level.to_uppercase())
    }

    /// The frames as a few indented lines, innermost first.
    pub fn frames_text(&self) -> String {
        let mut out = String::new();
        for f in &self.frames {
            out.push_str(&format!("  {}\n", f.describe()));
            if let Some(line) = f.context_line.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
                out.push_str(&format!("      {line}\n"));
            }
        }
        out
    }
}

/// Text made safe inside HTML elements and attribute values.
pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `2024-05-01T12:00:00Z` (RFC 3339, UTC) for unix seconds.
pub(crate) fn rfc3339(secs: f64) -> String {
    let secs = secs.max(0.0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
pub(crate) fn sample() -> Notification {
    Notification {
        id: "rule:errors:group:7:activity:12".into(),
        project: "shop".into(),
        group_id: 7,
        title: "ZeroDivisionError: division by zero".into(),
        culprit: "shop.cart in total".into(),
        level: "error".into(),
        kind: "Exception".into(),
        count: 3,
        first_seen: 1_700_000_000.0,
        last_seen: 1_700_000_060.0,
        link: "https://sentry.example.com/projects/shop/groups/7/".into(),
        rule: "errors".into(),
        reason: Reason::NewGroup,
        event_id: Some("0123456789abcdef0123456789abcdef".into()),
        tags: vec![("server".into(), "web-1".into())],
        frames: vec![
            Frame { module: "shop.cart".into(), function: "total".into(), lineno: Some(42), context_line: Some("return a / b".into()) },
            Frame { module: "shop.views".into(), function: "checkout".into(), lineno: Some(7), context_line: None },
        ],
        test: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_keys_name_the_group_and_keep_tests_apart() {
        let mut n = sample();
        assert_eq!(n.issue_key(), "sentry-shop-7");
        n.test = true;
        assert_eq!(n.issue_key(), "sentry-shop-test");
    }

    #[test]
    fn round_trips_as_json() {
        let n = sample();
        let json = serde_json::to_string(&n).unwrap();
        assert!(json.contains(r#""reason":{"type":"new_group"}"#), "{json}");
        assert_eq!(serde_json::from_str::<Notification>(&json).unwrap(), n);
    }

    #[test]
    fn one_line_has_project_level_title_and_link() {
        let line = sample().one_line();
        assert_eq!(
            line,
            "[shop] ERROR: ZeroDivisionError: division by zero (New issue) https://sentry.example.com/projects/shop/groups/7/"
        );
        let mut n = sample();
        n.title = "two\nlines\r".into();
        assert!(!n.one_line().contains('\n'));
    }

    #[test]
    fn subject_and_frames() {
        assert_eq!(sample().subject("[Sentry] "), "[Sentry] ERROR: ZeroDivisionError: division by zero");
        assert_eq!(
            sample().frames_text(),
            "  shop.cart in total at line 42\n      return a / b\n  shop.views in checkout at line 7\n"
        );
    }
}
