//! The Store: projects, client keys, events, groups and their statistics, behind one API.
//! SQLite is the default backend (one file, WAL, one writer thread that commits in batches);
//! PostgreSQL and Redis slot in behind the same types later.
//!
//! Architecture invariant: only this crate speaks SQL. Callers hand it finished values
//! ([`NewEvent`]) and get typed rows back; a write is acknowledged only after its batch has
//! been committed and fsynced.

mod model;
mod query;
pub mod sqlite;

pub use model::*;
pub use query::{GroupQuery, Sort, StatusFilter};
pub use sqlite::{
    Cleaned, Cursor, HistogramBar, Resolution, Session, SqliteStore, StreamPage, StreamQuery, StreamRow, Trending, User,
    WriterHandle,
};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("could not open the data file {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("the store is shutting down")]
    ShuttingDown,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
