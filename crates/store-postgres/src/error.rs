//! Errors of the PostgreSQL backend and their mapping onto
//! [`StoreError`].
//!
//! `tokio_postgres::Error`'s `Display` says only "db error" for a server
//! error; the useful part (message, SQLSTATE) sits in its source, so every
//! error is described here once, with what the backend was doing, before
//! it becomes a [`StoreError::Backend`] string.

use ferry_store::StoreError;
use tokio_postgres::error::SqlState;

/// Something the PostgreSQL backend could not do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PgError {
    /// A statement or the connection failed.
    #[error("postgres: {what}: {detail}")]
    Query {
        /// What the backend was doing.
        what: &'static str,
        /// The server's message and SQLSTATE, or the client's reason.
        detail: String,
        /// The SQLSTATE, when the server sent one.
        code: Option<SqlState>,
        /// Whether the connection (not the statement) failed.
        lost: bool,
    },
    /// TLS could not be set up or the server's certificate was refused.
    #[error("postgres: TLS: {0}")]
    Tls(String),
    /// No pooled connection could be had.
    #[error("postgres: connection pool: {0}")]
    Pool(String),
    /// The pool was closed by [`ferry_store::Store::close`].
    #[error("postgres: the store is closed")]
    Closed,
    /// The connection string does not parse.
    #[error("postgres: invalid database url: {0}")]
    Url(String),
    /// The database was migrated by a newer Ferry.
    #[error(
        "postgres: database schema version {found} is newer than this build supports \
         ({supported}); upgrade Ferry"
    )]
    SchemaTooNew {
        /// The version recorded in the database.
        found: i32,
        /// [`crate::SCHEMA_VERSION`].
        supported: i32,
    },
    /// A stored value is not what Ferry writes (for example a negative
    /// sequence number).
    #[error("postgres: corrupt data: {0}")]
    Corrupt(String),
    /// A transaction closure panicked; the transaction was rolled back.
    #[error("postgres: the {0} transaction closure panicked: {1}")]
    Panicked(&'static str, String),
    /// Serialization failures repeated more often than configured.
    #[error("postgres: write transaction gave up after {0} serialization failures")]
    Contention(u32),
    /// The worker thread running a transaction disappeared.
    #[error("postgres: transaction worker failed: {0}")]
    Worker(String),
}

impl PgError {
    /// Wraps a client error with what the backend was doing.
    pub(crate) fn query(what: &'static str, e: &tokio_postgres::Error) -> PgError {
        let detail = describe(e);
        if is_tls_failure(e) {
            return PgError::Tls(format!("{what}: {detail}"));
        }
        PgError::Query {
            what,
            lost: is_connection_failure(e),
            code: e.code().cloned(),
            detail,
        }
    }

    /// A lost connection, described by `reason`.
    pub(crate) fn lost(what: &'static str, reason: String) -> PgError {
        PgError::Query {
            what,
            detail: reason,
            code: None,
            lost: true,
        }
    }

    /// Whether the database could not be reached (refused, lost, or not
    /// accepting connections) rather than refusing the operation.
    pub(crate) fn is_unavailable(&self) -> bool {
        match self {
            PgError::Query { lost, .. } => *lost,
            PgError::Pool(_) => true,
            _ => false,
        }
    }

    /// Whether re-running the whole transaction may succeed: the server
    /// aborted it because of a conflict with a concurrent transaction.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            PgError::Query { code: Some(code), .. }
                if *code == SqlState::T_R_SERIALIZATION_FAILURE
                    || *code == SqlState::T_R_DEADLOCK_DETECTED
        )
    }
}

impl PgError {
    /// The [`StoreError`] reporting this error.
    pub(crate) fn to_store(&self) -> StoreError {
        match self {
            PgError::Closed => StoreError::Closed,
            PgError::Tls(_) => StoreError::Tls(self.to_string()),
            other if other.is_unavailable() => StoreError::Unavailable(other.to_string()),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> StoreError {
        e.to_store()
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> PgError {
        match e {
            deadpool_postgres::PoolError::Closed => PgError::Closed,
            deadpool_postgres::PoolError::Backend(e) => PgError::query("connect", &e),
            other => PgError::Pool(other.to_string()),
        }
    }
}

/// Whether `e` is a failed TLS handshake or certificate check.
fn is_tls_failure(e: &tokio_postgres::Error) -> bool {
    if e.as_db_error().is_some() {
        return false;
    }
    // tokio-postgres's error kinds are private; its TLS kind reads so.
    if e.to_string().contains("TLS") {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Whether `e` means the connection is gone or could not be made: closed,
/// I/O failure, timeout, or a server-side connection error (SQLSTATE class
/// 08, shutdown or termination 57P0x, a database not accepting
/// connections).
fn is_connection_failure(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08")
                || code.starts_with("57P")
                || (code == "55000" && db.message().contains("accepting connections"))
                || code == SqlState::TOO_MANY_CONNECTIONS.code()
        }
        // Client-side failures without a server error: I/O, connect,
        // timeout. (Parse and conversion errors never reach here: they
        // are reported before a statement is sent.)
        None => {
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                if cause.downcast_ref::<std::io::Error>().is_some() {
                    return true;
                }
                source = cause.source();
            }
            let text = e.to_string();
            text.contains("connect") || text.contains("timeout") || text.contains("closed")
        }
    }
}

/// The server's message with its SQLSTATE, or the client error with its
/// cause chain.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// A sequence number read from a `bigint` column.
pub(crate) fn seq_from_sql(value: i64) -> Result<u64, PgError> {
    u64::try_from(value).map_err(|_| PgError::Corrupt(format!("negative sequence number {value}")))
}

/// A sequence number bound as a `bigint` parameter; values beyond
/// `i64::MAX` saturate (no stored sequence number is that large).
pub(crate) fn seq_to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_maps_to_store_closed() {
        assert_eq!(StoreError::from(PgError::Closed).code(), "STORE_CLOSED");
        assert_eq!(
            StoreError::from(PgError::Pool("timeout".into())).code(),
            "STORE_UNAVAILABLE"
        );
        assert_eq!(
            StoreError::from(PgError::lost("read", "connection closed".into())).code(),
            "STORE_UNAVAILABLE"
        );
        assert_eq!(
            StoreError::from(PgError::Tls("x".into())).code(),
            "STORE_TLS"
        );
        assert_eq!(
            StoreError::from(PgError::Corrupt("x".into())).code(),
            "STORE_BACKEND"
        );
    }

    #[test]
    fn only_conflicts_are_retryable() {
        let conflict = PgError::Query {
            what: "commit",
            detail: String::new(),
            code: Some(SqlState::T_R_SERIALIZATION_FAILURE),
            lost: false,
        };
        let deadlock = PgError::Query {
            what: "put",
            detail: String::new(),
            code: Some(SqlState::T_R_DEADLOCK_DETECTED),
            lost: false,
        };
        let other = PgError::Query {
            what: "put",
            detail: String::new(),
            code: Some(SqlState::PROGRAM_LIMIT_EXCEEDED),
            lost: false,
        };
        assert!(conflict.is_retryable());
        assert!(deadlock.is_retryable());
        assert!(!other.is_retryable());
        assert!(!PgError::Closed.is_retryable());
    }

    #[test]
    fn sequence_numbers_convert_without_panicking() {
        assert_eq!(seq_from_sql(7).unwrap(), 7);
        assert!(seq_from_sql(-1).is_err());
        assert_eq!(seq_to_sql(u64::MAX), i64::MAX);
        assert_eq!(seq_to_sql(3), 3);
    }
}
