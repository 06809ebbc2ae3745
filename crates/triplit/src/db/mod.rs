//! The Triplit database over a [`Store`]: schema state, the clock, the
//! write path and reads.
//!
//! Every write is one store transaction: it is stamped with the hybrid
//! clock inside the transaction, above the floor any node persisted
//! (`ferry_store::take_stamp`: stamps follow commit order, hence feed
//! order, across nodes), records each touched entity's last-write
//! timestamp (kept after deletes), persists the stamp as the new floor and
//! appends one change-feed record with the full post-state of every touched
//! entity. The record is what realtime fan-out and other nodes consume.
//!
//! Stamps sent with data (`ENTITY_DATA.timestamp`, the client's reconnect
//! checkpoint) are not taken from the clock: they are read stamps
//! ([`ferry_core::Hlc::read_stamp`]) after the last write the data
//! reflects, which a session knows from the floor in its read snapshot and
//! from the commits it followed (`sync/connection/stamp.rs`).

mod feed;
mod ghosts;
mod handoff;
mod indexing;
pub(crate) mod read;
mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_core::{Hlc, HybridClock, RandomSource, TimeSource};
use ferry_store::{Store, StoreExt, load_clock_floor, persist_clock};
use parking_lot::RwLock;
use serde_json::{Map, Value};
use tokio::sync::broadcast;

pub use feed::Retention;
pub use write::{Commit, Touched, Transaction};

use crate::TriplitError;
use crate::indexes::{self, Registry};
use crate::keys;
use crate::schema::Schema;

/// The collection and id under which the schema is readable as an entity
/// (upstream stores it there; `syncSchema` clients subscribe to it).
pub const SCHEMA_ENTITY: (&str, &str) = ("_metadata", "_schema");

/// The in-memory schema and the stamp of the write that stored it.
struct SchemaState {
    schema: Option<Arc<Schema>>,
    /// `Hlc::ZERO` for the schema loaded at open.
    stamp: Hlc,
}

/// The `_metadata/_schema` entity for a schema: `{id: "_schema", ...schema}`.
pub fn schema_entity(schema: &Schema) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("id".into(), Value::String(SCHEMA_ENTITY.1.into()));
    if let Value::Object(m) = schema.to_json() {
        doc.extend(m);
    }
    doc
}

/// The schema stored in a `_metadata/_schema` entity.
fn schema_from_entity(doc: &Map<String, Value>) -> Result<Schema, crate::schema::SchemaError> {
    let mut m = doc.clone();
    m.remove("id");
    Schema::from_json(&Value::Object(m))
}

/// The Triplit database.
pub struct TriplitDb {
    store: Arc<dyn Store>,
    clock: Arc<HybridClock>,
    rng: Arc<dyn RandomSource>,
    time: Arc<dyn TimeSource>,
    schema: RwLock<SchemaState>,
    /// Bumped every time the in-memory schema is replaced (sessions compare
    /// it to notice a schema change).
    schema_generation: AtomicU64,
    commits: broadcast::Sender<Arc<Commit>>,
    /// This process's commits waiting for the feed follower.
    handoff: Arc<handoff::Handoff>,
    /// Write-permission clauses prepared for earlier transactions.
    write_clauses: Arc<crate::permissions::ClauseCache>,
    /// Client schema hashes found compatible during this process's life.
    compatible_hashes: parking_lot::Mutex<std::collections::HashSet<u32>>,
    /// Indexes asked for on first use.
    index_builds: indexing::Builds,
}

