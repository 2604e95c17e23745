//! The ingest pipeline, between the HTTP edge and the store, as one call:
//! [`Pipeline::accept`] takes a request as read (the endpoint, the key it named, the body and
//! its share of the memory budget) and runs decode → parse → authorise → process → submit,
//! answering [`Accepted`] once the events are durable, or an [`IngestError`] that says why not.
//! Every refusal and every item dropped on purpose is counted by [`DiscardReason`].
//!
//! Path of an event through this crate (see ARCHITECTURE.md for the whole path):
//! 1. decode (`protocol::decode`), counted against the memory budget as it grows;
//! 2. parse (`protocol::envelope`), and find the key (the request's, else the envelope's DSN);
//! 3. [`Pipeline::authorize`]: the key must exist, belong to the project and not be revoked;
//!    the key's and project's per-minute rates are checked;
//! 4. [`process`]: each `event` / `transaction` item is scrubbed of secrets ([`scrub`]),
//!    normalised and grouped; a transaction's
//!    db spans become Query events of their own. Other item types are counted, not stored;
//! 5. submit: the processed events become one record (`record`) appended to the spool
//!    (`spool::Spool`); the call returns once the group commit holding it is fsynced. Past the
//!    spool's budget, or with too many events waiting, the request is refused as overloaded.
//! 6. apply (`apply`, a thread of its own): records are read back in order, in large batches,
//!    and written to the store with the spool position they reach, in one transaction; the
//!    stored events are then broadcast ([`Pipeline::subscribe`]).

mod apply;
pub mod bundle;
mod budget;
mod discard;
pub mod items;
mod keys;
pub mod process;
mod rate;
pub mod sourcemaps;
mod record;
pub mod scrub;
mod spooler;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use protocol::decode::{decode_store_body, decode_within};
use protocol::{ContentEncoding, DecodeError, Dsn, Envelope, EnvelopeError, EventId, Limits};
use spool::{SpoolError, SpoolStats};
use store::{EventSink, ProjectId, Store, StoreError, StoredEvent, WriteOutcome};
use tokio::sync::Semaphore;

pub use apply::{LAG_BUCKETS, LagHistogram};
pub use budget::{MemoryBudget, Reservation};
pub use discard::{DiscardReason, Discards, REQUEST};
pub use keys::KeyCache;
pub use process::ProcessError;
/// The spool record of processed events (for tools that measure its cost).
pub use record::encode as encode_record;
pub use rate::{CountersAway, RateLimited, RateLimiter, SharedCounter};
pub use spooler::{SharedSpool, Spooler};

/// Why a request was refused. The HTTP layer maps each to a status; [`IngestError::reason`]
/// is what `/metrics` counts.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no client key: send it in X-Sentry-Auth, Authorization or the sentry_key query parameter")]
    MissingKey,
    #[error("unknown client key {0}")]
    UnknownKey(String),
    #[error("client key {0} has been revoked")]
    RevokedKey(String),
    #[error("client key {key} belongs to project {key_project}, not to project {project}")]
    WrongProject { key: String, key_project: ProjectId, project: ProjectId },
    /// The key could not be read from the request (a bad header, two different keys).
    #[error("{0}")]
    BadKey(String),
    #[error("there is no project \"{0}\": the project id in the DSN must be a number")]
    NoSuchProject(String),
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    #[error("the server is overloaded: too many events are waiting to be written; retry later")]
    Overloaded,
    #[error("the server is overloaded: too much data is waiting to be written; retry later")]
    OverBudget,
    #[error("the request body is over the limit of {0} bytes")]
    BodyTooLarge(usize),
    #[error("the request body did not arrive within {0} s")]
    Timeout(u64),
    /// A request the edge could not read (a broken body, a bad header).
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("malformed envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Invalid(#[from] ProcessError),
    #[error("the event could not be stored: {0}")]
    Store(#[from] store::StoreError),
    #[error("the server failed while processing the request")]
    Crashed,
}

impl IngestError {
    /// Why, as counted in `/metrics`.
    pub fn reason(&self) -> DiscardReason {
        match self {
            IngestError::MissingKey => DiscardReason::MissingKey,
            IngestError::UnknownKey(_) | IngestError::BadKey(_) => DiscardReason::UnknownKey,
            IngestError::RevokedKey(_) => DiscardReason::RevokedKey,
            IngestError::WrongProject { .. } => DiscardReason::WrongProject,
            IngestError::NoSuchProject(_) => DiscardReason::NoSuchProject,
            IngestError::RateLimited(_) => DiscardReason::RateLimited,
            IngestError::Overloaded | IngestError::OverBudget => DiscardReason::Overloaded,
            IngestError::Timeout(_) => DiscardReason::Timeout,
            IngestError::Store(_) | IngestError::Crashed => DiscardReason::StoreUnavailable,
            _ if self.is_too_large() => DiscardReason::TooLarge,
            _ => DiscardReason::Invalid,
        }
    }

    /// Whether the refusal is about size (413) rather than content.
    pub fn is_too_large(&self) -> bool {
        match self {
            IngestError::BodyTooLarge(_) => true,
            IngestError::Decode(e) => matches!(e, DecodeError::TooLarge { .. }),
            IngestError::Envelope(e) => e.is_too_large(),
            IngestError::Invalid(e) => e.is_too_large(),
            _ => false,
        }
    }
}

/// Settings of the pipeline, from the config file.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub limits: Limits,
    /// Acknowledged events that may wait in the spool to be stored; past it, requests are
    /// refused as overloaded.
    pub queue_capacity: usize,
    /// The most events applied to the store in one transaction.
    pub batch_max: usize,
    /// Default events per minute per key (0 = unlimited), when the key sets none.
    pub per_key_per_minute: u64,
    /// Events per minute per project (0 = unlimited).
    pub per_project_per_minute: u64,
    /// Projects whose limit differs from `per_project_per_minute`.
    pub project_limits: std::collections::HashMap<ProjectId, u64>,
    /// Bytes of bodies and queued events held in memory at most.
    pub max_inflight_bytes: usize,
    /// How secrets are scrubbed: the default, and projects whose settings differ.
    pub scrub: scrub::ScrubConfig,
    pub project_scrub: std::collections::HashMap<ProjectId, scrub::ScrubConfig>,
    /// Logs this node accepts per second (0 = unlimited); past it they are counted and dropped.
    pub max_logs_per_second: u64,
}

