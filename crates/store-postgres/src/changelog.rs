//! The shared change log's statements: reading records, recording each
//! node's position, and pruning only what every live node has read.
//!
//! `ferry_nodes` (migration 2) holds one row per connected store: its id,
//! the highest position it reported and when. Pruning deletes below the
//! caller's bound *and* below the lowest position among nodes heard from
//! within [`crate::PostgresConfig::node_timeout`]; rows silent for a day
//! are forgotten (every process is a new node id).

use std::time::Duration;

use deadpool_postgres::Object;
use ferry_store::Change;

use crate::error::{PgError, seq_from_sql, seq_to_sql};

const CHANGES_SINCE: &str =
    "SELECT seq, payload FROM ferry_changes WHERE seq > $1 ORDER BY seq LIMIT $2";
/// Deletes below `$1` and below the lowest position of a node whose
/// heartbeat is younger than `$2` seconds (a node that read up to `p` no
/// longer needs `p` and below).
const PRUNE_CHANGES: &str = "DELETE FROM ferry_changes WHERE seq < LEAST($1::bigint,
     coalesce((SELECT min(position) + 1 FROM ferry_nodes
               WHERE heartbeat_at > now() - make_interval(secs => $2::float8)), $1::bigint))";
/// Forgets nodes silent for a day.
const FORGET_NODES: &str = "DELETE FROM ferry_nodes WHERE heartbeat_at < now() - interval '1 day'";
/// Records a node's position and heartbeat; the position never moves back.
const REPORT_POSITION: &str = "INSERT INTO ferry_nodes (node_id, position, heartbeat_at)
     VALUES ($1, $2, now())
     ON CONFLICT (node_id) DO UPDATE
     SET position = GREATEST(ferry_nodes.position, EXCLUDED.position), heartbeat_at = now()";

/// Up to `limit` records after `after`, in order.
pub(crate) async fn read(conn: &Object, after: u64, limit: usize) -> Result<Vec<Change>, PgError> {
    let what = "read change records";
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let statement = conn
        .prepare_cached(CHANGES_SINCE)
        .await
        .map_err(|e| PgError::query(what, &e))?;
    let rows = conn
        .query(&statement, &[&seq_to_sql(after), &limit])
        .await
        .map_err(|e| PgError::query(what, &e))?;
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.try_get(0).map_err(|e| PgError::query(what, &e))?;
        let payload: Vec<u8> = row.try_get(1).map_err(|e| PgError::query(what, &e))?;
        changes.push(Change {
            seq: seq_from_sql(seq)?,
            payload,
        });
    }
    Ok(changes)
}

/// Deletes records below `before` that no node heard from within
/// `node_timeout` still needs.
pub(crate) async fn prune(
    conn: &Object,
    before: u64,
    node_timeout: Duration,
) -> Result<(), PgError> {
    let what = "prune change records";
    let statement = conn
        .prepare_cached(PRUNE_CHANGES)
        .await
        .map_err(|e| PgError::query(what, &e))?;
    conn.execute(
        &statement,
        &[&seq_to_sql(before), &node_timeout.as_secs_f64()],
    )
    .await
    .map_err(|e| PgError::query(what, &e))?;
    conn.execute(FORGET_NODES, &[])
        .await
        .map_err(|e| PgError::query(what, &e))?;
    Ok(())
}

/// Records that `node_id` has read up to `seq`, now.
pub(crate) async fn report(conn: &Object, node_id: &str, seq: u64) -> Result<(), PgError> {
    let what = "report feed position";
    let statement = conn
        .prepare_cached(REPORT_POSITION)
        .await
        .map_err(|e| PgError::query(what, &e))?;
    conn.execute(&statement, &[&node_id, &seq_to_sql(seq)])
        .await
        .map_err(|e| PgError::query(what, &e))?;
    Ok(())
}
