//! The single writer: a thread that takes batches of events from a queue, folds each batch into
//! one transaction (events inserted, group counters, tag counts, minute buckets and duration
//! histograms updated by summed deltas), commits with one fsync, and only then answers every
//! waiting request. Group commit: while one batch commits, the next one queues up.
//!
//! Architecture invariant: a `WriteOutcome::Stored` is only ever sent after the commit returned,
//! and an event id already stored for its project is a `Duplicate` that changes nothing.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::payload::PayloadWriter;
use super::{histogram, now};
use crate::{GroupStatus, ItemCounts, NewEvent, Result, StoreError, WriteOutcome};

type Reply = oneshot::Sender<Result<Vec<WriteOutcome>>>;

enum Msg {
    Write { events: Vec<NewEvent>, counts: ItemCounts, reply: Reply },
    Shutdown,
}

/// A handle to the writer thread. Cloning shares the same thread.
#[derive(Clone)]
pub struct WriterHandle {
    tx: Sender<Msg>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

pub(super) fn start(conn: Connection, payloads: PayloadWriter, batch_max: usize) -> WriterHandle {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(conn, payloads, rx, batch_max))
        .expect("spawning the store writer thread");
    WriterHandle { tx, thread: Arc::new(Mutex::new(Some(thread))) }
}

impl WriterHandle {
    /// Writes events (and item counts) durably. Resolves once the batch holding them has been
    /// committed, with one outcome per event, in order.
    pub async fn write(&self, events: Vec<NewEvent>, counts: ItemCounts) -> Result<Vec<WriteOutcome>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::Write { events, counts, reply }).map_err(|_| StoreError::ShuttingDown)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// The same as [`write`](Self::write), for threads outside an async runtime.
    pub fn write_blocking(&self, events: Vec<NewEvent>, counts: ItemCounts) -> Result<Vec<WriteOutcome>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::Write { events, counts, reply }).map_err(|_| StoreError::ShuttingDown)?;
        rx.blocking_recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Writes everything queued so far, then stops the thread and waits for it.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

fn run(mut conn: Connection, mut payloads: PayloadWriter, rx: Receiver<Msg>, batch_max: usize) {
    loop {
        let Ok(first) = rx.recv() else { return };
        let mut batch = Vec::new();
        let mut size = 0;
        let mut stop = false;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Shutdown => stop = true,
                Msg::Write { events, counts, reply } => {
                    size += events.len().max(1);
                    batch.push((events, counts, reply));
                }
            }
            if stop || size >= batch_max {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !batch.is_empty() {
            let jobs: Vec<(&[NewEvent], &ItemCounts)> =
                batch.iter().map(|(e, c, _)| (e.as_slice(), c)).collect();
            match apply(&mut conn, &mut payloads, &jobs) {
                Ok(outcomes) => {
                    for ((_, _, reply), out) in batch.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(out));
                    }
                }
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        events = size,
                        "could not write a batch of events (is the disk full or read-only?); their senders get 503 and retry"
                    );
                    for (_, _, reply) in batch {
                        let _ = reply.send(Err(StoreError::Invalid(e.to_string())));
                    }
                }
            }
        }
        if stop {
            return;
        }
    }
}

/// The state of one group while a batch is folded into it.
struct GroupState {
    id: i64,
    status: GroupStatus,
    times_seen: i64,
    first_seen: f64,
    last_seen: f64,
    ts_count: i64,
    ts_sum: f64,
    ts_min: Option<f64>,
    ts_max: Option<f64>,
    last_event_id: String,
    title: String,
    culprit: String,
    level: String,
    logger: Option<String>,
    components: String,
    reopened: bool,
}

