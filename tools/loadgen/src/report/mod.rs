//! `docs/benchmarks.md` and its charts from a results file. The sections
//! of the single-node scenarios are written here; `multinode.rs` writes the
//! scale-out section and `charts.rs` draws the PNG charts.

mod charts;
mod multinode;

use crate::results::Results;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Median and spread of one metric over repeats.
#[derive(Clone, Copy, Debug)]
pub struct Agg {
    /// median
    pub med: f64,
    /// minimum
    pub min: f64,
    /// maximum
    pub max: f64,
    /// number of values
    pub n: usize,
}

type Key = (String, String, String); // scenario, case, target

fn aggregate(res: &Results) -> BTreeMap<Key, BTreeMap<String, Agg>> {
    let mut vals: BTreeMap<Key, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for r in &res.records {
        let e = vals
            .entry((r.scenario.clone(), r.case.clone(), r.target.clone()))
            .or_default();
        for (k, v) in &r.metrics {
            if v.is_finite() {
                e.entry(k.clone()).or_default().push(*v);
            }
        }
    }
    vals.into_iter()
        .map(|(k, m)| {
            let m = m
                .into_iter()
                .map(|(name, mut v)| {
                    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                    let n = v.len();
                    let med = if n % 2 == 1 {
                        v[n / 2]
                    } else {
                        (v[n / 2 - 1] + v[n / 2]) / 2.0
                    };
                    (
                        name,
                        Agg {
                            med,
                            min: v[0],
                            max: v[n - 1],
                            n,
                        },
                    )
                })
                .collect();
            (k, m)
        })
        .collect()
}

fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100_000.0 {
        let s = format!("{:.0}", v);
        // thousands separators
        let (neg, digits) = if let Some(d) = s.strip_prefix('-') {
            ("-", d.to_string())
        } else {
            ("", s)
        };
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        format!("{neg}{out}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a == 0.0 {
        "0".into()
    } else {
        format!("{v:.3}")
    }
}

fn cell(a: Option<&Agg>) -> String {
    match a {
        None => "–".into(),
        Some(a) if a.n > 1 && (a.max - a.min).abs() > 1e-12 => {
            format!("{} ({}–{})", num(a.med), num(a.min), num(a.max))
        }
        Some(a) => num(a.med),
    }
}

fn pct_cell(a: Option<&Agg>) -> String {
    match a {
        None => "–".into(),
        Some(a) if a.n > 1 && (a.max - a.min).abs() > 1e-9 => format!(
            "{:.1} % ({:.1}–{:.1})",
            a.med * 100.0,
            a.min * 100.0,
            a.max * 100.0
        ),
        Some(a) => format!("{:.1} %", a.med * 100.0),
    }
}

/// Builds the document.
pub struct Report<'a> {
    res: &'a Results,
    agg: BTreeMap<Key, BTreeMap<String, Agg>>,
    targets: Vec<String>,
    /// numerator and denominator of ratios
    num: String,
    den: String,
}

impl<'a> Report<'a> {
    /// Aggregate `res`.
    pub fn new(res: &'a Results) -> Self {
        let mut targets: Vec<String> = res.targets.keys().cloned().collect();
        let order = |t: &String| match t.as_str() {
            "ferry" => 0,
            "reference" => 1,
            "echo" => 3,
            _ => 2,
        };
        targets.sort_by_key(order);
        Report {
            res,
            agg: aggregate(res),
            targets,
            num: "ferry".into(),
            den: "reference".into(),
        }
    }

    fn get(&self, scenario: &str, case: &str, target: &str, metric: &str) -> Option<&Agg> {
        self.agg
            .get(&(scenario.to_string(), case.to_string(), target.to_string()))
            .and_then(|m| m.get(metric))
    }

    fn cases(&self, scenario: &str) -> Vec<String> {
        let mut c: Vec<String> = self
            .agg
            .keys()
            .filter(|k| k.0 == scenario)
            .map(|k| k.1.clone())
            .collect();
        c.dedup();
        c.sort_by_key(|s| {
            s.split('=')
                .nth(1)
                .and_then(|n| n.parse::<f64>().ok())
                .map(|f| f as i64)
                .unwrap_or(0)
        });
        c.dedup();
        c
    }

