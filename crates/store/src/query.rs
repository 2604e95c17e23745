//! The group query model: sort, status, interval, tag filters, paging.

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
    Only(crate::GroupStatus),
    All,
}

/// A request for a page of groups of one project.
#[derive(Clone, Debug)]
pub struct GroupQuery {
    pub project_id: i64,
    pub sort: Sort,
    pub status: StatusFilter,
    /// Only groups seen at or after this time (unix seconds).
    pub since: Option<f64>,
    /// Every (key, value) must be a tag value seen in the group.
    pub tags: Vec<(String, String)>,
    pub limit: usize,
    pub offset: usize,
}

impl GroupQuery {
    pub fn new(project_id: i64) -> Self {
        GroupQuery {
            project_id,
            sort: Sort::LastSeen,
            status: StatusFilter::Only(crate::GroupStatus::Unresolved),
            since: None,
            tags: Vec::new(),
            limit: 100,
            offset: 0,
        }
    }
}
