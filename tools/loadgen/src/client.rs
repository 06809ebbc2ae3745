//! WebSocket clients: subscribers (READY → CONNECT_QUERY → ENTITY_DATA,
//! latency per delivered write), writers (CHANGES → CHANGES_ACK, one batch
//! in flight like the published client) and the generator's lag probe.

use crate::http::split_url;
use crate::jwt;
use crate::proto::{self, EntityData, Frame, QueryKind, now_us};
use anyhow::{Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A client socket.
pub type Ws = WebSocketStream<TcpStream>;

/// A latency histogram in microseconds (1 µs … 10 min, 3 significant digits).
pub fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

/// Open a sync socket the way the client does: `ws://host/?sync-schema=false&token=…`.
/// Small buffers: tungstenite's 128 KiB read buffer per socket would cost
/// the generator more than 1 GiB at 10,000 sockets.
pub async fn connect(base: &str, token: &str) -> Result<Ws> {
    let (hostport, prefix) = split_url(base)?;
    let url = format!("ws://{hostport}{prefix}/?sync-schema=false&token={token}");
    let tcp = TcpStream::connect(&hostport).await?;
    tcp.set_nodelay(true)?;
    let cfg = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(cfg)).await?;
    Ok(ws)
}

/// Next text frame (pings/pongs skipped); `None` when the socket closed.
pub async fn next_text(ws: &mut Ws) -> Result<Option<tokio_tungstenite::tungstenite::Utf8Bytes>> {
    loop {
        match ws.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(t))) => return Ok(Some(t)),
            Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Ok(_)) => continue,
        }
    }
}

/// Wait for a frame of type `ty`, within `timeout`.
pub async fn expect(ws: &mut Ws, ty: &str, timeout: Duration) -> Result<String> {
    tokio::time::timeout(timeout, async {
        loop {
            let Some(t) = next_text(ws).await? else {
                bail!("socket closed while waiting for {ty}")
            };
            let f: Frame = serde_json::from_str(t.as_str())?;
            if f.ty == ty {
                return Ok(t.as_str().to_string());
            }
            if f.ty == "CLOSE" || f.ty == "ERROR" {
                bail!(
                    "got {} while waiting for {ty}: {}",
                    f.ty,
                    t.as_str().chars().take(300).collect::<String>()
                );
            }
        }
    })
    .await
    .map_err(|_| anyhow!("no {ty} within {timeout:?}"))?
}

/// What all subscribers of one run share.
pub struct Fanout {
    /// Writes with `lo <= seq < hi` are measured.
    pub lo: AtomicU64,
    /// See `lo`.
    pub hi: AtomicU64,
    shards: Vec<Mutex<Histogram<u64>>>,
    /// Measured deliveries (write, subscriber).
    pub delivered: AtomicU64,
    /// Entities a subscriber must not have received (permission or filter breach).
    pub leaks: AtomicU64,
    /// A measured write delivered twice to the same subscriber.
    pub dups: AtomicU64,
    /// Subscribers whose query is fulfilled.
    pub ready: AtomicUsize,
    /// Subscribers that could not connect or subscribe.
    pub failed: AtomicUsize,
    /// Subscribers whose socket closed unexpectedly.
    pub dropped: AtomicUsize,
    /// PONGs received.
    pub pongs: AtomicUsize,
    /// Rows in the first ENTITY_DATA, summed.
    pub initial_rows: AtomicU64,
    /// Sets received in ENTITY_DATA after the first (all, measured or not).
    pub later_sets: AtomicU64,
    /// Time from the start of a subscriber to its fulfilled query.
    pub connect_hist: Mutex<Histogram<u64>>,
    /// Signalled on every ready/failed.
    pub notify: Notify,
    /// First error seen, for the report.
    pub first_error: Mutex<Option<String>>,
    /// (subscriber, seq) of every write received, measured or not, when
    /// tracing (see [`Fanout::traced`]): counting deliveries from it does not
    /// depend on when `lo`/`hi` were set.
    pub trace: Option<Mutex<Vec<(usize, u64)>>>,
}

const SHARDS: usize = 64;

impl Fanout {
    /// A fresh run; nothing is measured until `lo`/`hi` are set.
    pub fn new() -> Arc<Self> {
        Arc::new(Fanout {
            lo: AtomicU64::new(u64::MAX),
            hi: AtomicU64::new(u64::MAX),
            shards: (0..SHARDS).map(|_| Mutex::new(hist())).collect(),
            delivered: AtomicU64::new(0),
            leaks: AtomicU64::new(0),
            dups: AtomicU64::new(0),
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            pongs: AtomicUsize::new(0),
            initial_rows: AtomicU64::new(0),
            later_sets: AtomicU64::new(0),
            connect_hist: Mutex::new(hist()),
            notify: Notify::new(),
            first_error: Mutex::new(None),
            trace: None,
        })
    }

