//! Retention: events (and user feedback) received before the cutoff go — whole day partitions dropped, the rows of
//! the one day the cutoff falls in deleted — then groups not seen since, with their tag counts,
//! buckets, histograms and activity, in small transactions so that writers never wait long.

use super::PgStore;
use super::writer::{day_of, partition_name};
use crate::{Cleaned, Result};

/// Rows deleted per transaction.
const CHUNK: i64 = 2000;

pub(super) async fn cleanup(store: &PgStore, cutoff: f64) -> Result<Cleaned> {
    let mut c = store.client().await?;
    let mut cleaned = Cleaned::default();
    // Day partitions that end at or before the cutoff are dropped whole.
    let parts = c
        .query(
            "SELECT child.relname FROM pg_inherits i
             JOIN pg_class parent ON parent.oid = i.inhparent JOIN pg_class child ON child.oid = i.inhrelid
             WHERE parent.relname = 'events' AND child.relname LIKE 'events_d%'",
            &[],
        )
        .await?;
    let cut_day = day_of(cutoff);
    for r in &parts {
        let name: String = r.get(0);
        let Some(day) = name.strip_prefix("events_d").and_then(|d| d.parse::<i64>().ok()) else { continue };
        if (day + 1) * 86400 > cutoff as i64 || name != partition_name(day) {
            continue;
        }
        let tx = c.transaction().await?;
        let n: i64 = tx.query_one(&format!("SELECT COUNT(*) FROM {name}"), &[]).await?.get(0);
        tx.batch_execute(&format!("DROP TABLE {name}")).await?;
        tx.commit().await?;
        cleaned.events += n.max(0) as u64;
        tracing::info!(partition = %name, events = n, "dropped a day of events past retention");
    }
    // The day the cutoff falls in: row by row (only that partition is searched).
    let lo = (cut_day * 86400) as f64;
    loop {
        let n = c
            .execute(
                // A row's ctid is unique only within its partition: the outer range keeps the
                // delete in the one partition the inner query read.
                "DELETE FROM events WHERE received >= $1 AND received < $2
                   AND ctid IN (SELECT ctid FROM events WHERE received >= $1 AND received < $2 LIMIT $3)",
                &[&lo, &cutoff, &CHUNK],
            )
            .await?;
        cleaned.events += n;
        if (n as i64) < CHUNK {
            break;
        }
    }
    loop {
        let n = c
            .execute(
                "DELETE FROM event_ids WHERE (project_id, event_id) IN
                    (SELECT project_id, event_id FROM event_ids WHERE received < $1 LIMIT $2)",
                &[&cutoff, &CHUNK],
            )
            .await?;
        if (n as i64) < CHUNK {
            break;
        }
    }
    loop {
        let n = c
            .execute("DELETE FROM feedback WHERE id IN (SELECT id FROM feedback WHERE received < $1 LIMIT $2)", &[&cutoff, &CHUNK])
            .await?;
        if (n as i64) < CHUNK {
            break;
        }
    }
    let minute = (cutoff / 60.0).floor() as i64;
    loop {
        let tx = c.transaction().await?;
        let ids: Vec<i64> = tx
            .query("SELECT id FROM groups WHERE last_seen < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED", &[&cutoff, &CHUNK])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for table in ["group_tags", "group_buckets", "group_hours", "group_days", "group_durations", "group_activity"] {
            tx.execute(&format!("DELETE FROM {table} WHERE group_id = ANY($1)"), &[&ids]).await?;
        }
        // Events of a group received after the cutoff keep it alive (old timestamps).
        let kept: Vec<i64> = tx
            .query("SELECT DISTINCT group_id FROM events WHERE group_id = ANY($1)", &[&ids])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        tx.execute("UPDATE groups SET last_seen = $2 WHERE id = ANY($1)", &[&kept, &cutoff]).await?;
        tx.execute("UPDATE feedback SET group_id = NULL WHERE group_id = ANY($1) AND NOT (group_id = ANY($2))", &[&ids, &kept]).await?;
        let gone = tx.execute("DELETE FROM groups WHERE id = ANY($1) AND NOT (id = ANY($2))", &[&ids, &kept]).await?;
        cleaned.groups += gone;
        tx.execute("DELETE FROM group_buckets WHERE minute < $1", &[&minute]).await?;
        tx.execute("DELETE FROM project_minutes WHERE minute < $1", &[&minute]).await?;
        tx.commit().await?;
        if (ids.len() as i64) < CHUNK {
            break;
        }
    }
    Ok(cleaned)
}
