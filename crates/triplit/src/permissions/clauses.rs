//! Prepared write-permission clauses kept across transactions.
//!
//! Preparing a clause (roles from the claims, the collection's permission
//! filters for the operation, variables bound) costs far more than
//! evaluating it, and a connection writes to the same collection with the
//! same token again and again. A clause that does not depend on the
//! entity's previous state is the same for every transaction with the same
//! schema, claims, collection and operation, so it is prepared once and
//! kept here. The cache belongs to one schema: a different schema (by
//! identity) empties it. It holds at most [`MAX_CLAUSES`] entries and is
//! emptied when full (tokens carry `exp`/`iat`, so claims change over
//! time).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::Operation;
use crate::TriplitError;
use crate::query::WriteClause;
use crate::schema::Schema;

/// Entries kept before the cache starts over.
pub const MAX_CLAUSES: usize = 4096;

/// `(claims as JSON text, collection, operation)`.
type Key = (Arc<str>, String, Operation);

#[derive(Default)]
struct State {
    /// The schema the entries were prepared with (held, so its address
    /// cannot be reused by another schema while entries refer to it).
    schema: Option<Arc<Schema>>,
    entries: HashMap<Key, Option<Arc<WriteClause>>>,
}

/// Write clauses prepared for earlier transactions.
#[derive(Default)]
pub struct ClauseCache {
    state: Mutex<State>,
}

impl std::fmt::Debug for ClauseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClauseCache")
            .field("entries", &self.len())
            .finish()
    }
}

impl ClauseCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.state.lock().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The clause for `(claims, collection, op)` under `schema`, prepared
    /// by `prepare` the first time. Errors are not kept.
    pub fn get_or_prepare(
        &self,
        schema: &Arc<Schema>,
        claims: &Arc<str>,
        collection: &str,
        op: Operation,
        prepare: impl FnOnce() -> Result<Option<WriteClause>, TriplitError>,
    ) -> Result<Option<Arc<WriteClause>>, TriplitError> {
        let key: Key = (claims.clone(), collection.to_string(), op);
        {
            let mut state = self.state.lock();
            if state
                .schema
                .as_ref()
                .is_some_and(|s| Arc::ptr_eq(s, schema))
            {
                if let Some(found) = state.entries.get(&key) {
                    return Ok(found.clone());
                }
            } else {
                state.schema = Some(schema.clone());
                state.entries.clear();
            }
        }
        let clause = prepare()?.map(Arc::new);
        let mut state = self.state.lock();
        if state
            .schema
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, schema))
        {
            if state.entries.len() >= MAX_CLAUSES {
                state.entries.clear();
            }
            state.entries.insert(key, clause.clone());
        }
        Ok(clause)
    }
}
