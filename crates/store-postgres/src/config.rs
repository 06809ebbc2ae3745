//! Tuning for [`crate::PostgresStore::connect_with`].

use std::time::Duration;

/// How a [`crate::PostgresStore`] uses its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// Pooled connections of this node, which is the number of
    /// transactions (and feed reads) it runs at once (at least 1). The
    /// change-feed listener holds one more connection of its own.
    pub max_connections: usize,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// How long a transaction waits for a free pooled connection before
    /// failing.
    pub acquire_timeout: Duration,
    /// Rows fetched per query while scanning (at least 1); a scan that
    /// stops early reads at most one batch past where it stopped.
    pub scan_batch: usize,
    /// How often the listener re-reads the latest sequence number in case
    /// a notification was lost (at least 1 ms). Notifications normally
    /// wake followers long before this.
    pub poll_interval: Duration,
    /// How often a write closure is run before a repeating serialization
    /// failure or deadlock is reported (at least 1).
    pub max_write_attempts: u32,
    /// `idle_in_transaction_session_timeout` of write transactions: the
    /// server aborts a write that holds the cluster-wide write lock but
    /// sends nothing for this long (a stalled or partitioned node), so
    /// other nodes are not blocked forever. Zero disables it.
    pub write_idle_timeout: Duration,
    /// `application_name` of this node's connections, unless the URL sets
    /// one; shows in `pg_stat_activity`.
    pub application_name: String,
    /// How recent a node's heartbeat (its last
    /// [`ferry_store::Store::report_position`]) must be for pruning to keep
    /// the change records it has not read yet. A node silent for longer is
    /// presumed gone; if it comes back behind the pruned range its feed
    /// follower sees the gap and resynchronises.
    pub node_timeout: Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
            scan_batch: 256,
            poll_interval: Duration::from_secs(1),
            max_write_attempts: 8,
            write_idle_timeout: Duration::from_secs(60),
            application_name: "ferry".to_owned(),
            node_timeout: Duration::from_secs(60),
        }
    }
}

impl PostgresConfig {
    /// The same settings with every lower bound applied.
    pub(crate) fn normalised(mut self) -> Self {
        self.max_connections = self.max_connections.max(1);
        self.scan_batch = self.scan_batch.clamp(1, i64::MAX as usize);
        self.poll_interval = self.poll_interval.max(Duration::from_millis(1));
        self.max_write_attempts = self.max_write_attempts.max(1);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising_applies_lower_bounds() {
        let config = PostgresConfig {
            max_connections: 0,
            scan_batch: 0,
            poll_interval: Duration::ZERO,
            max_write_attempts: 0,
            ..PostgresConfig::default()
        }
        .normalised();
        assert_eq!(config.max_connections, 1);
        assert_eq!(config.scan_batch, 1);
        assert_eq!(config.poll_interval, Duration::from_millis(1));
        assert_eq!(config.max_write_attempts, 1);
        assert_eq!(
            PostgresConfig::default().normalised(),
            PostgresConfig::default()
        );
    }
}
