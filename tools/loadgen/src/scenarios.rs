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
    http::post_ok(
        &run.url,
        "/bulk-insert?noReturn=true",
        &run.service_token(),
        &json!({ "todos": todos }),
        Duration::from_secs(120),
    )
    .await?;
    Ok(())
}

/// A set of live subscribers.
pub struct Subs {
    /// Shared counters and histograms.
    pub fan: Arc<Fanout>,
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<client::SubOutcome>>,
    /// Subscribers started.
    pub n: usize,
}

impl Subs {
    /// Start subscribers `from..to` (concurrency-limited when `limit` > 0)
    /// and wait until all are fulfilled or failed.
    pub async fn start(
        run: &Running,
        n: usize,
        limit: usize,
        track: bool,
        timeout: Duration,
    ) -> Result<(Subs, Duration)> {
        let (stop, stop_rx) = watch::channel(false);
        let mut s = Subs {
            fan: Fanout::new(),
            stop,
            handles: Vec::new(),
            n: 0,
        };
        let d = s.add(run, n, limit, track, None, timeout, stop_rx).await?;
        Ok((s, d))
    }

    /// Add `n` more subscribers (indices continue), optionally with checkpoints.
    #[allow(clippy::too_many_arguments)]
    async fn add(
        &mut self,
        run: &Running,
        n: usize,
        limit: usize,
        track: bool,
        states: Option<Vec<Option<Value>>>,
        timeout: Duration,
        stop_rx: watch::Receiver<bool>,
    ) -> Result<Duration> {
        let t0 = Instant::now();
        let sem = (limit > 0).then(|| Arc::new(Semaphore::new(limit)));
        let base: Arc<str> = run.url.clone().into();
        let secret: Arc<str> = run.secret.clone().into();
        let first = self.n;
        for i in 0..n {
            let ix = first + i;
            let permit = match &sem {
                Some(s) => Some(s.clone().acquire_owned().await?),
                None => None,
            };
            let opts = SubOpts {
                ix,
                base: base.clone(),
                secret: secret.clone(),
                track,
                state: states.as_ref().and_then(|s| s.get(i).cloned().flatten()),
                permit,
            };
            self.handles.push(tokio::spawn(client::subscriber(
                opts,
                self.fan.clone(),
                stop_rx.clone(),
            )));
        }
        self.n += n;
        let target = self.n;
        if !self.fan.wait_ready(target, timeout).await {
            bail!(
                "only {} of {target} subscribers ready after {timeout:?} ({} failed; {})",
                self.fan.ready.load(Relaxed),
                self.fan.failed.load(Relaxed),
                self.fan
                    .first_error
                    .lock()
                    .unwrap()
                    .clone()
                    .unwrap_or_default()
            );
        }
        Ok(t0.elapsed())
    }

    /// More subscribers on the same stop signal.
    pub async fn grow(
        &mut self,
        run: &Running,
        n: usize,
        limit: usize,
        timeout: Duration,
    ) -> Result<Duration> {
        let rx = self.stop.subscribe();
        self.add(run, n, limit, false, None, timeout, rx).await
    }

    /// Stop every subscriber and collect what they hand back.
    pub async fn stop(self) -> Vec<client::SubOutcome> {
        let _ = self.stop.send(true);
        let mut out = Vec::new();
        for h in self.handles {
            out.push(h.await.unwrap_or_default());
        }
        out
    }
}

/// Writers running at a pace until stopped.
struct Writers {
    seq: Arc<AtomicU64>,
    window: Arc<Window>,
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<client::WriterOut>>,
}

impl Writers {
    fn start(
        run: &Running,
        w: usize,
        pace: Pace,
        private_tenths: u64,
        seq: Arc<AtomicU64>,
    ) -> Writers {
        let (stop, rx) = watch::channel(false);
        let window = Window::new();
        let base: Arc<str> = run.url.clone().into();
        let secret: Arc<str> = run.secret.clone().into();
        let handles = (0..w)
            .map(|k| {
                tokio::spawn(client::writer(
                    k,
                    base.clone(),
                    secret.clone(),
                    pace,
                    private_tenths,
                    seq.clone(),
                    window.clone(),
                    rx.clone(),
                ))
            })
            .collect();
        Writers {
            seq,
            window,
            stop,
            handles,
        }
    }

