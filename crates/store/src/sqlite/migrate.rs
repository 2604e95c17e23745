//! Schema migrations: an ordered list of SQL scripts, applied in one transaction each, recorded
//! in `schema_migrations`.

use rusqlite::Connection;

use crate::Result;

/// Every migration, in order. Append; never edit one that has shipped.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("schema.sql")),
    (2, include_str!("schema_2_dashboard.sql")),
];

pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

pub fn current_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?)
}

/// Applies every migration newer than the file's version. Safe to call from several processes:
/// each migration re-checks the version inside its own write transaction.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)",
    )?;
    for (version, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if current_version(&tx)? < *version {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                rusqlite::params![version, super::now()],
            )?;
            tracing::info!(version, "applied store migration");
        }
        tx.commit()?;
    }
    Ok(())
}
