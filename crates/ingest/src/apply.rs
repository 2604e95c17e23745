//! Behind the spool: one thread reads what was acknowledged, in order, in large batches (all
//! that arrived while the previous batch was committing, up to the writer's batch size), and
//! writes each batch with the spool position it reaches (`store::SpoolMark`), in the same
//! transaction. A store that is unavailable (disk full, locked) is retried with a growing
//! pause while the spool grows within its budget; a batch the store refuses for another reason
//! is written record by record, so one bad record cannot hold back the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use spool::{Lsn, Record};
use protocol::{EventId, Level};
use store::{ItemCounts, NewEvent, ProjectId, QueueClaim, SpoolMark, StoreError, WriteBatch, WriteOutcome};

use crate::record;
use crate::spooler::{self, SharedSpool, Spooler};
use crate::{DiscardReason, Pipeline};

/// The most bytes of records one batch reads.
const BATCH_BYTES: usize = 64 << 20;
/// Upper bounds (seconds) of the apply-lag histogram's buckets.
pub const LAG_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How long records waited between their append and their commit in the store.
#[derive(Default)]
pub struct LagHistogram {
    /// One counter per bucket (not cumulative), then the overflow.
    counts: [AtomicU64; LAG_BUCKETS.len() + 1],
    /// Sum of all lags, in microseconds.
    sum_micros: AtomicU64,
}

