//! Prometheus metrics: the recorder and every metric name in one place.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `ferry_http_requests_total` | counter | `route`, `status` |
//! | `ferry_open_connections` | gauge | `protocol` |
//! | `ferry_live_queries` | gauge | `protocol` |
//! | `ferry_commits_total` | counter | `protocol` |
//! | `ferry_commit_duration_seconds` | histogram | `protocol` |
//! | `ferry_auth_refusals_total` | counter | `reason` |

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// HTTP requests answered, by route and status.
pub const HTTP_REQUESTS: &str = "ferry_http_requests_total";
/// Open realtime connections.
pub const OPEN_CONNECTIONS: &str = "ferry_open_connections";
/// Live queries across connections.
pub const LIVE_QUERIES: &str = "ferry_live_queries";
/// Tokens refused, by reason code.
pub const AUTH_REFUSALS: &str = "ferry_auth_refusals_total";

/// Installs the global recorder and returns the handle that renders the
/// text exposition. Call once per process; a second call returns a
/// recorder that is not installed globally (useful in tests).
pub fn install() -> PrometheusHandle {
    let builder = PrometheusBuilder::new();
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    let _ = ::metrics::set_global_recorder(recorder);
    ::metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route and status");
    ::metrics::describe_gauge!(OPEN_CONNECTIONS, "Open realtime connections");
    ::metrics::describe_gauge!(LIVE_QUERIES, "Live queries across all connections");
    ::metrics::describe_counter!(AUTH_REFUSALS, "Tokens refused, by reason");
    ::metrics::describe_counter!("ferry_commits_total", "Committed write transactions");
    ::metrics::describe_histogram!(
        "ferry_commit_duration_seconds",
        "Time from submitting a write to its durable commit"
    );
    ::metrics::gauge!(OPEN_CONNECTIONS, "protocol" => "triplit").set(0.0);
    ::metrics::gauge!(LIVE_QUERIES, "protocol" => "triplit").set(0.0);
    handle
}
