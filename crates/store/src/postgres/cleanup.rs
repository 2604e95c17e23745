//! Retention: events (and user feedback, cron monitors' runs) received before their project's cutoff go — whole day
//! partitions dropped when every project's cutoff is past them, rows deleted inside the days
//! that remain — then groups not seen since, with their tag counts, buckets, histograms and
//! activity, in small transactions so that writers never wait long. The size cap drops the
//! oldest day partitions.

use deadpool_postgres::Object as Client;

use super::PgStore;
use super::writer::{day_of, partition_name};
use crate::{Cleaned, ProjectId, ProjectUsage, Result, Retention, StorageUsage, Trimmed};

/// Rows deleted per transaction.
const CHUNK: i64 = 2000;

/// The cutoff of a row's `project_id`: `$1`/`$2` are the projects with their own cutoffs,
/// `$3` every other project's.
const CUTOFF: &str = "COALESCE((SELECT t.c FROM unnest($1::bigint[], $2::float8[]) AS t(p, c) WHERE t.p = project_id), $3)";

/// The day partitions of `events`, oldest first.
async fn partitions(c: &Client) -> Result<Vec<(i64, String)>> {
    let rows = c
        .query(
            "SELECT child.relname FROM pg_inherits i
             JOIN pg_class parent ON parent.oid = i.inhparent JOIN pg_class child ON child.oid = i.inhrelid
             WHERE parent.relname = 'events' AND child.relname LIKE 'events_d%'",
            &[],
        )
        .await?;
    let mut out: Vec<(i64, String)> = rows
        .iter()
        .filter_map(|r| {
            let name: String = r.get(0);
            let day = name.strip_prefix("events_d").and_then(|d| d.parse::<i64>().ok())?;
            (name == partition_name(day)).then_some((day, name))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Drops one day partition; returns the events it held.
async fn drop_partition(c: &mut Client, name: &str) -> Result<u64> {
    let tx = c.transaction().await?;
    let n: i64 = tx.query_one(&format!("SELECT COUNT(*) FROM {name}"), &[]).await?.get(0);
    tx.batch_execute(&format!("DROP TABLE {name}")).await?;
    tx.commit().await?;
    Ok(n.max(0) as u64)
}

pub(super) async fn cleanup(store: &PgStore, retention: &Retention, progress: &mut dyn FnMut(u64)) -> Result<Cleaned> {
    let mut cleaned = Cleaned::default();
    let Some(latest) = retention.latest_cutoff() else { return Ok(cleaned) };
    let mut c = store.client().await?;
    let (projects, other) = retention.as_numbers();
    let ids: Vec<i64> = projects.iter().map(|p| p.0).collect();
    let cuts: Vec<f64> = projects.iter().map(|p| p.1).collect();
    let common = retention.common_cutoff();
    for (day, name) in partitions(&c).await? {
        // Whole days before every project's cutoff are dropped.
        if common.is_some_and(|cut| (day + 1) * 86400 <= cut as i64) {
            let n = drop_partition(&mut c, &name).await?;
            cleaned.events += n;
            progress(cleaned.events);
            tracing::info!(partition = %name, events = n, "dropped a day of events past retention");
            continue;
        }
        if (day * 86400) as f64 >= latest {
            continue;
        }
        // A day some cutoff falls in, or one that some project keeps: row by row, in it alone
        // (a row's ctid is unique only within its partition).
        let sql = format!("DELETE FROM {name} WHERE ctid IN (SELECT ctid FROM {name} WHERE received < {CUTOFF} LIMIT $4)");
        loop {
            let n = c.execute(&sql, &[&ids, &cuts, &other, &CHUNK]).await?;
            cleaned.events += n;
            progress(cleaned.events);
            if (n as i64) < CHUNK {
                break;
            }
        }
    }
    let id_sql = format!(
        "DELETE FROM event_ids WHERE (project_id, event_id) IN
            (SELECT project_id, event_id FROM event_ids WHERE received < {CUTOFF} LIMIT $4)"
    );
    let by_id = |table: &str| format!("DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE received < {CUTOFF} LIMIT $4)");
    let runs_sql = format!(
        "DELETE FROM monitor_runs WHERE id IN (SELECT id FROM monitor_runs WHERE started < {CUTOFF} AND status <> 'in_progress' LIMIT $4)"
    );
    for sql in [id_sql, by_id("feedback"), by_id("release_sessions"), by_id("release_session_counts"), runs_sql] {
        loop {
            let n = c.execute(&sql, &[&ids, &cuts, &other, &CHUNK]).await?;
            if (n as i64) < CHUNK {
                break;
            }
        }
    }
    let minute = common.map(|cut| (cut / 60.0).floor() as i64);
    let groups_sql =
        format!("SELECT id, {CUTOFF} FROM groups WHERE last_seen < {CUTOFF} ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED");
    loop {
        let tx = c.transaction().await?;
        let rows = tx.query(&groups_sql, &[&ids, &cuts, &other, &CHUNK]).await?;
        let groups: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let group_cuts: Vec<f64> = rows.iter().map(|r| r.get(1)).collect();
        for table in ["group_tags", "group_buckets", "group_hours", "group_days", "group_durations", "group_activity"] {
            tx.execute(&format!("DELETE FROM {table} WHERE group_id = ANY($1)"), &[&groups]).await?;
        }
        // Events of a group received after the cutoff keep it alive (old timestamps).
        let kept: Vec<i64> = tx
            .query("SELECT DISTINCT group_id FROM events WHERE group_id = ANY($1)", &[&groups])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        tx.execute(
            "UPDATE groups g SET last_seen = t.c FROM unnest($1::bigint[], $2::float8[]) AS t(id, c)
             WHERE g.id = t.id AND g.id = ANY($3)",
            &[&groups, &group_cuts, &kept],
        )
        .await?;
        tx.execute("UPDATE feedback SET group_id = NULL WHERE group_id = ANY($1) AND NOT (group_id = ANY($2))", &[&groups, &kept])
            .await?;
        let gone = tx.execute("DELETE FROM groups WHERE id = ANY($1) AND NOT (id = ANY($2))", &[&groups, &kept]).await?;
        cleaned.groups += gone;
        if let Some(minute) = minute {
            tx.execute("DELETE FROM group_buckets WHERE minute < $1", &[&minute]).await?;
            tx.execute("DELETE FROM project_minutes WHERE minute < $1", &[&minute]).await?;
        }
        tx.commit().await?;
        if (groups.len() as i64) < CHUNK {
            break;
        }
    }
    Ok(cleaned)
}

pub(super) async fn expired_events(store: &PgStore, retention: &Retention) -> Result<u64> {
    let Some(latest) = retention.latest_cutoff() else { return Ok(0) };
    let c = store.client().await?;
    let (projects, other) = retention.as_numbers();
    let ids: Vec<i64> = projects.iter().map(|p| p.0).collect();
    let cuts: Vec<f64> = projects.iter().map(|p| p.1).collect();
    let n: i64 = c
        .query_one(&format!("SELECT COUNT(*) FROM events WHERE received < $4 AND received < {CUTOFF}"), &[&ids, &cuts, &other, &latest])
        .await?
        .get(0);
    Ok(n as u64)
}

async fn database_bytes(c: &Client) -> Result<u64> {
    let n: i64 = c.query_one("SELECT pg_database_size(current_database())", &[]).await?.get(0);
    Ok(n.max(0) as u64)
}

pub(super) async fn storage_usage(store: &PgStore) -> Result<StorageUsage> {
    let c = store.client().await?;
    let total_bytes = database_bytes(&c).await?;
    let rows = c
        .query(
            "SELECT project_id, COUNT(*), COALESCE(SUM(octet_length(payload)), 0)::bigint, MIN(received) FROM events
             GROUP BY project_id ORDER BY 3 DESC",
            &[],
        )
        .await?;
    let projects = rows
        .iter()
        .map(|r| ProjectUsage {
            project_id: ProjectId(r.get(0)),
            events: r.get::<_, i64>(1) as u64,
            payload_bytes: r.get::<_, i64>(2) as u64,
            oldest: r.get(3),
        })
        .collect();
    Ok(StorageUsage { total_bytes, projects })
}

/// Drops the oldest day partitions while the database is over `max_bytes`, never today's.
pub(super) async fn trim_to(store: &PgStore, max_bytes: u64) -> Result<Trimmed> {
    let mut c = store.client().await?;
    let before = database_bytes(&c).await?;
    let mut trimmed = Trimmed { events: 0, bytes_before: before, bytes_after: before };
    if max_bytes == 0 {
        return Ok(trimmed);
    }
    let today = day_of(crate::now());
    for (day, name) in partitions(&c).await? {
        if trimmed.bytes_after <= max_bytes || day >= today {
            break;
        }
        let n = drop_partition(&mut c, &name).await?;
        trimmed.events += n;
        trimmed.bytes_after = database_bytes(&c).await?;
        tracing::info!(partition = %name, events = n, max_bytes, "dropped the oldest day of events to stay under store.max_bytes");
    }
    if trimmed.bytes_after > max_bytes {
        tracing::warn!(
            used = trimmed.bytes_after,
            max_bytes,
            "the database is over store.max_bytes with only today's events left to drop: raise store.max_bytes"
        );
    }
    Ok(trimmed)
}
