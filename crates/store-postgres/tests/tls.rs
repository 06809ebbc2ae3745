//! TLS to PostgreSQL: libpq's `sslmode` values, encryption as the server
//! sees it (`pg_stat_ssl`), certificate checks that fail with
//! [`StoreError::Tls`] rather than a panic, and the change follower's own
//! connection on the same setting.

mod common;

use std::time::Duration;

use ferry_store::{Store, StoreError, StoreExt};
use ferry_store_postgres::{PostgresStore, SslMode};

use crate::common::with_option;

const UNRELATED_CA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/unrelated-ca.pem"
);

/// Whether every connection of `db` with `application_name` is encrypted,
/// and how many there are.
async fn encrypted_connections(raw: &tokio_postgres::Client, app: &str) -> (i64, bool) {
    let row = raw
        .query_one(
            "SELECT count(*), coalesce(bool_and(s.ssl), false)
             FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
             WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn write_and_read(store: &PostgresStore) {
    store
        .write(|txn| {
            txn.put(b"k", b"v")?;
            txn.set_change(b"c".to_vec());
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let got = store
        .read(|txn| txn.get(b"k"))
        .await
        .map_err(|e: StoreError| e)
        .unwrap();
    assert_eq!(got.as_deref(), Some(&b"v"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_encrypts_every_connection_including_the_followers() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let url = with_option(
        &with_option(&db.url, "sslmode", "require"),
        "application_name",
        "ferry_tls_require",
    );
    let store = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(store.ssl_mode(), SslMode::Require);
    assert!(store.encrypted());
    write_and_read(&store).await;
    let raw = db.raw().await;
    // The pooled connection and the listener's own connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (count, all) = encrypted_connections(&raw, "ferry_tls_require").await;
        if count >= 2 {
            assert!(all, "every connection is encrypted");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {count} connections"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_connects_in_plain_text() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let url = with_option(
        &with_option(&db.url, "sslmode", "disable"),
        "application_name",
        "ferry_tls_disable",
    );
    let store = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(store.ssl_mode(), SslMode::Disable);
    assert!(!store.encrypted());
    write_and_read(&store).await;
    let (count, any_encrypted) = {
        let raw = db.raw().await;
        let row = raw
            .query_one(
                "SELECT count(*), coalesce(bool_or(s.ssl), false)
                 FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
                 WHERE a.application_name = 'ferry_tls_disable'",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, i64>(0), row.get::<_, bool>(1))
    };
    assert!(count >= 1);
    assert!(!any_encrypted);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_is_the_default_and_uses_tls_when_offered() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    let store = PostgresStore::connect(&db.url).await.unwrap();
    assert_eq!(store.ssl_mode(), SslMode::Prefer);
    // The test server has `ssl = on`.
    assert!(store.encrypted());
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_fails_with_the_tls_kind() {
    let Some(server) = common::server().await else {
        return;
    };
    let db = server.create_db().await;
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = with_option(
            &with_option(&db.url, "sslmode", mode),
            "sslrootcert",
            UNRELATED_CA,
        );
        let err = PostgresStore::connect(&url).await.unwrap_err();
        assert_eq!(err.code(), "STORE_TLS", "{mode}: {err}");
    }
    let missing = with_option(
        &with_option(&db.url, "sslmode", "verify-full"),
        "sslrootcert",
        "/nonexistent/root.crt",
    );
    let err = PostgresStore::connect(&missing).await.unwrap_err();
    assert_eq!(err.code(), "STORE_TLS", "{err}");
    let bad_mode = with_option(&db.url, "sslmode", "always");
    let err = PostgresStore::connect(&bad_mode).await.unwrap_err();
    assert_eq!(err.code(), "STORE_BACKEND", "{err}");
}

/// With the server's own (self-signed) certificate as the root: the chain
/// verifies, and `verify-full` additionally wants the certificate's name.
/// Runs only where the server's certificate file is readable (the server
/// is local).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_modes_check_the_chain_and_the_host_name() {
    let Some(server) = common::server().await else {
        return;
    };
    let admin = server.admin().await;
    let cert: String = admin
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    let Ok(pem) = std::fs::read_to_string(&cert) else {
        eprintln!("skipped: the server's certificate {cert} is not readable here");
        return;
    };
    if !db_url_host_is_ip(&common::server_url()) || !pem.contains("BEGIN CERTIFICATE") {
        eprintln!("skipped: needs a server URL with an IP host and a PEM certificate");
        return;
    }
    let db = server.create_db().await;
    // Connecting by IP: the chain is trusted but the name does not match.
    let ca = with_option(
        &with_option(&db.url, "sslmode", "verify-ca"),
        "sslrootcert",
        &cert,
    );
    let store = PostgresStore::connect(&ca).await.unwrap();
    assert!(store.encrypted());
    store.close().await.unwrap();
    let full = with_option(
        &with_option(&db.url, "sslmode", "verify-full"),
        "sslrootcert",
        &cert,
    );
    let err = PostgresStore::connect(&full).await.unwrap_err();
    assert_eq!(err.code(), "STORE_TLS", "{err}");
}

/// Whether the URL's host is a literal IP address.
fn db_url_host_is_ip(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?']).next())
        .map(|authority| authority.rsplit('@').next().unwrap_or(authority))
        .map(|hostport| hostport.rsplit_once(':').map_or(hostport, |(h, _)| h))
        .unwrap_or_default();
    host.parse::<std::net::IpAddr>().is_ok()
}
