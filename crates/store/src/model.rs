//! The values the store takes and gives back: typed ids, projects, keys, events to write,
//! group and event rows to read. Backend-neutral: no SQL here.

use std::fmt;

pub use protocol::{EventId, Level, ProjectId};
use serde::Serialize;

/// A group's (issue's) id, unique across projects. A plain number in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct GroupId(pub i64);

/// A user's id. A plain number in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

/// An organisation's id. A plain number in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OrgId(pub i64);

/// A team's id. A plain number in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TeamId(pub i64);

/// An API token's id (not its secret). A plain number in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TokenId(pub i64);

macro_rules! id_traits {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
        impl std::str::FromStr for $t {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    )*};
}
id_traits!(GroupId, UserId, OrgId, TeamId, TokenId);

/// A group's triage status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    Unresolved,
    Resolved,
    Ignored,
}

impl GroupStatus {
    /// The status as both schemas store it: 0 unresolved, 1 resolved, 2 ignored.
    pub(crate) fn code(self) -> i64 {
        match self {
            GroupStatus::Unresolved => 0,
            GroupStatus::Resolved => 1,
            GroupStatus::Ignored => 2,
        }
    }

    /// The status of a stored code; anything unknown reads as unresolved.
    pub(crate) fn of_code(code: i64) -> GroupStatus {
        match code {
            1 => GroupStatus::Resolved,
            2 => GroupStatus::Ignored,
            _ => GroupStatus::Unresolved,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Unresolved => "unresolved",
            GroupStatus::Resolved => "resolved",
            GroupStatus::Ignored => "ignored",
        }
    }
    pub fn parse(s: &str) -> Option<GroupStatus> {
        Some(match s {
            "unresolved" => GroupStatus::Unresolved,
            "resolved" => GroupStatus::Resolved,
            "ignored" | "muted" => GroupStatus::Ignored,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Project {
    pub id: ProjectId,
    /// The organisation that owns it.
    pub org_id: OrgId,
    pub slug: String,
    pub name: String,
    pub created_at: f64,
}

/// A client key of a project. The public key is what DSNs carry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientKey {
    pub public_key: String,
    pub project_id: ProjectId,
    pub label: Option<String>,
    /// Events per minute this key may send; `None` means the configured default.
    pub rate_limit_per_minute: Option<u64>,
    pub created_at: f64,
    pub revoked_at: Option<f64>,
}

impl ClientKey {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// One processed event, ready to store: everything the writer needs, computed beforehand
/// by the ingest pipeline (grouping is pure and runs outside the writer).
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub project_id: ProjectId,
    pub event_id: EventId,
    /// `exception`, `message`, `query`, `transaction` or a kind of the client's own.
    pub kind: String,
    /// Unix seconds, as the client stated.
    pub timestamp: f64,
    /// Unix seconds, when we received it.
    pub received: f64,
    pub level: Level,
    pub logger: Option<String>,
    pub title: String,
    pub culprit: String,
    /// Grouping hash (hex).
    pub hash: String,
    /// The grouping components as JSON, shown to explain the group.
    pub components: String,
    pub tags: Vec<(String, String)>,
    pub time_spent: Option<f64>,
    /// The event as received (JSON), stored compressed.
    pub payload: Vec<u8>,
}

/// How far the records of one spool are applied: every record before `position` is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolMark {
    pub spool: String,
    pub position: u64,
}

/// What happened to one event of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Stored { group_id: GroupId, new_group: bool, regression: bool },
    /// Same project and event id already stored: nothing written, nothing counted.
    Duplicate,
}

/// Counts of envelope items we accept but do not store as events (sessions, client reports,
/// attachments, logs, …), per project and item type.
#[derive(Clone, Debug, Default)]
pub struct ItemCounts(pub Vec<(ProjectId, String, u64)>);

/// Duration statistics of a group, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DurationStats {
    pub count: u64,
    pub avg_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    pub min_ms: f64,
    pub sum_ms: f64,
}

