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
//! the current version of those it holds, a delete for the others — which
//! the client applies on its own (a connection that never goes quiet
//! restates [`MAX_WAIT_MS`] after its first suspect). Restating does not
//! count as sending, so it does not start another round. Idle connections
//! keep nothing here.

use std::collections::{HashMap, HashSet};

use super::entity_key::EntityKey;
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
    suspects: HashSet<EntityKey>,
    /// When the oldest suspect became one.
    first_suspect_ms: u64,
    last_send_ms: u64,
}

impl Settle {
    /// Records the entities of a frame sent at `now_ms`.
    pub fn sent(&mut self, now_ms: u64, changes: &DbChanges, shared: &[(String, String)]) {
        if now_ms.saturating_sub(self.last_send_ms) >= WINDOW_MS {
            // Nothing sent within the window: earlier sends cannot race.
            self.last.clear();
        } else if self.last.len() > 1024 {
            self.last
                .retain(|_, at| now_ms.saturating_sub(*at) < WINDOW_MS);
        }
        let keys = changes.collections.iter().flat_map(|(c, cc)| {
            cc.sets
                .iter()
                .map(move |(id, _)| EntityKey::new(c, id))
                .chain(cc.deletes.iter().map(move |id| EntityKey::new(c, id)))
        });
        let shared = shared.iter().map(|(c, id)| EntityKey::new(c, id));
        for key in keys.chain(shared) {
            if let Some(at) = self.last.insert(key.clone(), now_ms)
                && now_ms.saturating_sub(at) < WINDOW_MS
            {
                if self.suspects.is_empty() {
                    self.first_suspect_ms = now_ms;
                }
                self.suspects.insert(key);
            }
        }
        self.last_send_ms = now_ms;
    }

    /// Makes `keys`, sent at `now_ms` in a frame the client may ignore for
    /// them, suspects.
    pub fn suspect(&mut self, now_ms: u64, keys: impl IntoIterator<Item = EntityKey>) {
        let before = self.suspects.len();
        self.suspects.extend(keys);
        if before == 0 && !self.suspects.is_empty() {
            self.first_suspect_ms = now_ms;
            self.last_send_ms = self.last_send_ms.max(now_ms);
        }
    }

    /// When [`Settle::tick`] should run next (time-source ms), if ever.
    pub fn due_ms(&self) -> Option<u64> {
        if !self.suspects.is_empty() {
            Some((self.last_send_ms + QUIET_MS).min(self.first_suspect_ms + MAX_WAIT_MS))
        } else if !self.last.is_empty() {
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
        if quiet >= WINDOW_MS || !out.is_empty() {
            self.last = HashMap::new();
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
        s.sent(10_000, &frame(&["a", "b"], &[]), &[]);
        assert_eq!(s.due_ms(), Some(10_000 + WINDOW_MS));
        s.sent(10_200, &frame(&["c"], &["a"]), &[]);
        assert_eq!(s.due_ms(), Some(10_200 + QUIET_MS));
        // Not quiet yet: nothing.
        assert!(s.tick(10_300).is_empty());
        assert_eq!(s.tick(10_200 + QUIET_MS), vec![key("a")]);
        // Once restated, nothing is kept.
        assert_eq!(s.due_ms(), None);
        assert!(s.tick(20_000).is_empty());
    }

    #[test]
    fn sends_further_apart_than_the_window_are_not_suspects() {
        let mut s = Settle::default();
        s.sent(1_000, &frame(&["a"], &[]), &[]);
        s.sent(1_000 + WINDOW_MS, &frame(&[], &["a"]), &[]);
        assert_eq!(s.due_ms(), Some(1_000 + 2 * WINDOW_MS));
        assert!(s.tick(1_000 + 2 * WINDOW_MS).is_empty());
        assert_eq!(s.due_ms(), None, "an idle connection keeps nothing");
    }

    #[test]
    fn a_connection_that_never_goes_quiet_restates_after_the_longest_wait() {
        let mut s = Settle::default();
        s.sent(0, &frame(&["a"], &[]), &[]);
        s.sent(100, &frame(&["a"], &[]), &[]);
        let mut now = 100;
        while now < MAX_WAIT_MS + 100 {
            now += 100;
            s.sent(now, &frame(&["other"], &[]), &[]);
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
    fn shared_sets_count_like_sets() {
        let mut s = Settle::default();
        s.sent(
            0,
            &DbChanges::default(),
            &[("t".to_string(), "x".to_string())],
        );
        s.sent(5, &frame(&[], &["x"]), &[]);
        assert_eq!(s.tick(5 + QUIET_MS), vec![key("x")]);
    }
}
