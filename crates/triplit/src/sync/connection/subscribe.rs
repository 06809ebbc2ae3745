//! `CONNECT_QUERY`: preparing a live query, its first result and, with a
//! checkpoint, only what changed since the client's copy.

use std::collections::HashMap;
use std::sync::Arc;

use ferry_core::Hlc;
use ferry_store::{StoreExt, load_clock_floor};
use serde_json::Value;

use super::super::closure::{Subscription, readable_by_id};
use super::super::entity_key::EntityKey;
use super::super::protocol::{self, parse_timestamp};
use super::super::view::hash_closure;
use super::frames::entity_data;
use super::messages::bad_payload;
use super::{LiveQuery, Outbound, SyncConnection};
use crate::{DbChanges, TriplitError, keys};

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

impl SyncConnection {
    pub(super) async fn connect_query(&mut self, payload: &Value) -> Vec<Outbound> {
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
        let (schema, generation) = self.db.schema_with_generation();
        let subscription = match Subscription::prepare(&params, schema.as_deref(), &self.session) {
            Ok(s) => s,
            Err(e) => return vec![Outbound::Text(protocol::query_sync_error(&id, &e))],
        };
        let checkpoint = parse_checkpoint(payload.get("state"));
        let subscription = self.shared.subscription(generation, subscription);
        let sub = subscription.clone();
        let ts_keys: Vec<(String, Vec<String>)> = checkpoint
            .as_ref()
            .map(|c| c.entity_ids.clone())
            .unwrap_or_default();
        let schema_for_read = schema.clone();
        let session_for_read = self.session.clone();
        let seq_before = *self.db.store().watch().borrow();
        let read = self
            .db
            .store()
            .read(move |txn| {
                let (closure, wanted) = sub.closure_wanting(txn)?;
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
                Ok::<_, TriplitError>((closure, stamps, outside, load_clock_floor(txn)?, wanted))
            })
            .await;
        let (closure, stamps, outside, floor, wanted) = match read {
            Ok(r) => r,
            Err(e) => return vec![Outbound::Text(protocol::query_sync_error(&id, &e))],
        };
        self.db.want_indexes(wanted);
        if self.queries.is_empty() {
            // The union is this query alone, as of the snapshot.
            self.stamps.reached(floor);
        }
        if let Some(cp) = &checkpoint {
            self.stamps.resumed_from(cp.timestamp);
            for (c, i, entity) in &closure {
                if stamps
                    .get(&(c.clone(), i.clone()))
                    .is_some_and(|t| *t < cp.timestamp)
                {
                    self.view.assume_sent(EntityKey::new(c, i), entity);
                }
            }
        }
        let root = subscription.collection().to_string();
        let hashed = Arc::new(hash_closure(closure));
        let mut live = LiveQuery::new(subscription, &params);
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
        let stamp = self.stamps.next();
        if !self.stamps.acks_reflected() {
            // This client's latest writes are not yet reflected by its other
            // queries, so the stamp may be below their acks and the client
            // may ignore those entities here: restate them once it is quiet.
            let keys = changes
                .collections
                .iter()
                .flat_map(|(c, cc)| cc.sets.iter().map(move |(i, _)| EntityKey::new(c, i)));
            self.settle.suspect(self.db.time().now_ms(), keys);
        }
        self.settle
            .sent(self.db.time().now_ms(), &changes, [], |_| true);
        self.stamps.sent(stamp);
        vec![Outbound::Text(entity_data(&changes, stamp, &[id]))]
    }
}
