//! A subscribed query's closure: every entity its client needs.
//!
//! This is the seam between sync and the query engine: preparing a
//! query for a session, and running it against a snapshot to get the
//! entities to ship. It currently ships the root entities of the query
//! engine's result; relations, includes and `exists` witnesses come with
//! the full query engine.

use std::collections::BTreeSet;

use ferry_store::ReadTxn;
use serde_json::Value;

use super::view::ClosureEntity;
use crate::TriplitError;
use crate::db::read::scan_collection;
use crate::query::Query;
use crate::schema::Schema;
use crate::session::Session;

/// A query prepared for one connection.
#[derive(Debug, Clone)]
pub struct Subscription {
    query: Query,
    collections: BTreeSet<String>,
}

impl Subscription {
    /// Prepares `params` (a `CollectionQuery`) for `session`.
    pub fn prepare(
        params: &Value,
        schema: Option<&Schema>,
        session: &Session,
    ) -> Result<Self, TriplitError> {
        let query = Query::parse(params)?;
        if let Some(schema) = schema {
            if query.collection != "_metadata" && schema.collection(&query.collection).is_none() {
                return Err(TriplitError::invalid_collection_name(
                    &query.collection,
                    Some(format!(
                        "Collection '{}' does not exist in the schema",
                        query.collection
                    )),
                ));
            }
            let restricted = schema
                .collection(&query.collection)
                .is_some_and(|c| c.permissions.is_some());
            if restricted && !session.is_service {
                return Err(TriplitError::new(
                    "TriplitError",
                    401,
                    "Read permissions are not enforced by this Ferry build yet.",
                    Some(format!(
                        "'{}' has permissions, so only the service token may read it for now",
                        query.collection
                    )),
                ));
            }
        }
        let collections = BTreeSet::from([query.collection.clone()]);
        Ok(Self { query, collections })
    }

    /// The root collection.
    pub fn collection(&self) -> &str {
        &self.query.collection
    }

    /// Every collection whose changes can change the closure.
    pub fn collections(&self) -> &BTreeSet<String> {
        &self.collections
    }

    /// Runs the query on `txn` and returns its closure in result order.
    pub fn closure(&self, txn: &dyn ReadTxn) -> Result<Vec<ClosureEntity>, TriplitError> {
        let rows = scan_collection(txn, &self.query.collection)?;
        let rows = self.query.run(rows)?;
        Ok(rows
            .into_iter()
            .map(|e| {
                let id = e
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                (self.query.collection.clone(), id, e)
            })
            .collect())
    }
}
