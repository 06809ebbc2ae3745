//! Permissions: the roles a session holds and what they may read and
//! write.
//!
//! Read permissions are applied while preparing a query (see
//! [`crate::query::prepare`]): each collection's `read` filters, ORed
//! across the session's roles, are ANDed into the query and into every
//! subquery. Write permissions are checked per changed entity against the
//! state after the whole transaction ([`check_write_permissions`]).

mod clauses;
mod roles;
mod write;

pub use clauses::{ClauseCache, MAX_CLAUSES};

pub use roles::{Role, match_pattern, roles_equivalent, session_roles, session_vars};
pub use write::{WriteDelta, WriteOp, check_write_permissions, write_permission_error};

/// A permission operation of a collection's `permissions.<role>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `read`.
    Read,
    /// `insert`: the new entity.
    Insert,
    /// `update`: the entity before the update.
    Update,
    /// `postUpdate`: the entity after the update (`$prev` is the one before).
    PostUpdate,
    /// `delete`: the entity before deletion.
    Delete,
}

impl Operation {
    /// The key in the schema.
    pub fn key(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::PostUpdate => "postUpdate",
            Operation::Delete => "delete",
        }
    }

    /// Anything but `read`.
    pub fn is_write(self) -> bool {
        self != Operation::Read
    }
}
