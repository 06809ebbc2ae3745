//! Clerk publishable keys: `pk_test_…` / `pk_live_…` → the Frontend API.
//!
//! A publishable key is `pk_test_` or `pk_live_` followed by base64 (the
//! standard alphabet, padding removed) of `"<frontend-api-host>$"`, e.g.
//! `pk_test_Y2xlYW4tbWF5Zmx5LTYyLmNsZXJrLmFjY291bnRzLmRldiQ` for
//! `clean-mayfly-62.clerk.accounts.dev`. Clerk's session tokens carry
//! `iss = https://<host>` and are signed by the keys at
//! `https://<host>/.well-known/jwks.json`.
//!
//! For the offline stand-in (`ferry issuer`), a host on a loopback address
//! (`127.0.0.1:6544`) maps to `http://` instead: a real Frontend API is
//! never on loopback, and loopback is the only place plain http is allowed
//! without `allow_insecure_http`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use crate::b64;
use crate::issuer::{IssuerError, is_loopback_host};

/// A decoded Clerk publishable key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClerkPublishableKey {
    frontend_api: String,
    live: bool,
}

impl ClerkPublishableKey {
    /// Decodes `pk_test_…` / `pk_live_…` the way Clerk's `parsePublishableKey`
    /// does: the decoded text must end in `$`, contain exactly one `$`, and
    /// the host must contain a `.`. The host must also be a bare
    /// `host[:port]` (no scheme, path, user or spaces).
    pub fn parse(key: &str) -> Result<Self, IssuerError> {
        let key = key.trim();
        let bad = |why: &'static str| IssuerError::PublishableKey(why);
        let (live, encoded) = if let Some(rest) = key.strip_prefix("pk_live_") {
            (true, rest)
        } else if let Some(rest) = key.strip_prefix("pk_test_") {
            (false, rest)
        } else {
            return Err(bad("must start with pk_test_ or pk_live_"));
        };
        if encoded.is_empty() || !encoded.bytes().all(is_base64_char) {
            return Err(bad("the part after the prefix is not base64"));
        }
        let decoded = String::from_utf8(b64::decode_lenient(encoded))
            .map_err(|_| bad("does not decode to text"))?;
        let Some(host) = decoded.strip_suffix('$') else {
            return Err(bad("decoded value does not end in $"));
        };
        if host.contains('$') || !host.contains('.') {
            return Err(bad("decoded value is not a Frontend API host"));
        }
        let plain = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
        if host.is_empty() || !plain || host.starts_with(['.', ':', '-']) {
            return Err(bad("decoded value is not a Frontend API host"));
        }
        Ok(Self {
            frontend_api: host.to_ascii_lowercase(),
            live,
        })
    }

    /// Encodes a publishable key for `frontend_api` (a `host[:port]`).
    pub fn encode(frontend_api: &str, live: bool) -> String {
        let prefix = if live { "pk_live_" } else { "pk_test_" };
        format!(
            "{prefix}{}",
            STANDARD_NO_PAD.encode(format!("{frontend_api}$"))
        )
    }

    /// The Frontend API host (`host[:port]`).
    pub fn frontend_api(&self) -> &str {
        &self.frontend_api
    }

    /// Whether this is a production (`pk_live_`) key.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The issuer Clerk puts in `iss`: `https://<host>` (`http://` for a
    /// loopback host).
    pub fn issuer_url(&self) -> String {
        let host_only = self
            .frontend_api
            .rsplit_once(':')
            .map_or(self.frontend_api.as_str(), |(host, _)| host);
        let scheme = if is_loopback_host(host_only) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", self.frontend_api)
    }

    /// Where Clerk publishes the instance's keys.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.issuer_url())
    }
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+/-_=".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_documented_example() {
        let key =
            ClerkPublishableKey::parse("pk_test_Y2xlYW4tbWF5Zmx5LTYyLmNsZXJrLmFjY291bnRzLmRldiQ")
                .unwrap();
        assert_eq!(key.frontend_api(), "clean-mayfly-62.clerk.accounts.dev");
        assert!(!key.is_live());
        assert_eq!(
            key.issuer_url(),
            "https://clean-mayfly-62.clerk.accounts.dev"
        );
        assert_eq!(
            key.jwks_url(),
            "https://clean-mayfly-62.clerk.accounts.dev/.well-known/jwks.json"
        );
    }

    #[test]
    fn round_trips_and_loopback_is_http() {
        let pk = ClerkPublishableKey::encode("127.0.0.1:6544", false);
        let key = ClerkPublishableKey::parse(&pk).unwrap();
        assert_eq!(key.issuer_url(), "http://127.0.0.1:6544");
        let live =
            ClerkPublishableKey::parse(&ClerkPublishableKey::encode("clerk.example.com", true))
                .unwrap();
        assert!(live.is_live());
        assert_eq!(live.issuer_url(), "https://clerk.example.com");
    }

    #[test]
    fn refuses_malformed_keys() {
        let enc = |s: &str| STANDARD_NO_PAD.encode(s);
        for key in [
            "sk_test_abc".to_owned(),
            "pk_test_".to_owned(),
            format!("pk_test_{}", enc("clerk.example.com")),
            format!("pk_test_{}", enc("localhost$")),
            format!("pk_test_{}", enc("a$b.com$")),
            format!("pk_test_{}", enc("evil.com/path$")),
            format!("pk_test_{}", enc("user@evil.com$")),
            format!("pk_test_{}", enc(".com$")),
            "pk_test_!!!!".to_owned(),
        ] {
            let err = ClerkPublishableKey::parse(&key).unwrap_err();
            assert_eq!(err.code(), "publishable_key", "{key}");
        }
    }
}
