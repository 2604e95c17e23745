//! Working issues on SQLite: status changes by whom (with snoozes), comments, snoozes that run
//! out, merging groups and splitting a hash off again, deleting groups. Each call is one
//! `IMMEDIATE` transaction, so the event writer sees a group before or after, never between.

use rusqlite::{params, Connection, OptionalExtension};

use super::read::{raw_event, EVENT_COLUMNS};
use super::SqliteStore;
use crate::fold::{self, GroupState, Plan};
use crate::{
    now, Activity, GroupHash, GroupId, GroupStatus, NewEvent, ProjectId, Result, Snooze, StoreError, UserId,
    ACTIVITY_MERGE, ACTIVITY_NOTE, ACTIVITY_UNIGNORED, ACTIVITY_UNMERGE, BULK_CHUNK,
};

use crate::triage::{InRelease, ReleaseResolution, COUNTERS, RECOUNT_CHUNK};

fn insert_activity(tx: &Connection, group: GroupId, kind: &str, at: f64, actor: Option<UserId>, data: Option<String>) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO group_activity (group_id, kind, at, actor, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![group.0, kind, at, actor.map(|a| a.0), data],
    )?;
    Ok(tx.last_insert_rowid())
}

fn users_of(tx: &Connection, group: GroupId) -> rusqlite::Result<i64> {
    tx.query_row("SELECT COUNT(*) FROM group_tags WHERE group_id = ?1 AND key = 'user'", [group.0], |r| r.get(0))
}

/// After the writer's deltas: ignored groups the batch touched whose snooze waits for a number
/// of users come back once they have that many.
pub(super) fn wake_by_users(tx: &Connection, plan: &Plan<'_>, ids: &[GroupId]) -> rusqlite::Result<()> {
    let t = now();
    for (g, id) in plan.groups.iter().zip(ids) {
        if !g.touched || g.status != GroupStatus::Ignored {
            continue;
        }
        let wanted: Option<i64> = tx.query_row("SELECT snooze_users FROM groups WHERE id = ?1", [id.0], |r| r.get(0))?;
        if wanted.is_some_and(|w| users_of(tx, *id).is_ok_and(|n| n >= w)) {
            tx.execute(
                "UPDATE groups SET status = 0, snooze_until = NULL, snooze_count = NULL, snooze_users = NULL WHERE id = ?1",
                [id.0],
            )?;
            insert_activity(tx, *id, ACTIVITY_UNIGNORED, t, None, Some(fold::wake_data(fold::WAKE_USERS)))?;
        }
    }
    Ok(())
}

fn project_of(tx: &Connection, group: GroupId) -> Result<(ProjectId, String)> {
    tx.query_row("SELECT project_id, hash FROM groups WHERE id = ?1", [group.0], |r| Ok((ProjectId(r.get(0)?), r.get(1)?)))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("group {group}")))
}

