//! The SQLite writer: for each batch the writer thread (`crate::batcher`) takes, in one
//! transaction, loads the state of the groups they touch, folds them into a plan (`crate::fold`: the rules), applies the plan (groups created and
//! updated, events inserted, tag counts, buckets and histograms upserted by summed deltas),
//! commits with one fsync, and only then answers every waiting request. Group commit: while
//! one batch commits, the next one queues up.
//!
//! Architecture invariant: a `WriteOutcome::Stored` is only ever sent after the commit returned,
//! and an event id already stored for its project is a `Duplicate` that changes nothing.

use std::collections::HashSet;
use std::sync::Arc;

use rusqlite::{params, Connection, TransactionBehavior};

use super::payload::PayloadWriter;
use crate::tags_json;
use crate::fold::{self, Batch, GroupState, Plan};
use crate::batcher::WriterHandle;
use crate::NewItems;
use crate::batcher::Marks;
use crate::{EventId, GroupId, ProjectId, Result, StoreError, WriteOutcome};

pub(super) fn start(
    mut conn: Connection,
    mut payloads: PayloadWriter,
    batch_max: usize,
    size_cap: Arc<std::sync::atomic::AtomicU64>,
) -> WriterHandle {
    crate::batcher::spawn(
        batch_max,
        Box::new(move |batch, items, marks| {
            let outcomes = apply(&mut conn, &mut payloads, batch, items, marks)?;
            // The size cap, kept here so that the file outgrows it by at most one batch.
            let cap = size_cap.load(std::sync::atomic::Ordering::Relaxed);
            if cap > 0 {
                match super::cleanup::used_bytes(&conn) {
                    Ok(used) if used > cap => {
                        if let Err(e) = super::cleanup::trim(&conn, cap) {
                            tracing::warn!(error = %e, "could not delete the oldest events to stay under store.max_bytes");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not read how much of the data file is used"),
                }
            }
            Ok(outcomes)
        }),
    )
}

/// One batch in one transaction: load, fold, apply, commit. The fold first assumes that none
/// of the batch's event ids is stored (the usual case: no lookup needed); when an insert finds
/// one that is, the transaction is rolled back and the batch folded again knowing which.
fn apply(
    conn: &mut Connection,
    payloads: &mut PayloadWriter,
    batch: &Batch<'_>,
    items: &NewItems,
    marks: &Marks,
) -> Result<Vec<Vec<WriteOutcome>>> {
    if !marks.claims.is_empty() {
        return Err(StoreError::Invalid("SQLite has no shared queue: each node's spool is on its own disk".into()));
    }
    let mut stored = HashSet::new();
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing = load_groups(&tx, batch)?;
        let plan = fold::fold(batch, existing, &stored, crate::now());
        let ids = write_groups(&tx, &plan)?;
        let already = insert_events(&tx, payloads, &plan, &ids)?;
        if !already.is_empty() {
            // Retries and replays: drop this attempt (rolled back with `tx`) and fold again.
            // Every planned event was tried, so `already` names all that were stored before.
            stored.extend(already);
            continue;
        }
        write_deltas(&tx, &plan, &ids)?;
        super::triage::wake_by_users(&tx, &plan, &ids)?;
        super::feedback::write(&tx, &items.feedback)?;
        super::feedback::write_client_reports(&tx, &items.client_reports)?;
        super::health::write(&tx, &items.sessions, &items.session_counts)?;
        super::logs::write(&tx, &items.logs)?;
        super::monitors::write(&tx, &items.check_ins)?;
        write_marks(&tx, marks)?;
        payloads.after_batch(&tx)?;
        tx.commit()?;
        return Ok(plan.outcomes(&ids));
    }
}

fn write_marks(tx: &Connection, marks: &Marks) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO spool_marks (spool, position, applied_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (spool) DO UPDATE SET position = MAX(position, excluded.position), applied_at = excluded.applied_at",
    )?;
    for m in &marks.spools {
        st.execute(params![m.spool, m.position as i64, crate::now()])?;
    }
    Ok(())
}

