//! The write path: building a transaction and applying it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ferry_core::Hlc;
use ferry_store::{StoreExt, WriteTxn, take_stamp};
use serde_json::{Map, Value};

use super::{SCHEMA_ENTITY, TriplitDb, ghosts, schema_entity};
use crate::changes::DbChanges;
use crate::indexes::{self, IndexWant, Registry};
use crate::merge::{apply_change, combine_patches, deep_is_empty};
use crate::permissions::{ClauseCache, WriteDelta, WriteOp, check_write_permissions};
use crate::schema::Schema;
use crate::session::Session;
use crate::{TriplitError, keys, types};

/// The most sets and deletes a commit may hold to be offered to the store
/// as a short write (one that may commit on the calling thread).
const SMALL_COMMIT: usize = 64;

/// `(collection, id, entity after the write or `None` when deleted)`.
pub type Touched = (String, String, Option<Map<String, Value>>);

/// A touched entity and the JSON it was stored as (`None` when deleted).
type Written = (Touched, Option<Vec<u8>>);

/// A committed write as fan-out sees it: the full post-state of every
/// touched entity (`None` = deleted).
#[derive(Debug, Clone)]
pub struct Commit {
    /// The change-feed position, when the store assigned one.
    pub seq: Option<u64>,
    /// The timestamp every touched entity was stamped with.
    pub timestamp: Hlc,
    /// `(collection, id, entity after the write or None when deleted)`.
    pub entities: Vec<Touched>,
    /// Not a commit but a notice that the follower missed change records
    /// (pruned before it read them) up to `seq`: every session must
    /// re-run all its queries (see [`Commit::resync`]).
    pub resync: bool,
    /// Content hashes of `entities`, each computed once for every
    /// connection, when first needed (see [`Commit::content_hash`]).
    hashes: Vec<std::sync::OnceLock<u64>>,
    /// Wire texts of `entities` as `sets` entries, each computed once when
    /// first needed (see [`Commit::encoded_set`]).
    encoded: Vec<std::sync::OnceLock<std::sync::Arc<str>>>,
    /// Interned keys of `entities`, each looked up once for every
    /// connection (see [`Commit::entity_key`]).
    keys: Vec<std::sync::OnceLock<crate::sync::EntityKey>>,
}

impl Commit {
    /// A commit of `entities` at `timestamp`.
    pub fn new(seq: Option<u64>, timestamp: Hlc, entities: Vec<Touched>) -> Self {
        let n = entities.len();
        Self {
            seq,
            timestamp,
            entities,
            resync: false,
            hashes: (0..n).map(|_| std::sync::OnceLock::new()).collect(),
            encoded: (0..n).map(|_| std::sync::OnceLock::new()).collect(),
            keys: (0..n).map(|_| std::sync::OnceLock::new()).collect(),
        }
    }

    /// The interned key of the `index`th entity.
    pub fn entity_key(&self, index: usize) -> crate::sync::EntityKey {
        self.keys[index]
            .get_or_init(|| {
                let (c, id, _) = &self.entities[index];
                crate::sync::EntityKey::new(c, id)
            })
            .clone()
    }

    /// The notice that change records up to `seq` were missed: it touches
    /// nothing, and sessions treat it like a lagged broadcast.
    pub fn resync(seq: u64) -> Self {
        Self {
            resync: true,
            ..Self::new(Some(seq), Hlc::ZERO, Vec::new())
        }
    }

    /// The `index`th entity as an encoded `sets` entry of `ENTITY_DATA`
    /// (`[id, entity]`, empty for a delete), computed once for every
    /// connection that sends it; a bulk commit encodes only what is sent.
    pub fn encoded_set(&self, index: usize) -> std::sync::Arc<str> {
        self.encoded[index]
            .get_or_init(|| match &self.entities[index] {
                (_, id, Some(e)) => std::sync::Arc::from(crate::superjson::encode_set_entry(id, e)),
                (_, _, None) => std::sync::Arc::from(""),
            })
            .clone()
    }

    /// The content hash of the `index`th entity's document (`0` for a
    /// delete), as realtime views compare versions.
    pub fn content_hash(&self, index: usize) -> u64 {
        *self.hashes[index].get_or_init(|| {
            self.entities[index]
                .2
                .as_ref()
                .map_or(0, crate::sync::view::content_hash)
        })
    }
}

