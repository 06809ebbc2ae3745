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
//! If the connection fails the task logs it, waits one poll interval and
//! reconnects, re-reading the counter right after `LISTEN` so nothing
//! committed in between is missed. It stops when its stop channel fires or
//! is dropped (the store was closed or dropped).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::error::{PgError, describe, seq_from_sql};
use crate::schema::{CHANGES_CHANNEL, LAST_SEQ};

/// A running follower task.
pub(crate) struct Follower {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Follower {
    /// Starts following the database of `config`, publishing to `seq`.
    pub(crate) fn spawn(
        config: tokio_postgres::Config,
        seq: Arc<watch::Sender<u64>>,
        poll_interval: Duration,
    ) -> Follower {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(config, seq, poll_interval, stopped));
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
    seq: Arc<watch::Sender<u64>>,
    poll_interval: Duration,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            result = follow(&config, &seq, poll_interval) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "postgres change follower lost its connection; reconnecting");
                }
            }
        }
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(poll_interval) => {}
        }
    }
}

/// One listening session; returns when its connection fails.
async fn follow(
    config: &tokio_postgres::Config,
    seq: &watch::Sender<u64>,
    poll_interval: Duration,
) -> Result<(), PgError> {
    let (client, mut connection) = config
        .connect(NoTls)
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
            ended = &mut driver.0 => {
                let reason = ended.unwrap_or_else(|e| e.to_string());
                return Err(PgError::Query { what: "change listener", detail: reason, code: None });
            }
        }
        let row = client
            .query_one(&last_seq, &[])
            .await
            .map_err(|e| PgError::query("read last sequence number", &e))?;
        let latest = row
            .try_get(0)
            .map_err(|e| PgError::query("read last sequence number", &e))?;
        advance(seq, seq_from_sql(latest)?);
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
