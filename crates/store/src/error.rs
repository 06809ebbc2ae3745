//! Storage errors.

/// An error from a storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, corruption, a failed statement).
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// The backend cannot be reached right now: a connection was refused
    /// or lost, or the database does not accept connections. The same call
    /// may succeed once it is back; [`crate::Store::health`] reports when.
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
    /// A secure connection to the backend could not be established (its
    /// certificate is not trusted or not for this host, or it offers no
    /// TLS where TLS is required). Retrying does not help; the
    /// configuration or the server's certificate must change.
    #[error("storage backend TLS failed: {0}")]
    Tls(String),
    /// The store has been closed or its worker threads are gone.
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// A stable code for logs, metrics and tests.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Backend(_) => "STORE_BACKEND",
            StoreError::Unavailable(_) => "STORE_UNAVAILABLE",
            StoreError::Tls(_) => "STORE_TLS",
            StoreError::Closed => "STORE_CLOSED",
        }
    }

    /// Whether the backend could not be reached (as opposed to refusing
    /// or failing the operation itself).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
