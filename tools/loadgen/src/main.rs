//! `ferry-loadgen`: a load generator for Triplit-compatible servers. It
//! speaks the sync protocol as `@triplit/client` 1.0.50 does (READY,
//! CONNECT_QUERY, ENTITY_DATA, CHANGES/CHANGES_ACK, PING) over many sockets
//! on a multi-threaded runtime, measures write → delivery latency at every
//! subscriber, and reports its own CPU and scheduling lag next to the
//! server's. `suite` runs the scenarios against several targets and writes
//! a results file; `report` turns that into `docs/benchmarks.md` + charts.

mod chart;
mod client;
mod font;
mod http;
mod jwt;
mod multinode;
mod pgadmin;
mod png;
mod proc;
mod proto;
mod report;
mod results;
mod scenarios;
mod server;
mod suite;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ferry-loadgen",
    about = "Load generator for Triplit-compatible servers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run scenarios against one or more targets and write a results file.
    Suite(Box<SuiteArgs>),
    /// Write docs/benchmarks.md and its PNG charts from a results file.
    Report {
        /// results JSON written by `suite`
        #[arg(long)]
        results: PathBuf,
        /// markdown output
        #[arg(long, default_value = "docs/benchmarks.md")]
        md: PathBuf,
        /// directory for the PNG charts
        #[arg(long, default_value = "docs/benchmarks")]
        charts: PathBuf,
        /// chart directory as linked from the markdown
        #[arg(long, default_value = "benchmarks")]
        rel: String,
        /// a hand-written markdown file (findings) inserted after the introduction
        #[arg(long)]
        notes: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct SuiteArgs {
    /// `NAME=COMMAND` (started by the generator: `{port}` is replaced, `JWT_SECRET` and
    /// `LOCAL_DATABASE_URL` are set, like conformance/lib/server.mjs) or `NAME=http://HOST:PORT`
    /// (a running server: no RSS/CPU readings, not restarted). Repeat for several targets.
    #[arg(long = "target", required = true)]
    targets: Vec<String>,
    /// `NAME=SCENARIO,…`: run only these scenarios on target NAME (e.g. a second
    /// configuration of one server measured where it differs). Repeatable.
    #[arg(long = "target-only")]
    target_only: Vec<String>,
    /// Targets that are physical-limit servers (no HTTP API, not in ratios).
    #[arg(long, default_value = "echo")]
    physical: Vec<String>,
    /// `smoke` (seconds; correctness only), `quick` (< 5 min) or `full` (< 30 min).
    #[arg(long, default_value = "quick")]
    mode: String,
    /// Only these scenarios (fanout, ramp, connections, throughput, bulk, reconnect, coldstart, multinode).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Repeats per case (default: 1 quick, 3 full).
    #[arg(long)]
    repeats: Option<usize>,
    /// Fan-out subscriber counts (repeated).
    #[arg(long, value_delimiter = ',')]
    fanout_s: Option<Vec<usize>>,
    /// Fan-out subscriber counts run once.
    #[arg(long, value_delimiter = ',')]
    fanout_once: Option<Vec<usize>>,
    /// Fan-out total write rate (writes/s).
    #[arg(long)]
    rate: Option<f64>,
    /// Todos stored before the fan-out starts (default 200).
    #[arg(long)]
    fanout_seed: Option<u64>,
    /// Fan-out measured seconds.
    #[arg(long)]
    measure: Option<f64>,
    /// Connections at the end of the memory curve.
    #[arg(long)]
    conn_max: Option<usize>,
    /// Entities for the cold start (0 = skip).
    #[arg(long)]
    cold_n: Option<u64>,
    /// Stop starting cases after this many seconds.
    #[arg(long)]
    budget: Option<u64>,
    /// PostgreSQL admin URL for the multi-node scenarios (a fresh database is
    /// created and dropped per case; skipped with a note when unreachable).
    #[arg(long, default_value = suite::DEFAULT_POSTGRES, env = "BENCH_POSTGRES")]
    postgres: String,
    /// JWT secret given to started servers (and used to sign tokens).
    #[arg(long, default_value = "ferry-bench-secret", env = "BENCH_JWT_SECRET")]
    secret: String,
    /// Generator worker threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Concurrent handshakes while building subscriber sets.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// Results file.
    #[arg(long, default_value = "bench/results/latest.json")]
    out: PathBuf,
    /// Exit with an error when a case failed, a delivery was lost or leaked,
    /// a write was refused or targets disagree on fetched rows.
    #[arg(long)]
    check: bool,
    /// Extra `key=value` lines for the machine table (versions etc.).
    #[arg(long)]
    info: Vec<String>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Report {
            results,
            md,
            charts,
            rel,
            notes,
        } => {
            let res: results::Results = serde_json::from_slice(
                &std::fs::read(&results).with_context(|| format!("read {}", results.display()))?,
            )?;
            let notes = match notes {
                Some(p) => Some(
                    std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?,
                ),
                None => None,
            };
            report::Report::new(&res).write(&md, &charts, &rel, notes.as_deref())?;
            eprintln!("wrote {} and charts in {}", md.display(), charts.display());
            Ok(())
        }
        Cmd::Suite(a) => {
            let threads = a.threads.unwrap_or_else(proc::cores).max(1);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()?;
            rt.block_on(suite_main(*a, threads))
        }
    }
}

