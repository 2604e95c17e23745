//! The ingest pipeline, between the HTTP edge and the store: who may send (client keys, rate
//! limits), what an envelope or store body turns into (normalised, grouped events; counted
//! non-event items), and backpressure (a bounded number of events waiting for the disk).
//!
//! Path of an event through this crate (see ARCHITECTURE.md for the whole path):
//! 1. [`Pipeline::authorize`]: the key must exist, belong to the project and not be revoked;
//!    the key's and project's per-minute rates are checked.
//! 2. [`process`]: each `event` / `transaction` item is normalised and grouped; a transaction's
//!    db spans become Query events of their own. Other item types are counted, not stored.
//! 3. [`Pipeline::submit`]: the events take places in the bounded queue (or the request is
//!    refused with "overloaded"), go to the store's writer, and the call returns once the
//!    batch holding them is committed and fsynced.
//! 4. [`alerts`]: the committed batch wakes the notification engine, which turns the group
//!    activity and the groups' counts into outbox deliveries and sends them through plugins.

mod budget;
pub mod alerts;
mod keys;
pub mod process;
mod rate;

use std::sync::Arc;
use std::time::Duration;

use protocol::{Envelope, EventId, Limits};
use store::{ItemCounts, NewEvent, SqliteStore, WriteOutcome, WriterHandle};
use tokio::sync::Semaphore;

pub use budget::{MemoryBudget, Reservation};
pub use keys::KeyCache;
pub use process::ProcessError;
pub use rate::{RateLimited, RateLimiter};

/// Why a request was refused. The HTTP layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no client key: send it in X-Sentry-Auth, Authorization or the sentry_key query parameter")]
    MissingKey,
    #[error("unknown client key {0}")]
    UnknownKey(String),
    #[error("client key {0} has been revoked")]
    RevokedKey(String),
    #[error("client key {key} belongs to project {key_project}, not to project {project}")]
    WrongProject { key: String, key_project: i64, project: i64 },
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    #[error("the server is overloaded: too many events are waiting to be written; retry later")]
    Overloaded,
    #[error(transparent)]
    Invalid(#[from] ProcessError),
    #[error("the event could not be stored: {0}")]
    Store(#[from] store::StoreError),
}

/// Settings of the pipeline, from the config file.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub limits: Limits,
    /// Events that may wait for the writer at once; more are refused as overloaded.
    pub queue_capacity: usize,
    /// Default events per minute per key (0 = unlimited), when the key sets none.
    pub per_key_per_minute: u64,
    /// Events per minute per project (0 = unlimited).
    pub per_project_per_minute: u64,
    /// Projects whose limit differs from `per_project_per_minute`, by project id.
    pub project_limits: std::collections::HashMap<i64, u64>,
    /// Bytes of bodies and queued events held in memory at most.
    pub max_inflight_bytes: usize,
}

/// The project a request was authorized for.
#[derive(Clone, Debug)]
pub struct Authorized {
    pub project_id: i64,
    pub public_key: String,
}

/// One event as the writer stored it: what live views and notifications react to. Sent on the
/// pipeline's broadcast channel ([`Pipeline::subscribe`]) after the batch is committed.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub project_id: i64,
    pub group_id: i64,
    pub event_id: EventId,
    pub kind: String,
    pub level: String,
    /// The event created its group.
    pub new_group: bool,
    /// The event reopened a resolved group.
    pub regression: bool,
}

/// What a successful submission stored.
#[derive(Clone, Debug, Default)]
pub struct Submitted {
    /// The id to answer with: the envelope's or the (first) event's.
    pub event_id: Option<EventId>,
    pub outcomes: Vec<WriteOutcome>,
}

/// The pipeline, shared by all requests.
pub struct Pipeline {
    pub store: Arc<SqliteStore>,
    writer: WriterHandle,
    queue: Arc<Semaphore>,
    queue_capacity: usize,
    keys: KeyCache,
    rates: RateLimiter,
    config: PipelineConfig,
    grouping: grouping::GroupingConfig,
    stored: tokio::sync::broadcast::Sender<Arc<Vec<StoredEvent>>>,
    budget: MemoryBudget,
    /// Events stored (not duplicates) since start.
    stored_total: std::sync::atomic::AtomicU64,
    /// Decoding and parsing run on blocking threads, at most this many at once.
    cpu_slots: Arc<Semaphore>,
}

