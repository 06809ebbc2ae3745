//! The suite: every scenario against every target, in rotating order,
//! repeated, bounded in time; results written after every case.

use crate::multinode::{self, MultiPlan};
use crate::pgadmin::PgAdmin;
use crate::results::{Failure, Record, Results};
use crate::scenarios::{self, Gen};
use crate::server::{Running, TargetSpec};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to run and for how long.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `quick` or `full`
    pub mode: String,
    /// repeats of every case
    pub repeats: usize,
    /// scenarios to run (empty: all)
    pub only: Vec<String>,
    /// fan-out subscriber counts
    pub fanout_s: Vec<usize>,
    /// fan-out subscriber counts run once (not repeated)
    pub fanout_once: Vec<usize>,
    /// writers in the fan-out
    pub fanout_w: usize,
    /// todos stored before the fan-out starts
    pub fanout_seed: u64,
    /// total write rate in the fan-out (writes/s)
    pub fanout_rate: f64,
    /// fan-out warm-up
    pub fanout_warmup: Duration,
    /// fan-out measured window
    pub fanout_measure: Duration,
    /// longest wait for outstanding deliveries
    pub fanout_drain: Duration,
    /// subscribers in the ramp
    pub ramp_s: usize,
    /// writers in the ramp
    pub ramp_w: usize,
    /// ramp steps (writes/s)
    pub ramp_rates: Vec<f64>,
    /// measured time per ramp step
    pub ramp_step: Duration,
    /// clients in the connect storm
    pub conn_storm: usize,
    /// connections at the end of the memory curve
    pub conn_max: usize,
    /// writer counts for throughput
    pub tp_writers: Vec<usize>,
    /// measured time per throughput case
    pub tp_measure: Duration,
    /// entities in the bulk scenario
    pub bulk_n: u64,
    /// repetitions of each fetch
    pub bulk_reps: usize,
    /// longest wait for the single-request bulk insert
    pub bulk_timeout: Duration,
    /// entities for cold start (None: skipped)
    pub cold_n: Option<u64>,
    /// clients reconnecting with checkpoints (None: skipped)
    pub reconnect_n: Option<usize>,
    /// stop starting new cases after this long
    pub budget: Duration,
    /// the multi-node scenarios (Ferry on PostgreSQL)
    pub multi: MultiPlan,
    /// admin URL of the PostgreSQL server for the multi-node scenarios
    pub postgres: String,
}

/// The default `--postgres` admin URL.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

impl Plan {
    /// The preset for `smoke` (a correctness check in seconds, run by the test
    /// suite), `quick` (under 5 minutes) or `full` (under 30).
    pub fn preset(mode: &str) -> Plan {
        if mode == "smoke" {
            return Plan::smoke();
        }
        let quick = mode == "quick";
        Plan {
            mode: mode.to_string(),
            repeats: if quick { 1 } else { 3 },
            only: Vec::new(),
            fanout_s: vec![100, 1000],
            fanout_once: if quick { vec![] } else { vec![10_000] },
            fanout_w: 2,
            fanout_seed: 200,
            fanout_rate: 10.0,
            fanout_warmup: Duration::from_secs(1),
            fanout_measure: Duration::from_secs(if quick { 3 } else { 8 }),
            fanout_drain: Duration::from_secs(if quick { 4 } else { 10 }),
            ramp_s: 100,
            ramp_w: 10,
            ramp_rates: vec![
                2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0,
                12800.0,
            ],
            ramp_step: Duration::from_millis(if quick { 1500 } else { 3000 }),
            conn_storm: 1000,
            conn_max: if quick { 2000 } else { 10_000 },
            tp_writers: vec![1, 10, 100],
            tp_measure: Duration::from_secs(if quick { 3 } else { 5 }),
            bulk_n: 100_000,
            bulk_reps: if quick { 3 } else { 5 },
            bulk_timeout: Duration::from_secs(if quick { 20 } else { 60 }),
            cold_n: if quick { None } else { Some(1_000_000) },
            reconnect_n: Some(1000),
            budget: Duration::from_secs(if quick { 285 } else { 1560 }),
            multi: MultiPlan {
                subscribers: if quick { 100 } else { 300 },
                writers: 2,
                rate: 20.0,
                warmup: Duration::from_secs(1),
                measure: Duration::from_secs(if quick { 3 } else { 5 }),
                drain: Duration::from_secs(10),
                nodes: vec![1, 2, 3],
                tp_writers: 30,
            },
            postgres: DEFAULT_POSTGRES.into(),
        }
    }

