//! Where acknowledged records wait until they are stored: the node's own spool on local disk
//! (`spool::Spool`, the default), or, with PostgreSQL, the queue every node shares
//! (`store::Queue`). Either way a request is answered only once its record is durable there,
//! and the applier (`crate::apply`) stores what waits, with a mark committed in the same
//! transaction, so nothing acknowledged is lost or stored twice.
//!
//! The shared queue: one thread of each node commits every record appended while the previous
//! commit ran, in one transaction (group commit, as the local spool's fsync); the applier
//! claims batches for a lease ([`SharedSpool::LEASE`] by default) and stores them in the
//! transaction that deletes their rows. A node that dies holding a claim leaves its rows to
//! whichever node claims them once the lease is over.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use spool::{Spool, SpoolError, SpoolStats};
use store::{Queue, QueueDepth, StoreError};

use crate::IngestError;
use tokio::sync::oneshot;

/// Where this node's acknowledged records wait.
pub enum Spooler {
    Local(Spool),
    Shared(SharedSpool),
}

impl Spooler {
    /// Makes `data` (holding `events` events) durable; returns once it is.
    pub(crate) async fn append(&self, data: Vec<u8>, events: u32) -> Result<(), IngestError> {
        match self {
            Spooler::Local(s) => {
                let ticket = s.append(data, events).map_err(crate::spool_refusal)?;
                ticket.wait().await.map(|_| ()).map_err(crate::spool_refusal)
            }
            Spooler::Shared(s) => {
                let ticket = s.append(data, events).map_err(crate::spool_refusal)?;
                let stopped = || IngestError::Store(StoreError::Unavailable("the server is shutting down".into()));
                ticket.await.map_err(|_| stopped())?.map_err(IngestError::Store)
            }
        }
    }

    /// Acknowledged events not stored yet (all nodes', for the shared queue, as last read).
    pub(crate) fn waiting_events(&self) -> u64 {
        match self {
            Spooler::Local(s) => s.waiting_events(),
            Spooler::Shared(s) => s.waiting_events(),
        }
    }

    pub(crate) fn stats(&self) -> SpoolStats {
        match self {
            Spooler::Local(s) => s.stats(),
            Spooler::Shared(s) => s.stats(),
        }
    }

