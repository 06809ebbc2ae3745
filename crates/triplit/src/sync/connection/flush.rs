//! After commits: recording which live queries they may affect, and the
//! flush that brings those queries up to date (maintained results from the
//! commits, shared results of identical queries, or a fresh run) and
//! computes the `ENTITY_DATA` diff, with the read stamp it may carry
//! (`stamp.rs`).

use std::sync::Arc;

use ferry_core::Hlc;
use ferry_store::{StoreExt, load_clock_floor};

use super::super::closure::Subscription;
use super::super::entity_key::EntityKey;
use super::super::maintained::Applied;
use super::super::shared::SharedResult;
use super::super::view::{ClosureEntity, HashedClosure, hash_closure};
use super::SyncConnection;
use super::frames::{entity_data, entity_data_shared};
use crate::TriplitError;
use crate::db::Commit;

impl SyncConnection {
    /// Records a commit; returns whether any live query may be affected.
    pub fn note_commit(&mut self, commit: &Arc<Commit>) -> bool {
        if commit.resync {
            self.mark_all_dirty();
            return true;
        }
        if let Some(seq) = commit.seq {
            self.known_seq = self.known_seq.max(seq);
        }
        self.stamps.noted(commit.timestamp);
        let mut relevant = self.check_schema();
        for (c, _, _) in &commit.entities {
            if self
                .queries
                .values()
                .any(|q| q.subscription.collections().contains(c))
            {
                self.dirty.insert(c.clone());
                relevant = true;
            }
        }
        if relevant {
            self.pending_commits.push(commit.clone());
        } else if self.dirty.is_empty() {
            // Nothing pending: every query reflects this commit already.
            self.stamps.reached(commit.timestamp);
        }
        relevant
    }

    /// Marks every query as needing a refresh (after missed commits).
    pub fn mark_all_dirty(&mut self) {
        self.check_schema();
        self.known_seq = self.known_seq.max(*self.db.store().watch().borrow());
        self.pending_commits.clear();
        for q in self.queries.values_mut() {
            q.maintained = None;
            self.dirty
                .extend(q.subscription.collections().iter().cloned());
        }
    }

    /// Whether a flush is waiting for commits this connection has not
    /// been told about yet (call [`SyncConnection::flush`] again soon).
    pub fn flush_waiting(&self) -> bool {
        self.stamps.waiting() && !self.dirty.is_empty()
    }

    /// When [`SyncConnection::settle`] should run next, in the database's
    /// time-source milliseconds (see `settle.rs`).
    pub fn settle_due_ms(&self) -> Option<u64> {
        self.settle.due_ms()
    }

    /// Restates entities the client may have applied out of order (sent
    /// twice in quick succession), once the connection has been quiet:
    /// every query runs again and those entities are sent as they are now,
    /// each as a delete and a set (a delete alone for those no query
    /// holds). Returns the frame, if any.
    pub async fn settle(&mut self) -> Result<Option<String>, TriplitError> {
        let keys = self.settle.tick(self.db.time().now_ms());
        if keys.is_empty() {
            return Ok(None);
        }
        if keys.iter().all(|k| !self.view.holds(k)) {
            // Only deletes to repeat (the common case: entities that
            // entered and left a result quickly): nothing to run again.
            // Their stamp beats the older frame the client may have let
            // win.
            let mut changes = crate::DbChanges::default();
            for key in &keys {
                changes
                    .collection_mut(key.collection())
                    .deletes
                    .push(key.id().to_string());
            }
            let stamp = self.stamps.next();
            self.stamps.sent(stamp);
            self.settle.restated(self.db.time().now_ms(), &keys);
            return Ok(Some(entity_data(&changes, stamp, &[])));
        }
        for key in &keys {
            self.view.unsend(key);
        }
        self.mark_all_dirty();
        self.restating = Some(keys);
        let out = self.flush().await;
        self.restating = None;
        out
    }

