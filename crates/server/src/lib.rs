//! Ferry's HTTP and WebSocket edge (axum).
//!
//! This crate translates: it parses HTTP requests (routes, Bearer tokens,
//! bodies, multipart uploads, CORS preflights), asks the protocol crate
//! for an answer and writes it back. It holds no protocol semantics, no
//! SQL and no concrete store.
//!
//! Layout: [`router`] assembles the routes; `auth` turns the
//! `Authorization` header into a verified session; `triplit_routes`
//! serves Triplit's HTTP API; [`metrics`] installs the Prometheus
//! recorder and names every metric; [`ws`] runs a sync session per
//! WebSocket over `ws_socket` (the upgrade and fragmented writes).

mod auth;
pub mod metrics;
mod outbox;
mod router;
mod triplit_routes;
pub mod ws;
mod ws_socket;

pub use router::{AppState, ServerConfig, router};
