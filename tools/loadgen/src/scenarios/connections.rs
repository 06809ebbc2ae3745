//! Scenario 2: memory per idle authenticated connection and the
//! connect storm.

use super::*;

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
    // The average over every connection held at the largest count (the
    // issue's figure at 10,000).
    if let (Some(a), Some(b)) = (rss0, points.last().unwrap().1)
        && n > storm
    {
        m.insert("rss_max_mb".into(), b as f64 / 1048576.0);
        m.insert(
            "kb_per_conn_at_max".into(),
            (b as f64 - a as f64) / n as f64 / 1024.0,
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
