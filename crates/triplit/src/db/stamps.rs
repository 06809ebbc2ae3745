//! Handing out timestamps safely.
//!
//! Two kinds of stamps leave the server: the stamp of a write (stored with
//! the entities it touched) and the stamp of a read that is sent to
//! clients (`ENTITY_DATA.timestamp`, later echoed back as a reconnect
//! checkpoint). For a checkpoint to be safe, every write stamped below a
//! read stamp must already be visible when the read runs: otherwise a
//! reconnecting client would skip an entity as "unchanged" although it
//! never received the write. So write stamps are tracked while in flight,
//! and a read stamp waits until no smaller write stamp is still in flight.
//!
//! Read stamps are not stored with data, so they are covered by a lease:
//! before a read stamp above the persisted lease is handed out, the lease is
//! moved a minute ahead and persisted; after a restart the clock resumes
//! above it. Timestamps therefore never go backwards across restarts even
//! when the wall clock does. Extensions take turns
//! ([`Stamps::extension_turn`]): when many sessions cross the half-lease mark
//! at once, the first writes the lease and the others find it extended.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_core::{Hlc, HybridClock};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// How far ahead of a handed-out read stamp the persisted lease is moved.
pub const LEASE_AHEAD_MS: u64 = 60_000;

/// The clock plus in-flight write tracking.
pub struct Stamps {
    clock: Arc<HybridClock>,
    inflight: Mutex<BTreeSet<Hlc>>,
    settled: Notify,
    lease_ms: AtomicU64,
    extending: tokio::sync::Mutex<()>,
}

impl Stamps {
    /// Tracks stamps of `clock`; `lease_ms` is the persisted lease.
    pub fn new(clock: Arc<HybridClock>, lease_ms: u64) -> Self {
        Self {
            clock,
            inflight: Mutex::new(BTreeSet::new()),
            settled: Notify::new(),
            lease_ms: AtomicU64::new(lease_ms),
            extending: tokio::sync::Mutex::new(()),
        }
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<HybridClock> {
        &self.clock
    }

    /// A stamp for a write that is about to be applied; call
    /// [`Stamps::settle`] once the write committed or failed.
    pub fn for_write(&self) -> Hlc {
        let mut inflight = self.inflight.lock();
        let stamp = self.clock.next();
        inflight.insert(stamp);
        stamp
    }

    /// The write stamped `stamp` is durable or gone.
    pub fn settle(&self, stamp: Hlc) {
        self.inflight.lock().remove(&stamp);
        self.settled.notify_waiters();
    }

    /// A fresh stamp such that every write stamped below it has settled.
    /// Returns it and whether the lease must be extended before it is
    /// handed out (see [`Stamps::lease_extended`]).
    pub async fn for_read(&self) -> (Hlc, Option<u64>) {
        let stamp = {
            let _inflight = self.inflight.lock();
            self.clock.next()
        };
        loop {
            let wait = self.settled.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            let pending = self
                .inflight
                .lock()
                .first()
                .is_some_and(|first| *first < stamp);
            if !pending {
                break;
            }
            wait.await;
        }
        (stamp, self.extension_for(stamp))
    }

    /// The lease to persist before `stamp` may be handed out, or `None`
    /// when the persisted lease is still more than half a lease ahead.
    pub fn extension_for(&self, stamp: Hlc) -> Option<u64> {
        let lease = self.lease_ms.load(Ordering::SeqCst);
        (stamp.ms + LEASE_AHEAD_MS / 2 > lease).then_some(stamp.ms + LEASE_AHEAD_MS)
    }

    /// Waits for the turn to extend the lease; holders call
    /// [`Stamps::extension_for`] again, since the previous holder may have
    /// extended it far enough already.
    pub async fn extension_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.extending.lock().await
    }

    /// Records that the lease `ms` is durable.
    pub fn lease_extended(&self, ms: u64) {
        self.lease_ms.fetch_max(ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::ManualTime;

    #[tokio::test]
    async fn read_stamp_waits_for_smaller_inflight_writes() {
        let clock = Arc::new(HybridClock::new(Arc::new(ManualTime::new(100)), Hlc::ZERO));
        let stamps = Arc::new(Stamps::new(clock, 0));
        let w = stamps.for_write();
        let s2 = stamps.clone();
        let read = tokio::spawn(async move { s2.for_read().await });
        tokio::task::yield_now().await;
        assert!(!read.is_finished());
        stamps.settle(w);
        let (r, extend) = read.await.unwrap();
        assert!(r > w);
        assert_eq!(extend, Some(100 + LEASE_AHEAD_MS));
        stamps.lease_extended(100 + LEASE_AHEAD_MS);
        // With the lease ahead, no extension is needed.
        let (r2, extend) = stamps.for_read().await;
        assert!(r2 > r);
        assert_eq!(extend, None);
    }
}
