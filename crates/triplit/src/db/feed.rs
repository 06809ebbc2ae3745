//! Following the store's change feed: the one source of commit fan-out.
//!
//! Every committed write appends one record to the store's ordered change
//! feed. A single follower task per process reads the feed in order and
//! broadcasts each record as a [`Commit`] to the realtime sessions. Local
//! writes and writes made by other Ferry nodes sharing the same store go
//! through the same path, in the same (feed) order; the clock observes
//! every stamp it sees, so this node's next stamps are above them. This
//! process's own commits are not read back: the commit path hands them
//! over by feed position (`handoff.rs`), and only the positions it did not
//! fill are read from the store.
//!
//! Sequence numbers are contiguous, so a record missing between the last
//! one read and the next is a *gap*: records were pruned before this node
//! read them (it lagged behind the retention window). The follower then
//! broadcasts [`Commit::resync`] instead of pretending nothing happened:
//! every session re-runs all its queries (as after a lagged broadcast)
//! and the schema is re-read from the store.
//!
//! A failing read of the feed (the database is unreachable) is retried
//! with [`Backoff::standard`], logged once when the outage starts and once
//! when it ends. The follower keeps a tail of the records it passed
//! ([`Retention`]): a window for other nodes on a store they share, a
//! short one on a store only this process reads. It reports its position to the store (a
//! heartbeat for shared backends, which prune only what every live node
//! has read) every [`REPORT_EVERY`] and before pruning.

use std::sync::Arc;

use ferry_core::Hlc;
use ferry_store::{Backoff, StoreExt};
use serde_json::Value;

use super::{Commit, Touched, TriplitDb};

/// Records fetched per read of the feed.
const BATCH: usize = 512;
/// How much of the change feed the follower keeps behind itself: the
/// last `records` records, or fewer when those hold more than `bytes`
/// (the oldest are then pruned down to half of it, so a bulk import does
/// not keep a second copy of its data in the feed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Records kept.
    pub records: u64,
    /// Bytes of records kept at most.
    pub bytes: usize,
}

impl Retention {
    /// A store other nodes read ([`ferry_store::Store::shared_feed`]): a
    /// window for nodes that fall behind or restart (the store itself
    /// also keeps what live nodes have not read).
    pub const SHARED: Retention = Retention {
        records: 10_000,
        bytes: 64 << 20,
    };
    /// A store only this process reads (SQLite, memory): the follower is
    /// the feed's one reader, so only a short tail stays, and the pages a
    /// large commit's record took are free again for the next writes.
    pub const PRIVATE: Retention = Retention {
        records: 1_000,
        bytes: 4 << 20,
    };

    /// The retention for `store`.
    pub fn of(store: &dyn ferry_store::Store) -> Retention {
        if store.shared_feed() {
            Self::SHARED
        } else {
            Self::PRIVATE
        }
    }

    /// Records passed between two count-based prunes.
    fn step(self) -> u64 {
        (self.records / 10).max(1)
    }
}

/// How often the follower reports its position when idle.
pub const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The records this follower has passed and not pruned yet: position and
/// size, oldest first.
#[derive(Debug, Default)]
struct Held {
    records: std::collections::VecDeque<(u64, usize)>,
    bytes: usize,
}

impl Held {
    fn push(&mut self, seq: u64, bytes: usize) {
        self.records.push_back((seq, bytes));
        self.bytes += bytes;
    }

    /// Forgets the records below `by_count` and, oldest first, more until
    /// at most `target_bytes` are held, always keeping the newest; returns
    /// the position the feed may be pruned before (at least `by_count`).
    fn prune(&mut self, by_count: u64, target_bytes: usize) -> u64 {
        let mut before = by_count;
        while let Some(&(seq, n)) = self.records.front() {
            let over = self.bytes > target_bytes && self.records.len() > 1;
            if seq >= by_count && !over {
                break;
            }
            self.records.pop_front();
            self.bytes -= n;
            before = before.max(seq + 1);
        }
        before
    }
}

/// Parses a feed record written by the commit path.
pub fn parse_record(seq: u64, payload: &[u8]) -> Option<Commit> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let ts = v.get("ts")?.as_array()?;
    let timestamp = Hlc::new(ts.first()?.as_u64()?, ts.get(1)?.as_u64()? as u32);
    let entities = v
        .get("entities")?
        .as_array()?
        .iter()
        .filter_map(|e| {
            let e = e.as_array()?;
            let c = e.first()?.as_str()?.to_string();
            let id = e.get(1)?.as_str()?.to_string();
            let entity = e.get(2)?.as_object().cloned();
            Some((c, id, entity))
        })
        .collect::<Vec<Touched>>();
    Some(Commit::new(Some(seq), timestamp, entities))
}

impl TriplitDb {
    /// Starts the follower; it runs until the store closes. Call once.
    pub fn start_feed(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let db = self.clone();
        tokio::spawn(async move { db.follow().await })
    }

