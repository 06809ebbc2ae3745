//! Triplit's HTTP routes: request parsing and response writing only.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_triplit::TriplitError;
use ferry_triplit::http::{self, Input, Reply};
use ferry_triplit::session::Session;
use serde_json::Value;

use crate::auth::session_from_headers;
use crate::router::AppState;

fn json(status: u16, v: &Value) -> Response {
    json_bytes(status, serde_json::to_vec(v).unwrap_or_default())
}

fn json_bytes(status: u16, body: Vec<u8>) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn error(e: &TriplitError) -> Response {
    json(e.status, &e.to_json())
}

fn reply(r: Reply) -> Response {
    match r.body {
        http::Body::Json(v) => json(r.status, &v),
        http::Body::JsonBytes(b) => json_bytes(r.status, b),
        http::Body::Text(t) => (
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
            [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
            t,
        )
            .into_response(),
        http::Body::Empty => StatusCode::from_u16(r.status)
            .unwrap_or(StatusCode::OK)
            .into_response(),
    }
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Session, TriplitError> {
    session_from_headers(&state.verifier, state.time.as_ref(), headers).await
}

fn too_large(limit: usize) -> TriplitError {
    let mb = limit / (1024 * 1024);
    TriplitError::new(
        "TriplitError",
        413,
        format!("Body too large, max size is {mb} MB"),
        None,
    )
}

/// The cap for routes other than the bulk ones.
const OTHER_ROUTES_MIN_LIMIT: usize = 100 * 1024 * 1024;

fn limit_for(state: &AppState, route: &str) -> usize {
    if matches!(route, "bulk-insert" | "bulk-insert-file") {
        state.config.max_body_bytes
    } else {
        state.config.max_body_bytes.max(OTHER_ROUTES_MIN_LIMIT)
    }
}

async fn read_body(state: &AppState, route: &str, body: Body) -> Result<Bytes, TriplitError> {
    let limit = limit_for(state, route);
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large(limit))
}

fn parse_json(bytes: &[u8]) -> Input {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Input::None;
    }
    match serde_json::from_slice(bytes) {
        Ok(v) => Input::Json(v),
        Err(e) => Input::Invalid(e.to_string()),
    }
}

fn no_return(q: &HashMap<String, String>) -> bool {
    q.get("noReturn").is_some_and(|v| v == "true")
}

/// `POST /<route>`: every JSON route of the Triplit API.
pub async fn generic(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    // The path inside the (possibly nested) router: `/fetch` → `fetch`.
    let route = request.uri().path().trim_start_matches('/').to_string();
    let body = request.into_body();
    let session = match authenticate(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return error(&e),
    };
    let bytes = match read_body(&state, &route, body).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    reply(
        http::handle(
            &state.db,
            &session,
            &route,
            parse_json(&bytes),
            no_return(&q),
        )
        .await,
    )
}

/// `POST /bulk-insert-file`: a multipart form whose `data` field holds the
/// `/bulk-insert` JSON.
pub async fn bulk_insert_file(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let session = match authenticate(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return error(&e),
    };
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(multer_boundary);
    let bytes = match read_body(&state, "bulk-insert-file", request.into_body()).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    let data = boundary.and_then(|b| multipart_field(&bytes, &b, "data"));
    let Some(data) = data else {
        return error(&TriplitError::new(
            "TriplitError",
            400,
            "No data provided for file upload",
            None,
        ));
    };
    reply(
        http::handle(
            &state.db,
            &session,
            "bulk-insert",
            parse_json(&data),
            no_return(&q),
        )
        .await,
    )
}

fn multer_boundary(content_type: &str) -> Option<String> {
    let (mime, rest) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    rest.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_string())
    })
}

/// Extracts one field's content from a `multipart/form-data` body.
fn multipart_field(body: &[u8], boundary: &str, name: &str) -> Option<Vec<u8>> {
    let delimiter = format!("--{boundary}");
    let parts = split_bytes(body, delimiter.as_bytes());
    for part in parts {
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(header_end) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let headers = String::from_utf8_lossy(&part[..header_end]).to_ascii_lowercase();
        let wanted = format!("name=\"{}\"", name.to_ascii_lowercase());
        if !headers
            .lines()
            .any(|l| l.starts_with("content-disposition") && l.contains(&wanted))
        {
            continue;
        }
        let content = &part[header_end + 4..];
        let content = content.strip_suffix(b"\r\n").unwrap_or(content);
        return Some(content.to_vec());
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut hay: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(hay, delim) {
        out.push(&hay[..i]);
        hay = &hay[i + delim.len()..];
    }
    out.push(hay);
    out
}

/// `GET /version`.
pub async fn version(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = authenticate(&state, &headers).await {
        return error(&e);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        "1.0.0",
    )
        .into_response()
}

/// `POST /update-token {clientId}` with the new token as Bearer: extends
/// a realtime session when the roles are unchanged (the socket is closed
/// with `ROLES_MISMATCH` otherwise; the answer is `200 OK` either way).
pub async fn update_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let session = match authenticate(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return error(&e),
    };
    let bytes = match read_body(&state, "update-token", body).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    let client_id = match parse_json(&bytes) {
        Input::Json(v) => v
            .get("clientId")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    };
    let no_connection = || {
        error(&TriplitError::new(
            "TriplitError",
            400,
            "No connection found for clientId",
            None,
        ))
    };
    let Some(client_id) = client_id else {
        return no_connection();
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    if !state
        .connections
        .send(
            &client_id,
            crate::ws::Control::UpdateToken(Box::new((session, done_tx))),
        )
        .await
    {
        return no_connection();
    }
    let _ = done_rx.await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        "OK",
    )
        .into_response()
}

/// `GET /`: the WebSocket upgrade; without one, upstream's authenticated 404.
pub async fn root(State(state): State<AppState>, request: Request) -> Response {
    if request.method() == axum::http::Method::GET && crate::ws::wants_upgrade(request.headers()) {
        return crate::ws::upgrade(state, request);
    }
    let headers = request.headers().clone();
    fallback(State(state), headers, request).await
}

/// Everything else: authenticated like upstream's catch-all, then 404.
pub async fn fallback(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    if let Err(e) = authenticate(&state, &headers).await {
        return error(&e);
    }
    let path = request.uri().path().to_string();
    error(&TriplitError::route_not_found(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_data_field_is_found() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nnope\r\n--XyZ\r\nContent-Disposition: form-data; name=\"data\"\r\nContent-Type: application/json\r\n\r\n{\"a\":[1]}\r\n--XyZ--\r\n";
        assert_eq!(
            multipart_field(body, "XyZ", "data").unwrap(),
            b"{\"a\":[1]}"
        );
        assert_eq!(
            multer_boundary("multipart/form-data; boundary=XyZ").as_deref(),
            Some("XyZ")
        );
        assert!(multipart_field(body, "XyZ", "missing").is_none());
    }
}
