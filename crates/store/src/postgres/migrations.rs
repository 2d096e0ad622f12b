//! The PostgreSQL schema and its migrations, applied when a node connects.

use deadpool_postgres::Pool;
use switchboard_core::time::now_ms;

use super::error::Fail;

/// Arbitrary key of the advisory lock that serialises migrations of nodes starting together.
const MIGRATION_LOCK: i64 = 0x5357_4954_4348_0001;
/// Schema migrations, applied in order; each version once, recorded in `schema_migrations`.
/// Append only: a node that applied version N never runs it again, so an edit to an applied
/// migration would never reach it.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("schema.sql")),
    (2, include_str!("schema_v2.sql")),
    (3, include_str!("schema_v3.sql")),
    (4, include_str!("schema_v4.sql")),
    (5, include_str!("schema_v5.sql")),
    (6, include_str!("schema_v6.sql")),
    (7, include_str!("schema_v7.sql")),
    (8, include_str!("schema_v8.sql")),
    (9, include_str!("schema_v9.sql")),
    (10, include_str!("schema_v10.sql")),
    (11, include_str!("schema_v11.sql")),
    (12, include_str!("schema_v12.sql")),
    (13, include_str!("schema_v13.sql")),
    (14, include_str!("schema_v14.sql")),
    (15, include_str!("schema_v15.sql")),
    (16, include_str!("schema_v16.sql")),
    (17, include_str!("schema_v17.sql")),
    (18, include_str!("schema_v18.sql")),
    (19, include_str!("schema_v19.sql")),
    (20, include_str!("schema_v20.sql")),
];

/// Brings the schema up to date. An advisory lock serialises nodes that start together;
/// `schema_migrations` records each applied version so a migration never runs twice. Every
/// version not recorded is applied, in order, not only those above the highest recorded: a
/// migration numbered below one that is already applied (two branches merged) still runs.
pub(super) async fn migrate(pool: &Pool) -> Result<(), Fail> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )",
    )
    .await?;
    let mut applied = std::collections::HashSet::new();
    for row in tx.query("SELECT version FROM schema_migrations", &[]).await? {
        applied.insert(row.try_get::<_, i32>(0)?);
    }
    let current = applied.iter().copied().max().unwrap_or(0);
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", &[version, &now_ms()])
            .await?;
        tracing::info!(version, "applied PostgreSQL schema migration");
    }
    let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > latest {
        // A newer node migrated the database. Migrations only add, so keep serving.
        tracing::warn!(current, latest, "the database schema is newer than this build");
    }
    tx.commit().await?;
    Ok(())
}
