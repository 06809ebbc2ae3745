//! Candidates from the persistent attribute indexes: the planner seam
//! between a compiled `Scan` and the store.
//!
//! When a collection is to be scanned, the engine asks here whether an
//! index (one the registry in the same snapshot names, see
//! `crate::indexes`) can supply the candidates instead:
//!
//! - **Filters.** The first top-level `=` or `in` statement on an indexed
//!   path (else the first `<`, `<=`, `>`, `>=`) gives the ids whose encoded
//!   value lies in the statement's range: a superset of the rows that pass
//!   it, read back in id (storage) order, so the scan's order is kept. An
//!   `and` group narrows like its first member that does; an `or` group
//!   whose every branch narrows by equality gives the union of the
//!   branches' ids (permissions like "mine or shared" are such a group).
//! - **Order.** `order` on an indexed path followed by `limit` walks the
//!   index in that direction, one run of equal encodings at a time; each
//!   run is read in id order and sorted in memory with the query's own
//!   comparator (stable), which is exactly the order a stable sort of the
//!   whole scan gives, and the walk stops once `limit` rows have passed.
//!
//! Every filter still runs on every candidate, so results are those of the
//! full scan. Rows the index skips are never evaluated, which is only
//! invisible when no filter can fail on a row: an index is used only when
//! every filter of the candidate stage is [`infallible`].

use std::collections::VecDeque;
use std::ops::ControlFlow;

use ferry_store::key::{Part, decode, prefix_end};
use ferry_store::{KeyRange, ReadTxn};
use serde_json::Value;

use super::ast::{Filter, Stmt};
use super::operand::Operand;
use crate::indexes::{Registry, encode};
use crate::{TriplitError, keys};

/// Index entries read per page of an ordered walk.
const PAGE: usize = 256;

/// Whether evaluating `f` on any row can never fail (an unknown operator,
/// a `like` pattern that is not a string and the set operators can).
pub(super) fn infallible(f: &Filter) -> bool {
    match f {
        Filter::Bool(_) => true,
        Filter::Stmt(s) => match s.op.as_str() {
            "=" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "nin" | "isDefined" => true,
            "like" | "nlike" => matches!(&s.value, Operand::Json(Value::String(_))),
            _ => false,
        },
        Filter::Group(g) => g.filters.iter().all(infallible),
        Filter::Exists(_) => false,
    }
}

fn scalar(v: &Value) -> bool {
    !v.is_object() && !v.is_array()
}

/// The key ranges of the index on `path` that hold every row passing
/// `op value`; `None` when the statement cannot be answered from it.
fn ranges(prefix: &[u8], op: &str, value: &Operand, equality: bool) -> Option<Vec<KeyRange>> {
    let enc = match value {
        Operand::Undefined => encode::encode(None),
        Operand::Json(v) => encode::encode(Some(v)),
        Operand::Set(_) => Vec::new(),
    };
    let at = |enc: &[u8]| KeyRange::prefix(&[prefix, enc].concat());
    let all_end = prefix_end(prefix);
    match (op, value, equality) {
        ("=", Operand::Undefined | Operand::Json(_), true) => Some(vec![at(&enc)]),
        ("in", Operand::Set(set), true) => {
            // `in` needs a non-empty value equal (SameValueZero) to an item;
            // object and array items are never equal to anything.
            let mut encs: Vec<Vec<u8>> = set
                .items()
                .iter()
                .filter(|v| scalar(v) && !v.is_null())
                .map(|v| encode::encode(Some(v)))
                .collect();
            encs.sort();
            encs.dedup();
            Some(encs.iter().map(|e| at(e)).collect())
        }
        ("<" | "<=", Operand::Undefined | Operand::Json(_), false) => Some(vec![KeyRange {
            start: prefix.to_vec(),
            end: prefix_end(&[prefix, &enc].concat()),
        }]),
        (">" | ">=", Operand::Undefined | Operand::Json(_), false) => Some(vec![KeyRange {
            start: [prefix, &enc].concat(),
            end: all_end,
        }]),
        _ => None,
    }
}

/// The id of the index entry `key` under `prefix` (the index's prefix).
fn entry_id(prefix: &[u8], key: &[u8]) -> Option<(Vec<u8>, String)> {
    let (enc, rest) = encode::split(key.get(prefix.len()..)?)?;
    match decode(rest)?.as_slice() {
        [Part::Str(id)] => Some((enc.to_vec(), id.clone())),
        _ => None,
    }
}

fn corrupt(collection: &str) -> TriplitError {
    TriplitError::internal(format!("an index entry of '{collection}' is unreadable"))
}

/// Candidate ids (sorted in storage order) for `filters` over
/// `collection`, from the first `=`/`in` statement an index answers (with
/// `equality`) or the first range statement (without); `None` when no
/// index applies.
pub(super) fn filter_ids(
    txn: &dyn ReadTxn,
    registry: &Registry,
    collection: &str,
    filters: &[Filter],
    narrow: Narrow,
) -> Result<Option<Vec<String>>, TriplitError> {
    if registry.paths(collection).is_empty() || !filters.iter().all(infallible) {
        return Ok(None);
    }
    let indexed = |p: &str| registry.has(collection, p);
    let Some(stmts) = filters.iter().find_map(|f| narrowing(f, narrow, &indexed)) else {
        return Ok(None);
    };
    let mut scans: Vec<(Vec<u8>, KeyRange)> = Vec::new();
    for s in stmts {
        let prefix = keys::index(collection, &s.path);
        let Some(rs) = ranges(&prefix, &s.op, &s.value, narrow != Narrow::Range) else {
            return Ok(None);
        };
        scans.extend(rs.into_iter().map(|r| (prefix.clone(), r)));
    }
    let mut ids = Vec::new();
    let mut bad = false;
    for (prefix, range) in &scans {
        txn.scan(range, false, &mut |k, _| match entry_id(prefix, k) {
            Some((_, id)) => {
                ids.push(id);
                ControlFlow::Continue(())
            }
            None => {
                bad = true;
                ControlFlow::Break(())
            }
        })?;
    }
    if bad {
        return Err(corrupt(collection));
    }
    // Storage order is the ids' byte order.
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(ids))
}