/// A batch of writes being assembled, with upstream's in-transaction
/// rules: a later insert of an id replaces an earlier one, updates combine,
/// deleting an entity inserted in the same transaction just drops the
/// insert. Lookups by id go through a hash index, so assembling a batch of
/// `n` writes is `O(n)` (a `/bulk-insert` of 100,000 entities used to spend
/// its time in linear searches here).
#[derive(Debug, Default, Clone)]
pub struct Transaction {
    changes: DbChanges,
    /// Per collection: id → position in its `sets`.
    sets_at: HashMap<String, HashMap<String, usize>>,
    /// Per collection: the ids in its `deletes`.
    deleted: HashMap<String, HashSet<String>>,
}

impl Transaction {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps changes received from a client (`CHANGES`, `/apply-changes`).
    pub fn from_changes(changes: DbChanges) -> Self {
        let mut tx = Self {
            changes,
            ..Self::default()
        };
        for (name, c) in &tx.changes.collections {
            tx.sets_at.insert(name.clone(), positions(&c.sets));
            tx.deleted
                .insert(name.clone(), c.deletes.iter().cloned().collect());
        }
        tx
    }

    /// Queues an insert (the entity must carry its `id`).
    pub fn insert(&mut self, collection: &str, id: String, entity: Map<String, Value>) {
        let c = self.changes.collection_mut(collection);
        let at = self.sets_at.entry(collection.to_string()).or_default();
        match at.get(&id) {
            Some(&i) => c.sets[i].1 = entity,
            None => {
                at.insert(id.clone(), c.sets.len());
                c.sets.push((id, entity));
            }
        }
    }

    /// Queues an update (an encoded patch without `id`).
    pub fn update(&mut self, collection: &str, id: String, patch: Map<String, Value>) {
        if deep_is_empty(&patch) {
            return;
        }
        let c = self.changes.collection_mut(collection);
        let at = self.sets_at.entry(collection.to_string()).or_default();
        match at.get(&id) {
            Some(&i) => combine_patches(&mut c.sets[i].1, &patch),
            None => {
                at.insert(id.clone(), c.sets.len());
                c.sets.push((id, patch));
            }
        }
    }

    /// Queues a delete.
    pub fn delete(&mut self, collection: &str, id: String) {
        let c = self.changes.collection_mut(collection);
        let at = self.sets_at.entry(collection.to_string()).or_default();
        if let Some(pos) = at.get(&id).copied() {
            let was_insert = c.sets[pos].1.contains_key("id");
            c.sets.remove(pos);
            // Rare (a delete of a write queued in the same batch): the
            // positions after `pos` moved.
            *at = positions(&c.sets);
            if was_insert {
                return;
            }
        }
        if self
            .deleted
            .entry(collection.to_string())
            .or_default()
            .insert(id.clone())
        {
            c.deletes.push(id);
        }
    }

    /// The queued changes.
    pub fn changes(&self) -> &DbChanges {
        &self.changes
    }
}

fn positions(sets: &[(String, Map<String, Value>)]) -> HashMap<String, usize> {
    sets.iter()
        .enumerate()
        .map(|(i, (id, _))| (id.clone(), i))
        .collect()
}

fn write_permission_error(collection: &str, id: &str, op: &str, context: &str) -> TriplitError {
    TriplitError::new(
        "WritePermissionError",
        401,
        format!(
            "'{op}' permission for the collection '{collection}' prevented the {op} of the entity with id '{id}'."
        ),
        Some(context.to_string()),
    )
}

fn is_insert(change: &Map<String, Value>) -> bool {
    // Upstream tests `!!change.id`.
    match change.get("id") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(_) => true,
    }
}

fn read_entity(
    txn: &dyn WriteTxn,
    collection: &str,
    id: &str,
) -> Result<Option<Map<String, Value>>, TriplitError> {
    match txn.get(&keys::entity(collection, id))? {
        None => Ok(None),
        Some(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            _ => Err(TriplitError::internal(format!(
                "stored entity {collection}/{id} is not a JSON object"
            ))),
        },
    }
}

