//! The PostgreSQL writer: for each batch the writer thread (`crate::batcher`) takes, in one
//! transaction: lock and load the groups it touches (`FOR UPDATE`, in id order, so writers
//! of several nodes wait for each other instead of overwriting), fold (`crate::fold`), create
//! the new groups, claim the event ids (`event_ids`: one already there means a duplicate, and
//! the batch is folded again knowing it), insert the events, upsert the summed deltas, record
//! the spool marks, commit. Every statement takes whole arrays (`unnest`), so a batch costs a
//! dozen round trips whatever its size. Keys are sorted before upserts, so that two writers
//! lock rows in the same order.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::{Pool, Transaction};

use crate::batcher::WriterHandle;
use crate::fold::{self, Batch, GroupState, Plan};
use crate::NewItems;
use crate::batcher::Marks;
use crate::{EventId, GroupId, ProjectId, Result, StoreError, WriteOutcome};

/// zstd level of payloads.
pub(super) const LEVEL: i32 = 3;

pub(super) fn start(rt: tokio::runtime::Handle, pool: Pool, batch_max: usize) -> WriterHandle {
    let mut partitions = HashSet::new();
    let mut zstd = zstd::bulk::Compressor::new(LEVEL).ok();
    crate::batcher::spawn(
        batch_max,
        Box::new(move |batch, items, marks| {
            let _in = rt.enter();
            futures_executor::block_on(async {
                let mut client =
                    pool.get().await.map_err(|e| StoreError::Unavailable(format!("cannot reach PostgreSQL: {}", super::causes(&e))))?;
                ensure_partitions(&client, &mut partitions, batch).await?;
                match apply(&mut client, zstd.as_mut(), batch, items, marks).await {
                    // A day's partition that retention dropped since it was made (an event of
                    // long ago, replayed): make it again, once.
                    Err(StoreError::Backend(e)) if e.starts_with(NO_PARTITION) => {
                        partitions.clear();
                        ensure_partitions(&client, &mut partitions, batch).await?;
                        apply(&mut client, zstd.as_mut(), batch, items, marks).await
                    }
                    done => done,
                }
            })
        }),
    )
}

/// The SQL state of "no partition of relation … found for row".
const NO_PARTITION: &str = "23514";

/// The partition of events received on unix day `day`.
pub(super) fn partition_name(day: i64) -> String {
    format!("events_d{day}")
}

/// Creates the partitions the batch's events go to, each in its own statement before the
/// batch's transaction (creating a partition locks the whole table while it commits).
async fn ensure_partitions(client: &tokio_postgres::Client, known: &mut HashSet<i64>, batch: &Batch<'_>) -> Result<()> {
    let days: HashSet<i64> = batch.jobs.iter().flat_map(|(events, _)| events.iter()).map(|e| day_of(e.received)).collect();
    ensure_days(client, known, days).await
}

/// Creates the partitions of `days` that are not `known` yet (and remembers them).
pub(super) async fn ensure_days(client: &tokio_postgres::Client, known: &mut HashSet<i64>, days: HashSet<i64>) -> Result<()> {
    for day in days {
        if known.contains(&day) {
            continue;
        }
        let name = partition_name(day);
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {name} PARTITION OF events FOR VALUES FROM ({}) TO ({})",
            day * 86400,
            (day + 1) * 86400
        );
        if let Err(e) = client.batch_execute(&sql).await {
            // Another node may have created it at the same moment.
            let exists: bool = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name]).await?.get(0);
            if !exists {
                return Err(e.into());
            }
        }
        known.insert(day);
    }
    Ok(())
}

pub(super) fn day_of(t: f64) -> i64 {
    (t / 86400.0).floor() as i64
}

