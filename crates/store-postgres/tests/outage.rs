//! Losing the database and getting it back: store calls fail with
//! [`StoreError::Unavailable`] while it is gone, [`Store::health`] says
//! so, and afterwards everything works again without reconnecting by
//! hand; the watch catches up with commits another node made meanwhile.
//!
//! The outage is real: `ALLOW_CONNECTIONS false` on the test's own
//! database plus `pg_terminate_backend` of every session on it.

mod common;

use std::time::Duration;

use ferry_store::{Health, Store, StoreError, StoreExt};
use ferry_store_postgres::{PostgresConfig, PostgresStore};

use crate::common::TestDb;

async fn take_down(admin: &tokio_postgres::Client, db: &TestDb) {
    // Two requests: one request runs as one transaction, and a session
    // starting after the termination but before that commit would escape.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            db.name
        ))
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = '{}' AND pid <> pg_backend_pid();",
            db.name
        ))
        .await
        .unwrap();
}

async fn bring_back(admin: &tokio_postgres::Client, db: &TestDb) {
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            db.name
        ))
        .await
        .unwrap();
}

/// Waits until `db` has `n` sessions of `application_name`.
async fn wait_sessions(admin: &tokio_postgres::Client, db: &TestDb, app: &str, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let count: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
                &[&db.name, &app],
            )
            .await
            .unwrap()
            .get(0);
        if count >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{app}: {count} sessions"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn put(store: &PostgresStore, key: &'static [u8]) -> Result<Option<u64>, StoreError> {
    store
        .write(move |txn| {
            txn.put(key, b"v")?;
            txn.set_change(key.to_vec());
            Ok::<_, StoreError>(())
        })
        .await
        .map(|(_, seq)| seq)
}

async fn get(store: &PostgresStore, key: &'static [u8]) -> Result<Option<Vec<u8>>, StoreError> {
    store.read(move |txn| txn.get(key)).await
}

async fn wait_health(store: &PostgresStore, want: Health) {
    let mut health = store.health();
    tokio::time::timeout(Duration::from_secs(20), health.wait_for(|h| *h == want))
        .await
        .unwrap_or_else(|_| panic!("health never became {want:?}"))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_as_unavailable_during_an_outage_and_resume_after() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let admin = server.admin().await;
    let config = |name: &str| PostgresConfig {
        connect_timeout: Duration::from_secs(2),
        acquire_timeout: Duration::from_secs(2),
        application_name: name.to_owned(),
        ..PostgresConfig::default()
    };
    let a = db.node_with(config("outage_a")).await;
    let b = db.node_with(config("outage_b")).await;
    // The listeners connect in the background; a session that starts
    // while the outage begins could escape both ALLOW_CONNECTIONS and the
    // termination, so wait until both are there.
    for name in ["outage_a", "outage_b"] {
        wait_sessions(&admin, &db, name, 2).await;
    }
    let before = put(&a, b"before").await.unwrap().unwrap();
    assert_eq!(*a.health().borrow(), Health::Available);

    take_down(&admin, &db).await;
    // Every kind of call fails with the connection kind (the first may
    // still find a pooled connection that is only now seen to be dead).
    for _ in 0..2 {
        let _ = get(&a, b"before").await;
    }
    let err = get(&a, b"before").await.unwrap_err();
    assert_eq!(err.code(), "STORE_UNAVAILABLE", "{err}");
    let err = put(&a, b"during").await.unwrap_err();
    assert_eq!(err.code(), "STORE_UNAVAILABLE", "{err}");
    let err = a.changes_since(0, 10).await.unwrap_err();
    assert_eq!(err.code(), "STORE_UNAVAILABLE", "{err}");
    wait_health(&a, Health::Unavailable).await;
    wait_health(&b, Health::Unavailable).await;

    bring_back(&admin, &db).await;
    // The other node commits first; this node's watch catches up through
    // its listener (reconnected with backoff) without any call of its own.
    let mut watch = a.watch();
    let after = loop {
        match put(&b, b"after").await {
            Ok(seq) => break seq.unwrap(),
            Err(e) => {
                assert_eq!(e.code(), "STORE_UNAVAILABLE", "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(after > before);
    tokio::time::timeout(Duration::from_secs(20), watch.wait_for(|s| *s >= after))
        .await
        .expect("the watch catches up after the outage")
        .unwrap();
    wait_health(&a, Health::Available).await;
    let seqs: Vec<u64> = a
        .changes_since(before - 1, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(
        seqs,
        vec![before, after],
        "nothing committed during the outage"
    );
    assert_eq!(get(&a, b"after").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(get(&a, b"during").await.unwrap(), None);
    put(&a, b"again").await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();
}
