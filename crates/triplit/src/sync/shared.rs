//! Work shared across connections.
//!
//! Prepared queries: connections whose queries prepare to the same tree
//! under the same schema generation hold one [`Subscription`] (its tree,
//! plans and maintenance spec are several kilobytes), kept here by weak
//! reference while any connection uses it.
//!
//! Results: after a commit, every connection holding the same subscription
//! that must run it again needs the same closure. The first to run it
//! offers the result to the subscription, which keeps it while other
//! connections hold it (and drops it with the subscription, so results of
//! queries nobody follows any more are not kept); the others reuse it when
//! it is at least as fresh as what they know about. A result carries the
//! change-feed position read before its snapshot (`seq`: every commit up to
//! it is included) and the clock floor the snapshot held (`cut`: the stamp
//! of its last write), so a connection may reuse it when `seq` covers the
//! commits it was told about and `cut` its client's own acknowledged
//! writes.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use ferry_core::Hlc;
use parking_lot::Mutex;

use super::closure::Subscription;
use super::view::HashedClosure;

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

/// The table of live subscriptions, one per process.
#[derive(Debug, Default)]
pub struct SharedResults {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Session;
    use serde_json::json;

    fn prepared() -> Subscription {
        Subscription::prepare(
            &json!({"collectionName": "todos"}),
            None,
            &Session::service(),
        )
        .expect("prepare")
    }

    fn result(seq: u64, cut: u64) -> SharedResult {
        SharedResult {
            seq,
            cut: Hlc::new(cut, 0),
            closure: Arc::new(Vec::new()),
        }
    }

    #[test]
    fn a_result_is_kept_only_while_another_connection_holds_the_query() {
        let table = SharedResults::default();
        let a = table.subscription(1, prepared());
        // Alone: nobody could reuse it, so nothing is kept.
        a.offer_result(result(5, 5));
        assert!(a.shared_result(0, Hlc::default()).is_none());

        let b = table.subscription(1, prepared());
        assert!(Arc::ptr_eq(&a, &b));
        a.offer_result(result(5, 5));
        assert_eq!(b.shared_result(5, Hlc::new(5, 0)).map(|r| r.seq), Some(5));
        // Too old for a connection that knows of later commits or writes.
        assert!(b.shared_result(6, Hlc::default()).is_none());
        assert!(b.shared_result(0, Hlc::new(6, 0)).is_none());
        // An older result does not replace a fresher one.
        b.offer_result(result(4, 9));
        assert_eq!(a.shared_result(0, Hlc::default()).map(|r| r.seq), Some(5));

        // Once the other holder has gone, the next result is dropped and
        // the kept one with it.
        drop(b);
        a.offer_result(result(7, 7));
        assert!(a.shared_result(0, Hlc::default()).is_none());
        // Another schema generation is another subscription.
        let c = table.subscription(2, prepared());
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
