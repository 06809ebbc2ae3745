//! Issuer configuration: who may sign tokens, with which keys, under which
//! rules.
//!
//! An [`IssuerConfig`] names the `iss` it answers for, where its keys come
//! from ([`KeySource`]) and its claim rules (audiences, authorized parties,
//! leeway). Constructors cover the common cases: [`IssuerConfig::clerk`]
//! (from a publishable key), [`IssuerConfig::oidc`] (discovery),
//! [`IssuerConfig::jwks_url`] and [`IssuerConfig::static_keys`].
//!
//! URLs are fetched only over `https`, or over `http` when the host is a
//! loopback address (`127.0.0.0/8`, `::1`, `localhost`): a local issuer for
//! tests and development. `allow_insecure_http` lifts that for other hosts.

use serde_json::{Map, Value};

use crate::clerk::ClerkPublishableKey;
use crate::error::KeyError;
use crate::jwks::KeySet;
use crate::key::VerificationKey;

/// The clock leeway issuer tokens get by default: 5 s, as Clerk's backend.
pub const DEFAULT_ISSUER_LEEWAY_MS: u64 = 5_000;

/// The largest leeway accepted: 5 minutes.
pub const MAX_LEEWAY_MS: u64 = 300_000;

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Keys given in configuration (one PEM/JWK/HMAC secret, or a JWK Set).
    Static(KeySet),
    /// A JWKS URL, fetched and cached.
    JwksUrl(String),
    /// OIDC discovery: `<issuer>/.well-known/openid-configuration` names the
    /// `jwks_uri`; its `issuer` must equal the configured one.
    Discovery,
}

/// One trusted token issuer.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// A label for logs and metrics (defaults to the issuer URL).
    pub name: String,
    /// The exact `iss` this issuer answers for. `None` makes it the default
    /// issuer: it verifies external tokens whose `iss` matches no other
    /// issuer (at most one; not together with `EXTERNAL_JWT_SECRET`).
    pub issuer: Option<String>,
    /// Where the keys come from.
    pub keys: KeySource,
    /// When non-empty, `aud` (a string or an array) must contain one of
    /// these.
    pub audiences: Vec<String>,
    /// When non-empty, `azp` must be present and one of these (Clerk: the
    /// origins of your app, e.g. `https://app.example.com`).
    pub authorized_parties: Vec<String>,
    /// Clock leeway on `exp`, `nbf` and `iat`, in milliseconds.
    pub leeway_ms: u64,
    /// Allow plain `http` key URLs on hosts other than loopback.
    pub allow_insecure_http: bool,
    /// Apply Clerk's token-class rule: refuse machine (M2M) tokens.
    pub clerk: bool,
}

impl IssuerConfig {
    fn new(name: String, issuer: Option<String>, keys: KeySource) -> Self {
        Self {
            name,
            issuer,
            keys,
            audiences: Vec::new(),
            authorized_parties: Vec::new(),
            leeway_ms: DEFAULT_ISSUER_LEEWAY_MS,
            allow_insecure_http: false,
            clerk: false,
        }
    }

    /// The Clerk preset: the publishable key gives the Frontend API host,
    /// hence `iss = https://<host>` and the keys at
    /// `https://<host>/.well-known/jwks.json`.
    pub fn clerk(publishable_key: &str) -> Result<Self, IssuerError> {
        let key = ClerkPublishableKey::parse(publishable_key)?;
        let mut config = Self::new(
            format!("clerk:{}", key.frontend_api()),
            Some(key.issuer_url()),
            KeySource::JwksUrl(key.jwks_url()),
        );
        config.clerk = true;
        Ok(config)
    }

    /// An OpenID Connect issuer found by discovery.
    pub fn oidc(issuer: &str) -> Self {
        Self::new(
            issuer.to_owned(),
            Some(issuer.to_owned()),
            KeySource::Discovery,
        )
    }

    /// An issuer whose keys are at `url`; `issuer` `None` makes it the
    /// default issuer.
    pub fn jwks_url(issuer: Option<&str>, url: &str) -> Self {
        let name = issuer.unwrap_or(url).to_owned();
        Self::new(
            name,
            issuer.map(str::to_owned),
            KeySource::JwksUrl(url.to_owned()),
        )
    }