    async fn stop(self) -> Vec<client::WriterOut> {
        let _ = self.stop.send(true);
        let mut out = Vec::new();
        for h in self.handles {
            if let Ok(o) = h.await {
                out.push(o);
            }
        }
        out
    }
}

fn lag_probe() -> (watch::Sender<bool>, JoinHandle<Histogram<u64>>) {
    let (tx, rx) = watch::channel(false);
    (tx, tokio::spawn(client::lag_probe(rx)))
}

/// One measured step of writes into live subscribers.
struct StepOut {
    metrics: BTreeMap<String, f64>,
    notes: Vec<String>,
    p99_ms: f64,
    delivered_ratio: f64,
    achieved_ratio: f64,
}

#[allow(clippy::too_many_arguments)]
async fn fan_step(
    run: &Running,
    subs: &Subs,
    g: &Gen,
    writers: usize,
    rate: f64,
    warmup: Duration,
    measure: Duration,
    drain_max: Duration,
    seq: Arc<AtomicU64>,
) -> StepOut {
    let fan = &subs.fan;
    let private_tenths = if run.spec.physical { 0 } else { 1 };
    fan.lo.store(u64::MAX, Relaxed);
    fan.hi.store(u64::MAX, Relaxed);
    let _ = fan.take();
    let ws = Writers::start(
        run,
        writers,
        Pace::Rate(rate / writers as f64),
        private_tenths,
        seq,
    );
    tokio::time::sleep(warmup).await;
    let (lag_stop, lag) = lag_probe();
    let lo = ws.seq.load(Relaxed);
    fan.lo.store(lo, Relaxed);
    ws.window.start.store(now_us(), Relaxed);
    let cpu = CpuWindow::start(run.pid);
    let t0 = Instant::now();
    tokio::time::sleep(measure).await;
    let gen_secs = t0.elapsed().as_secs_f64();
    ws.window.end.store(now_us(), Relaxed);
    let seq_ref = ws.seq.clone();
    let outs = ws.stop().await;
    let hi = seq_ref.load(Relaxed);
    fan.hi.store(hi, Relaxed);
    // Expected deliveries of the measured writes.
    let ready = fan.ready.load(Relaxed) as u64;
    let mut expected = 0u64;
    let mut writes = 0u64;
    let mut errors = 0u64;
    let mut notes = Vec::new();
    let mut ack = client::hist();
    for (k, o) in outs.iter().enumerate() {
        errors += o.errors;
        if let Some(e) = &o.first_error {
            notes.push(e.chars().take(300).collect());
        }
        ack.add(&o.ack_hist).ok();
        let private_sub = 2 * k + 1;
        for &(s, shared) in &o.log {
            if s >= lo && s < hi {
                writes += 1;
                expected += if shared {
                    ready
                } else {
                    u64::from(private_sub < subs.n)
                };
            }
        }
    }
    let deadline = Instant::now() + drain_max;
    while fan.delivered.load(Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = cpu.stop();
    let _ = lag_stop.send(true);
    let lag = lag.await.unwrap_or_else(|_| client::hist());
    let (h, delivered) = fan.take();
    fan.lo.store(u64::MAX, Relaxed);
    let mut m = BTreeMap::new();
    put_hist(&mut m, "", &h);
    put_hist(&mut m, "ack_", &ack);
    put_cpu(&mut m, &c, g.threads);
    m.insert("lag_p99_ms".into(), ms(lag.value_at_quantile(0.99)));
    m.insert("lag_max_ms".into(), ms(lag.max()));
    m.insert("writes".into(), writes as f64);
    m.insert("write_rate_target".into(), rate);
    m.insert("write_rate".into(), writes as f64 / gen_secs);
    m.insert("delivered".into(), delivered as f64);
    m.insert("expected".into(), expected as f64);
    let delivered_ratio = if expected > 0 {
        delivered as f64 / expected as f64
    } else {
        1.0
    };
    m.insert("delivered_ratio".into(), delivered_ratio);
    m.insert("write_errors".into(), errors as f64);
    m.insert("deliveries_per_s".into(), delivered as f64 / gen_secs);
    if c.server_seconds.is_finite() && delivered > 0 {
        m.insert(
            "server_us_per_delivery".into(),
            c.server_seconds * 1e6 / delivered as f64,
        );
    }
    let saturated = c.generator > 0.85 * g.threads as f64 || ms(lag.value_at_quantile(0.99)) > 20.0;
    m.insert("gen_saturated".into(), if saturated { 1.0 } else { 0.0 });
    let p99 = if h.is_empty() {
        f64::INFINITY
    } else {
        ms(h.value_at_quantile(0.99))
    };
    // One tick per writer of slack: short windows at low rates quantize.
    let achieved_ratio = (writes as f64 + writers as f64) / (gen_secs * rate);
    StepOut {
        metrics: m,
        notes,
        p99_ms: p99,
        delivered_ratio,
        achieved_ratio,
    }
}

fn sub_metrics(m: &mut BTreeMap<String, f64>, subs: &Subs, connect: Duration) {
    let f = &subs.fan;
    m.insert("subscribers".into(), subs.n as f64);
    m.insert("subs_ready".into(), f.ready.load(Relaxed) as f64);
    m.insert("subs_failed".into(), f.failed.load(Relaxed) as f64);
    m.insert("subs_dropped".into(), f.dropped.load(Relaxed) as f64);
    m.insert("leaks".into(), f.leaks.load(Relaxed) as f64);
    m.insert("dups".into(), f.dups.load(Relaxed) as f64);
    m.insert("connect_all_s".into(), connect.as_secs_f64());
    let r = f.ready.load(Relaxed).max(1) as f64;
    m.insert(
        "initial_rows_avg".into(),
        f.initial_rows.load(Relaxed) as f64 / r,
    );
    put_hist(m, "connect_", &f.connect_hist.lock().unwrap());
}

fn connect_timeout(n: usize) -> Duration {
    Duration::from_secs(30 + n as u64 / 40)
}

/// Scenario 1a: S subscribers (half shared list, half per-user), W writers
/// at a fixed total rate; write → delivery latency at every subscriber.
#[allow(clippy::too_many_arguments)]
pub async fn fanout(
    run: &Running,
    g: &Gen,
    s: usize,
    w: usize,
    rate: f64,
    warmup: Duration,
    measure: Duration,
    drain: Duration,
    seed: u64,
) -> Result<Record> {
    seed_todos(run, seed, s).await?;
    let (subs, connect) =
        Subs::start(run, s, g.connect_concurrency, false, connect_timeout(s)).await?;
    let rss_subscribed = run.rss();
    let step = fan_step(
        run,
        &subs,
        g,
        w,
        rate,
        warmup,
        measure,
        drain,
        Arc::new(AtomicU64::new(0)),
    )
    .await;
    let mut m = step.metrics;
    sub_metrics(&mut m, &subs, connect);
    if let Some(r) = rss_subscribed {
        m.insert("rss_mb".into(), r as f64 / 1048576.0);
    }
    m.insert("pongs".into(), subs.fan.pongs.load(Relaxed) as f64);
    let mut notes = step.notes;
    if let Some(e) = subs.fan.first_error.lock().unwrap().clone() {
        notes.push(e);
    }
    subs.stop().await;
    m.insert("seeded".into(), seed as f64);
    Ok(record("fanout", &format!("S={s}"), run, m, notes))
}

/// Scenario 1b: the highest sustained write rate into S subscribers with
/// p99 ≤ `limit_ms`, all writes delivered and the target rate reached.
pub async fn ramp(
    run: &Running,
    g: &Gen,
    s: usize,
    w: usize,
    rates: &[f64],
    step: Duration,
    limit_ms: f64,
) -> Result<Vec<Record>> {
    seed_todos(run, 200, s).await?;
    let (subs, connect) =
        Subs::start(run, s, g.connect_concurrency, false, connect_timeout(s)).await?;
    let seq = Arc::new(AtomicU64::new(0));
    let mut best = 0.0;
    let mut out = Vec::new();
    let mut fail_reason = String::from("every step passed");
    for &rate in rates {
        let wk = w.min(((rate / 10.0).ceil() as usize).max(1));
        let st = fan_step(
            run,
            &subs,
            g,
            wk,
            rate,
            Duration::from_millis(500),
            step,
            Duration::from_secs(3),
            seq.clone(),
        )
        .await;
        let pass = st.p99_ms <= limit_ms && st.delivered_ratio >= 0.999 && st.achieved_ratio >= 0.9;
        let mut m = st.metrics;
        m.insert("pass".into(), if pass { 1.0 } else { 0.0 });
        out.push(record(
            "ramp-step",
            &format!("{rate}"),
            run,
            m.clone(),
            st.notes,
        ));
        eprintln!(
            "    ramp {}: {rate}/s → p99 {:.1} ms, delivered {:.4}, achieved {:.2}, gen cpu {:.2}, {}",
            run.spec.name,
            st.p99_ms,
            st.delivered_ratio,
            st.achieved_ratio,
            m.get("gen_cpu_cores").unwrap_or(&0.0),
            if pass { "pass" } else { "FAIL" }
        );
        if pass {
            best = rate;
        } else {
            fail_reason = format!(
                "{rate}/s: p99 {:.1} ms, delivered {:.1}%, achieved {:.0}% of the rate, generator {:.2} cores{}",
                st.p99_ms,
                st.delivered_ratio * 100.0,
                st.achieved_ratio * 100.0,
                m.get("gen_cpu_cores").unwrap_or(&0.0),
                if m.get("gen_saturated") == Some(&1.0) {
                    " (generator saturated)"
                } else {
                    ""
                }
            );
            break;
        }
    }
    let mut m = BTreeMap::new();
    m.insert("max_rate".into(), best);
    sub_metrics(&mut m, &subs, connect);
    subs.stop().await;
    out.push(record(
        "ramp",
        &format!("S={s}"),
        run,
        m,
        vec![format!("first failing step: {fail_reason}")],
    ));
    Ok(out)
}

/// Scenario 2: memory per idle authenticated connection with one live
/// query, and the time for `storm` clients connecting at once.
pub async fn connections(run: &Running, g: &Gen, storm: usize, max: usize) -> Result<Vec<Record>> {
    seed_todos(run, 200, storm).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss0 = run.rss();
    let mut points = vec![(0usize, rss0)];
    let cpu = CpuWindow::start(run.pid);
    let (mut subs, storm_time) = Subs::start(run, storm, 0, false, connect_timeout(storm)).await?;
    let c = cpu.stop();
    let mut m = BTreeMap::new();
    m.insert("storm_s".into(), storm_time.as_secs_f64());
    put_hist(
        &mut m,
        "storm_client_",
        &subs.fan.connect_hist.lock().unwrap(),
    );
    put_cpu(&mut m, &c, g.threads);
    m.insert("storm_failed".into(), subs.fan.failed.load(Relaxed) as f64);
    tokio::time::sleep(Duration::from_secs(2)).await;
    points.push((storm, run.rss()));
    let mut n = storm;
    while n < max {
        let add = storm.min(max - n);
        subs.grow(run, add, g.connect_concurrency, connect_timeout(add))
            .await?;
        n += add;
        tokio::time::sleep(Duration::from_secs(2)).await;
        points.push((n, run.rss()));
    }
    let mut notes = Vec::new();
    if let (Some(a), Some(b)) = (rss0, points[1].1) {
        m.insert("rss0_mb".into(), a as f64 / 1048576.0);
        m.insert("rss_storm_mb".into(), b as f64 / 1048576.0);
        m.insert(
            "kb_per_conn".into(),
            (b as f64 - a as f64) / storm as f64 / 1024.0,
        );
    }
    if let (Some(a), Some(b)) = (points[1].1, points.last().unwrap().1)
        && n > storm
    {
        m.insert(
            "kb_per_conn_marginal".into(),
            (b as f64 - a as f64) / (n - storm) as f64 / 1024.0,
        );
    }
    for (k, r) in &points {
        if let Some(r) = r {
            m.insert(format!("rss_at_{k}_mb"), *r as f64 / 1048576.0);
        }
    }
    m.insert("connections".into(), subs.fan.ready.load(Relaxed) as f64);
    if let Some(e) = subs.fan.first_error.lock().unwrap().clone() {
        notes.push(e);
    }
    m.insert("leaks".into(), subs.fan.leaks.load(Relaxed) as f64);
    subs.stop().await;
    Ok(vec![record(
        "connections",
        &format!("N={storm}"),
        run,
        m,
        notes,
    )])
}

/// Scenario 3: acknowledged writes per second from `writers` concurrent
/// ping-pong writers (one insert per CHANGES, next after the ack).
pub async fn throughput(
    run: &Running,
    g: &Gen,
    counts: &[usize],
    measure: Duration,
) -> Result<Vec<Record>> {
    let seq = Arc::new(AtomicU64::new(0));
    let mut out = Vec::new();
    for &w in counts {
        let ws = Writers::start(run, w, Pace::PingPong, 0, seq.clone());
        tokio::time::sleep(Duration::from_millis(if w > 20 { 1500 } else { 700 })).await;
        let (lag_stop, lag) = lag_probe();
        ws.window.start.store(now_us(), Relaxed);
        let cpu = CpuWindow::start(run.pid);
        let t0 = Instant::now();
        tokio::time::sleep(measure).await;
        ws.window.end.store(now_us(), Relaxed);
        let secs = t0.elapsed().as_secs_f64();
        let c = cpu.stop();
        let _ = lag_stop.send(true);
        let outs = ws.stop().await;
        let lag = lag.await.unwrap_or_else(|_| client::hist());
        let mut ack = client::hist();
        let (mut writes, mut errors, mut connected) = (0u64, 0u64, 0usize);
        let mut notes = Vec::new();
        for o in &outs {
            writes += o.writes_in_window;
            errors += o.errors;
            connected += usize::from(o.connected);
            ack.add(&o.ack_hist).ok();
            if let Some(e) = &o.first_error
                && notes.len() < 3
            {
                notes.push(e.chars().take(300).collect());
            }
        }
        let mut m = BTreeMap::new();
        m.insert("writers".into(), w as f64);
        m.insert("writers_connected".into(), connected as f64);
        m.insert("writes_per_s".into(), writes as f64 / secs);
        m.insert("write_errors".into(), errors as f64);
        put_hist(&mut m, "ack_", &ack);
        put_cpu(&mut m, &c, g.threads);
        m.insert("lag_p99_ms".into(), ms(lag.value_at_quantile(0.99)));
        if c.server_seconds.is_finite() && writes > 0 {
            m.insert(
                "server_us_per_write".into(),
                c.server_seconds * 1e6 / writes as f64,
            );
        }
        let saturated =
            c.generator > 0.85 * g.threads as f64 || ms(lag.value_at_quantile(0.99)) > 20.0;
        m.insert("gen_saturated".into(), if saturated { 1.0 } else { 0.0 });
        eprintln!(
            "    throughput {} W={w}: {:.0} writes/s",
            run.spec.name,
            writes as f64 / secs
        );
        out.push(record("throughput", &format!("W={w}"), run, m, notes));
    }
    Ok(out)
}

async fn timed_post(run: &Running, path: &str, body: &Value) -> Result<(f64, Vec<u8>)> {
    let bytes = serde_json::to_vec(body)?;
    let t0 = Instant::now();
    let r = http::request(
        &run.url,
        "POST",
        path,
        Some(&run.service_token()),
        Some(&bytes),
        Duration::from_secs(300),
    )
    .await?;
    let el = t0.elapsed().as_secs_f64() * 1000.0;
    if r.status != 200 {
        bail!(
            "POST {path}: {} {}",
            r.status,
            r.text().chars().take(300).collect::<String>()
        );
    }
    Ok((el, r.body))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Bulk entities `from..to` for `collection`: owner `u{i % users}`, done on even i, shared every third.
fn bulk_body_in(collection: &str, from: u64, to: u64, users: u64) -> Value {
    let todos: Vec<Value> = (from..to)
        .map(|i| {
            json!({
                "id": format!("t{i}"),
                "text": format!("bulk todo {i}: lorem ipsum dolor sit amet, consectetur adipiscing"),
                "ownerId": format!("u{}", i % users),
                "shared": i % 3 == 0,
                "done": i % 2 == 0,
                "createdAt": i,
                "sentAt": 0,
                "seq": -1
            })
        })
        .collect();
    let mut m = serde_json::Map::new();
    m.insert(collection.to_string(), Value::Array(todos));
    Value::Object(m)
}

fn bulk_body(from: u64, to: u64, users: u64) -> Value {
    bulk_body_in("todos", from, to, users)
}

/// Insert `n` entities into `collection` with requests of `batch`; total ms.
async fn load_batched(run: &Running, collection: &str, n: u64, batch: u64) -> Result<f64> {
    let t0 = Instant::now();
    let mut from = 0;
    while from < n {
        let to = (from + batch).min(n);
        timed_post(
            run,
            "/bulk-insert?noReturn=true",
            &bulk_body_in(collection, from, to, 1000),
        )
        .await?;
        from = to;
    }
    Ok(t0.elapsed().as_secs_f64() * 1000.0)
}

/// Scenario 4: `/bulk-insert` of `n` entities in one request (bounded by
/// `single_timeout`; on timeout the server is restarted and the data loaded
/// in batches), the same in requests of 1,000, and `/fetch` over them.
pub async fn bulk(
    run: &mut Running,
    n: u64,
    reps: usize,
    single_timeout: Duration,
) -> Result<Record> {
    let users = 1000u64;
    let ub: Vec<Value> = (0..users)
        .map(|i| json!({"id": format!("u{i}"), "name": format!("user {i}")}))
        .collect();
    timed_post(run, "/bulk-insert?noReturn=true", &json!({ "users": ub })).await?;
    let body = bulk_body(0, n, users);
    let bytes = serde_json::to_vec(&body)?.len();
    let mut m = BTreeMap::new();
    let mut notes = Vec::new();
    m.insert("entities".into(), n as f64);
    m.insert("body_mib".into(), bytes as f64 / 1048576.0);
    match tokio::time::timeout(
        single_timeout,
        timed_post(run, "/bulk-insert?noReturn=true", &body),
    )
    .await
    {
        Ok(r) => {
            let (insert_ms, _) = r?;
            m.insert("bulk_insert_ms".into(), insert_ms);
            m.insert("bulk_insert_per_s".into(), n as f64 / insert_ms * 1000.0);
        }
        Err(_) => {
            m.insert("bulk_insert_timeout_s".into(), single_timeout.as_secs_f64());
            notes.push(format!(
                "one /bulk-insert of {n} did not finish within {:.0} s; server restarted, data loaded in requests of 1,000",
                single_timeout.as_secs_f64()
            ));
            run.restart(Duration::from_secs(120)).await?;
            let ms = load_batched(run, "todos", n, 1000).await?;
            m.insert("reload_ms".into(), ms);
        }
    }
    drop(body);
    let ms = load_batched(run, "items", n, 1000).await?;
    m.insert("bulk_batched_ms".into(), ms);
    m.insert("bulk_batched_per_s".into(), n as f64 / ms * 1000.0);
    let ids: Vec<String> = (0..10).map(|i| format!("u{}", i * 37)).collect();
    let queries: [(&str, Value); 4] = [
        (
            "filter",
            json!({"collectionName":"todos","where":[["done","=",false]]}),
        ),
        (
            "order_limit",
            json!({"collectionName":"todos","order":[["createdAt","DESC"]],"limit":50}),
        ),
        (
            "include",
            json!({"collectionName":"users","where":[["id","in",ids]],"include":{"todos":null}}),
        ),
        (
            "by_id",
            json!({"collectionName":"todos","where":[["id","=",format!("t{}", n / 2)]]}),
        ),
    ];
    for (name, q) in queries.iter() {
        let mut times = Vec::new();
        let mut rows = 0usize;
        let mut nested = 0usize;
        for _ in 0..reps {
            let (t, b) = timed_post(run, "/fetch", &json!({ "query": q })).await?;
            times.push(t);
            let v: Value = serde_json::from_slice(&b)?;
            let arr = v.as_array().cloned().unwrap_or_default();
            rows = arr.len();
            nested = arr
                .iter()
                .map(|e| e["todos"].as_array().map_or(0, |a| a.len()))
                .sum();
        }
        m.insert(format!("fetch_{name}_ms"), median(&mut times));
        m.insert(format!("fetch_{name}_rows"), rows as f64);
        if *name == "include" {
            m.insert("fetch_include_nested".into(), nested as f64);
        }
    }
    m.insert("db_mib".into(), run.db_bytes() as f64 / 1048576.0);
    if let Some(r) = run.rss() {
        m.insert("rss_mb".into(), r as f64 / 1048576.0);
    }
    Ok(record("bulk", &format!("N={n}"), run, m, notes))
}

/// Scenario 5a: cold start with `n` stored entities: time from process
/// start to healthcheck 200, and the first fetch after it.
pub async fn coldstart(run: &mut Running, n: u64) -> Result<Record> {
    let load_s = load_batched(run, "todos", n, 2000).await? / 1000.0;
    let warm = run.startup.as_secs_f64();
    let start = run.restart(Duration::from_secs(600)).await?;
    let (first_fetch, _) = timed_post(
        run,
        "/fetch",
        &json!({"query": {"collectionName":"todos","order":[["createdAt","DESC"]],"limit":50}}),
    )
    .await?;
    let mut m = BTreeMap::new();
    m.insert("entities".into(), n as f64);
    m.insert("load_s".into(), load_s);
    m.insert("empty_start_s".into(), warm);
    m.insert("cold_start_s".into(), start.as_secs_f64());
    m.insert("first_fetch_ms".into(), first_fetch);
    m.insert("db_mib".into(), run.db_bytes() as f64 / 1048576.0);
    if let Some(r) = run.rss() {
        m.insert("rss_after_start_mb".into(), r as f64 / 1048576.0);
    }
    Ok(record("coldstart", &format!("N={n}"), run, m, vec![]))
}

/// Scenario 5b: `n` clients reconnect at once with checkpoints after `w`
/// writes happened while they were away.
pub async fn reconnect(run: &Running, g: &Gen, n: usize, w: u64) -> Result<Record> {
    seed_todos(run, 200, n).await?;
    let (subs, first) =
        Subs::start(run, n, g.connect_concurrency, true, connect_timeout(n)).await?;
    let fresh_rows = subs.fan.initial_rows.load(Relaxed) as f64 / n.max(1) as f64;
    let outcomes = subs.stop().await;
    let states: Vec<Option<Value>> = outcomes
        .iter()
        .map(|o| {
            o.timestamp.as_ref().map(|ts| json!({"timestamp": ts, "entityIds": {"todos": o.ids.iter().collect::<Vec<_>>()}}))
        })
        .collect();
    // Writes while away: new shared todos at the top of every window.
    let todos: Vec<Value> = (0..w)
        .map(|i| {
            let mut t = proto::seed_todo(10_000 + i, "u0", true);
            t["id"] = json!(format!("away{i}"));
            t["createdAt"] = json!(proto::CREATED_BASE + i);
            t
        })
        .collect();
    http::post_ok(
        &run.url,
        "/bulk-insert?noReturn=true",
        &run.service_token(),
        &json!({ "todos": todos }),
        Duration::from_secs(60),
    )
    .await?;
    let (stop, rx) = watch::channel(false);
    let mut again = Subs {
        fan: Fanout::new(),
        stop,
        handles: Vec::new(),
        n: 0,
    };
    let cpu = CpuWindow::start(run.pid);
    let t = again
        .add(run, n, 0, false, Some(states), connect_timeout(n), rx)
        .await?;
    let c = cpu.stop();
    let mut m = BTreeMap::new();
    m.insert("clients".into(), n as f64);
    m.insert("first_connect_s".into(), first.as_secs_f64());
    m.insert("reconnect_s".into(), t.as_secs_f64());
    m.insert("rows_fresh_avg".into(), fresh_rows);
    m.insert(
        "rows_checkpoint_avg".into(),
        again.fan.initial_rows.load(Relaxed) as f64 / n.max(1) as f64,
    );
    m.insert(
        "reconnect_failed".into(),
        again.fan.failed.load(Relaxed) as f64,
    );
    put_hist(
        &mut m,
        "reconnect_client_",
        &again.fan.connect_hist.lock().unwrap(),
    );
    put_cpu(&mut m, &c, g.threads);
    let notes = again
        .fan
        .first_error
        .lock()
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    again.stop().await;
    Ok(record("reconnect", &format!("N={n}"), run, m, notes))
}