    /// Like [`Fanout::new`], also recording which subscriber received which
    /// measured write, so lost deliveries can be named.
    pub fn traced() -> Arc<Self> {
        let mut f = Arc::into_inner(Self::new()).expect("fresh");
        f.trace = Some(Mutex::new(Vec::new()));
        Arc::new(f)
    }

    /// Take the latency histogram (merged) and reset it and the counters.
    pub fn take(&self) -> (Histogram<u64>, u64) {
        let mut all = hist();
        for s in &self.shards {
            let mut h = s.lock().unwrap();
            all.add(&*h).ok();
            h.reset();
        }
        (all, self.delivered.swap(0, Relaxed))
    }

    fn error(&self, e: String) {
        let mut g = self.first_error.lock().unwrap();
        if g.is_none() {
            *g = Some(e);
        }
    }

    /// Wait until `n` subscribers are ready or failed, or `timeout` passes.
    pub async fn wait_ready(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if self.ready.load(Relaxed) + self.failed.load(Relaxed) >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }
}

/// Options of one subscriber.
pub struct SubOpts {
    /// Subscriber index: user `u{ix}`, query kind by parity.
    pub ix: usize,
    /// Server URL.
    pub base: Arc<str>,
    /// JWT secret.
    pub secret: Arc<str>,
    /// Keep the ids in the synced window and the last timestamp (checkpoints).
    pub track: bool,
    /// A checkpoint `state` for `CONNECT_QUERY`.
    pub state: Option<Value>,
    /// Held until the query is fulfilled (bounds concurrent handshakes).
    pub permit: Option<OwnedSemaphorePermit>,
}

/// What a subscriber hands back when it stops.
#[derive(Default)]
pub struct SubOutcome {
    /// Last `ENTITY_DATA.timestamp`.
    pub timestamp: Option<Value>,
    /// Ids in the synced window (with `track`).
    pub ids: HashSet<String>,
    /// Sets in the first ENTITY_DATA.
    pub first_sets: usize,
}

struct Seen(Vec<u64>);
impl Seen {
    fn insert(&mut self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        if w >= self.0.len() {
            self.0.resize(w + 1 + w / 2, 0);
        }
        let fresh = self.0[w] & (1 << b) == 0;
        self.0[w] |= 1 << b;
        fresh
    }
}

