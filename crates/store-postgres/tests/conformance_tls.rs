//! The store conformance suite over TLS (`sslmode=require`), as a node
//! in a cloud deployment would connect. The test server has `ssl = on`.

mod common;

ferry_store::store_conformance_tests!(
    durable,
    match common::factory_with(Some(("sslmode", "require"))).await {
        Some(open) => open,
        None => return,
    }
);
