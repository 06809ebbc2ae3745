//! Test support: a PostgreSQL server to test against, one fresh database
//! per test, and the conformance suite's store factory.
//!
//! The server is `FERRY_TEST_POSTGRES_URL`, else `TEST_DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`. Each test creates its own
//! database `ferry_test_<random>` there and drops it (`WITH (FORCE)`) when
//! done. When the server cannot be reached a test prints that it was
//! skipped, straight to the terminal (past the test harness's capture),
//! and passes; under `CI=true` it fails instead.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferry_store::Store;
use ferry_store::conformance::OpenFuture;
use ferry_store_postgres::{PostgresConfig, PostgresStore};
use parking_lot::Mutex;

/// A reachable PostgreSQL server.
#[derive(Debug, Clone)]
pub struct Server {
    url: String,
}

/// The server's URL from the environment, or the local default.
pub fn server_url() -> String {
    ["FERRY_TEST_POSTGRES_URL", "TEST_DATABASE_URL"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// `url` with any password replaced, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The server, or `None` after announcing that the calling test is
/// skipped. Panics under `CI=true` when the server is unreachable.
pub async fn server() -> Option<Server> {
    let url = server_url();
    match probe(&url).await {
        Ok(()) => Some(Server { url }),
        Err(e) => {
            let shown = redact(&url);
            if in_ci() {
                panic!("PostgreSQL at {shown} is unreachable and CI=true forbids skipping: {e}");
            }
            let test = std::thread::current()
                .name()
                .unwrap_or("a postgres test")
                .to_owned();
            let line = format!(
                "SKIPPED ferry-store-postgres {test}: PostgreSQL at {shown} is unreachable ({e}). \
                 Set FERRY_TEST_POSTGRES_URL to a server; with CI=true this fails instead.\n"
            );
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            None
        }
    }
}

async fn probe(url: &str) -> Result<(), String> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    config.connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
        format!(
            "{e}: {}",
            std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default()
        )
    })?;
    let driver = tokio::spawn(connection);
    let result = client
        .simple_query("SELECT 1")
        .await
        .map(drop)
        .map_err(|e| e.to_string());
    drop(client);
    let _ = driver.await;
    result
}

/// `url` pointing at database `name` instead.
fn with_dbname(url: &str, name: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let (base, query) = match rest.find('?') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let authority = base.split('/').next().unwrap_or_default();
            return format!("{scheme}{authority}/{name}{query}");
        }
    }
    format!("{url} dbname={name}")
}

impl Server {
    /// A connection to the server's own database, driven in the background.
    pub async fn admin(&self) -> tokio_postgres::Client {
        connect_raw(&self.url).await
    }

    /// Creates a fresh, empty database; dropped with the returned value.
    pub async fn create_db(&self) -> TestDb {
        let name = format!("ferry_test_{:016x}", getrandom::u64().expect("random name"));
        self.admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("create database {name}: {e:?}"));
        TestDb {
            url: with_dbname(&self.url, &name),
            admin_url: self.url.clone(),
            name,
        }
    }
}

/// A client on `url`, its connection driven by a background task.
pub async fn connect_raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e:?}", redact(url)));
    tokio::spawn(connection);
    client
}

/// `url` with `option=value` added to its query string or keywords.
pub fn with_option(url: &str, option: &str, value: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{option}={value}")
    } else {
        format!("{url} {option}='{value}'")
    }
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDb {
    /// Its connection URL.
    pub url: String,
    /// Its name.
    pub name: String,
    admin_url: String,
}

impl TestDb {
    /// A store node on this database with the default config.
    pub async fn node(&self) -> PostgresStore {
        self.node_with(PostgresConfig::default()).await
    }

    /// A store node on this database with `config`.
    pub async fn node_with(&self, config: PostgresConfig) -> PostgresStore {
        PostgresStore::connect_with(&self.url, config)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.name))
    }

    /// A plain client on this database.
    pub async fn raw(&self) -> tokio_postgres::Client {
        connect_raw(&self.url).await
    }
}

impl Drop for TestDb {
    /// Drops the database from a thread of its own (this may run inside
    /// the test's runtime, which must not be blocked on).
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
                        .await
                        .map_err(|e| e.to_string())?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| format!("{e:?}"))
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(
                std::io::stderr(),
                "warning: could not drop test database {}: {dropped:?}",
                self.name
            );
        }
    }
}

/// The databases one conformance case created, by directory; dropped when
/// the case's factory is.
struct Databases {
    server: Server,
    /// `(option, value)` added to every node's URL.
    extra: Option<(&'static str, &'static str)>,
    by_dir: Mutex<HashMap<PathBuf, Arc<TestDb>>>,
}

impl Databases {
    async fn for_dir(&self, dir: &Path) -> Arc<TestDb> {
        if let Some(db) = self.by_dir.lock().get(dir) {
            return db.clone();
        }
        let db = Arc::new(self.server.create_db().await);
        self.by_dir
            .lock()
            .entry(dir.to_path_buf())
            .or_insert(db)
            .clone()
    }
}

/// The conformance suite's store factory: each directory maps to its own
/// fresh database, so reopening the same directory reconnects to the same
/// database (a restarted node). `None` when the test is skipped.
pub async fn factory() -> Option<impl Fn(&Path) -> OpenFuture> {
    factory_with(None).await
}

/// [`factory`] with `option=value` added to every node's URL (e.g.
/// `sslmode=require`).
pub async fn factory_with(
    extra: Option<(&'static str, &'static str)>,
) -> Option<impl Fn(&Path) -> OpenFuture> {
    let databases = Arc::new(Databases {
        server: server().await?,
        extra,
        by_dir: Mutex::new(HashMap::new()),
    });
    Some(move |dir: &Path| -> OpenFuture {
        let (databases, dir) = (databases.clone(), dir.to_path_buf());
        Box::pin(async move {
            let db = databases.for_dir(&dir).await;
            let url = match databases.extra {
                Some((option, value)) => with_option(&db.url, option, value),
                None => db.url.clone(),
            };
            let store = PostgresStore::connect_with(&url, PostgresConfig::default())
                .await
                .unwrap_or_else(|e| panic!("connect to {}: {e}", db.name));
            Arc::new(store) as Arc<dyn Store>
        })
    })
}