    /// An issuer with keys given as text: a JWK Set, or one key in any form
    /// `EXTERNAL_JWT_SECRET` accepts (PEM, JWK, HMAC secret).
    pub fn static_keys(issuer: Option<&str>, keys: &str) -> Result<Self, IssuerError> {
        let name = issuer.unwrap_or("default").to_owned();
        let set = parse_key_text(keys).map_err(|source| IssuerError::Keys {
            issuer: name.clone(),
            source,
        })?;
        Ok(Self::new(
            name,
            issuer.map(str::to_owned),
            KeySource::Static(set),
        ))
    }

    /// Sets the label used in logs.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the accepted audiences.
    pub fn with_audiences(mut self, audiences: Vec<String>) -> Self {
        self.audiences = audiences;
        self
    }

    /// Sets the accepted authorized parties (`azp`).
    pub fn with_authorized_parties(mut self, parties: Vec<String>) -> Self {
        self.authorized_parties = parties;
        self
    }

    /// Sets the clock leeway.
    pub fn with_leeway_ms(mut self, leeway_ms: u64) -> Self {
        self.leeway_ms = leeway_ms;
        self
    }

    /// Allows plain-http key URLs on any host.
    pub fn with_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The URL keys or discovery are fetched from, if any.
    pub fn fetch_url(&self) -> Option<String> {
        match &self.keys {
            KeySource::Static(_) => None,
            KeySource::JwksUrl(url) => Some(url.clone()),
            KeySource::Discovery => self.issuer.as_deref().map(discovery_url),
        }
    }

    /// Checks the configuration on its own (URLs, leeway, discovery needs an
    /// issuer).
    pub(crate) fn validate(&self) -> Result<(), IssuerError> {
        if self.leeway_ms > MAX_LEEWAY_MS {
            return Err(IssuerError::LeewayTooLarge(self.leeway_ms / 1000));
        }
        if matches!(self.keys, KeySource::Discovery) && self.issuer.is_none() {
            return Err(IssuerError::DiscoveryNeedsIssuer);
        }
        if let Some(url) = self.fetch_url() {
            check_url(&url, self.allow_insecure_http)?;
        }
        Ok(())
    }
}

/// Reads key text: a JWK Set, or one key in any `EXTERNAL_JWT_SECRET` form.
pub(crate) fn parse_key_text(text: &str) -> Result<KeySet, KeyError> {
    if KeySet::looks_like_set(text) {
        KeySet::parse(text)
    } else {
        Ok(KeySet::single(VerificationKey::parse(text)?))
    }
}

/// `<issuer>/.well-known/openid-configuration` (a trailing `/` of the
/// issuer is dropped first, as OIDC Discovery §4 says).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Whether `host` (no port; IPv6 with or without brackets) is a loopback
/// address or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Checks that `url` may be fetched: `https`, or `http` on a loopback host
/// (any host with `allow_insecure_http`); no credentials in it.
pub fn check_url(url: &str, allow_insecure_http: bool) -> Result<url::Url, IssuerError> {
    let invalid = |reason: &'static str| IssuerError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|_| invalid("not an absolute URL"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("credentials in the URL"));
    }
    let host = parsed.host_str().ok_or_else(|| invalid("no host"))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_insecure_http || is_loopback_host(host) => Ok(parsed),
        "http" => Err(IssuerError::InsecureUrl {
            url: url.to_owned(),
        }),
        _ => Err(invalid("the scheme must be https (or http for loopback)")),
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    /// A Clerk publishable key that does not decode.
    #[error("invalid Clerk publishable key: {0}")]
    PublishableKey(&'static str),
    /// A URL that cannot be used at all.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A plain-http URL on a non-loopback host without `allow_insecure_http`.
    #[error("{url:?} uses plain http on a non-loopback host (set allow_insecure_http to allow it)")]
    InsecureUrl {
        /// The URL.
        url: String,
    },
    /// Static keys that cannot be parsed.
    #[error("issuer {issuer}: {source}")]
    Keys {
        /// The issuer's name.
        issuer: String,
        /// Why.
        source: KeyError,
    },
    /// Two issuers answer for the same `iss`.
    #[error("two issuers are configured for iss {0:?}")]
    DuplicateIssuer(String),
    /// More than one issuer without `issuer`.
    #[error("only one issuer may omit `issuer` (the default issuer)")]
    SeveralDefaultIssuers,
    /// A default issuer together with `EXTERNAL_JWT_SECRET`: both would
    /// verify tokens of unknown issuers.
    #[error("an issuer without `issuer` cannot be combined with EXTERNAL_JWT_SECRET")]
    DefaultIssuerConflict,
    /// Discovery without an issuer URL.
    #[error("OIDC discovery needs the issuer URL")]
    DiscoveryNeedsIssuer,
    /// A leeway above [`MAX_LEEWAY_MS`].
    #[error("a clock leeway of {0} s is too large (at most 300 s)")]
    LeewayTooLarge(u64),
}

