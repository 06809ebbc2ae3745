//! Ferry's scale-out store: PostgreSQL behind [`ferry_store::Store`].
//!
//! Several Ferry nodes connect to one database and serve the same app;
//! every node reads and writes, and every node follows every other node's
//! commits through a shared, durable change log.
//!
//! # Layout
//!
//! Ferry's own tables, created and upgraded by numbered migrations that
//! run automatically at [`PostgresStore::connect`] (see `schema.rs`):
//! - `ferry_kv(key bytea PRIMARY KEY, value bytea NOT NULL)`: the ordered
//!   key-value space. `bytea` compares as unsigned bytes whatever the
//!   collation, which is the contract's key order, so scans are primary-key
//!   index range scans in either direction. PostgreSQL's B-tree limits an
//!   index entry to about 2.7 kB, so longer keys are refused with an error.
//! - `ferry_changes(seq bigint PRIMARY KEY, payload bytea, created_at)`:
//!   the change log all nodes tail;
//! - `ferry_meta(name, value)`: the row `last_seq`, the last sequence
//!   number ever assigned, so numbering continues after pruning;
//! - `ferry_nodes(node_id, position, heartbeat_at)` (migration 2): how far
//!   each node has read the change log, refreshed by
//!   [`Store::report_position`] (Ferry's feed follower calls it every
//!   10 s and before pruning);
//! - `ferry_schema_migrations(version, applied_at)`: applied migrations.
//!
//! # Pruning the shared log
//!
//! Every node prunes, so pruning must not outrun any node:
//! [`Store::prune_changes`]`(before)` deletes records below `before` (the
//! caller keeps its retention margin behind its own position) *and* below
//! the lowest position of the nodes whose heartbeat is younger than
//! [`PostgresConfig::node_timeout`]. A node silent for longer no longer
//! holds records back; if it returns behind the pruned range, sequence
//! numbers being contiguous, its follower sees the gap and resynchronises
//! its sessions instead of skipping commits silently.
//!
//! Migrations run in one transaction behind a transaction-scoped advisory
//! lock, so nodes starting at once never race; a database migrated by a
//! newer Ferry is refused.
//!
//! # Threads
//!
//! The store contract's transaction views are synchronous and are called
//! from inside the closure, while tokio-postgres is async. A transaction
//! first takes a pooled connection (deadpool-postgres) on the async side,
//! then runs `BEGIN`, the closure and `COMMIT` on a blocking thread
//! (`spawn_blocking`), where each `get`/`scan`/`put`/`delete` is one
//! statement driven to completion with `Handle::block_on`. The closure's
//! many reads thus never hop threads, nothing blocks the async workers,
//! and one mechanism serves reads and writes. Once started, a transaction
//! runs to its end even if the caller stops waiting, so a connection never
//! returns to the pool inside a transaction. The synchronous `postgres`
//! crate would do the same with a runtime of its own per client.
//!
//! # Reads
//!
//! `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`: one snapshot for the
//! whole closure, taken at its first statement, which includes every write
//! acknowledged before the read started. Scans fetch
//! [`PostgresConfig::scan_batch`] rows per query with keyset pagination, so
//! a scan that breaks early does not read the rest of the range.
//!
//! # Writes: one cluster-wide write lock
//!
//! Every write transaction runs in `READ COMMITTED` and first takes
//! `pg_advisory_xact_lock` on one constant key, held until it commits or
//! rolls back. Write transactions therefore execute one at a time across
//! all nodes, which makes them serialisable (no other write can change
//! what a running write has read), lets a closure run exactly once in the normal case,
//! and gives the change feed its order. `SERIALIZABLE` without the lock
//! was the alternative; it buys nothing here because every Ferry commit
//! writes the shared clock key and appends to the feed, so any two
//! concurrent commits conflict anyway and one would be retried. Retries
//! are still implemented: a serialization failure or deadlock reported by
//! the server re-runs the closure (up to
//! [`PostgresConfig::max_write_attempts`] times), as the contract allows.
//!
//! The cost is throughput: cluster-wide, one write at a time, each holding
//! the lock for its statements' round trips plus the commit's WAL flush
//! (about 1–2 ms on a local server, so some hundreds of commits per second
//! for the whole cluster; less across a network). Within a node, writes
//! queue on a local mutex first, so at most one pooled connection per node
//! waits for or holds the server-side lock and the rest stay free for
//! reads. Batching several closures per transaction on each node (group
//! commit, as the SQLite backend does) is the upgrade path when that
//! becomes the limit.
//! A write that stalls while holding the lock is ended by the server after
//! [`PostgresConfig::write_idle_timeout`].
//!
//! # Change feed across nodes
//!
//! A committing transaction that set a change record increments
//! `ferry_meta.last_seq`, inserts the record under the new number and
//! `NOTIFY`s `ferry_changes` in the same statement, while it holds the
//! write lock. PostgreSQL makes a transaction visible before it releases
//! its locks, so the next holder of the lock starts after the previous one
//! became visible: sequence order is commit order and visibility order. A
//! follower that read records up to `n` can never later find a record
//! below `n` commit, so `changes_since(n)` never skips a late commit.
//!
//! [`Store::watch`] reflects commits of every node: a background task
//! `LISTEN`s on `ferry_changes` on a connection of its own and, on each
//! notification and every [`PostgresConfig::poll_interval`] regardless,
//! re-reads `last_seq`; notifications are only a wake-up hint. This node's
//! own commits advance the watch at once.
//!
//! # TLS
//!
//! libpq's `sslmode` (`disable`, `prefer` (default), `require`,
//! `verify-ca`, `verify-full`) and `sslrootcert` are honoured in both URL
//! forms with rustls (`conninfo.rs` takes them out of the string,
//! `tls.rs` is the connector); the pool and the change listener use the
//! same setting. [`PostgresStore::encrypted`] reports what the server saw
//! (`pg_stat_ssl`). A refused certificate is [`StoreError::Tls`].
//!
//! # Losing the database
//!
//! An operation that cannot reach the server fails with
//! [`StoreError::Unavailable`] and wakes the listener, which judges
//! [`Store::health`]: [`Health::Unavailable`] once its own connection fails
//! twice in a row, back to available once it reads the sequence counter
//! again (reconnecting with backoff in between).
//!
//! # Not (yet) here
//!
//! Client certificates are not supported. All nodes must use the primary: a read replica
//! would serve snapshots behind acknowledged writes. Advisory lock keys and
//! the notification channel are per database, so two Ferry deployments in
//! one database (in different schemas via `search_path`) would be correct
//! but would share the write lock and wake each other.