impl SqliteStore {
    /// Counts a group's stored events again: its counters and counter rows, from its events.
    fn recount(&self, tx: &Connection, id: GroupId) -> Result<()> {
        let mut st = tx.prepare_cached(
            "SELECT status, times_seen, first_seen, last_seen, ts_count, ts_sum, ts_min, ts_max, last_event_id, title,
                    culprit, level, logger, components, kind, priority, hash, project_id
             FROM groups WHERE id = ?1",
        )?;
        let mut g = st.query_row([id.0], |r| {
            Ok(GroupState {
                id: Some(id),
                status: GroupStatus::of_code(r.get(0)?),
                times_seen: r.get(1)?,
                first_seen: r.get(2)?,
                last_seen: r.get(3)?,
                ts_count: r.get(4)?,
                ts_sum: r.get(5)?,
                ts_min: r.get(6)?,
                ts_max: r.get(7)?,
                last_event_id: r.get(8)?,
                title: r.get(9)?,
                culprit: r.get(10)?,
                level: r.get(11)?,
                logger: r.get(12)?,
                components: r.get(13)?,
                kind: r.get(14)?,
                priority: r.get(15)?,
                hash: r.get(16)?,
                project_id: ProjectId(r.get(17)?),
                aliases: Vec::new(),
                snooze_until: None,
                snooze_count: None,
                woke: None,
                keeps: Vec::new(),
                reopened: false,
                touched: true,
            })
        })?;
        let (first, last) = (g.first_seen, g.last_seen);
        g.reset_counters();
        for (table, _) in COUNTERS.iter().chain(&[("group_tags", "")]) {
            tx.execute(&format!("DELETE FROM {table} WHERE group_id = ?1"), [id.0])?;
        }
        let mut after = 0i64;
        let mut events_st =
            tx.prepare(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE group_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"))?;
        loop {
            let raws = events_st.query_map(params![id.0, after, RECOUNT_CHUNK], raw_event)?.collect::<rusqlite::Result<Vec<_>>>()?;
            let n = raws.len() as i64;
            let events: Vec<NewEvent> = raws
                .into_iter()
                .map(|raw| {
                    let e = self.finish_event(tx, raw);
                    after = e.position;
                    fold::stored_event(&g, e)
                })
                .collect();
            let deltas = fold::recount(&mut g, &events);
            let plan = Plan { groups: vec![g.clone()], deltas, ..Plan::default() };
            super::writer::write_deltas(tx, &plan, &[id])?;
            if n < RECOUNT_CHUNK {
                break;
            }
        }
        if g.times_seen == 0 {
            (g.first_seen, g.last_seen) = (first, last);
        }
        super::writer::write_groups(tx, &Plan { groups: vec![g], ..Plan::default() })?;
        Ok(())
    }
}

impl crate::Triage for SqliteStore {
    fn change_status(&self, groups: &[GroupId], status: GroupStatus, snooze: &Snooze, actor: Option<UserId>) -> Result<usize> {
        crate::triage::check_bulk(groups)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        let snooze = if status == GroupStatus::Ignored { snooze.clone() } else { Snooze::default() };
        let mut changed = 0;
        for &g in groups {
            let (was, times_seen): (i64, i64) = tx
                .query_row("SELECT status, times_seen FROM groups WHERE id = ?1", [g.0], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("group {g}")))?;
            if GroupStatus::of_code(was) == status && snooze.is_forever() {
                continue;
            }
            let users = match snooze.users {
                Some(n) => Some(users_of(&tx, g)? + n as i64),
                None => None,
            };
            tx.execute(
                "UPDATE groups SET status = ?2, resolved_at = CASE WHEN ?2 = 1 THEN ?3 ELSE NULL END,
                        snooze_until = ?4, snooze_count = ?5, snooze_users = ?6, resolution = NULL
                 WHERE id = ?1",
                params![g.0, status.code(), t, snooze.until, snooze.count.map(|n| times_seen + n as i64), users],
            )?;
            insert_activity(&tx, g, crate::triage::status_activity(status), t, actor, snooze.data())?;
            changed += 1;
        }
        tx.commit()?;
        Ok(changed)
    }

