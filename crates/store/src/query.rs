//! The query model, the same for every backend: the project stream (sort, status, interval,
//! tag filters, words, keyset cursor) and what it answers; bucket resolutions.
//!
//! Counts in an interval are read from the coarsest buckets that still give about 24 points
//! over it (minutes up to 3 hours, hours up to 3 days, days beyond), so an interval's first
//! bucket may include up to one bucket of events from just before it.

use crate::{GroupRow, GroupStatus, ProjectId};

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
            _ => return None,
        })
    }
    pub const NAMES: &'static [&'static str] =
        &["priority", "last_seen", "first_seen", "frequency", "time_spent", "total_time_spent"];
}

/// Which statuses to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    Only(GroupStatus),
    All,
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
            cursor: None,
            limit: 25,
            sparkline_points: 24,
        }
    }
}

/// One row of the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamRow {
    pub group: GroupRow,
    /// Events in the interval (all time without one).
    pub interval_count: u64,
    /// Distinct values of the `user` tag.
    pub users: u64,
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