    /// Brings the queries affected by the recorded commits up to date —
    /// maintained results from the commits themselves, the others by
    /// running them again — and returns the `ENTITY_DATA` to send, if
    /// anything changed for this client.
    pub async fn flush(&mut self) -> Result<Option<String>, TriplitError> {
        self.check_schema();
        if self.dirty.is_empty() {
            return Ok(None);
        }
        let affected: Vec<String> = self
            .queries
            .iter()
            .filter(|(_, q)| {
                q.subscription
                    .collections()
                    .iter()
                    .any(|c| self.dirty.contains(c))
            })
            .map(|(id, _)| id.clone())
            .collect();
        if affected.is_empty() {
            self.dirty.clear();
            self.pending_commits.clear();
            self.stamps.reached(self.stamps.reach());
            return Ok(None);
        }
        // Every query runs again when none is maintained (after missed
        // commits, or to restate): the snapshots then bring the cut up.
        let rebase = self.queries.values().all(|q| q.maintained.is_none())
            && affected.len() == self.queries.len();
        if !rebase && !self.stamps.acks_followed() {
            // The frame must be stamped above this client's own writes,
            // which it may carry: wait until their commits arrive.
            self.stamps.set_waiting(true);
            return Ok(None);
        }
        self.stamps.set_waiting(false);
        let reach = self.stamps.reach();
        self.dirty.clear();
        let pending = std::mem::take(&mut self.pending_commits);
        let mut deltas = Vec::new();
        let mut rerun: Vec<(String, Arc<Subscription>)> = Vec::new();
        for id in affected {
            let q = self.queries.get_mut(&id).expect("affected query is live");
            let applied = q.maintained.as_mut().map(|m| m.apply(&pending));
            match applied {
                Some(Ok(Applied::Changed(d))) => {
                    if !d.is_empty() {
                        deltas.push((id, q.subscription.collection().to_string(), d));
                    }
                }
                Some(Ok(Applied::Refill)) | Some(Err(_)) | None => {
                    q.maintained = None;
                    rerun.push((id, q.subscription.clone()));
                }
            }
        }
        // Reuse what another connection computed for the same query when
        // it covers every commit this one knows of.
        let mut closures: Vec<(String, Arc<HashedClosure>, u64)> = Vec::with_capacity(rerun.len());
        let mut misses = Vec::new();
        // The lowest snapshot floor among the results run again.
        let mut runs_cut: Option<Hlc> = None;
        for (id, sub) in rerun {
            match sub.shared_result(self.known_seq, self.stamps.last_ack()) {
                Some(hit) => {
                    runs_cut = Some(runs_cut.map_or(hit.cut, |c| c.min(hit.cut)));
                    closures.push((id, hit.closure, hit.seq));
                }
                None => misses.push((id, sub)),
            }
        }
        if !misses.is_empty() {
            let seq = *self.db.store().watch().borrow();
            let (computed, floor) = self
                .db
                .store()
                .read(move |txn| {
                    let mut out: Vec<(String, Arc<Subscription>, Vec<ClosureEntity>)> =
                        Vec::with_capacity(misses.len());
                    for (id, sub) in misses {
                        let closure = sub.closure(txn)?;
                        out.push((id, sub, closure));
                    }
                    Ok::<_, TriplitError>((out, load_clock_floor(txn)?))
                })
                .await?;
            for (id, sub, closure) in computed {
                let closure = Arc::new(hash_closure(closure));
                // Offered through the live query's reference, so the count
                // of holders it sees is that of connections.
                let live = self
                    .queries
                    .get(&id)
                    .filter(|q| Arc::ptr_eq(&q.subscription, &sub));
                drop(sub);
                if let Some(q) = live {
                    q.subscription.offer_result(SharedResult {
                        seq,
                        cut: floor,
                        closure: closure.clone(),
                    });
                }
                closures.push((id, closure, seq));
            }
            runs_cut = Some(runs_cut.map_or(floor, |c| c.min(floor)));
        }
        self.stamps.reached(reach);
        if rebase && let Some(cut) = runs_cut {
            self.stamps.reached(cut);
        }
        for (id, closure, seq) in &closures {
            if let Some(q) = self.queries.get_mut(id) {
                q.maintain(closure, (*seq).max(self.known_seq));
            }
        }
        let stamp = self.stamps.next();
        let mut change = self.view.update_all(
            closures.into_iter().map(|(id, c, _)| (id, c)).collect(),
            deltas,
        );
        let now = self.db.time().now_ms();
        match self.restating.take() {
            // Suspects no query holds any more: delete them again.
            // The others go as a delete and a set in one frame: the client
            // replaces its copy, and its live queries see the change even
            // when its store already holds this version (a lost race can
            // leave a query's result behind the store).
            Some(keys) => {
                for key in &keys {
                    let held = self.view.holds(key);
                    let slot = change.changes.collection_mut(key.collection());
                    let set = slot.sets.iter().any(|(id, _)| id == key.id());
                    if (!held || set) && !slot.deletes.iter().any(|d| d == key.id()) {
                        slot.deletes.push(key.id().to_string());
                    }
                }
                self.settle.restated(now, &keys);
            }
            None => {
                // Entities another commit touched (not an echo of the
                // client's own acknowledged write) race its acks; without
                // the commits (everything ran again) any may.
                let others: Option<std::collections::HashSet<EntityKey>> =
                    (self.settle.has_recent_acks() && !pending.is_empty()).then(|| {
                        pending
                            .iter()
                            .filter(|c| !self.settle.is_own(c.timestamp))
                            .flat_map(|c| c.entities.iter().map(|(c, id, _)| EntityKey::new(c, id)))
                            .collect()
                    });
                let shared = change
                    .shared_sets
                    .iter()
                    .map(|(c, id, _)| (c.as_str(), id.as_str()));
                self.settle.sent(now, &change.changes, shared, |k| {
                    others.as_ref().is_none_or(|o| o.contains(k))
                });
            }
        }
        if change.changes.is_empty() && change.shared_sets.is_empty() {
            return Ok(None);
        }
        self.stamps.sent(stamp);
        Ok(Some(entity_data_shared(
            &change.changes,
            &change.shared_sets,
            stamp,
            &change.fired,
        )))
    }
}
