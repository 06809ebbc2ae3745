//! Subscriber sets, paced writers and one measured fan-out step: the
//! machinery the fan-out, ramp and reconnect scenarios share.

use super::*;

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
        let (mut s, stop_rx) = Subs::empty();
        let d = s.add(run, n, limit, track, None, timeout, stop_rx).await?;
        Ok((s, d))
    }

    /// A set with no subscriber yet, and the stop signal its subscribers
    /// are to watch.
    pub(super) fn empty() -> (Subs, watch::Receiver<bool>) {
        let (stop, stop_rx) = watch::channel(false);
        let s = Subs {
            fan: Fanout::new(),
            stop,
            handles: Vec::new(),
            n: 0,
        };
        (s, stop_rx)
    }

    /// Add `n` more subscribers (indices continue), optionally with checkpoints.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn add(
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
pub(super) struct Writers {
    seq: Arc<AtomicU64>,
    pub(super) window: Arc<Window>,
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<client::WriterOut>>,
}

impl Writers {
    pub(super) fn start(
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

    pub(super) async fn stop(self) -> Vec<client::WriterOut> {
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

pub(super) fn lag_probe() -> (watch::Sender<bool>, JoinHandle<Histogram<u64>>) {
    let (tx, rx) = watch::channel(false);
    (tx, tokio::spawn(client::lag_probe(rx)))
}

/// One measured step of writes into live subscribers.
pub(super) struct StepOut {
    pub(super) metrics: BTreeMap<String, f64>,
    pub(super) notes: Vec<String>,
    pub(super) p99_ms: f64,
    pub(super) delivered_ratio: f64,
    pub(super) achieved_ratio: f64,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn fan_step(
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

pub(super) fn sub_metrics(m: &mut BTreeMap<String, f64>, subs: &Subs, connect: Duration) {
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

pub(super) fn connect_timeout(n: usize) -> Duration {
    Duration::from_secs(30 + n as u64 / 40)
}
