//! The PostgreSQL backend: for installations that outgrow one machine, where several `sentry`
//! nodes share one database. The same interface as SQLite, the same rules (`crate::fold`), its
//! own schema and migrations (`postgres/schema_*.sql`).
//!
//! - Events are partitioned by the day they were received (`events_d<unix day>`); retention
//!   drops whole partitions. `event_ids` keeps the idempotency key across partitions.
//! - Payloads are zstd-compressed (with their tags, as in SQLite).
//! - The interface is blocking; the driver (tokio-postgres, pooled by deadpool) is async. Each
//!   call runs its future to completion on the calling thread while the store's own small
//!   runtime drives the connections, so a call works from any thread, like SQLite's.
//! - One writer thread per process commits batches; several processes' writers may run at
//!   once: each batch locks the rows of the groups it touches (`FOR UPDATE`), in one order.

mod accounts;
mod admin;
mod cleanup;
mod feedback;
mod health;
mod logs;
mod import;
mod migrate;
mod monitors;
mod orgs;
mod outbox;
mod owners;
mod queue;
mod read;
mod releases;
mod stream;
mod triage;
mod writer;

use std::future::Future;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;

use crate::{EventSink, Result, StoreError};

/// Connections per process: the writer holds one, pages and the alert engine share the rest.
const POOL_SIZE: usize = 8;

/// The PostgreSQL store. Cheap to share behind an `Arc`; every method is blocking.
pub struct PgStore {
    /// Drives the connections; `None` only while dropping.
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and applies pending
    /// migrations.
    pub fn open(url: &str) -> Result<PgStore> {
        let (url, root_cert) = take_root_cert(url);
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Invalid(format!("store.postgres_url is not a PostgreSQL URL (postgres://user:password@host:port/database): {e}"))
        })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("store-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("starting the PostgreSQL driver: {e}")))?;
        let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => Manager::from_config(config, tokio_postgres::NoTls, recycling),
            _ => Manager::from_config(config, tls(root_cert.as_deref())?, recycling),
        };
        let pool = {
            let _in = rt.enter();
            Pool::builder(manager)
                .max_size(POOL_SIZE)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .create_timeout(Some(std::time::Duration::from_secs(10)))
                .wait_timeout(Some(std::time::Duration::from_secs(30)))
                .build()
                .map_err(|e| StoreError::Backend(format!("the PostgreSQL pool: {e}")))?
        };
        let store = PgStore { rt: Some(rt), pool };
        store.block(async {
            let mut client = store.client().await?;
            migrate::migrate(&mut client).await
        })?;
        Ok(store)
    }

    /// Runs a future of this store to completion on the calling thread.
    pub(crate) fn block<F: Future>(&self, f: F) -> F::Output {
        let _in = self.rt.as_ref().map(|rt| rt.enter());
        futures_executor::block_on(f)
    }

    /// Runs `f` with a pooled connection, on the calling thread.
    pub(crate) fn with<T>(&self, f: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<T>) -> Result<T> {
        self.block(async {
            let mut client = self.client().await?;
            f(&mut client).await
        })
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| StoreError::Unavailable(format!("cannot reach PostgreSQL: {}", causes(&e))))
    }
}

