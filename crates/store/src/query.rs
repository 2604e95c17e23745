//! The query model, the same for every backend: the project stream (sort, status, interval,
//! tag conditions, comparisons, assignees, words, keyset cursor) and what it answers; bucket
//! resolutions.
//!
//! Counts in an interval are read from the coarsest buckets that still give about 24 points
//! over it (minutes up to 3 hours, hours up to 3 days, days beyond), so an interval's first
//! bucket may include up to one bucket of events from just before it.

use crate::{GroupRow, GroupStatus, ProjectId, TagCount, TeamId, UserId};

/// How groups are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Recent and frequent first: `last_seen + 600 · ln(count)` (the seed's score).
    Priority,
    LastSeen,
    FirstSeen,
    /// Most events (in the interval when one is given).
    Frequency,
    /// Highest average duration.
    TimeSpent,
    /// Highest total duration.
    TimeSpentTotal,
    /// Most distinct users (all time: the count kept on the group).
    Users,
}

impl Sort {
    pub fn parse(s: &str) -> Option<Sort> {
        Some(match s {
            "priority" => Sort::Priority,
            "last_seen" | "date" => Sort::LastSeen,
            "first_seen" | "new" => Sort::FirstSeen,
            "frequency" | "freq" => Sort::Frequency,
            "time_spent" | "avg_time_spent" => Sort::TimeSpent,
            "total_time_spent" => Sort::TimeSpentTotal,
            "users" | "user" => Sort::Users,
            _ => return None,
        })
    }
    pub const NAMES: &'static [&'static str] =
        &["priority", "last_seen", "first_seen", "frequency", "time_spent", "total_time_spent", "users"];
}

/// Which statuses to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    Only(GroupStatus),
    All,
}

/// A condition on the tag values a group's events carried (`level:[error,fatal]`,
/// `!server:web-*`, `has:user`, `first_release:1.2`).
#[derive(Clone, Debug, PartialEq)]
pub struct TagCondition {
    pub key: String,
    /// Any of these values matches; a `*` in one matches any run of characters. Empty: any
    /// value at all (`has:key`).
    pub values: Vec<String>,
    /// The group must have no matching value instead.
    pub negated: bool,
    /// Only the group's first value of the key counts (the one seen earliest): `first_release:`.
    pub first_only: bool,
}

impl TagCondition {
    /// The group carried `key` with one of `values`.
    pub fn any_of(key: &str, values: Vec<String>) -> TagCondition {
        TagCondition { key: key.to_string(), values, negated: false, first_only: false }
    }
}

/// The number of a group that a comparison reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupField {
    /// Events, all time (`times_seen:`).
    TimesSeen,
    /// Distinct users, all time (`users:`).
    Users,
    /// Unix seconds (`age:`, `first_seen:`).
    FirstSeen,
    /// Unix seconds (`last_seen:`).
    LastSeen,
}

/// How a comparison compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Cmp {
    /// The SQL operator (the same in both dialects).
    pub fn sql(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Eq => "=",
            Cmp::Ge => ">=",
            Cmp::Gt => ">",
        }
    }
}

/// `field cmp value` on the group (`times_seen:>100`, `age:-24h`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    pub field: GroupField,
    pub cmp: Cmp,
    pub value: f64,
}

/// Who an issue is assigned to: a member or a team.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Assignee {
    User(UserId),
    Team(TeamId),
}

/// A condition on the assignee: `assigned:me`, `assigned:#ops`, `is:unassigned`, `!assigned:me`.
#[derive(Clone, Debug, PartialEq)]
pub struct AssigneeCondition {
    /// Assigned to one of these; `None`: to anyone.
    pub to: Option<Vec<Assignee>>,
    /// Not assigned so instead (`is:unassigned` is "not assigned to anyone").
    pub negated: bool,
}

/// Time resolution of a bucket table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    /// The coarsest resolution that still gives about 24 buckets over `span` seconds.
    pub fn for_span(span: f64) -> Resolution {
        if span <= 3.0 * 3600.0 {
            Resolution::Minute
        } else if span <= 3.0 * 86400.0 {
            Resolution::Hour
        } else {
            Resolution::Day
        }
    }

    pub fn seconds(self) -> f64 {
        match self {
            Resolution::Minute => 60.0,
            Resolution::Hour => 3600.0,
            Resolution::Day => 86400.0,
        }
    }

    /// The bucket number holding time `t`.
    pub fn slot(self, t: f64) -> i64 {
        (t / self.seconds()).floor() as i64
    }

}

/// Where the next page starts: the sort value and id of the last row shown.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cursor {
    pub value: f64,
    pub id: i64,
}

impl Cursor {
    /// `VALUE:ID`, for URLs.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.value, self.id)
    }

    pub fn parse(s: &str) -> Option<Cursor> {
        let (v, id) = s.split_once(':')?;
        let value: f64 = v.parse().ok()?;
        value.is_finite().then_some(())?;
        Some(Cursor { value, id: id.parse().ok()? })
    }
}

