//! The prepared form of a `CollectionQuery`: what preparation produces and
//! the planner consumes.
//!
//! It mirrors upstream's `PreparedQuery`: a collection, an optional
//! `select`, `include` subqueries with their cardinality, the `where`
//! filters (statements, boolean literals, `and`/`or` groups and `exists`
//! subqueries), `order` entries (a relational entry carries the
//! cardinality-one subquery that loads the related entity), `limit` and an
//! encoded `after` cursor. Every relation path and relational value has
//! already been rewritten into an `exists` subquery.

use serde_json::Value;

use super::operand::Operand;

/// A prepared query (one level of the tree).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The collection read.
    pub collection: String,
    /// Attribute paths `/fetch` projects onto (`None`: everything).
    pub select: Option<Vec<String>>,
    /// Named subqueries, in the order they were given.
    pub include: Vec<(String, Include)>,
    /// AND-ed filters (`None`: no `where`).
    pub where_: Option<Vec<Filter>>,
    /// Sort keys (`None`: no `order`).
    pub order: Option<Vec<OrderBy>>,
    /// The row limit; `Some(0.0)` returns nothing. May be fractional, as
    /// upstream accepts any non-negative number.
    pub limit: Option<f64>,
    /// The `after` cursor: encoded values (one per order entry) and
    /// whether a row equal to the cursor is included.
    pub after: Option<(Vec<Value>, bool)>,
}

impl Node {
    /// A query over `collection` with nothing else.
    pub fn new(collection: impl Into<String>) -> Node {
        Node {
            collection: collection.into(),
            select: None,
            include: Vec::new(),
            where_: None,
            order: None,
            limit: None,
            after: None,
        }
    }

    /// The `where` filters (empty when absent).
    pub fn filters(&self) -> &[Filter] {
        self.where_.as_deref().unwrap_or_default()
    }
}

/// One `include` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    /// The subquery, run once per parent row with the row on the stack.
    pub query: Node,
    /// `cardinality: 'one'`: the first row or `null`.
    pub one: bool,
}

/// One `order` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// The attribute path as given (`author.name` for a relational one).
    pub path: String,
    /// `DESC`.
    pub desc: bool,
    /// For a path through cardinality-one relations: the subquery loading
    /// the related entity (with further relations as its includes).
    pub sub: Option<Box<Node>>,
}

/// A prepared `where` filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `true` or `false`.
    Bool(bool),
    /// `[path, op, value]`.
    Stmt(Stmt),
    /// `{mod, filters}`.
    Group(Group),
    /// `{exists: subquery}`.
    Exists(Box<Exists>),
}

/// A filter statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// The attribute path (dotted).
    pub path: String,
    /// The operator (set paths carry the `SET_` prefix).
    pub op: String,
    /// The compared value.
    pub value: Operand,
}

/// An `and`/`or` group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// `mod: 'and'` (else `or`).
    pub and: bool,
    /// The members.
    pub filters: Vec<Filter>,
}

/// An `exists` subquery filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Exists {
    /// The subquery (only a collection and a `where`).
    pub query: Node,
    /// Whether it came from a permission. Permission subqueries are always
    /// evaluated per row (nested loop), never through upstream's view
    /// rewrites, which can drop or weaken them.
    pub strict: bool,
}

impl Filter {
    /// `{mod: 'and'|'or', filters}`.
    pub fn group(and: bool, filters: Vec<Filter>) -> Filter {
        Filter::Group(Group { and, filters })
    }

    /// Upstream's `isStaticFilter`: no `exists` anywhere inside.
    pub fn is_static(&self) -> bool {
        match self {
            Filter::Bool(_) | Filter::Stmt(_) => true,
            Filter::Group(g) => g.filters.iter().all(Filter::is_static),
            Filter::Exists(_) => false,
        }
    }
}

/// Every `exists` reachable through groups (upstream's
/// `filterStatementIteratorFlat` restricted to subqueries), in order.
pub fn flat_exists(filters: &[Filter]) -> Vec<&Exists> {
    let mut out = Vec::new();
    fn walk<'a>(fs: &'a [Filter], out: &mut Vec<&'a Exists>) {
        for f in fs {
            match f {
                Filter::Group(g) => walk(&g.filters, out),
                Filter::Exists(e) => out.push(e),
                _ => {}
            }
        }
    }
    walk(filters, &mut out);
    out
}
