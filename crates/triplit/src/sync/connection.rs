//! One client's sync session: handles its messages and computes what it
//! must receive after each change.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use ferry_core::Hlc;
use ferry_store::StoreExt;
use serde_json::{Map, Value, json};

use super::chunks::{Chunks, raw_chunk_data};
use super::closure::{Subscription, readable_by_id};
use super::maintained::{Applied, Maintained};
use super::protocol::{self, CloseReason, frame, parse_timestamp, timestamp_json};
use super::shared::{SharedResult, SharedResults};
use super::view::{ClosureEntity, HashedClosure, View, hash_closure};
use crate::db::{Commit, Transaction, TriplitDb};
use crate::session::Session;
use crate::superjson::{decode_changes, encode_changes};
use crate::{DbChanges, TriplitError, keys};

/// What the connection wants the transport to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// Send a text frame.
    Text(String),
    /// Send a `CLOSE` message, then close with `code` and `reason`.
    Close {
        /// The `CLOSE` message text.
        message: String,
        /// WebSocket close code.
        code: u16,
        /// Close frame reason (JSON `{type, retry}`).
        reason: String,
    },
}

#[derive(Debug)]
struct LiveQuery {
    subscription: Subscription,
    /// The query as the client sent it (re-prepared after a token refresh).
    params: Value,
    /// The result kept up to date from commits, for queries that allow it
    /// (`None`: re-run on the next flush).
    maintained: Option<Maintained>,
}

impl LiveQuery {
    fn new(subscription: Subscription, params: Value) -> Self {
        Self {
            subscription,
            params,
            maintained: None,
        }
    }

    /// Starts maintaining the result from `closure`, a run reflecting
    /// every commit up to `seq`.
    fn maintain(&mut self, closure: &HashedClosure, seq: u64) {
        self.maintained = self
            .subscription
            .prepared()
            .incremental()
            .map(|spec| Maintained::new(spec.clone(), closure, seq));
    }
}

/// A client's session.
pub struct SyncConnection {
    db: Arc<TriplitDb>,
    session: Session,
    client_id: String,
    queries: HashMap<String, LiveQuery>,
    view: View,
    chunks: Chunks,
    dirty: BTreeSet<String>,
    /// Waiting for `SCHEMA_RESPONSE` (the client sent an unknown hash).
    awaiting_schema: Option<u32>,
    /// Results shared with the other connections of this process.
    shared: Arc<SharedResults>,
    /// The highest change-feed position this connection was told about.
    known_seq: u64,
    /// The last `ENTITY_DATA` stamp sent.
    last_stamp: Hlc,
    /// The highest `CHANGES_ACK` stamp sent: the client stamps the entities
    /// it wrote with it and ignores data stamped at or below it.
    last_ack: Hlc,
    /// Commits since the last flush that touch a live query's collections.
    pending_commits: Vec<Arc<Commit>>,
    /// A read stamp taken for maintained results and the feed position
    /// every write stamped below it has at most: it may be sent once this
    /// connection has been told about the commits up to there.
    stamp_wait: Option<(Hlc, u64)>,
    /// The schema generation the live queries were prepared with.
    schema_generation: u64,
    /// The client schema hash this session was admitted with.
    admitted_hash: Option<u32>,
    /// Frames produced outside a reply (after a schema change), for
    /// [`SyncConnection::take_outbound`].
    pending: Vec<Outbound>,
}

/// A checkpoint sent with `CONNECT_QUERY`.
struct Checkpoint {
    timestamp: Hlc,
    entity_ids: Vec<(String, Vec<String>)>,
}

fn parse_checkpoint(state: Option<&Value>) -> Option<Checkpoint> {
    let state = state?.as_object()?;
    let timestamp = parse_timestamp(state.get("timestamp")?)?;
    let ids = state.get("entityIds")?.as_object()?;
    let entity_ids = ids
        .iter()
        .map(|(c, v)| {
            let list = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            (c.clone(), list)
        })
        .collect();
    Some(Checkpoint {
        timestamp,
        entity_ids,
    })
}

