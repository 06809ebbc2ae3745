//! [`TokenInfo`]: what a refused token claims to be, for logs.
//!
//! Operators need to see *why* a token was refused and whose it was. This
//! reads, without verifying anything, the header's `alg` and `kid` and the
//! payload's `iss`, shortened and stripped of control characters. It never
//! returns the token or its signature.

use serde_json::Value;

use crate::error::shorten;
use crate::jws;

/// The unverified `iss`, `kid` and `alg` of a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenInfo {
    /// The payload's `iss`, when it is a string.
    pub iss: Option<String>,
    /// The header's `kid`, when it is a string.
    pub kid: Option<String>,
    /// The header's `alg`, when it is a string.
    pub alg: Option<String>,
}

impl TokenInfo {
    /// Reads what it can of `token`; never fails.
    pub fn peek(token: &str) -> Self {
        let Ok(parts) = jws::split(token) else {
            return Self::default();
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(shorten);
        let header = jws::decode_header(&parts).unwrap_or_default();
        let iss = jws::decode_payload(&parts)
            .ok()
            .and_then(|claims| text(claims.get("iss")));
        Self {
            iss,
            kid: text(header.get("kid")),
            alg: text(header.get("alg")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64;

    #[test]
    fn reads_iss_kid_alg_and_shortens() {
        let long_kid = "k".repeat(300);
        let header = format!(r#"{{"alg":"RS256","kid":"{long_kid}"}}"#);
        let token = format!(
            "{}.{}.sig",
            b64::encode_url(header.as_bytes()),
            b64::encode_url(br#"{"iss":"https://a\nb"}"#)
        );
        let info = TokenInfo::peek(&token);
        assert_eq!(info.alg.as_deref(), Some("RS256"));
        assert_eq!(info.iss.as_deref(), Some("https://a?b"));
        assert_eq!(info.kid.unwrap().chars().count(), 65);
        assert_eq!(TokenInfo::peek("garbage"), TokenInfo::default());
    }
}