async fn apply(
    client: &mut deadpool_postgres::Object,
    mut zstd: Option<&mut zstd::bulk::Compressor<'static>>,
    batch: &Batch<'_>,
    items: &NewItems,
    marks: &Marks,
) -> Result<Vec<Vec<WriteOutcome>>> {
    let mut stored = HashSet::new();
    // Each turn either commits or learns something that makes the next one differ (an event id
    // already stored, a group another writer created meanwhile); bounded all the same.
    for _ in 0..8 {
        let tx = client.transaction().await?;
        // Merges take this lock alone: a batch never loads a group a merge is deleting.
        tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&super::triage::MERGE_LOCK]).await?;
        let existing = load_groups(&tx, batch).await?;
        let plan = fold::fold(batch, existing, &stored, crate::now());
        let Some(ids) = write_groups(&tx, &plan).await? else {
            continue; // rolled back with `tx`: load them again
        };
        let already = claim_event_ids(&tx, &plan).await?;
        if !already.is_empty() {
            stored.extend(already);
            continue;
        }
        insert_events(&tx, zstd.as_deref_mut(), &plan, &ids).await?;
        write_deltas(&tx, &plan, &ids).await?;
        super::triage::wake_by_users(&tx, &plan, &ids).await?;
        super::feedback::write(&tx, &items.feedback).await?;
        super::feedback::write_client_reports(&tx, &items.client_reports).await?;
        super::health::write(&tx, &items.sessions, &items.session_counts).await?;
        super::logs::write(&tx, &items.logs).await?;
        super::monitors::write(&tx, &items.check_ins).await?;
        super::queue::delete_claimed(&tx, &marks.claims).await?;
        for m in &marks.spools {
            tx.execute(
                "INSERT INTO spool_marks AS m (spool, position, applied_at) VALUES ($1, $2, $3)
                 ON CONFLICT (spool) DO UPDATE SET position = GREATEST(m.position, excluded.position), applied_at = excluded.applied_at",
                &[&m.spool, &(m.position as i64), &crate::now()],
            )
            .await?;
        }
        tx.commit().await?;
        return Ok(plan.outcomes(&ids));
    }
    Err(StoreError::Unavailable("other writers kept changing the same groups; trying again later".into()))
}

