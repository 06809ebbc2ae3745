//! The Triplit database over a [`Store`]: schema state, the clock, the
//! write path and reads.
//!
//! Every write is one store transaction: it is stamped with the hybrid
//! clock inside the transaction (so stamps follow commit order), records
//! each touched entity's last-write timestamp (kept after deletes), persists
//! the clock floor and appends one change-feed record with the full
//! post-state of every touched entity. The record is what realtime fan-out
//! and other nodes consume.

mod feed;
pub(crate) mod read;
mod stamps;
mod write;

use std::sync::Arc;

use ferry_core::{Hlc, HybridClock, RandomSource, TimeSource};
use ferry_store::{Store, StoreExt, load_clock_floor};
use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::broadcast;

pub use stamps::{LEASE_AHEAD_MS, Stamps};
pub use write::{Commit, Touched, Transaction};

use crate::TriplitError;
use crate::indexes::{self, Registry};
use crate::keys;
use crate::schema::Schema;

/// The Triplit database.
pub struct TriplitDb {
    store: Arc<dyn Store>,
    clock: Arc<HybridClock>,
    stamps: Arc<Stamps>,
    rng: Arc<dyn RandomSource>,
    time: Arc<dyn TimeSource>,
    schema: RwLock<Option<Arc<Schema>>>,
    commits: broadcast::Sender<Arc<Commit>>,
    /// Client schema hashes found compatible during this process's life.
    compatible_hashes: parking_lot::Mutex<std::collections::HashSet<u32>>,
}

impl TriplitDb {
    /// Opens the database stored in `store`: resumes the clock above the
    /// persisted floor and loads the stored schema.
    pub async fn open(
        store: Arc<dyn Store>,
        time: Arc<dyn TimeSource>,
        rng: Arc<dyn RandomSource>,
    ) -> Result<Self, TriplitError> {
        let (floor, lease_ms, schema_json) = store
            .read(|txn| {
                let floor = load_clock_floor(txn)?;
                let lease = txn
                    .get(&keys::clock_lease())?
                    .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                let schema = txn.get(&keys::schema())?;
                Ok::<_, TriplitError>((floor, lease, schema))
            })
            .await?;
        let schema = match schema_json {
            Some(bytes) => {
                let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    TriplitError::internal(format!("stored schema is not JSON: {e}"))
                })?;
                Some(Arc::new(Schema::from_json(&v).map_err(|e| {
                    TriplitError::internal(format!("stored schema is invalid: {e}"))
                })?))
            }
            None => None,
        };
        // Indexes for the stored schema: built on the first open of a
        // database written before they existed, or after a crash between
        // versions; a no-op (one read) otherwise.
        let desired = Registry::for_schema(schema.as_deref());
        let needs = {
            let desired = desired.clone();
            store
                .read(move |txn| {
                    let stored = Registry::load_stored(txn)?;
                    // No registry and nothing to index: nothing to write.
                    Ok::<_, TriplitError>(
                        stored != Some(desired.clone())
                            && !(stored.is_none() && desired.is_empty()),
                    )
                })
                .await?
        };
        if needs {
            store
                .write(move |txn| indexes::ensure(txn, &desired))
                .await?;
        }
        let floor = floor.max(Hlc::new(lease_ms, 0));
        let clock = Arc::new(HybridClock::new(time.clone(), floor));
        let stamps = Arc::new(Stamps::new(clock.clone(), lease_ms));
        Ok(Self {
            store,
            clock,
            stamps,
            rng,
            time,
            schema: RwLock::new(schema),
            commits: broadcast::channel(1024).0,
            compatible_hashes: Default::default(),
        })
    }

    /// The current schema, `None` in schemaless mode.
    pub fn schema(&self) -> Option<Arc<Schema>> {
        self.schema.read().clone()
    }

    /// Whether a client schema with `hash` is known to work with `schema`:
    /// the hash of the server's own collections, or one accepted before.
    pub fn schema_hash_known(&self, hash: u32, schema: &Schema) -> bool {
        let own = crate::schema::hash::schema_hash(&schema.to_json()["collections"]);
        hash == own || self.compatible_hashes.lock().contains(&hash)
    }

    /// Records a client schema hash that passed the compatibility check.
    pub fn remember_schema_hash(&self, hash: u32) {
        self.compatible_hashes.lock().insert(hash);
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock stamping writes.
    pub fn clock(&self) -> &Arc<HybridClock> {
        &self.clock
    }

    /// A timestamp to send with data read after it is taken: every write
    /// stamped below it is already visible, and it never repeats or goes
    /// backwards, across restarts too (see `stamps.rs`).
    pub async fn read_timestamp(&self) -> Result<Hlc, TriplitError> {
        let (stamp, extend) = self.stamps.for_read().await;
        if let Some(lease) = extend {
            self.store
                .write(move |txn| {
                    txn.put(&keys::clock_lease(), &lease.to_be_bytes())?;
                    Ok::<_, TriplitError>(())
                })
                .await?;
            self.stamps.lease_extended(lease);
        }
        Ok(stamp)
    }

    /// The highest timestamp handed out so far.
    pub fn last_timestamp(&self) -> Hlc {
        self.clock.last()
    }

    /// Every committed write, local or from another node, in change-feed
    /// order (for realtime fan-out). Needs [`TriplitDb::start_feed`].
    pub fn subscribe_commits(&self) -> broadcast::Receiver<Arc<Commit>> {
        self.commits.subscribe()
    }

    /// Replaces the schema (or removes it with `None`), durably. The
    /// attribute indexes follow in the same transaction: indexes of
    /// attributes the new schema no longer has are dropped, new ones built.
    pub async fn set_schema(&self, schema: Option<Schema>) -> Result<(), TriplitError> {
        let bytes = schema
            .as_ref()
            .map(|s| s.to_json().to_string().into_bytes());
        let desired = Registry::for_schema(schema.as_ref());
        let (_, _) = self
            .store
            .write(move |txn| {
                match &bytes {
                    Some(b) => txn.put(&keys::schema(), b)?,
                    None => txn.delete(&keys::schema())?,
                }
                indexes::ensure(txn, &desired)?;
                Ok::<_, TriplitError>(())
            })
            .await?;
        *self.schema.write() = schema.map(Arc::new);
        Ok(())
    }
}

impl TriplitDb {
    /// The randomness source for generated ids.
    pub fn rng(&self) -> &Arc<dyn RandomSource> {
        &self.rng
    }

    /// The time source for `now` defaults.
    pub fn time(&self) -> &Arc<dyn TimeSource> {
        &self.time
    }
}