/// Counter deltas of a batch, summed per key; tag keys borrow from the batch's events.
#[derive(Default)]
struct Deltas<'a> {
    tags: HashMap<(i64, &'a str, &'a str), (i64, f64, f64)>,
    /// (project, key, value) → (count, last seen).
    project_tags: HashMap<(i64, &'a str, &'a str), (i64, f64)>,
    group_hours: HashMap<(i64, i64), i64>,
    group_days: HashMap<(i64, i64), i64>,
    project_minutes: HashMap<(i64, i64), i64>,
    project_hours: HashMap<(i64, i64), i64>,
    buckets: HashMap<(i64, i64), i64>,
    durations: HashMap<(i64, i64), i64>,
    activity: Vec<(i64, &'static str, f64)>,
}

fn apply<'a>(
    conn: &mut Connection,
    payloads: &mut PayloadWriter,
    jobs: &[(&'a [NewEvent], &ItemCounts)],
) -> Result<Vec<Vec<WriteOutcome>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let received_now = now();
    let mut groups: HashMap<(i64, &'a str), GroupState> = HashMap::new();
    let mut seen: HashSet<(i64, [u8; 16])> = HashSet::new();
    let mut d = Deltas::default();
    let mut all = Vec::with_capacity(jobs.len());

    for (events, _) in jobs {
        let mut outcomes = Vec::with_capacity(events.len());
        for ev in events.iter() {
            if !seen.insert((ev.project_id, ev.event_id.0)) {
                outcomes.push(WriteOutcome::Duplicate);
                continue;
            }
            // A timestamp from the future (clock skew) counts as now; old ones are kept.
            let ts = if ev.timestamp.is_finite() { ev.timestamp.min(ev.received + 60.0) } else { ev.received };
            let key = (ev.project_id, ev.hash.as_str());
            let mut new_group = false;
            let g = match groups.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let (state, created) = load_or_create_group(&tx, ev, ts)?;
                    new_group = created;
                    e.insert(state)
                }
            };
            if !insert_event(&tx, payloads, ev, g.id, ts)? {
                // Already stored (a client's retry, a replay): nothing changes. A group made
                // just now for it can only come from a change of grouping; it goes again.
                if new_group {
                    tx.execute("DELETE FROM groups WHERE id = ?1", [g.id])?;
                    groups.remove(&key);
                }
                outcomes.push(WriteOutcome::Duplicate);
                continue;
            }
            if new_group {
                d.activity.push((g.id, "created", received_now));
            }
            let mut regression = false;
            if g.status == GroupStatus::Resolved {
                g.status = GroupStatus::Unresolved;
                g.reopened = true;
                regression = true;
                d.activity.push((g.id, "regression", received_now));
            }
            fold_event(g, ev, ts, &mut d);
            outcomes.push(WriteOutcome::Stored { group_id: g.id, new_group, regression });
        }
        all.push(outcomes);
    }

    flush_groups(&tx, groups.values())?;
    flush_deltas(&tx, &d)?;
    flush_counts(&tx, jobs, received_now)?;
    payloads.after_batch(&tx)?;
    tx.commit()?;
    Ok(all)
}

