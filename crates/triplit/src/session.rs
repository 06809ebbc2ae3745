//! Who is asking: the verified token of a request or connection.

use serde_json::{Map, Value};

/// A verified caller.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The token's claims (Triplit's session variables, `$token.*`).
    pub claims: Map<String, Value>,
    /// Whether this is the service token (`x-triplit-token-type: secret`):
    /// it bypasses permissions and unlocks admin routes.
    pub is_service: bool,
    /// Until when the token is usable on an open connection, in Unix
    /// milliseconds: its `exp` plus the clock leeway it was verified with
    /// ([`ferry_auth::VerifiedToken::usable_until_ms`]).
    pub expires_at_ms: Option<u64>,
}

impl Session {
    /// The service session (used by `ferry` itself, e.g. for loading a
    /// schema at start).
    pub fn service() -> Self {
        Self {
            is_service: true,
            ..Self::default()
        }
    }

    /// A session from a verified token.
    pub fn from_token(token: ferry_auth::VerifiedToken) -> Self {
        Self {
            is_service: token.is_service(),
            expires_at_ms: token.usable_until_ms(),
            claims: token.claims,
        }
    }
}
