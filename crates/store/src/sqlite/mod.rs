//! The SQLite backend: one file in WAL mode, fsync on every commit (`synchronous=FULL`), one
//! writer thread that commits events in batches, and a small pool of connections for reads and
//! for rare administrative writes (projects, keys, status changes).
//!
//! Every transaction that writes starts `IMMEDIATE`: it takes the write lock first, waiting up
//! to the busy timeout for it, instead of reading first and failing at once with "database is
//! locked" when another process (the server, a CLI command) wrote in between.

mod accounts;
mod admin;
mod cleanup;
mod feedback;
mod health;
mod logs;
mod monitors;
mod migrate;
mod orgs;
mod outbox;
mod owners;
mod payload;
mod read;
mod releases;
mod stream;
mod triage;
mod writer;


use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, ErrorCode};

use crate::{Cleaned, EventSink, Result, StoreError};

/// The SQLite store. Cheap to share behind an `Arc`; every method is blocking (call it from a
/// blocking thread in async code).
pub struct SqliteStore {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
    payloads: payload::PayloadReader,
    /// `store.max_bytes` (0: none), kept by the writer after each batch.
    size_cap: Arc<std::sync::atomic::AtomicU64>,
}

/// A pooled connection, returned to the pool on drop.
pub(crate) struct Pooled<'a> {
    store: &'a SqliteStore,
    conn: Option<Connection>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let (Some(conn), Ok(mut pool)) = (self.conn.take(), self.store.pool.lock())
            && pool.len() < 8
        {
            pool.push(conn);
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("could not create the data directory {}: {e}", dir.display())))?;
        }
        let store = SqliteStore {
            path: path.to_path_buf(),
            pool: Mutex::new(Vec::new()),
            payloads: payload::PayloadReader::default(),
            size_cap: Arc::default(),
        };
        let mut conn = store.connect()?;
        migrate::migrate(&mut conn)?;
        store.pool.lock().map_err(|_| StoreError::Backend("connection pool poisoned".into()))?.push(conn);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn connect(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path).map_err(|e| {
            StoreError::Unavailable(format!("could not open the data file {}: {e}", self.path.display()))
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Takes effect only when the file is created. 4 KiB pages: every commit rewrites each page
        // it touches into the WAL (the event-id index alone touches about one page per event, at
        // random), so small pages keep the bytes written and synced per commit low. Measured at 8
        // connections: 16 KiB pages wrote about 3x the bytes and stored 15-40 % fewer events/s.
        conn.pragma_update(None, "page_size", 4096)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(conn)
    }

    pub(crate) fn conn(&self) -> Result<Pooled<'_>> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        Ok(Pooled { store: self, conn: Some(conn) })
    }

}

impl crate::Store for SqliteStore {
    /// Starts the writer thread. Events are written only through it.
    fn start_writer(&self, batch_max: usize) -> Result<Arc<dyn EventSink>> {
        let conn = self.connect()?;
        let payloads = payload::PayloadWriter::load(&conn)?;
        Ok(Arc::new(writer::start(conn, payloads, batch_max.max(1), self.size_cap.clone())))
    }
}

impl crate::Maintenance for SqliteStore {
    fn schema_version(&self) -> Result<(i64, i64)> {
        self.schema_version_impl()
    }

    fn cleanup(&self, retention: &crate::Retention, progress: &mut dyn FnMut(u64)) -> Result<Cleaned> {
        self.cleanup_impl(retention, progress)
    }

    fn expired_events(&self, retention: &crate::Retention) -> Result<u64> {
        self.expired_events_impl(retention)
    }

    fn storage_usage(&self) -> Result<crate::StorageUsage> {
        self.storage_usage_impl()
    }

    fn trim_to(&self, max_bytes: u64) -> Result<crate::Trimmed> {
        self.trim_to_impl(max_bytes)
    }

    /// The writer checks the file's used pages after each batch (two pragmas) and trims then.
    fn set_size_cap(&self, max_bytes: u64) {
        self.size_cap.store(max_bytes, std::sync::atomic::Ordering::Relaxed);
    }

