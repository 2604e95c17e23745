//! Working issues on PostgreSQL: status changes by whom (with snoozes), comments, snoozes that
//! run out, merging groups and splitting a hash off again, deleting groups. A merge or split
//! takes [`MERGE_LOCK`] alone (every writer batch takes it shared): a batch never loads a group
//! that a merge is deleting.

use deadpool_postgres::{GenericClient, Transaction};

use super::read::{event_from, EVENT_COLUMNS};
use super::PgStore;
use crate::fold::{self, GroupState, Plan};
use crate::{
    now, Activity, GroupHash, GroupId, GroupStatus, NewEvent, ProjectId, Result, Snooze, StoreError, UserId,
    ACTIVITY_MERGE, ACTIVITY_NOTE, ACTIVITY_UNIGNORED, ACTIVITY_UNMERGE, BULK_CHUNK,
};

/// The advisory lock between merges and the writers.
pub(super) const MERGE_LOCK: i64 = 0x5e47_0002;

use crate::triage::{InRelease, ReleaseResolution, COUNTERS, RECOUNT_CHUNK};

async fn insert_activity(
    tx: &impl GenericClient,
    group: GroupId,
    kind: &str,
    at: f64,
    actor: Option<UserId>,
    data: Option<String>,
) -> Result<i64> {
    Ok(tx
        .query_one(
            "INSERT INTO group_activity (group_id, kind, at, actor, data) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&group.0, &kind, &at, &actor.map(|a| a.0), &data],
        )
        .await?
        .get(0))
}

async fn users_of(tx: &impl GenericClient, group: GroupId) -> Result<i64> {
    Ok(tx.query_one("SELECT COUNT(*) FROM group_tags WHERE group_id = $1 AND key = 'user'", &[&group.0]).await?.get(0))
}

/// After the writer's deltas: ignored groups the batch touched whose snooze waits for a number
/// of users come back once they have that many.
pub(super) async fn wake_by_users(tx: &Transaction<'_>, plan: &Plan<'_>, ids: &[GroupId]) -> Result<()> {
    let t = now();
    for (g, id) in plan.groups.iter().zip(ids) {
        if !g.touched || g.status != GroupStatus::Ignored {
            continue;
        }
        let wanted: Option<i64> = tx.query_one("SELECT snooze_users FROM groups WHERE id = $1", &[&id.0]).await?.get(0);
        let Some(wanted) = wanted else { continue };
        if users_of(tx, *id).await? >= wanted {
            tx.execute(
                "UPDATE groups SET status = 0, snooze_until = NULL, snooze_count = NULL, snooze_users = NULL WHERE id = $1",
                &[&id.0],
            )
            .await?;
            insert_activity(tx, *id, ACTIVITY_UNIGNORED, t, None, Some(fold::wake_data(fold::WAKE_USERS))).await?;
        }
    }
    Ok(())
}

async fn project_of(tx: &impl GenericClient, group: GroupId) -> Result<(ProjectId, String)> {
    let row = tx
        .query_opt("SELECT project_id, hash FROM groups WHERE id = $1", &[&group.0])
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("group {group}")))?;
    Ok((ProjectId(row.get(0)), row.get(1)))
}

