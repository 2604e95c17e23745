//! The values of triage: how an ignored issue comes back by itself (a snooze), and the grouping
//! hashes of an issue (more than one once others were merged into it).

use serde::Serialize;

/// While ignored, when a group comes back by itself: at a time, after `count` more events,
/// after `users` more users (the `user` tag's distinct values). Any one condition suffices;
/// none at all is "ignored for good".
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Snooze {
    /// Unix seconds.
    pub until: Option<f64>,
    pub count: Option<u64>,
    pub users: Option<u64>,
}

impl Snooze {
    pub fn is_forever(&self) -> bool {
        self.until.is_none() && self.count.is_none() && self.users.is_none()
    }

    /// The `data` of the `ignored` activity row: the condition, in Sentry's words.
    pub fn data(&self) -> Option<String> {
        if self.is_forever() {
            return None;
        }
        Some(
            serde_json::json!({ "ignoreUntil": self.until, "ignoreCount": self.count, "ignoreUserCount": self.users })
                .to_string(),
        )
    }
}

/// One grouping hash of a group, and how many of its stored events have it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupHash {
    pub hash: String,
    pub events: u64,
    /// The hash the group was made with (it stays the group's while it has others).
    pub primary: bool,
}

/// At most this many groups change in one call of the bulk methods: callers with more split
/// them (and can say how far they are).
pub const BULK_CHUNK: usize = 500;

/// The longest comment kept.
pub const MAX_NOTE_BYTES: usize = 16 * 1024;

pub(crate) fn check_bulk(groups: &[crate::GroupId]) -> crate::Result<()> {
    if groups.len() > BULK_CHUNK {
        return Err(crate::StoreError::Invalid(format!("at most {BULK_CHUNK} issues at a time")));
    }
    Ok(())
}

/// The activity row of a status set by hand.
pub(crate) fn status_activity(status: crate::GroupStatus) -> &'static str {
    match status {
        crate::GroupStatus::Resolved => crate::ACTIVITY_RESOLVED,
        crate::GroupStatus::Ignored => crate::ACTIVITY_IGNORED,
        crate::GroupStatus::Unresolved => crate::ACTIVITY_REOPENED,
    }
}

/// The `data` of a comment, once its text is acceptable.
pub(crate) fn note_data(text: &str, mentions: &[crate::UserId]) -> crate::Result<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(crate::StoreError::Invalid("the comment is empty".into()));
    }
    if text.len() > MAX_NOTE_BYTES {
        return Err(crate::StoreError::Invalid(format!("a comment can have at most {MAX_NOTE_BYTES} bytes")));
    }
    if mentions.is_empty() {
        return Ok(serde_json::json!({ "text": text }).to_string());
    }
    Ok(serde_json::json!({ "text": text, "mentions": mentions }).to_string())
}

/// Whether `hash` can be split off a group whose own hash is `own` and which has `others`.
pub(crate) fn check_unmerge(own: &str, others: &[String], hash: &str) -> crate::Result<()> {
    if hash != own && !others.iter().any(|h| h == hash) {
        return Err(crate::StoreError::NotFound(format!("hash {hash} in this issue")));
    }
    if others.is_empty() {
        return Err(crate::StoreError::Invalid("this issue has only one hash: there is nothing to unmerge".into()));
    }
    Ok(())
}

/// A group's hashes, its own first, with their events counted (`counts`: per stored hash).
pub(crate) fn hashes(own: String, others: Vec<String>, counts: Vec<(String, i64)>) -> Vec<GroupHash> {
    let count = |h: &str| counts.iter().filter(|(k, _)| k == h).map(|(_, n)| (*n).max(0) as u64).sum();
    let mut out = vec![GroupHash { events: count(&own), hash: own, primary: true }];
    out.extend(others.into_iter().map(|h| GroupHash { events: count(&h), hash: h, primary: false }));
    out
}

/// A group's counter tables, each with its time column: what merge, unmerge and delete move,
/// recount or remove, on every backend.
pub(crate) const COUNTERS: [(&str, &str); 4] =
    [("group_buckets", "minute"), ("group_hours", "hour"), ("group_days", "day"), ("group_durations", "bucket")];

/// Events recounted per read.
pub(crate) const RECOUNT_CHUNK: i64 = 1000;