impl DurationStats {
    /// The statistics of a group's durations: its count, sum, min and max (ms) and its
    /// histogram (`(bucket, count)`, see `histogram`), which gives the 95th percentile.
    pub fn from_histogram(count: i64, sum: f64, min: Option<f64>, max: Option<f64>, buckets: &[(i64, u64)]) -> DurationStats {
        let (min, max) = (min.unwrap_or(0.0), max.unwrap_or(0.0));
        DurationStats {
            count: count.max(0) as u64,
            avg_ms: sum / count.max(1) as f64,
            p95_ms: crate::histogram::quantile(buckets, 0.95, min, max),
            max_ms: max,
            min_ms: min,
            sum_ms: sum,
        }
    }
}

/// A tag value with how many events of the group carried it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TagCount {
    pub value: String,
    pub count: u64,
}

/// A group as the read side shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupRow {
    pub id: GroupId,
    pub project_id: ProjectId,
    pub hash: String,
    pub kind: String,
    pub title: String,
    pub culprit: String,
    pub level: String,
    pub logger: Option<String>,
    pub status: GroupStatus,
    pub count: u64,
    /// Unix seconds.
    pub first_seen: f64,
    pub last_seen: f64,
    pub time_spent: Option<DurationStats>,
    pub last_event_id: String,
    /// JSON of the grouping components.
    pub components: String,
}

/// The event ids around one event of a group, in the order they were stored: each `None`
/// where there is none or it is the event itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventNav {
    pub oldest: Option<String>,
    pub older: Option<String>,
    pub newer: Option<String>,
    pub newest: Option<String>,
}

/// An event as the read side shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub event_id: String,
    pub project_id: ProjectId,
    pub group_id: GroupId,
    /// Its place in the group's list of events: pass it as `before` for the next page.
    pub position: i64,
    pub kind: String,
    pub timestamp: f64,
    pub received: f64,
    pub level: String,
    pub title: String,
    pub tags: Vec<(String, String)>,
    pub time_spent: Option<f64>,
    /// The event JSON as received (decompressed).
    pub payload: Vec<u8>,
}

/// A change of a group's life: created, regressed, resolved, ignored, reopened, a comment, a
/// merge.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Activity {
    pub id: i64,
    pub group_id: GroupId,
    /// One of the `ACTIVITY_*` names.
    pub kind: String,
    pub at: f64,
    /// Who did it; `None` for what the system did (an event arrived, a snooze ran out).
    pub actor: Option<UserId>,
    /// What goes with it, as JSON: a comment's text, a snooze's condition, the merged groups.
    pub data: Option<String>,
}

/// A group was seen for the first time.
pub const ACTIVITY_CREATED: &str = "created";
/// A resolved group got a new event and is unresolved again.
pub const ACTIVITY_REGRESSION: &str = "regression";
pub const ACTIVITY_RESOLVED: &str = "resolved";
pub const ACTIVITY_IGNORED: &str = "ignored";
pub const ACTIVITY_REOPENED: &str = "reopened";
/// The group was assigned to a member or a team (the group's assignee says to whom).
pub const ACTIVITY_ASSIGNED: &str = "assigned";
pub const ACTIVITY_UNASSIGNED: &str = "unassigned";
/// An ignored group came back by itself (its snooze ran out); `data` says why.
pub const ACTIVITY_UNIGNORED: &str = "unignored";
/// A member's comment (`data`: `{"text": …}`).
pub const ACTIVITY_NOTE: &str = "note";
/// Other groups were merged into this one (`data`: `{"groups": [{id, hash, title}]}`).
pub const ACTIVITY_MERGE: &str = "merge";
/// A grouping hash was split off into its own group (`data`: `{"hash", "to"}` on the group it
/// left, `{"hash", "from"}` on the new one).
pub const ACTIVITY_UNMERGE: &str = "unmerge";

/// One `group_activity` row, with the project of its group.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityEntry {
    pub id: i64,
    pub group_id: GroupId,
    pub project_id: ProjectId,
    /// One of the `ACTIVITY_*` names.
    pub kind: String,
    pub at: f64,
    /// Who did it, as in [`Activity`].
    pub actor: Option<UserId>,
    /// What goes with it, as in [`Activity`].
    pub data: Option<String>,
}

/// A delivery to queue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewDelivery {
    /// The firing: the same for every action of it.
    pub firing_id: String,
    /// The action's index in its rule.
    pub action: i64,
    pub project_id: ProjectId,
    pub group_id: GroupId,
    pub rule: String,
    pub plugin: String,
    /// The action's own settings (JSON object).
    pub settings: String,
    /// The notification (JSON).
    pub payload: String,
    pub expires_at: f64,
}

