//! Local commits handed to the feed follower without a store round trip.
//!
//! Every commit reaches fan-out through the change-feed follower
//! (`feed.rs`), in feed order. For a commit made by this process the
//! follower does not need to read the record back from the store and parse
//! it again: the commit path leaves the [`Commit`] here, keyed by the
//! sequence number the store assigned, from the store's post-commit hook
//! ([`ferry_store::WriteTxn::set_change_with`]), which runs before the store
//! announces the new position. So when the follower sees the feed reach
//! `n`, the local commits up to `n` are already here; a position missing
//! here (a record from another node sharing the store, or a store that does
//! not run the hook) is read from the feed as before. The follower takes
//! positions strictly in order, so subscribers see the feed's order either
//! way.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::Commit;

/// Commits waiting for the follower, by feed position.
#[derive(Default)]
pub(crate) struct Handoff {
    /// Set once a follower runs: without one nothing would take the
    /// commits out again.
    enabled: AtomicBool,
    /// Each commit with the size of its change record.
    commits: Mutex<BTreeMap<u64, (Commit, usize)>>,
}

impl Handoff {
    /// Starts accepting commits (a follower is about to take them).
    pub(crate) fn enable(&self) {
        self.enabled.store(true, Ordering::Release);
    }

    /// Whether commits are accepted.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Leaves `commit` (which must carry its feed position) for the
    /// follower, with the size of its change record in bytes.
    pub(crate) fn deposit(&self, commit: Commit, record_bytes: usize) {
        let Some(seq) = commit.seq else { return };
        if self.enabled() {
            self.commits.lock().insert(seq, (commit, record_bytes));
        }
    }

    /// The commit at feed position `seq` and its record's size, if it was
    /// left here; anything left for an earlier position is dropped (the
    /// follower is past it).
    pub(crate) fn take(&self, seq: u64) -> Option<(Commit, usize)> {
        let mut commits = self.commits.lock();
        while let Some(entry) = commits.first_entry() {
            if *entry.key() >= seq {
                break;
            }
            entry.remove();
        }
        commits.remove(&seq)
    }

    /// Commits waiting (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.commits.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::Hlc;

    fn commit(seq: u64) -> Commit {
        Commit::new(Some(seq), Hlc::new(seq, 0), Vec::new())
    }

    #[test]
    fn takes_in_order_and_drops_what_the_follower_passed() {
        let h = Handoff::default();
        h.deposit(commit(1), 10);
        assert!(
            h.take(1).is_none(),
            "nothing is kept before a follower runs"
        );
        h.enable();
        for seq in [2, 3, 5, 6] {
            h.deposit(commit(seq), seq as usize);
        }
        assert_eq!(h.take(3).map(|(c, n)| (c.seq, n)), Some((Some(3), 3)));
        // 2 was passed (read from the feed instead): dropped, not returned.
        assert_eq!(h.len(), 2);
        assert!(h.take(4).is_none());
        assert_eq!(h.take(6).and_then(|(c, _)| c.seq), Some(6));
        assert_eq!(h.len(), 0);
    }
}
