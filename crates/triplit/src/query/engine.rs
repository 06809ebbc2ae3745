//! Running a compiled plan against a store snapshot (upstream's
//! `executeSteps`).
//!
//! Candidates flow lazily through the filter stages, so a `limit` without
//! `order` stops reading early. Collections are read in pages; one that a
//! nested loop scans again within the same execution is decoded once and
//! kept in memory for the rest of it. Views are computed at their first
//! use, with the variable stack of that moment, and reused.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::rc::Rc;

use ferry_store::{KeyRange, ReadTxn};
use serde_json::Value;

use super::ast::Filter;
use super::compile::{After, Plan, RelFilter, SortKey, Step};
use super::errors::engine;
pub(super) use super::filter::filters_pass;
use super::index::{Indexes, Key, probe};
use super::index_scan::OrderedRuns;
use super::order::{after_pass, sort, sort_first};
use super::row::{Row, Sub};
use super::view_search::resolve_from_view;
use crate::indexes::{IndexWant, Registry};
use crate::{TriplitError, keys};

const PAGE: usize = 256;

/// One execution of a plan.
pub struct Exec<'p> {
    pub(super) txn: &'p dyn ReadTxn,
    pub(super) plan: &'p Plan,
    pub(super) views: Vec<Option<Rc<Vec<Row>>>>,
    pub(super) cache: ScanCache,
    /// Parents probed per view (see `view_probe`).
    pub(super) probes: HashMap<usize, usize>,
    /// Probe answers by view and bound values.
    pub(super) probed: HashMap<(usize, Vec<String>), Vec<Row>>,
}

/// What one snapshot's scans have decoded, reusable by every execution on
/// that snapshot (the write-permission checks of one batch share it).
#[derive(Debug, Default)]
pub struct ScanCache {
    scans: HashMap<String, u32>,
    pub(super) rows: HashMap<String, Rc<Vec<Row>>>,
    indexes: Indexes,
    /// The persistent attribute indexes of the snapshot, read at the
    /// first scan.
    pub(super) registry: Option<Rc<Registry>>,
    /// Indexes scans of this snapshot would have used (see
    /// [`ScanCache::take_wanted`]).
    wanted: Vec<IndexWant>,
}

impl ScanCache {
    /// The `(collection, path)` indexes that scans since the last call
    /// would have used had they existed, each once: what the database
    /// builds on first use (`crate::db` `indexing`).
    pub fn take_wanted(&mut self) -> Vec<IndexWant> {
        std::mem::take(&mut self.wanted)
    }

    pub(super) fn want(&mut self, collection: &str, path: String) {
        let want = (collection.to_string(), path);
        if !self.wanted.contains(&want) {
            self.wanted.push(want);
        }
    }
}

pub(super) enum Source {
    Scan(Rc<str>),
    Ids(Rc<str>, Vec<String>),
    Rows(Vec<Row>),
    /// The index on `path` walked in order (`desc`), runs sorted by the
    /// query's sort keys.
    Ordered(Rc<str>, String, bool, Vec<SortKey>),
}

pub(super) enum Bound<'p> {
    Static(Filter),
    Group(bool, Vec<Bound<'p>>),
    Exists(&'p [Step], bool),
}

pub(super) enum Stage<'p> {
    Filter(Vec<Filter>, Option<&'p After>),
    Sub(&'p [Step], bool),
    Rel(Bound<'p>),
    Limit(f64),
}

fn decode(collection: &Rc<str>, id: &str, bytes: &[u8]) -> Result<Row, TriplitError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ Value::Object(_)) => Ok(Row::new(collection.clone(), Rc::from(id), v)),
        _ => Err(TriplitError::internal(format!(
            "stored entity {collection}/{id} is not a JSON object"
        ))),
    }
}

/// The number of rows `limit n` keeps.
fn limit_len(n: f64) -> usize {
    n.trunc().max(0.0).min(usize::MAX as f64) as usize
}

/// Collected rows held before they are cut down to the `n` a following
/// `order` + `limit` keeps (at least twice `n`). Small in unit tests, so
/// the property tests cut often.
const KEEP_SLACK: usize = if cfg!(test) { 4 } else { 4096 };

fn pushed(stack: &[Row], row: &Row) -> Vec<Row> {
    let mut s = Vec::with_capacity(stack.len() + 1);
    s.extend_from_slice(stack);
    s.push(row.clone());
    s
}

