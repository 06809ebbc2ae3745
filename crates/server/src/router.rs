//! Route assembly, CORS and request metrics.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use ferry_auth::TokenVerifier;
use ferry_core::TimeSource;
use ferry_triplit::db::TriplitDb;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::metrics::HTTP_REQUESTS;
use crate::triplit_routes;

/// Settings of the HTTP edge.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted body for `/bulk-insert` and `/bulk-insert-file`, in
    /// bytes (Triplit's `MAX_BODY_SIZE` is in megabytes; default 100 MB).
    /// Other routes accept the larger of this and 100 MB: upstream leaves
    /// them unbounded, Ferry keeps every request's memory bounded.
    pub max_body_bytes: usize,
    /// A path prefix every route is mounted under (`/triplit`), or empty.
    pub base_path: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 100 * 1024 * 1024,
            base_path: String::new(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The Triplit database.
    pub db: Arc<TriplitDb>,
    /// Token verification.
    pub verifier: Arc<TokenVerifier>,
    /// The clock tokens are checked against.
    pub time: Arc<dyn TimeSource>,
    /// Edge settings.
    pub config: ServerConfig,
    /// Renders `/metrics`; `None` disables the route.
    pub metrics: Option<PrometheusHandle>,
    /// Live realtime connections (for `/update-token`).
    pub connections: Arc<crate::ws::Connections>,
    /// Query results shared by realtime connections.
    pub shared_results: Arc<ferry_triplit::sync::SharedResults>,
    /// Randomness for client ids.
    pub rng: Arc<dyn ferry_core::RandomSource>,
    /// Cancelled when the server shuts down; sessions close with 1001.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The full router: Triplit's HTTP API plus `/healthcheck` and `/metrics`.
pub fn router(state: AppState) -> Router {
    let base = state.config.base_path.trim_end_matches('/').to_string();
    let routes = Router::new()
        // As upstream: GET routes answer other methods through the
        // authenticated catch-all (so POST /healthcheck is a 404 once a
        // token is given), and every other method on a POST route is 404.
        .route(
            "/healthcheck",
            get(healthcheck)
                .post(triplit_routes::generic)
                .fallback(triplit_routes::fallback),
        )
        .route(
            "/metrics",
            get(metrics_route)
                .post(triplit_routes::generic)
                .fallback(triplit_routes::fallback),
        )
        .route(
            "/version",
            get(triplit_routes::version)
                .post(triplit_routes::generic)
                .fallback(triplit_routes::fallback),
        )
        .route(
            "/update-token",
            post(triplit_routes::update_token).fallback(triplit_routes::fallback),
        )
        .route(
            "/bulk-insert-file",
            post(triplit_routes::bulk_insert_file).fallback(triplit_routes::fallback),
        )
        .route("/", any(triplit_routes::root))
        .route(
            "/{route}",
            post(triplit_routes::generic).fallback(triplit_routes::fallback),
        )
        .fallback(any(triplit_routes::fallback))
        .with_state(state);
    let app = if base.is_empty() {
        routes
    } else {
        Router::new().nest(&base, routes)
    };
    app.layer(middleware::from_fn(count_requests))
        .layer(middleware::from_fn(cors))
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        body,
    )
        .into_response()
}

/// `GET /healthcheck`: `OK` when the store answers a read within 2 s,
/// `503` otherwise (a lost database connection is visible to load
/// balancers): at once with `UNAVAILABLE: database unreachable` while the
/// store reports its backend unreachable ([`ferry_store::Store::health`]),
/// `UNAVAILABLE` when the probe read fails or is slow.
async fn healthcheck(State(state): State<AppState>) -> Response {
    use ferry_store::StoreExt;
    if *state.db.store().health().borrow() == ferry_store::Health::Unavailable {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE: database unreachable",
        );
    }
    let probe = state
        .db
        .store()
        .read(|txn| txn.get(b"\x00health").map(|_| ()));
    match tokio::time::timeout(std::time::Duration::from_secs(2), probe).await {
        Ok(Ok(())) => text(StatusCode::OK, "OK"),
        _ => text(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
    }
}

async fn metrics_route(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// CORS for any origin, as upstream's `cors()` middleware: preflights get
/// 204 with the allowed methods and the requested headers echoed.
async fn cors(req: Request, next: Next) -> Response {
    if req.method() == Method::OPTIONS {
        let requested = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned();
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET,HEAD,PUT,POST,DELETE,PATCH"),
        );
        if let Some(requested) = requested {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
        }
        h.insert(
            header::VARY,
            HeaderValue::from_static("Access-Control-Request-Headers"),
        );
        return resp;
    }
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

async fn count_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let segment = req.uri().path().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let label = match route.as_deref() {
        Some("/{route}") | Some("/{*rest}") | None => {
            let s = segment.rsplit('/').next().unwrap_or("").to_string();
            if ferry_triplit::http::is_route(&s)
                || matches!(
                    s.as_str(),
                    "healthcheck" | "metrics" | "version" | "update-token" | "bulk-insert-file"
                )
            {
                format!("/{s}")
            } else {
                "other".to_string()
            }
        }
        Some(r) => r.to_string(),
    };
    ::metrics::counter!(HTTP_REQUESTS, "route" => label.clone(), "status" => resp.status().as_u16().to_string()).increment(1);
    tracing::debug!(route = %label, status = resp.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    resp
}