/// A fresh insert of `collection/id`: the set items a deleted entity of
/// that id had are written as removed (`ghosts`), and forgotten.
fn reinsert(
    txn: &mut dyn WriteTxn,
    collection: &str,
    id: &str,
    entity: &mut Map<String, Value>,
    set_paths: &[Vec<&str>],
) -> Result<(), TriplitError> {
    let key = keys::ghost(collection, id);
    let Some(bytes) = txn.get(&key)? else {
        return Ok(());
    };
    if let Ok(Value::Object(ghost)) = serde_json::from_slice::<Value>(&bytes) {
        ghosts::carry(entity, &ghost, set_paths);
    }
    txn.delete(&key)?;
    Ok(())
}

/// Applies `changes` inside `txn` with timestamp `stamp`, keeping the
/// attribute indexes the stored registry names exact. Also returns the
/// indexes the write-permission checks would have used.
fn apply(
    txn: &mut dyn WriteTxn,
    schema: Option<&Arc<Schema>>,
    session: &Session,
    changes: &DbChanges,
    stamp: Hlc,
    clauses: &ClauseCache,
) -> Result<(Vec<Written>, Vec<IndexWant>), TriplitError> {
    let stamp_bytes = stamp.to_bytes();
    let registry = Registry::load(txn)?;
    // `touched` in order of last write; a slot is emptied when the same
    // entity is written again later in the batch (it moves to the end).
    let mut touched: Vec<Option<Written>> = Vec::new();
    let mut touched_at: HashMap<(&str, &str), usize> = HashMap::new();
    let mut deltas: Vec<WriteDelta> = Vec::new();
    for (collection, c) in &changes.collections {
        if collection == SCHEMA_ENTITY.0
            && (c.sets.iter().any(|(id, _)| id == SCHEMA_ENTITY.1)
                || c.deletes.iter().any(|id| id == SCHEMA_ENTITY.1))
        {
            return Err(write_permission_error(
                collection,
                SCHEMA_ENTITY.1,
                "write",
                "The schema changes only through /override-schema.",
            ));
        }
        if !session.is_service && collection == "_metadata" {
            let id = c
                .sets
                .first()
                .map(|s| s.0.as_str())
                .or(c.deletes.first().map(String::as_str))
                .unwrap_or("");
            return Err(write_permission_error(
                collection,
                id,
                "write",
                "Only the service token may write to '_metadata'.",
            ));
        }
        // Write permissions: every change is recorded here and checked
        // against the post-transaction state once the batch is applied.
        let guarded = !session.is_service
            && schema
                .and_then(|s| s.collection(collection))
                .is_some_and(|col| col.permissions.is_some());
        let indexed = !registry.paths(collection).is_empty();
        let collection_schema = schema.and_then(|s| s.collection(collection));
        let set_paths = collection_schema.map(ghosts::set_paths).unwrap_or_default();
        for id in &c.deletes {
            let prev = if guarded || indexed || !set_paths.is_empty() {
                read_entity(txn, collection, id)?
            } else {
                None
            };
            if let Some(ghost) = prev
                .as_ref()
                .and_then(|p| ghosts::of_deleted(p, &set_paths))
            {
                let bytes = serde_json::to_vec(&ghost)
                    .map_err(|e| TriplitError::internal(e.to_string()))?;
                txn.put(&keys::ghost(collection, id), &bytes)?;
            }
            if let Some(p) = prev.as_ref().filter(|_| indexed) {
                let before = indexes::encodings(&registry, collection, p);
                indexes::maintain(txn, &registry, collection, id, Some(&before), None)?;
            }
            if guarded {
                deltas.push(WriteDelta {
                    collection: collection.clone(),
                    id: id.clone(),
                    op: WriteOp::Delete,
                    prev,
                    next: None,
                });
            }
            txn.delete(&keys::entity(collection, id))?;
            txn.put(&keys::timestamp(collection, id), &stamp_bytes)?;
            touch(&mut touched, &mut touched_at, collection, id, None, None);
        }
        for (id, change) in &c.sets {
            let current = read_entity(txn, collection, id)?;
            let prev = if guarded { current.clone() } else { None };
            let before = current
                .as_ref()
                .filter(|_| indexed)
                .map(|e| indexes::encodings(&registry, collection, e));
            let next = if is_insert(change) {
                if let Some(col) = collection_schema {
                    types::validate_encoded(col, change, current.is_some())?;
                }
                match current {
                    Some(mut e) => {
                        apply_change(&mut e, change);
                        e
                    }
                    None => {
                        let mut e = change.clone();
                        if !set_paths.is_empty() {
                            reinsert(txn, collection, id, &mut e, &set_paths)?;
                        }
                        e
                    }
                }
            } else {
                let Some(mut e) = current else { continue };
                if let Some(col) = collection_schema {
                    types::validate_encoded(col, change, true)?;
                }
                apply_change(&mut e, change);
                e
            };
            let bytes =
                serde_json::to_vec(&next).map_err(|e| TriplitError::internal(e.to_string()))?;
            txn.put(&keys::entity(collection, id), &bytes)?;
            txn.put(&keys::timestamp(collection, id), &stamp_bytes)?;
            if indexed {
                let after = indexes::encodings(&registry, collection, &next);
                indexes::maintain(
                    txn,
                    &registry,
                    collection,
                    id,
                    before.as_deref(),
                    Some(&after),
                )?;
            }
            if guarded {
                deltas.push(WriteDelta {
                    collection: collection.clone(),
                    id: id.clone(),
                    op: if prev.is_some() {
                        WriteOp::Update
                    } else {
                        WriteOp::Insert
                    },
                    prev,
                    next: Some(next.clone()),
                });
            }
            touch(
                &mut touched,
                &mut touched_at,
                collection,
                id,
                Some(next),
                Some(bytes),
            );
        }
    }
    let mut wanted = Vec::new();
    if let Some(schema) = schema
        && !deltas.is_empty()
    {
        let view: &dyn ferry_store::ReadTxn = &*txn;
        wanted = check_write_permissions(view, schema, session, &deltas, clauses)?;
    }
    Ok((touched.into_iter().flatten().collect(), wanted))
}

