//! The background task that keeps [`ferry_store::Store::watch`] current
//! with commits from every node.
//!
//! It holds one connection of its own (outside the pool) that `LISTEN`s on
//! [`CHANGES_CHANNEL`]. Every write transaction that appends a change
//! record also `NOTIFY`s that channel, and PostgreSQL delivers the
//! notification only once the transaction has committed. Notifications are
//! treated purely as a hint: on one (or a burst of them) the task re-reads
//! the durable counter `ferry_meta.last_seq` and advances the watch
//! channel to it; it also re-reads the counter every
//! [`crate::PostgresConfig::poll_interval`], so a lost notification, or a
//! listener that was reconnecting, delays a follower by at most one
//! interval. The watch value only ever grows.
//!
//! The task is also the store's judge of [`Health`]: a session that reads
//! the counter marks the store available; a failed session is followed by
//! one immediate reconnect, and only if that fails too is the store marked
//! unavailable (one dropped connection is not an outage). An operation
//! that could not reach the database wakes the task to check at once, and
//! a read of the counter that takes longer than the connect timeout counts
//! as a lost connection. It then reconnects with [`Backoff::standard`] (100 ms
//! doubling to 5 s), logging the outage once when it starts and once when
//! it ends rather than per attempt, and re-reads the counter right after
//! `LISTEN` so nothing committed in between is missed. It stops when its
//! stop channel fires or is dropped (the store was closed or dropped).

use std::sync::Arc;
use std::time::Duration;

use ferry_store::{Backoff, Health};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_postgres::AsyncMessage;

use crate::error::{PgError, describe, seq_from_sql};
use crate::schema::{CHANGES_CHANNEL, LAST_SEQ};
use crate::tls::RustlsConnect;

/// A running follower task.
pub(crate) struct Follower {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Follower {
    /// Starts following the database of `config`, publishing to `seq`.
    pub(crate) fn spawn(
        config: tokio_postgres::Config,
        tls: RustlsConnect,
        seq: Arc<watch::Sender<u64>>,
        health: Arc<watch::Sender<Health>>,
        probe: Arc<Notify>,
        poll_interval: Duration,
        query_timeout: Duration,
    ) -> Follower {
        let (stop, stopped) = oneshot::channel();
        let shared = Shared {
            seq,
            health,
            probe,
            query_timeout,
        };
        let task = tokio::spawn(run(config, tls, shared, poll_interval, stopped));
        Follower { stop, task }
    }

    /// Stops the task and waits for it to finish.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the postgres change follower failed");
        }
    }
}

/// What the task publishes, and how it is asked to check.
struct Shared {
    seq: Arc<watch::Sender<u64>>,
    health: Arc<watch::Sender<Health>>,
    /// Woken by an operation that could not reach the database: check now.
    probe: Arc<Notify>,
    /// How long one read of the counter may take before the connection
    /// counts as lost (a partition sends no reset).
    query_timeout: Duration,
}

/// Sets `health`, logging a change.
pub(crate) fn set_health(health: &watch::Sender<Health>, to: Health, why: &dyn std::fmt::Display) {
    let previous = health.send_replace(to);
    match (previous, to) {
        (Health::Available, Health::Unavailable) => {
            tracing::error!(error = %why, "postgres database unreachable; retrying with backoff");
        }
        (Health::Unavailable, Health::Available) => {
            tracing::info!("postgres database reachable again");
        }
        _ => {}
    }
}

/// Raises the watch value to `seq` if that is higher.
pub(crate) fn advance(watch: &watch::Sender<u64>, seq: u64) {
    watch.send_if_modified(|current| {
        if seq > *current {
            *current = seq;
            true
        } else {
            false
        }
    });
}

async fn run(
    config: tokio_postgres::Config,
    tls: RustlsConnect,
    shared: Shared,
    poll_interval: Duration,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut backoff = Backoff::standard();
    // Failed sessions since the last good read. One lost connection on a
    // reachable server is not an outage: reconnect at once, and only a
    // second failure in a row marks the store unavailable.
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            result = follow(&config, &tls, &shared, &mut backoff, &mut failures, poll_interval) => {
                if let Err(e) = result {
                    failures += 1;
                    if failures > 1 {
                        set_health(&shared.health, Health::Unavailable, &e);
                    }
                    tracing::debug!(error = %e, "postgres change listener reconnecting");
                }
            }
        }
        let delay = if failures <= 1 {
            Duration::ZERO
        } else {
            backoff.next_delay()
        };
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One listening session; returns when its connection fails.
async fn follow(
    config: &tokio_postgres::Config,
    tls: &RustlsConnect,
    shared: &Shared,
    backoff: &mut Backoff,
    failures: &mut u32,
    poll_interval: Duration,
) -> Result<(), PgError> {
    let (client, mut connection) = config
        .connect(tls.clone())
        .await
        .map_err(|e| PgError::query("connect change listener", &e))?;
    let woken = Arc::new(Notify::new());
    // The connection must be polled for anything to happen on it, queries
    // included; this task does that and turns notifications into wake-ups.
    let mut driver = {
        let woken = woken.clone();
        Driver(tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(_))) => woken.notify_one(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return describe(&e),
                    None => return "connection closed".to_owned(),
                }
            }
        }))
    };
    client
        .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
        .await
        .map_err(|e| PgError::query("listen for change records", &e))?;
    let last_seq = client
        .prepare(LAST_SEQ)
        .await
        .map_err(|e| PgError::query("prepare last sequence query", &e))?;
    let mut ticks = tokio::time::interval(poll_interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        // The first tick completes at once: catch up right after LISTEN.
        tokio::select! {
            _ = ticks.tick() => {}
            _ = woken.notified() => {}
            _ = shared.probe.notified() => {}
            ended = &mut driver.0 => {
                let reason = ended.unwrap_or_else(|e| e.to_string());
                return Err(PgError::lost("change listener", reason));
            }
        }
        let row = tokio::time::timeout(shared.query_timeout, client.query_one(&last_seq, &[]))
            .await
            .map_err(|_| PgError::lost("read last sequence number", "timed out".to_owned()))?
            .map_err(|e| PgError::query("read last sequence number", &e))?;
        let latest = row
            .try_get(0)
            .map_err(|e| PgError::query("read last sequence number", &e))?;
        advance(&shared.seq, seq_from_sql(latest)?);
        set_health(&shared.health, Health::Available, &"");
        backoff.reset();
        *failures = 0;
    }
}

/// The task driving the listener's connection; aborted when the session
/// ends, which closes the connection.
struct Driver(JoinHandle<String>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_only_raises() {
        let (tx, rx) = watch::channel(5u64);
        advance(&tx, 3);
        assert_eq!(*rx.borrow(), 5);
        assert!(!rx.has_changed().unwrap());
        advance(&tx, 9);
        assert_eq!(*rx.borrow(), 9);
        assert!(rx.has_changed().unwrap());
    }
}
