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
use store::{ItemCounts, NewEvent, ProjectId, SpoolMark, StoreError, WriteBatch, WriteOutcome};

use crate::record;
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

/// Writes one set of records with the mark `end`; retries while the store is unavailable,
/// unless the pipeline is stopping and its drain deadline has passed (then `None`: left in the
/// spool for the next start).
fn write(pipeline: &Pipeline, records: &[Record], end: Lsn) -> Option<Result<(Heads, Vec<WriteOutcome>), StoreError>> {
    let mut pause = Duration::from_millis(50);
    let mut told = false;
    loop {
        let Decoded { events, counts, items } = decode(pipeline, records, !told);
        let heads: Heads = events.iter().map(|e| (e.project_id, e.event_id, e.kind.clone(), e.level)).collect();
        let mark = SpoolMark { spool: pipeline.spool.id().to_string(), position: end };
        let result = pipeline
            .writer
            .write_batch(WriteBatch { events, counts: ItemCounts(counts), items, mark: Some(mark) })
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

/// The applier's loop, from position `from` until the spool is closed and read to its end (or
/// the drain deadline passes).
pub(crate) fn run(pipeline: Arc<Pipeline>, mut from: Lsn, batch_events: usize) {
    loop {
        let batch = match pipeline.spool.read(from, batch_events, BATCH_BYTES, Duration::from_millis(500)) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "could not read the spool; retrying in a second");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if batch.records.is_empty() {
            if batch.end > from {
                pipeline.spool.applied(batch.end, 0);
                from = batch.end;
                continue;
            }
            if pipeline.closing() && pipeline.spool.durable() <= from {
                return;
            }
            continue;
        }
        let events: u64 = batch.records.iter().map(|r| r.events as u64).sum();
        match write(&pipeline, &batch.records, batch.end) {
            None => return,
            Some(Ok((heads, outcomes))) => pipeline.announce(heads, &outcomes),
            Some(Err(e)) => {
                tracing::error!(error = %e, records = batch.records.len(), "the store refused a batch; writing its records one by one");
                for r in &batch.records {
                    match write(&pipeline, std::slice::from_ref(r), r.end) {
                        None => return,
                        Some(Ok((heads, outcomes))) => pipeline.announce(heads, &outcomes),
                        Some(Err(e)) => {
                            tracing::error!(error = %e, position = r.start, events = r.events, "the store refused a record; it is skipped");
                            pipeline.discards.add(DiscardReason::StoreUnavailable, "event", r.events as u64);
                            if let Some(Err(e)) = write(&pipeline, &[], r.end) {
                                tracing::error!(error = %e, "could not record the skip; the record is tried again after a restart");
                            }
                        }
                    }
                }
            }
        }
        let now = store::now();
        for r in &batch.records {
            pipeline.lag.observe(now - r.appended_at);
        }
        pipeline.spool.applied(batch.end, events);
        from = batch.end;
    }
}
