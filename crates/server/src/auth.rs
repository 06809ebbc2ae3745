//! `Authorization: Bearer <token>` → a verified Triplit session.

use axum::http::HeaderMap;
use ferry_auth::{TokenInfo, TokenVerifier};
use ferry_core::TimeSource;
use ferry_triplit::TriplitError;
use ferry_triplit::session::Session;

use crate::metrics::AUTH_REFUSALS;

/// Verifies `token` and turns refusals into Triplit's error shape,
/// counting and logging each refusal by reason, with the token's claimed
/// issuer, `kid` and `alg` (never the token itself).
pub async fn verify_token(
    verifier: &TokenVerifier,
    time: &dyn TimeSource,
    token: &str,
) -> Result<Session, TriplitError> {
    match verifier.verify(token, time.now_ms()).await {
        Ok(t) => Ok(Session::from_token(t)),
        Err(e) => {
            ::metrics::counter!(AUTH_REFUSALS, "reason" => e.code()).increment(1);
            let info = TokenInfo::peek(token);
            tracing::info!(
                reason = e.code(),
                iss = info.iss.as_deref().unwrap_or(""),
                kid = info.kid.as_deref().unwrap_or(""),
                alg = info.alg.as_deref().unwrap_or(""),
                issuer = e.issuer().unwrap_or(""),
                detail = %e,
                "token refused"
            );
            Err(TriplitError::new(
                e.triplit_name(),
                e.status(),
                e.base_message(),
                e.context(),
            ))
        }
    }
}

/// Reads the Bearer token the way upstream's middleware does.
pub async fn session_from_headers(
    verifier: &TokenVerifier,
    time: &dyn TimeSource,
    headers: &HeaderMap,
) -> Result<Session, TriplitError> {
    let Some(header) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(no_token("Missing authorization header"));
    };
    let header = header.to_str().unwrap_or("");
    let mut parts = header.split(' ');
    let scheme = parts.next().unwrap_or("");
    if scheme != "Bearer" {
        return Err(TriplitError::new(
            "InvalidAuthenticationSchemeError",
            401,
            "Must use Bearer authentication scheme.",
            None,
        ));
    }
    match parts.next() {
        Some(token) if !token.is_empty() => verify_token(verifier, time, token).await,
        _ => Err(no_token("Missing authorization token")),
    }
}

fn no_token(context: &str) -> TriplitError {
    ::metrics::counter!(AUTH_REFUSALS, "reason" => "missing").increment(1);
    TriplitError::new(
        "NoTokenProvidedError",
        401,
        "No token provided.",
        Some(context.to_string()),
    )
}