/// The project a request was authorized for.
#[derive(Clone, Debug)]
pub struct Authorized {
    pub project_id: ProjectId,
    pub public_key: String,
}

/// Which endpoint a request came to.
#[derive(Clone, Copy, Debug)]
pub enum Endpoint {
    /// `/api/{project}/envelope/`.
    Envelope(ProjectId),
    /// `/api/{project}/store/`, or `/api/store/` where the key alone names the project: the
    /// key was checked ([`Pipeline::authorize`]) before the body was read, for this project.
    Store(ProjectId),
    /// `/api/{project}/user-feedback/`: one user report as JSON (`{event_id, name, email,
    /// comments}`); the key was checked before the body was read, as for `Store`.
    UserFeedback(ProjectId),
}

/// A request as the edge read it.
pub struct Request {
    pub endpoint: Endpoint,
    /// The key the request itself named (headers or query string), if any.
    pub key: Option<String>,
    pub encoding: ContentEncoding,
    pub body: Vec<u8>,
    /// The body's share of the memory budget; held until the events are written.
    pub reservation: Reservation,
    /// Unix seconds, when it arrived.
    pub received: f64,
}

/// What an accepted request left durable in the spool.
#[derive(Clone, Debug, Default)]
pub struct Accepted {
    /// The id to answer with: the envelope's or the (first) event's.
    pub event_id: Option<EventId>,
}

/// Bodies up to this size are decoded and parsed right on the async worker: tens of
/// microseconds, cheaper than handing them to another thread. Larger ones go to a blocking
/// thread, one per core at a time.
const INLINE_MAX: usize = 64 * 1024;

/// The pipeline, shared by all requests.
pub struct Pipeline {
    writer: Arc<dyn EventSink>,
    spool: Spooler,
    queue_capacity: usize,
    keys: KeyCache,
    rates: RateLimiter,
    config: PipelineConfig,
    grouping: grouping::GroupingConfig,
    scrubber: scrub::Scrubber,
    project_scrubbers: std::collections::HashMap<ProjectId, scrub::Scrubber>,
    stored: tokio::sync::broadcast::Sender<Arc<Vec<StoredEvent>>>,
    /// Only what this node stored (to tell the other nodes).
    stored_here: tokio::sync::broadcast::Sender<Arc<Vec<StoredEvent>>>,
    budget: MemoryBudget,
    discards: Discards,
    /// Events stored (not duplicates) since start.
    stored_total: std::sync::atomic::AtomicU64,
    /// Decoding and parsing of large bodies run on blocking threads, at most this many at once.
    cpu_slots: Arc<Semaphore>,
    /// Seconds between a record's append and its commit in the store.
    lag: LagHistogram,
    applier: Mutex<Option<JoinHandle<()>>>,
    closing: AtomicBool,
    /// While stopping: when the applier stops retrying an unavailable store.
    drain_deadline: Mutex<Option<Instant>>,
    /// Resolves JavaScript frames through uploaded source maps, in the applier.
    sourcemaps: sourcemaps::Resolver,
    /// The logs' own budget, apart from events' limits.
    log_budget: rate::ItemBudget,
}

