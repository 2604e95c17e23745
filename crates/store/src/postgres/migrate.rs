//! Schema migrations: an ordered list of SQL scripts, each applied in one transaction and
//! recorded in `schema_migrations`. Several nodes may start at once: an advisory lock lets one
//! migrate while the others wait, then find nothing left to do.

use crate::Result;

/// Every migration, in order. Append; never edit one that has shipped.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("schema_1.sql")),
    (2, include_str!("schema_2_items.sql")),
    (3, include_str!("schema_3_releases.sql")),
    (4, include_str!("schema_4_assignees.sql")),
    (5, include_str!("schema_5_triage.sql")),
    (9, include_str!("schema_9_resolution.sql")),
    (10, include_str!("schema_10_deleted_projects.sql")),
    (11, include_str!("schema_11_ownership.sql")),
    (12, include_str!("schema_12_logs.sql")),
    (13, include_str!("schema_13_monitors.sql")),
    (14, include_str!("schema_14_queue.sql")),
    (15, include_str!("schema_15_sessions.sql")),
];

/// The advisory lock taken while migrating (any number, the same in every node).
const MIGRATION_LOCK: i64 = 0x5e47_0001;

pub fn latest_version() -> i64 {
    MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0)
}

pub async fn current_version(client: &tokio_postgres::Client) -> Result<i64> {
    let row = client.query_one("SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations", &[]).await?;
    Ok(row.get(0))
}

/// Applies every migration the database has not recorded yet, in list order.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
    let done = apply(client).await;
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await;
    done?;
    unlocked?;
    Ok(())
}

async fn apply(client: &mut tokio_postgres::Client) -> Result<()> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY, applied_at double precision NOT NULL)")
        .await?;
    for (version, sql) in MIGRATIONS {
        let tx = client.transaction().await?;
        let applied: bool = tx.query_one("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", &[version]).await?.get(0);
        if !applied {
            tx.batch_execute(sql).await?;
            tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", &[version, &crate::now()]).await?;
            tracing::info!(version, "applied PostgreSQL store migration");
        }
        tx.commit().await?;
    }
    Ok(())
}