fn bad_payload(message_type: &str, context: String) -> String {
    protocol::error(
        Some(message_type),
        &TriplitError::malformed_payload("The message payload is invalid.", Some(context)),
        None,
    )
}

impl SyncConnection {
    /// A session for `session` identified by `client_id`.
    pub fn new(
        db: Arc<TriplitDb>,
        session: Session,
        client_id: String,
        shared: Arc<SharedResults>,
    ) -> Self {
        Self {
            session,
            client_id,
            queries: HashMap::new(),
            view: View::default(),
            chunks: Chunks::default(),
            dirty: BTreeSet::new(),
            awaiting_schema: None,
            shared,
            known_seq: 0,
            last_stamp: Hlc::ZERO,
            last_ack: Hlc::ZERO,
            pending_commits: Vec::new(),
            stamp_wait: None,
            schema_generation: db.schema_generation(),
            admitted_hash: None,
            pending: Vec::new(),
            db,
        }
    }

    /// The first frames of a session. Without a `schema` parameter (the
    /// 1.0.50 client never sends one) that is `READY`; with one, the schema
    /// handshake: `READY` when the hash is known to be compatible,
    /// `CLOSE SCHEMA_MISMATCH` on a schemaless server, otherwise
    /// `SCHEMA_REQUEST` and a decision once `SCHEMA_RESPONSE` arrives.
    pub fn start(&mut self, schema_param: Option<&str>) -> Vec<Outbound> {
        let Some(param) = schema_param else {
            return vec![Outbound::Text(self.ready())];
        };
        let Some(schema) = self.db.schema() else {
            return vec![schema_mismatch()];
        };
        let hash = param.trim().parse::<i64>().ok().map(|h| h as u32);
        match hash {
            Some(h) if self.db.schema_hash_known(h, &schema) => {
                self.admitted_hash = Some(h);
                vec![Outbound::Text(self.ready())]
            }
            _ => {
                self.awaiting_schema = Some(hash.unwrap_or(0));
                vec![Outbound::Text(frame("SCHEMA_REQUEST", json!({})))]
            }
        }
    }

    fn schema_response(&mut self, payload: &Value) -> Vec<Outbound> {
        let Some(hash) = self.awaiting_schema.take() else {
            return Vec::new();
        };
        let client = match payload.get("schema") {
            None | Some(Value::Null) => return vec![Outbound::Text(self.ready())],
            Some(v) => v,
        };
        let Some(server) = self.db.schema() else {
            return vec![schema_mismatch()];
        };
        let compatible = crate::schema::Schema::from_json(client)
            .map(|c| crate::schema::issues::is_backwards_compatible(&c, &server))
            .unwrap_or(false);
        if compatible {
            self.db.remember_schema_hash(hash);
            self.admitted_hash = Some(hash);
            vec![Outbound::Text(self.ready())]
        } else {
            vec![schema_mismatch()]
        }
    }

    /// The `READY` message.
    pub fn ready(&self) -> String {
        protocol::ready(&self.client_id)
    }

    /// The client id handed out in `READY`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The session (the verified token).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Replaces the session after a token refresh with the same roles.
    /// Live queries are prepared again with the new token's claims (so
    /// `$token.*` in permissions and queries are the new token's) and
    /// refreshed on the next flush.
    pub fn replace_session(&mut self, session: Session) {
        self.session = session;
        let schema = self.db.schema();
        for q in self.queries.values_mut() {
            if let Ok(sub) = Subscription::prepare(&q.params, schema.as_deref(), &self.session) {
                self.dirty.extend(sub.collections().iter().cloned());
                q.subscription = sub;
                q.maintained = None;
            }
        }
    }

    /// Number of live queries.
    pub fn live_queries(&self) -> usize {
        self.queries.len()
    }

    /// Handles one text frame from the client. A schema change noticed
    /// now is dealt with first (see [`SyncConnection::take_outbound`]).
    pub async fn handle_text(&mut self, text: &str) -> Vec<Outbound> {
        self.check_schema();
        let mut out = std::mem::take(&mut self.pending);
        if out.iter().any(|o| matches!(o, Outbound::Close { .. })) {
            return out;
        }
        out.extend(self.handle_frame(text).await);
        out
    }

