//! Choosing where a collected scan's rows come from: the collection, or
//! the persistent indexes of the snapshot (the planner seam, see
//! `index_scan`), and recording the indexes a scan would have used.

use std::rc::Rc;

use super::ast::Filter;
use super::compile::Step;
use super::engine::{Exec, Source, Stage};
use super::index_scan::{self, Narrow};
use crate::TriplitError;
use crate::indexes::Registry;

impl<'p> Exec<'p> {
    pub(super) fn cache_want(&mut self, collection: &str, path: &str) {
        self.cache.want(collection, path.to_string());
    }

    pub(super) fn registry(&mut self) -> Result<Rc<Registry>, TriplitError> {
        if let Some(r) = &self.cache.registry {
            return Ok(r.clone());
        }
        let r = Rc::new(Registry::load(self.txn)?);
        self.cache.registry = Some(r.clone());
        Ok(r)
    }

    /// The planner seam for persistent indexes (see `index_scan`): a scan
    /// of an indexed collection becomes point lookups of the ids an `=`/
    /// `in` statement selects, else an ordered index walk for `order` +
    /// `limit` (which then stops at the limit), else point lookups of the
    /// union an `or` group selects, else of the ids a range statement
    /// selects. The rows are the scan's, in the scan's order. A scan that
    /// an index would have served records the index it wants.
    pub(super) fn choose_source(
        &mut self,
        src: Source,
        stages: &mut Vec<Stage<'p>>,
        rest: &[Step],
    ) -> Result<Source, TriplitError> {
        let Source::Scan(c) = src else {
            return Ok(src);
        };
        // A collection already in memory is served from there.
        if self.cache.rows.contains_key(c.as_ref()) {
            return Ok(Source::Scan(c));
        }
        let registry = self.registry()?;
        let filters: &[Filter] = match stages.first() {
            Some(Stage::Filter(filters, _)) => filters,
            _ => &[],
        };
        if let Some(ids) = index_scan::filter_ids(self.txn, &registry, &c, filters, Narrow::Equal)?
        {
            return Ok(Source::Ids(c, ids));
        }
        // An `order` + `limit` an index walk could serve.
        let walk = match rest {
            [Step::Sort(sort_keys), Step::Limit(n), ..]
                if sort_keys.iter().all(|k| k.subs.is_empty())
                    && stages.iter().all(|s| {
                        matches!(s, Stage::Filter(fs, _) if fs.iter().all(index_scan::infallible))
                    }) =>
            {
                sort_keys
                    .first()
                    .map(|first| (first.path.join("."), first.desc, sort_keys, *n))
                    .filter(|(path, ..)| path != "id")
            }
            _ => None,
        };
        if let Some((path, desc, sort_keys, n)) = &walk
            && registry.has(&c, path)
        {
            stages.push(Stage::Limit(*n));
            return Ok(Source::Ordered(c, path.clone(), *desc, sort_keys.to_vec()));
        }
        for narrow in [Narrow::Union, Narrow::Range] {
            if let Some(ids) = index_scan::filter_ids(self.txn, &registry, &c, filters, narrow)? {
                return Ok(Source::Ids(c, ids));
            }
        }
        let order = walk.as_ref().map(|(path, ..)| path.as_str());
        for path in index_scan::wanted(&registry, &c, filters, order) {
            self.cache.want(&c, path);
        }
        Ok(Source::Scan(c))
    }
}