/// Records the post-state of `collection/id`, replacing (and moving to the
/// end) an earlier record of the same entity in this batch.
fn touch<'a>(
    touched: &mut Vec<Option<Written>>,
    touched_at: &mut HashMap<(&'a str, &'a str), usize>,
    collection: &'a str,
    id: &'a str,
    entity: Option<Map<String, Value>>,
    stored: Option<Vec<u8>>,
) {
    if let Some(i) = touched_at.insert((collection, id), touched.len()) {
        touched[i] = None;
    }
    touched.push(Some((
        (collection.to_string(), id.to_string(), entity),
        stored,
    )));
}

/// The change-feed record of a commit
/// (`{"ts": [ms, counter], "entities": [[c, id, e|null]…]}`), written from
/// each entity's stored JSON, so no entity is serialized a second time.
fn feed_record<'a>(
    stamp: Hlc,
    entities: impl Iterator<Item = (&'a str, &'a str, Option<&'a [u8]>)> + Clone,
) -> Vec<u8> {
    let size: usize = entities
        .clone()
        .map(|(c, id, e)| c.len() + id.len() + e.map_or(4, <[u8]>::len) + 16)
        .sum();
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(
        format!(r#"{{"ts":[{},{}],"entities":["#, stamp.ms, stamp.counter).as_bytes(),
    );
    for (i, (c, id, entity)) in entities.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, c);
        out.push(b',');
        let _ = serde_json::to_writer(&mut out, id);
        out.push(b',');
        out.extend_from_slice(entity.unwrap_or(b"null"));
        out.push(b']');
    }
    out.extend_from_slice(b"]}");
    out
}

/// [`feed_record`] of entities not yet serialized.
fn feed_record_of(stamp: Hlc, touched: &[Touched]) -> Vec<u8> {
    let bytes: Vec<Option<Vec<u8>>> = touched
        .iter()
        .map(|(_, _, e)| e.as_ref().and_then(|e| serde_json::to_vec(e).ok()))
        .collect();
    feed_record(
        stamp,
        touched
            .iter()
            .zip(&bytes)
            .map(|((c, id, _), b)| (c.as_str(), id.as_str(), b.as_deref())),
    )
}

