//! The scale-out section of `docs/benchmarks.md`: several Ferry nodes on
//! one PostgreSQL database (`multinode-delivery`, `multinode-throughput`).

use super::Report;
use std::fmt::Write as _;

impl Report<'_> {
    /// "## 6. Several nodes": cross-node delivery latency and aggregate
    /// acknowledged write throughput with 1, 2 and 3 nodes.
    pub(super) fn multinode_section(&self, o: &mut String) {
        let _ = writeln!(o, "## 6. Several nodes on one PostgreSQL database\n");
        let _ = writeln!(
            o,
            "Ferry only: the reference `@triplit/server` has no PostgreSQL mode, so there is no ratio. Every case \
creates a fresh PostgreSQL database (dropped afterwards) and starts fresh `ferry serve` processes with \
`DATABASE_URL` pointing at it; all nodes and PostgreSQL run on this same machine, so more nodes share the \
same cores rather than adding any.{}\n",
            self.res
                .params
                .get("multinode")
                .map(|p| format!(" Parameters: {p}."))
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "**Write → delivery across nodes.** Three nodes: writers connected to node A, subscribers (half the \
shared list, half per-user queries, as in §1) alternating over nodes B and C, so every delivery crosses \
PostgreSQL's change log. Latency from the writer's send to the `ENTITY_DATA` at each subscriber.\n"
        );
        self.table(
            o,
            "multinode-delivery",
            &[
                ("p50_ms", "p50 ms"),
                ("p99_ms", "p99 ms"),
                ("max_ms", "max ms"),
                ("delivered_ratio", "delivered"),
                ("write_rate", "writes/s"),
                ("ack_p50_ms", "ack p50 ms"),
                ("server_cpu_cores", "CPU, all nodes"),
                ("gen_cpu_cores", "gen CPU"),
            ],
            "S",
        );
        self.notes(o, "multinode-delivery");
        let _ = writeln!(
            o,
            "**Aggregate acknowledged write throughput.** The same number of ping-pong writers (one insert per \
`CHANGES`, the next after its `CHANGES_ACK`) spread evenly over 1, 2 and 3 nodes; acknowledged writes per \
second summed over all writers. Commits are serialised cluster-wide in PostgreSQL (one advisory lock, so \
the change log's order is commit order), so more nodes add connection capacity, not commit capacity.\n"
        );
        self.table(
            o,
            "multinode-throughput",
            &[
                ("writes_per_s", "acked writes/s"),
                ("ack_p50_ms", "ack p50 ms"),
                ("ack_p99_ms", "ack p99 ms"),
                ("server_cpu_cores", "CPU, all nodes"),
                ("gen_cpu_cores", "gen CPU"),
                ("rows", "rows on every node"),
            ],
            "nodes",
        );
        self.notes(o, "multinode-throughput");
    }
}