/// Counts a group's stored events again: its counters and counter rows, from its events.
async fn recount(tx: &Transaction<'_>, id: GroupId) -> Result<()> {
    let r = tx
        .query_one(
            "SELECT status, times_seen, first_seen, last_seen, ts_count, ts_sum, ts_min, ts_max, last_event_id, title,
                    culprit, level, logger, components, kind, priority, hash, project_id
             FROM groups WHERE id = $1",
            &[&id.0],
        )
        .await?;
    let mut g = GroupState {
        id: Some(id),
        status: GroupStatus::of_code(r.get(0)),
        times_seen: r.get(1),
        first_seen: r.get(2),
        last_seen: r.get(3),
        ts_count: r.get(4),
        ts_sum: r.get(5),
        ts_min: r.get(6),
        ts_max: r.get(7),
        last_event_id: r.get(8),
        title: r.get(9),
        culprit: r.get(10),
        level: r.get(11),
        logger: r.get(12),
        components: r.get(13),
        kind: r.get(14),
        priority: r.get(15),
        hash: r.get(16),
        project_id: ProjectId(r.get(17)),
        aliases: Vec::new(),
        snooze_until: None,
        snooze_count: None,
        woke: None,
        keeps: Vec::new(),
        reopened: false,
        touched: true,
    };
    let (first, last) = (g.first_seen, g.last_seen);
    g.reset_counters();
    for (table, _) in COUNTERS.iter().chain(&[("group_tags", "")]) {
        tx.execute(&format!("DELETE FROM {table} WHERE group_id = $1"), &[&id.0]).await?;
    }
    let mut after = 0i64;
    loop {
        let rows = tx
            .query(
                &format!("SELECT {EVENT_COLUMNS} FROM events WHERE group_id = $1 AND id > $2 ORDER BY id LIMIT $3"),
                &[&id.0, &after, &RECOUNT_CHUNK],
            )
            .await?;
        let n = rows.len() as i64;
        let events: Vec<NewEvent> = rows
            .iter()
            .map(|r| {
                let e = event_from(r);
                after = e.position;
                fold::stored_event(&g, e)
            })
            .collect();
        let deltas = fold::recount(&mut g, &events);
        let plan = Plan { groups: vec![g.clone()], deltas, ..Plan::default() };
        super::writer::write_deltas(tx, &plan, &[id]).await?;
        if n < RECOUNT_CHUNK {
            break;
        }
    }
    if g.times_seen == 0 {
        (g.first_seen, g.last_seen) = (first, last);
    }
    super::writer::write_groups(tx, &Plan { groups: vec![g], ..Plan::default() }).await?;
    Ok(())
}

