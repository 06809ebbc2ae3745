//! Ferry's own tables, their versioned migrations and the advisory locks.
//!
//! Migration `n` (1-based) moves a database from version `n - 1` to `n`;
//! each applied version is a row of `ferry_schema_migrations`. All of them
//! run in one transaction that first takes the migration advisory lock, so
//! nodes starting at once queue up: the first applies what is missing, the
//! others then find nothing to do. DDL is transactional in PostgreSQL, so a
//! failed migration leaves the database as it was. A database migrated by a
//! newer build is refused rather than misread.

use tokio_postgres::Client;

use crate::error::{PgError, seq_from_sql};

/// `pg_advisory_xact_lock` key every write transaction takes first
/// ("FRRYWRIT"): one write at a time across all nodes.
pub(crate) const WRITE_LOCK: i64 = 0x4652_5259_5752_4954;

/// `pg_advisory_xact_lock` key of the migration transaction ("FRRYMIGR").
pub(crate) const MIGRATION_LOCK: i64 = 0x4652_5259_4D49_4752;

/// The `LISTEN`/`NOTIFY` channel announcing new change records.
pub(crate) const CHANGES_CHANNEL: &str = "ferry_changes";

/// The schema migrations, in order; the schema version is their count.
const MIGRATIONS: &[&str] = &[
    // 1: the key-value space, the change log and the sequence counter.
    // `bytea` compares as unsigned bytes (memcmp, then length) whatever the
    // collation, which is the store contract's key order.
    "CREATE TABLE ferry_kv (
         key bytea PRIMARY KEY,
         value bytea NOT NULL
     );
     CREATE TABLE ferry_changes (
         seq bigint PRIMARY KEY,
         payload bytea NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now()
     );
     CREATE TABLE ferry_meta (
         name text PRIMARY KEY,
         value bigint NOT NULL
     );
     INSERT INTO ferry_meta (name, value) VALUES ('last_seq', 0);",
    // 2: each node's change-feed position and heartbeat, so pruning keeps
    // what a live node has not read yet.
    "CREATE TABLE ferry_nodes (
         node_id text PRIMARY KEY,
         position bigint NOT NULL,
         heartbeat_at timestamptz NOT NULL DEFAULT now()
     );",
];

/// The schema version this build creates and understands.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The latest sequence number ever assigned (kept even when every change
/// record has been pruned, so numbering continues upward).
pub(crate) const LAST_SEQ: &str = "SELECT value FROM ferry_meta WHERE name = 'last_seq'";

/// Brings the schema to [`SCHEMA_VERSION`]; returns the migrations applied.
pub(crate) async fn migrate(client: &Client) -> Result<Vec<i32>, PgError> {
    let what = "migrate schema";
    let q = |e: tokio_postgres::Error| PgError::query(what, &e);
    let begun = client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED;
             SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
             CREATE TABLE IF NOT EXISTS ferry_schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(q);
    let result = match begun {
        Ok(()) => apply_missing(client).await,
        Err(e) => Err(e),
    };
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = client.batch_execute(end).await.map_err(q);
    let applied = result?;
    ended?;
    for version in &applied {
        tracing::info!(version, "applied postgres schema migration");
    }
    Ok(applied)
}

/// The body of [`migrate`], inside its locked transaction.
async fn apply_missing(client: &Client) -> Result<Vec<i32>, PgError> {
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM ferry_schema_migrations",
            &[],
        )
        .await
        .map_err(|e| PgError::query("read schema version", &e))?;
    let current: i32 = row
        .try_get(0)
        .map_err(|e| PgError::query("read schema version", &e))?;
    if current > SCHEMA_VERSION {
        return Err(PgError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    let mut applied = Vec::new();
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let version = i as i32 + 1;
        client
            .batch_execute(sql)
            .await
            .map_err(|e| PgError::query("apply schema migration", &e))?;
        client
            .execute(
                "INSERT INTO ferry_schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(|e| PgError::query("record schema migration", &e))?;
        applied.push(version);
    }
    Ok(applied)
}

/// The latest sequence number ever assigned.
pub(crate) async fn load_last_seq(client: &Client) -> Result<u64, PgError> {
    let row = client
        .query_one(LAST_SEQ, &[])
        .await
        .map_err(|e| PgError::query("read last sequence number", &e))?;
    seq_from_sql(
        row.try_get(0)
            .map_err(|e| PgError::query("read last sequence number", &e))?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_distinct_and_spell_their_names() {
        assert_ne!(WRITE_LOCK, MIGRATION_LOCK);
        assert_eq!(&WRITE_LOCK.to_be_bytes(), b"FRRYWRIT");
        assert_eq!(&MIGRATION_LOCK.to_be_bytes(), b"FRRYMIGR");
    }

    #[test]
    fn schema_version_counts_migrations() {
        assert_eq!(SCHEMA_VERSION as usize, MIGRATIONS.len());
        const { assert!(SCHEMA_VERSION >= 1) };
    }
}
