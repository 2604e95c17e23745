//! The spool shared by every node (PostgreSQL): what some node acknowledged and no node has
//! stored yet, as rows of a queue table. A node commits the records of many requests in one
//! transaction before it answers them (`Queue::append`); any node's applier claims a batch of
//! them for a while (`Queue::claim`: `FOR UPDATE SKIP LOCKED`, a lease), and the writer deletes
//! the claimed rows in the transaction that stores their events (`WriteBatch::claim`), only if
//! the claim still holds. A node that dies holding a claim loses nothing: once the lease runs
//! out, another node claims the same rows; one whose lease ran out while it worked finds its
//! delete short and rolls back ([`StoreError::ClaimLost`](crate::StoreError::ClaimLost)).

use std::time::Duration;

use crate::Result;

/// One record waiting in the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedRecord {
    pub id: i64,
    /// The events it holds (for the counts).
    pub events: u32,
    /// Unix seconds when it was committed.
    pub appended_at: f64,
    pub data: Vec<u8>,
}

/// Rows one claim holds, to delete in the transaction that stores them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueClaim {
    /// The claim's own number (random per claim).
    pub claim: i64,
    pub ids: Vec<i64>,
}

/// What waits in the queue, all nodes together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueDepth {
    pub records: u64,
    pub events: u64,
    pub bytes: u64,
    /// Unix seconds of the oldest record.
    pub oldest: Option<f64>,
}

pub trait Queue: Send + Sync {
    /// Commits `records` (data, event count) in one transaction; their ids, in order.
    fn append(&self, records: &[(&[u8], u32)]) -> Result<Vec<i64>>;
    /// Claims the oldest records from id `from` on that no live claim holds, at most
    /// `max_records` and about `max_bytes` (at least one when there is one), for `lease`.
    /// `from` lets a claimer skip the head of the table, where rows others took are being
    /// deleted (a queue's dead rows cost every scan that walks over them); a claimer starts
    /// from 0 again now and then, for rows whose lease ran out.
    fn claim(&self, claim: i64, from: i64, max_records: usize, max_bytes: usize, lease: Duration) -> Result<Vec<QueuedRecord>>;
    fn depth(&self) -> Result<QueueDepth>;
    /// The id of the newest record (0 when none was ever appended): whoever waits for
    /// "everything acknowledged so far" waits for [`Queue::stored_through`] of it.
    fn newest(&self) -> Result<i64>;
    /// Whether every record up to `id` is stored (none waits at or before it).
    fn stored_through(&self, id: i64) -> Result<bool>;
}
