//! Reads: entities, queries and collection statistics.

use std::ops::ControlFlow;
use std::sync::Arc;

use ferry_store::{KeyRange, ReadTxn, StoreExt};
use serde_json::{Map, Value};

use super::TriplitDb;
use crate::query::{PreparedQuery, QueryOutput, ResultRow};
use crate::schema::Schema;
use crate::{TriplitError, keys};

fn decode(bytes: &[u8]) -> Result<Map<String, Value>, TriplitError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(TriplitError::internal(
            "a stored entity is not a JSON object",
        )),
    }
}

/// Every entity of `collection` in id order.
pub(crate) fn scan_collection(
    txn: &dyn ReadTxn,
    collection: &str,
) -> Result<Vec<Map<String, Value>>, TriplitError> {
    let mut out = Vec::new();
    let mut err = None;
    txn.scan(
        &KeyRange::prefix(&keys::collection(collection)),
        false,
        &mut |_, v| match decode(v) {
            Ok(e) => {
                out.push(e);
                ControlFlow::Continue(())
            }
            Err(e) => {
                err = Some(e);
                ControlFlow::Break(())
            }
        },
    )?;
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

impl TriplitDb {
    /// Runs a prepared query on a snapshot and returns its rows (stored
    /// entities with their includes), without the sync closure.
    /// Indexes its scans would have used are built afterwards
    /// ([`TriplitDb::want_indexes`]).
    pub async fn fetch(&self, query: PreparedQuery) -> Result<Vec<ResultRow>, TriplitError> {
        let (rows, wanted) = self
            .store
            .read(move |txn| crate::query::fetch_rows(txn, &query))
            .await?;
        self.want_indexes(wanted);
        Ok(rows)
    }

    /// [`TriplitDb::fetch`] serialized as `/fetch` answers it
    /// ([`crate::query::serialize_rows_json`] under `schema`), on the
    /// reader that ran the query: the rows are written and freed where
    /// they were read, and never cross to the async threads.
    pub async fn fetch_json(
        &self,
        query: PreparedQuery,
        schema: Option<Arc<Schema>>,
    ) -> Result<Vec<u8>, TriplitError> {
        let (bytes, wanted) = self
            .store
            .read(move |txn| {
                let (rows, wanted) = crate::query::fetch_rows(txn, &query)?;
                let bytes = crate::query::serialize_rows_json(&rows, &query, schema.as_deref())?;
                Ok::<_, TriplitError>((bytes, wanted))
            })
            .await?;
        self.want_indexes(wanted);
        Ok(bytes)
    }

    /// Runs a prepared query on a snapshot: its rows and its sync closure
    /// (indexes as for [`TriplitDb::fetch`]).
    pub async fn execute(&self, query: PreparedQuery) -> Result<QueryOutput, TriplitError> {
        let mut out = self
            .store
            .read(move |txn| crate::query::execute(txn, &query))
            .await?;
        self.want_indexes(std::mem::take(&mut out.wanted_indexes));
        Ok(out)
    }

    /// One stored entity.
    pub async fn get(
        &self,
        collection: &str,
        id: &str,
    ) -> Result<Option<Map<String, Value>>, TriplitError> {
        let key = keys::entity(collection, id);
        self.store
            .read(move |txn| txn.get(&key)?.map(|b| decode(&b)).transpose())
            .await
    }

    /// `(collection, number of entities)` for every collection with data,
    /// in collection-name order.
    pub async fn stats(&self) -> Result<Vec<(String, u64)>, TriplitError> {
        self.store
            .read(|txn| {
                let mut stats: Vec<(String, u64)> = Vec::new();
                txn.scan(
                    &KeyRange::prefix(&keys::all_entities()),
                    false,
                    &mut |k, _| {
                        if let Some((c, _)) = keys::parse_entity(k) {
                            match stats.last_mut() {
                                Some((last, n)) if *last == c => *n += 1,
                                _ => stats.push((c, 1)),
                            }
                        }
                        ControlFlow::Continue(())
                    },
                )?;
                Ok::<_, TriplitError>(stats)
            })
            .await
    }

    /// Ids of every entity in `collection`.
    pub async fn ids(&self, collection: &str) -> Result<Vec<String>, TriplitError> {
        let prefix = keys::collection(collection);
        self.store
            .read(move |txn| {
                let mut ids = Vec::new();
                txn.scan(&KeyRange::prefix(&prefix), false, &mut |k, _| {
                    if let Some((_, id)) = keys::parse_entity(k) {
                        ids.push(id);
                    }
                    ControlFlow::Continue(())
                })?;
                Ok::<_, TriplitError>(ids)
            })
            .await
    }
}