impl TriplitDb {
    /// Commits `tx` as one durable transaction on behalf of `session`.
    /// Returns the timestamp it was stamped with. Nothing of a rejected
    /// transaction is stored.
    pub async fn commit(&self, session: &Session, tx: Transaction) -> Result<Hlc, TriplitError> {
        if tx.changes.is_empty() {
            return Ok(self.clock.last());
        }
        let schema = self.schema();
        let clock = self.clock.clone();
        let clauses = self.write_clauses.clone();
        let session = session.clone();
        let changes = Arc::new(tx.changes);
        let started = std::time::Instant::now();
        let handoff = self.handoff.enabled().then(|| self.handoff.clone());
        let small = changes.len() <= SMALL_COMMIT;
        let commit = move |txn: &mut dyn WriteTxn| {
            let stamp = take_stamp(txn, &clock)?;
            let (written, wanted) =
                apply(txn, schema.as_ref(), &session, &changes, stamp, &clauses)?;
            let record = feed_record(
                stamp,
                written
                    .iter()
                    .map(|((c, id, _), bytes)| (c.as_str(), id.as_str(), bytes.as_deref())),
            );
            let touched: Vec<Touched> = written.into_iter().map(|(t, _)| t).collect();
            match &handoff {
                // The feed follower takes the commit as it is instead
                // of reading the record back (`handoff.rs`).
                Some(handoff) => {
                    let handoff = handoff.clone();
                    let bytes = record.len();
                    txn.set_change_with(
                        record,
                        Box::new(move |seq| {
                            handoff.deposit(Commit::new(Some(seq), stamp, touched), bytes);
                        }),
                    );
                }
                None => txn.set_change(record),
            }
            Ok::<_, TriplitError>((stamp, wanted))
        };
        // A client's few entities may commit on this thread (see
        // `Store::write_small_boxed`); a bulk import never does.
        let result = match small {
            true => self.store.write_small(commit).await,
            false => self.store.write(commit).await,
        };
        let ((stamp, wanted), _seq) = result?;
        self.want_indexes(wanted);
        metrics::counter!("ferry_commits_total", "protocol" => "triplit").increment(1);
        metrics::histogram!("ferry_commit_duration_seconds", "protocol" => "triplit")
            .record(started.elapsed().as_secs_f64());
        Ok(stamp)
    }
}

impl TriplitDb {
    /// Deletes every entity; with `full`, the schema too. Entity
    /// timestamps are kept (they are what sync checkpoints compare with).
    pub async fn clear(&self, full: bool) -> Result<(), TriplitError> {
        let clock = self.clock.clone();
        let result = self
            .store
            .write(move |txn| {
                let mut keys_found = Vec::new();
                txn.scan(
                    &ferry_store::KeyRange::prefix(&keys::all_entities()),
                    false,
                    &mut |k, _| {
                        keys_found.push(k.to_vec());
                        std::ops::ControlFlow::Continue(())
                    },
                )?;
                let stamp = take_stamp(txn, &clock)?;
                let mut touched = Vec::new();
                let schema_key = keys::entity(SCHEMA_ENTITY.0, SCHEMA_ENTITY.1);
                for k in keys_found {
                    // Upstream writes the schema back after clearing.
                    if !full && k == schema_key {
                        continue;
                    }
                    txn.delete(&k)?;
                    if let Some((c, id)) = keys::parse_entity(&k) {
                        txn.put(&keys::timestamp(&c, &id), &stamp.to_bytes())?;
                        touched.push((c, id, None));
                    }
                }
                // No entity is left, so no index entry may be; without a
                // schema no index is maintained at all.
                indexes::clear_entries(txn)?;
                if full {
                    txn.delete(&keys::schema())?;
                    indexes::ensure(txn, &Registry::default())?;
                }
                txn.set_change(feed_record_of(stamp, &touched));
                Ok::<_, TriplitError>((stamp, touched))
            })
            .await;
        let ((stamp, _), _) = result?;
        if full {
            self.install_schema(None, stamp);
        }
        Ok(())
    }

