//! Whether the backend is reachable, and how to wait for it.
//!
//! [`crate::Store::health`] is a watch channel of [`Health`]: embedded
//! backends are always [`Health::Available`]; a networked backend turns
//! [`Health::Unavailable`] when it loses its database and back when it
//! reaches it again. Consumers (the health check, the sync layer, the feed
//! follower) read it without knowing which backend is behind it.
//! [`Backoff`] is the retry schedule every reconnecting loop uses.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::watch;

/// Whether the store's backend can be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Operations reach the backend.
    Available,
    /// The backend cannot be reached; operations fail with
    /// [`crate::StoreError::Unavailable`] until it is back.
    Unavailable,
}

/// A receiver that always reads [`Health::Available`] (its sender lives
/// for the whole process, so `changed()` simply never completes).
pub fn always_available() -> watch::Receiver<Health> {
    static SENDER: OnceLock<watch::Sender<Health>> = OnceLock::new();
    SENDER
        .get_or_init(|| watch::channel(Health::Available).0)
        .subscribe()
}

/// Resolves once `health` reads [`Health::Unavailable`]; never, if its
/// sender is gone.
pub async fn wait_unavailable(health: &mut watch::Receiver<Health>) {
    if health
        .wait_for(|h| *h == Health::Unavailable)
        .await
        .is_err()
    {
        std::future::pending::<()>().await;
    }
}

/// Exponential backoff without jitter: `first`, doubling up to `max`,
/// back to `first` after [`Backoff::reset`]. Deterministic, so tests can
/// rely on it; nodes retrying one database at once are spread by their
/// different outage start times and request latencies.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A schedule from `first` up to `max` (at least `first`).
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max: max.max(first),
            next: first,
        }
    }

    /// 100 ms doubling to 5 s: what Ferry's reconnecting loops use.
    pub fn standard() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// The delay before the next attempt; each call doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Starts over at `first` (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Whether the schedule is at its start (no failure since the last
    /// reset), i.e. the next failure begins a new outage.
    pub fn is_fresh(&self) -> bool {
        self.next == self.first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::standard();
        assert!(b.is_fresh());
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert!(!b.is_fresh());
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn always_available_never_changes() {
        let mut rx = always_available();
        assert_eq!(*rx.borrow(), Health::Available);
        let waited =
            tokio::time::timeout(Duration::from_millis(20), wait_unavailable(&mut rx)).await;
        assert!(waited.is_err());
    }

    #[tokio::test]
    async fn wait_unavailable_sees_the_switch() {
        let (tx, mut rx) = watch::channel(Health::Available);
        tx.send_replace(Health::Unavailable);
        tokio::time::timeout(Duration::from_secs(1), wait_unavailable(&mut rx))
            .await
            .unwrap();
    }
}