    /// Every scenario at toy sizes: what the test suite runs to keep the
    /// generator and the server's answers honest (no timings are asserted).
    fn smoke() -> Plan {
        Plan {
            mode: "smoke".into(),
            repeats: 1,
            only: Vec::new(),
            fanout_s: vec![20],
            fanout_once: vec![],
            fanout_w: 2,
            fanout_seed: 20,
            fanout_rate: 10.0,
            fanout_warmup: Duration::from_millis(300),
            fanout_measure: Duration::from_secs(1),
            fanout_drain: Duration::from_secs(10),
            ramp_s: 10,
            ramp_w: 2,
            ramp_rates: vec![5.0, 10.0],
            ramp_step: Duration::from_millis(700),
            conn_storm: 50,
            conn_max: 100,
            tp_writers: vec![1, 4],
            tp_measure: Duration::from_millis(700),
            bulk_n: 2_000,
            bulk_reps: 1,
            bulk_timeout: Duration::from_secs(30),
            cold_n: Some(5_000),
            reconnect_n: Some(20),
            budget: Duration::from_secs(240),
            multi: MultiPlan {
                subscribers: 10,
                writers: 1,
                rate: 10.0,
                warmup: Duration::from_millis(300),
                measure: Duration::from_secs(1),
                drain: Duration::from_secs(10),
                nodes: vec![1, 2, 3],
                tp_writers: 3,
            },
            postgres: DEFAULT_POSTGRES.into(),
        }
    }

    fn wants(&self, s: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == s)
    }

    /// The parameters, for the report.
    pub fn describe(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let d = |x: Duration| format!("{} s", x.as_secs_f64());
        m.insert("repeats".into(), self.repeats.to_string());
        m.insert("fanout".into(), format!(
            "S = {:?} (+ {:?} once), {} todos stored before, {} writers, {} writes/s in total (90 % shared, 10 % private to one user), warm-up {}, measured {}, drain ≤ {}",
            self.fanout_s, self.fanout_once, self.fanout_seed, self.fanout_w, self.fanout_rate, d(self.fanout_warmup), d(self.fanout_measure), d(self.fanout_drain)));
        m.insert("ramp".into(), format!(
            "S = {}, up to {} writers (one per 10 writes/s), steps {:?} writes/s, {} each; pass = p99 ≤ 100 ms, ≥ 99.9 % delivered, ≥ 90 % of the rate reached",
            self.ramp_s, self.ramp_w, self.ramp_rates, d(self.ramp_step)));
        m.insert(
            "connections".into(),
            format!(
                "storm of {} clients at once, then +{} at a time up to {}",
                self.conn_storm, self.conn_storm, self.conn_max
            ),
        );
        m.insert(
            "throughput".into(),
            format!("writers {:?}, {} each", self.tp_writers, d(self.tp_measure)),
        );
        m.insert("bulk".into(), format!("{} todos in one request (bounded: {} s), {} items in requests of 1,000, each fetch {}×, median", self.bulk_n, self.bulk_timeout.as_secs(), self.bulk_n, self.bulk_reps));
        m.insert(
            "coldstart".into(),
            self.cold_n
                .map_or("skipped".into(), |n| format!("{n} todos, once")),
        );
        let mp = &self.multi;
        m.insert(
            "multinode".into(),
            format!(
                "Ferry on PostgreSQL ({}): delivery with {} subscribers on nodes B and C, {} writers on node A, {} writes/s in total, measured {}; throughput with {} ping-pong writers spread over {:?} nodes, {} each; a fresh database and fresh nodes per case",
                self.postgres, mp.subscribers, mp.writers, mp.rate, d(mp.measure), mp.tp_writers, mp.nodes, d(mp.measure)
            ),
        );
        m.insert(
            "reconnect".into(),
            self.reconnect_n.map_or("skipped".into(), |n| {
                format!("{n} clients, 10 writes while away")
            }),
        );
        m
    }
}

