//! The PostgreSQL backend passes the store conformance suite, including the
//! durable cases that close and reopen the store.
//!
//! Every case gets a fresh database on the test server (see `common`);
//! "reopening" a directory connects again to that case's database. The
//! factory expression returns early from the generated test, after saying
//! so, when the server is unreachable (and panics instead under `CI=true`).

mod common;

ferry_store::store_conformance_tests!(
    durable,
    match common::factory().await {
        Some(open) => open,
        None => return,
    }
);
