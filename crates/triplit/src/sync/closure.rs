//! A subscribed query's closure: every entity its client needs.
//!
//! This is the seam between sync and the query engine: a query prepared
//! for one session (read permissions applied unless it is the service
//! token), run against a snapshot, yields the closure to ship — root rows,
//! included entities at any depth, one witness per `exists`, entities
//! behind relational order (see `query::execute`).

use std::collections::BTreeSet;
use std::sync::Arc;

use ferry_core::Hlc;
use parking_lot::Mutex;

use ferry_store::ReadTxn;
use serde_json::{Value, json};

use super::shared::SharedResult;
use super::view::ClosureEntity;
use crate::TriplitError;
use crate::indexes::IndexWant;
use crate::query::{PreparedQuery, execute, prepare};
use crate::schema::Schema;
use crate::session::Session;

/// A query prepared for one connection, shared by every connection whose
/// query prepares the same way (see `shared.rs`).
#[derive(Debug)]
pub struct Subscription {
    prepared: PreparedQuery,
    collections: BTreeSet<String>,
    /// The last result one of its connections computed, kept for the
    /// others only while others hold it: it goes with the subscription.
    last: Mutex<Option<SharedResult>>,
}

impl Subscription {
    /// Prepares `params` (a `CollectionQuery`) for `session`.
    pub fn prepare(
        params: &Value,
        schema: Option<&Schema>,
        session: &Session,
    ) -> Result<Self, TriplitError> {
        let prepared = prepare(params, schema, session)?;
        let collections = prepared.referenced_collections();
        Ok(Self {
            prepared,
            collections,
            last: Mutex::new(None),
        })
    }

    /// The result another connection computed, when it covers the commits
    /// up to feed position `known_seq` and the writes stamped up to
    /// `min_cut`.
    pub fn shared_result(&self, known_seq: u64, min_cut: Hlc) -> Option<SharedResult> {
        self.last
            .lock()
            .as_ref()
            .filter(|r| r.seq >= known_seq && r.cut >= min_cut)
            .cloned()
    }

    /// Offers a freshly computed result to the other holders of this
    /// subscription (the caller holds one reference): kept when someone
    /// else holds it and it is at least as fresh as the one kept, dropped
    /// (with any older one) when nobody else could use it.
    pub fn offer_result(self: &Arc<Self>, result: SharedResult) {
        let mut last = self.last.lock();
        if Arc::strong_count(self) < 2 {
            *last = None;
        } else if last
            .as_ref()
            .is_none_or(|l| result.seq >= l.seq && result.cut >= l.cut)
        {
            *last = Some(result);
        }
    }

    /// The prepared query.
    pub fn prepared(&self) -> &PreparedQuery {
        &self.prepared
    }

    /// The root collection.
    pub fn collection(&self) -> &str {
        self.prepared.collection()
    }

    /// Every collection whose changes can change the closure.
    pub fn collections(&self) -> &BTreeSet<String> {
        &self.collections
    }

    /// Runs the query on `txn` and returns its closure in result order.
    pub fn closure(&self, txn: &dyn ReadTxn) -> Result<Vec<ClosureEntity>, TriplitError> {
        Ok(execute(txn, &self.prepared)?.closure)
    }

    /// [`Subscription::closure`], and the indexes the query's scans would
    /// have used (for `TriplitDb::want_indexes`).
    pub fn closure_wanting(
        &self,
        txn: &dyn ReadTxn,
    ) -> Result<(Vec<ClosureEntity>, Vec<IndexWant>), TriplitError> {
        let out = execute(txn, &self.prepared)?;
        Ok((out.closure, out.wanted_indexes))
    }
}

/// The entities of `collection` with `ids` that `session` may read, as
/// stored (for re-validating a checkpoint's entities that left a result).
pub fn readable_by_id(
    txn: &dyn ReadTxn,
    schema: Option<&Schema>,
    session: &Session,
    collection: &str,
    ids: &[String],
) -> Result<Vec<ClosureEntity>, TriplitError> {
    let query = json!({"collectionName": collection, "where": [["id", "in", ids]]});
    let prepared = prepare(&query, schema, session)?;
    let out = execute(txn, &prepared)?;
    Ok(out
        .closure
        .into_iter()
        .filter(|(c, _, _)| c == collection)
        .collect())
}
