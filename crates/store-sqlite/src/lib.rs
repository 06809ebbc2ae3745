//! Ferry's embedded default store: SQLite (WAL) behind [`ferry_store::Store`].
//!
//! Placeholder: the backend is being written.
