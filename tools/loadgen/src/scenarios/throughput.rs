//! Scenario 3: acknowledged writes per second from ping-pong writers.

use super::*;

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
