//! Write permissions (upstream's `checkWritePermission`), checked per
//! changed entity once every write of the transaction is applied.
//!
//! | change | checks | entity tested |
//! |---|---|---|
//! | insert of a new id | `insert` | the new entity |
//! | update, or insert over an existing id | `update`, then `postUpdate` | the previous entity, then the new one (`$prev` = previous) |
//! | delete | `delete` | the previous entity |
//!
//! A collection without `permissions` is exempt; a role with no entry for
//! the operation denies, except that a missing `postUpdate` allows. Any
//! failure rejects the whole transaction with `WritePermissionError`
//! (401). Subqueries read `txn`, i.e. the state after the transaction.

use std::sync::Arc;

use ferry_store::ReadTxn;
use serde_json::{Map, Value};

use super::{ClauseCache, Operation, Role, session_roles};
use crate::TriplitError;
use crate::indexes::IndexWant;
use crate::query::{ScanCache, write_clause};
use crate::schema::Schema;
use crate::session::Session;
use crate::types::js::{js_string, js_truthy};

/// What happened to an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// A new entity.
    Insert,
    /// An existing entity changed (an update, or an insert over it).
    Update,
    /// An entity removed.
    Delete,
}

/// One changed entity of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteDelta {
    /// The collection.
    pub collection: String,
    /// The entity id.
    pub id: String,
    /// What happened.
    pub op: WriteOp,
    /// The entity before the transaction (`None` for an insert, or a
    /// delete of an id that did not exist).
    pub prev: Option<Map<String, Value>>,
    /// The entity after it (`None` for a delete).
    pub next: Option<Map<String, Value>>,
}

/// Upstream's `WritePermissionError`.
pub fn write_permission_error(
    collection: &str,
    id: &str,
    op: Operation,
    roles: &[Role],
) -> TriplitError {
    let what = match op {
        Operation::Insert => "insertion",
        Operation::Delete => "deletion",
        _ => "update",
    };
    let roles: Vec<&str> = roles.iter().map(|r| r.key.as_str()).collect();
    TriplitError::new(
        "WritePermissionError",
        401,
        format!(
            "'{}' permission for the collection '{collection}' prevented the {what} of the entity with id '{id}'. The provided session roles were [{}].",
            op.key(),
            roles.join(", ")
        ),
        None,
    )
}

/// Checks every delta; the first failure is the error. The service token
/// is never checked. Clauses that do not depend on the entity's previous
/// state come from `clauses` (prepared once per schema, claims, collection
/// and operation). Returns the attribute indexes the checks' subqueries
/// would have used (see `crate::query::ScanCache::take_wanted`).
pub fn check_write_permissions(
    txn: &dyn ReadTxn,
    schema: &Arc<Schema>,
    session: &Session,
    deltas: &[WriteDelta],
    clauses: &ClauseCache,
) -> Result<Vec<IndexWant>, TriplitError> {
    if session.is_service {
        return Ok(Vec::new());
    }
    // Both only when first needed: a cached clause needs neither.
    let mut roles: Option<Vec<Role>> = None;
    let mut claims: Option<Arc<str>> = None;
    let empty = Map::new();
    let mut scans = ScanCache::default();
    for d in deltas {
        let guarded = schema
            .collection(&d.collection)
            .and_then(|c| c.permissions.as_ref())
            .is_some_and(js_truthy);
        if !guarded {
            continue;
        }
        let ops: &[Operation] = match d.op {
            WriteOp::Insert => &[Operation::Insert],
            WriteOp::Update => &[Operation::Update, Operation::PostUpdate],
            WriteOp::Delete => &[Operation::Delete],
        };
        for &op in ops {
            let entity = match op {
                Operation::Insert | Operation::PostUpdate => d.next.as_ref(),
                _ => d.prev.as_ref(),
            }
            .unwrap_or(&empty);
            let clause = match &d.prev {
                // `$prev` is part of the clause: prepare it per entity.
                Some(prev) => {
                    let roles = roles.get_or_insert_with(|| session_roles(Some(schema), session));
                    write_clause(&d.collection, schema, roles, session, Some(prev), op)?
                        .map(Arc::new)
                }
                None => {
                    let claims = claims.get_or_insert_with(|| {
                        Arc::from(serde_json::to_string(&session.claims).unwrap_or_default())
                    });
                    clauses.get_or_prepare(schema, claims, &d.collection, op, || {
                        let roles =
                            roles.get_or_insert_with(|| session_roles(Some(schema), session));
                        write_clause(&d.collection, schema, roles, session, None, op)
                    })?
                }
            };
            let Some(clause) = clause else { continue };
            let row = crate::query::entity_row(&d.collection, &d.id, entity);
            if !clause.allows(txn, &row, &mut scans)? {
                let id = match entity.get("id") {
                    Some(v) => js_string(Some(v)),
                    None => d.id.clone(),
                };
                let roles = roles.get_or_insert_with(|| session_roles(Some(schema), session));
                return Err(write_permission_error(&d.collection, &id, op, roles));
            }
        }
    }
    Ok(scans.take_wanted())
}