/// The groups the batch's hashes name: by their own hash, or by one merged into them
/// (`group_hashes`), each group once with the batch's other hashes of it as aliases.
fn load_groups(tx: &Connection, batch: &Batch<'_>) -> rusqlite::Result<Vec<GroupState>> {
    let mut st = tx.prepare_cached(
        "SELECT id, status, times_seen, first_seen, last_seen, ts_count, ts_sum, ts_min, ts_max,
                last_event_id, title, culprit, level, logger, components, kind, priority, hash, snooze_until, snooze_count,
                resolution
         FROM groups WHERE id = COALESCE(
            (SELECT id FROM groups WHERE project_id = ?1 AND hash = ?2),
            (SELECT group_id FROM group_hashes WHERE project_id = ?1 AND hash = ?2))",
    )?;
    let mut out: Vec<GroupState> = Vec::new();
    for (project, hash) in batch.group_keys() {
        let mut rows = st.query(params![project.0, hash])?;
        if let Some(r) = rows.next()? {
            let id = GroupId(r.get(0)?);
            if let Some(g) = out.iter_mut().find(|g| g.id == Some(id)) {
                if g.hash != hash {
                    g.aliases.push(hash.to_string());
                }
                continue;
            }
            let own: String = r.get(17)?;
            out.push(GroupState {
                id: Some(id),
                project_id: project,
                aliases: if own == hash { Vec::new() } else { vec![hash.to_string()] },
                hash: own,
                status: crate::GroupStatus::of_code(r.get(1)?),
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
                kind: r.get(15)?,
                priority: r.get::<_, Option<f64>>(16)?.unwrap_or(0.0),
                snooze_until: r.get(18)?,
                snooze_count: r.get(19)?,
                reopened: false,
                touched: false,
                woke: None,
                keeps: crate::ReleaseResolution::parse(r.get::<_, Option<String>>(20)?.as_deref()).map(|r| r.keeps).unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// Creates the plan's new groups and writes every group's new state. Returns each group's id.
pub(super) fn write_groups(tx: &Connection, plan: &Plan<'_>) -> rusqlite::Result<Vec<GroupId>> {
    let mut ins = tx.prepare_cached(
        "INSERT INTO groups (project_id, hash, kind, title, culprit, level, logger, status,
                             first_seen, last_seen, times_seen, components)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?8, 0, ?9)",
    )?;
    let mut up = tx.prepare_cached(
        "UPDATE groups SET status = ?2, times_seen = ?3, first_seen = ?4, last_seen = ?5, priority = ?6,
                ts_count = ?7, ts_sum = ?8, ts_min = ?9, ts_max = ?10, last_event_id = ?11,
                title = ?12, culprit = ?13, level = ?14, logger = ?15, components = ?16,
                resolved_at = CASE WHEN ?17 THEN NULL ELSE resolved_at END,
                resolution = CASE WHEN ?17 THEN NULL ELSE resolution END,
                snooze_until = CASE WHEN ?18 THEN NULL ELSE snooze_until END,
                snooze_count = CASE WHEN ?18 THEN NULL ELSE snooze_count END,
                snooze_users = CASE WHEN ?18 THEN NULL ELSE snooze_users END
         WHERE id = ?1",
    )?;
    let mut ids = Vec::with_capacity(plan.groups.len());
    for g in &plan.groups {
        let id = match g.id {
            Some(id) if !g.touched => {
                ids.push(id);
                continue;
            }
            Some(id) => id,
            None => {
                ins.execute(params![
                    g.project_id.0, g.hash, g.kind, g.title, g.culprit, g.level, g.logger, g.first_seen, g.components
                ])?;
                GroupId(tx.last_insert_rowid())
            }
        };
        up.execute(params![
            id.0,
            g.status.code(),
            g.times_seen,
            g.first_seen,
            g.last_seen,
            g.priority,
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
            g.woke.is_some(),
        ])?;
        ids.push(id);
    }
    Ok(ids)
}

/// Inserts the plan's events, each with its tags, compressed with its payload. Returns the ids
/// that were already stored (and so not inserted).
fn insert_events(
    tx: &Connection,
    payloads: &mut PayloadWriter,
    plan: &Plan<'_>,
    ids: &[GroupId],
) -> rusqlite::Result<Vec<(ProjectId, EventId)>> {
    let mut already = Vec::new();
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (project_id, event_id, group_id, kind, timestamp, received, level, title,
                             time_spent, dict, payload, tags_len, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    let mut blob = Vec::new();
    for pe in &plan.events {
        let ev = pe.event;
        blob.clear();
        tags_json(&ev.tags, &mut blob);
        let tags_len = blob.len() as i64;
        blob.extend_from_slice(&ev.payload);
        let (dict, payload) = payloads.compress(&blob);
        st.execute(params![
            ev.project_id.0,
            &ev.event_id.0[..],
            ids[pe.group].0,
            ev.kind,
            pe.timestamp,
            ev.received,
            ev.level.as_str(),
            ev.title,
            ev.time_spent,
            dict,
            payload,
            tags_len,
            ev.hash,
        ])?;
        if tx.changes() == 0 {
            already.push((ev.project_id, ev.event_id));
        }
    }
    Ok(already)
}

pub(super) fn write_deltas(tx: &Connection, plan: &Plan<'_>, ids: &[GroupId]) -> rusqlite::Result<()> {
    let d = &plan.deltas;
    let mut st = tx.prepare_cached(
        "INSERT INTO group_tags (group_id, key, value, count, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (group_id, key, value) DO UPDATE SET count = count + excluded.count,
            first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)",
    )?;
    for ((g, k, v), (n, first, last)) in &d.group_tags {
        st.execute(params![ids[*g].0, k, v, n, first, last])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO group_durations (group_id, bucket, count) VALUES (?1, ?2, ?3)
         ON CONFLICT (group_id, bucket) DO UPDATE SET count = count + excluded.count",
    )?;
    for ((g, b), n) in &d.durations {
        st.execute(params![ids[*g].0, b, n])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO project_tags (project_id, key, value, count, last_seen) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (project_id, key, value) DO UPDATE SET count = count + excluded.count,
            last_seen = max(last_seen, excluded.last_seen)",
    )?;
    for ((p, k, v), (n, last)) in &d.project_tags {
        st.execute(params![p.0, k, v, n, last])?;
    }
    for (table, key, deltas) in [
        ("group_buckets", "group_id, minute", &d.group_minutes),
        ("group_hours", "group_id, hour", &d.group_hours),
        ("group_days", "group_id, day", &d.group_days),
    ] {
        let mut st = tx.prepare_cached(&format!(
            "INSERT INTO {table} ({key}, count) VALUES (?1, ?2, ?3)
             ON CONFLICT ({key}) DO UPDATE SET count = count + excluded.count"
        ))?;
        for ((g, slot), n) in deltas {
            st.execute(params![ids[*g].0, slot, n])?;
        }
    }
    for (table, key, deltas) in
        [("project_minutes", "project_id, minute", &d.project_minutes), ("project_hours", "project_id, hour", &d.project_hours)]
    {
        let mut st = tx.prepare_cached(&format!(
            "INSERT INTO {table} ({key}, count) VALUES (?1, ?2, ?3)
             ON CONFLICT ({key}) DO UPDATE SET count = count + excluded.count"
        ))?;
        for ((p, slot), n) in deltas {
            st.execute(params![p.0, slot, n])?;
        }
    }
    let mut st = tx.prepare_cached("INSERT INTO group_activity (group_id, kind, at, data) VALUES (?1, ?2, ?3, ?4)")?;
    for (i, (g, kind, at)) in plan.activity.iter().enumerate() {
        st.execute(params![ids[*g].0, kind, at, plan.activity_data(i)])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO item_counts (project_id, item_type, day, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project_id, item_type, day) DO UPDATE SET count = count + excluded.count",
    )?;
    for ((p, ty, day), n) in &d.item_counts {
        st.execute(params![p.0, ty, day, n])?;
    }
    Ok(())
}
