//! Discard accounting: every refused request and every item dropped on purpose is counted by
//! reason and item category, for `/metrics` (`sentry_discarded_total{reason, item}`), so an
//! operator can see what clients send that is not stored, and why.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Why something a client sent was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiscardReason {
    /// No client key in the request.
    MissingKey,
    /// A key we don't know.
    UnknownKey,
    /// A revoked key.
    RevokedKey,
    /// A key of another project.
    WrongProject,
    /// The URL names no project.
    NoSuchProject,
    /// Over a key's or project's rate limit.
    RateLimited,
    /// The queue to the writer or the memory budget is full.
    Overloaded,
    /// A body, item or event over its limit.
    TooLarge,
    /// Malformed: bad encoding, framing, headers or event JSON.
    Invalid,
    /// The client did not send its body in time.
    Timeout,
    /// The store could not write.
    StoreUnavailable,
    /// An item type that is accepted and counted, but not stored (sessions, client reports,
    /// attachments, check-ins, unknown types).
    NotStored,
    /// An event whose id is already stored for its project.
    Duplicate,
}

impl DiscardReason {
    pub const ALL: [DiscardReason; 13] = [
        DiscardReason::MissingKey,
        DiscardReason::UnknownKey,
        DiscardReason::RevokedKey,
        DiscardReason::WrongProject,
        DiscardReason::NoSuchProject,
        DiscardReason::RateLimited,
        DiscardReason::Overloaded,
        DiscardReason::TooLarge,
        DiscardReason::Invalid,
        DiscardReason::Timeout,
        DiscardReason::StoreUnavailable,
        DiscardReason::NotStored,
        DiscardReason::Duplicate,
    ];

    /// The label value in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscardReason::MissingKey => "missing_key",
            DiscardReason::UnknownKey => "unknown_key",
            DiscardReason::RevokedKey => "revoked_key",
            DiscardReason::WrongProject => "wrong_project",
            DiscardReason::NoSuchProject => "no_such_project",
            DiscardReason::RateLimited => "rate_limited",
            DiscardReason::Overloaded => "overloaded",
            DiscardReason::TooLarge => "too_large",
            DiscardReason::Invalid => "invalid",
            DiscardReason::Timeout => "timeout",
            DiscardReason::StoreUnavailable => "store_unavailable",
            DiscardReason::NotStored => "not_stored",
            DiscardReason::Duplicate => "duplicate",
        }
    }
}

/// The category of a refused request.
pub const REQUEST: &str = "request";

/// The counters.
#[derive(Default)]
pub struct Discards {
    counts: Mutex<BTreeMap<(DiscardReason, &'static str), u64>>,
}

impl Discards {
    pub fn add(&self, reason: DiscardReason, item: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        if let Ok(mut c) = self.counts.lock() {
            *c.entry((reason, item)).or_default() += n;
        }
    }

    /// Every (reason, item, count) so far, sorted.
    pub fn snapshot(&self) -> Vec<(DiscardReason, &'static str, u64)> {
        self.counts.lock().map(|c| c.iter().map(|((r, i), n)| (*r, *i, *n)).collect()).unwrap_or_default()
    }
}