    fn spool_mark(&self, spool: &str) -> Result<Option<u64>> {
        self.spool_mark_impl(spool)
    }
}

/// SQLite's errors, by what a caller can do about them: a full, read-only or busy file is
/// `Unavailable` (retry later), a broken constraint a `Conflict`, the rest `Backend`.
pub(crate) fn classify(e: rusqlite::Error) -> StoreError {
    let text = e.to_string();
    match e.sqlite_error_code() {
        Some(
            ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory
            | ErrorCode::TooBig,
        ) => StoreError::Unavailable(text),
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(text),
        _ => StoreError::Backend(text),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        classify(e)
    }
}

impl SqliteStore {
    /// The rows of one table (in `crate::copy::TABLES`), in chunks of `chunk`, with the column
    /// names first: for copying to another backend.
    pub(crate) fn export(
        &self,
        table: &str,
        chunk: usize,
        f: &mut crate::copy::OnRows<'_>,
    ) -> Result<()> {
        use crate::copy::Cell;
        use rusqlite::types::ValueRef;
        if !crate::copy::TABLES.contains(&table) {
            return Err(StoreError::Invalid(format!("{table} is not a table that is copied")));
        }
        let conn = self.conn()?;
        let mut st = conn.prepare(&format!("SELECT * FROM {table}"))?;
        // The generated column (`ts_avg`) is computed again by the target: leave it out.
        let names: Vec<String> = st.column_names().map(str::to_string).collect();
        let keep: Vec<usize> = (0..names.len()).filter(|i| names[*i] != "ts_avg").collect();
        let kept: Vec<String> = keep.iter().map(|i| names[*i].clone()).collect();
        let mut rows = st.query([])?;
        let mut out = Vec::with_capacity(chunk);
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(keep.len());
            for i in &keep {
                row.push(match r.get_ref(*i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Real(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                });
            }
            out.push(row);
            if out.len() >= chunk {
                f(&kept, std::mem::take(&mut out))?;
            }
        }
        if !out.is_empty() {
            f(&kept, out)?;
        }
        Ok(())
    }

    /// Rows in a copied table, or events.
    pub(crate) fn count_rows(&self, table: &str) -> Result<u64> {
        if table != "events" && !crate::copy::TABLES.contains(&table) {
            return Err(StoreError::Invalid(format!("{table} is not a table that is copied")));
        }
        let conn = self.conn()?;
        Ok(conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0))?.max(0) as u64)
    }

    /// Events with a position (row id) after `after`, oldest first, decompressed, in chunks,
    /// each with its own grouping hash when it has one (an event of a merged group).
    pub(crate) fn export_events(&self, after: i64, chunk: usize, f: &mut dyn FnMut(Vec<(crate::EventRow, Option<String>)>) -> Result<()>) -> Result<()> {
        let conn = self.conn()?;
        let mut after = after;
        loop {
            let raws = {
                let mut st = conn.prepare_cached(&format!(
                    "SELECT {} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
                    read::EVENT_COLUMNS
                ))?;
                st.query_map(rusqlite::params![after, chunk as i64], read::raw_event)?.collect::<rusqlite::Result<Vec<_>>>()?
            };
            if raws.is_empty() {
                return Ok(());
            }
            let events: Vec<crate::EventRow> = raws.into_iter().map(|raw| self.finish_event(&conn, raw)).collect();
            let (first, last) = (events.first().map_or(after, |e| e.position), events.last().map_or(after, |e| e.position));
            let mut hashes: std::collections::HashMap<i64, String> = {
                let mut st = conn.prepare_cached("SELECT id, hash FROM events WHERE id BETWEEN ?1 AND ?2 AND hash IS NOT NULL")?;
                st.query_map(rusqlite::params![first, last], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
            };
            after = last;
            f(events
                .into_iter()
                .map(|e| {
                    let hash = hashes.remove(&e.position);
                    (e, hash)
                })
                .collect())?;
        }
    }
}
