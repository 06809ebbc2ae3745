//! Settling: restating entities a client may have applied out of order.
//!
//! The published client (`@triplit/client` 1.0.50) handles each incoming
//! message in its own async handler, without waiting for the previous one.
//! When two `ENTITY_DATA` frames reach it in one socket read — the client's
//! event loop was busy while both arrived — both are applied concurrently,
//! each in its own storage transaction, and the one with more work commits
//! last and wins for every entity they share, even when it is the older
//! one. A set followed by a delete can then leave the deleted (or evicted)
//! entity in the client's cache for good, and a delete followed by a set
//! can lose the entity. The reference server suffers the same; the
//! conformance test `client-frame-race.test.mjs` shows it with a stand-in
//! server.
//!
//! The server cannot see the client's reads, but it sees the hazard: an
//! entity sent (set or deleted) twice within [`WINDOW_MS`]. Such entities
//! become suspects; once the connection has sent nothing for
//! [`QUIET_MS`], it restates them in one more frame with a fresh stamp —
//! the current version of those it holds as a delete and a set (the race
//! can also leave a live query's result behind the client's store, which a
//! set of what the store holds would not change), a delete for the others —
//! which the client applies on its own (a connection that never goes quiet
//! restates [`MAX_WAIT_MS`] after its first suspect). A restatement counts
//! as a send of its entities: a frame that follows it within the window
//! with one of them makes that one a suspect again, as the two may race.
//!
//! `CHANGES_ACK` races the same way: the client applies its acknowledged
//! write to its synced copy in a handler of its own. An entity sent in a
//! frame shortly before the ack, or sent shortly after it in a version
//! another commit touched (not a mere echo of the client's write), becomes
//! a suspect too. Idle connections keep nothing here.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;

use ferry_core::Hlc;

use super::entity_key::{EntityKey, keys_of};
use crate::DbChanges;

/// Two sends of one entity closer than this make it a suspect.
pub const WINDOW_MS: u64 = 1_000;
/// How long a connection must have sent nothing before it restates.
pub const QUIET_MS: u64 = 500;
/// How long a suspect waits at most: a connection that never goes quiet
/// restates this long after its first suspect.
pub const MAX_WAIT_MS: u64 = 2_000;

/// Recent sends of one connection.
#[derive(Debug, Default)]
pub struct Settle {
    /// When each recently sent entity was last sent.
    last: Recent<EntityKey>,
    /// When each entity of a recently acknowledged `CHANGES` was acked.
    acked: Recent<EntityKey>,
    /// The stamps of those acks.
    own: Recent<Hlc>,
    suspects: HashSet<EntityKey>,
    /// When the oldest suspect became one.
    first_suspect_ms: u64,
    /// When the last frame, acknowledgement or restatement was sent.
    last_send_ms: u64,
    /// When the last acknowledgement was sent.
    last_ack_ms: u64,
}