impl PgStore {
    /// PostgreSQL's plan for a stream query, with sequential scans discouraged (the tables of a
    /// test are too small for the planner to want an index): the indexes it can use.
    pub fn explain_stream(&self, q: &crate::StreamQuery) -> Result<String> {
        let (sql, args) = stream::stream_sql(q);
        self.with(async |c| {
            let tx = c.transaction().await?;
            tx.batch_execute("SET LOCAL enable_seqscan = off").await?;
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args.iter().map(|a| a.as_sql()).collect();
            let rows = tx.query(&format!("EXPLAIN {sql}"), &params).await?;
            Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n"))
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which async code may not: let its threads end by themselves.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl crate::Store for PgStore {
    fn start_writer(&self, batch_max: usize) -> Result<Arc<dyn EventSink>> {
        let handle = self.rt.as_ref().map(|rt| rt.handle().clone()).ok_or_else(|| StoreError::Unavailable("closing".into()))?;
        Ok(Arc::new(writer::start(handle, self.pool.clone(), batch_max)))
    }

    fn queue(&self) -> Option<Arc<dyn crate::Queue>> {
        let rt = self.rt.as_ref()?.handle().clone();
        Some(Arc::new(queue::PgQueue { rt, pool: self.pool.clone() }))
    }
}

impl crate::Maintenance for PgStore {
    fn schema_version(&self) -> Result<(i64, i64)> {
        self.block(async {
            let client = self.client().await?;
            Ok((migrate::current_version(&client).await?, migrate::latest_version()))
        })
    }

    fn cleanup(&self, retention: &crate::Retention, progress: &mut dyn FnMut(u64)) -> Result<crate::Cleaned> {
        self.block(cleanup::cleanup(self, retention, progress))
    }

    fn expired_events(&self, retention: &crate::Retention) -> Result<u64> {
        self.block(cleanup::expired_events(self, retention))
    }

    fn storage_usage(&self) -> Result<crate::StorageUsage> {
        self.block(cleanup::storage_usage(self))
    }

    fn trim_to(&self, max_bytes: u64) -> Result<crate::Trimmed> {
        self.block(cleanup::trim_to(self, max_bytes))
    }

    /// Nothing here: dropping a day of events is not something to do after each batch. The
    /// server calls [`crate::Maintenance::trim_to`] every minute instead.
    fn set_size_cap(&self, _max_bytes: u64) {}

    fn spool_mark(&self, spool: &str) -> Result<Option<u64>> {
        self.block(async {
            let client = self.client().await?;
            let row = client.query_opt("SELECT position FROM spool_marks WHERE spool = $1", &[&spool]).await?;
            Ok(row.map(|r| r.get::<_, i64>(0) as u64))
        })
    }
}

/// The URL without its `sslrootcert=FILE` parameter (libpq's name, which the driver does not
/// read), and that file.
fn take_root_cert(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), None) };
    let mut cert = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("sslrootcert=") {
            Some(path) => {
                cert = Some(path.to_string());
                false
            }
            None => true,
        })
        .collect();
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    (url, cert)
}

/// TLS for `sslmode=prefer` (the default: used when the server offers it) and `require`: the
/// server's certificate is checked against the web's root authorities, or against the
/// authority in `sslrootcert` (a PEM file) when the URL names one.
fn tls(root_cert: Option<&str>) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| StoreError::Invalid(format!("sslrootcert: cannot read {path}: {e}")))?;
            let certs: Vec<_> = rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
                .collect::<std::result::Result<Vec<rustls::pki_types::CertificateDer<'static>>, _>>()
                .map_err(|e| StoreError::Invalid(format!("sslrootcert: {path} holds no PEM certificate: {e}")))?;
            if certs.is_empty() {
                return Err(StoreError::Invalid(format!("sslrootcert: {path} holds no PEM certificate")));
            }
            for c in certs {
                roots.add(c).map_err(|e| StoreError::Invalid(format!("sslrootcert: {path}: {e}")))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// An error with its causes, as one line: "connecting: TLS handshake: invalid certificate".
pub(crate) fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = cause.source();
    }
    text
}

/// PostgreSQL's errors, by what a caller can do about them: a lost connection, a server
/// shutting down, full disks, serialisation failures and deadlocks are `Unavailable` (retry
/// later), a broken unique or foreign key a `Conflict`, the rest `Backend`.
pub(crate) fn classify(e: tokio_postgres::Error) -> StoreError {
    let text = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => causes(&e),
    };
    let Some(code) = e.code() else {
        // No SQL state: the connection failed or closed.
        return StoreError::Unavailable(text);
    };
    let class = &code.code()[..2];
    if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::FOREIGN_KEY_VIOLATION {
        StoreError::Conflict(text)
    } else if matches!(class, "08" | "53" | "57" | "58" | "40") || *code == SqlState::LOCK_NOT_AVAILABLE {
        StoreError::Unavailable(text)
    } else {
        StoreError::Backend(text)
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        classify(e)
    }
}

/// A broken unique constraint as a `Conflict` that says what was taken; other errors as usual.
pub(crate) fn taken(e: tokio_postgres::Error, what: impl Into<String>) -> StoreError {
    match classify(e) {
        StoreError::Conflict(_) => StoreError::Conflict(what.into()),
        other => other,
    }
}