/// How long a stopping server keeps trying to store what waits in the spool (what is left
/// stays there for the next start).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

impl Pipeline {
    /// The pipeline over an opened spool, and its applier, which starts with what the spool
    /// holds from before (replayed after a crash or stop).
    pub fn new(store: Arc<dyn Store>, writer: Arc<dyn EventSink>, spool: Spooler, config: PipelineConfig) -> Arc<Pipeline> {
        let capacity = config.queue_capacity.max(1);
        let batch_max = config.batch_max.max(1);
        let pipeline = Arc::new(Pipeline {
            sourcemaps: sourcemaps::Resolver::new(store.clone()),
            log_budget: rate::ItemBudget::new(config.max_logs_per_second),
            keys: KeyCache::new(store, Duration::from_secs(1)),
            rates: RateLimiter::new(),
            queue_capacity: capacity,
            writer,
            spool,
            grouping: grouping::GroupingConfig::default(),
            scrubber: scrub::Scrubber::new(&config.scrub),
            project_scrubbers: config.project_scrub.iter().map(|(p, c)| (*p, scrub::Scrubber::new(c))).collect(),
            stored: tokio::sync::broadcast::channel(1024).0,
            stored_here: tokio::sync::broadcast::channel(1024).0,
            budget: MemoryBudget::new(config.max_inflight_bytes),
            discards: Discards::default(),
            stored_total: std::sync::atomic::AtomicU64::new(0),
            cpu_slots: Arc::new(Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))),
            config,
            lag: LagHistogram::default(),
            applier: Mutex::new(None),
            closing: AtomicBool::new(false),
            drain_deadline: Mutex::new(None),
        });
        let runner = pipeline.clone();
        let thread = std::thread::Builder::new()
            .name("spool-apply".into())
            .spawn(move || apply::run(runner, batch_max))
            .expect("spawning the spool's applier thread");
        *pipeline.applier.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
        pipeline
    }

    /// Every committed batch's stored events (duplicates left out), as they happen. A receiver
    /// that falls behind misses batches (it is told so by `RecvError::Lagged`); the store has
    /// everything.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Vec<StoredEvent>>> {
        self.stored.subscribe()
    }

    /// Only the batches this node stored (not those [`Pipeline::relay`]ed from other nodes).
    pub fn subscribe_here(&self) -> tokio::sync::broadcast::Receiver<Arc<Vec<StoredEvent>>> {
        self.stored_here.subscribe()
    }

    /// Events another node stored, for the pages and the alert engine here (see
    /// [`Pipeline::subscribe`]).
    pub fn relay(&self, events: Vec<StoredEvent>) {
        if !events.is_empty() {
            let _ = self.stored.send(Arc::new(events));
        }
    }

    /// Whether `key` may send to `project_id` (it exists, is not revoked, and is the project's),
    /// without counting a request against its rate limits: for refusing a request before its
    /// body is read.
    pub fn check_key(&self, project_id: Option<ProjectId>, key: Option<&str>) -> Result<store::ClientKey, IngestError> {
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
        Ok(found)
    }

    /// Counts rate limits in `counter`, shared with the other nodes, from now on.
    pub fn share_rate_limits(&self, counter: Arc<dyn SharedCounter>) {
        self.rates.share(counter);
    }

    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// The memory budget that request bodies and queued events count against.
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// What was refused or dropped so far, by reason and item.
    pub fn discards(&self) -> Vec<(DiscardReason, &'static str, u64)> {
        self.discards.snapshot()
    }

    /// Counts a request refused before it reached [`accept`](Self::accept) (at the edge).
    pub fn refused(&self, e: &IngestError) {
        self.discards.add(e.reason(), REQUEST, 1);
    }

    /// Checks a key for a project (`None` for the legacy `/api/store/` path, where the key
    /// decides the project). May read the store (through a one-second cache).
    pub fn authorize(&self, project_id: Option<ProjectId>, key: Option<&str>) -> Result<Authorized, IngestError> {
        let found = self.check_key(project_id, key)?;
        let key_limit = found.rate_limit_per_minute.unwrap_or(self.config.per_key_per_minute);
        let project_limit =
            self.config.project_limits.get(&found.project_id).copied().unwrap_or(self.config.per_project_per_minute);
        self.rates.check(&found.public_key, key_limit, found.project_id.0, project_limit)?;
        Ok(Authorized { project_id: found.project_id, public_key: found.public_key })
    }

    /// The whole pipeline for one request: decode, parse, authorise, process, submit. Returns
    /// once the events are durable. Refusals are counted.
    pub async fn accept(self: &Arc<Self>, req: Request) -> Result<Accepted, IngestError> {
        let result = self.accept_inner(req).await;
        if let Err(e) = &result {
            self.refused(e);
        }
        result
    }

    async fn accept_inner(self: &Arc<Self>, req: Request) -> Result<Accepted, IngestError> {
        let Request { endpoint, key, encoding, body, mut reservation, received } = req;
        let size = body.len();
        let pipeline = self.clone();
        let work = move || -> Result<(process::Processed, Reservation), IngestError> {
            let processed = pipeline.process(endpoint, key, encoding, body, &mut reservation, received)?;
            Ok((processed, reservation))
        };
        let (processed, reservation) = if size <= INLINE_MAX {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or(Err(IngestError::Crashed))?
        } else {
            let slot = self.cpu_slots.clone().acquire_owned().await.expect("the CPU semaphore is never closed");
            tokio::task::spawn_blocking(move || {
                let _slot = slot;
                work()
            })
            .await
            .map_err(|_| IngestError::Crashed)??
        };
        let accepted = self.submit(processed).await?;
        drop(reservation);
        Ok(accepted)
    }

    /// Decode, parse, authorise and process: CPU work.
    fn process(
        &self,
        endpoint: Endpoint,
        key: Option<String>,
        encoding: ContentEncoding,
        body: Vec<u8>,
        reservation: &mut Reservation,
        received: f64,
    ) -> Result<process::Processed, IngestError> {
        let limits = &self.config.limits;
        // A key the request names is checked before any decompression: a client without a
        // valid key costs no more than reading its body.
        if let (Endpoint::Envelope(project), Some(k)) = (endpoint, key.as_deref()) {
            self.check_key(Some(project), Some(k))?;
        }
        // Decoded bytes count against the memory budget as they come out.
        let data = decode_within(&body, encoding, limits.max_decompressed_bytes, &mut |n| reservation.grow(n))
            .map_err(|e| match e {
                DecodeError::OverBudget => IngestError::OverBudget,
                e => IngestError::Decode(e),
            })?;
        drop(body);
        match endpoint {
            Endpoint::Envelope(project) => {
                let env = Envelope::parse(&data, limits)?;
                let key = match key {
                    Some(k) => Some(k),
                    // Only the envelope names the key: its `dsn` header.
                    None => env
                        .dsn()
                        .map(|dsn| {
                            dsn.parse::<Dsn>()
                                .map(|d| d.public_key)
                                .map_err(|e| IngestError::BadKey(format!("the envelope's dsn is not valid: {e}")))
                        })
                        .transpose()?,
                };
                // Logs have a budget of their own: an envelope of logs alone is not counted
                // against the per-minute limits of events.
                let logs_only = !env.items.is_empty() && env.items.iter().all(|i| matches!(i.ty, protocol::ItemType::Log));
                let auth = if logs_only {
                    let found = self.check_key(Some(project), key.as_deref())?;
                    Authorized { project_id: found.project_id, public_key: found.public_key }
                } else {
                    self.authorize(Some(project), key.as_deref())?
                };
                let mut processed = process::envelope(auth.project_id, &env, limits, &self.grouping, self.scrubber(auth.project_id), received)?;
                let kept = self.log_budget.take(processed.items.logs.len());
                let over = processed.items.logs.split_off(kept).len();
                if over > 0 {
                    processed.discarded.push((DiscardReason::RateLimited, "log", over as u64));
                }
                Ok(processed)
            }
            Endpoint::Store(project) => {
                let json = decode_store_body(&data, limits.max_decompressed_bytes)?;
                drop(data);
                hold(reservation, json.len())?;
                Ok(process::store_body(project, &json, limits, &self.grouping, self.scrubber(project), received)?)
            }
            Endpoint::UserFeedback(project) => Ok(process::user_feedback(project, &data, self.scrubber(project), received)?),
        }
    }

    /// The project's scrubber.
    fn scrubber(&self, project: ProjectId) -> &scrub::Scrubber {
        self.project_scrubbers.get(&project).unwrap_or(&self.scrubber)
    }

    /// Appends processed events to the spool; returns once they are durable there.
    async fn submit(&self, processed: process::Processed) -> Result<Accepted, IngestError> {
        for (category, n) in &processed.not_stored {
            self.discards.add(DiscardReason::NotStored, category, *n);
        }
        for (reason, category, n) in &processed.discarded {
            self.discards.add(*reason, category, *n);
        }
        let n = processed.events.len();
        if processed.events.is_empty() && processed.counts.is_empty() && processed.items.is_empty() {
            return Ok(Accepted { event_id: processed.event_id });
        }
        if n > 0 && self.spool.waiting_events() + n as u64 > self.queue_capacity as u64 {
            return Err(IngestError::Overloaded);
        }
        let data = record::encode(&processed.events, &processed.counts, &processed.items);
        drop(processed.events);
        self.spool.append(data, n as u32).await?;
        Ok(Accepted { event_id: processed.event_id })
    }

    /// Makes failed monitor runs events (`items::check_ins::failure_event`) and appends them to
    /// the spool like any request's; returns once they are durable there. Stored, they are
    /// broadcast, and alert rules see them.
    pub async fn report_monitor_failures(&self, failures: &[store::MonitorFailure]) -> Result<(), IngestError> {
        let now = store::now();
        let events = failures
            .iter()
            .filter_map(|f| items::check_ins::failure_event(f, &self.config.limits, &self.grouping, now))
            .collect();
        self.submit(process::Processed { events, ..process::Processed::default() }).await.map(|_| ())
    }

    /// Events stored (duplicates not counted) since this process started.
    pub fn stored_total(&self) -> u64 {
        self.stored_total.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn announce(&self, heads: Vec<(ProjectId, EventId, String, store::Level)>, outcomes: &[WriteOutcome]) {
        let n = outcomes.iter().filter(|o| matches!(o, WriteOutcome::Stored { .. })).count();
        self.stored_total.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        self.discards.add(DiscardReason::Duplicate, "event", (outcomes.len() - n) as u64);
        if self.stored.receiver_count() == 0 && self.stored_here.receiver_count() == 0 {
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
            let stored = Arc::new(stored);
            if self.stored_here.receiver_count() > 0 {
                let _ = self.stored_here.send(stored.clone());
            }
            let _ = self.stored.send(stored);
        }
    }

    /// Acknowledged events waiting in the spool to be stored.
    pub fn queued(&self) -> u64 {
        self.spool.waiting_events()
    }

    /// What the spool holds now.
    pub fn spool_stats(&self) -> SpoolStats {
        self.spool.stats()
    }

    /// How long records waited between their append and their commit in the store.
    pub fn apply_lag(&self) -> &LagHistogram {
        &self.lag
    }

    /// Waits (at most `timeout`) until every event acknowledged before this call is stored:
    /// for pages that should show what was just sent. Whether it was.
    pub async fn settled(&self, timeout: Duration) -> bool {
        self.spool.settled(timeout).await
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    fn past_drain_deadline(&self) -> bool {
        self.drain_deadline.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|d| Instant::now() >= d)
    }

    /// Takes no more events, stores what waits in the spool (retrying an unavailable store
    /// for up to 30 s; the rest stays in the spool for the next start), then stops the writer.
    pub fn shutdown(&self) {
        *self.drain_deadline.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + DRAIN_TIMEOUT);
        self.spool.close();
        self.closing.store(true, Ordering::Release);
        if let Some(t) = self.applier.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        self.writer.shutdown();
        self.spool.shutdown();
    }
}

/// A spool that cannot take a record: over its budget is overload (503, retry later), a disk
/// that fails is the store being unavailable (also 503).
pub(crate) fn spool_refusal(e: SpoolError) -> IngestError {
    match e {
        SpoolError::Full { .. } => IngestError::Overloaded,
        e @ SpoolError::Io(_) => IngestError::Store(StoreError::Unavailable(e.to_string())),
        SpoolError::Stopped => IngestError::Store(StoreError::Unavailable("the server is shutting down".into())),
    }
}

/// Counts decoded bytes against the memory budget; refuses the request when it is spent.
fn hold(reservation: &mut Reservation, bytes: usize) -> Result<(), IngestError> {
    if reservation.grow(bytes) { Ok(()) } else { Err(IngestError::OverBudget) }
}
