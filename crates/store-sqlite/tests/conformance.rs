//! The SQLite backend passes the store conformance suite, including the
//! durable cases that close and reopen the database.

use std::path::Path;
use std::sync::Arc;

use ferry_store::Store;
use ferry_store::conformance::OpenFuture;
use ferry_store_sqlite::SqliteStore;

fn open(dir: &Path) -> OpenFuture {
    let path = dir.join("ferry.db");
    Box::pin(async move {
        let store = SqliteStore::open(&path)
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        Arc::new(store) as Arc<dyn Store>
    })
}

ferry_store::store_conformance_tests!(durable, open);

// The commit path's hand-over to the feed follower relies on it.
ferry_store::store_conformance_tests!(@case post_commit_hooks_called, open);
