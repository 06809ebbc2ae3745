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

use std::collections::{HashMap, HashSet};

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
    last: HashMap<EntityKey, u64>,
    /// When each entity of a recently acknowledged `CHANGES` was acked.
    acked: HashMap<EntityKey, u64>,
    /// The stamps of those acks.
    own: Vec<Hlc>,
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
                .is_some_and(|at| now_ms.saturating_sub(*at) < WINDOW_MS && differs(&key));
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
                .is_some_and(|at| now_ms.saturating_sub(*at) < WINDOW_MS)
            {
                self.suspect_one(now_ms, key.clone());
            }
            self.acked.insert(key, now_ms);
        }
        self.own.push(stamp);
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
        self.own.contains(&stamp)
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

    /// Drops sends and acks that can no longer race one sent at `now_ms`.
    fn forget_old(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.last_send_ms) >= WINDOW_MS {
            // Nothing sent within the window: earlier sends cannot race.
            self.last.clear();
        } else if self.last.len() > 1024 {
            self.last
                .retain(|_, at| now_ms.saturating_sub(*at) < WINDOW_MS);
        }
        if now_ms.saturating_sub(self.last_ack_ms) >= WINDOW_MS {
            self.acked.clear();
            self.own.clear();
        } else if self.acked.len() > 1024 {
            self.acked
                .retain(|_, at| now_ms.saturating_sub(*at) < WINDOW_MS);
        }
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
            self.last = HashMap::new();
            self.acked = HashMap::new();
            self.own = Vec::new();
            self.suspects = HashSet::new();
        }
        out
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
    fn shared_sets_count_like_sets() {
        let mut s = Settle::default();
        s.sent(0, &DbChanges::default(), [("t", "x")], |_| true);
        s.sent(5, &frame(&[], &["x"]), [], |_| true);
        assert_eq!(s.tick(5 + QUIET_MS), vec![key("x")]);
    }
}
