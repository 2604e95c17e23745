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

/// Which release fixes a group that is resolved "in a release": a later event of an older
/// release is then not a regression, one of that release or a newer one is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InRelease {
    /// The release after the newest one seen now (Sentry's "resolved in the next release").
    Next,
    /// This release (Sentry's "resolved in release X").
    Named(String),
}

/// A release named to resolve in must be a valid release version.
pub(crate) fn check_in_release(target: &InRelease) -> crate::Result<()> {
    if let InRelease::Named(version) = target {
        crate::checks::release_version(version)?;
    }
    Ok(())
}

/// At most this many older releases are remembered for one resolution (the newest ones): an
/// event of an even older release brings the group back.
pub const MAX_KEPT_RELEASES: usize = 1000;

/// A group's resolution in a release, as stored with it (JSON).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReleaseResolution {
    /// The release named (`None`: the next one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// For the next release: the newest release seen when it was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The releases whose events leave it resolved: the older ones.
    #[serde(default)]
    pub keeps: Vec<String>,
}

impl ReleaseResolution {
    /// The resolution of `target`, knowing the releases the project has seen (or has made
    /// through the API), each with when it was first seen. A release is older than the named
    /// one when both are semantic versions (after an optional `package@`) and it is lower, or
    /// else when it was first seen before the named one; when the named release has not been
    /// seen yet, every release seen so far is older.
    pub fn of(seen: &[(String, f64)], target: &InRelease) -> ReleaseResolution {
        let mut seen: Vec<&(String, f64)> = seen.iter().collect();
        seen.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        seen.dedup_by(|a, b| a.0 == b.0);
        let mut resolution = match target {
            InRelease::Next => ReleaseResolution {
                release: None,
                after: seen.first().map(|r| r.0.clone()),
                keeps: seen.iter().map(|r| r.0.clone()).collect(),
            },
            InRelease::Named(name) => {
                let at = seen.iter().find(|r| &r.0 == name).map(|r| r.1);
                let older = |r: &&&(String, f64)| {
                    if r.0 == *name {
                        return false;
                    }
                    match (version(&r.0), version(name)) {
                        (Some(v), Some(n)) => v < n,
                        _ => at.is_none_or(|at| r.1 < at),
                    }
                };
                ReleaseResolution { release: Some(name.clone()), after: None, keeps: seen.iter().filter(older).map(|r| r.0.clone()).collect() }
            }
        };
        resolution.keeps.truncate(MAX_KEPT_RELEASES);
        resolution
    }

    /// The `data` of the `resolved` activity row, in Sentry's words.
    pub fn activity_data(&self) -> String {
        match &self.release {
            Some(r) => serde_json::json!({ "inRelease": r }),
            None => serde_json::json!({ "inNextRelease": true, "after": self.after }),
        }
        .to_string()
    }

    /// Read back from its stored JSON (nothing for a column left empty or unreadable).
    pub fn parse(stored: Option<&str>) -> Option<ReleaseResolution> {
        stored.and_then(|s| serde_json::from_str(s).ok())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A release's semantic version, after an optional `package@` (`shop@1.2.3` → 1.2.3).
fn version(release: &str) -> Option<semver::Version> {
    let v = release.rsplit_once('@').map_or(release, |(_, v)| v);
    semver::Version::parse(v.strip_prefix('v').unwrap_or(v)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(list: &[(&str, f64)]) -> Vec<(String, f64)> {
        list.iter().map(|(n, t)| (n.to_string(), *t)).collect()
    }

    #[test]
    fn the_next_release_keeps_every_release_seen_so_far() {
        let r = ReleaseResolution::of(&seen(&[("a1b2", 10.0), ("c3d4", 20.0), ("a1b2", 5.0)]), &InRelease::Next);
        assert_eq!(r.after.as_deref(), Some("c3d4"));
        assert_eq!(r.keeps, ["c3d4", "a1b2"]);
        assert_eq!(ReleaseResolution::parse(Some(&r.to_json())), Some(r));
        assert_eq!(ReleaseResolution::of(&[], &InRelease::Next), ReleaseResolution::default());
    }

    #[test]
    fn a_named_release_keeps_the_older_ones_by_version_or_else_by_date() {
        // Versions: 1.10.0 is newer than 1.9.0 whenever each was first seen.
        let s = seen(&[("shop@1.9.0", 30.0), ("shop@1.10.0", 20.0), ("shop@1.2.3", 40.0), ("shop@2.0.0", 10.0)]);
        let r = ReleaseResolution::of(&s, &InRelease::Named("shop@1.10.0".into()));
        assert_eq!(r.keeps, ["shop@1.2.3", "shop@1.9.0"]);
        assert_eq!(r.activity_data(), r#"{"inRelease":"shop@1.10.0"}"#);
        // Not versions: by when they were first seen.
        let s = seen(&[("a1", 10.0), ("b2", 20.0), ("c3", 30.0)]);
        assert_eq!(ReleaseResolution::of(&s, &InRelease::Named("b2".into())).keeps, ["a1"]);
        // Not seen yet: everything seen is older.
        assert_eq!(ReleaseResolution::of(&s, &InRelease::Named("d4".into())).keeps, ["c3", "b2", "a1"]);
    }
}
