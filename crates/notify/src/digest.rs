//! The [`Digest`]: a daily or weekly report per project — new issues, regressions, the busiest
//! issues and the slowest queries of the period — and its plain-text and HTML renderings, which
//! the email plugin sends as one message ([`crate::email::send_digest`]).

use serde::{Deserialize, Serialize};

use crate::notification::{html_escape as esc, rfc3339};

/// One report over `[from, to)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    /// `Daily` or `Weekly`.
    pub period: String,
    /// Unix seconds.
    pub from: f64,
    pub to: f64,
    pub projects: Vec<ProjectDigest>,
}

/// One project's part of a [`Digest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectDigest {
    pub project: String,
    /// The project's stream on the dashboard.
    pub link: String,
    /// Events received in the period.
    pub events: u64,
    /// Every issue first seen in the period (the list may be cut; `new_count` is all of them).
    pub new_issues: Vec<DigestIssue>,
    pub new_count: u64,
    /// Issues that came back after they were resolved, in the period.
    pub regressions: Vec<DigestIssue>,
    pub regression_count: u64,
    /// The issues with the most events in the period, most first.
    pub busiest: Vec<DigestIssue>,
    /// The Query issues with the highest p95 duration, slowest first.
    pub slowest: Vec<DigestIssue>,
}

/// One issue as a digest lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DigestIssue {
    pub title: String,
    pub level: String,
    /// Events in the period.
    pub events: u64,
    /// The p95 duration, for queries.
    pub p95_ms: Option<f64>,
    pub link: String,
}

impl Digest {
    /// `[Sentry] Daily report: 3 new issues, 1 regression`.
    pub fn subject(&self, prefix: &str) -> String {
        let new: u64 = self.projects.iter().map(|p| p.new_count).sum();
        let back: u64 = self.projects.iter().map(|p| p.regression_count).sum();
        format!("{prefix}{} report: {}, {}", self.period, plural(new, "new issue"), plural(back, "regression"))
    }

    fn span(&self) -> String {
        format!("{} to {}", day(self.from), day(self.to))
    }

    /// The plain-text part.
    pub fn text(&self) -> String {
        let mut out = format!("{} report, {}\n", self.period, self.span());
        for p in &self.projects {
            out.push_str(&format!("\n== {} ({}) ==\n{}\n", p.project, plural(p.events, "event"), p.link));
            let sections = [
                (format!("New issues: {}", p.new_count), &p.new_issues),
                (format!("Regressions: {}", p.regression_count), &p.regressions),
                ("Busiest issues:".to_string(), &p.busiest),
                ("Slowest queries:".to_string(), &p.slowest),
            ];
            for (heading, issues) in sections {
                out.push_str(&format!("\n{heading}\n"));
                if issues.is_empty() {
                    out.push_str("  none\n");
                }
                for i in issues {
                    out.push_str(&format!("  {}\n      {}\n", line(i), i.link));
                }
            }
        }
        out.push_str("\n-- \nSent by Sentry: the report of the [notify] digest setting.\n");
        out
    }

    /// The HTML part.
    pub fn html(&self) -> String {
        let mut body = format!("<h1>{} report</h1><p>{}</p>", esc(&self.period), esc(&self.span()));
        for p in &self.projects {
            body.push_str(&format!(
                "<h2><a href=\"{}\">{}</a></h2><p>{}</p>",
                esc(&p.link),
                esc(&p.project),
                esc(&plural(p.events, "event"))
            ));
            let sections = [
                ("new", format!("New issues: {}", p.new_count), &p.new_issues),
                ("regressions", format!("Regressions: {}", p.regression_count), &p.regressions),
                ("busiest", "Busiest issues".to_string(), &p.busiest),
                ("slowest", "Slowest queries".to_string(), &p.slowest),
            ];
            for (class, heading, issues) in sections {
                body.push_str(&format!("<h3>{}</h3><ul class=\"{class}\">", esc(&heading)));
                for i in issues {
                    body.push_str(&format!("<li><a href=\"{}\">{}</a></li>", esc(&i.link), esc(&line(i))));
                }
                body.push_str("</ul>");
            }
        }
        format!(
            "<!DOCTYPE html><html><body style=\"font-family: sans-serif\">{body}\
             <p style=\"color: #888\">Sent by Sentry: the report of the [notify] digest setting.</p></body></html>"
        )
    }
}

/// `ERROR: title (12 events, p95 830 ms)`
fn line(i: &DigestIssue) -> String {
    let title: String = i.title.chars().filter(|c| !c.is_control()).take(200).collect();
    match i.p95_ms {
        Some(p95) => format!("{}: {title} ({}, p95 {p95:.0} ms)", i.level.to_uppercase(), plural(i.events, "event")),
        None => format!("{}: {title} ({})", i.level.to_uppercase(), plural(i.events, "event")),
    }
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// `2024-05-01 12:00 UTC`
fn day(secs: f64) -> String {
    let iso = rfc3339(secs);
    format!("{} UTC", iso[..16].replace('T', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(title: &str, events: u64, p95: Option<f64>) -> DigestIssue {
        DigestIssue { title: title.into(), level: "error".into(), events, p95_ms: p95, link: format!("https://s.example/{title}") }
    }

    #[test]
    fn renders_counts_in_text_and_html() {
        let d = Digest {
            period: "Daily".into(),
            from: 1_700_000_000.0,
            to: 1_700_086_400.0,
            projects: vec![ProjectDigest {
                project: "shop".into(),
                link: "https://s.example/p/shop/".into(),
                events: 12,
                new_issues: vec![issue("KeyError: <id>", 3, None)],
                new_count: 1,
                regressions: Vec::new(),
                regression_count: 0,
                busiest: vec![issue("KeyError: <id>", 3, None)],
                slowest: vec![issue("SELECT ?", 1, Some(812.4))],
            }],
        };
        assert_eq!(d.subject("[Sentry] "), "[Sentry] Daily report: 1 new issue, 0 regressions");
        let text = d.text();
        assert!(text.starts_with("Daily report, 2023-11-14 22:13 UTC to 2023-11-15 22:13 UTC\n"), "{text}");
        assert!(text.contains("New issues: 1\n  ERROR: KeyError: <id> (3 events)\n"), "{text}");
        assert!(text.contains("Regressions: 0\n  none\n"), "{text}");
        assert!(text.contains("ERROR: SELECT ? (1 event, p95 812 ms)"), "{text}");
        let html = d.html();
        assert!(html.contains("<ul class=\"new\"><li><a href=\"https://s.example/KeyError: &lt;id&gt;\">ERROR: KeyError: &lt;id&gt; (3 events)</a></li></ul>"), "{html}");
        assert!(html.contains("<ul class=\"regressions\"></ul>"), "{html}");
    }
}
