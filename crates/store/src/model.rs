//! The values the store takes and gives back: projects, keys, events to write, group and
//! event rows to read.

use protocol::{EventId, ProjectId};
use serde::Serialize;

/// A group's triage status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    Unresolved,
    Resolved,
    Ignored,
}

impl GroupStatus {
    pub fn as_i64(self) -> i64 {
        match self {
            GroupStatus::Unresolved => 0,
            GroupStatus::Resolved => 1,
            GroupStatus::Ignored => 2,
        }
    }
    pub fn from_i64(v: i64) -> GroupStatus {
        match v {
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
    pub id: ProjectIdJson,
    pub slug: String,
    pub name: String,
    pub created_at: f64,
}

/// `ProjectId` as it appears in JSON: a plain number.
pub type ProjectIdJson = i64;

impl Project {
    pub fn project_id(&self) -> ProjectId {
        ProjectId(self.id)
    }
}

/// A client key of a project. The public key is what DSNs carry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientKey {
    pub public_key: String,
    pub project_id: i64,
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
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub project_id: i64,
    pub event_id: EventId,
    pub kind: String,
    /// Unix seconds, as the client stated.
    pub timestamp: f64,
    /// Unix seconds, when we received it.
    pub received: f64,
    pub level: String,
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

/// What happened to one event of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Stored { group_id: i64, new_group: bool, regression: bool },
    /// Same project and event id already stored: nothing written, nothing counted.
    Duplicate,
}

/// Counts of envelope items we accept but do not store as events (sessions, client reports,
/// attachments, logs, …), per project and item type.
#[derive(Clone, Debug, Default)]
pub struct ItemCounts(pub Vec<(i64, String, u64)>);

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

/// A tag value with how many events of the group carried it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TagCount {
    pub value: String,
    pub count: u64,
}

/// A group as the read side shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupRow {
    pub id: i64,
    pub project_id: i64,
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

/// An event as the read side shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub event_id: String,
    pub project_id: i64,
    pub group_id: i64,
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

/// A change of a group's life: created, regressed, resolved, ignored, reopened.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Activity {
    pub group_id: i64,
    pub kind: String,
    pub at: f64,
}