impl IssuerError {
    /// A stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PublishableKey(_) => "publishable_key",
            Self::InvalidUrl { .. } => "invalid_url",
            Self::InsecureUrl { .. } => "insecure_url",
            Self::Keys { .. } => "invalid_keys",
            Self::DuplicateIssuer(_) => "duplicate_issuer",
            Self::SeveralDefaultIssuers => "several_default_issuers",
            Self::DefaultIssuerConflict => "default_issuer_conflict",
            Self::DiscoveryNeedsIssuer => "discovery_needs_issuer",
            Self::LeewayTooLarge(_) => "leeway_too_large",
        }
    }
}

/// `aud` contains one of `audiences` (a string, or an array with strings).
pub(crate) fn audience_matches(claims: &Map<String, Value>, audiences: &[String]) -> bool {
    let accepted = |aud: &Value| {
        aud.as_str()
            .is_some_and(|a| audiences.iter().any(|x| x == a))
    };
    match claims.get("aud") {
        Some(Value::Array(items)) => items.iter().any(accepted),
        Some(aud) => accepted(aud),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn http_only_for_loopback() {
        assert!(check_url("https://clerk.example.com/.well-known/jwks.json", false).is_ok());
        for url in [
            "http://127.0.0.1:6544/jwks",
            "http://127.9.9.9/jwks",
            "http://localhost:1/jwks",
            "http://[::1]:80/jwks",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
        let refused = [
            ("http://example.com/jwks", "insecure_url"),
            ("http://10.0.0.1/jwks", "insecure_url"),
            ("http://127.0.0.1.evil.com/jwks", "insecure_url"),
            ("ftp://example.com/jwks", "invalid_url"),
            ("https://user:pw@example.com/jwks", "invalid_url"),
            ("/relative", "invalid_url"),
        ];
        for (url, code) in refused {
            assert_eq!(check_url(url, false).unwrap_err().code(), code, "{url}");
        }
        assert!(check_url("http://example.com/jwks", true).is_ok());
    }

    #[test]
    fn discovery_url_drops_the_trailing_slash() {
        assert_eq!(
            discovery_url("https://tenant.auth0.com/"),
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
    }

    #[test]
    fn validation() {
        assert_eq!(
            IssuerConfig::oidc("http://issuer.example.com")
                .validate()
                .unwrap_err()
                .code(),
            "insecure_url"
        );
        let mut no_issuer = IssuerConfig::oidc("https://a.example");
        no_issuer.issuer = None;
        assert_eq!(
            no_issuer.validate().unwrap_err().code(),
            "discovery_needs_issuer"
        );
        let leeway = IssuerConfig::oidc("https://a.example").with_leeway_ms(301_000);
        assert_eq!(leeway.validate().unwrap_err().code(), "leeway_too_large");
        let bad_keys = IssuerConfig::static_keys(None, r#"{"keys":[]}"#).unwrap_err();
        assert_eq!(bad_keys.code(), "invalid_keys");
    }

    #[test]
    fn audiences() {
        let claims = |v: Value| v.as_object().cloned().unwrap();
        let want = vec!["api".to_owned()];
        assert!(audience_matches(&claims(json!({"aud": "api"})), &want));
        assert!(audience_matches(
            &claims(json!({"aud": ["x", "api"]})),
            &want
        ));
        assert!(!audience_matches(&claims(json!({"aud": ["x"]})), &want));
        assert!(!audience_matches(&claims(json!({"aud": 1})), &want));
        assert!(!audience_matches(&claims(json!({})), &want));
    }
}