    fn ratio(&self, scenario: &str, case: &str, metric: &str) -> String {
        match (
            self.get(scenario, case, &self.num, metric),
            self.get(scenario, case, &self.den, metric),
        ) {
            (Some(a), Some(b)) if b.med != 0.0 => format!("{:.2}×", a.med / b.med),
            _ => "–".into(),
        }
    }

    fn table(&self, out: &mut String, scenario: &str, cols: &[(&str, &str)], case_label: &str) {
        let cases = self.cases(scenario);
        if cases.is_empty() {
            let _ = writeln!(out, "_Not measured in this run._\n");
            return;
        }
        let _ = write!(out, "| {case_label} | server |");
        for (_, h) in cols {
            let _ = write!(out, " {h} |");
        }
        let _ = write!(out, "\n|---|---|");
        for _ in cols {
            let _ = write!(out, "---:|");
        }
        out.push('\n');
        for case in &cases {
            let cv = case.split('=').nth(1).unwrap_or(case);
            for t in &self.targets {
                if !self
                    .agg
                    .contains_key(&(scenario.into(), case.clone(), t.clone()))
                {
                    continue;
                }
                let _ = write!(out, "| {cv} | {t} |");
                for (m, _) in cols {
                    let a = self.get(scenario, case, t, m);
                    let s = if m.ends_with("ratio") || m.ends_with("share") {
                        pct_cell(a)
                    } else {
                        cell(a)
                    };
                    let _ = write!(out, " {s} |");
                }
                out.push('\n');
            }
            if self
                .agg
                .contains_key(&(scenario.into(), case.clone(), self.num.clone()))
                && self
                    .agg
                    .contains_key(&(scenario.into(), case.clone(), self.den.clone()))
            {
                let _ = write!(out, "| {cv} | **{} ÷ {}** |", self.num, self.den);
                for (m, _) in cols {
                    let skip = ["gen_", "lag_", "other_", "delivered_", "connections"]
                        .iter()
                        .any(|p| m.starts_with(p));
                    let _ = write!(
                        out,
                        " {} |",
                        if skip {
                            String::new()
                        } else {
                            self.ratio(scenario, case, m)
                        }
                    );
                }
                out.push('\n');
            }
        }
        out.push('\n');
    }

    fn notes(&self, out: &mut String, scenario: &str) {
        let mut seen = std::collections::BTreeSet::new();
        for r in self.res.records.iter().filter(|r| r.scenario == scenario) {
            for n in &r.notes {
                let short: String = n.chars().take(240).collect();
                if seen.insert((r.target.clone(), short.clone())) && seen.len() <= 8 {
                    let _ = writeln!(
                        out,
                        "- {} {}: `{}`",
                        r.target,
                        r.case,
                        short.replace('`', "'")
                    );
                }
            }
        }
        if !seen.is_empty() {
            out.push('\n');
        }
    }