/// A queued delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub firing_id: String,
    pub action: i64,
    pub project_id: ProjectId,
    pub group_id: GroupId,
    pub rule: String,
    pub plugin: String,
    pub settings: String,
    pub payload: String,
    pub created_at: f64,
    pub attempts: i64,
    pub next_attempt_at: f64,
    pub expires_at: f64,
    pub delivered_at: Option<f64>,
    pub failed_at: Option<f64>,
    pub last_error: Option<String>,
}

/// What [`crate::Outbox::enqueue_deliveries`] writes in one transaction.
#[derive(Clone, Debug, Default)]
pub struct Enqueue {
    pub deliveries: Vec<NewDelivery>,
    /// `(rule, group_id)` pairs that fired now.
    pub fired: Vec<(String, GroupId)>,
    /// `(cursor name, position)` to move, if any.
    pub cursor: Option<(String, i64)>,
}

/// A user who can log in to the dashboard.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub is_admin: bool,
    pub created_at: f64,
    pub last_login: Option<f64>,
}

/// A live session: whose it is and the token its forms must carry.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
    pub expires_at: f64,
}

/// What a cleanup removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    pub events: u64,
    pub groups: u64,
}

/// What retention keeps: events (and feedback) received before a cutoff (unix seconds) are
/// deleted, and groups last seen before it. `cutoff` applies to every project not named in
/// `projects`, which have cutoffs of their own; `None` keeps everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Retention {
    pub cutoff: Option<f64>,
    pub projects: Vec<(ProjectId, Option<f64>)>,
}

impl Retention {
    /// One cutoff for every project.
    pub fn all(cutoff: f64) -> Retention {
        Retention { cutoff: Some(cutoff), projects: Vec::new() }
    }

    /// The cutoff of `project`.
    pub fn cutoff_of(&self, project: ProjectId) -> Option<f64> {
        self.projects.iter().find(|(p, _)| *p == project).map_or(self.cutoff, |(_, c)| *c)
    }

    /// Whether nothing at all is deleted.
    pub fn keeps_everything(&self) -> bool {
        self.cutoff.is_none() && self.projects.iter().all(|(_, c)| c.is_none())
    }

    /// The earliest cutoff: everything received before it is deleted in every project (`None`
    /// when some project keeps everything).
    pub fn common_cutoff(&self) -> Option<f64> {
        let mut common = self.cutoff?;
        for (_, c) in &self.projects {
            common = common.min((*c)?);
        }
        Some(common)
    }

    /// The latest cutoff: nothing received at or after it is deleted.
    pub fn latest_cutoff(&self) -> Option<f64> {
        self.cutoff.into_iter().chain(self.projects.iter().filter_map(|(_, c)| *c)).reduce(f64::max)
    }

    /// `(project, cutoff)` pairs and the cutoff of every other project, with "keep
    /// everything" as a cutoff before any time (for SQL, which compares numbers).
    pub(crate) fn as_numbers(&self) -> (Vec<(i64, f64)>, f64) {
        let never = -1.0;
        (self.projects.iter().map(|(p, c)| (p.0, c.unwrap_or(never))).collect(), self.cutoff.unwrap_or(never))
    }
}

/// What the stored data takes: the whole store, and each project's events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageUsage {
    /// Bytes the store uses (SQLite: the pages of its file that hold data; PostgreSQL: the
    /// database's size).
    pub total_bytes: u64,
    /// Projects with stored events, most bytes first.
    pub projects: Vec<ProjectUsage>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProjectUsage {
    pub project_id: ProjectId,
    pub events: u64,
    /// Compressed payload bytes of its events (the bulk of what an event takes).
    pub payload_bytes: u64,
    /// When its oldest stored event was received.
    pub oldest: Option<f64>,
}

/// What a size cap removed: the oldest events, whatever their project (groups and their
/// counts stay).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub events: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// One event as the writer stored it: what live views and notifications react to, announced
/// after its batch is committed (duplicates are not announced).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub project_id: ProjectId,
    pub group_id: GroupId,
    pub event_id: EventId,
    pub kind: String,
    pub level: Level,
    /// The event created its group.
    pub new_group: bool,
    /// The event reopened a resolved group.
    pub regression: bool,
}