fn load_or_create_group(tx: &Connection, ev: &NewEvent, ts: f64) -> Result<(GroupState, bool)> {
    let mut st = tx.prepare_cached(
        "SELECT id, status, times_seen, first_seen, last_seen, ts_count, ts_sum, ts_min, ts_max,
                last_event_id, title, culprit, level, logger, components
         FROM groups WHERE project_id = ?1 AND hash = ?2",
    )?;
    let found = st
        .query_row(params![ev.project_id, ev.hash], |r| {
            Ok(GroupState {
                id: r.get(0)?,
                status: GroupStatus::from_i64(r.get(1)?),
                times_seen: r.get(2)?,
                first_seen: r.get(3)?,
                last_seen: r.get(4)?,
                ts_count: r.get(5)?,
                ts_sum: r.get(6)?,
                ts_min: r.get(7)?,
                ts_max: r.get(8)?,
                last_event_id: r.get(9)?,
                title: r.get(10)?,
                culprit: r.get(11)?,
                level: r.get(12)?,
                logger: r.get(13)?,
                components: r.get(14)?,
                reopened: false,
            })
        })
        .optional()?;
    if let Some(g) = found {
        return Ok((g, false));
    }
    let mut ins = tx.prepare_cached(
        "INSERT INTO groups (project_id, hash, kind, title, culprit, level, logger, status,
                             first_seen, last_seen, times_seen, components)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?8, 0, ?9)",
    )?;
    ins.execute(params![
        ev.project_id, ev.hash, ev.kind, ev.title, ev.culprit, ev.level, ev.logger, ts, ev.components
    ])?;
    let id = tx.last_insert_rowid();
    Ok((
        GroupState {
            id,
            status: GroupStatus::Unresolved,
            times_seen: 0,
            first_seen: ts,
            last_seen: ts,
            ts_count: 0,
            ts_sum: 0.0,
            ts_min: None,
            ts_max: None,
            last_event_id: String::new(),
            title: ev.title.clone(),
            culprit: ev.culprit.clone(),
            level: ev.level.clone(),
            logger: ev.logger.clone(),
            components: ev.components.clone(),
            reopened: false,
        },
        true,
    ))
}

fn fold_event<'a>(g: &mut GroupState, ev: &'a NewEvent, ts: f64, d: &mut Deltas<'a>) {
    g.times_seen += 1;
    g.first_seen = g.first_seen.min(ts);
    if ts >= g.last_seen || g.last_event_id.is_empty() {
        g.last_seen = g.last_seen.max(ts);
        g.last_event_id = ev.event_id.to_string();
        g.title.clone_from(&ev.title);
        g.culprit.clone_from(&ev.culprit);
        g.level.clone_from(&ev.level);
        g.logger.clone_from(&ev.logger);
        g.components.clone_from(&ev.components);
    }
    if let Some(ms) = ev.time_spent.filter(|m| m.is_finite() && *m >= 0.0) {
        g.ts_count += 1;
        g.ts_sum += ms;
        g.ts_min = Some(g.ts_min.map_or(ms, |m| m.min(ms)));
        g.ts_max = Some(g.ts_max.map_or(ms, |m| m.max(ms)));
        *d.durations.entry((g.id, histogram::bucket(ms))).or_default() += 1;
    }
    for (k, v) in &ev.tags {
        let e = d.tags.entry((g.id, k.as_str(), v.as_str())).or_insert((0, ts, ts));
        e.0 += 1;
        e.1 = e.1.min(ts);
        e.2 = e.2.max(ts);
        let p = d.project_tags.entry((ev.project_id, k.as_str(), v.as_str())).or_insert((0, ts));
        p.0 += 1;
        p.1 = p.1.max(ts);
    }
    let minute = (ts / 60.0).floor() as i64;
    *d.buckets.entry((g.id, minute)).or_default() += 1;
    *d.group_hours.entry((g.id, minute.div_euclid(60))).or_default() += 1;
    *d.group_days.entry((g.id, minute.div_euclid(1440))).or_default() += 1;
    *d.project_minutes.entry((ev.project_id, minute)).or_default() += 1;
    *d.project_hours.entry((ev.project_id, minute.div_euclid(60))).or_default() += 1;
}

