//! Grouping: which events are "the same problem". A pure function of the event:
//! `group(&Event, &GroupingConfig) -> Grouping { hash, components, title, culprit }`.
//! The components explain the hash, and the dashboard shows them.
//!
//! Architecture invariant: pure and total. Grouping never fails and never does I/O; any
//! event, however odd, gets a group.

pub mod kinds;
pub mod message;
pub mod sql;

use serde::Serialize;

/// Which grouping algorithm a project uses. Versioned so that a future change does not
/// silently split every existing group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupingConfig {
    pub version: u32,
}

impl Default for GroupingConfig {
    fn default() -> Self {
        GroupingConfig { version: 1 }
    }
}

/// One part of a fingerprint, with the values that went into the hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Component {
    /// What this is, for example `fingerprint`, `exception.type`, `frame`, `message`, `sql`.
    pub name: String,
    pub values: Vec<String>,
    /// False for parts shown for explanation that did not feed the hash.
    pub contributes: bool,
}

/// The result of grouping one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Grouping {
    /// 32 lowercase hex digits (md5 of the contributing component values, with the kind).
    pub hash: String,
    pub components: Vec<Component>,
    /// One line for lists: `KeyError: 'coupon'`, the message, the normalised SQL, the
    /// transaction name.
    pub title: String,
    /// Where it happened: the top in-app frame (`module in function`), the transaction, the
    /// logger, or the query engine.
    pub culprit: String,
}

pub use kinds::group;
