//! The shared spool on PostgreSQL (`crate::queue`): the `ingest_queue` table.

use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};

use crate::{QueueClaim, QueueDepth, QueuedRecord, Result, StoreError};

pub(super) struct PgQueue {
    pub rt: tokio::runtime::Handle,
    pub pool: Pool,
}

impl PgQueue {
    fn with<T>(&self, f: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<T>) -> Result<T> {
        let _in = self.rt.enter();
        futures_executor::block_on(async {
            let mut client =
                self.pool.get().await.map_err(|e| StoreError::Unavailable(format!("cannot reach PostgreSQL: {}", super::causes(&e))))?;
            f(&mut client).await
        })
    }
}

impl crate::Queue for PgQueue {
    fn append(&self, records: &[(&[u8], u32)]) -> Result<Vec<i64>> {
        if records.is_empty() {
            return Ok(vec![]);
        }
        // Compressed here, on the node, so that most records fit in their row: PostgreSQL then
        // neither compresses them nor moves them out of line (four more rows, each deleted again).
        let packed: Vec<Vec<u8>> = records.iter().map(|r| zstd::bulk::compress(r.0, 1)).collect::<std::io::Result<_>>()
            .map_err(|e| StoreError::Backend(format!("compressing a record for the queue: {e}")))?;
        let data: Vec<&[u8]> = packed.iter().map(Vec::as_slice).collect();
        let events: Vec<i32> = records.iter().map(|r| r.1 as i32).collect();
        let now = crate::now();
        self.with(async |c| {
            // One statement, one transaction, one commit for every record: ids taken first, then
            // each record's row and its data's.
            let rows = c
                .query(
                    "WITH ids AS (SELECT nextval(pg_get_serial_sequence('ingest_queue', 'id')) AS id, n FROM generate_series(1, $4::bigint) AS n),
                          u AS (SELECT * FROM unnest($2::int[], $3::bytea[]) WITH ORDINALITY AS u(e, d, n)),
                          q AS (INSERT INTO ingest_queue (id, appended_at, events, bytes)
                                SELECT ids.id, $1, u.e, octet_length(u.d) FROM u JOIN ids USING (n) RETURNING id)
                     INSERT INTO ingest_queue_data (id, data) SELECT ids.id, u.d FROM u JOIN ids USING (n) RETURNING id",
                    &[&now, &events, &data, &(records.len() as i64)],
                )
                .await?;
            let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            ids.sort_unstable();
            Ok(ids)
        })
    }

    fn claim(&self, claim: i64, from: i64, max_records: usize, max_bytes: usize, lease: Duration) -> Result<Vec<QueuedRecord>> {
        let now = crate::now();
        let until = now + lease.as_secs_f64();
        self.with(async |c| {
            let tx = c.transaction().await?;
            // Lock free rows, oldest first, skipping those another claim is taking right now.
            let free = tx
                .query(
                    "SELECT id, bytes::bigint FROM ingest_queue
                     WHERE id >= $3 AND (lease_until IS NULL OR lease_until < $1)
                     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
                    &[&now, &(max_records.max(1) as i64), &from],
                )
                .await?;
            let mut ids = Vec::new();
            let mut bytes = 0usize;
            for row in &free {
                let size = row.get::<_, i64>(1) as usize;
                if !ids.is_empty() && bytes + size > max_bytes {
                    break;
                }
                bytes += size;
                ids.push(row.get::<_, i64>(0));
            }
            if ids.is_empty() {
                return Ok(vec![]);
            }
            let rows = tx
                .query(
                    "UPDATE ingest_queue SET claim = $1, lease_until = $2, claims = claims + 1
                     WHERE id = ANY($3) RETURNING id, events, appended_at",
                    &[&claim, &until, &ids],
                )
                .await?;
            let data = tx.query("SELECT id, data FROM ingest_queue_data WHERE id = ANY($1)", &[&ids]).await?;
            tx.commit().await?;
            let data: std::collections::HashMap<i64, &[u8]> = data.iter().map(|r| (r.get(0), r.get(1))).collect();
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let packed: &[u8] = data.get(&r.get::<_, i64>(0)).copied().unwrap_or_default();
                // A record that does not decompress is handed on empty: the applier refuses it
                // (and counts it) as it does any record that does not decode.
                let data = zstd::stream::decode_all(packed).unwrap_or_default();
                out.push(QueuedRecord { id: r.get(0), events: r.get::<_, i32>(1) as u32, appended_at: r.get(2), data });
            }
            out.sort_by_key(|r| r.id);
            Ok(out)
        })
    }

    fn depth(&self) -> Result<QueueDepth> {
        self.with(async |c| {
            let row = c
                .query_one(
                    "SELECT count(*)::bigint, COALESCE(sum(events), 0)::bigint, COALESCE(sum(bytes), 0)::bigint, min(appended_at)
                     FROM ingest_queue",
                    &[],
                )
                .await?;
            Ok(QueueDepth {
                records: row.get::<_, i64>(0) as u64,
                events: row.get::<_, i64>(1) as u64,
                bytes: row.get::<_, i64>(2) as u64,
                oldest: row.get(3),
            })
        })
    }

    fn newest(&self) -> Result<i64> {
        self.with(async |c| {
            // The identity's last value, whether or not its row is still there.
            let row = c.query_one("SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence('ingest_queue', 'id')), 0)::bigint", &[]).await?;
            Ok(row.get(0))
        })
    }

    fn stored_through(&self, id: i64) -> Result<bool> {
        self.with(async |c| {
            let row = c.query_one("SELECT NOT EXISTS (SELECT 1 FROM ingest_queue WHERE id <= $1)", &[&id]).await?;
            Ok(row.get(0))
        })
    }
}

/// In the transaction that stores them: deletes the claimed rows, and fails with
/// [`StoreError::ClaimLost`] (so that the transaction rolls back) when any of them is no
/// longer this claim's.
pub(super) async fn delete_claimed(tx: &Transaction<'_>, claims: &[QueueClaim]) -> Result<()> {
    for c in claims {
        if c.ids.is_empty() {
            continue;
        }
        let deleted = tx.execute("DELETE FROM ingest_queue WHERE id = ANY($1) AND claim = $2", &[&c.ids, &c.claim]).await?;
        if deleted != c.ids.len() as u64 {
            return Err(StoreError::ClaimLost);
        }
        tx.execute("DELETE FROM ingest_queue_data WHERE id = ANY($1)", &[&c.ids]).await?;
    }
    Ok(())
}
