//! Entity keys `(collection, id)` interned process-wide.
//!
//! Every connection's view remembers, per entity it sent, the key several
//! times over (sent versions, query members, reference counts), and
//! thousands of connections hold the same entities. An [`EntityKey`] is one
//! pointer to a shared allocation: the interner hands out the same
//! allocation for the same `(collection, id)` as long as any key for it is
//! alive, so keys compare and hash by address, and a connection pays 8
//! bytes per key instead of two strings.
//!
//! The table holds weak references in shards; dead entries are swept when
//! a shard has grown to twice its size after the last sweep.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, Weak};

use parking_lot::Mutex;

/// Shards of the interner (a power of two).
const SHARDS: usize = 16;
/// Entries a shard may hold before its first sweep.
const MIN_SWEEP: usize = 1024;

#[derive(Debug)]
struct Inner {
    /// `collection` then `id`.
    text: Box<str>,
    /// Length of the collection name in `text`.
    split: usize,
}

/// An interned `(collection, id)`.
#[derive(Clone)]
pub struct EntityKey(Arc<Inner>);

impl EntityKey {
    /// The key for `collection` and `id` (shared with every live key for
    /// the same entity).
    pub fn new(collection: &str, id: &str) -> Self {
        let h = content_hash(collection, id);
        let shard = &TABLE[(h as usize) & (SHARDS - 1)];
        let mut shard = shard.lock();
        shard.get_or_insert(h, collection, id)
    }

    /// The collection.
    pub fn collection(&self) -> &str {
        &self.0.text[..self.0.split]
    }

    /// The entity id.
    pub fn id(&self) -> &str {
        &self.0.text[self.0.split..]
    }
}

/// The keys of every entity `changes` sets or deletes.
pub fn keys_of(changes: &crate::DbChanges) -> impl Iterator<Item = EntityKey> + '_ {
    changes.collections.iter().flat_map(|(c, cc)| {
        cc.sets
            .iter()
            .map(move |(id, _)| EntityKey::new(c, id))
            .chain(cc.deletes.iter().map(move |id| EntityKey::new(c, id)))
    })
}

impl crate::query::RankId for EntityKey {
    fn rank_id(&self) -> &str {
        self.id()
    }
}

impl PartialEq for EntityKey {
    fn eq(&self, other: &Self) -> bool {
        // One live allocation per entity: equal keys share it.
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for EntityKey {}

impl Hash for EntityKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0), state)
    }
}

impl fmt::Debug for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.collection(), self.id())
    }
}

fn content_hash(collection: &str, id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    collection.hash(&mut h);
    id.hash(&mut h);
    h.finish()
}

#[derive(Default)]
struct Shard {
    by_hash: HashMap<u64, Vec<Weak<Inner>>>,
    entries: usize,
    sweep_at: usize,
}

impl Shard {
    fn get_or_insert(&mut self, h: u64, collection: &str, id: &str) -> EntityKey {
        let bucket = self.by_hash.entry(h).or_default();
        for w in bucket.iter() {
            if let Some(k) = w.upgrade()
                && k.split == collection.len()
                && k.text[..k.split] == *collection
                && k.text[k.split..] == *id
            {
                return EntityKey(k);
            }
        }
        let mut text = String::with_capacity(collection.len() + id.len());
        text.push_str(collection);
        text.push_str(id);
        let key = Arc::new(Inner {
            text: text.into_boxed_str(),
            split: collection.len(),
        });
        bucket.retain(|w| w.strong_count() > 0);
        bucket.push(Arc::downgrade(&key));
        self.entries += 1;
        if self.entries >= self.sweep_at.max(MIN_SWEEP) {
            self.sweep();
        }
        EntityKey(key)
    }

    fn sweep(&mut self) {
        self.by_hash.retain(|_, b| {
            b.retain(|w| w.strong_count() > 0);
            !b.is_empty()
        });
        self.entries = self.by_hash.values().map(Vec::len).sum();
        self.sweep_at = self.entries * 2;
        if self.by_hash.capacity() > self.by_hash.len() * 4 {
            self.by_hash.shrink_to_fit();
        }
    }
}

static TABLE: LazyLock<[Mutex<Shard>; SHARDS]> =
    LazyLock::new(|| std::array::from_fn(|_| Mutex::new(Shard::default())));

/// Live and not yet swept entries of the interner (for tests).
#[cfg(test)]
fn entries() -> usize {
    TABLE.iter().map(|s| s.lock().entries).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn same_entity_same_key_and_parts_round_trip() {
        let a = EntityKey::new("todos", "1");
        let b = EntityKey::new("todos", "1");
        assert_eq!(a, b);
        assert_eq!(a.collection(), "todos");
        assert_eq!(a.id(), "1");
        // The split is kept: "todo" + "s1" is another entity.
        let c = EntityKey::new("todo", "s1");
        assert_ne!(a, c);
        assert_eq!(c.collection(), "todo");
        assert_eq!(c.id(), "s1");
        let set: HashSet<EntityKey> = [a.clone(), b, c].into_iter().collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn dead_keys_are_swept() {
        for i in 0..(MIN_SWEEP * SHARDS * 4) {
            drop(EntityKey::new("sweep", &i.to_string()));
        }
        // Sweeps keep each shard within twice its live entries (plus the
        // first sweep's threshold), whatever other tests hold.
        assert!(entries() <= SHARDS * MIN_SWEEP * 2, "{}", entries());
        let again = EntityKey::new("sweep", "7");
        assert_eq!(again.id(), "7");
    }
}
