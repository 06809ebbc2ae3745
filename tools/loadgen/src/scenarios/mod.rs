//! The measured scenarios. Each takes a started target and returns
//! [`Record`]s (one per case) with flat numeric metrics.

use crate::client::{self, Fanout, Pace, SubOpts, Window};
use crate::http;
use crate::proc::{CpuUse, CpuWindow};
use crate::proto::{self, now_us};
use crate::results::Record;
use crate::server::Running;
use anyhow::{Result, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// Generator settings shared by every scenario.
#[derive(Clone)]
pub struct Gen {
    /// Worker threads of the generator's runtime.
    pub threads: usize,
    /// Concurrent WebSocket handshakes while building a subscriber set.
    pub connect_concurrency: usize,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn put_hist(m: &mut BTreeMap<String, f64>, prefix: &str, h: &Histogram<u64>) {
    if h.is_empty() {
        return;
    }
    m.insert(format!("{prefix}p50_ms"), ms(h.value_at_quantile(0.5)));
    m.insert(format!("{prefix}p99_ms"), ms(h.value_at_quantile(0.99)));
    m.insert(format!("{prefix}max_ms"), ms(h.max()));
    m.insert(format!("{prefix}mean_ms"), h.mean() / 1000.0);
}

fn put_cpu(m: &mut BTreeMap<String, f64>, c: &CpuUse, gen_threads: usize) {
    m.insert("gen_cpu_cores".into(), c.generator);
    m.insert("gen_cpu_share".into(), c.generator / gen_threads as f64);
    m.insert("window_s".into(), c.wall);
    if c.server.is_finite() {
        m.insert("server_cpu_cores".into(), c.server);
    }
    if c.machine.is_finite() {
        m.insert("machine_cpu_cores".into(), c.machine);
        let srv = if c.server.is_finite() { c.server } else { 0.0 };
        m.insert(
            "other_cpu_cores".into(),
            (c.machine - c.generator - srv).max(0.0),
        );
    }
}

fn record(
    scenario: &str,
    case: &str,
    run: &Running,
    metrics: BTreeMap<String, f64>,
    notes: Vec<String>,
) -> Record {
    Record {
        scenario: scenario.into(),
        case: case.into(),
        target: run.spec.name.clone(),
        repeat: 0,
        metrics,
        notes,
    }
}

/// Seed `n` todos (even: shared, odd: private to `u{i % users}`) with old
/// `createdAt`, so every list query starts with a full 50-row window.
pub async fn seed_todos(run: &Running, n: u64, users: usize) -> Result<()> {
    if run.spec.physical || n == 0 {
        return Ok(());
    }
    let todos: Vec<Value> = (0..n)
        .map(|i| {
            proto::seed_todo(
                i,
                &proto::user_of_subscriber(i as usize % users.max(1)),
                i % 2 == 0,
            )
        })
        .collect();
    post_todos(run, todos, Duration::from_secs(120)).await
}

/// Inserts `todos` with one `/bulk-insert` as the service.
async fn post_todos(run: &Running, todos: Vec<Value>, timeout: Duration) -> Result<()> {
    http::post_ok(
        &run.url,
        "/bulk-insert?noReturn=true",
        &run.service_token(),
        &json!({ "todos": todos }),
        timeout,
    )
    .await?;
    Ok(())
}

mod bulk;
mod connections;
mod fanout;
mod reconnect;
mod subs;
mod throughput;

pub use bulk::{bulk, coldstart};
pub use connections::connections;
pub use fanout::{fanout, ramp};
pub use reconnect::reconnect;
pub use subs::Subs;
use subs::{Writers, connect_timeout, fan_step, lag_probe, sub_metrics};
pub use throughput::throughput;
