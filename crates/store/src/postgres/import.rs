//! Importing a SQLite installation (`sentry migrate-store`): every copied table's rows with
//! their ids, then the events (decompressed from SQLite's dictionaries, compressed again, into
//! their day partitions, with their idempotency keys), then the sequences past the highest ids.
//!
//! Resumable: rows already there are left alone (`ON CONFLICT DO NOTHING`), and events start
//! after the highest one copied. Verified: each table's count in both, at the end.

use std::collections::HashSet;

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::PgStore;
use super::writer::{LEVEL, day_of, ensure_days};
use crate::copy::{CHUNK, Cell, Copied, Progress, TABLES};
use crate::sqlite::SqliteStore;
use crate::{EventRow, Result, StoreError};

/// A column's values as one typed array, for `unnest`.
enum Column {
    Int(Vec<Option<i64>>),
    Real(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Bytes(Vec<Option<Vec<u8>>>),
    Bool(Vec<Option<bool>>),
}

impl Column {
    fn of(udt: &str) -> Result<Column> {
        Ok(match udt {
            "int8" | "int4" | "int2" => Column::Int(Vec::new()),
            "float8" | "float4" => Column::Real(Vec::new()),
            "text" | "varchar" => Column::Text(Vec::new()),
            "bytea" => Column::Bytes(Vec::new()),
            "bool" => Column::Bool(Vec::new()),
            other => return Err(StoreError::Backend(format!("a column of type {other} can't be copied"))),
        })
    }

    fn cast(&self) -> &'static str {
        match self {
            Column::Int(_) => "int8[]",
            Column::Real(_) => "float8[]",
            Column::Text(_) => "text[]",
            Column::Bytes(_) => "bytea[]",
            Column::Bool(_) => "bool[]",
        }
    }

    fn push(&mut self, cell: Cell) {
        match (self, cell) {
            (Column::Int(v), Cell::Int(i)) => v.push(Some(i)),
            (Column::Int(v), Cell::Real(f)) => v.push(Some(f as i64)),
            (Column::Real(v), Cell::Real(f)) => v.push(Some(f)),
            (Column::Real(v), Cell::Int(i)) => v.push(Some(i as f64)),
            (Column::Text(v), Cell::Text(t)) => v.push(Some(t)),
            (Column::Text(v), Cell::Int(i)) => v.push(Some(i.to_string())),
            (Column::Text(v), Cell::Real(f)) => v.push(Some(f.to_string())),
            (Column::Bytes(v), Cell::Blob(b)) => v.push(Some(b)),
            (Column::Bytes(v), Cell::Text(t)) => v.push(Some(t.into_bytes())),
            (Column::Bool(v), Cell::Int(i)) => v.push(Some(i != 0)),
            (Column::Int(v), _) => v.push(None),
            (Column::Real(v), _) => v.push(None),
            (Column::Text(v), _) => v.push(None),
            (Column::Bytes(v), _) => v.push(None),
            (Column::Bool(v), _) => v.push(None),
        }
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Column::Int(v) => v,
            Column::Real(v) => v,
            Column::Text(v) => v,
            Column::Bytes(v) => v,
            Column::Bool(v) => v,
        }
    }
}

async fn count(c: &impl GenericClient, table: &str) -> Result<u64> {
    Ok(c.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[]).await?.get::<_, i64>(0).max(0) as u64)
}

impl PgStore {
    /// Copies the SQLite store `from` into this database (see the module's comment). The server
    /// must not be writing to either meanwhile.
    pub fn import_from_sqlite(&self, from: &SqliteStore, progress: &mut dyn FnMut(Progress<'_>)) -> Result<Copied> {
        let mut c = self.block(self.client())?;
        // A database nobody used yet holds only the first organisation and team its schema
        // made: they give way to the copied ones (same ids).
        self.block(async {
            let used = count(&c, "users").await? + count(&c, "projects").await?;
            if used == 0 {
                c.batch_execute("DELETE FROM teams; DELETE FROM organizations;").await?;
            }
            Ok::<_, StoreError>(())
        })?;
        let mut tables = Vec::new();
        for table in TABLES {
            let total = from.count_rows(table)?;
            let types: Vec<(String, String)> = self.block(async {
                let rows = c
                    .query(
                        "SELECT column_name, udt_name FROM information_schema.columns
                         WHERE table_schema = current_schema() AND table_name = $1 AND is_generated = 'NEVER'",
                        &[table],
                    )
                    .await?;
                Ok::<_, StoreError>(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })?;
            let mut done = 0;
            progress(Progress { table, done, total });
            from.export(table, CHUNK, &mut |names, rows| {
                let n = rows.len() as u64;
                self.block(insert_rows(&mut c, table, &types, names, rows))?;
                done += n;
                progress(Progress { table, done, total });
                Ok(())
            })?;
            let there = self.block(count(&c, table))?;
            tables.push((table.to_string(), total, there));
        }
        // Events, after the last one copied by an earlier run.
        let total = from.count_rows("events")?;
        let after: i64 = self.block(async { Ok::<_, StoreError>(c.query_one("SELECT COALESCE(MAX(id), 0)::bigint FROM events", &[]).await?.get(0)) })?;
        let mut done = self.block(count(&c, "events"))?;
        let mut days = HashSet::new();
        let mut zstd = zstd::bulk::Compressor::new(LEVEL).map_err(|e| StoreError::Backend(format!("zstd: {e}")))?;
        progress(Progress { table: "events", done, total });
        from.export_events(after, CHUNK, &mut |events| {
            let n = events.len() as u64;
            self.block(insert_events(&mut c, &mut days, &mut zstd, events))?;
            done += n;
            progress(Progress { table: "events", done, total });
            Ok(())
        })?;
        let there = self.block(count(&c, "events"))?;
        tables.push(("events".to_string(), total, there));
        // New rows continue after the copied ids.
        self.block(async {
            let seqs = c
                .query(
                    "SELECT table_name FROM information_schema.columns
                     WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES'",
                    &[],
                )
                .await?;
            for r in seqs {
                let table: String = r.get(0);
                c.batch_execute(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), 1))"
                ))
                .await?;
            }
            c.batch_execute("SELECT setval('events_id_seq', GREATEST((SELECT COALESCE(MAX(id), 0) FROM events), 1))").await?;
            // The copied tag rows were counted again by the trigger: count users once more.
            c.batch_execute("UPDATE groups g SET users = (SELECT COUNT(*) FROM group_tags t WHERE t.group_id = g.id AND t.key = 'user')").await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(Copied { tables })
    }
}