/// Inserts the event unless its id is already stored for its project; says whether it did.
fn insert_event(tx: &Connection, payloads: &mut PayloadWriter, ev: &NewEvent, group_id: i64, ts: f64) -> Result<bool> {
    let (dict, payload) = payloads.compress(&ev.payload);
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (project_id, event_id, group_id, kind, timestamp, received, level, title,
                             time_spent, dict, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    st.execute(params![
        ev.project_id,
        &ev.event_id.0[..],
        group_id,
        ev.kind,
        ts,
        ev.received,
        ev.level,
        ev.title,
        ev.time_spent,
        dict,
        payload,
    ])?;
    Ok(tx.changes() == 1)
}

fn flush_groups<'a>(tx: &Connection, groups: impl Iterator<Item = &'a GroupState>) -> Result<()> {
    let mut st = tx.prepare_cached(
        "UPDATE groups SET status = ?2, times_seen = ?3, first_seen = ?4, last_seen = ?5, priority = ?6,
                ts_count = ?7, ts_sum = ?8, ts_min = ?9, ts_max = ?10, last_event_id = ?11,
                title = ?12, culprit = ?13, level = ?14, logger = ?15, components = ?16,
                resolved_at = CASE WHEN ?17 THEN NULL ELSE resolved_at END
         WHERE id = ?1",
    )?;
    for g in groups {
        let priority = g.last_seen + 600.0 * (g.times_seen.max(1) as f64).ln();
        st.execute(params![
            g.id,
            g.status.as_i64(),
            g.times_seen,
            g.first_seen,
            g.last_seen,
            priority,
            g.ts_count,
            g.ts_sum,
            g.ts_min,
            g.ts_max,
            g.last_event_id,
            g.title,
            g.culprit,
            g.level,
            g.logger,
            g.components,
            g.reopened,
        ])?;
    }
    Ok(())
}

fn flush_deltas(tx: &Connection, d: &Deltas) -> Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO group_tags (group_id, key, value, count, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (group_id, key, value) DO UPDATE SET count = count + excluded.count,
            first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)",
    )?;
    for ((g, k, v), (n, first, last)) in &d.tags {
        st.execute(params![g, k, v, n, first, last])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO group_buckets (group_id, minute, count) VALUES (?1, ?2, ?3)
         ON CONFLICT (group_id, minute) DO UPDATE SET count = count + excluded.count",
    )?;
    for ((g, m), n) in &d.buckets {
        st.execute(params![g, m, n])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO group_durations (group_id, bucket, count) VALUES (?1, ?2, ?3)
         ON CONFLICT (group_id, bucket) DO UPDATE SET count = count + excluded.count",
    )?;
    for ((g, b), n) in &d.durations {
        st.execute(params![g, b, n])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO project_tags (project_id, key, value, count, last_seen) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (project_id, key, value) DO UPDATE SET count = count + excluded.count,
            last_seen = max(last_seen, excluded.last_seen)",
    )?;
    for ((p, k, v), (n, last)) in &d.project_tags {
        st.execute(params![p, k, v, n, last])?;
    }
    for (table, key, deltas) in [
        ("group_hours", "group_id, hour", &d.group_hours),
        ("group_days", "group_id, day", &d.group_days),
        ("project_minutes", "project_id, minute", &d.project_minutes),
        ("project_hours", "project_id, hour", &d.project_hours),
    ] {
        let mut st = tx.prepare_cached(&format!(
            "INSERT INTO {table} ({key}, count) VALUES (?1, ?2, ?3)
             ON CONFLICT ({key}) DO UPDATE SET count = count + excluded.count"
        ))?;
        for ((a, b), n) in deltas {
            st.execute(params![a, b, n])?;
        }
    }
    let mut st = tx.prepare_cached("INSERT INTO group_activity (group_id, kind, at) VALUES (?1, ?2, ?3)")?;
    for (g, kind, at) in &d.activity {
        st.execute(params![g, kind, at])?;
    }
    Ok(())
}

fn flush_counts(tx: &Connection, jobs: &[(&[NewEvent], &ItemCounts)], now: f64) -> Result<()> {
    let day = (now / 86400.0).floor() as i64;
    let mut st = tx.prepare_cached(
        "INSERT INTO item_counts (project_id, item_type, day, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project_id, item_type, day) DO UPDATE SET count = count + excluded.count",
    )?;
    for (_, counts) in jobs {
        for (project, ty, n) in &counts.0 {
            st.execute(params![project, ty, day, *n as i64])?;
        }
    }
    Ok(())
}
