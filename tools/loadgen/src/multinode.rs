//! Scale-out scenarios (issue #9): several Ferry nodes serving one app from
//! one PostgreSQL database. Ferry only — the reference `@triplit/server`
//! has no PostgreSQL mode.
//!
//! - `multinode-delivery`: writers on node A, subscribers spread over nodes
//!   B and C; write → delivery latency (p50/p99/max) across nodes, every
//!   delivery accounted for.
//! - `multinode-throughput`: acknowledged writes per second with 1, 2 and 3
//!   nodes, the ping-pong writers spread evenly over the nodes.
//!
//! Every case gets a fresh database, created (and dropped afterwards) by the
//! generator through the `--postgres` admin URL (`pgadmin.rs`), and fresh
//! node processes.
//! After the load, every node must answer `/fetch` with the same rows
//! (`rows_disagree`, checked by `--check`).

use crate::client::{self, Fanout, Pace, SubOpts, Window};
use crate::http;
use crate::pgadmin::{FreshDb, PgAdmin};
use crate::proc::{CpuUse, CpuWindow};
use crate::proto::now_us;
use crate::results::Record;
use crate::scenarios::{self, Gen};
use crate::server::{Running, TargetSpec};
use anyhow::{Result, bail};
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// `n` nodes on `db`; the first pushes the schema before the others start,
/// so they read it from the database.
async fn start_nodes(
    spec: &TargetSpec,
    secret: &str,
    db: &FreshDb,
    n: usize,
    ready: Duration,
) -> Result<Vec<Running>> {
    let mut nodes: Vec<Running> = Vec::new();
    for i in 0..n {
        let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
        match Running::start_with_env(spec, secret, ready, env).await {
            Ok(r) => nodes.push(r),
            Err(e) => {
                stop_nodes(nodes).await;
                return Err(e.context(format!("starting node {i}")));
            }
        }
        if i == 0
            && let Err(e) = nodes[0].push_schema().await
        {
            stop_nodes(nodes).await;
            return Err(e);
        }
    }
    Ok(nodes)
}

async fn stop_nodes(nodes: Vec<Running>) {
    for n in nodes {
        n.stop().await;
    }
}

/// CPU of every node over one window, summed.
struct NodesCpu(Vec<CpuWindow>);

impl NodesCpu {
    fn start(nodes: &[Running]) -> Self {
        NodesCpu(nodes.iter().map(|n| CpuWindow::start(n.pid)).collect())
    }
    fn stop(&self, m: &mut BTreeMap<String, f64>) -> CpuUse {
        let uses: Vec<CpuUse> = self.0.iter().map(CpuWindow::stop).collect();
        let servers: f64 = uses.iter().map(|u| u.server).sum();
        let seconds: f64 = uses.iter().map(|u| u.server_seconds).sum();
        if servers.is_finite() {
            m.insert("server_cpu_cores".into(), servers);
        }
        let mut u = uses.into_iter().next().expect("one node at least");
        u.server = servers;
        u.server_seconds = seconds;
        m.insert("gen_cpu_cores".into(), u.generator);
        if u.machine.is_finite() {
            m.insert("machine_cpu_cores".into(), u.machine);
        }
        u
    }
}

/// Rows in `todos` on each node (ids only).
async fn row_counts(nodes: &[Running]) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    let body = json!({"query": {"collectionName": "todos", "select": ["id"]}});
    for n in nodes {
        let r = http::post_ok(
            &n.url,
            "/fetch",
            &n.service_token(),
            &body,
            Duration::from_secs(60),
        )
        .await?;
        let v: serde_json::Value = serde_json::from_slice(&r.body)?;
        let Some(rows) = v.as_array() else {
            bail!("/fetch on {} did not answer an array", n.url);
        };
        out.push(rows.len());
    }
    Ok(out)
}