    /// Replaces the schema (or removes it with `None`), durably, in one
    /// stamped write that also stores it as the `_metadata/_schema` entity
    /// and records it in the change feed: `syncSchema` clients receive it
    /// like any entity, and every node's sessions (through the feed) move
    /// to the new schema.
    pub async fn set_schema(&self, schema: Option<Schema>) -> Result<(), TriplitError> {
        let bytes = schema
            .as_ref()
            .map(|s| s.to_json().to_string().into_bytes());
        let doc = schema.as_ref().map(schema_entity);
        let allowed = crate::indexes::Registry::for_schema(schema.as_ref());
        let clock = self.clock.clone();
        let result = self
            .store
            .write(move |txn| {
                let stamp = take_stamp(txn, &clock)?;
                let (c, id) = SCHEMA_ENTITY;
                match (&bytes, &doc) {
                    (Some(b), Some(d)) => {
                        txn.put(&keys::schema(), b)?;
                        let entity = serde_json::to_vec(d)
                            .map_err(|e| TriplitError::internal(e.to_string()))?;
                        txn.put(&keys::entity(c, id), &entity)?;
                    }
                    _ => {
                        txn.delete(&keys::schema())?;
                        txn.delete(&keys::entity(c, id))?;
                    }
                }
                txn.put(&keys::timestamp(c, id), &stamp.to_bytes())?;
                // The attribute indexes follow the schema in the same
                // transaction: those of attributes it removes are dropped
                // (new ones are built when a query first wants them).
                let stored = crate::indexes::Registry::load_stored(txn)?;
                if let Some(stored) = stored {
                    crate::indexes::ensure(txn, &stored.within(&allowed))?;
                }
                let touched = vec![(c.to_string(), id.to_string(), doc.clone())];
                txn.set_change(feed_record_of(stamp, &touched));
                Ok::<_, TriplitError>(stamp)
            })
            .await;
        let (stamp, _) = result?;
        self.install_schema(schema.map(Arc::new), stamp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn feed_records_round_trip_through_the_follower_parser() {
        let e = json!({"id": "a", "n": 1.5, "s": {"x": true}, "q": "say \"hi\"\n"});
        let touched: Vec<Touched> = vec![
            ("c".into(), "a".into(), e.as_object().cloned()),
            ("c".into(), "b".into(), None),
            ("d\"x".into(), "é\u{1F600}".into(), Some(Map::new())),
        ];
        let bytes = feed_record_of(Hlc::new(1_700_000_000_000, 7), &touched);
        // Exactly what serializing the record as one JSON value gives.
        let whole = json!({"ts": [1_700_000_000_000u64, 7], "entities": touched});
        assert_eq!(bytes, serde_json::to_vec(&whole).expect("json"));
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(text.starts_with(r#"{"ts":[1700000000000,7],"entities":[["c","a",{"#));
        let c = super::super::feed::parse_record(3, &bytes).expect("parses");
        assert_eq!(c.timestamp, Hlc::new(1_700_000_000_000, 7));
        assert_eq!(c.entities, touched);
    }

    #[test]
    fn batches_dedupe_by_id_in_linear_time_with_upstreams_rules() {
        let m = |v: Value| v.as_object().cloned().unwrap_or_default();
        let mut tx = Transaction::new();
        tx.insert("c", "a".into(), m(json!({"id": "a", "n": 1})));
        tx.update("c", "b".into(), m(json!({"n": 2})));
        tx.insert("c", "a".into(), m(json!({"id": "a", "n": 3})));
        tx.update("c", "b".into(), m(json!({"k": 4})));
        tx.delete("c", "a".into());
        tx.delete("c", "b".into());
        tx.delete("c", "b".into());
        tx.insert("c", "d".into(), m(json!({"id": "d"})));
        tx.update("c", "d".into(), m(json!({"k": 5})));
        let (_, c) = &tx.changes().collections[0];
        // The insert of `a` was dropped by its delete; `b`'s patch became a
        // delete (once); `d` got its update merged into the insert.
        assert_eq!(c.deletes, ["b"]);
        assert_eq!(c.sets.len(), 1);
        assert_eq!(c.sets[0].0, "d");
        assert_eq!(c.sets[0].1.get("k"), Some(&json!(5)));
    }
}