impl Settle {
    /// Records the entities of a frame sent at `now_ms` (`shared`: the
    /// `(collection, id)` of its shared sets). `differs` tells whether the
    /// frame's version of an entity may differ from what the client's own
    /// acknowledged write made of it (a commit other than the client's own
    /// touched it): an ack and such a frame can race like two frames.
    pub fn sent<'a>(
        &mut self,
        now_ms: u64,
        changes: &DbChanges,
        shared: impl IntoIterator<Item = (&'a str, &'a str)>,
        differs: impl Fn(&EntityKey) -> bool,
    ) {
        self.forget_old(now_ms);
        let keys = keys_of(changes);
        let shared = shared.into_iter().map(|(c, id)| EntityKey::new(c, id));
        for key in keys.chain(shared) {
            let twice = self
                .last
                .insert(key.clone(), now_ms)
                .is_some_and(|at| now_ms.saturating_sub(at) < WINDOW_MS);
            let after_ack = self
                .acked
                .get(&key)
                .is_some_and(|at| now_ms.saturating_sub(at) < WINDOW_MS && differs(&key));
            if twice || after_ack {
                self.suspect_one(now_ms, key);
            }
        }
        self.last_send_ms = now_ms;
    }

    /// Records a `CHANGES_ACK` stamped `stamp` for a batch writing `keys`,
    /// sent at `now_ms`. An entity sent in a frame shortly before becomes a
    /// suspect: the client may let that older frame win over its write.
    pub fn acked(&mut self, now_ms: u64, stamp: Hlc, keys: impl IntoIterator<Item = EntityKey>) {
        self.forget_old(now_ms);
        for key in keys {
            if self
                .last
                .get(&key)
                .is_some_and(|at| now_ms.saturating_sub(at) < WINDOW_MS)
            {
                self.suspect_one(now_ms, key.clone());
            }
            self.acked.insert(key, now_ms);
        }
        self.own.insert(stamp, now_ms);
        self.last_ack_ms = now_ms;
        self.last_send_ms = now_ms;
    }

    /// Whether an acknowledgement was sent within the window (frames then
    /// need [`Settle::sent`]'s `differs`).
    pub fn has_recent_acks(&self) -> bool {
        !self.acked.is_empty()
    }

    /// Whether `stamp` is one of the recently acknowledged writes.
    pub fn is_own(&self, stamp: Hlc) -> bool {
        self.own.get(&stamp).is_some()
    }

    /// Records a restatement of `keys` sent at `now_ms`: a frame that
    /// follows it within the window with one of them races it, so they
    /// count as sent (without becoming suspects themselves).
    pub fn restated(&mut self, now_ms: u64, keys: &[EntityKey]) {
        for key in keys {
            self.last.insert(key.clone(), now_ms);
        }
        self.last_send_ms = now_ms;
    }

    /// Makes `keys`, sent at `now_ms` in a frame the client may ignore for
    /// them, suspects.
    pub fn suspect(&mut self, now_ms: u64, keys: impl IntoIterator<Item = EntityKey>) {
        for key in keys {
            self.suspect_one(now_ms, key);
        }
        self.last_send_ms = self.last_send_ms.max(now_ms);
    }

    fn suspect_one(&mut self, now_ms: u64, key: EntityKey) {
        if self.suspects.is_empty() {
            self.first_suspect_ms = now_ms;
        }
        self.suspects.insert(key);
    }

    /// Drops sends and acks that can no longer race one sent at `now_ms`
    /// (older than the window), oldest first: a connection that keeps
    /// writing keeps only its last second's acks.
    fn forget_old(&mut self, now_ms: u64) {
        self.last.forget_before(now_ms);
        self.acked.forget_before(now_ms);
        self.own.forget_before(now_ms);
    }

    /// When [`Settle::tick`] should run next (time-source ms), if ever.
    pub fn due_ms(&self) -> Option<u64> {
        if !self.suspects.is_empty() {
            Some((self.last_send_ms + QUIET_MS).min(self.first_suspect_ms + MAX_WAIT_MS))
        } else if !self.last.is_empty() || !self.acked.is_empty() {
            Some(self.last_send_ms + WINDOW_MS)
        } else {
            None
        }
    }

    /// At or after [`Settle::due_ms`]: the suspects to restate now (empty
    /// when there are none or the connection is not quiet yet); forgets
    /// sends that can no longer race.
    pub fn tick(&mut self, now_ms: u64) -> Vec<EntityKey> {
        let quiet = now_ms.saturating_sub(self.last_send_ms);
        let waited = now_ms.saturating_sub(self.first_suspect_ms);
        let mut out = Vec::new();
        if !self.suspects.is_empty() && (quiet >= QUIET_MS || waited >= MAX_WAIT_MS) {
            out = self.suspects.drain().collect();
            out.sort_by(|a, b| (a.collection(), a.id()).cmp(&(b.collection(), b.id())));
        }
        if quiet >= WINDOW_MS {
            self.last = Recent::default();
            self.acked = Recent::default();
            self.own = Recent::default();
            self.suspects = HashSet::new();
        }
        out
    }
}

