//! The Store: projects, client keys, events, groups and their statistics, accounts and the
//! notification outbox, behind one backend-neutral interface ([`Store`], [`EventSink`]).
//!
//! - `api`: the traits every backend implements, and [`off_thread`], the bridge from async code.
//! - `model`, `query`: the values and the one query model (the stream, with keyset cursors).
//! - `orgs`: the values of organisations: roles, teams, members, tokens, invitations, audit.
//! - `releases`: the values of releases, deploys, uploaded artifacts and upload chunks.
//! - `fold`: the event model's rules, pure: how a batch of new events changes the groups it
//!   touches (clock-skew clamp, new groups, regressions, priority, counter deltas, activity).
//!   A backend loads the groups' state, calls [`fold::fold`], and applies the plan.
//! - `owners`: ownership rules (Sentry's syntax): parsed, checked and matched against an event.
//! - `logs`: the values of structured logs: what is stored, and the query that reads them.
//! - `monitors`: cron monitors' schedules (crontab in a time zone, or an interval), check-ins and runs.
//! - `triage`: the values of working an issue: snoozes, a group's grouping hashes.
//! - `histogram`: the duration buckets and their quantiles.
//! - `batcher`: the writer thread every backend shares: batches of what callers queued, one
//!   transaction each, answers after the commit.
//! - `sqlite`: the default backend (one file, WAL, one writer thread that commits in batches).
//! - `postgres`: the backend several nodes share (partitioned events, the same rules).
//!
//! Architecture invariant: only this crate speaks SQL, only `sqlite` names SQLite and only
//! `postgres` names PostgreSQL. Callers
//! hand it finished values ([`NewEvent`]) and get typed rows back; a write is acknowledged only
//! after its batch has been committed and fsynced.

mod api;
mod batcher;
mod checks;
mod feedback;
mod logs;
pub mod copy;
pub mod fold;
pub mod health;
pub mod histogram;
mod model;
mod monitors;
mod orgs;
pub mod owners;
pub mod queue;
mod query;
pub mod postgres;
mod releases;
pub mod sqlite;
mod triage;

pub use checks::slugify;
pub use api::{Accounts, Admin, EventSink, Feedback, Health, Maintenance, Orgs, Outbox, Ownership, Reads, Releases, Store, Triage, Monitors, NewItems, WriteBatch, WriteTicket, off_thread, purge_deleted_projects};
pub use feedback::{ClientReportSum, FeedbackRow, NewClientReport, NewFeedback};
pub use api::Logs;
pub use logs::{LOG_LEVELS, LogCursor, LogQuery, LogRow, MAX_LOG_PAGE, NewLog};
pub use model::*;
pub use health::{HealthDay, NewSession, NewSessionCounts, ReleaseHealth, SessionStatus};
pub use monitors::*;
pub use queue::{Queue, QueueClaim, QueueDepth, QueuedRecord};
pub use orgs::*;
pub use releases::*;
pub use triage::*;
pub use query::{
    Assignee, AssigneeCondition, Cmp, Comparison, Cursor, GroupField, HistogramBar, Resolution, Sort, StatusFilter, StreamPage, StreamQuery,
    StreamRow, TagCondition, Trending,
};

/// Where the data lives: the one choice of backend, made once by the caller that wires the
/// process together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file (created, with its directory, when missing).
    Sqlite { path: std::path::PathBuf },
    /// A PostgreSQL database (`postgres://user:password@host:port/database`), shared by every
    /// node that names it; its schema is created or migrated on open.
    Postgres { url: String },
}

/// Opens a backend, applying pending migrations.
pub fn open(backend: &Backend) -> Result<std::sync::Arc<dyn Store>> {
    match backend {
        Backend::Sqlite { path } => Ok(std::sync::Arc::new(sqlite::SqliteStore::open(path)?)),
        Backend::Postgres { url } => Ok(std::sync::Arc::new(postgres::PgStore::open(url)?)),
    }
}

/// Copies the SQLite store at `sqlite` into the PostgreSQL database at `postgres_url` (its
/// schema made or migrated first), keeping every id; resumable; says what each table holds in
/// both at the end. Nothing may write to either meanwhile.
pub fn migrate_sqlite_to_postgres(
    sqlite: &std::path::Path,
    postgres_url: &str,
    progress: &mut dyn FnMut(copy::Progress<'_>),
) -> Result<copy::Copied> {
    let from = sqlite::SqliteStore::open(sqlite)?;
    let to = postgres::PgStore::open(postgres_url)?;
    to.import_from_sqlite(&from, progress)
}

/// Everything that can go wrong in the store, by what a caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// It exists already (a taken slug or email).
    #[error("{0}")]
    Conflict(String),
    /// The input is not acceptable; the message says why, for the person who sent it.
    #[error("{0}")]
    Invalid(String),
    /// The store cannot serve now (disk full or read-only, busy, shutting down): retry later.
    #[error("the data store is unavailable: {0}")]
    Unavailable(String),
    /// A write carried a claim on queued records that another node has taken since (its lease
    /// ran out): nothing was written; the other node stores them.
    #[error("the claim on queued records was lost to another node")]
    ClaimLost,
    /// Anything else the backend reported: a bug or a damaged data file.
    #[error("data store error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Unix time in seconds: the one clock of the store and its callers.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Tags as stored with an event: a JSON array of `[key, value]` pairs.
pub(crate) fn tags_json(tags: &[(String, String)], out: &mut Vec<u8>) {
    // Serialising strings can't fail.
    let _ = serde_json::to_writer(&mut *out, tags);
}