async fn insert_rows(c: &mut deadpool_postgres::Object, table: &str, types: &[(String, String)], names: &[String], rows: Vec<Vec<Cell>>) -> Result<()> {
    // The source's columns that the target has, in the source's order.
    let mut cols: Vec<(usize, String, Column)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if let Some((_, udt)) = types.iter().find(|(n, _)| n == name) {
            cols.push((i, name.clone(), Column::of(udt)?));
        }
    }
    for row in rows {
        let mut row: Vec<Option<Cell>> = row.into_iter().map(Some).collect();
        for (i, _, col) in &mut cols {
            col.push(row[*i].take().unwrap_or(Cell::Null));
        }
    }
    let list = cols.iter().map(|(_, n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    let arrays = cols.iter().enumerate().map(|(k, (_, _, c))| format!("${}::{}", k + 1, c.cast())).collect::<Vec<_>>().join(", ");
    let params: Vec<&(dyn ToSql + Sync)> = cols.iter().map(|(_, _, c)| c.as_sql()).collect();
    let tx = c.transaction().await?;
    tx.execute(&format!("INSERT INTO {table} ({list}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING"), &params).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_events(
    c: &mut deadpool_postgres::Object,
    days: &mut HashSet<i64>,
    zstd: &mut zstd::bulk::Compressor<'static>,
    events: Vec<(EventRow, Option<String>)>,
) -> Result<()> {
    let (events, hashes): (Vec<EventRow>, Vec<Option<String>>) = events.into_iter().unzip();
    let wanted: HashSet<i64> = events.iter().map(|e| day_of(e.received)).collect();
    ensure_days(c, days, wanted).await?;
    let mut blobs = Vec::with_capacity(events.len());
    let mut tags_lens = Vec::with_capacity(events.len());
    let mut ids = Vec::with_capacity(events.len());
    for e in &events {
        let mut blob = Vec::new();
        crate::tags_json(&e.tags, &mut blob);
        tags_lens.push(blob.len() as i64);
        blob.extend_from_slice(&e.payload);
        blobs.push(zstd.compress(&blob).map_err(|err| StoreError::Backend(format!("zstd: {err}")))?);
        ids.push(hex::decode(&e.event_id).map_err(|_| StoreError::Backend(format!("event id {} is not hex", e.event_id)))?);
    }
    let tx = c.transaction().await?;
    let projects: Vec<i64> = events.iter().map(|e| e.project_id.0).collect();
    let received: Vec<f64> = events.iter().map(|e| e.received).collect();
    tx.execute(
        "INSERT INTO event_ids (project_id, event_id, received) SELECT * FROM unnest($1::int8[], $2::bytea[], $3::float8[])
         ON CONFLICT DO NOTHING",
        &[&projects, &ids, &received],
    )
    .await?;
    tx.execute(
        "INSERT INTO events (id, project_id, event_id, group_id, kind, timestamp, received, level, title, time_spent, payload, tags_len, hash)
         SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[], $4::int8[], $5::text[], $6::float8[], $7::float8[], $8::text[],
                              $9::text[], $10::float8[], $11::bytea[], $12::int8[], $13::text[])",
        &[
            &events.iter().map(|e| e.position).collect::<Vec<i64>>(),
            &projects,
            &ids,
            &events.iter().map(|e| e.group_id.0).collect::<Vec<i64>>(),
            &events.iter().map(|e| e.kind.as_str()).collect::<Vec<&str>>(),
            &events.iter().map(|e| e.timestamp).collect::<Vec<f64>>(),
            &received,
            &events.iter().map(|e| e.level.as_str()).collect::<Vec<&str>>(),
            &events.iter().map(|e| e.title.as_str()).collect::<Vec<&str>>(),
            &events.iter().map(|e| e.time_spent).collect::<Vec<Option<f64>>>(),
            &blobs,
            &tags_lens,
            &hashes,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