/// How a filter may narrow a scan, in the planner's order of preference
/// (an ordered walk comes between `Equal` and `Union`: a union of branches
/// such as "mine or shared" can hold most of the collection, where a walk
/// stops at the limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Narrow {
    /// `=`/`in` statements.
    Equal,
    /// `Equal`, and `or` groups whose every branch narrows (the union of
    /// the branches' candidates).
    Union,
    /// `<`, `<=`, `>`, `>=` statements.
    Range,
}

/// The statements whose index ranges, taken together, hold every row
/// passing `f`, using only paths `indexed` accepts: a statement the index
/// answers as `narrow` allows; the first member of an `and` group that
/// narrows; with `Union`, every branch of a non-empty `or` group, or
/// nothing when a branch does not narrow.
fn narrowing<'f>(
    f: &'f Filter,
    narrow: Narrow,
    indexed: &dyn Fn(&str) -> bool,
) -> Option<Vec<&'f Stmt>> {
    match f {
        Filter::Stmt(s) if s.path != "id" && indexed(&s.path) => {
            ranges(&[], &s.op, &s.value, narrow != Narrow::Range).map(|_| vec![s])
        }
        Filter::Group(g) if g.and => g.filters.iter().find_map(|f| narrowing(f, narrow, indexed)),
        Filter::Group(g) if narrow == Narrow::Union && !g.filters.is_empty() => {
            let mut all = Vec::new();
            for branch in &g.filters {
                all.extend(narrowing(branch, Narrow::Union, indexed)?);
            }
            Some(all)
        }
        _ => None,
    }
}

/// The indexes that would serve a scan of `collection` with `filters`
/// (and, with `order`, the path of an `order` + `limit` the scan could
/// walk) had every attribute been indexed, those that are not: the paths
/// of the first filter narrowing by [`Narrow::Equal`], else `order`, else
/// those of the first narrowing by `Union`, else by `Range`: exactly the
/// preference of the planner. Empty when an index that serves exists, no index could serve,
/// or a filter can fail.
pub(super) fn wanted(
    registry: &Registry,
    collection: &str,
    filters: &[Filter],
    order: Option<&str>,
) -> Vec<String> {
    if !filters.iter().all(infallible) {
        return Vec::new();
    }
    let any = |_: &str| true;
    let first = |narrow: Narrow| {
        filters
            .iter()
            .find_map(|f| narrowing(f, narrow, &any))
            .map(|stmts| stmts.into_iter().map(|s| s.path.as_str()).collect())
    };
    let paths: Vec<&str> = first(Narrow::Equal)
        .or(order.map(|o| vec![o]))
        .or_else(|| first(Narrow::Union))
        .or_else(|| first(Narrow::Range))
        .unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        if !registry.has(collection, p) && !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    }
    out
}

/// A walk over an index in value order, run by run.
pub(super) struct OrderedRuns<'t> {
    txn: &'t dyn ReadTxn,
    collection: String,
    prefix: Vec<u8>,
    range: KeyRange,
    desc: bool,
    buffer: VecDeque<(Vec<u8>, String)>,
    exhausted: bool,
}

impl<'t> OrderedRuns<'t> {
    /// Walks the index on `path` of `collection`, descending with `desc`.
    pub(super) fn new(txn: &'t dyn ReadTxn, collection: &str, path: &str, desc: bool) -> Self {
        let prefix = keys::index(collection, path);
        OrderedRuns {
            txn,
            collection: collection.to_string(),
            range: KeyRange::prefix(&prefix),
            prefix,
            desc,
            buffer: VecDeque::new(),
            exhausted: false,
        }
    }

    fn fill(&mut self) -> Result<(), TriplitError> {
        if self.exhausted {
            return Ok(());
        }
        let mut raw: Vec<Vec<u8>> = Vec::new();
        self.txn.scan(&self.range, self.desc, &mut |k, _| {
            raw.push(k.to_vec());
            if raw.len() >= PAGE {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        if raw.len() < PAGE {
            self.exhausted = true;
        }
        if let Some(last) = raw.last() {
            if self.desc {
                self.range.end = Some(last.clone());
            } else {
                let mut next = last.clone();
                next.push(0);
                self.range.start = next;
            }
        }
        for k in raw {
            let entry = entry_id(&self.prefix, &k).ok_or_else(|| corrupt(&self.collection))?;
            self.buffer.push_back(entry);
        }
        Ok(())
    }

    /// The ids of the next run of entries with equal encoded values, in
    /// storage order; `None` at the end.
    pub(super) fn next_run(&mut self) -> Result<Option<Vec<String>>, TriplitError> {
        if self.buffer.is_empty() {
            self.fill()?;
        }
        let Some((enc, id)) = self.buffer.pop_front() else {
            return Ok(None);
        };
        let mut run = vec![id];
        loop {
            if self.buffer.is_empty() {
                self.fill()?;
            }
            match self.buffer.front() {
                Some((e, _)) if *e == enc => {
                    if let Some((_, id)) = self.buffer.pop_front() {
                        run.push(id);
                    }
                }
                _ => break,
            }
        }
        if self.desc {
            run.reverse();
        }
        Ok(Some(run))
    }
}
