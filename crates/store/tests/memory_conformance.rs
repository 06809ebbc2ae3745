//! The in-memory backend passes the store conformance suite.

use std::path::Path;
use std::sync::Arc;

use ferry_store::conformance::OpenFuture;
use ferry_store::{MemoryStore, Store};

fn open(_dir: &Path) -> OpenFuture {
    Box::pin(async { Arc::new(MemoryStore::new()) as Arc<dyn Store> })
}

ferry_store::store_conformance_tests!(volatile, open);

// The commit path's hand-over to the feed follower relies on it.
ferry_store::store_conformance_tests!(@case post_commit_hooks_called, open);