impl Pipeline {
    pub fn new(store: Arc<SqliteStore>, writer: WriterHandle, config: PipelineConfig) -> Pipeline {
        let capacity = config.queue_capacity.max(1);
        Pipeline {
            keys: KeyCache::new(store.clone(), Duration::from_secs(1)),
            rates: RateLimiter::new(),
            queue: Arc::new(Semaphore::new(capacity)),
            queue_capacity: capacity,
            store,
            writer,
            grouping: grouping::GroupingConfig::default(),
            stored: tokio::sync::broadcast::channel(1024).0,
            budget: MemoryBudget::new(config.max_inflight_bytes),
            stored_total: std::sync::atomic::AtomicU64::new(0),
            cpu_slots: Arc::new(Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))),
            config,
        }
    }

    /// Every committed batch's stored events (duplicates left out), as they happen. A receiver
    /// that falls behind misses batches (it is told so by `RecvError::Lagged`); the store has
    /// everything.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Vec<StoredEvent>>> {
        self.stored.subscribe()
    }

    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// The memory budget that request bodies and queued events count against.
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// Waits for a turn to do CPU work (decoding, parsing) on a blocking thread, so that a
    /// burst of requests can't have more decoders at work than there are cores.
    pub async fn cpu_slot(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.cpu_slots.clone().acquire_owned().await.expect("the CPU semaphore is never closed")
    }

    /// Checks a key for a project (`None` for the legacy `/api/store/` path, where the key
    /// decides the project). Blocking: it may read the store.
    pub fn authorize(&self, project_id: Option<i64>, key: Option<&str>) -> Result<Authorized, IngestError> {
        let key = key.filter(|k| !k.is_empty()).ok_or(IngestError::MissingKey)?;
        let found = self.keys.get(key)?.ok_or_else(|| IngestError::UnknownKey(key.to_string()))?;
        if !found.is_active() {
            return Err(IngestError::RevokedKey(key.to_string()));
        }
        if let Some(p) = project_id
            && p != found.project_id
        {
            return Err(IngestError::WrongProject { key: key.to_string(), key_project: found.project_id, project: p });
        }
        let key_limit = found.rate_limit_per_minute.unwrap_or(self.config.per_key_per_minute);
        let project_limit =
            self.config.project_limits.get(&found.project_id).copied().unwrap_or(self.config.per_project_per_minute);
        self.rates.check(&found.public_key, key_limit, found.project_id, project_limit)?;
        Ok(Authorized { project_id: found.project_id, public_key: found.public_key })
    }

    /// Turns an envelope into events and counts. Pure CPU work.
    pub fn process_envelope(&self, auth: &Authorized, envelope: &Envelope, received: f64) -> Result<process::Processed, IngestError> {
        Ok(process::envelope(auth.project_id, envelope, &self.config.limits, &self.grouping, received)?)
    }

    /// Turns a legacy store body (decoded JSON) into events.
    pub fn process_store_body(&self, auth: &Authorized, body: &[u8], received: f64) -> Result<process::Processed, IngestError> {
        Ok(process::store_body(auth.project_id, body, &self.config.limits, &self.grouping, received)?)
    }

    /// Writes processed events durably; returns once they are committed.
    pub async fn submit(&self, processed: process::Processed) -> Result<Submitted, IngestError> {
        let n = processed.events.len() as u32;
        let _permit = if n > 0 {
            Some(self.queue.clone().try_acquire_many_owned(n.min(self.queue_capacity as u32)).map_err(|_| IngestError::Overloaded)?)
        } else {
            None
        };
        let counts = ItemCounts(processed.counts);
        if processed.events.is_empty() && counts.0.is_empty() {
            return Ok(Submitted { event_id: processed.event_id, outcomes: vec![] });
        }
        let heads: Vec<(i64, EventId, String, String)> = processed
            .events
            .iter()
            .map(|e| (e.project_id, e.event_id, e.kind.clone(), e.level.clone()))
            .collect();
        let outcomes = self.writer.write(processed.events, counts).await?;
        self.announce(heads, &outcomes);
        Ok(Submitted { event_id: processed.event_id, outcomes })
    }

    /// Events stored (duplicates not counted) since this process started.
    pub fn stored_total(&self) -> u64 {
        self.stored_total.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn announce(&self, heads: Vec<(i64, EventId, String, String)>, outcomes: &[WriteOutcome]) {
        let n = outcomes.iter().filter(|o| matches!(o, WriteOutcome::Stored { .. })).count();
        self.stored_total.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        if self.stored.receiver_count() == 0 {
            return;
        }
        let stored: Vec<StoredEvent> = heads
            .into_iter()
            .zip(outcomes)
            .filter_map(|((project_id, event_id, kind, level), out)| match *out {
                WriteOutcome::Stored { group_id, new_group, regression } => {
                    Some(StoredEvent { project_id, group_id, event_id, kind, level, new_group, regression })
                }
                WriteOutcome::Duplicate => None,
            })
            .collect();
        if !stored.is_empty() {
            let _ = self.stored.send(Arc::new(stored));
        }
    }

    /// Events currently waiting for the writer.
    pub fn queued(&self) -> usize {
        self.queue_capacity - self.queue.available_permits()
    }

    /// Writes everything still queued, then stops the writer.
    pub fn shutdown(&self) {
        self.writer.shutdown();
    }

    /// Stores events that were built elsewhere (tests, tools); blocking.
    pub fn write_blocking(&self, events: Vec<NewEvent>) -> Result<Vec<WriteOutcome>, IngestError> {
        Ok(self.writer.write_blocking(events, ItemCounts::default())?)
    }
}
