//! Schema migrations: an ordered list of SQL scripts, applied in one transaction each, recorded
//! in `schema_migrations`.

use rusqlite::Connection;

use crate::Result;

/// Every migration, in order. Append; never edit one that has shipped. Versions may have gaps
/// (branches take numbers ahead of time): each one not yet recorded is applied, in list order.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("schema.sql")),
    (2, include_str!("schema_2_dashboard.sql")),
    (3, include_str!("schema_3_notify.sql")),
    (4, include_str!("schema_4_counters.sql")),
    (5, include_str!("schema_5_store.sql")),
    (6, include_str!("schema_6_accounts.sql")),
    (8, include_str!("schema_8_spool.sql")),
    (9, include_str!("schema_9_releases.sql")),
    (10, include_str!("schema_10_items.sql")),
    (11, include_str!("schema_11_assignees.sql")),
    (12, include_str!("schema_12_triage.sql")),
    (16, include_str!("schema_16_resolution.sql")),
    (17, include_str!("schema_17_deleted_projects.sql")),
    (18, include_str!("schema_18_ownership.sql")),
    (19, include_str!("schema_19_logs.sql")),
    (20, include_str!("schema_20_monitors.sql")),
    (21, include_str!("schema_21_sessions.sql")),
];

pub fn latest_version() -> i64 {
    MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0)
}

pub fn current_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?)
}

/// Applies every migration the file has not recorded yet, in list order — not only those newer
/// than its highest version, so a version that arrives late (merged from another branch) is
/// still applied. Safe to call from several processes: each migration re-checks inside its own
/// write transaction.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)",
    )?;
    for (version, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let applied: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)", [version], |r| r.get(0))?;
        if !applied {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                rusqlite::params![version, crate::now()],
            )?;
            tracing::info!(version, "applied store migration");
        }
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_earlier_version_is_still_applied() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(current_version(&conn).unwrap(), latest_version());
        // A file that skipped version 1 (as if it arrived from another branch later).
        conn.execute("DELETE FROM schema_migrations WHERE version = 1", []).unwrap();
        conn.execute_batch("DROP TABLE item_counts").unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        // Version 1 is re-run (and here collides with its own tables): proof that it was not skipped.
        assert!(err.contains("already exists"), "{err}");
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64);
    }
}
