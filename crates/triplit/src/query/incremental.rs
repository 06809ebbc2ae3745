//! Queries whose result can be maintained one changed entity at a time.
//!
//! A query over one collection whose plan is a scan, static filters, an
//! optional sort on the entity's own attributes and an optional limit —
//! no `exists`, no includes, no relational order, no `after` cursor, no
//! views, no run-time variables — has a result that depends on each
//! entity alone: an entity is in it when it passes the filters (read
//! permissions included, they are ANDed in at preparation) and ranks among
//! the first `limit` by the sort keys, ties in id storage order (the scan's
//! order, kept by the stable sort). [`Incremental`] is that description;
//! realtime sync uses it to update a subscribed result from the changed
//! entities of a commit instead of re-running the query
//! (`sync::maintained`). Everything else — including whether a limited
//! window must be refilled from the store — is decided by the caller; the
//! rows this module ranks are exactly the rows [`super::execute`] returns.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::ast::Filter;
use super::compile::{Plan, Step};
use super::filter::{evaluate, value_at};
use super::sort_key::SortKey;
use crate::TriplitError;

/// The maintainable shape of a prepared query.
#[derive(Debug, Clone)]
pub struct Incremental {
    collection: String,
    filters: Vec<Filter>,
    order: Vec<(Vec<String>, bool)>,
    limit: Option<usize>,
}

/// A rank's key values. Nearly every live query orders by one attribute,
/// whose key is held inline (a maintained result holds one rank per row
/// per connection, so a separate allocation each would add up).
#[derive(Debug, Clone, PartialEq)]
pub enum RankKeys {
    /// One `order` entry.
    One(SortKey),
    /// None, or several.
    Many(Box<[SortKey]>),
}

impl std::ops::Deref for RankKeys {
    type Target = [SortKey];
    fn deref(&self) -> &[SortKey] {
        match self {
            RankKeys::One(v) => std::slice::from_ref(v),
            RankKeys::Many(vs) => vs,
        }
    }
}

/// The sort position of a row: its key values and its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Rank<I = String> {
    /// One value per `order` entry (empty values as `null`).
    pub keys: RankKeys,
    /// The entity id (ties sort in id storage order: UTF-8 bytes).
    pub id: I,
}

/// What a [`Rank`] holds as its id: the id itself or a handle to it.
pub trait RankId {
    /// The entity id.
    fn rank_id(&self) -> &str;
}

impl RankId for String {
    fn rank_id(&self) -> &str {
        self
    }
}

fn whole(n: f64) -> Option<usize> {
    (n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64).then_some(n as usize)
}

/// `ValuePointer.Get` on a document (the engine reads rows the same way).
fn lookup<'a, 'p>(
    entity: &'a Map<String, Value>,
    mut path: impl Iterator<Item = &'p str>,
) -> Option<Cow<'a, Value>> {
    value_at(entity.get(path.next()?)?, path)
}

/// `satisfiesNonRelationalFilter` (as the engine's static filter stage).
fn passes(entity: &Map<String, Value>, f: &Filter) -> Result<bool, TriplitError> {
    Ok(match f {
        Filter::Bool(b) => *b,
        Filter::Stmt(s) => evaluate(
            lookup(entity, s.path.split('.')).as_deref(),
            &s.op,
            &s.value,
        )?,
        Filter::Group(g) => {
            for f in &g.filters {
                if passes(entity, f)? != g.and {
                    return Ok(!g.and);
                }
            }
            g.and
        }
        Filter::Exists(_) => false,
    })
}

fn is_static(f: &Filter) -> bool {
    match f {
        Filter::Bool(_) => true,
        Filter::Stmt(s) => s.value.as_variable().is_none(),
        Filter::Group(g) => g.filters.iter().all(is_static),
        Filter::Exists(_) => false,
    }
}

impl Incremental {
    /// The description of `plan`, when its result is maintainable.
    pub(super) fn from_plan(plan: &Plan) -> Option<Incremental> {
        if !plan.views.is_empty() {
            return None;
        }
        let mut steps = plan.steps.iter();
        let collection = match steps.next()? {
            Step::Scan(c) => c.clone(),
            _ => return None,
        };
        let mut filters = Vec::new();
        let mut collected = false;
        let mut order: Option<Vec<(Vec<String>, bool)>> = None;
        let mut limit: Option<usize> = None;
        for step in steps {
            match step {
                Step::IterFilter(fs, None) if !collected && fs.iter().all(is_static) => {
                    filters.extend(fs.iter().cloned())
                }
                // Without `order`, the first `limit` rows of the scan.
                Step::IterLimit(n) if !collected && order.is_none() => {
                    let n = whole(*n)?;
                    limit = Some(limit.map_or(n, |l| l.min(n)));
                }
                Step::Collect if !collected => collected = true,
                Step::Sort(keys) if collected && order.is_none() && limit.is_none() => {
                    if keys.iter().any(|k| !k.subs.is_empty()) {
                        return None;
                    }
                    order = Some(keys.iter().map(|k| (k.path.clone(), k.desc)).collect());
                }
                Step::Limit(n) if collected => {
                    let n = whole(*n)?;
                    limit = Some(limit.map_or(n, |l| l.min(n)));
                }
                _ => return None,
            }
        }
        collected.then(|| Incremental {
            collection,
            filters,
            order: order.unwrap_or_default(),
            limit,
        })
    }

    /// The collection the result is made of.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// At most this many rows.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Whether `entity` (a stored document) passes every filter.
    pub fn matches(&self, entity: &Map<String, Value>) -> Result<bool, TriplitError> {
        for f in &self.filters {
            if !passes(entity, f)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The sort position of `entity` with `id`.
    pub fn rank(&self, id: &str, entity: &Map<String, Value>) -> Rank {
        self.rank_with(id.to_string(), entity)
    }

    /// [`Incremental::rank`] holding `id` as given.
    pub fn rank_with<I: RankId>(&self, id: I, entity: &Map<String, Value>) -> Rank<I> {
        let value = |path: &[String]| {
            lookup(entity, path.iter().map(String::as_str))
                .map(|v| SortKey::new(v.into_owned()))
                .unwrap_or(SortKey::Null)
        };
        let keys = match self.order.as_slice() {
            [(path, _)] => RankKeys::One(value(path)),
            order => RankKeys::Many(order.iter().map(|(path, _)| value(path)).collect()),
        };
        Rank { keys, id }
    }

    /// The result order: the sort keys (`DESC` reversed), then ids.
    pub fn compare<I: RankId>(&self, a: &Rank<I>, b: &Rank<I>) -> Ordering {
        for (i, (_, desc)) in self.order.iter().enumerate() {
            let mut o = a.keys[i].compare(&b.keys[i]);
            if *desc {
                o = o.reverse();
            }
            if o.is_ne() {
                return o;
            }
        }
        a.id.rank_id().as_bytes().cmp(b.id.rank_id().as_bytes())
    }
}