impl TriplitDb {
    /// Opens the database stored in `store`: resumes the clock above the
    /// persisted floor and loads the stored schema.
    pub async fn open(
        store: Arc<dyn Store>,
        time: Arc<dyn TimeSource>,
        rng: Arc<dyn RandomSource>,
    ) -> Result<Self, TriplitError> {
        let (floor, lease_ms, schema, schema_doc) = store
            .read(|txn| {
                let floor = load_clock_floor(txn)?;
                let lease = txn
                    .get(&keys::clock_lease())?
                    .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                let schema = Schema::load_stored(txn)?.map(Arc::new);
                let entity = txn.get(&keys::entity(SCHEMA_ENTITY.0, SCHEMA_ENTITY.1))?;
                Ok::<_, TriplitError>((floor, lease, schema, entity))
            })
            .await?;
        // The schema is also readable as the `_metadata/_schema` entity;
        // databases written before that was kept get it now.
        let expected = schema.as_deref().map(schema_entity);
        let stored = schema_doc.and_then(|b| serde_json::from_slice::<Map<String, Value>>(&b).ok());
        if stored != expected {
            let stamp = floor;
            store
                .write(move |txn| {
                    let key = keys::entity(SCHEMA_ENTITY.0, SCHEMA_ENTITY.1);
                    match &expected {
                        Some(doc) => txn.put(&key, &serde_json::to_vec(doc).unwrap_or_default())?,
                        None => txn.delete(&key)?,
                    }
                    txn.put(
                        &keys::timestamp(SCHEMA_ENTITY.0, SCHEMA_ENTITY.1),
                        &stamp.to_bytes(),
                    )?;
                    Ok::<_, TriplitError>(())
                })
                .await?;
        }
        // Indexes of attributes the stored schema no longer has (none
        // unless a crash fell between versions): dropped; a no-op (one
        // read) otherwise.
        let allowed = Registry::for_schema(schema.as_deref());
        let stale = store
            .read(move |txn| {
                let stored = Registry::load_stored(txn)?;
                Ok::<_, TriplitError>(stored.and_then(|stored| {
                    let kept = stored.within(&allowed);
                    (kept != stored).then_some(kept)
                }))
            })
            .await?;
        if let Some(kept) = stale {
            store.write(move |txn| indexes::ensure(txn, &kept)).await?;
        }
        // Earlier versions handed out read stamps up to a persisted lease
        // ahead of the clock; clients may hold checkpoints up to it, so the
        // floor moves there once and the lease is dropped.
        let floor = if lease_ms > 0 {
            let lifted = floor.max(Hlc::new(lease_ms, 0));
            store
                .write(move |txn| {
                    persist_clock(txn, lifted)?;
                    txn.delete(&keys::clock_lease())?;
                    Ok::<_, TriplitError>(())
                })
                .await?;
            lifted
        } else {
            floor
        };
        let clock = Arc::new(HybridClock::new(time.clone(), floor));
        Ok(Self {
            store,
            clock,
            rng,
            time,
            schema: RwLock::new(SchemaState {
                schema,
                stamp: Hlc::ZERO,
            }),
            schema_generation: AtomicU64::new(0),
            commits: broadcast::channel(1024).0,
            handoff: Default::default(),
            write_clauses: Default::default(),
            compatible_hashes: Default::default(),
            index_builds: Default::default(),
        })
    }

    /// The current schema, `None` in schemaless mode.
    pub fn schema(&self) -> Option<Arc<Schema>> {
        self.schema.read().schema.clone()
    }

    /// The current schema and its generation, read together (the
    /// generation changes only while the schema is being replaced).
    pub fn schema_with_generation(&self) -> (Option<Arc<Schema>>, u64) {
        let state = self.schema.read();
        (
            state.schema.clone(),
            self.schema_generation.load(Ordering::Acquire),
        )
    }

    /// Changes every time the schema is replaced, on this node or (through
    /// the change feed) on another one sharing the store.
    pub fn schema_generation(&self) -> u64 {
        self.schema_generation.load(Ordering::Acquire)
    }

    /// Makes `schema`, stored by the write stamped `stamp`, the current
    /// one unless a later schema write was installed already. Client
    /// schema hashes stay known across a backwards-compatible change (the
    /// old schema's own hash joins them, as upstream adds every schema's
    /// hash to its compatibility list) and are forgotten on any other, so
    /// those clients go through the handshake again.
    fn install_schema(&self, schema: Option<Arc<Schema>>, stamp: Hlc) -> bool {
        let mut state = self.schema.write();
        if stamp <= state.stamp {
            return false;
        }
        let old = state.schema.take();
        {
            let mut hashes = self.compatible_hashes.lock();
            match (&old, &schema) {
                (Some(o), Some(n)) if crate::schema::issues::is_backwards_compatible(o, n) => {
                    hashes.insert(crate::schema::hash::schema_hash(
                        &o.to_json()["collections"],
                    ));
                }
                _ => hashes.clear(),
            }
        }
        state.schema = schema;
        state.stamp = stamp;
        self.index_builds.forget();
        self.schema_generation.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Takes a schema change seen in the change feed (written by this node
    /// or another one) into the in-memory schema.
    pub(crate) fn observe_schema(&self, commit: &Commit) {
        let Some((_, _, doc)) = commit
            .entities
            .iter()
            .find(|(c, id, _)| c == SCHEMA_ENTITY.0 && id == SCHEMA_ENTITY.1)
        else {
            return;
        };
        let schema = match doc {
            None => None,
            Some(doc) => match schema_from_entity(doc) {
                Ok(s) => Some(Arc::new(s)),
                Err(e) => {
                    tracing::warn!(error = %e.message, "ignoring an unreadable schema in the change feed");
                    return;
                }
            },
        };
        self.install_schema(schema, commit.timestamp);
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

    /// The highest timestamp handed out so far.
    pub fn last_timestamp(&self) -> Hlc {
        self.clock.last()
    }

    /// Every committed write, local or from another node, in change-feed
    /// order (for realtime fan-out). Needs [`TriplitDb::start_feed`].
    pub fn subscribe_commits(&self) -> broadcast::Receiver<Arc<Commit>> {
        self.commits.subscribe()
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
