//! Moving an installation from one backend to another (`sentry migrate-store`): what is copied,
//! in which order, and the backend-neutral cells rows travel in. The source backend exports
//! rows table by table (`sqlite::SqliteStore::export`), the target imports them
//! (`postgres::PgStore::import_from_sqlite`), keeping every id, so that links, keys and
//! counts stay as they were.

/// One value of a row, as it travels between backends.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// The tables copied as rows, parents before children. Events travel apart (their payloads are
/// decompressed and compressed again for the target); spool marks stay with the spool they
/// describe, and compression dictionaries with the file that trained them.
pub const TABLES: &[&str] = &[
    "organizations",
    "users",
    "teams",
    "projects",
    "project_teams",
    "project_keys",
    "members",
    "team_members",
    "api_tokens",
    "invitations",
    "audit_log",
    "org_sso",
    "sessions",
    "setup_tokens",
    "groups",
    "group_tags",
    "group_buckets",
    "group_hours",
    "group_days",
    "group_durations",
    "project_minutes",
    "project_hours",
    "project_tags",
    "group_activity",
    "group_hashes",
    "item_counts",
    "notify_outbox",
    "notify_cursors",
    "notify_throttle",
    "feedback",
    "client_reports",
    "releases",
    "release_projects",
    "deploys",
    "upload_chunks",
    "artifacts",
    "ownership_rules",
    "release_sessions",
    "release_session_counts",
    "logs",
    "monitors",
    "monitor_runs",
];

/// What a source hands each chunk of a table to: the column names, and the rows.
pub type OnRows<'a> = dyn FnMut(&[String], Vec<Vec<Cell>>) -> crate::Result<()> + 'a;

/// Rows per chunk: one transaction each on the target.
pub const CHUNK: usize = 2000;

/// How far a copy is, for a progress line: the table, rows copied of it, rows it has.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress<'a> {
    pub table: &'a str,
    pub done: u64,
    pub total: u64,
}

/// What a finished copy found: each table's rows in the source and in the target.
#[derive(Clone, Debug, PartialEq)]
pub struct Copied {
    pub tables: Vec<(String, u64, u64)>,
}

impl Copied {
    /// The tables whose counts differ.
    pub fn mismatches(&self) -> Vec<&(String, u64, u64)> {
        self.tables.iter().filter(|(_, a, b)| a != b).collect()
    }
}
