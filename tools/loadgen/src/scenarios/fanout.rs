//! Scenario 1: write → delivery latency at S subscribers, and the ramp
//! to the highest sustained write rate.

use super::*;

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