/// Wait (bounded) until every node answers the same number of rows, at
/// least `min`; record `rows` and `rows_disagree`.
async fn check_rows(nodes: &[Running], min: u64, m: &mut BTreeMap<String, f64>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let counts = row_counts(nodes).await?;
        let agree = counts.iter().all(|c| *c == counts[0]) && counts[0] as u64 >= min;
        if agree || Instant::now() > deadline {
            m.insert("rows".into(), counts[0] as f64);
            m.insert("rows_disagree".into(), if agree { 0.0 } else { 1.0 });
            if !agree {
                eprintln!("    rows per node {counts:?}, expected the same and ≥ {min}");
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn put_hist(m: &mut BTreeMap<String, f64>, prefix: &str, h: &Histogram<u64>) {
    if h.is_empty() {
        return;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    m.insert(format!("{prefix}p50_ms"), ms(h.value_at_quantile(0.5)));
    m.insert(format!("{prefix}p99_ms"), ms(h.value_at_quantile(0.99)));
    m.insert(format!("{prefix}max_ms"), ms(h.max()));
    m.insert(format!("{prefix}mean_ms"), h.mean() / 1000.0);
}

fn record(
    scenario: &str,
    case: &str,
    target: &str,
    m: BTreeMap<String, f64>,
    notes: Vec<String>,
) -> Record {
    Record {
        scenario: scenario.into(),
        case: case.into(),
        target: target.into(),
        repeat: 0,
        metrics: m,
        notes,
    }
}

/// The sizes of the multi-node scenarios.
#[derive(Clone, Debug)]
pub struct MultiPlan {
    /// Subscribers (spread over nodes B and C) in the delivery case.
    pub subscribers: usize,
    /// Writers on node A in the delivery case.
    pub writers: usize,
    /// Total write rate in the delivery case (writes/s).
    pub rate: f64,
    /// Warm-up before measuring.
    pub warmup: Duration,
    /// Measured window of each case.
    pub measure: Duration,
    /// Longest wait for outstanding deliveries.
    pub drain: Duration,
    /// Node counts of the throughput cases.
    pub nodes: Vec<usize>,
    /// Ping-pong writers in every throughput case, spread over the nodes.
    pub tp_writers: usize,
}

/// Run one case on fresh nodes and a fresh database.
#[allow(clippy::too_many_arguments)]
pub async fn run_case(
    pg: &PgAdmin,
    spec: &TargetSpec,
    scenario: &str,
    case: &str,
    plan: &MultiPlan,
    g: &Gen,
    secret: &str,
    ready: Duration,
) -> Result<Vec<Record>> {
    let n: usize = match scenario {
        "multinode-delivery" => 3,
        _ => case.trim_start_matches("N=").parse()?,
    };
    let db = pg.create(&format!("n{n}")).await?;
    let nodes = match start_nodes(spec, secret, &db, n, ready).await {
        Ok(nodes) => nodes,
        Err(e) => {
            db.drop_db().await;
            return Err(e);
        }
    };
    let r = match scenario {
        "multinode-delivery" => delivery(&nodes, g, plan).await,
        "multinode-throughput" => throughput(&nodes, g, plan).await,
        other => Err(anyhow::anyhow!("unknown scenario {other}")),
    };
    let tail = if r.is_err() {
        nodes
            .iter()
            .map(Running::log_tail)
            .collect::<Vec<_>>()
            .join("\n--\n")
    } else {
        String::new()
    };
    stop_nodes(nodes).await;
    db.drop_db().await;
    let r = r.map_err(|e| e.context(format!("node output:\n{tail}")))?;
    Ok(vec![record(scenario, case, &spec.name, r.0, r.1)])
}

type Measured = (BTreeMap<String, f64>, Vec<String>);

/// Writers on node A, subscribers alternating over the other nodes.
async fn delivery(nodes: &[Running], g: &Gen, plan: &MultiPlan) -> Result<Measured> {
    let (a, others) = nodes.split_first().expect("three nodes");
    let s = plan.subscribers;
    scenarios::seed_todos(a, 50, s).await?;
    // Subscribers on B and C share one Fanout, so the latency histogram
    // covers every (write, subscriber) pair across nodes.
    let fan = Fanout::traced();
    let (stop_subs, stop_rx) = watch::channel(false);
    let sem = Arc::new(Semaphore::new(g.connect_concurrency.max(1)));
    let secret: Arc<str> = a.secret.clone().into();
    let mut handles = Vec::new();
    for ix in 0..s {
        let node = &others[ix % others.len()];
        let opts = SubOpts {
            ix,
            base: node.url.clone().into(),
            secret: secret.clone(),
            track: false,
            state: None,
            permit: Some(sem.clone().acquire_owned().await?),
        };
        handles.push(tokio::spawn(client::subscriber(
            opts,
            fan.clone(),
            stop_rx.clone(),
        )));
    }
    let timeout = Duration::from_secs(30 + s as u64 / 40);
    if !fan.wait_ready(s, timeout).await || fan.failed.load(Relaxed) > 0 {
        let _ = stop_subs.send(true);
        bail!(
            "{} of {s} subscribers ready ({} failed): {}",
            fan.ready.load(Relaxed),
            fan.failed.load(Relaxed),
            fan.first_error.lock().unwrap().clone().unwrap_or_default()
        );
    }
    // Writers on A; every write is shared, so every subscriber expects it.
    let seq = Arc::new(AtomicU64::new(0));
    let window = Window::new();
    let (stop_w, rx_w) = watch::channel(false);
    let base: Arc<str> = a.url.clone().into();
    let per_writer = plan.rate / plan.writers.max(1) as f64;
    let writers: Vec<_> = (0..plan.writers.max(1))
        .map(|k| {
            tokio::spawn(client::writer(
                k,
                base.clone(),
                secret.clone(),
                Pace::Rate(per_writer),
                0,
                seq.clone(),
                window.clone(),
                rx_w.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(plan.warmup).await;
    let lo = seq.load(Relaxed);
    let _ = fan.take();
    fan.lo.store(lo, Relaxed);
    window.start.store(now_us(), Relaxed);
    let cpu = NodesCpu::start(nodes);
    let t0 = Instant::now();
    tokio::time::sleep(plan.measure).await;
    let secs = t0.elapsed().as_secs_f64();
    window.end.store(now_us(), Relaxed);
    let hi = seq.load(Relaxed);
    fan.hi.store(hi, Relaxed);
    let _ = stop_w.send(true);
    let mut outs = Vec::new();
    for h in writers {
        outs.push(h.await?);
    }
    let ready = fan.ready.load(Relaxed) as u64;
    let (mut writes, mut errors, mut notes, mut ack) = (0u64, 0u64, Vec::new(), client::hist());
    for o in &outs {
        errors += o.errors;
        ack.add(&o.ack_hist).ok();
        if let Some(e) = &o.first_error {
            notes.push(e.chars().take(300).collect());
        }
        writes += o.log.iter().filter(|(sq, _)| *sq >= lo && *sq < hi).count() as u64;
    }
    // Deliveries are counted from the trace, which records every write a
    // subscriber receives: the histogram may miss a write delivered in the
    // instant before `lo` was published to the subscribers, the count may not.
    let expected = writes * ready;
    let deadline = Instant::now() + plan.drain;
    while (received(&fan, lo, hi).len() as u64) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut m = BTreeMap::new();
    cpu.stop(&mut m);
    let got = received(&fan, lo, hi);
    if (got.len() as u64) < expected {
        notes.push(missing_deliveries(&got, s, others, lo, hi));
        eprintln!("    {}", notes.last().unwrap());
    }
    let (h, _) = fan.take();
    let delivered = got.len() as u64;
    fan.lo.store(u64::MAX, Relaxed);
    put_hist(&mut m, "", &h);
    put_hist(&mut m, "ack_", &ack);
    m.insert("nodes".into(), nodes.len() as f64);
    m.insert("subscribers".into(), s as f64);
    m.insert("subs_ready".into(), ready as f64);
    m.insert("writes".into(), writes as f64);
    m.insert("write_rate_target".into(), plan.rate);
    m.insert("write_rate".into(), writes as f64 / secs);
    m.insert("expected".into(), expected as f64);
    m.insert("delivered".into(), delivered as f64);
    m.insert(
        "delivered_ratio".into(),
        if expected > 0 {
            delivered as f64 / expected as f64
        } else {
            1.0
        },
    );
    m.insert("write_errors".into(), errors as f64);
    m.insert("leaks".into(), fan.leaks.load(Relaxed) as f64);
    m.insert("dups".into(), fan.dups.load(Relaxed) as f64);
    m.insert("subs_dropped".into(), fan.dropped.load(Relaxed) as f64);
    if let Some(e) = fan.first_error.lock().unwrap().clone() {
        notes.push(e);
    }
    let _ = stop_subs.send(true);
    for h in handles {
        let _ = h.await;
    }
    let generated: u64 = outs.iter().map(|o| o.log.len() as u64).sum();
    check_rows(nodes, 50 + generated - errors.min(generated), &mut m).await?;
    eprintln!(
        "    multinode delivery S={s}: p50 {:.1} ms, p99 {:.1} ms, delivered {:.4}",
        m.get("p50_ms").unwrap_or(&f64::NAN),
        m.get("p99_ms").unwrap_or(&f64::NAN),
        m["delivered_ratio"]
    );
    Ok((m, notes))
}

/// The (subscriber, write) pairs received with `lo <= seq < hi`, from the trace.
fn received(fan: &Fanout, lo: u64, hi: u64) -> HashSet<(usize, u64)> {
    fan.trace
        .as_ref()
        .map(|t| {
            t.lock()
                .unwrap()
                .iter()
                .copied()
                .filter(|(_, s)| *s >= lo && *s < hi)
                .collect()
        })
        .unwrap_or_default()
}

/// Which measured writes which subscribers never received.
fn missing_deliveries(
    got: &HashSet<(usize, u64)>,
    s: usize,
    others: &[Running],
    lo: u64,
    hi: u64,
) -> String {
    let mut by_seq: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for seq in lo..hi {
        for ix in 0..s {
            if !got.contains(&(ix, seq)) {
                let node = 1 + ix % others.len();
                by_seq
                    .entry(seq)
                    .or_default()
                    .push(format!("{ix}@node{node}"));
            }
        }
    }
    let parts: Vec<String> = by_seq
        .iter()
        .take(5)
        .map(|(seq, subs)| {
            format!(
                "w{seq} not at {} subscribers ({})",
                subs.len(),
                subs.iter().take(6).cloned().collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    format!("lost deliveries: {}", parts.join("; "))
}

/// Ping-pong writers spread evenly over the nodes.
async fn throughput(nodes: &[Running], g: &Gen, plan: &MultiPlan) -> Result<Measured> {
    let _ = g;
    let w = plan.tp_writers.max(1);
    let seq = Arc::new(AtomicU64::new(0));
    let window = Window::new();
    let (stop, rx) = watch::channel(false);
    let secret: Arc<str> = nodes[0].secret.clone().into();
    let writers: Vec<_> = (0..w)
        .map(|k| {
            tokio::spawn(client::writer(
                k,
                nodes[k % nodes.len()].url.clone().into(),
                secret.clone(),
                Pace::PingPong,
                0,
                seq.clone(),
                window.clone(),
                rx.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(plan.warmup.max(Duration::from_millis(700))).await;
    window.start.store(now_us(), Relaxed);
    let cpu = NodesCpu::start(nodes);
    let t0 = Instant::now();
    tokio::time::sleep(plan.measure).await;
    window.end.store(now_us(), Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let mut m = BTreeMap::new();
    cpu.stop(&mut m);
    let _ = stop.send(true);
    let (mut writes, mut errors, mut connected, mut notes, mut ack) =
        (0u64, 0u64, 0usize, Vec::new(), client::hist());
    let mut generated = 0u64;
    for h in writers {
        let o = h.await?;
        writes += o.writes_in_window;
        errors += o.errors;
        generated += o.log.len() as u64;
        connected += usize::from(o.connected);
        ack.add(&o.ack_hist).ok();
        if let Some(e) = o.first_error
            && notes.len() < 3
        {
            notes.push(e.chars().take(300).collect());
        }
    }
    m.insert("nodes".into(), nodes.len() as f64);
    m.insert("writers".into(), w as f64);
    m.insert("writers_connected".into(), connected as f64);
    m.insert("writes_per_s".into(), writes as f64 / secs);
    m.insert("write_errors".into(), errors as f64);
    put_hist(&mut m, "ack_", &ack);
    check_rows(nodes, writes.min(generated), &mut m).await?;
    eprintln!(
        "    multinode throughput N={}: {:.0} writes/s",
        nodes.len(),
        writes as f64 / secs
    );
    Ok((m, notes))
}
