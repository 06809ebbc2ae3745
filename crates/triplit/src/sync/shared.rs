//! Results shared across connections.
//!
//! After a commit, every connection subscribed to the same prepared query
//! (same tree, same bound permissions) needs the same closure. The first
//! connection to refresh computes it and leaves it here; the others reuse
//! it when it is at least as fresh as what they know about. A result is
//! stored with the change-feed position read before its snapshot (`seq`:
//! every commit up to it is included) and the clock floor the snapshot held
//! (`cut`: the stamp of its last write), so a connection may reuse it when
//! `seq` covers the commits it was told about and `cut` its client's own
//! acknowledged writes.
//!
//! Prepared queries are shared the same way: connections whose queries
//! prepare to the same tree under the same schema generation hold one
//! [`Subscription`] (its tree, plans and maintenance spec are several
//! kilobytes), kept here by weak reference while any connection uses it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use ferry_core::Hlc;
use parking_lot::Mutex;

use super::closure::Subscription;
use super::view::HashedClosure;
use crate::query::PreparedQuery;

/// Distinct prepared queries kept before the table is cleared.
const MAX_QUERIES: usize = 10_000;

/// One computed closure.
#[derive(Debug, Clone)]
pub struct SharedResult {
    /// Every commit up to this feed position is reflected.
    pub seq: u64,
    /// Every write stamped up to this is reflected.
    pub cut: Hlc,
    /// The closure.
    pub closure: Arc<HashedClosure>,
}

/// The table, one per process.
#[derive(Debug, Default)]
pub struct SharedResults {
    by_hash: Mutex<HashMap<u32, Vec<(PreparedQuery, SharedResult)>>>,
    subscriptions: Mutex<Interned>,
}

/// Live prepared queries by schema generation and query hash.
#[derive(Debug, Default)]
struct Interned {
    by_key: HashMap<(u64, u32), Vec<Weak<Subscription>>>,
    entries: usize,
    sweep_at: usize,
}

impl SharedResults {
    /// A result for `query` covering `known_seq` and the writes stamped up
    /// to `min_cut`.
    pub fn get(&self, query: &PreparedQuery, known_seq: u64, min_cut: Hlc) -> Option<SharedResult> {
        let map = self.by_hash.lock();
        map.get(&query.hash())?
            .iter()
            .find(|(q, r)| r.seq >= known_seq && r.cut >= min_cut && q.same_as(query))
            .map(|(_, r)| r.clone())
    }

    /// The shared copy of `sub`, prepared under schema `generation`: an
    /// identical live one if there is one, else `sub` itself.
    pub fn subscription(&self, generation: u64, sub: Subscription) -> Arc<Subscription> {
        let mut table = self.subscriptions.lock();
        let slot = table
            .by_key
            .entry((generation, sub.prepared().hash()))
            .or_default();
        if let Some(live) = slot
            .iter()
            .filter_map(Weak::upgrade)
            .find(|s| s.prepared().same_as(sub.prepared()))
        {
            return live;
        }
        slot.retain(|w| w.strong_count() > 0);
        let sub = Arc::new(sub);
        slot.push(Arc::downgrade(&sub));
        table.entries += 1;
        if table.entries >= table.sweep_at.max(1024) {
            table.by_key.retain(|_, v| {
                v.retain(|w| w.strong_count() > 0);
                !v.is_empty()
            });
            table.entries = table.by_key.values().map(Vec::len).sum();
            table.sweep_at = table.entries * 2;
        }
        sub
    }

    /// Stores a freshly computed result (replacing an older one).
    pub fn put(&self, query: &PreparedQuery, result: SharedResult) {
        let mut map = self.by_hash.lock();
        if map.len() >= MAX_QUERIES {
            map.clear();
        }
        let slot = map.entry(query.hash()).or_default();
        match slot.iter_mut().find(|(q, _)| q.same_as(query)) {
            Some((_, existing)) => {
                if result.seq >= existing.seq && result.cut >= existing.cut {
                    *existing = result;
                }
            }
            None => slot.push((query.clone(), result)),
        }
    }
}