mod changelog;
mod config;
mod conninfo;
mod error;
mod follower;
mod schema;
mod tls;
mod transaction;
mod view;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use ferry_store::{Change, Health, ReadFn, Store, StoreError, WriteFn};
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::{OwnedRwLockReadGuard, RwLock, watch};

pub use crate::config::PostgresConfig;
pub use crate::conninfo::SslMode;
use crate::error::PgError;
use crate::follower::{Follower, advance};
use crate::tls::RustlsConnect;
use crate::transaction::WriteSettings;

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i32 = schema::SCHEMA_VERSION;

/// A [`Store`] kept in a PostgreSQL database, shareable by several nodes.
pub struct PostgresStore {
    pool: Pool,
    config: PostgresConfig,
    database: String,
    /// This process's row in `ferry_nodes`.
    node_id: String,
    ssl_mode: SslMode,
    encrypted: bool,
    write: Arc<WriteSettings>,
    seq: Arc<watch::Sender<u64>>,
    /// Whether the database is reachable: set by the follower, and to
    /// unavailable by any operation that finds the database gone.
    health: Arc<watch::Sender<Health>>,
    /// Wakes the follower to check the database now.
    probe: Arc<tokio::sync::Notify>,
    /// Held (shared) by every operation in flight; [`Store::close`] takes
    /// it exclusively to wait for them.
    gate: Arc<RwLock<()>>,
    /// This node's queue for the cluster-wide write lock.
    writer: Arc<tokio::sync::Mutex<()>>,
    closed: AtomicBool,
    follower: Mutex<Option<Follower>>,
    /// Serialises [`Store::close`] calls.
    closing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.database)
            .field("ssl_mode", &self.ssl_mode)
            .field("encrypted", &self.encrypted)
            .field("open", &!self.closed.load(Ordering::SeqCst))
            .field("last_seq", &*self.seq.borrow())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`
    /// or `host=… dbname=…`) with the default [`PostgresConfig`], applying
    /// Ferry's schema migrations first. `sslmode` and `sslrootcert` follow
    /// libpq (see the crate docs); a certificate that is refused is
    /// [`StoreError::Tls`], an unreachable server
    /// [`StoreError::Unavailable`].
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        Self::connect_with(url, PostgresConfig::default()).await
    }

    /// Connects to the database at `url` with `config`.
    pub async fn connect_with(
        url: &str,
        config: PostgresConfig,
    ) -> Result<PostgresStore, StoreError> {
        let config = config.normalised();
        let info = conninfo::parse(url)?;
        let tls = RustlsConnect::new(info.ssl_mode, info.root_cert.as_deref())?;
        let mut pg = info.pg;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.connect_timeout);
        }
        if pg.get_application_name().is_none() {
            pg.application_name(config.application_name.clone());
        }
        let database = pg.get_dbname().unwrap_or_default().to_owned();
        let manager = Manager::from_config(
            pg.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.acquire_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| PgError::Pool(e.to_string()))?;
        let conn = pool.get().await.map_err(PgError::from)?;
        let prepared = match prepare_database(&conn).await {
            Ok(prepared) => prepared,
            Err(e) => {
                drop(Object::take(conn));
                pool.close();
                return Err(e.into());
            }
        };
        drop(conn);
        let (last, encrypted) = prepared;
        let seq = Arc::new(watch::channel(last).0);
        let health = Arc::new(watch::channel(Health::Available).0);
        let probe = Arc::new(tokio::sync::Notify::new());
        let follower = Follower::spawn(
            pg,
            tls,
            seq.clone(),
            health.clone(),
            probe.clone(),
            config.poll_interval,
            config.connect_timeout,
        );
        let write = Arc::new(WriteSettings::new(
            schema::WRITE_LOCK,
            config.write_idle_timeout.as_millis(),
            config.scan_batch,
            config.max_write_attempts,
        ));
        let node_id = format!(
            "{}-{:016x}",
            config.application_name,
            getrandom::u64().map_err(|e| PgError::Worker(format!("random node id: {e}")))?
        );
        tracing::debug!(
            database,
            node_id,
            last_seq = last,
            encrypted,
            "connected postgres store"
        );
        Ok(PostgresStore {
            pool,
            config,
            database,
            node_id,
            ssl_mode: info.ssl_mode,
            encrypted,
            write,
            seq,
            health,
            probe,
            gate: Arc::new(RwLock::new(())),
            writer: Arc::new(tokio::sync::Mutex::new(())),
            closed: AtomicBool::new(false),
            follower: Mutex::new(Some(follower)),
            closing: tokio::sync::Mutex::new(()),
        })
    }

    /// The settings in use (after lower bounds were applied).
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// The database name from the connection URL.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// This node's id in `ferry_nodes` (application name and a random
    /// suffix, new for every connected store).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The `sslmode` asked for (`prefer` when the URL names none).
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// Whether the first connection was encrypted (`pg_stat_ssl`); with
    /// `prefer` this says whether the server offered TLS.
    pub fn encrypted(&self) -> bool {
        self.encrypted
    }

    /// Admits one operation, or refuses it once the store is closed.
    async fn enter(&self) -> Result<OwnedRwLockReadGuard<()>, StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        let guard = self.gate.clone().read_owned().await;
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        Ok(guard)
    }

    async fn connection(&self) -> Result<Object, StoreError> {
        Ok(self.pool.get().await.map_err(PgError::from)?)
    }

    /// Passes `result` on; an unreachable database wakes the follower,
    /// which decides whether the store is unavailable.
    fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result
            && e.is_unavailable()
        {
            self.probe.notify_one();
        }
        result
    }
}

/// Migrates the schema, reads the last sequence number and whether the
/// connection is encrypted.
async fn prepare_database(conn: &Object) -> Result<(u64, bool), PgError> {
    schema::migrate(conn).await?;
    let last = schema::load_last_seq(conn).await?;
    let what = "read pg_stat_ssl";
    let row = conn
        .query_one(
            "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
            &[],
        )
        .await
        .map_err(|e| PgError::query(what, &e))?;
    let encrypted: bool = row.try_get(0).map_err(|e| PgError::query(what, &e))?;
    Ok((last, encrypted))
}

/// Waits for a blocking transaction's result.
async fn join<T>(task: tokio::task::JoinHandle<Result<T, StoreError>>) -> Result<T, StoreError> {
    task.await
        .map_err(|e| StoreError::from(PgError::Worker(e.to_string())))?
}

#[async_trait]
impl Store for PostgresStore {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    fn shared_feed(&self) -> bool {
        true
    }

    async fn read_boxed(&self, f: ReadFn) -> Result<(), StoreError> {
        let result = self.read_inner(f).await;
        self.observe(result)
    }

    async fn write_boxed(&self, f: WriteFn) -> Result<Option<u64>, StoreError> {
        let result = self.write_inner(f).await;
        self.observe(result)
    }

    async fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let result = self.changes_inner(after, limit).await;
        self.observe(result)
    }

    async fn prune_changes(&self, before: u64) -> Result<(), StoreError> {
        let result = self.prune_inner(before).await;
        self.observe(result)
    }

    /// Upserts this node's row of `ferry_nodes`: its position and a
    /// heartbeat, which [`Store::prune_changes`] of every node respects.
    async fn report_position(&self, seq: u64) -> Result<(), StoreError> {
        let result = self.report_inner(seq).await;
        self.observe(result)
    }

    fn watch(&self) -> watch::Receiver<u64> {
        self.seq.subscribe()
    }

    fn health(&self) -> watch::Receiver<Health> {
        self.health.subscribe()
    }

    /// Stops admitting work, waits for the transactions in flight, stops
    /// the change follower and closes the pool. Closing a closed store
    /// succeeds and does nothing.
    async fn close(&self) -> Result<(), StoreError> {
        let _closing = self.closing.lock().await;
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let _drained = self.gate.write().await;
        let follower = self.follower.lock().take();
        if let Some(follower) = follower {
            follower.stop().await;
        }
        self.pool.close();
        tracing::debug!(database = %self.database, "closed postgres store");
        Ok(())
    }
}

/// The operations behind [`Store`], before [`PostgresStore::observe`].
impl PostgresStore {
    async fn read_inner(&self, f: ReadFn) -> Result<(), StoreError> {
        let guard = self.enter().await?;
        let conn = self.connection().await?;
        let handle = Handle::current();
        let scan_batch = self.config.scan_batch;
        join(tokio::task::spawn_blocking(move || {
            let _guard = guard;
            transaction::read(&handle, conn, scan_batch, f)
        }))
        .await
    }

    async fn write_inner(&self, f: WriteFn) -> Result<Option<u64>, StoreError> {
        let guard = self.enter().await?;
        // Writes wait for each other here rather than each in the server's
        // lock queue with a pooled connection, which keeps connections free
        // for reads; the cluster-wide lock only ever allows one anyway.
        let local = self.writer.clone().lock_owned().await;
        let conn = self.connection().await?;
        let handle = Handle::current();
        let (settings, seq) = (self.write.clone(), self.seq.clone());
        join(tokio::task::spawn_blocking(move || {
            let _guards = (guard, local);
            let committed = transaction::write(&handle, conn, &settings, f)?;
            if let Some(committed) = committed {
                advance(&seq, committed);
            }
            Ok(committed)
        }))
        .await
    }

    async fn changes_inner(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let _guard = self.enter().await?;
        if limit == 0 || after >= i64::MAX as u64 {
            return Ok(Vec::new());
        }
        let conn = self.connection().await?;
        Ok(changelog::read(&conn, after, limit).await?)
    }

    async fn prune_inner(&self, before: u64) -> Result<(), StoreError> {
        let _guard = self.enter().await?;
        let conn = self.connection().await?;
        Ok(changelog::prune(&conn, before, self.config.node_timeout).await?)
    }

    async fn report_inner(&self, seq: u64) -> Result<(), StoreError> {
        let _guard = self.enter().await?;
        let conn = self.connection().await?;
        Ok(changelog::report(&conn, &self.node_id, seq).await?)
    }
}