    fn resolve_in_release(&self, groups: &[GroupId], target: &InRelease, actor: Option<UserId>) -> Result<usize> {
        crate::triage::check_bulk(groups)?;
        crate::triage::check_in_release(target)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        let mut seen: std::collections::HashMap<ProjectId, Vec<(String, f64)>> = std::collections::HashMap::new();
        for &g in groups {
            let (project, _) = project_of(&tx, g)?;
            if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry(project) {
                let mut st = tx.prepare_cached(
                    "SELECT t.value, MIN(t.first_seen) FROM group_tags t JOIN groups g ON g.id = t.group_id
                 WHERE g.project_id = ?1 AND t.key = 'release' GROUP BY t.value
                 UNION ALL
                 SELECT r.version, r.created_at FROM releases r JOIN release_projects rp ON rp.release_id = r.id
                 WHERE rp.project_id = ?1",
                )?;
                let releases = st.query_map([project.0], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
                slot.insert(releases);
            }
            let resolution = ReleaseResolution::of(&seen[&project], target);
            tx.execute(
                "UPDATE groups SET status = 1, resolved_at = ?2, snooze_until = NULL, snooze_count = NULL, snooze_users = NULL,
                        resolution = ?3
                 WHERE id = ?1",
                params![g.0, t, resolution.to_json()],
            )?;
            insert_activity(&tx, g, crate::ACTIVITY_RESOLVED, t, actor, Some(resolution.activity_data()))?;
        }
        tx.commit()?;
        Ok(groups.len())
    }

    fn resolution(&self, group: GroupId) -> Result<Option<ReleaseResolution>> {
        let conn = self.conn()?;
        let stored: Option<Option<String>> =
            conn.query_row("SELECT resolution FROM groups WHERE id = ?1 AND status = 1", [group.0], |r| r.get(0)).optional()?;
        Ok(ReleaseResolution::parse(stored.flatten().as_deref()))
    }

    fn add_note(&self, group: GroupId, actor: UserId, text: &str, mentions: &[UserId]) -> Result<Activity> {
        let data = crate::triage::note_data(text, mentions)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        project_of(&tx, group)?;
        let at = now();
        let id = insert_activity(&tx, group, ACTIVITY_NOTE, at, Some(actor), Some(data.clone()))?;
        tx.commit()?;
        Ok(Activity { id, group_id: group, kind: ACTIVITY_NOTE.into(), at, actor: Some(actor), data: Some(data) })
    }

    fn wake_snoozed(&self, at: f64) -> Result<Vec<GroupId>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let ids: Vec<i64> = {
            let mut st = tx.prepare("SELECT id FROM groups WHERE snooze_until <= ?1 AND status = 2 LIMIT ?2")?;
            st.query_map(params![at, BULK_CHUNK as i64], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        for id in &ids {
            tx.execute(
                "UPDATE groups SET status = 0, snooze_until = NULL, snooze_count = NULL, snooze_users = NULL WHERE id = ?1",
                [id],
            )?;
            insert_activity(&tx, GroupId(*id), ACTIVITY_UNIGNORED, at, None, Some(fold::wake_data(fold::WAKE_UNTIL)))?;
        }
        tx.commit()?;
        Ok(ids.into_iter().map(GroupId).collect())
    }

    fn merge_groups(&self, into: GroupId, from: &[GroupId], actor: Option<UserId>) -> Result<()> {
        crate::triage::check_bulk(from)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (project, _) = project_of(&tx, into)?;
        let mut merged = Vec::new();
        for &b in from {
            if b == into || merged.iter().any(|m: &serde_json::Value| m["id"] == b.0) {
                continue;
            }
            let (p, hash) = project_of(&tx, b)?;
            if p != project {
                return Err(StoreError::Invalid("only issues of the same project can be merged".into()));
            }
            let title: String = tx.query_row("SELECT title FROM groups WHERE id = ?1", [b.0], |r| r.get(0))?;
            for g in [into, b] {
                tx.execute("UPDATE events SET hash = (SELECT hash FROM groups WHERE id = ?1) WHERE group_id = ?1 AND hash IS NULL", [g.0])?;
            }
            tx.execute("UPDATE events SET group_id = ?1 WHERE group_id = ?2", params![into.0, b.0])?;
            tx.execute("UPDATE group_hashes SET group_id = ?1 WHERE group_id = ?2", params![into.0, b.0])?;
            tx.execute("INSERT INTO group_hashes (project_id, hash, group_id) VALUES (?1, ?2, ?3)", params![project.0, hash, into.0])?;
            tx.execute("UPDATE feedback SET group_id = ?1 WHERE group_id = ?2", params![into.0, b.0])?;
            for (table, slot) in COUNTERS {
                tx.execute(
                    &format!(
                        "INSERT INTO {table} (group_id, {slot}, count) SELECT ?1, {slot}, count FROM {table} WHERE group_id = ?2 AND true
                         ON CONFLICT (group_id, {slot}) DO UPDATE SET count = count + excluded.count"
                    ),
                    params![into.0, b.0],
                )?;
            }
            tx.execute(
                "INSERT INTO group_tags (group_id, key, value, count, first_seen, last_seen)
                 SELECT ?1, key, value, count, first_seen, last_seen FROM group_tags WHERE group_id = ?2 AND true
                 ON CONFLICT (group_id, key, value) DO UPDATE SET count = count + excluded.count,
                    first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)",
                params![into.0, b.0],
            )?;
            tx.execute(
                "UPDATE groups SET times_seen = groups.times_seen + b.times_seen,
                        first_seen = min(groups.first_seen, b.first_seen), last_seen = max(groups.last_seen, b.last_seen),
                        ts_count = groups.ts_count + b.ts_count, ts_sum = groups.ts_sum + b.ts_sum,
                        ts_min = COALESCE(min(groups.ts_min, b.ts_min), groups.ts_min, b.ts_min),
                        ts_max = COALESCE(max(groups.ts_max, b.ts_max), groups.ts_max, b.ts_max),
                        title = CASE WHEN b.last_seen > groups.last_seen THEN b.title ELSE groups.title END,
                        culprit = CASE WHEN b.last_seen > groups.last_seen THEN b.culprit ELSE groups.culprit END,
                        level = CASE WHEN b.last_seen > groups.last_seen THEN b.level ELSE groups.level END,
                        logger = CASE WHEN b.last_seen > groups.last_seen THEN b.logger ELSE groups.logger END,
                        last_event_id = CASE WHEN b.last_seen > groups.last_seen THEN b.last_event_id ELSE groups.last_event_id END
                 FROM (SELECT * FROM groups WHERE id = ?2) AS b WHERE groups.id = ?1",
                params![into.0, b.0],
            )?;
            for (table, _) in COUNTERS.iter().chain(&[("group_tags", ""), ("group_activity", "")]) {
                tx.execute(&format!("DELETE FROM {table} WHERE group_id = ?1"), [b.0])?;
            }
            tx.execute("DELETE FROM groups WHERE id = ?1", [b.0])?;
            merged.push(serde_json::json!({ "id": b.0, "hash": hash, "title": title }));
        }
        if merged.is_empty() {
            return Ok(());
        }
        let (times_seen, last_seen): (i64, f64) =
            tx.query_row("SELECT times_seen, last_seen FROM groups WHERE id = ?1", [into.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
        tx.execute("UPDATE groups SET priority = ?2 WHERE id = ?1", params![into.0, fold::priority(last_seen, times_seen)])?;
        insert_activity(&tx, into, ACTIVITY_MERGE, now(), actor, Some(serde_json::json!({ "groups": merged }).to_string()))?;
        tx.commit()?;
        Ok(())
    }

    fn unmerge(&self, group: GroupId, hash: &str, actor: Option<UserId>) -> Result<GroupId> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (project, own) = project_of(&tx, group)?;
        let others: Vec<String> = {
            let mut st = tx.prepare("SELECT hash FROM group_hashes WHERE group_id = ?1 ORDER BY hash")?;
            st.query_map([group.0], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        crate::triage::check_unmerge(&own, &others, hash)?;
        tx.execute("UPDATE events SET hash = ?2 WHERE group_id = ?1 AND hash IS NULL", params![group.0, own])?;
        if hash == own {
            let next = &others[0];
            tx.execute("DELETE FROM group_hashes WHERE project_id = ?1 AND hash = ?2", params![project.0, next])?;
            tx.execute("UPDATE groups SET hash = ?2 WHERE id = ?1", params![group.0, next])?;
        } else {
            tx.execute("DELETE FROM group_hashes WHERE project_id = ?1 AND hash = ?2", params![project.0, hash])?;
        }
        tx.execute(
            "INSERT INTO groups (project_id, hash, kind, title, culprit, level, logger, status, first_seen, last_seen, times_seen, components)
             SELECT project_id, ?2, kind, title, culprit, level, logger, 0, first_seen, last_seen, 0, components FROM groups WHERE id = ?1",
            params![group.0, hash],
        )?;
        let split = GroupId(tx.last_insert_rowid());
        tx.execute("UPDATE events SET group_id = ?1 WHERE group_id = ?2 AND hash = ?3", params![split.0, group.0, hash])?;
        self.recount(&tx, group)?;
        self.recount(&tx, split)?;
        let t = now();
        insert_activity(&tx, group, ACTIVITY_UNMERGE, t, actor, Some(serde_json::json!({ "hash": hash, "to": split.0 }).to_string()))?;
        insert_activity(&tx, split, ACTIVITY_UNMERGE, t, actor, Some(serde_json::json!({ "hash": hash, "from": group.0 }).to_string()))?;
        tx.commit()?;
        Ok(split)
    }

    fn group_hashes(&self, group: GroupId) -> Result<Vec<GroupHash>> {
        let conn = self.conn()?;
        let (_, own) = project_of(&conn, group)?;
        let mut st = conn.prepare_cached("SELECT COALESCE(hash, ?2), COUNT(*) FROM events WHERE group_id = ?1 GROUP BY 1")?;
        let counts: Vec<(String, i64)> = st.query_map(params![group.0, own], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        let mut st = conn.prepare_cached("SELECT hash FROM group_hashes WHERE group_id = ?1 ORDER BY hash")?;
        let others: Vec<String> = st.query_map([group.0], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(crate::triage::hashes(own, others, counts))
    }

    fn delete_groups(&self, groups: &[GroupId]) -> Result<u64> {
        crate::triage::check_bulk(groups)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut events = 0;
        for g in groups {
            events += tx.execute("DELETE FROM events WHERE group_id = ?1", [g.0])? as u64;
            for (table, _) in COUNTERS.iter().chain(&[("group_tags", ""), ("group_activity", ""), ("group_hashes", "")]) {
                tx.execute(&format!("DELETE FROM {table} WHERE group_id = ?1"), [g.0])?;
            }
            tx.execute("UPDATE feedback SET group_id = NULL WHERE group_id = ?1", [g.0])?;
            tx.execute("DELETE FROM groups WHERE id = ?1", [g.0])?;
        }
        tx.commit()?;
        Ok(events)
    }
}
