//! Scenario 5b: clients reconnecting at once with checkpoints.

use super::*;

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
    post_todos(run, todos, Duration::from_secs(60)).await?;
    let (mut again, rx) = Subs::empty();
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