impl crate::Triage for PgStore {
    fn change_status(&self, groups: &[GroupId], status: GroupStatus, snooze: &Snooze, actor: Option<UserId>) -> Result<usize> {
        crate::triage::check_bulk(groups)?;
        let snooze = if status == GroupStatus::Ignored { snooze.clone() } else { Snooze::default() };
        self.with(async |c| {
            let tx = c.transaction().await?;
            let t = now();
            let mut changed = 0;
            for &g in groups {
                let row = tx
                    .query_opt("SELECT status, times_seen FROM groups WHERE id = $1 FOR UPDATE", &[&g.0])
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("group {g}")))?;
                let (was, times_seen): (i64, i64) = (row.get(0), row.get(1));
                if GroupStatus::of_code(was) == status && snooze.is_forever() {
                    continue;
                }
                let users = match snooze.users {
                    Some(n) => Some(users_of(&tx, g).await? + n as i64),
                    None => None,
                };
                tx.execute(
                    "UPDATE groups SET status = $2::bigint, resolved_at = CASE WHEN $2::bigint = 1 THEN $3::float8 ELSE NULL END,
                            snooze_until = $4, snooze_count = $5, snooze_users = $6, resolution = NULL
                     WHERE id = $1",
                    &[&g.0, &status.code(), &t, &snooze.until, &snooze.count.map(|n| times_seen + n as i64), &users],
                )
                .await?;
                insert_activity(&tx, g, crate::triage::status_activity(status), t, actor, snooze.data()).await?;
                changed += 1;
            }
            tx.commit().await?;
            Ok(changed)
        })
    }

    fn resolve_in_release(&self, groups: &[GroupId], target: &InRelease, actor: Option<UserId>) -> Result<usize> {
        crate::triage::check_bulk(groups)?;
        crate::triage::check_in_release(target)?;
        self.with(async |c| {
            let tx = c.transaction().await?;
            let t = now();
            let mut seen: std::collections::HashMap<ProjectId, Vec<(String, f64)>> = std::collections::HashMap::new();
            for &g in groups {
                let (project, _) = project_of(&tx, g).await?;
                if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry(project) {
                    let rows = tx
                        .query(
                            "SELECT t.value, MIN(t.first_seen) FROM group_tags t JOIN groups g ON g.id = t.group_id
                 WHERE g.project_id = $1 AND t.key = 'release' GROUP BY t.value
                 UNION ALL
                 SELECT r.version, r.created_at FROM releases r JOIN release_projects rp ON rp.release_id = r.id
                 WHERE rp.project_id = $1",
                            &[&project.0],
                        )
                        .await?;
                    slot.insert(rows.iter().map(|r| (r.get(0), r.get(1))).collect());
                }
                let resolution = ReleaseResolution::of(&seen[&project], target);
                tx.execute(
                    "UPDATE groups SET status = 1, resolved_at = $2, snooze_until = NULL, snooze_count = NULL, snooze_users = NULL,
                            resolution = $3
                     WHERE id = $1",
                    &[&g.0, &t, &resolution.to_json()],
                )
                .await?;
                insert_activity(&tx, g, crate::ACTIVITY_RESOLVED, t, actor, Some(resolution.activity_data())).await?;
            }
            tx.commit().await?;
            Ok(groups.len())
        })
    }

    fn resolution(&self, group: GroupId) -> Result<Option<ReleaseResolution>> {
        self.with(async |c| {
            let row = c.query_opt("SELECT resolution FROM groups WHERE id = $1 AND status = 1", &[&group.0]).await?;
            Ok(ReleaseResolution::parse(row.and_then(|r| r.get::<_, Option<String>>(0)).as_deref()))
        })
    }

    fn add_note(&self, group: GroupId, actor: UserId, text: &str, mentions: &[UserId]) -> Result<Activity> {
        let data = crate::triage::note_data(text, mentions)?;
        self.with(async |c| {
            project_of(&*c, group).await?;
            let at = now();
            let id = insert_activity(&*c, group, ACTIVITY_NOTE, at, Some(actor), Some(data.clone())).await?;
            Ok(Activity { id, group_id: group, kind: ACTIVITY_NOTE.into(), at, actor: Some(actor), data: Some(data) })
        })
    }

    fn wake_snoozed(&self, at: f64) -> Result<Vec<GroupId>> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            let ids: Vec<i64> = tx
                .query(
                    "UPDATE groups SET status = 0, snooze_until = NULL, snooze_count = NULL, snooze_users = NULL
                     WHERE id IN (SELECT id FROM groups WHERE snooze_until <= $1 AND status = 2 LIMIT $2 FOR UPDATE SKIP LOCKED)
                     RETURNING id",
                    &[&at, &(BULK_CHUNK as i64)],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for id in &ids {
                insert_activity(&tx, GroupId(*id), ACTIVITY_UNIGNORED, at, None, Some(fold::wake_data(fold::WAKE_UNTIL))).await?;
            }
            tx.commit().await?;
            Ok(ids.into_iter().map(GroupId).collect())
        })
    }

    fn merge_groups(&self, into: GroupId, from: &[GroupId], actor: Option<UserId>) -> Result<()> {
        crate::triage::check_bulk(from)?;
        self.with(async |c| {
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MERGE_LOCK]).await?;
            let (project, _) = project_of(&tx, into).await?;
            let mut merged: Vec<serde_json::Value> = Vec::new();
            for &b in from {
                if b == into || merged.iter().any(|m| m["id"] == b.0) {
                    continue;
                }
                let (p, hash) = project_of(&tx, b).await?;
                if p != project {
                    return Err(StoreError::Invalid("only issues of the same project can be merged".into()));
                }
                let title: String = tx.query_one("SELECT title FROM groups WHERE id = $1", &[&b.0]).await?.get(0);
                for g in [into, b] {
                    tx.execute(
                        "UPDATE events SET hash = (SELECT hash FROM groups WHERE id = $1) WHERE group_id = $1 AND hash IS NULL",
                        &[&g.0],
                    )
                    .await?;
                }
                tx.execute("UPDATE events SET group_id = $1 WHERE group_id = $2", &[&into.0, &b.0]).await?;
                tx.execute("UPDATE group_hashes SET group_id = $1 WHERE group_id = $2", &[&into.0, &b.0]).await?;
                tx.execute("INSERT INTO group_hashes (project_id, hash, group_id) VALUES ($1, $2, $3)", &[&project.0, &hash, &into.0])
                    .await?;
                tx.execute("UPDATE feedback SET group_id = $1 WHERE group_id = $2", &[&into.0, &b.0]).await?;
                for (table, slot) in COUNTERS {
                    tx.execute(
                        &format!(
                            "INSERT INTO {table} AS t (group_id, {slot}, count) SELECT $1, {slot}, count FROM {table} WHERE group_id = $2
                             ORDER BY {slot}
                             ON CONFLICT (group_id, {slot}) DO UPDATE SET count = t.count + excluded.count"
                        ),
                        &[&into.0, &b.0],
                    )
                    .await?;
                }
                tx.execute(
                    "INSERT INTO group_tags AS t (group_id, key, value, count, first_seen, last_seen)
                     SELECT $1, key, value, count, first_seen, last_seen FROM group_tags WHERE group_id = $2 ORDER BY key, value
                     ON CONFLICT (group_id, key, value) DO UPDATE SET count = t.count + excluded.count,
                        first_seen = LEAST(t.first_seen, excluded.first_seen), last_seen = GREATEST(t.last_seen, excluded.last_seen)",
                    &[&into.0, &b.0],
                )
                .await?;
                tx.execute(
                    "UPDATE groups g SET times_seen = g.times_seen + b.times_seen,
                            first_seen = LEAST(g.first_seen, b.first_seen), last_seen = GREATEST(g.last_seen, b.last_seen),
                            ts_count = g.ts_count + b.ts_count, ts_sum = g.ts_sum + b.ts_sum,
                            ts_min = LEAST(g.ts_min, b.ts_min), ts_max = GREATEST(g.ts_max, b.ts_max),
                            title = CASE WHEN b.last_seen > g.last_seen THEN b.title ELSE g.title END,
                            culprit = CASE WHEN b.last_seen > g.last_seen THEN b.culprit ELSE g.culprit END,
                            level = CASE WHEN b.last_seen > g.last_seen THEN b.level ELSE g.level END,
                            logger = CASE WHEN b.last_seen > g.last_seen THEN b.logger ELSE g.logger END,
                            last_event_id = CASE WHEN b.last_seen > g.last_seen THEN b.last_event_id ELSE g.last_event_id END
                     FROM groups b WHERE g.id = $1 AND b.id = $2",
                    &[&into.0, &b.0],
                )
                .await?;
                for (table, _) in COUNTERS.iter().chain(&[("group_tags", ""), ("group_activity", "")]) {
                    tx.execute(&format!("DELETE FROM {table} WHERE group_id = $1"), &[&b.0]).await?;
                }
                tx.execute("DELETE FROM groups WHERE id = $1", &[&b.0]).await?;
                merged.push(serde_json::json!({ "id": b.0, "hash": hash, "title": title }));
            }
            if merged.is_empty() {
                return Ok(());
            }
            let r = tx.query_one("SELECT times_seen, last_seen FROM groups WHERE id = $1", &[&into.0]).await?;
            tx.execute("UPDATE groups SET priority = $2 WHERE id = $1", &[&into.0, &fold::priority(r.get(1), r.get(0))]).await?;
            insert_activity(&tx, into, ACTIVITY_MERGE, now(), actor, Some(serde_json::json!({ "groups": merged }).to_string())).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn unmerge(&self, group: GroupId, hash: &str, actor: Option<UserId>) -> Result<GroupId> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MERGE_LOCK]).await?;
            let (project, own) = project_of(&tx, group).await?;
            let others: Vec<String> =
                tx.query("SELECT hash FROM group_hashes WHERE group_id = $1 ORDER BY hash", &[&group.0]).await?.iter().map(|r| r.get(0)).collect();
            crate::triage::check_unmerge(&own, &others, hash)?;
            tx.execute("UPDATE events SET hash = $2 WHERE group_id = $1 AND hash IS NULL", &[&group.0, &own]).await?;
            if hash == own {
                let next = &others[0];
                tx.execute("DELETE FROM group_hashes WHERE project_id = $1 AND hash = $2", &[&project.0, next]).await?;
                tx.execute("UPDATE groups SET hash = $2 WHERE id = $1", &[&group.0, next]).await?;
            } else {
                tx.execute("DELETE FROM group_hashes WHERE project_id = $1 AND hash = $2", &[&project.0, &hash]).await?;
            }
            let split: i64 = tx
                .query_one(
                    "INSERT INTO groups (project_id, hash, kind, title, culprit, level, logger, status, first_seen, last_seen, times_seen, components)
                     SELECT project_id, $2, kind, title, culprit, level, logger, 0, first_seen, last_seen, 0, components FROM groups WHERE id = $1
                     RETURNING id",
                    &[&group.0, &hash],
                )
                .await?
                .get(0);
            let split = GroupId(split);
            tx.execute("UPDATE events SET group_id = $1 WHERE group_id = $2 AND hash = $3", &[&split.0, &group.0, &hash]).await?;
            recount(&tx, group).await?;
            recount(&tx, split).await?;
            let t = now();
            insert_activity(&tx, group, ACTIVITY_UNMERGE, t, actor, Some(serde_json::json!({ "hash": hash, "to": split.0 }).to_string())).await?;
            insert_activity(&tx, split, ACTIVITY_UNMERGE, t, actor, Some(serde_json::json!({ "hash": hash, "from": group.0 }).to_string()))
                .await?;
            tx.commit().await?;
            Ok(split)
        })
    }

    fn group_hashes(&self, group: GroupId) -> Result<Vec<GroupHash>> {
        self.with(async |c| {
            let (_, own) = project_of(&*c, group).await?;
            let counts: Vec<(String, i64)> = c
                .query("SELECT COALESCE(hash, $2), COUNT(*) FROM events WHERE group_id = $1 GROUP BY 1", &[&group.0, &own])
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let others: Vec<String> =
                c.query("SELECT hash FROM group_hashes WHERE group_id = $1 ORDER BY hash", &[&group.0]).await?.iter().map(|r| r.get(0)).collect();
            Ok(crate::triage::hashes(own, others, counts))
        })
    }

    fn delete_groups(&self, groups: &[GroupId]) -> Result<u64> {
        crate::triage::check_bulk(groups)?;
        let ids: Vec<i64> = groups.iter().map(|g| g.0).collect();
        self.with(async |c| {
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MERGE_LOCK]).await?;
            tx.execute(
                "DELETE FROM event_ids WHERE (project_id, event_id) IN (SELECT project_id, event_id FROM events WHERE group_id = ANY($1))",
                &[&ids],
            )
            .await?;
            let events = tx.execute("DELETE FROM events WHERE group_id = ANY($1)", &[&ids]).await?;
            for (table, _) in COUNTERS.iter().chain(&[("group_tags", ""), ("group_activity", ""), ("group_hashes", "")]) {
                tx.execute(&format!("DELETE FROM {table} WHERE group_id = ANY($1)"), &[&ids]).await?;
            }
            tx.execute("UPDATE feedback SET group_id = NULL WHERE group_id = ANY($1)", &[&ids]).await?;
            tx.execute("DELETE FROM groups WHERE id = ANY($1)", &[&ids]).await?;
            tx.commit().await?;
            Ok(events)
        })
    }
}