impl LagHistogram {
    fn observe(&self, seconds: f64) {
        let i = LAG_BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(LAG_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((seconds.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket bound (the last is +Inf), and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64) {
        let mut total = 0;
        let mut out = Vec::with_capacity(LAG_BUCKETS.len() + 1);
        for (i, c) in self.counts.iter().enumerate() {
            total += c.load(Ordering::Relaxed);
            out.push((LAG_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), total));
        }
        (out, self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6)
    }
}

/// The decoded content of some records, ready for one write.
#[derive(Default)]
struct Decoded {
    events: Vec<NewEvent>,
    counts: Vec<(ProjectId, String, u64)>,
    items: store::NewItems,
}

/// Decodes records; one that does not decode is left out (and, when `report`, logged and
/// counted: once, not again on every retry).
fn decode(pipeline: &Pipeline, records: &[Record], report: bool) -> Decoded {
    let mut out = Decoded::default();
    for r in records {
        match record::decode(&r.data) {
            Ok(mut s) => {
                // Source maps are read from the store here, off the request path.
                let resolve = |e| pipeline.sourcemaps.resolve(e, &pipeline.config.limits, &pipeline.grouping);
                out.events.extend(s.events.into_iter().map(resolve));
                out.counts.append(&mut s.counts);
                out.items.append(&mut s.items);
            }
            Err(e) if report => {
                tracing::error!(error = %e, position = r.start, events = r.events, "skipping a spool record that does not decode");
                pipeline.discards.add(DiscardReason::StoreUnavailable, "event", r.events as u64);
            }
            Err(_) => {}
        }
    }
    out
}

/// What the broadcast needs of each event written.
type Heads = Vec<(ProjectId, EventId, String, Level)>;

/// What a write records as applied: a local spool's position, or the queue rows it stores.
#[derive(Clone)]
enum Mark {
    Spool(SpoolMark),
    Claim(QueueClaim),
}

/// Writes one set of records with `mark`; retries while the store is unavailable, unless the
/// pipeline is stopping and its drain deadline has passed (then `None`: left in the spool for
/// the next start).
fn write(pipeline: &Pipeline, records: &[Record], mark: Mark) -> Option<Result<(Heads, Vec<WriteOutcome>), StoreError>> {
    let mut pause = Duration::from_millis(50);
    let mut told = false;
    loop {
        let Decoded { events, counts, items } = decode(pipeline, records, !told);
        let heads: Heads = events.iter().map(|e| (e.project_id, e.event_id, e.kind.clone(), e.level)).collect();
        let (mark, claim) = match mark.clone() {
            Mark::Spool(m) => (Some(m), None),
            Mark::Claim(c) => (None, Some(c)),
        };
        let result = pipeline
            .writer
            .write_batch(WriteBatch { events, counts: ItemCounts(counts), items, mark, claim })
            .and_then(|ticket| ticket.wait_blocking());
        match result {
            Ok(outcomes) => {
                if told {
                    tracing::info!("the store accepts writes again; applying what waited in the spool");
                }
                return Some(Ok((heads, outcomes)));
            }
            Err(StoreError::Unavailable(e)) => {
                if pipeline.past_drain_deadline() {
                    tracing::warn!(error = %e, "stopping with events still in the spool; they are stored at the next start");
                    return None;
                }
                if !told {
                    tracing::warn!(error = %e, "the store cannot write now; acknowledged events wait in the spool and are retried");
                    told = true;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

/// The applier's loop: the local spool, or the shared queue (after what a local spool left
/// from before still holds).
pub(crate) fn run(pipeline: Arc<Pipeline>, batch_events: usize) {
    match &pipeline.spool {
        Spooler::Local(s) => {
            run_local(&pipeline, s, batch_events, false);
        }
        Spooler::Shared(q) => {
            if let Some(local) = &q.leftover {
                tracing::info!("storing what this node's own spool still holds before it takes from the shared queue");
                if !run_local(&pipeline, local, batch_events, true) {
                    return;
                }
            }
            run_shared(&pipeline, q, batch_events)
        }
    }
}

/// Stores a local spool's records in order, from where it was applied through, until it is
/// closed and read to its end (or, with `to_end`, until it is read to its end; the drain
/// deadline stops it too). Whether it got to the end.
fn run_local(pipeline: &Pipeline, spool: &spool::Spool, batch_events: usize, to_end: bool) -> bool {
    let mut from = spool.applied_through();
    let mark = |end: Lsn| Mark::Spool(SpoolMark { spool: spool.id().to_string(), position: end });
    loop {
        let batch = match spool.read(from, batch_events, BATCH_BYTES, Duration::from_millis(500)) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "could not read the spool; retrying in a second");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if batch.records.is_empty() {
            if batch.end > from {
                spool.applied(batch.end, 0);
                from = batch.end;
                continue;
            }
            if (to_end || pipeline.closing()) && spool.durable() <= from {
                return true;
            }
            continue;
        }
        let events: u64 = batch.records.iter().map(|r| r.events as u64).sum();
        if !store_records(pipeline, &batch.records, mark(batch.end), |r| mark(r.end)) {
            return false;
        }
        spool.applied(batch.end, events);
        from = batch.end;
    }
}

/// Claims batches from the queue every node shares and stores them, until the pipeline is
/// closing and no record is left to claim (or its drain deadline passed).
fn run_shared(pipeline: &Pipeline, queue: &SharedSpool, batch_events: usize) {
    let mut idle = Duration::from_millis(1);
    let mut told = false;
    // Where claims start: past rows other nodes took, back to 0 when nothing is found and now
    // and then (rows whose claim ran out lie behind it).
    let mut from = 0i64;
    let mut rescan = std::time::Instant::now();
    loop {
        queue.refresh_depth();
        if rescan.elapsed() >= queue.lease / 2 {
            from = 0;
            rescan = std::time::Instant::now();
        }
        if pipeline.past_drain_deadline() {
            tracing::warn!("stopping with events still in the shared queue; another node, or this one's next start, stores them");
            return;
        }
        let claim = spooler::claim_number();
        let rows = match queue.queue.claim(claim, from, batch_events, BATCH_BYTES, queue.lease) {
            Ok(rows) => rows,
            Err(e) => {
                if !told {
                    tracing::warn!(error = %e, "cannot take events from the shared queue now; retrying");
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        if told {
            tracing::info!("the shared queue can be read again");
            told = false;
        }
        if rows.is_empty() {
            if from > 0 {
                from = 0;
                continue;
            }
            if pipeline.closing() && queue.closed() {
                return;
            }
            std::thread::sleep(idle);
            idle = (idle * 2).min(Duration::from_millis(50));
            continue;
        }
        idle = Duration::from_millis(1);
        from = rows[0].id;
        let records: Vec<Record> = rows
            .into_iter()
            .map(|r| Record { start: r.id as u64, end: r.id as u64, events: r.events, appended_at: r.appended_at, data: r.data })
            .collect();
        let all = QueueClaim { claim, ids: records.iter().map(|r| r.start as i64).collect() };
        let one = |r: &Record| Mark::Claim(QueueClaim { claim, ids: vec![r.start as i64] });
        if !store_records(pipeline, &records, Mark::Claim(all), one) {
            return;
        }
    }
}

/// Stores some records with `mark`; when the store refuses them together, one by one with
/// `mark_one`, skipping (and counting) a record it refuses alone. Whether to go on (false:
/// stopping, with the rest left in the spool).
fn store_records(pipeline: &Pipeline, records: &[Record], mark: Mark, mark_one: impl Fn(&Record) -> Mark) -> bool {
    match write(pipeline, records, mark) {
        None => return false,
        Some(Ok((heads, outcomes))) => pipeline.announce(heads, &outcomes),
        Some(Err(StoreError::ClaimLost)) => return true,
        Some(Err(e)) => {
            tracing::error!(error = %e, records = records.len(), "the store refused a batch; writing its records one by one");
            for r in records {
                match write(pipeline, std::slice::from_ref(r), mark_one(r)) {
                    None => return false,
                    Some(Ok((heads, outcomes))) => pipeline.announce(heads, &outcomes),
                    Some(Err(StoreError::ClaimLost)) => {}
                    Some(Err(e)) => {
                        tracing::error!(error = %e, position = r.start, events = r.events, "the store refused a record; it is skipped");
                        pipeline.discards.add(DiscardReason::StoreUnavailable, "event", r.events as u64);
                        if let Some(Err(e)) = write(pipeline, &[], mark_one(r)) {
                            tracing::error!(error = %e, "could not record the skip; the record is tried again after a restart");
                        }
                    }
                }
            }
        }
    }
    let now = store::now();
    for r in records {
        pipeline.lag.observe(now - r.appended_at);
    }
    true
}