    /// Write the markdown to `md` and the charts into `charts` (linked from `md` as `rel/…`).
    pub fn write(
        &self,
        md: &Path,
        charts: &Path,
        rel: &str,
        notes: Option<&str>,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(charts)?;
        let mut o = String::new();
        let r = self.res;
        let quick = r.mode == "quick";
        let _ = writeln!(
            o,
            "# Benchmarks: Ferry and the reference `@triplit/server`\n"
        );
        let _ = writeln!(
            o,
            "Generated by `bench/run{}` on {} ({} mode, {:.0} s). {}\n",
            if quick { " --quick" } else { "" },
            r.started,
            r.mode,
            r.duration_s,
            if quick {
                "**Quick mode: one run per case and short windows — indicative only; `bench/run` takes medians over 3 runs.**"
            } else {
                "Medians over the repeats with the min–max spread in parentheses."
            }
        );
        let _ = writeln!(
            o,
            "Every case starts a fresh server (empty SQLite database in a temp directory; §6 a fresh PostgreSQL \
database) for each target, pushes the same schema, seeds the same data and drives the same client load from `ferry-loadgen` (`tools/loadgen`), a \
multi-threaded Rust client speaking the sync protocol as `@triplit/client` 1.0.50 does. Targets run in \
rotating order per repeat. Ratios are **{} ÷ {}** medians (for latency, memory and time lower is better; for \
rates higher is better). `echo` is a no-logic WebSocket server (`loadgen-echo`: READY, acks, one ENTITY_DATA \
per write broadcast to every subscriber; no storage, permissions or queries): the physical limit of this \
machine and this generator for the same traffic.\n",
            self.num, self.den
        );
        if let Some(n) = notes {
            let _ = writeln!(o, "{}\n", n.trim_end());
        }
        // Machine
        let _ = writeln!(o, "## Machine and versions\n");
        let _ = writeln!(o, "| | |\n|---|---|");
        for (k, v) in &r.info {
            let _ = writeln!(o, "| {k} | {v} |");
        }
        for (k, v) in &r.targets {
            let _ = writeln!(o, "| target `{k}` | `{v}` |");
        }
        if !r.load.is_empty() {
            let mut l: Vec<f64> = r.load.iter().map(|x| x.1).collect();
            l.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let mut b: Vec<f64> = r
                .load
                .iter()
                .map(|x| x.2)
                .filter(|x| x.is_finite())
                .collect();
            b.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let _ = writeln!(
                o,
                "| load average (1 min) during the run | min {:.2}, median {:.2}, max {:.2} ({} samples) |",
                l[0],
                l[l.len() / 2],
                l[l.len() - 1],
                l.len()
            );
            if !b.is_empty() {
                let _ = writeln!(
                    o,
                    "| busy CPU, whole machine, during the run | median {:.2} of {} cores, max {:.2} |",
                    b[b.len() / 2],
                    r.info.get("cores").map(String::as_str).unwrap_or("?"),
                    b[b.len() - 1]
                );
            }
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "The generator and the server share the machine's cores, so every figure includes the generator's own \
cost. Each case records the generator's CPU (`gen CPU`, in cores), how late its runtime wakes a 5 ms timer \
(`lag p99`), the server's CPU from `/proc/<pid>/stat`, and the CPU used by **other processes** on the machine \
in the same window (`others`: machine busy − generator − server). A case where the generator used more than \
85 % of its threads or its lag p99 passed 20 ms is marked saturated: there the number is a limit of the \
generator or the machine, not of the server.\n"
        );
        let _ = writeln!(o, "Parameters:\n");
        for (k, v) in &r.params {
            let _ = writeln!(o, "- **{k}**: {v}");
        }
        let _ = writeln!(o);

        // 1. fan-out
        let _ = writeln!(o, "## 1. Fan-out latency\n");
        let _ = writeln!(
            o,
            "S subscribers, each with its own user token (HS256, signed with the server's `JWT_SECRET`): even ones \
subscribe to the shared list `todos where shared = true order by createdAt desc limit 50`, odd ones to \
`todos order by createdAt desc limit 50`, which the read permission (`ownerId = $role.userId or shared = true`) \
narrows to the user's own and the shared todos. W writers insert at a fixed total rate over `CHANGES` (one \
batch in flight, as the client does); 90 % of writes are shared (delivered to all S), 10 % private to the \
writer's user (delivered to exactly one per-user subscriber, and checked not to reach anyone else). Each \
written entity carries its send time; every subscriber records `arrival − send` for each new entity in \
`ENTITY_DATA`. `delivered` is measured deliveries ÷ expected ones; `µs/delivery` is server CPU per delivered \
(write, subscriber).\n"
        );
        self.table(
            &mut o,
            "fanout",
            &[
                ("p50_ms", "p50 ms"),
                ("p99_ms", "p99 ms"),
                ("max_ms", "max ms"),
                ("delivered_ratio", "delivered"),
                ("server_cpu_cores", "server CPU"),
                ("server_us_per_delivery", "µs/delivery"),
                ("connect_all_s", "subscribe all, s"),
                ("gen_cpu_cores", "gen CPU"),
                ("lag_p99_ms", "lag p99 ms"),
                ("other_cpu_cores", "others"),
            ],
            "S",
        );
        let sat: Vec<String> = self
            .res
            .records
            .iter()
            .filter(|r| r.scenario == "fanout" && r.metrics.get("gen_saturated") == Some(&1.0))
            .map(|r| format!("{} {} (repeat {})", r.target, r.case, r.repeat + 1))
            .collect();
        if !sat.is_empty() {
            let _ = writeln!(o, "Generator saturated in: {}.\n", sat.join(", "));
        }
        let leaks: f64 = self
            .res
            .records
            .iter()
            .filter(|r| r.scenario == "fanout")
            .filter_map(|r| r.metrics.get("leaks"))
            .sum();
        let _ = writeln!(
            o,
            "Entities delivered to a subscriber that must not see them (permission or filter breach), all fan-out runs: {leaks}.\n"
        );
        self.notes(&mut o, "fanout");
        if self.chart_latency(charts)? {
            let _ = writeln!(
                o,
                "![write → delivery latency vs subscribers]({rel}/latency-vs-subscribers.png)\n"
            );
        }

        let _ = writeln!(
            o,
            "### Highest sustained write rate (S = 100, p99 ≤ 100 ms)\n"
        );
        let _ = writeln!(
            o,
            "A short ramp: the write rate rises step by step (W writers, at most one per 10 writes/s); a step passes when p99 ≤ 100 ms, ≥ 99.9 % of the \
deliveries arrived and ≥ 90 % of the target rate was reached (writers batch while a `CHANGES` is in flight, \
as the client does, and the send time is stamped when the write is generated, so queueing in the writer \
counts). The figure is the last passing step; 0 means the first step already failed.\n"
        );
        self.table(&mut o, "ramp", &[("max_rate", "max writes/s")], "S");
        for rr in self.res.records.iter().filter(|r| r.scenario == "ramp") {
            for n in &rr.notes {
                let _ = writeln!(o, "- {} (repeat {}): {n}", rr.target, rr.repeat + 1);
            }
        }
        let _ = writeln!(o);
        if self.chart_ramp(charts)? {
            let _ = writeln!(o, "![p99 vs write rate]({rel}/ramp.png)\n");
        }

        // 2. connections
        let _ = writeln!(o, "## 2. Connections\n");
        let _ = writeln!(
            o,
            "Idle authenticated connections, each with one live query (half shared list, half per-user), and no \
writes. `KB/conn` is (RSS after N − RSS before) ÷ N for the first storm; `KB/conn at max` the same over every \
connection at the largest count (the parameters below); `marginal` is the slope from N to the largest count. RSS \
is the server process's `VmRSS`. The storm is N clients connecting at the same moment; its \
time is until every one has READY and its first `ENTITY_DATA`.\n"
        );
        let mut cols: Vec<(String, String)> = vec![
            ("kb_per_conn".into(), "KB/conn".into()),
            ("kb_per_conn_at_max".into(), "KB/conn at max".into()),
            ("kb_per_conn_marginal".into(), "marginal KB/conn".into()),
            ("storm_s".into(), "storm s".into()),
            ("storm_client_p99_ms".into(), "storm client p99 ms".into()),
            ("rss0_mb".into(), "RSS before MB".into()),
            ("rss_storm_mb".into(), "RSS after storm MB".into()),
            ("rss_max_mb".into(), "RSS at max MB".into()),
            ("server_cpu_cores".into(), "server CPU (storm)".into()),
            ("gen_cpu_cores".into(), "gen CPU (storm)".into()),
        ];
        cols.push(("connections".into(), "connections held".into()));
        let cref: Vec<(&str, &str)> = cols.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        self.table(&mut o, "connections", &cref, "N");
        self.notes(&mut o, "connections");
        if self.chart_memory(charts)? {
            let _ = writeln!(
                o,
                "![server RSS vs connections]({rel}/memory-vs-connections.png)\n"
            );
        }

        // 3. throughput
        let _ = writeln!(o, "## 3. Write throughput\n");
        let _ = writeln!(
            o,
            "W writers, each sending one insert per `CHANGES` and the next one as soon as its `CHANGES_ACK` \
arrives; no subscribers. Acknowledged writes per second. `ferry` acknowledges a write once it is fsynced \
(`synchronous=FULL`: it survives power loss); `ferry-process`, when present, is the same binary started with \
`--durability process` (`synchronous=NORMAL`, the reference's own setting: a write survives a crash of the \
server but the last ones may be lost on power loss).\n"
        );
        self.table(
            &mut o,
            "throughput",
            &[
                ("writes_per_s", "acked writes/s"),
                ("ack_p50_ms", "ack p50 ms"),
                ("ack_p99_ms", "ack p99 ms"),
                ("server_cpu_cores", "server CPU"),
                ("server_us_per_write", "server µs/write"),
                ("gen_cpu_cores", "gen CPU"),
                ("other_cpu_cores", "others"),
            ],
            "W",
        );
        self.notes(&mut o, "throughput");
        if self.chart_throughput(charts)? {
            let _ = writeln!(
                o,
                "![acknowledged writes per second]({rel}/throughput.png)\n"
            );
        }

        // 4. bulk
        let _ = writeln!(o, "## 4. Bulk insert and fetch\n");
        let _ = writeln!(
            o,
            "`POST /bulk-insert?noReturn=true` of 100,000 todos (16.7 MiB) in **one request** into an empty \
collection, after 1,000 users; service token. The request is bounded: when it has not finished in time the \
cell shows `> N s (timed out)`, the server is restarted and the todos are loaded in requests of 1,000. \
`100 × 1,000` is the same amount inserted as 100 requests of 1,000 (into a collection without relations or \
permissions). Then `POST /fetch` over the 100,000 todos, each the median of several calls, timed until the \
last byte of the answer: `filter` = `todos where done = false` (50,000 rows), `order+limit` = `todos order by \
createdAt desc limit 50`, `include` = 10 users with `include: {{todos}}` (a `many` relation over the 100,000 \
todos; 1,000 nested rows), `by id` = one todo. One HTTP connection per request. Each query is first run once \
(its first use, in the second table: Ferry builds the indexes a query wants after that first run), then one \
small write waits for any such build before the repeated calls.\n"
        );
        let mut bulk_cases = self.cases("bulk");
        bulk_cases.dedup();
        if !bulk_cases.is_empty() {
            let _ = writeln!(
                o,
                "| N | server | body MiB | one request ms | 100 × 1,000 ms | filter ms | order+limit ms | include ms | by id ms | DB MiB | RSS after MB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for case in &bulk_cases {
                let cv = case.split('=').nth(1).unwrap_or(case);
                let one_req = |t: &str| -> String {
                    match (
                        self.get("bulk", case, t, "bulk_insert_ms"),
                        self.get("bulk", case, t, "bulk_insert_timeout_s"),
                    ) {
                        (Some(a), None) => cell(Some(a)),
                        (None, Some(to)) => {
                            format!("> {} s (timed out)", num(to.med * 1000.0 / 1000.0))
                        }
                        (Some(a), Some(to)) => {
                            format!("{} / > {} s in some runs", cell(Some(a)), num(to.med))
                        }
                        (None, None) => "–".into(),
                    }
                };
                for t in &self.targets {
                    if !self
                        .agg
                        .contains_key(&("bulk".into(), case.clone(), t.clone()))
                    {
                        continue;
                    }
                    let g = |k: &str| cell(self.get("bulk", case, t, k));
                    let _ = writeln!(
                        o,
                        "| {cv} | {t} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        g("body_mib"),
                        one_req(t),
                        g("bulk_batched_ms"),
                        g("fetch_filter_ms"),
                        g("fetch_order_limit_ms"),
                        g("fetch_include_ms"),
                        g("fetch_by_id_ms"),
                        g("db_mib"),
                        g("rss_mb")
                    );
                }
                if self
                    .agg
                    .contains_key(&("bulk".into(), case.clone(), self.num.clone()))
                    && self
                        .agg
                        .contains_key(&("bulk".into(), case.clone(), self.den.clone()))
                {
                    let r = |k: &str| self.ratio("bulk", case, k);
                    let _ = writeln!(
                        o,
                        "| {cv} | **{} ÷ {}** | | {} | {} | {} | {} | {} | {} | {} | {} |",
                        self.num,
                        self.den,
                        r("bulk_insert_ms"),
                        r("bulk_batched_ms"),
                        r("fetch_filter_ms"),
                        r("fetch_order_limit_ms"),
                        r("fetch_include_ms"),
                        r("fetch_by_id_ms"),
                        r("db_mib"),
                        r("rss_mb")
                    );
                }
            }
            let _ = writeln!(o);
        } else {
            let _ = writeln!(o, "_Not measured in this run._\n");
        }
        if !bulk_cases.is_empty() {
            let _ = writeln!(
                o,
                "First use of each query, on the same data (before any index it wants exists):\n"
            );
            self.table(
                &mut o,
                "bulk",
                &[
                    ("fetch_filter_first_ms", "filter ms"),
                    ("fetch_order_limit_first_ms", "order+limit ms"),
                    ("fetch_include_first_ms", "include ms"),
                    ("fetch_by_id_first_ms", "by id ms"),
                ],
                "N",
            );
        }
        self.notes(&mut o, "bulk");
        let _ = writeln!(
            o,
            "Rows returned (must agree): {}\n",
            self.targets
                .iter()
                .filter_map(|t| {
                    let c = self.cases("bulk");
                    let case = c.first()?;
                    let i = |k: &str| {
                        self.get("bulk", case, t, k)
                            .map_or("–".to_string(), |a| format!("{:.0}", a.med))
                    };
                    Some(format!(
                        "{t}: filter {}, order+limit {}, include {} users / {} todos, by id {}",
                        i("fetch_filter_rows"),
                        i("fetch_order_limit_rows"),
                        i("fetch_include_rows"),
                        i("fetch_include_nested"),
                        i("fetch_by_id_rows")
                    ))
                })
                .filter(|s| !s.contains("–, order"))
                .collect::<Vec<_>>()
                .join("; ")
        );

        // 5. cold start, reconnect
        let _ = writeln!(o, "## 5. Cold start and reconnect\n");
        let _ = writeln!(
            o,
            "Cold start: 1,000,000 todos loaded with `/bulk-insert`s of 2,000, then SIGTERM and a new process on the same \
database; the time from spawn to the first `GET /healthcheck` 200, and the first `/fetch` after it \
(`order by createdAt desc limit 50`; the query was used once before the restart, timed as `first use`).\n"
        );
        self.table(
            &mut o,
            "coldstart",
            &[
                ("load_s", "load 1M s"),
                ("empty_start_s", "start, empty s"),
                ("cold_start_s", "cold start s"),
                ("first_use_fetch_ms", "first use ms"),
                ("first_fetch_ms", "first fetch ms"),
                ("db_mib", "DB MiB"),
                ("rss_after_start_mb", "RSS after start MB"),
            ],
            "N",
        );
        let _ = writeln!(
            o,
            "Reconnect: N clients subscribe (as in §2) and keep the ids and the last `ENTITY_DATA` timestamp, \
disconnect, 10 shared todos are written over HTTP, and all N reconnect at once with `CONNECT_QUERY.state` \
(the checkpoint). Rows per client in the first answer, fresh vs with the checkpoint, show whether the server \
skips what the client already has.\n"
        );
        self.table(
            &mut o,
            "reconnect",
            &[
                ("reconnect_s", "reconnect all s"),
                ("reconnect_client_p99_ms", "client p99 ms"),
                ("rows_fresh_avg", "rows/client fresh"),
                ("rows_checkpoint_avg", "rows/client checkpoint"),
                ("server_cpu_cores", "server CPU"),
            ],
            "N",
        );
        self.notes(&mut o, "reconnect");

        // 6. several nodes
        self.multinode_section(&mut o);

        if !r.failures.is_empty() || !r.skipped.is_empty() {
            let _ = writeln!(o, "## Not measured\n");
            for f in &r.failures {
                let e: String = f
                    .error
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(300)
                    .collect();
                let _ = writeln!(
                    o,
                    "- {} {} on {} (repeat {}): failed: {}",
                    f.scenario,
                    f.case,
                    f.target,
                    f.repeat + 1,
                    e
                );
            }
            for s in &r.skipped {
                let _ = writeln!(o, "- {s}");
            }
            let _ = writeln!(o);
        }
        let _ = writeln!(
            o,
            "## Reproducing\n\n```sh\nbench/run            # builds release binaries, runs everything (< 30 min), rewrites this file\n\
bench/run --quick    # one run per case, short windows (< 5 min)\n\
target/release/ferry-loadgen --help   # single scenarios against any Triplit-compatible URL\n```\n\n\
Raw results: `bench/results/latest-{}.json` (not committed).",
            r.mode
        );
        std::fs::write(md, o)?;
        Ok(())
    }
}