impl<'p> Exec<'p> {
    /// A fresh execution (no views computed yet).
    pub fn new(txn: &'p dyn ReadTxn, plan: &'p Plan) -> Self {
        Exec {
            txn,
            plan,
            views: vec![None; plan.views.len()],
            cache: ScanCache::default(),
            probes: HashMap::new(),
            probed: HashMap::new(),
        }
    }

    /// An execution reusing (and extending) `cache`, taken from an
    /// earlier execution on the same snapshot.
    pub fn with_cache(txn: &'p dyn ReadTxn, plan: &'p Plan, cache: ScanCache) -> Self {
        let mut e = Exec::new(txn, plan);
        e.cache = cache;
        e
    }

    /// The indexes this execution's scans would have used (see
    /// [`ScanCache::take_wanted`]).
    pub fn take_wanted(&mut self) -> Vec<IndexWant> {
        self.cache.take_wanted()
    }

    /// The scan cache, for the next execution on the same snapshot.
    pub fn into_cache(self) -> ScanCache {
        self.cache
    }

    /// Runs `steps` with `stack` as the variable stack. With `one`, only
    /// the first row gets its includes computed.
    pub fn run(
        &mut self,
        steps: &'p [Step],
        stack: &[Row],
        one: bool,
    ) -> Result<Vec<Row>, TriplitError> {
        let mut results: Vec<Row> = Vec::new();
        let mut source: Option<Source> = None;
        let mut stages: Vec<Stage<'p>> = Vec::new();
        for (at, step) in steps.iter().enumerate() {
            match step {
                Step::Scan(c) => source = Some(Source::Scan(Rc::from(c.as_str()))),
                Step::IdLookup(c, value) => {
                    let ids = self.ids(value, stack)?;
                    source = Some(Source::Ids(Rc::from(c.as_str()), ids));
                }
                // A view only the next step reads may be answered from an
                // index per parent instead (`view_probe`).
                Step::PrepareView(id) if matches!(steps.get(at + 1), Some(Step::ResolveFromView(next, _)) if next == id) =>
                    {}
                Step::PrepareView(id) => self.prepare_view(*id, stack)?,
                Step::ResolveFromView(id, stmts) => {
                    let rows = match self.probe_view(*id, stmts, stack)? {
                        Some(rows) => rows,
                        None => {
                            self.prepare_view(*id, stack)?;
                            let Some(Some(view)) = self.views.get(*id) else {
                                return Err(engine(format!("View {id} not found")));
                            };
                            let mut rows = view.as_ref().clone();
                            for s in stmts {
                                let value = self.bind_value(&s.value, stack, false)?;
                                rows = resolve_from_view(rows, &s.path, &s.op, &value)?;
                            }
                            rows
                        }
                    };
                    results = rows.clone();
                    source = Some(Source::Rows(rows));
                }
                Step::IterFilter(filters, after) => {
                    let bound = self.bind_all(filters, stack)?;
                    stages.push(Stage::Filter(bound, after.as_ref()));
                }
                Step::IterSubqueryFilter(sub, implied) => {
                    let proven = self.proven(implied.as_ref());
                    stages.push(Stage::Sub(sub, proven));
                }
                Step::IterRelFilter(f) => stages.push(Stage::Rel(self.bind_rel(f, stack)?)),
                Step::IterLimit(n) => stages.push(Stage::Limit(*n)),
                Step::Collect => {
                    let src = source.take().ok_or_else(|| {
                        engine("No candidate iterator found when trying to COLLECT")
                    })?;
                    let rest = &steps[at + 1..];
                    let src = self.choose_source(src, &mut stages, rest)?;
                    // Only the first `n` in sort order are kept: collected
                    // rows are cut down to them as they come.
                    let keep = match rest {
                        [Step::Sort(keys), Step::Limit(n), ..] => {
                            Some((keys.as_slice(), limit_len(*n)))
                        }
                        _ => None,
                    };
                    results = self.collect(src, std::mem::take(&mut stages), stack, keep)?;
                }
                Step::Sort(keys) => sort(&mut results, keys),
                Step::Limit(n) => results.truncate(limit_len(*n)),
                Step::Subquery {
                    alias,
                    steps: sub,
                    one: sub_one,
                } => {
                    if one && !matches!(alias, super::plan::Alias::Order(_)) {
                        results.truncate(1);
                    }
                    for row in &mut results {
                        let s = pushed(stack, row);
                        let found = self.run(sub, &s, *sub_one)?;
                        let value = if *sub_one {
                            Sub::One(found.into_iter().next())
                        } else {
                            Sub::Many(found)
                        };
                        row.set_sub(alias.clone(), value);
                    }
                }
            }
        }
        Ok(results)
    }