struct LoadSampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(f64, f64, f64)>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl LoadSampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s2, v2) = (stop.clone(), samples.clone());
        let handle = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut prev = crate::proc::machine_jiffies();
            while !s2.load(Relaxed) {
                for _ in 0..20 {
                    if s2.load(Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let now = crate::proc::machine_jiffies();
                let busy = match (prev, now) {
                    (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                        (b1 - b0) as f64 / (t1 - t0) as f64 * crate::proc::cores() as f64
                    }
                    _ => f64::NAN,
                };
                prev = now;
                v2.lock().unwrap().push((
                    t0.elapsed().as_secs_f64(),
                    crate::proc::loadavg1(),
                    busy,
                ));
            }
        });
        LoadSampler {
            stop,
            samples,
            handle: Some(handle),
        }
    }
    fn finish(mut self) -> Vec<(f64, f64, f64)> {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.samples.lock().unwrap().clone()
    }
}

/// Run the suite; the results file is rewritten after every case.
pub async fn run(
    targets: &[TargetSpec],
    plan: &Plan,
    g: &Gen,
    secret: &str,
    out: &PathBuf,
    mut res: Results,
) -> Result<Results> {
    let t0 = Instant::now();
    let sampler = LoadSampler::start();
    res.mode = plan.mode.clone();
    res.params = plan.describe();
    for t in targets {
        res.targets.insert(
            t.name.clone(),
            match &t.how {
                crate::server::How::Spawn(a) => a.join(" "),
                crate::server::How::Url(u) => u.clone(),
            },
        );
    }
    let ready = Duration::from_secs(60);
    type Job = (&'static str, String, bool, usize); // scenario, case, needs HTTP API, repeats
    let mut jobs: Vec<Job> = Vec::new();
    if plan.wants("fanout") {
        for &s in &plan.fanout_s {
            jobs.push(("fanout", format!("S={s}"), false, plan.repeats));
        }
        for &s in &plan.fanout_once {
            jobs.push(("fanout", format!("S={s}"), false, 1));
        }
    }
    if plan.wants("ramp") {
        jobs.push(("ramp", format!("S={}", plan.ramp_s), false, plan.repeats));
    }
    if plan.wants("connections") {
        jobs.push((
            "connections",
            format!("N={}", plan.conn_storm),
            false,
            plan.repeats,
        ));
    }
    if plan.wants("throughput") {
        jobs.push(("throughput", "W".into(), false, plan.repeats));
    }
    if plan.wants("bulk") {
        jobs.push(("bulk", format!("N={}", plan.bulk_n), true, plan.repeats));
    }
    if plan.wants("reconnect")
        && let Some(n) = plan.reconnect_n
    {
        jobs.push(("reconnect", format!("N={n}"), true, plan.repeats));
    }
    if plan.wants("coldstart")
        && let Some(n) = plan.cold_n
    {
        jobs.push(("coldstart", format!("N={n}"), true, 1));
    }
    // Several Ferry nodes on one PostgreSQL database (needs a reachable server).
    let mut pg = None;
    if plan.wants("multinode") {
        match PgAdmin::probe(&plan.postgres).await {
            Ok(p) => {
                pg = Some(p);
                let s = plan.multi.subscribers;
                jobs.push(("multinode-delivery", format!("S={s}"), true, plan.repeats));
                for &n in &plan.multi.nodes {
                    jobs.push(("multinode-throughput", format!("N={n}"), true, plan.repeats));
                }
            }
            Err(e) => {
                eprintln!("skipping the multi-node scenarios: {e:#}");
                res.skipped.push(format!(
                    "multinode: skipped, {e:#} (give --postgres ADMIN_URL)"
                ));
            }
        }
    }
    for (scenario, case, needs_http, repeats) in jobs {
        for rep in 0..repeats {
            for i in 0..targets.len() {
                let t = &targets[(i + rep) % targets.len()];
                if !t.scenarios.is_empty() && !t.scenarios.iter().any(|s| s == scenario) {
                    continue;
                }
                let multi = scenario.starts_with("multinode");
                if multi
                    && (t.name != "ferry"
                        || t.physical
                        || matches!(t.how, crate::server::How::Url(_)))
                {
                    if rep == 0 && scenario == "multinode-delivery" {
                        res.skipped.push(format!(
                            "multinode scenarios on {}: Ferry only (nodes started with `DATABASE_URL`; the reference has no PostgreSQL mode)",
                            t.name
                        ));
                    }
                    continue;
                }
                if t.physical && needs_http {
                    if rep == 0 {
                        res.skipped.push(format!(
                            "{scenario} {case} on {}: no HTTP API (physical-limit server)",
                            t.name
                        ));
                    }
                    continue;
                }
                if t0.elapsed() > plan.budget {
                    res.skipped.push(format!(
                        "{scenario} {case} on {} (repeat {}): time budget of {:?} used up",
                        t.name,
                        rep + 1,
                        plan.budget
                    ));
                    continue;
                }
                eprintln!(
                    "[{:>6.1}s] {scenario} {case} on {} (repeat {}/{repeats})",
                    t0.elapsed().as_secs_f64(),
                    t.name,
                    rep + 1
                );
                let limit = Duration::from_secs(if scenario == "coldstart" { 900 } else { 300 });
                let outcome = match (&pg, multi) {
                    (Some(pg), true) => {
                        tokio::time::timeout(
                            limit,
                            multinode::run_case(
                                pg,
                                t,
                                scenario,
                                &case,
                                &plan.multi,
                                g,
                                secret,
                                ready,
                            ),
                        )
                        .await
                    }
                    _ => {
                        tokio::time::timeout(limit, one(t, scenario, &case, plan, g, secret, ready))
                            .await
                    }
                };
                match outcome {
                    Ok(Ok(recs)) => {
                        for mut r in recs {
                            r.repeat = rep;
                            brief(&r);
                            res.records.push(r);
                        }
                    }
                    Ok(Err(e)) => {
                        eprintln!("    FAILED: {e:#}");
                        res.failures.push(Failure {
                            scenario: scenario.into(),
                            case: case.clone(),
                            target: t.name.clone(),
                            repeat: rep,
                            error: format!("{e:#}"),
                        });
                    }
                    Err(_) => {
                        eprintln!("    TIMED OUT after {limit:?}");
                        res.failures.push(Failure {
                            scenario: scenario.into(),
                            case: case.clone(),
                            target: t.name.clone(),
                            repeat: rep,
                            error: format!("timed out after {limit:?}"),
                        });
                    }
                }
                res.duration_s = t0.elapsed().as_secs_f64();
                std::fs::write(out, serde_json::to_string_pretty(&res)?)?;
            }
        }
    }
    res.load = sampler.finish();
    res.duration_s = t0.elapsed().as_secs_f64();
    std::fs::write(out, serde_json::to_string_pretty(&res)?)?;
    Ok(res)
}

/// What `--check` refuses: a case that failed, a fan-out or reconnect that
/// lost or leaked deliveries, or servers that disagree on fetched rows.
pub fn problems(res: &Results) -> Vec<String> {
    let mut out: Vec<String> = res
        .failures
        .iter()
        .map(|f| format!("{} {} on {}: {}", f.scenario, f.case, f.target, f.error))
        .collect();
    let mut rows: BTreeMap<String, (String, f64)> = BTreeMap::new();
    for r in &res.records {
        let m = |k: &str| r.metrics.get(k).copied();
        let at = format!("{} {} on {}", r.scenario, r.case, r.target);
        if let Some(l) = m("leaks")
            && l > 0.0
        {
            out.push(format!(
                "{at}: {l} entities reached a subscriber that must not see them"
            ));
        }
        if let Some(x) = m("rows_disagree")
            && x > 0.0
        {
            out.push(format!("{at}: the nodes answer /fetch with different rows"));
        }
        if (r.scenario == "fanout" || r.scenario == "multinode-delivery")
            && let Some(d) = m("delivered_ratio")
            && d < 1.0
        {
            out.push(format!(
                "{at}: only {:.2} % of the deliveries arrived",
                d * 100.0
            ));
        }
        if let Some(e) = m("write_errors")
            && e > 0.0
        {
            out.push(format!("{at}: {e} writes were refused"));
        }
        for (k, v) in &r.metrics {
            if k.starts_with("fetch_") && (k.ends_with("_rows") || k == "fetch_include_nested") {
                let key = format!("{} {} {k}", r.scenario, r.case);
                match rows.get(&key) {
                    Some((t, w)) if w != v => out.push(format!(
                        "{key}: {} answered {w}, {} answered {v}",
                        t, r.target
                    )),
                    Some(_) => {}
                    None => {
                        rows.insert(key, (r.target.clone(), *v));
                    }
                }
            }
        }
    }
    out
}

fn brief(r: &Record) {
    let keys = [
        "p50_ms",
        "p99_ms",
        "max_ms",
        "delivered_ratio",
        "max_rate",
        "kb_per_conn",
        "storm_s",
        "writes_per_s",
        "bulk_insert_ms",
        "fetch_filter_ms",
        "cold_start_s",
        "reconnect_s",
        "rows",
        "gen_cpu_cores",
        "server_cpu_cores",
        "other_cpu_cores",
    ];
    let parts: Vec<String> = keys
        .iter()
        .filter_map(|k| r.metrics.get(*k).map(|v| format!("{k}={v:.3}")))
        .collect();
    if r.scenario != "ramp-step" && r.scenario != "throughput" {
        eprintln!(
            "    {} {} {}: {}",
            r.scenario,
            r.case,
            r.target,
            parts.join(" ")
        );
    }
}

async fn one(
    t: &TargetSpec,
    scenario: &str,
    case: &str,
    plan: &Plan,
    g: &Gen,
    secret: &str,
    ready: Duration,
) -> Result<Vec<Record>> {
    let mut run = Running::start(t, secret, ready).await?;
    let r = async {
        run.push_schema().await?;
        let recs = match scenario {
            "fanout" => {
                let s: usize = case.trim_start_matches("S=").parse()?;
                vec![
                    scenarios::fanout(
                        &run,
                        g,
                        s,
                        plan.fanout_w,
                        plan.fanout_rate,
                        plan.fanout_warmup,
                        plan.fanout_measure,
                        plan.fanout_drain,
                        plan.fanout_seed,
                    )
                    .await?,
                ]
            }
            "ramp" => {
                scenarios::ramp(
                    &run,
                    g,
                    plan.ramp_s,
                    plan.ramp_w,
                    &plan.ramp_rates,
                    plan.ramp_step,
                    100.0,
                )
                .await?
            }
            "connections" => {
                scenarios::connections(&run, g, plan.conn_storm, plan.conn_max).await?
            }
            "throughput" => {
                scenarios::throughput(&run, g, &plan.tp_writers, plan.tp_measure).await?
            }
            "bulk" => vec![
                scenarios::bulk(&mut run, plan.bulk_n, plan.bulk_reps, plan.bulk_timeout).await?,
            ],
            "reconnect" => {
                vec![scenarios::reconnect(&run, g, plan.reconnect_n.unwrap_or(1000), 10).await?]
            }
            "coldstart" => {
                vec![scenarios::coldstart(&mut run, plan.cold_n.unwrap_or(1_000_000)).await?]
            }
            other => anyhow::bail!("unknown scenario {other}"),
        };
        anyhow::Ok(recs)
    }
    .await;
    let tail = if r.is_err() {
        run.log_tail()
    } else {
        String::new()
    };
    run.stop().await;
    r.map_err(|e| {
        if tail.is_empty() {
            e
        } else {
            e.context(format!("server output:\n{tail}"))
        }
    })
}
