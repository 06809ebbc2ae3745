//! Storage errors.

/// An error from a storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, corruption, a lost connection).
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// The store has been closed or its worker threads are gone.
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// A stable code for logs, metrics and tests.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Backend(_) => "STORE_BACKEND",
            StoreError::Closed => "STORE_CLOSED",
        }
    }
}