/// One subscriber: connects, subscribes, then records the latency of every
/// measured write it receives until `stop` turns true.
pub async fn subscriber(
    opts: SubOpts,
    fan: Arc<Fanout>,
    mut stop: watch::Receiver<bool>,
) -> SubOutcome {
    let t0 = now_us();
    let kind = QueryKind::of(opts.ix);
    let me = proto::user_of_subscriber(opts.ix);
    let token = jwt::user_token(&me, &opts.secret);
    let mut out = SubOutcome::default();
    let mut opts = opts;
    let mut permit = opts.permit.take();
    let setup = async {
        let mut last = None;
        for attempt in 0..3u64 {
            match connect(&opts.base, &token).await {
                Ok(mut ws) => {
                    expect(&mut ws, "READY", Duration::from_secs(60)).await?;
                    ws.send(Message::text(proto::connect_query_frame(
                        kind,
                        opts.ix as u64,
                        opts.state.clone(),
                    )))
                    .await?;
                    return Ok(ws);
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
            }
        }
        Err(last.unwrap())
    };
    let mut ws = match setup.await {
        Ok(ws) => ws,
        Err(e) => {
            fan.error(format!("subscriber {}: {e}", opts.ix));
            fan.failed.fetch_add(1, Relaxed);
            fan.notify.notify_waiters();
            return out;
        }
    };
    let mut seen = Seen(Vec::new());
    let mut fulfilled = false;
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(45),
        Duration::from_secs(45),
    );
    let fulfil_deadline = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(fulfil_deadline);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = &mut fulfil_deadline, if !fulfilled => {
                fan.error(format!("subscriber {}: query not fulfilled within 120 s", opts.ix));
                fan.failed.fetch_add(1, Relaxed);
                fan.notify.notify_waiters();
                return out;
            }
            _ = ping.tick() => { let _ = ws.send(Message::text(proto::ping_frame())).await; }
            m = next_text(&mut ws) => {
                let t = match m {
                    Ok(Some(t)) => t,
                    other => {
                        if !*stop.borrow() {
                            fan.error(format!("subscriber {}: socket ended: {:?}", opts.ix, other.err()));
                            if fulfilled { fan.dropped.fetch_add(1, Relaxed); } else { fan.failed.fetch_add(1, Relaxed); fan.notify.notify_waiters(); }
                        }
                        return out;
                    }
                };
                let Ok(f) = serde_json::from_str::<Frame>(t.as_str()) else { continue };
                match f.ty.as_ref() {
                    "ENTITY_DATA" => {
                        let Some(p) = f.payload else { continue };
                        let Ok(d) = serde_json::from_str::<EntityData>(p.get()) else {
                            fan.error(format!("unparsable ENTITY_DATA: {}", &p.get()[..p.get().len().min(200)]));
                            continue
                        };
                        let n = on_entity_data(&d, &opts, kind, &me, &fan, &mut seen, &mut out);
                        if !fulfilled && d.for_queries.iter().any(|q| q == kind.query_id()) {
                            fulfilled = true;
                            out.first_sets = n;
                            fan.initial_rows.fetch_add(n as u64, Relaxed);
                            fan.connect_hist.lock().unwrap().saturating_record(now_us().saturating_sub(t0).max(1));
                            fan.ready.fetch_add(1, Relaxed);
                            fan.notify.notify_waiters();
                            permit.take();
                            let _ = ws.send(Message::text(proto::ping_frame())).await;
                        } else {
                            fan.later_sets.fetch_add(n as u64, Relaxed);
                        }
                    }
                    "PONG" => { fan.pongs.fetch_add(1, Relaxed); }
                    "ERROR" | "CLOSE" => fan.error(format!("subscriber {}: {}", opts.ix, &t.as_str()[..t.len().min(300)])),
                    _ => {}
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    out
}

fn on_entity_data(
    d: &EntityData,
    opts: &SubOpts,
    kind: QueryKind,
    me: &str,
    fan: &Fanout,
    seen: &mut Seen,
    out: &mut SubOutcome,
) -> usize {
    let now = now_us();
    if opts.track {
        out.timestamp = d.timestamp.clone();
    }
    let Some(t) = d.changes.json.get(proto::COLLECTION) else {
        return 0;
    };
    let (lo, hi) = (fan.lo.load(Relaxed), fan.hi.load(Relaxed));
    let mut lats: Vec<u64> = Vec::new();
    let mut received: Vec<u64> = Vec::new();
    for (id, e) in &t.sets {
        if opts.track {
            out.ids.insert(id.to_string());
        }
        if e.shared == Some(false)
            && (kind == QueryKind::Shared || e.owner_id.as_deref() != Some(me))
        {
            fan.leaks.fetch_add(1, Relaxed);
        }
        if let (Some(seq), Some(sent)) = (e.seq, e.sent_at)
            && seq >= 0.0
        {
            let s = seq as u64;
            if fan.trace.is_some() {
                received.push(s);
            }
            if s >= lo && s < hi {
                if seen.insert(s) {
                    lats.push(now.saturating_sub(sent as u64).max(1));
                } else {
                    fan.dups.fetch_add(1, Relaxed);
                }
            }
        }
    }
    if opts.track {
        for id in &t.deletes {
            out.ids.remove(id.as_ref());
        }
    }
    if !lats.is_empty() {
        let mut h = fan.shards[opts.ix % SHARDS].lock().unwrap();
        for l in &lats {
            h.saturating_record(*l);
        }
        fan.delivered.fetch_add(lats.len() as u64, Relaxed);
    }
    if let Some(t) = &fan.trace
        && !received.is_empty()
    {
        t.lock()
            .unwrap()
            .extend(received.iter().map(|s| (opts.ix, *s)));
    }
    t.sets.len()
}

/// A window of generator time in which acknowledgements are counted.
pub struct Window {
    /// start, µs ([`now_us`])
    pub start: AtomicU64,
    /// end, µs
    pub end: AtomicU64,
}

impl Window {
    /// Not open yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Window {
            start: AtomicU64::new(u64::MAX),
            end: AtomicU64::new(u64::MAX),
        })
    }
    fn contains(&self, t: u64) -> bool {
        t >= self.start.load(Relaxed) && t < self.end.load(Relaxed)
    }
}

/// How a writer paces itself.
#[derive(Clone, Copy)]
pub enum Pace {
    /// This many inserts per second, batched while a CHANGES is in flight.
    Rate(f64),
    /// One insert per CHANGES, the next as soon as the ack arrives.
    PingPong,
}

/// A writer's result.
pub struct WriterOut {
    /// (seq, shared) of every write generated.
    pub log: Vec<(u64, bool)>,
    /// CHANGES_ACKs inside the window.
    pub acks_in_window: u64,
    /// Inserts acknowledged inside the window.
    pub writes_in_window: u64,
    /// Send → ack latency inside the window, µs.
    pub ack_hist: Histogram<u64>,
    /// ERROR frames for CHANGES.
    pub errors: u64,
    /// First error.
    pub first_error: Option<String>,
    /// Whether it ever got READY.
    pub connected: bool,
}