    async fn follow(self: Arc<Self>) {
        let mut watch = self.store.watch();
        let mut last = *watch.borrow_and_update();
        let mut pruned_at = last;
        let mut held = Held::default();
        let keep = Retention::of(self.store.as_ref());
        let mut backoff = Backoff::standard();
        let mut report = tokio::time::interval(REPORT_EVERY);
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.handoff.enable();
        loop {
            tokio::select! {
                changed = watch.changed() => if changed.is_err() { return },
                _ = report.tick() => {
                    let _ = self.store.report_position(last).await;
                    continue;
                }
            }
            loop {
                // This process's own commits were handed over by the
                // commit path (`handoff.rs`) and need no read; from the
                // first position missing there, the feed is read.
                let target = *watch.borrow_and_update();
                while last < target {
                    let Some((commit, bytes)) = self.handoff.take(last + 1) else {
                        break;
                    };
                    last += 1;
                    held.push(last, bytes);
                    self.publish(commit);
                }
                let batch = if last >= target {
                    Vec::new()
                } else {
                    match self.store.changes_since(last, BATCH).await {
                        Ok(b) => b,
                        Err(e) => {
                            if backoff.is_fresh() {
                                tracing::error!(error = %e, "reading the change feed failed; retrying with backoff");
                            }
                            tokio::time::sleep(backoff.next_delay()).await;
                            continue;
                        }
                    }
                };
                if !backoff.is_fresh() {
                    tracing::info!(after = last, "reading the change feed again");
                    backoff.reset();
                }
                let full = batch.len() == BATCH;
                if let Some(first) = batch.first()
                    && first.seq > last + 1
                {
                    tracing::warn!(
                        after = last,
                        next = first.seq,
                        "change records were pruned before this node read them; resynchronising every session"
                    );
                    let stamp = parse_record(first.seq, &first.payload)
                        .map_or_else(|| self.clock.last(), |c| c.timestamp);
                    self.resync_schema(stamp).await;
                    let _ = self.commits.send(Arc::new(Commit::resync(first.seq - 1)));
                }
                for change in batch {
                    last = change.seq;
                    held.push(last, change.payload.len());
                    let commit = self
                        .handoff
                        .take(change.seq)
                        .map(|(commit, _)| commit)
                        .or_else(|| parse_record(change.seq, &change.payload));
                    match commit {
                        Some(commit) => self.publish(commit),
                        None => {
                            tracing::warn!(seq = change.seq, "skipping an unreadable change record")
                        }
                    }
                }
                if (last > keep.records && last - pruned_at >= keep.step())
                    || held.bytes > keep.bytes
                {
                    let before = held.prune(last.saturating_sub(keep.records), keep.bytes / 2);
                    let _ = self.store.report_position(last).await;
                    let _ = self.store.prune_changes(before).await;
                    pruned_at = last;
                }
                if !full {
                    break;
                }
            }
        }
    }

    /// Hands one commit to fan-out (called in feed order).
    fn publish(&self, commit: Commit) {
        self.clock.observe(commit.timestamp);
        self.observe_schema(&commit);
        let _ = self.commits.send(Arc::new(commit));
    }

    /// Installs the stored schema if it differs from the current one (a
    /// schema change may have been among the records this node never
    /// read), as if written at `stamp`, the first record after the gap.
    async fn resync_schema(&self, stamp: Hlc) {
        let (collection, id) = super::SCHEMA_ENTITY;
        let key = crate::keys::entity(collection, id);
        let doc = self
            .store
            .read(move |txn| txn.get(&key))
            .await
            .map_err(|e: ferry_store::StoreError| e);
        let Ok(doc) = doc else { return };
        let entity: Option<serde_json::Map<String, Value>> =
            doc.and_then(|b| serde_json::from_slice(&b).ok());
        if self.schema().as_deref().map(super::schema_entity) == entity {
            return;
        }
        let commit = Commit::new(None, stamp, vec![(collection.into(), id.into(), entity)]);
        self.observe_schema(&commit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let payload = br#"{"ts":[1795414830207,3],"entities":[["todos","t1",{"id":"t1"}],["todos","t2",null]]}"#;
        let c = parse_record(7, payload).unwrap();
        assert_eq!(c.seq, Some(7));
        assert_eq!(c.timestamp, Hlc::new(1795414830207, 3));
        assert_eq!(c.entities.len(), 2);
        assert!(c.entities[1].2.is_none());
        assert!(parse_record(1, b"nope").is_none());
    }

    #[test]
    fn held_records_are_pruned_by_count_and_by_size_keeping_the_newest() {
        let mut h = Held::default();
        for (seq, n) in [(1, 10), (2, 10), (3, 50), (4, 10), (5, 10)] {
            h.push(seq, n);
        }
        // By count only: below 3.
        assert_eq!(h.prune(3, 1000), 3);
        assert_eq!(h.bytes, 70);
        // By size: down to at most 20 bytes, oldest first.
        assert_eq!(h.prune(0, 20), 4);
        assert_eq!(h.bytes, 20);
        // The newest record stays even when it alone is over the target.
        h.push(6, 500);
        assert_eq!(h.prune(0, 20), 6);
        assert_eq!(h.records.len(), 1);
        assert_eq!(h.bytes, 500);
        // Nothing to forget: the count bound is returned as is.
        assert_eq!(h.prune(2, 1000), 2);
    }
}