/// The groups the batch's hashes name: by their own hash, or by one merged into them
/// (`group_hashes`), each group once with the batch's other hashes of it as aliases.
async fn load_groups(tx: &Transaction<'_>, batch: &Batch<'_>) -> Result<Vec<GroupState>> {
    let keys = batch.group_keys();
    let projects: Vec<i64> = keys.iter().map(|(p, _)| p.0).collect();
    let hashes: Vec<&str> = keys.iter().map(|(_, h)| *h).collect();
    let st = tx
        .prepare_cached(
            "SELECT g.id, g.project_id, g.hash, g.status, g.times_seen, g.first_seen, g.last_seen, g.ts_count, g.ts_sum,
                    g.ts_min, g.ts_max, g.last_event_id, g.title, g.culprit, g.level, g.logger, g.components, g.kind, g.priority,
                    g.snooze_until, g.snooze_count, k.hash, g.resolution
             FROM unnest($1::bigint[], $2::text[]) AS k(project_id, hash)
             JOIN groups g ON g.id = COALESCE(
                (SELECT o.id FROM groups o WHERE o.project_id = k.project_id AND o.hash = k.hash),
                (SELECT m.group_id FROM group_hashes m WHERE m.project_id = k.project_id AND m.hash = k.hash))
             ORDER BY g.id FOR UPDATE OF g",
        )
        .await?;
    let rows = tx.query(&st, &[&projects, &hashes]).await?;
    let mut out: Vec<GroupState> = Vec::new();
    for r in &rows {
        let id = GroupId(r.get(0));
        let asked: String = r.get(21);
        if let Some(g) = out.iter_mut().find(|g| g.id == Some(id)) {
            if g.hash != asked {
                g.aliases.push(asked);
            }
            continue;
        }
        let own: String = r.get(2);
        out.push(GroupState {
            id: Some(id),
            project_id: ProjectId(r.get(1)),
            aliases: if own == asked { Vec::new() } else { vec![asked] },
            hash: own,
            status: crate::GroupStatus::of_code(r.get(3)),
            times_seen: r.get(4),
            first_seen: r.get(5),
            last_seen: r.get(6),
            ts_count: r.get(7),
            ts_sum: r.get(8),
            ts_min: r.get(9),
            ts_max: r.get(10),
            last_event_id: r.get(11),
            title: r.get(12),
            culprit: r.get(13),
            level: r.get(14),
            logger: r.get(15),
            components: r.get(16),
            kind: r.get(17),
            priority: r.get(18),
            snooze_until: r.get(19),
            snooze_count: r.get(20),
            reopened: false,
            touched: false,
            woke: None,
            keeps: crate::ReleaseResolution::parse(r.get::<_, Option<String>>(22).as_deref()).map(|r| r.keeps).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Creates the plan's new groups and writes every touched group's new state. Returns each
/// group's id, or `None` when another writer created one of the new groups meanwhile.
pub(super) async fn write_groups(tx: &Transaction<'_>, plan: &Plan<'_>) -> Result<Option<Vec<GroupId>>> {
    let new: Vec<&GroupState> = plan.groups.iter().filter(|g| g.id.is_none()).collect();
    let mut made: HashMap<(i64, String), i64> = HashMap::new();
    if !new.is_empty() {
        let st = tx
            .prepare_cached(
                "INSERT INTO groups (project_id, hash, kind, title, culprit, level, logger, status, first_seen, last_seen, times_seen, components)
                 SELECT u.p, u.h, u.k, u.t, u.c, u.l, u.lg, 0, u.f, u.f, 0, u.comp
                 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::float8[], $9::text[])
                      AS u(p, h, k, t, c, l, lg, f, comp)
                 ON CONFLICT (project_id, hash) DO NOTHING
                 RETURNING id, project_id, hash",
            )
            .await?;
        let col = |f: fn(&GroupState) -> &str| new.iter().map(|g| f(g)).collect::<Vec<&str>>();
        let rows = tx
            .query(
                &st,
                &[
                    &new.iter().map(|g| g.project_id.0).collect::<Vec<i64>>(),
                    &col(|g| &g.hash),
                    &col(|g| &g.kind),
                    &col(|g| &g.title),
                    &col(|g| &g.culprit),
                    &col(|g| &g.level),
                    &new.iter().map(|g| g.logger.as_deref()).collect::<Vec<Option<&str>>>(),
                    &new.iter().map(|g| g.first_seen).collect::<Vec<f64>>(),
                    &col(|g| &g.components),
                ],
            )
            .await?;
        if rows.len() < new.len() {
            return Ok(None);
        }
        made = rows.iter().map(|r| ((r.get(1), r.get(2)), r.get(0))).collect();
    }
    let ids: Vec<GroupId> = plan
        .groups
        .iter()
        .map(|g| g.id.unwrap_or_else(|| GroupId(made.get(&(g.project_id.0, g.hash.clone())).copied().unwrap_or_default())))
        .collect();
    let touched: Vec<(GroupId, &GroupState)> = ids.iter().copied().zip(&plan.groups).filter(|(_, g)| g.touched).collect();
    if !touched.is_empty() {
        let st = tx
            .prepare_cached(
                "UPDATE groups g SET status = u.status, times_seen = u.times_seen, first_seen = u.first_seen,
                        last_seen = u.last_seen, priority = u.priority, ts_count = u.ts_count, ts_sum = u.ts_sum,
                        ts_min = u.ts_min, ts_max = u.ts_max, last_event_id = u.last_event_id, title = u.title,
                        culprit = u.culprit, level = u.level, logger = u.logger, components = u.components,
                        resolved_at = CASE WHEN u.reopened THEN NULL ELSE g.resolved_at END,
                        resolution = CASE WHEN u.reopened THEN NULL ELSE g.resolution END,
                        snooze_until = CASE WHEN u.woke THEN NULL ELSE g.snooze_until END,
                        snooze_count = CASE WHEN u.woke THEN NULL ELSE g.snooze_count END,
                        snooze_users = CASE WHEN u.woke THEN NULL ELSE g.snooze_users END
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::float8[], $5::float8[], $6::float8[], $7::bigint[],
                             $8::float8[], $9::float8[], $10::float8[], $11::text[], $12::text[], $13::text[], $14::text[],
                             $15::text[], $16::text[], $17::bool[], $18::bool[])
                      AS u(id, status, times_seen, first_seen, last_seen, priority, ts_count, ts_sum, ts_min, ts_max,
                           last_event_id, title, culprit, level, logger, components, reopened, woke)
                 WHERE g.id = u.id",
            )
            .await?;
        let col = |f: fn(&GroupState) -> &str| touched.iter().map(|(_, g)| f(g)).collect::<Vec<&str>>();
        let num = |f: fn(&GroupState) -> f64| touched.iter().map(|(_, g)| f(g)).collect::<Vec<f64>>();
        tx.execute(
            &st,
            &[
                &touched.iter().map(|(id, _)| id.0).collect::<Vec<i64>>(),
                &touched.iter().map(|(_, g)| g.status.code()).collect::<Vec<i64>>(),
                &touched.iter().map(|(_, g)| g.times_seen).collect::<Vec<i64>>(),
                &num(|g| g.first_seen),
                &num(|g| g.last_seen),
                &num(|g| g.priority),
                &touched.iter().map(|(_, g)| g.ts_count).collect::<Vec<i64>>(),
                &num(|g| g.ts_sum),
                &touched.iter().map(|(_, g)| g.ts_min).collect::<Vec<Option<f64>>>(),
                &touched.iter().map(|(_, g)| g.ts_max).collect::<Vec<Option<f64>>>(),
                &col(|g| &g.last_event_id),
                &col(|g| &g.title),
                &col(|g| &g.culprit),
                &col(|g| &g.level),
                &touched.iter().map(|(_, g)| g.logger.as_deref()).collect::<Vec<Option<&str>>>(),
                &col(|g| &g.components),
                &touched.iter().map(|(_, g)| g.reopened).collect::<Vec<bool>>(),
                &touched.iter().map(|(_, g)| g.woke.is_some()).collect::<Vec<bool>>(),
            ],
        )
        .await?;
    }
    Ok(Some(ids))
}

/// Records the plan's event ids; returns those that were stored already (and so not claimed).
async fn claim_event_ids(tx: &Transaction<'_>, plan: &Plan<'_>) -> Result<Vec<(ProjectId, EventId)>> {
    if plan.events.is_empty() {
        return Ok(Vec::new());
    }
    let st = tx
        .prepare_cached(
            "INSERT INTO event_ids (project_id, event_id, received)
             SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::float8[])
             ON CONFLICT DO NOTHING RETURNING project_id, event_id",
        )
        .await?;
    let projects: Vec<i64> = plan.events.iter().map(|e| e.event.project_id.0).collect();
    let ids: Vec<&[u8]> = plan.events.iter().map(|e| &e.event.event_id.0[..]).collect();
    let received: Vec<f64> = plan.events.iter().map(|e| e.event.received).collect();
    let rows = tx.query(&st, &[&projects, &ids, &received]).await?;
    if rows.len() == plan.events.len() {
        return Ok(Vec::new());
    }
    let claimed: HashSet<(i64, Vec<u8>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(plan
        .events
        .iter()
        .map(|e| (e.event.project_id, e.event.event_id))
        .filter(|(p, id)| !claimed.contains(&(p.0, id.0.to_vec())))
        .collect())
}

async fn insert_events(
    tx: &Transaction<'_>,
    mut zstd: Option<&mut zstd::bulk::Compressor<'static>>,
    plan: &Plan<'_>,
    ids: &[GroupId],
) -> Result<()> {
    if plan.events.is_empty() {
        return Ok(());
    }
    let mut blobs = Vec::with_capacity(plan.events.len());
    let mut tags_lens = Vec::with_capacity(plan.events.len());
    let mut blob = Vec::new();
    for pe in &plan.events {
        blob.clear();
        crate::tags_json(&pe.event.tags, &mut blob);
        tags_lens.push(blob.len() as i64);
        blob.extend_from_slice(&pe.event.payload);
        let packed = match zstd.as_deref_mut() {
            Some(z) => z.compress(&blob).ok(),
            None => None,
        };
        blobs.push(packed.unwrap_or_else(|| zstd::bulk::compress(&blob, LEVEL).unwrap_or_else(|_| blob.clone())));
    }
    let st = tx
        .prepare_cached(
            "INSERT INTO events (project_id, event_id, group_id, kind, timestamp, received, level, title, time_spent, payload, tags_len, hash)
             SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::text[], $5::float8[], $6::float8[], $7::text[],
                                  $8::text[], $9::float8[], $10::bytea[], $11::bigint[], $12::text[])",
        )
        .await?;
    let ev = |f: fn(&crate::NewEvent) -> &str| plan.events.iter().map(|e| f(e.event)).collect::<Vec<&str>>();
    tx.execute(
        &st,
        &[
            &plan.events.iter().map(|e| e.event.project_id.0).collect::<Vec<i64>>(),
            &plan.events.iter().map(|e| &e.event.event_id.0[..]).collect::<Vec<&[u8]>>(),
            &plan.events.iter().map(|e| ids[e.group].0).collect::<Vec<i64>>(),
            &ev(|e| &e.kind),
            &plan.events.iter().map(|e| e.timestamp).collect::<Vec<f64>>(),
            &plan.events.iter().map(|e| e.event.received).collect::<Vec<f64>>(),
            &ev(|e| e.level.as_str()),
            &ev(|e| &e.title),
            &plan.events.iter().map(|e| e.event.time_spent).collect::<Vec<Option<f64>>>(),
            &blobs,
            &tags_lens,
            &ev(|e| &e.hash),
        ],
    )
    .await?;
    Ok(())
}

/// Upserts `(key, slot, count)` rows into a counter table, adding to what is there.
async fn add_counts(tx: &Transaction<'_>, table: &str, key: &str, slot: &str, mut rows: Vec<(i64, i64, i64)>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort_unstable();
    let st = tx
        .prepare_cached(&format!(
            "INSERT INTO {table} AS t ({key}, {slot}, count) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
             ON CONFLICT ({key}, {slot}) DO UPDATE SET count = t.count + excluded.count"
        ))
        .await?;
    let (a, b, c): (Vec<i64>, Vec<i64>, Vec<i64>) =
        rows.into_iter().fold((Vec::new(), Vec::new(), Vec::new()), |(mut a, mut b, mut c), (x, y, z)| {
            a.push(x);
            b.push(y);
            c.push(z);
            (a, b, c)
        });
    tx.execute(&st, &[&a, &b, &c]).await?;
    Ok(())
}

pub(super) async fn write_deltas(tx: &Transaction<'_>, plan: &Plan<'_>, ids: &[GroupId]) -> Result<()> {
    let d = &plan.deltas;
    let by_group = |m: &HashMap<(usize, i64), i64>| m.iter().map(|((g, s), n)| (ids[*g].0, *s, *n)).collect::<Vec<_>>();
    let by_project = |m: &HashMap<(ProjectId, i64), i64>| m.iter().map(|((p, s), n)| (p.0, *s, *n)).collect::<Vec<_>>();
    add_counts(tx, "group_buckets", "group_id", "minute", by_group(&d.group_minutes)).await?;
    add_counts(tx, "group_hours", "group_id", "hour", by_group(&d.group_hours)).await?;
    add_counts(tx, "group_days", "group_id", "day", by_group(&d.group_days)).await?;
    add_counts(tx, "group_durations", "group_id", "bucket", by_group(&d.durations)).await?;
    add_counts(tx, "project_minutes", "project_id", "minute", by_project(&d.project_minutes)).await?;
    add_counts(tx, "project_hours", "project_id", "hour", by_project(&d.project_hours)).await?;

    if !d.group_tags.is_empty() {
        let mut rows: Vec<_> = d.group_tags.iter().map(|((g, k, v), (n, first, last))| (ids[*g].0, *k, *v, *n, *first, *last)).collect();
        rows.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        let st = tx
            .prepare_cached(
                "INSERT INTO group_tags AS t (group_id, key, value, count, first_seen, last_seen)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::float8[], $6::float8[])
                 ON CONFLICT (group_id, key, value) DO UPDATE SET count = t.count + excluded.count,
                    first_seen = LEAST(t.first_seen, excluded.first_seen), last_seen = GREATEST(t.last_seen, excluded.last_seen)",
            )
            .await?;
        tx.execute(
            &st,
            &[
                &rows.iter().map(|r| r.0).collect::<Vec<i64>>(),
                &rows.iter().map(|r| r.1).collect::<Vec<&str>>(),
                &rows.iter().map(|r| r.2).collect::<Vec<&str>>(),
                &rows.iter().map(|r| r.3).collect::<Vec<i64>>(),
                &rows.iter().map(|r| r.4).collect::<Vec<f64>>(),
                &rows.iter().map(|r| r.5).collect::<Vec<f64>>(),
            ],
        )
        .await?;
    }
    if !d.project_tags.is_empty() {
        let mut rows: Vec<_> = d.project_tags.iter().map(|((p, k, v), (n, last))| (p.0, *k, *v, *n, *last)).collect();
        rows.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        let st = tx
            .prepare_cached(
                "INSERT INTO project_tags AS t (project_id, key, value, count, last_seen)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::float8[])
                 ON CONFLICT (project_id, key, value) DO UPDATE SET count = t.count + excluded.count,
                    last_seen = GREATEST(t.last_seen, excluded.last_seen)",
            )
            .await?;
        tx.execute(
            &st,
            &[
                &rows.iter().map(|r| r.0).collect::<Vec<i64>>(),
                &rows.iter().map(|r| r.1).collect::<Vec<&str>>(),
                &rows.iter().map(|r| r.2).collect::<Vec<&str>>(),
                &rows.iter().map(|r| r.3).collect::<Vec<i64>>(),
                &rows.iter().map(|r| r.4).collect::<Vec<f64>>(),
            ],
        )
        .await?;
    }
    if !plan.activity.is_empty() {
        let st = tx
            .prepare_cached(
                "INSERT INTO group_activity (group_id, kind, at, data)
                 SELECT g, k, a, d FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::text[]) WITH ORDINALITY AS u(g, k, a, d, n)
                 ORDER BY n",
            )
            .await?;
        tx.execute(
            &st,
            &[
                &plan.activity.iter().map(|(g, _, _)| ids[*g].0).collect::<Vec<i64>>(),
                &plan.activity.iter().map(|(_, k, _)| *k).collect::<Vec<&str>>(),
                &plan.activity.iter().map(|(_, _, at)| *at).collect::<Vec<f64>>(),
                &(0..plan.activity.len()).map(|i| plan.activity_data(i)).collect::<Vec<Option<String>>>(),
            ],
        )
        .await?;
    }
    if !d.item_counts.is_empty() {
        let mut rows: Vec<_> = d.item_counts.iter().map(|((p, ty, day), n)| (p.0, *ty, *day, *n)).collect();
        rows.sort_unstable();
        let st = tx
            .prepare_cached(
                "INSERT INTO item_counts AS t (project_id, item_type, day, count)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])
                 ON CONFLICT (project_id, item_type, day) DO UPDATE SET count = t.count + excluded.count",
            )
            .await?;
        tx.execute(
            &st,
            &[
                &rows.iter().map(|r| r.0).collect::<Vec<i64>>(),
                &rows.iter().map(|r| r.1).collect::<Vec<&str>>(),
                &rows.iter().map(|r| r.2).collect::<Vec<i64>>(),
                &rows.iter().map(|r| r.3).collect::<Vec<i64>>(),
            ],
        )
        .await?;
    }
    Ok(())
}