    async fn handle_frame(&mut self, text: &str) -> Vec<Outbound> {
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            #[serde(rename = "type")]
            kind: Option<Value>,
            #[serde(borrow)]
            payload: Option<&'a serde_json::value::RawValue>,
        }
        let envelope: Envelope = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(_) => {
                let e =
                    TriplitError::malformed_payload("Messages payloads must be valid JSON.", None);
                return vec![Outbound::Text(protocol::error(
                    None,
                    &e,
                    Some(json!({"message": text})),
                ))];
            }
        };
        let kind = match &envelope.kind {
            Some(Value::String(s)) => s.clone(),
            other => {
                let shown = other
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "undefined".into());
                let e = TriplitError::new(
                    "UnrecognizedMessageTypeError",
                    400,
                    format!("Unrecognized message type: {shown}."),
                    None,
                );
                return vec![Outbound::Text(protocol::error(Some(&shown), &e, None))];
            }
        };
        if self.awaiting_schema.is_some() && kind != "SCHEMA_RESPONSE" {
            let e = TriplitError::internal("Server not ready for messages");
            return vec![Outbound::Text(protocol::error(Some(&kind), &e, None))];
        }
        if kind == "CHUNK" {
            return self.handle_chunk(text).await;
        }
        let payload: Value = match envelope.payload.map(|p| serde_json::from_str(p.get())) {
            None => Value::Null,
            Some(Ok(v)) => v,
            Some(Err(_)) => {
                let e =
                    TriplitError::malformed_payload("Messages payloads must be valid JSON.", None);
                return vec![Outbound::Text(protocol::error(
                    None,
                    &e,
                    Some(json!({"message": text})),
                ))];
            }
        };
        match kind.as_str() {
            "CONNECT_QUERY" => self.connect_query(&payload).await,
            "DISCONNECT_QUERY" => match payload.get("id").and_then(Value::as_str) {
                Some(id) => {
                    self.queries.remove(id);
                    self.view.forget(id);
                    Vec::new()
                }
                None => vec![Outbound::Text(bad_payload(
                    "DISCONNECT_QUERY",
                    "id must be a string".into(),
                ))],
            },
            "CHANGES" => vec![Outbound::Text(self.changes(&payload).await)],
            "PING" => {
                let mut p = Map::new();
                if let Some(t) = payload.get("clientTimestamp") {
                    p.insert("clientTimestamp".into(), t.clone());
                }
                p.insert("serverTimestamp".into(), json!(self.db.time().now_ms()));
                vec![Outbound::Text(frame("PONG", Value::Object(p)))]
            }
            "SCHEMA_RESPONSE" => self.schema_response(&payload),
            other => {
                let e = TriplitError::new(
                    "UnrecognizedMessageTypeError",
                    400,
                    format!("Unrecognized message type: {other}."),
                    None,
                );
                vec![Outbound::Text(protocol::error(Some(other), &e, None))]
            }
        }
    }

    async fn handle_chunk(&mut self, text: &str) -> Vec<Outbound> {
        let result = raw_chunk_data(text).and_then(|(meta, data)| {
            let id = match &meta["id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let index = meta["index"].as_u64().ok_or_else(|| {
                TriplitError::malformed_payload(
                    "Invalid CHUNK message.",
                    Some("index must be a number".into()),
                )
            })? as usize;
            let total = meta["total"].as_u64().ok_or_else(|| {
                TriplitError::malformed_payload(
                    "Invalid CHUNK message.",
                    Some("total must be a number".into()),
                )
            })? as usize;
            self.chunks.add(&id, index, total, &data)
        });
        match result {
            Ok(None) => Vec::new(),
            Ok(Some(whole)) => Box::pin(self.handle_frame(&whole)).await,
            Err(e) => vec![Outbound::Text(protocol::error(Some("CHUNK"), &e, None))],
        }
    }

    async fn changes(&mut self, payload: &Value) -> String {
        let decoded = match decode_changes(payload.get("changes").unwrap_or(&Value::Null)) {
            Ok(c) => c,
            Err(e) => return protocol::error(Some("CHANGES"), &e, Some(json!({"failures": []}))),
        };
        let first_collection = decoded.collections.first().map(|(c, _)| c.clone());
        match self
            .db
            .commit(&self.session, Transaction::from_changes(decoded))
            .await
        {
            Ok(stamp) => {
                self.last_ack = self.last_ack.max(stamp);
                frame("CHANGES_ACK", json!({"timestamp": timestamp_json(stamp)}))
            }
            Err(e) => {
                let tx_id = timestamp_json(self.db.last_timestamp()).to_string();
                let failures =
                    json!([{"txId": tx_id, "collection": first_collection, "error": e.to_json()}]);
                protocol::error(Some("CHANGES"), &e, Some(json!({"failures": failures})))
            }
        }
    }

    async fn connect_query(&mut self, payload: &Value) -> Vec<Outbound> {
        let Some(id) = payload
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return vec![Outbound::Text(bad_payload(
                "CONNECT_QUERY",
                "id must be a string".into(),
            ))];
        };
        let params = payload.get("params").cloned().unwrap_or(Value::Null);
        let schema = self.db.schema();
        let subscription = match Subscription::prepare(&params, schema.as_deref(), &self.session) {
            Ok(s) => s,
            Err(e) => return vec![Outbound::Text(protocol::query_sync_error(&id, &e))],
        };
        let checkpoint = parse_checkpoint(payload.get("state"));
        let sub = subscription.clone();
        let ts_keys: Vec<(String, Vec<String>)> = checkpoint
            .as_ref()
            .map(|c| c.entity_ids.clone())
            .unwrap_or_default();
        let stamp = match self.db.read_timestamp().await {
            Ok(t) => t,
            Err(e) => return vec![Outbound::Text(protocol::query_sync_error(&id, &e))],
        };
        let schema_for_read = schema.clone();
        let session_for_read = self.session.clone();
        let seq_before = *self.db.store().watch().borrow();
        let read = self
            .db
            .store()
            .read(move |txn| {
                let closure = sub.closure(txn)?;
                let mut stamps: HashMap<(String, String), Hlc> = HashMap::new();
                let mut outside: Vec<crate::db::Touched> = Vec::new();
                for (c, ids) in &ts_keys {
                    let mut left = Vec::new();
                    for i in ids {
                        let in_closure = closure.iter().any(|(cc, ii, _)| cc == c && ii == i);
                        if in_closure {
                            if let Some(t) = txn
                                .get(&keys::timestamp(c, i))?
                                .and_then(|b| Hlc::from_bytes(&b))
                            {
                                stamps.insert((c.clone(), i.clone()), t);
                            }
                        } else {
                            left.push(i.clone());
                        }
                    }
                    if left.is_empty() {
                        continue;
                    }
                    // Entities that left the result: resend the readable
                    // ones fresh, tell the client to drop the rest.
                    let found = readable_by_id(
                        txn,
                        schema_for_read.as_deref(),
                        &session_for_read,
                        c,
                        &left,
                    )
                    .unwrap_or_default();
                    for i in left {
                        let current = found
                            .iter()
                            .find(|(_, fid, _)| *fid == i)
                            .map(|(_, _, e)| e.clone());
                        outside.push((c.clone(), i, current));
                    }
                }
                Ok::<_, TriplitError>((closure, stamps, outside))
            })
            .await;
        let (closure, stamps, outside) = match read {
            Ok(r) => r,
            Err(e) => return vec![Outbound::Text(protocol::query_sync_error(&id, &e))],
        };
        if let Some(cp) = &checkpoint {
            for (c, i, entity) in &closure {
                if stamps
                    .get(&(c.clone(), i.clone()))
                    .is_some_and(|t| *t < cp.timestamp)
                {
                    self.view.assume_sent((c.clone(), i.clone()), entity);
                }
            }
        }
        let root = subscription.collection().to_string();
        let hashed = Arc::new(hash_closure(closure));
        let mut live = LiveQuery::new(subscription, params.clone());
        live.maintain(&hashed, seq_before.max(self.known_seq));
        self.queries.insert(id.clone(), live);
        let mut change = self.view.update_hashed(vec![(id.clone(), hashed)]);
        for (c, i, current) in outside {
            match current {
                Some(e) => change.changes.collection_mut(&c).sets.push((i, e)),
                None => change.changes.collection_mut(&c).deletes.push(i),
            }
        }
        let mut changes = DbChanges::default();
        changes.collection_mut(&root);
        for (c, cc) in change.changes.collections {
            let slot = changes.collection_mut(&c);
            slot.sets.extend(cc.sets);
            slot.deletes.extend(cc.deletes);
        }
        self.last_stamp = self.last_stamp.max(stamp);
        vec![Outbound::Text(entity_data(&changes, stamp, &[id]))]
    }

    /// Frames this session must send that are no reply to a client
    /// message: after a schema change, a `QuerySyncError` for each live
    /// query that the new schema rejects, or the close that sends a client
    /// admitted by its schema hash back through the handshake. A `Close`
    /// ends the session.
    pub fn take_outbound(&mut self) -> Vec<Outbound> {
        std::mem::take(&mut self.pending)
    }

    /// Moves the session to the current schema if it changed since the
    /// live queries were prepared; returns whether it did.
    ///
    /// Upstream keeps running every open subscription with the permissions
    /// and roles it was prepared with until the client reconnects. Here no
    /// query outlives its schema: each is prepared again with the new
    /// schema (roles and permissions included) and refreshed on the next
    /// flush, which sends the rows the session may now read and evicts
    /// those it may no longer read. A query the new schema rejects gets
    /// the `QuerySyncError` a new `CONNECT_QUERY` would get (the client
    /// then drops it). A session admitted by a client schema hash that the
    /// new schema does not know any more (a backwards-incompatible change)
    /// is closed with a retryable close, so the client reconnects and the
    /// handshake compares its schema with the new one.
    pub fn check_schema(&mut self) -> bool {
        let generation = self.db.schema_generation();
        if generation == self.schema_generation {
            return false;
        }
        self.schema_generation = generation;
        let schema = self.db.schema();
        if let Some(hash) = self.admitted_hash {
            let known = schema
                .as_deref()
                .is_some_and(|s| self.db.schema_hash_known(hash, s));
            if !known {
                self.pending.push(close_retry(
                    CloseReason::SchemaChanged,
                    Some("The server schema changed; reconnect to check the client schema again."),
                ));
                return false;
            }
        }
        let mut failed = Vec::new();
        for (id, q) in self.queries.iter_mut() {
            match Subscription::prepare(&q.params, schema.as_deref(), &self.session) {
                Ok(sub) => {
                    self.dirty
                        .extend(q.subscription.collections().iter().cloned());
                    self.dirty.extend(sub.collections().iter().cloned());
                    q.subscription = sub;
                    q.maintained = None;
                }
                Err(e) => failed.push((id.clone(), e)),
            }
        }
        for (id, e) in failed {
            self.queries.remove(&id);
            self.view.forget(&id);
            self.pending
                .push(Outbound::Text(protocol::query_sync_error(&id, &e)));
        }
        !self.dirty.is_empty()
    }

    /// Whether the session needs to hear of commits: it has live queries,
    /// or was admitted by a client schema hash that a schema change may
    /// invalidate. One that does not may skip fan-out, and must call
    /// [`SyncConnection::mark_all_dirty`] once it follows commits again.
    pub fn follows_commits(&self) -> bool {
        !self.queries.is_empty() || self.admitted_hash.is_some()
    }

    /// Records a commit; returns whether any live query may be affected.
    pub fn note_commit(&mut self, commit: &Arc<Commit>) -> bool {
        if let Some(seq) = commit.seq {
            self.known_seq = self.known_seq.max(seq);
        }
        let mut relevant = self.check_schema();
        for (c, _, _) in &commit.entities {
            if self
                .queries
                .values()
                .any(|q| q.subscription.collections().contains(c))
            {
                self.dirty.insert(c.clone());
                relevant = true;
            }
        }
        if relevant {
            self.pending_commits.push(commit.clone());
        }
        relevant
    }

    /// Marks every query as needing a refresh (after missed commits).
    pub fn mark_all_dirty(&mut self) {
        self.check_schema();
        self.known_seq = self.known_seq.max(*self.db.store().watch().borrow());
        self.pending_commits.clear();
        for q in self.queries.values_mut() {
            q.maintained = None;
            self.dirty
                .extend(q.subscription.collections().iter().cloned());
        }
    }

    /// Whether a flush is waiting for commits this connection has not
    /// been told about yet (call [`SyncConnection::flush`] again soon).
    pub fn flush_waiting(&self) -> bool {
        self.stamp_wait.is_some() && !self.dirty.is_empty()
    }

    /// A read stamp for maintained results: every write stamped below it
    /// must be among the commits applied, so it waits (returns `None`)
    /// until the commits up to the feed position it was taken at arrived.
    async fn maintained_stamp(&mut self) -> Result<Option<Hlc>, TriplitError> {
        let (stamp, target) = match self.stamp_wait.take() {
            Some((s, t)) if s > self.last_stamp.max(self.last_ack) => (s, t),
            _ => {
                let s = self.db.read_timestamp().await?;
                (s, *self.db.store().watch().borrow())
            }
        };
        if self.known_seq < target {
            self.stamp_wait = Some((stamp, target));
            return Ok(None);
        }
        Ok(Some(stamp))
    }

    /// Brings the queries affected by the recorded commits up to date —
    /// maintained results from the commits themselves, the others by
    /// running them again — and returns the `ENTITY_DATA` to send, if
    /// anything changed for this client.
    pub async fn flush(&mut self) -> Result<Option<String>, TriplitError> {
        self.check_schema();
        if self.dirty.is_empty() {
            return Ok(None);
        }
        let affected: Vec<String> = self
            .queries
            .iter()
            .filter(|(_, q)| {
                q.subscription
                    .collections()
                    .iter()
                    .any(|c| self.dirty.contains(c))
            })
            .map(|(id, _)| id.clone())
            .collect();
        if affected.is_empty() {
            self.dirty.clear();
            self.pending_commits.clear();
            return Ok(None);
        }
        let mut stamp: Option<Hlc> = None;
        if affected
            .iter()
            .any(|id| self.queries[id].maintained.is_some())
        {
            match self.maintained_stamp().await? {
                Some(s) => stamp = Some(s),
                None => return Ok(None),
            }
        }
        self.dirty.clear();
        let pending = std::mem::take(&mut self.pending_commits);
        let mut deltas = Vec::new();
        let mut rerun: Vec<(String, Subscription)> = Vec::new();
        for id in affected {
            let q = self.queries.get_mut(&id).expect("affected query is live");
            let applied = q.maintained.as_mut().map(|m| m.apply(&pending));
            match applied {
                Some(Ok(Applied::Changed(d))) => {
                    if !d.is_empty() {
                        deltas.push((id, q.subscription.collection().to_string(), d));
                    }
                }
                Some(Ok(Applied::Refill)) | Some(Err(_)) | None => {
                    q.maintained = None;
                    rerun.push((id, q.subscription.clone()));
                }
            }
        }
        // Reuse what another connection computed for the same query when
        // it covers every commit this one knows of.
        let mut closures: Vec<(String, Arc<HashedClosure>, u64)> = Vec::with_capacity(rerun.len());
        let mut misses = Vec::new();
        for (id, sub) in rerun {
            match self.shared.get(
                sub.prepared(),
                self.known_seq,
                self.last_stamp.max(self.last_ack),
            ) {
                Some(hit) => {
                    stamp = Some(stamp.map_or(hit.stamp, |s| s.min(hit.stamp)));
                    closures.push((id, hit.closure, hit.seq));
                }
                None => misses.push((id, sub)),
            }
        }
        if !misses.is_empty() {
            let seq = *self.db.store().watch().borrow();
            let fresh = self.db.read_timestamp().await?;
            let computed: Vec<(String, Subscription, Vec<ClosureEntity>)> = self
                .db
                .store()
                .read(move |txn| {
                    let mut out = Vec::with_capacity(misses.len());
                    for (id, sub) in misses {
                        let closure = sub.closure(txn)?;
                        out.push((id, sub, closure));
                    }
                    Ok::<_, TriplitError>(out)
                })
                .await?;
            for (id, sub, closure) in computed {
                let closure = Arc::new(hash_closure(closure));
                self.shared.put(
                    sub.prepared(),
                    SharedResult {
                        seq,
                        stamp: fresh,
                        closure: closure.clone(),
                    },
                );
                closures.push((id, closure, seq));
            }
            stamp = Some(stamp.map_or(fresh, |s| s.min(fresh)));
        }
        for (id, closure, seq) in &closures {
            if let Some(q) = self.queries.get_mut(id) {
                q.maintain(closure, (*seq).max(self.known_seq));
            }
        }
        let stamp = stamp.unwrap_or(self.last_stamp);
        let change = self.view.update_all(
            closures.into_iter().map(|(id, c, _)| (id, c)).collect(),
            deltas,
        );
        if change.changes.is_empty() && change.shared_sets.is_empty() {
            return Ok(None);
        }
        self.last_stamp = self.last_stamp.max(stamp);
        Ok(Some(entity_data_shared(
            &change.changes,
            &change.shared_sets,
            stamp,
            &change.fired,
        )))
    }
}

