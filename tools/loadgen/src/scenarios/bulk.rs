//! Scenarios 4 and 5a: `/bulk-insert` and `/fetch` over a large
//! collection, and cold start with many stored entities.

use super::*;

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
    // Each query once, as an app's first use of it: a server that builds
    // indexes on first use (Ferry) answers these from a scan and builds
    // them in the background. One write then waits behind those builds
    // (they share the single writer), so the repeated fetches below
    // measure the steady state.
    for (name, q) in queries.iter() {
        let (t, _) = timed_post(run, "/fetch", &json!({ "query": q })).await?;
        m.insert(format!("fetch_{name}_first_ms"), t);
    }
    barrier_write(run).await?;
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

/// One small write, acknowledged after every write queued before it.
async fn barrier_write(run: &Running) -> Result<()> {
    let body = json!({"users": [{"id": "barrier", "name": "barrier"}]});
    timed_post(run, "/bulk-insert?noReturn=true", &body).await?;
    Ok(())
}

/// Scenario 5a: cold start with `n` stored entities: time from process
/// start to healthcheck 200, and the first fetch after it.
pub async fn coldstart(run: &mut Running, n: u64) -> Result<Record> {
    let load_s = load_batched(run, "todos", n, 2000).await? / 1000.0;
    let warm = run.startup.as_secs_f64();
    // The app has used its query before the restart (an index built on
    // first use is then stored); the barrier waits for that build.
    let query =
        json!({"query": {"collectionName":"todos","order":[["createdAt","DESC"]],"limit":50}});
    let (before_restart, _) = timed_post(run, "/fetch", &query).await?;
    barrier_write(run).await?;
    let start = run.restart(Duration::from_secs(600)).await?;
    let (first_fetch, _) = timed_post(run, "/fetch", &query).await?;
    let mut m = BTreeMap::new();
    m.insert("entities".into(), n as f64);
    m.insert("load_s".into(), load_s);
    m.insert("empty_start_s".into(), warm);
    m.insert("cold_start_s".into(), start.as_secs_f64());
    m.insert("first_fetch_ms".into(), first_fetch);
    m.insert("first_use_fetch_ms".into(), before_restart);
    m.insert("db_mib".into(), run.db_bytes() as f64 / 1048576.0);
    if let Some(r) = run.rss() {
        m.insert("rss_after_start_mb".into(), r as f64 / 1048576.0);
    }
    Ok(record("coldstart", &format!("N={n}"), run, m, vec![]))
}
