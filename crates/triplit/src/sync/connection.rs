//! One client's sync session: handles its messages and computes what it
//! must receive after each change.
//!
//! Split by concept: [`messages`] (incoming frames, `CHANGES`),
//! [`subscribe`] (`CONNECT_QUERY`), [`flush`] (commits and the
//! `ENTITY_DATA` diff) and [`frames`] (outgoing frames). This file holds the
//! session's state, the schema handshake and schema changes.

mod flush;
mod frames;
mod messages;
mod stamp;
mod subscribe;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use frames::schema_mismatch;
pub use frames::{Outbound, close, close_retry, entity_data};

use super::chunks::Chunks;
use super::closure::Subscription;
use super::entity_key::EntityKey;
use super::maintained::Maintained;
use super::protocol::{self, CloseReason, frame};
use super::settle::Settle;
use super::shared::SharedResults;
use super::view::{HashedClosure, View};
use crate::db::{Commit, TriplitDb};
use crate::session::Session;

#[derive(Debug)]
struct LiveQuery {
    /// Shared with the connections that have the same prepared query.
    subscription: Arc<Subscription>,
    /// The query as the client sent it, as JSON text (prepared again after
    /// a token refresh or a schema change; kept as text because a parsed
    /// tree costs several times its length for as long as the query lives).
    params: Box<str>,
    /// The result kept up to date from commits, for queries that allow it
    /// (`None`: re-run on the next flush).
    maintained: Option<Maintained>,
}

impl LiveQuery {
    fn new(subscription: Arc<Subscription>, params: &Value) -> Self {
        Self {
            subscription,
            params: params.to_string().into_boxed_str(),
            maintained: None,
        }
    }

    /// The query as the client sent it.
    fn params(&self) -> Value {
        serde_json::from_str(&self.params).unwrap_or(Value::Null)
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
    /// The stamps frames may carry (`stamp.rs`).
    stamps: stamp::Stamping,
    /// Commits since the last flush that touch a live query's collections.
    pending_commits: Vec<Arc<Commit>>,
    /// The schema generation the live queries were prepared with.
    schema_generation: u64,
    /// The client schema hash this session was admitted with.
    admitted_hash: Option<u32>,
    /// Frames produced outside a reply (after a schema change), for
    /// [`SyncConnection::take_outbound`].
    pending: Vec<Outbound>,
    /// Recent sends, for restating entities the client may have applied
    /// out of order (`settle.rs`).
    settle: Settle,
    /// The entities the flush in progress restates.
    restating: Option<Vec<EntityKey>>,
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
            stamps: stamp::Stamping::default(),
            pending_commits: Vec::new(),
            schema_generation: db.schema_generation(),
            admitted_hash: None,
            pending: Vec::new(),
            settle: Settle::default(),
            restating: None,
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
        let (schema, generation) = self.db.schema_with_generation();
        for q in self.queries.values_mut() {
            if let Ok(sub) = Subscription::prepare(&q.params(), schema.as_deref(), &self.session) {
                self.dirty.extend(sub.collections().iter().cloned());
                q.subscription = self.shared.subscription(generation, sub);
                q.maintained = None;
            }
        }
    }

    /// Number of live queries.
    pub fn live_queries(&self) -> usize {
        self.queries.len()
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
        let (schema, generation) = self.db.schema_with_generation();
        if generation == self.schema_generation {
            return false;
        }
        self.schema_generation = generation;
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
            match Subscription::prepare(&q.params(), schema.as_deref(), &self.session) {
                Ok(sub) => {
                    self.dirty
                        .extend(q.subscription.collections().iter().cloned());
                    self.dirty.extend(sub.collections().iter().cloned());
                    q.subscription = self.shared.subscription(generation, sub);
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
}