/// `ENTITY_DATA {changes, timestamp, forQueries}`.
///
/// A set of the `_metadata/_schema` entity goes with a delete of it (the
/// client applies deletes first): the client replaces its copy instead of
/// merging into it, so collections, attributes and permissions removed
/// from the schema disappear from it too (upstream overwrites its own
/// stored copy the same way).
pub fn entity_data(changes: &DbChanges, stamp: Hlc, for_queries: &[String]) -> String {
    let (meta, schema_id) = crate::db::SCHEMA_ENTITY;
    let overwrite = changes.collections.iter().any(|(c, cc)| {
        c == meta
            && cc.sets.iter().any(|(id, _)| id == schema_id)
            && !cc.deletes.iter().any(|id| id == schema_id)
    });
    let mut owned;
    let changes = if overwrite {
        owned = changes.clone();
        owned
            .collection_mut(meta)
            .deletes
            .push(schema_id.to_string());
        &owned
    } else {
        changes
    };
    frame(
        "ENTITY_DATA",
        json!({"changes": encode_changes(changes), "timestamp": timestamp_json(stamp), "forQueries": for_queries}),
    )
}

/// [`entity_data`] with some sets given as shared encoded entries.
fn entity_data_shared(
    changes: &DbChanges,
    shared: &[(String, String, Arc<str>)],
    stamp: Hlc,
    for_queries: &[String],
) -> String {
    if shared.is_empty() {
        return entity_data(changes, stamp, for_queries);
    }
    format!(
        "{{\"type\":\"ENTITY_DATA\",\"payload\":{{\"changes\":{},\"timestamp\":{},\"forQueries\":{}}}}}",
        crate::superjson::encode_changes_text(changes, shared),
        timestamp_json(stamp),
        Value::from(for_queries.to_vec()),
    )
}

fn schema_mismatch() -> Outbound {
    close(
        CloseReason::SchemaMismatch,
        Some("The client schema is not backwards compatible with the server schema."),
    )
}

/// A close after which the client reconnects by itself.
pub fn close_retry(reason: CloseReason, message: Option<&str>) -> Outbound {
    Outbound::Close {
        message: reason.message_retry(message, true),
        code: reason.code(),
        reason: reason.frame_reason_retry(true),
    }
}

/// The `CLOSE` message and close frame for `reason`.
pub fn close(reason: CloseReason, message: Option<&str>) -> Outbound {
    Outbound::Close {
        message: reason.message(message),
        code: reason.code(),
        reason: reason.frame_reason(),
    }
}