    /// Waits (at most `timeout`) until everything this node acknowledged before the call is
    /// stored. Whether it was.
    pub(crate) async fn settled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        match self {
            Spooler::Local(s) => {
                let target = s.durable();
                while s.applied_through() < target {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                true
            }
            Spooler::Shared(s) => {
                let target = s.newest_here.load(Ordering::Acquire);
                if target == 0 {
                    return true;
                }
                loop {
                    let queue = s.queue.clone();
                    let done = tokio::task::spawn_blocking(move || queue.stored_through(target)).await;
                    if matches!(done, Ok(Ok(true))) {
                        return true;
                    }
                    if Instant::now() >= deadline {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }

    /// Takes no more appends; what was appended is made durable first.
    pub(crate) fn close(&self) {
        match self {
            Spooler::Local(s) => s.close(),
            Spooler::Shared(s) => s.close(),
        }
    }

    /// After the applier stopped.
    pub(crate) fn shutdown(&self) {
        match self {
            Spooler::Local(s) => s.shutdown(),
            Spooler::Shared(s) => {
                if let Some(local) = &s.leftover {
                    local.shutdown();
                }
            }
        }
    }
}

struct Pending {
    data: Vec<u8>,
    events: u32,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

#[derive(Default)]
struct State {
    pending: Vec<Pending>,
    pending_bytes: u64,
    closing: bool,
    /// The appender has committed everything and stopped.
    closed: bool,
}

/// The queue every node shares (see the module's text).
pub struct SharedSpool {
    pub(crate) queue: Arc<dyn Queue>,
    state: Arc<(Mutex<State>, Condvar)>,
    /// What waits in the queue, as the applier last read it.
    depth: Mutex<(QueueDepth, Option<Instant>)>,
    /// The newest record this node appended (0: none yet).
    newest_here: Arc<AtomicI64>,
    max_bytes: u64,
    pub(crate) lease: Duration,
    appender: Mutex<Option<JoinHandle<()>>>,
    /// A local spool left from before this node used the shared queue, with records not yet
    /// stored: the applier stores them first.
    pub(crate) leftover: Option<Spool>,
}

/// How many bytes of records one commit takes at most.
const COMMIT_BYTES: u64 = 32 << 20;

impl SharedSpool {
    pub const LEASE: Duration = Duration::from_secs(30);
    /// How old the queue's depth may be before the applier reads it again.
    const DEPTH_EVERY: Duration = Duration::from_secs(1);

    /// The shared queue, with at most `max_bytes` waiting (all nodes together), claims held for
    /// `lease`, and `leftover`, a local spool whose records go first.
    pub fn new(queue: Arc<dyn Queue>, max_bytes: u64, lease: Duration, leftover: Option<Spool>) -> SharedSpool {
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let newest_here = Arc::new(AtomicI64::new(0));
        let appender = {
            let (state, queue, newest) = (state.clone(), queue.clone(), newest_here.clone());
            std::thread::Builder::new()
                .name("queue-append".into())
                .spawn(move || append_loop(&state, queue.as_ref(), &newest))
                .expect("spawning the queue's appender thread")
        };
        SharedSpool {
            queue,
            state,
            depth: Mutex::new((QueueDepth::default(), None)),
            newest_here,
            max_bytes,
            lease,
            appender: Mutex::new(Some(appender)),
            leftover,
        }
    }

    fn append(&self, data: Vec<u8>, events: u32) -> Result<oneshot::Receiver<Result<(), StoreError>>, SpoolError> {
        let (lock, wake) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        if st.closing {
            return Err(SpoolError::Stopped);
        }
        let waiting = self.depth.lock().unwrap_or_else(|e| e.into_inner()).0.bytes;
        let size = data.len() as u64;
        if waiting + st.pending_bytes + size > self.max_bytes {
            return Err(SpoolError::Full { unapplied: waiting + st.pending_bytes, limit: self.max_bytes });
        }
        let (reply, rx) = oneshot::channel();
        st.pending_bytes += size;
        st.pending.push(Pending { data, events, reply });
        drop(st);
        wake.notify_all();
        Ok(rx)
    }

    fn waiting_events(&self) -> u64 {
        let pending: u64 = {
            let st = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
            st.pending.iter().map(|p| p.events as u64).sum()
        };
        self.depth.lock().unwrap_or_else(|e| e.into_inner()).0.events + pending
    }

    fn stats(&self) -> SpoolStats {
        let depth = self.depth.lock().unwrap_or_else(|e| e.into_inner()).0.clone();
        SpoolStats {
            unapplied_bytes: depth.bytes,
            waiting_events: depth.events,
            oldest_unapplied: depth.oldest,
            segments: 0,
            disk_bytes: 0,
        }
    }

    /// Reads the queue's depth again when the last reading is older than a moment.
    pub(crate) fn refresh_depth(&self) {
        let stale = self.depth.lock().unwrap_or_else(|e| e.into_inner()).1.is_none_or(|at| at.elapsed() >= Self::DEPTH_EVERY);
        if stale && let Ok(d) = self.queue.depth() {
            *self.depth.lock().unwrap_or_else(|e| e.into_inner()) = (d, Some(Instant::now()));
        }
    }

    /// Whether appends are closed and every one is committed (or refused).
    pub(crate) fn closed(&self) -> bool {
        self.state.0.lock().unwrap_or_else(|e| e.into_inner()).closed
    }

    fn close(&self) {
        let (lock, wake) = &*self.state;
        lock.lock().unwrap_or_else(|e| e.into_inner()).closing = true;
        wake.notify_all();
        if let Some(t) = self.appender.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// The appender's loop: every record appended while the previous commit ran, in one commit.
fn append_loop(state: &(Mutex<State>, Condvar), queue: &dyn Queue, newest: &AtomicI64) {
    let (lock, wake) = state;
    loop {
        let batch: Vec<Pending> = {
            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
            while st.pending.is_empty() && !st.closing {
                st = wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.pending.is_empty() {
                st.closed = true;
                return;
            }
            let mut bytes = 0;
            let n = st.pending.iter().take_while(|p| {
                bytes += p.data.len() as u64;
                bytes <= COMMIT_BYTES
            });
            let n = n.count().max(1);
            let batch: Vec<Pending> = st.pending.drain(..n).collect();
            st.pending_bytes -= batch.iter().map(|p| p.data.len() as u64).sum::<u64>();
            batch
        };
        let records: Vec<(&[u8], u32)> = batch.iter().map(|p| (p.data.as_slice(), p.events)).collect();
        match queue.append(&records) {
            Ok(ids) => {
                if let Some(last) = ids.last() {
                    newest.fetch_max(*last, Ordering::AcqRel);
                }
                for p in batch {
                    let _ = p.reply.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, records = batch.len(), "could not commit received events to the shared queue; their senders get 503 and retry");
                for p in batch {
                    let _ = p.reply.send(Err(StoreError::Unavailable(e.to_string())));
                }
            }
        }
    }
}

/// A number for one claim: random, so that claims of different nodes never share one.
pub(crate) fn claim_number() -> i64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the operating system's random number generator");
    i64::from_le_bytes(b) & i64::MAX
}