    /// Whether the view `(N, f)` is computed and holds only scalar values
    /// at `f`, so the paired `in` statement proves the subquery.
    fn proven(&self, implied: Option<&(usize, String)>) -> bool {
        let Some((id, path)) = implied else {
            return false;
        };
        let Some(Some(view)) = self.views.get(*id) else {
            return false;
        };
        let segs: Vec<String> = path.split('.').map(str::to_string).collect();
        view.iter()
            .all(|r| !matches!(r.lookup(&segs), Some(Value::Object(_) | Value::Array(_))))
    }

    fn prepare_view(&mut self, id: usize, stack: &[Row]) -> Result<(), TriplitError> {
        match self.views.get(id) {
            Some(Some(_)) => return Ok(()),
            Some(None) => {}
            None => return Err(engine(format!("View {id} not found"))),
        }
        let plan: &'p Plan = self.plan;
        let rows = self.run(&plan.views[id], stack, false)?;
        self.views[id] = Some(Rc::new(rows));
        Ok(())
    }

    /// The rows of `src` that pass `stages`, in order. With `keep =
    /// (keys, n)` (a `Sort(keys)` + `Limit(n)` follows), rows that cannot
    /// be among the first `n` in sort order may be dropped early: the rows
    /// returned are then the first `n` sorted by `keys` (ties in order),
    /// followed by later rows in order, which the stable sort that follows
    /// turns into exactly the full result's first `n`.
    pub(super) fn collect(
        &mut self,
        src: Source,
        stages: Vec<Stage<'p>>,
        stack: &[Row],
        keep: Option<(&[SortKey], usize)>,
    ) -> Result<Vec<Row>, TriplitError> {
        let mut out = Vec::new();
        let cut_at = keep.map(|(_, n)| n.saturating_mul(2).max(KEEP_SLACK));
        let mut counts = vec![0usize; stages.len()];
        let probe: Option<(String, Key)> = match stages.first() {
            Some(Stage::Filter(filters, _)) => probe(filters).map(|(p, k)| (p.to_string(), k)),
            _ => None,
        };
        let mut feed = |exec: &mut Self,
                        row: Row,
                        out: &mut Vec<Row>|
         -> Result<ControlFlow<()>, TriplitError> {
            for (i, stage) in stages.iter().enumerate() {
                let pass = match stage {
                    Stage::Filter(filters, after) => {
                        filters_pass(&row.data, filters)?
                            && after.is_none_or(|a| after_pass(&row.data, a))
                    }
                    Stage::Sub(_, true) => true,
                    Stage::Sub(steps, false) => {
                        !exec.run(steps, &pushed(stack, &row), false)?.is_empty()
                    }
                    Stage::Rel(f) => exec.rel_pass(&row, f, stack)?,
                    Stage::Limit(n) => {
                        if counts[i] as f64 >= *n {
                            return Ok(ControlFlow::Break(()));
                        }
                        counts[i] += 1;
                        true
                    }
                };
                if !pass {
                    return Ok(ControlFlow::Continue(()));
                }
            }
            out.push(row);
            if let (Some((keys, n)), Some(at)) = (keep, cut_at)
                && out.len() >= at
            {
                sort_first(out, keys, n);
            }
            Ok(ControlFlow::Continue(()))
        };
        match src {
            Source::Rows(rows) => {
                for row in rows {
                    if feed(self, row, &mut out)?.is_break() {
                        break;
                    }
                }
            }
            Source::Ordered(c, path, desc, sort_keys) => {
                let txn = self.txn;
                let mut runs = OrderedRuns::new(txn, &c, &path, desc);
                'walk: while let Some(ids) = runs.next_run()? {
                    let mut rows = Vec::with_capacity(ids.len());
                    for id in ids {
                        let bytes = txn.get(&keys::entity(&c, &id))?.ok_or_else(|| {
                            TriplitError::internal(format!(
                                "the index of {c}.{path} names a missing entity"
                            ))
                        })?;
                        rows.push(decode(&c, &id, &bytes)?);
                    }
                    if rows.len() > 1 {
                        sort(&mut rows, &sort_keys);
                    }
                    for row in rows {
                        if feed(self, row, &mut out)?.is_break() {
                            break 'walk;
                        }
                    }
                }
            }
            Source::Ids(c, ids) => {
                for id in ids {
                    let Some(bytes) = self.txn.get(&keys::entity(&c, &id))? else {
                        continue;
                    };
                    if feed(self, decode(&c, &id, &bytes)?, &mut out)?.is_break() {
                        break;
                    }
                }
            }
            Source::Scan(c) => {
                let seen = self.cache.scans.entry(c.to_string()).or_insert(0);
                *seen += 1;
                if *seen > 1 && !self.cache.rows.contains_key(c.as_ref()) {
                    let all = self.scan_all(&c)?;
                    self.cache.rows.insert(c.to_string(), Rc::new(all));
                }
                if let Some(all) = self.cache.rows.get(c.as_ref()).cloned() {
                    let positions: Option<Vec<usize>> = probe.map(|(path, key)| {
                        self.cache.indexes.lookup(&c, &all, &path, &key).to_vec()
                    });
                    match positions {
                        Some(ps) => {
                            for i in ps {
                                if feed(self, all[i].clone(), &mut out)?.is_break() {
                                    break;
                                }
                            }
                        }
                        None => {
                            for row in all.iter() {
                                if feed(self, row.clone(), &mut out)?.is_break() {
                                    break;
                                }
                            }
                        }
                    }
                } else {
                    let prefix = keys::collection(&c);
                    let mut range = KeyRange::prefix(&prefix);
                    loop {
                        let (page, next) = self.page(&c, &range)?;
                        let mut stop = false;
                        for row in page {
                            if feed(self, row, &mut out)?.is_break() {
                                stop = true;
                                break;
                            }
                        }
                        match next {
                            Some(start) if !stop => range.start = start,
                            _ => break,
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Up to [`PAGE`] rows of `range` and where the next page starts.
    fn page(
        &self,
        c: &Rc<str>,
        range: &KeyRange,
    ) -> Result<(Vec<Row>, Option<Vec<u8>>), TriplitError> {
        let mut raw: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        self.txn.scan(range, false, &mut |k, v| {
            raw.push((k.to_vec(), v.to_vec()));
            if raw.len() >= PAGE {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        let next = (raw.len() >= PAGE).then(|| {
            let mut k = raw.last().map(|(k, _)| k.clone()).unwrap_or_default();
            k.push(0);
            k
        });
        let rows = raw
            .iter()
            .map(|(k, v)| {
                let id = keys::parse_entity(k).map(|(_, id)| id).unwrap_or_default();
                decode(c, &id, v)
            })
            .collect::<Result<_, _>>()?;
        Ok((rows, next))
    }

    /// Whether the scans of this snapshot hold `collection` in memory.
    pub(super) fn cache_holds(&self, collection: &str) -> bool {
        self.cache.rows.contains_key(collection)
    }

    fn scan_all(&self, c: &Rc<str>) -> Result<Vec<Row>, TriplitError> {
        let mut range = KeyRange::prefix(&keys::collection(c));
        let mut all = Vec::new();
        loop {
            let (page, next) = self.page(c, &range)?;
            all.extend(page);
            match next {
                Some(start) => range.start = start,
                None => return Ok(all),
            }
        }
    }

    fn rel_pass(&mut self, row: &Row, f: &Bound<'p>, stack: &[Row]) -> Result<bool, TriplitError> {
        Ok(match f {
            Bound::Static(f) => filters_pass(&row.data, std::slice::from_ref(f))?,
            Bound::Group(and, fs) => {
                for f in fs {
                    if self.rel_pass(row, f, stack)? != *and {
                        return Ok(!*and);
                    }
                }
                *and
            }
            Bound::Exists(_, true) => true,
            Bound::Exists(steps, false) => !self.run(steps, &pushed(stack, row), false)?.is_empty(),
        })
    }

    fn bind_rel(&self, f: &'p RelFilter, stack: &[Row]) -> Result<Bound<'p>, TriplitError> {
        Ok(match f {
            RelFilter::Static(f) => Bound::Static(self.bind_filter(f, stack)?),
            RelFilter::Group(and, fs) => Bound::Group(
                *and,
                fs.iter()
                    .map(|f| self.bind_rel(f, stack))
                    .collect::<Result<_, _>>()?,
            ),
            RelFilter::Exists(steps, implied) => {
                Bound::Exists(steps, self.proven(implied.as_ref()))
            }
        })
    }
}