/// Keys with the time each was last recorded, forgotten in the order they
/// were recorded once older than [`WINDOW_MS`].
#[derive(Debug)]
struct Recent<K> {
    at: HashMap<K, u64>,
    /// Every recording, oldest first; an entry whose key was recorded again
    /// since is skipped when it expires.
    order: VecDeque<(u64, K)>,
}

impl<K> Default for Recent<K> {
    fn default() -> Self {
        Recent {
            at: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Recent<K> {
    /// Records `key` at `now_ms`; the time it was recorded before, if any.
    fn insert(&mut self, key: K, now_ms: u64) -> Option<u64> {
        self.order.push_back((now_ms, key.clone()));
        self.at.insert(key, now_ms)
    }

    fn get(&self, key: &K) -> Option<u64> {
        self.at.get(key).copied()
    }

    fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    fn forget_before(&mut self, now_ms: u64) {
        while let Some((at, key)) = self
            .order
            .pop_front_if(|(at, _)| now_ms.saturating_sub(*at) >= WINDOW_MS)
        {
            if self.at.get(&key) == Some(&at) {
                self.at.remove(&key);
            }
        }
        if self.order.is_empty() && self.order.capacity() > 64 {
            *self = Recent::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn frame(sets: &[&str], deletes: &[&str]) -> DbChanges {
        let mut c = DbChanges::default();
        let cc = c.collection_mut("t");
        cc.sets = sets.iter().map(|id| (id.to_string(), Map::new())).collect();
        cc.deletes = deletes.iter().map(|id| id.to_string()).collect();
        c
    }

    fn key(id: &str) -> EntityKey {
        EntityKey::new("t", id)
    }

    #[test]
    fn an_entity_sent_twice_within_the_window_is_restated_once_quiet() {
        let mut s = Settle::default();
        assert_eq!(s.due_ms(), None);
        s.sent(10_000, &frame(&["a", "b"], &[]), [], |_| true);
        assert_eq!(s.due_ms(), Some(10_000 + WINDOW_MS));
        s.sent(10_200, &frame(&["c"], &["a"]), [], |_| true);
        assert_eq!(s.due_ms(), Some(10_200 + QUIET_MS));
        // Not quiet yet: nothing.
        assert!(s.tick(10_300).is_empty());
        assert_eq!(s.tick(10_200 + QUIET_MS), vec![key("a")]);
        s.restated(10_200 + QUIET_MS, &[key("a")]);
        // Once restated and quiet for the window, nothing is kept.
        assert_eq!(s.due_ms(), Some(10_200 + QUIET_MS + WINDOW_MS));
        assert!(s.tick(10_200 + QUIET_MS + WINDOW_MS).is_empty());
        assert_eq!(s.due_ms(), None);
    }

    #[test]
    fn sends_further_apart_than_the_window_are_not_suspects() {
        let mut s = Settle::default();
        s.sent(1_000, &frame(&["a"], &[]), [], |_| true);
        s.sent(1_000 + WINDOW_MS, &frame(&[], &["a"]), [], |_| true);
        assert_eq!(s.due_ms(), Some(1_000 + 2 * WINDOW_MS));
        assert!(s.tick(1_000 + 2 * WINDOW_MS).is_empty());
        assert_eq!(s.due_ms(), None, "an idle connection keeps nothing");
    }

    #[test]
    fn a_connection_that_never_goes_quiet_restates_after_the_longest_wait() {
        let mut s = Settle::default();
        s.sent(0, &frame(&["a"], &[]), [], |_| true);
        s.sent(100, &frame(&["a"], &[]), [], |_| true);
        let mut now = 100;
        while now < MAX_WAIT_MS + 100 {
            now += 100;
            s.sent(now, &frame(&["other"], &[]), [], |_| true);
            if now < 100 + MAX_WAIT_MS {
                assert!(s.tick(now).iter().all(|k| k.id() != "a"));
            }
        }
        assert_eq!(
            s.due_ms(),
            Some(100 + MAX_WAIT_MS).min(Some(now + QUIET_MS))
        );
        let restated = s.tick(100 + MAX_WAIT_MS);
        assert!(restated.contains(&key("a")), "{restated:?}");
    }

    #[test]
    fn a_frame_soon_after_a_restatement_makes_its_entity_a_suspect_again() {
        let mut s = Settle::default();
        s.sent(0, &frame(&["a"], &[]), [], |_| true);
        s.sent(10, &frame(&["a"], &[]), [], |_| true);
        assert_eq!(s.tick(10 + QUIET_MS), vec![key("a")]);
        s.restated(10 + QUIET_MS, &[key("a")]);
        s.sent(20 + QUIET_MS, &frame(&["a"], &[]), [], |_| true);
        assert_eq!(s.tick(20 + 2 * QUIET_MS), vec![key("a")]);
    }

    #[test]
    fn an_ack_races_a_frame_sent_just_before_it() {
        let mut s = Settle::default();
        s.sent(0, &frame(&["a", "b"], &[]), [], |_| true);
        s.acked(30, Hlc::new(30, 0), [key("a")]);
        assert_eq!(s.due_ms(), Some(30 + QUIET_MS));
        assert_eq!(s.tick(30 + QUIET_MS), vec![key("a")]);
    }

    #[test]
    fn a_frame_after_an_ack_is_a_suspect_only_when_another_commit_touched_it() {
        let mut s = Settle::default();
        let own = Hlc::new(5, 0);
        s.acked(5, own, [key("a"), key("b")]);
        assert!(s.is_own(own) && !s.is_own(Hlc::new(6, 0)));
        // The echo of the client's own write: no race that matters.
        s.sent(15, &frame(&["a"], &[]), [], |_| false);
        assert!(s.tick(15 + QUIET_MS).is_empty());
        // Another client's write to b, right after: a suspect.
        s.sent(20, &frame(&["b"], &[]), [], |k| k.id() == "b");
        assert_eq!(s.tick(20 + QUIET_MS), vec![key("b")]);
        // Acks are forgotten once the window has passed.
        s.sent(20 + 2 * WINDOW_MS, &frame(&["b"], &[]), [], |_| true);
        assert!(!s.has_recent_acks());
    }

    #[test]
    fn a_client_that_keeps_writing_keeps_only_the_last_windows_acks() {
        let mut s = Settle::default();
        // One write acked every 2 ms for 20 windows, never quiet.
        let n = 10 * WINDOW_MS;
        for i in 0..n {
            let now = 2 * i;
            s.acked(now, Hlc::new(now, 0), [key(&format!("w{i}"))]);
        }
        let now = 2 * (n - 1);
        assert!(s.is_own(Hlc::new(now, 0)));
        assert!(s.is_own(Hlc::new(now + 2 - WINDOW_MS, 0)));
        assert!(!s.is_own(Hlc::new(now - WINDOW_MS, 0)));
        let per_window = (WINDOW_MS / 2) as usize;
        assert!(s.own.at.len() <= per_window && s.own.order.len() <= per_window);
        assert!(s.acked.at.len() <= per_window && s.acked.order.len() <= per_window);
        // An entity acked again keeps its latest time when the first
        // recording expires.
        s.acked(now + 2, Hlc::new(now + 2, 0), [key("w1")]);
        s.sent(now + 2 + WINDOW_MS - 1, &frame(&["w1"], &[]), [], |_| true);
        assert_eq!(s.tick(now + 2 + WINDOW_MS - 1 + QUIET_MS), vec![key("w1")]);
    }

    #[test]
    fn shared_sets_count_like_sets() {
        let mut s = Settle::default();
        s.sent(0, &DbChanges::default(), [("t", "x")], |_| true);
        s.sent(5, &frame(&[], &["x"]), [], |_| true);
        assert_eq!(s.tick(5 + QUIET_MS), vec![key("x")]);
    }
}