async fn suite_main(a: SuiteArgs, threads: usize) -> Result<()> {
    let mut targets: Vec<server::TargetSpec> = a
        .targets
        .iter()
        .map(|t| server::TargetSpec::parse(t, &a.physical))
        .collect::<Result<_>>()?;
    for o in &a.target_only {
        let (name, scenarios) = o
            .split_once('=')
            .ok_or_else(|| anyhow!("--target-only expects NAME=SCENARIO,…: {o}"))?;
        let t = targets
            .iter_mut()
            .find(|t| t.name == name)
            .ok_or_else(|| anyhow!("--target-only {name}: no such --target"))?;
        t.scenarios = scenarios.split(',').map(str::to_string).collect();
    }
    let mut plan = suite::Plan::preset(&a.mode);
    plan.only = a.only;
    plan.postgres = a.postgres;
    if let Some(r) = a.repeats {
        plan.repeats = r;
    }
    if let Some(s) = a.fanout_s {
        plan.fanout_s = s;
    }
    if let Some(s) = a.fanout_once {
        plan.fanout_once = s;
    }
    if let Some(r) = a.rate {
        plan.fanout_rate = r;
    }
    if let Some(n) = a.fanout_seed {
        plan.fanout_seed = n;
    }
    if let Some(m) = a.measure {
        plan.fanout_measure = Duration::from_secs_f64(m);
    }
    if let Some(c) = a.conn_max {
        plan.conn_max = c;
    }
    if let Some(n) = a.cold_n {
        plan.cold_n = (n > 0).then_some(n);
    }
    if let Some(b) = a.budget {
        plan.budget = Duration::from_secs(b);
    }
    let g = scenarios::Gen {
        threads,
        connect_concurrency: a.connect_concurrency,
    };
    let mut res = results::Results {
        started: proc::version_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        ..Default::default()
    };
    res.info.insert("cores".into(), proc::cores().to_string());
    res.info.insert("CPU".into(), proc::cpu_model());
    res.info.insert(
        "memory".into(),
        format!("{:.1} GiB", proc::mem_total() as f64 / (1u64 << 30) as f64),
    );
    res.info.insert("kernel".into(), proc::kernel());
    res.info.insert(
        "generator".into(),
        format!("ferry-loadgen, {threads} worker threads, in the same machine"),
    );
    res.info.insert(
        "load average at start".into(),
        format!("{:.2}", proc::loadavg1()),
    );
    for kv in &a.info {
        if let Some((k, v)) = kv.split_once('=') {
            res.info.insert(k.to_string(), v.to_string());
        }
    }
    if let Some(d) = a.out.parent() {
        std::fs::create_dir_all(d)?;
    }
    let res = suite::run(&targets, &plan, &g, &a.secret, &a.out, res).await?;
    eprintln!(
        "done in {:.0} s: {} records, {} failures; results in {}",
        res.duration_s,
        res.records.len(),
        res.failures.len(),
        a.out.display()
    );
    if a.check {
        let p = suite::problems(&res);
        for line in &p {
            eprintln!("CHECK FAILED: {line}");
        }
        anyhow::ensure!(p.is_empty(), "{} problems in the results", p.len());
        eprintln!("check passed: no failures, no lost or leaked deliveries, rows agree");
    }
    Ok(())
}