/// A page request of the project stream.
#[derive(Clone, Debug)]
pub struct StreamQuery {
    pub project_id: ProjectId,
    pub sort: Sort,
    pub status: StatusFilter,
    /// Only groups seen at or after this time (unix seconds); `None` is all time.
    pub since: Option<f64>,
    /// The end of the interval (normally now).
    pub now: f64,
    /// Every (key, value) must be a tag value seen in the group.
    pub tags: Vec<(String, String)>,
    /// Words that must appear in the title or culprit (case-insensitive for ASCII).
    pub text: Vec<String>,
    /// Every condition on tag values must hold.
    pub conditions: Vec<TagCondition>,
    /// Every comparison must hold.
    pub comparisons: Vec<Comparison>,
    /// Every condition on the assignee must hold.
    pub assigned: Vec<AssigneeCondition>,
    /// Only groups with events in one of these environments (values of the `environment`
    /// tag), in the interval when there is one; empty: every environment. See
    /// [`StreamQuery::counts_by_environment`] for what the counts then are.
    pub environments: Vec<String>,
    pub cursor: Option<Cursor>,
    pub limit: usize,
    /// Points in each row's sparkline (0 for none).
    pub sparkline_points: usize,
}

impl StreamQuery {
    pub fn new(project_id: ProjectId, now: f64) -> StreamQuery {
        StreamQuery {
            project_id,
            sort: Sort::Priority,
            status: StatusFilter::Only(GroupStatus::Unresolved),
            since: None,
            now,
            tags: Vec::new(),
            text: Vec::new(),
            conditions: Vec::new(),
            comparisons: Vec::new(),
            assigned: Vec::new(),
            environments: Vec::new(),
            cursor: None,
            limit: 25,
            sparkline_points: 24,
        }
    }
}

impl StreamQuery {
    /// Whether the rows' counts (and the frequency sort) are of the chosen environments only.
    /// They are without an interval: a group's events per environment are kept all time (in
    /// its `environment` tag values). The minute / hour / day buckets don't record the
    /// environment, so counts in an interval stay those of every environment.
    pub fn counts_by_environment(&self) -> bool {
        !self.environments.is_empty() && self.since.is_none()
    }
}

/// One row of the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamRow {
    pub group: GroupRow,
    /// Events in the interval (all time without one).
    pub interval_count: u64,
    /// Distinct users (values of the `user` tag: user.id, else email, username, IP) seen in
    /// the interval (all time without one).
    pub users: u64,
    pub assignee: Option<Assignee>,
    pub sparkline: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StreamPage {
    pub rows: Vec<StreamRow>,
    /// The cursor of the next page, when there is one.
    pub next: Option<Cursor>,
}

/// One bar of a duration histogram: `[lower_ms, upper_ms)` and how many durations fell in it.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramBar {
    pub lower_ms: f64,
    pub upper_ms: f64,
    pub count: u64,
}

/// A trending group: events in the last 15 minutes against its last 24 hours.
#[derive(Clone, Debug, PartialEq)]
pub struct Trending {
    pub group: GroupRow,
    pub last_15m: u64,
    pub last_24h: u64,
    /// How many times its 24-hour average rate the last 15 minutes ran at.
    pub ratio: f64,
}

/// A search value with `*` wildcards as a SQL `LIKE` pattern (escape character `\\`).
pub(crate) fn like_pattern(value: &str) -> String {
    value.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_").replace('*', "%")
}

/// Spreads `(slot, count)` rows of resolution `res` over `points` equal parts of [since, now].
pub(crate) fn spread(rows: impl Iterator<Item = (i64, u64)>, res: Resolution, since: f64, now: f64, points: usize) -> Vec<u64> {
    let mut out = vec![0u64; points];
    let span = (now - since).max(1.0);
    for (slot, n) in rows {
        let t = (slot as f64 + 0.5) * res.seconds();
        let i = (((t - since) / span) * points as f64).floor();
        let i = (i.max(0.0) as usize).min(points.saturating_sub(1));
        if let Some(o) = out.get_mut(i) {
            *o += n;
        }
    }
    out
}

/// How hot a group runs: its rate per minute in the last 15 minutes over its average rate in
/// the last 24 hours (which include those 15 minutes). Returns the 24-hour count and the ratio.
pub(crate) fn trending_ratio(last_15m: u64, last_24h: u64) -> (u64, f64) {
    let day = last_24h.max(last_15m);
    (day, (last_15m as f64 / 15.0) / (day.max(1) as f64 / 1440.0))
}

/// Tag values (key, value, count), sorted by key then count, as at most `per_key` values per key.
pub(crate) fn per_key(rows: impl Iterator<Item = (String, String, i64)>, per_key: usize) -> Vec<(String, Vec<TagCount>)> {
    let mut out: Vec<(String, Vec<TagCount>)> = Vec::new();
    for (k, v, n) in rows {
        if out.last().map(|(lk, _)| lk != &k).unwrap_or(true) {
            out.push((k, Vec::new()));
        }
        if let Some((_, vals)) = out.last_mut().filter(|(_, vals)| vals.len() < per_key) {
            vals.push(TagCount { value: v, count: n.max(0) as u64 });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = Cursor { value: 1_700_000_000.123_456_7, id: 42 };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        assert_eq!(Cursor::parse("x:1"), None);
        assert_eq!(Cursor::parse("inf:1"), None);
    }

    #[test]
    fn spread_puts_buckets_in_their_part() {
        let now = 86400.0 * 10.0;
        let since = now - 3600.0;
        let rows = vec![(Resolution::Minute.slot(since), 2), (Resolution::Minute.slot(now - 1.0), 5)];
        let s = spread(rows.into_iter(), Resolution::Minute, since, now, 12);
        assert_eq!(s.len(), 12);
        assert_eq!((s[0], s[11], s.iter().sum::<u64>()), (2, 5, 7));
    }

    #[test]
    fn a_group_seen_only_in_the_last_minutes_trends_highest() {
        assert_eq!(trending_ratio(15, 15), (15, 96.0));
        assert_eq!(trending_ratio(15, 1440).1, 1.0);
    }
}
