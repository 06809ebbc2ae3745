//! Token verification for Ferry.
//!
//! Placeholder: the verifier is being written.
