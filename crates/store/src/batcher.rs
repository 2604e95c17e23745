//! The writer's queue, for every backend: a thread that takes what callers queued (events, item
//! counts, user feedback and client reports, spool marks) in batches of up to `batch_max` events — everything that arrived while
//! the previous batch was committing — hands each batch to the backend's `apply` (one
//! transaction), and only then answers every waiting request. Group commit: while one batch
//! commits, the next one queues up.
//!
//! Architecture invariant: a `WriteOutcome::Stored` is only ever sent after `apply` returned,
//! that is after the backend committed.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::fold::Batch;
use crate::{EventSink, NewItems, QueueClaim, Result, SpoolMark, StoreError, WriteBatch, WriteOutcome, WriteTicket};

/// How far a batch brings the spools: the local spools' marks to record, and the shared
/// queue's claimed rows to delete (only while their claims hold).
#[derive(Default)]
pub(crate) struct Marks {
    pub spools: Vec<SpoolMark>,
    pub claims: Vec<QueueClaim>,
}

type Reply = oneshot::Sender<Result<Vec<WriteOutcome>>>;

enum Msg {
    Write(Box<WriteBatch>, Reply),
    Shutdown,
}

/// A handle to a writer thread. Cloning shares the same thread.
#[derive(Clone)]
pub struct WriterHandle {
    tx: Sender<Msg>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// What a backend does with one batch: commit it (with the feedback it carries and the spool
/// marks it reaches) in one transaction, and say what happened to each request's events.
pub(crate) type Apply = Box<dyn FnMut(&Batch<'_>, &NewItems, &Marks) -> Result<Vec<Vec<WriteOutcome>>> + Send>;

/// Starts the writer thread.
pub(crate) fn spawn(batch_max: usize, apply: Apply) -> WriterHandle {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(rx, batch_max.max(1), apply))
        .expect("spawning the store writer thread");
    WriterHandle { tx, thread: Arc::new(Mutex::new(Some(thread))) }
}

impl EventSink for WriterHandle {
    fn write_batch(&self, batch: WriteBatch) -> Result<WriteTicket> {
        let (reply, ticket) = WriteTicket::new();
        self.tx
            .send(Msg::Write(Box::new(batch), reply))
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?;
        Ok(ticket)
    }

    /// Writes everything queued so far, then stops the thread and waits for it.
    fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

fn run(rx: Receiver<Msg>, batch_max: usize, mut apply: Apply) {
    loop {
        let Ok(first) = rx.recv() else { return };
        let mut batch = Vec::new();
        let mut marks = Marks::default();
        let mut items = NewItems::default();
        let mut size = 0;
        let mut stop = false;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Shutdown => stop = true,
                Msg::Write(write, reply) => {
                    let WriteBatch { events, counts, items: mut more, mark, claim } = *write;
                    size += events.len().max(1) + more.len();
                    items.append(&mut more);
                    if let Some(m) = mark {
                        match marks.spools.iter_mut().find(|k| k.spool == m.spool) {
                            Some(k) => k.position = k.position.max(m.position),
                            None => marks.spools.push(m),
                        }
                    }
                    marks.claims.extend(claim);
                    batch.push((events, counts, reply));
                }
            }
            if stop || size >= batch_max {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !batch.is_empty() {
            let jobs = Batch { jobs: batch.iter().map(|(e, c, _)| (e.as_slice(), c)).collect() };
            match apply(&jobs, &items, &marks) {
                Ok(outcomes) => {
                    for ((_, _, reply), out) in batch.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(out));
                    }
                }
                Err(StoreError::ClaimLost) => {
                    tracing::warn!(events = size, "a batch's claim on queued records was lost to another node; that node stores them");
                    for (_, _, reply) in batch {
                        let _ = reply.send(Err(StoreError::ClaimLost));
                    }
                }
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        events = size,
                        "could not write a batch of events (is the disk full or read-only, or the database down?); their senders get 503 and retry"
                    );
                    for (_, _, reply) in batch {
                        let _ = reply.send(Err(StoreError::Unavailable(e.to_string())));
                    }
                }
            }
        }
        if stop {
            return;
        }
    }
}
