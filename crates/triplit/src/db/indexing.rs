//! Indexes built on first use.
//!
//! A query whose scan an attribute index would have served (see
//! `crate::query::ScanCache::take_wanted`) runs as a scan; afterwards the
//! database builds that index in a write transaction of its own, in the
//! background, and later queries use it. Each `(collection, path)` is
//! asked for once per schema in this process: a build that finds the
//! index already there (another node built it) or the attribute gone
//! writes nothing, and one that fails is logged and not retried until the
//! schema changes or the process restarts, so a bad entity cannot make
//! every query rescan the collection in the writer.

use std::collections::HashSet;
use std::sync::Arc;

use ferry_store::{Store, StoreExt};
use parking_lot::Mutex;

use super::TriplitDb;
use crate::indexes::{self, IndexWant};

/// The indexes asked for since the schema was installed.
#[derive(Default)]
pub(super) struct Builds {
    asked: Mutex<HashSet<IndexWant>>,
}

impl Builds {
    /// Forgets every request (the schema changed: an attribute dropped
    /// with its index may come back).
    pub(super) fn forget(&self) {
        self.asked.lock().clear();
    }

    /// The requests of `wanted` not made before, now recorded as made.
    fn fresh(&self, wanted: Vec<IndexWant>) -> Vec<IndexWant> {
        let mut asked = self.asked.lock();
        wanted
            .into_iter()
            .filter(|w| asked.insert(w.clone()))
            .collect()
    }
}

async fn build(store: Arc<dyn Store>, wanted: Vec<IndexWant>) {
    let names: Vec<String> = wanted.iter().map(|(c, p)| format!("{c}.{p}")).collect();
    match store.write(move |txn| indexes::add(txn, &wanted)).await {
        Ok((true, _)) => tracing::info!(indexes = ?names, "built indexes on first use"),
        Ok((false, _)) => {}
        Err(e) => tracing::warn!(indexes = ?names, error = %e, "building indexes failed"),
    }
}

impl TriplitDb {
    /// Asks for the indexes a query's scans would have used (the query
    /// has run without them); each is built once, in the background.
    /// Without a Tokio runtime nothing is built.
    pub fn want_indexes(&self, wanted: Vec<IndexWant>) {
        if wanted.is_empty() {
            return;
        }
        let fresh = self.index_builds.fresh(wanted);
        if fresh.is_empty() {
            return;
        }
        // The build checks the stored schema again; this only spares the
        // writer a transaction for attributes that cannot be indexed.
        let allowed = indexes::Registry::for_schema(self.schema().as_deref());
        let fresh: Vec<IndexWant> = fresh
            .into_iter()
            .filter(|(c, p)| allowed.has(c, p))
            .collect();
        if fresh.is_empty() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(build(self.store.clone(), fresh));
        }
    }
}