/// One writer: user `user_of_writer(k)`; a tenth of `private_tenths` of its
/// writes are private (`shared: false`), the rest shared.
#[allow(clippy::too_many_arguments)]
pub async fn writer(
    k: usize,
    base: Arc<str>,
    secret: Arc<str>,
    pace: Pace,
    private_tenths: u64,
    seq: Arc<AtomicU64>,
    window: Arc<Window>,
    mut stop: watch::Receiver<bool>,
) -> WriterOut {
    let mut out = WriterOut {
        log: Vec::new(),
        acks_in_window: 0,
        writes_in_window: 0,
        ack_hist: hist(),
        errors: 0,
        first_error: None,
        connected: false,
    };
    let user = proto::user_of_writer(k);
    let token = jwt::user_token(&user, &secret);
    let mut ws = match async {
        let mut ws = connect(&base, &token).await?;
        expect(&mut ws, "READY", Duration::from_secs(60)).await?;
        anyhow::Ok(ws)
    }
    .await
    {
        Ok(ws) => ws,
        Err(e) => {
            out.first_error = Some(format!("writer {k}: {e}"));
            return out;
        }
    };
    out.connected = true;
    let mut pending: Vec<String> = Vec::new();
    let mut inflight: Option<(u64, usize)> = None; // (sent at, entities)
    let gen_one = |out: &mut WriterOut, pending: &mut Vec<String>| {
        let s = seq.fetch_add(1, Relaxed);
        let shared = s % 10 >= private_tenths;
        pending.push(proto::entity_entry(s, &user, shared, now_us()));
        out.log.push((s, shared));
    };
    const BATCH_MAX: usize = 500;
    let mut ticker = match pace {
        Pace::Rate(r) => {
            let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / r.max(0.001)));
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            Some(i)
        }
        Pace::PingPong => None,
    };
    if matches!(pace, Pace::PingPong) {
        gen_one(&mut out, &mut pending);
    }
    let mut stopping = false;
    let mut stop_deadline = None;
    loop {
        if inflight.is_none() && !pending.is_empty() {
            let n = pending.len().min(BATCH_MAX);
            let frame = proto::changes_frame(&pending[..n]);
            pending.drain(..n);
            inflight = Some((now_us(), n));
            if let Err(e) = ws.send(Message::text(frame)).await {
                out.first_error
                    .get_or_insert(format!("writer {k}: send: {e}"));
                break;
            }
        }
        if stopping && inflight.is_none() && pending.is_empty() {
            break;
        }
        tokio::select! {
            _ = stop.changed(), if !stopping => {
                stopping = true;
                stop_deadline = Some(tokio::time::Instant::now() + Duration::from_secs(10));
            }
            _ = async { tokio::time::sleep_until(stop_deadline.unwrap()).await }, if stop_deadline.is_some() => break,
            _ = async { ticker.as_mut().unwrap().tick().await }, if ticker.is_some() && !stopping => {
                gen_one(&mut out, &mut pending);
            }
            m = next_text(&mut ws) => {
                let t = match m {
                    Ok(Some(t)) => t,
                    other => { out.first_error.get_or_insert(format!("writer {k}: socket ended: {:?}", other.err())); break; }
                };
                let Ok(f) = serde_json::from_str::<Frame>(t.as_str()) else { continue };
                match f.ty.as_ref() {
                    "CHANGES_ACK" => {
                        let now = now_us();
                        if let Some((sent, n)) = inflight.take()
                            && window.contains(now) {
                                out.acks_in_window += 1;
                                out.writes_in_window += n as u64;
                                out.ack_hist.saturating_record(now.saturating_sub(sent).max(1));
                            }
                        if matches!(pace, Pace::PingPong) && !stopping {
                            gen_one(&mut out, &mut pending);
                        }
                    }
                    "ERROR" => {
                        out.errors += 1;
                        out.first_error.get_or_insert(format!("writer {k}: {}", &t.as_str()[..t.len().min(400)]));
                        if t.as_str().contains("\"messageType\":\"CHANGES\"") {
                            inflight = None;
                            if matches!(pace, Pace::PingPong) && !stopping {
                                gen_one(&mut out, &mut pending);
                            }
                        }
                    }
                    "CLOSE" => { out.first_error.get_or_insert(format!("writer {k}: {}", t.as_str())); break; }
                    _ => {}
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    out
}

/// Measures how late the generator's runtime wakes a 5 ms timer: a busy or
/// starved generator shows up here before it shows up as server latency.
pub async fn lag_probe(mut stop: watch::Receiver<bool>) -> Histogram<u64> {
    let mut h = hist();
    loop {
        let t = now_us();
        tokio::select! {
            _ = stop.changed() => return h,
            _ = tokio::time::sleep(Duration::from_millis(5)) => {
                h.saturating_record(now_us().saturating_sub(t + 5_000).max(1));
            }
        }
    }
}
