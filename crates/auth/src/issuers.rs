//! [`Issuers`]: the configured issuers, selected by a token's `iss`, and
//! the checks an issuer token passes.
//!
//! Order of checks for an issuer token (cheap first; nothing touches the
//! network before the header is sound and the issuer is known):
//!
//! 1. exact `iss` → issuer (else the default issuer, else the Triplit rule);
//! 2. header: JSON, `crit` as jose allows it, a string `alg` the crate can
//!    verify at all, a `kid` of at most 256 bytes;
//! 3. the issuer's key for `(kid, alg)`: its static set, or its cache
//!    (which may refetch, see module `cache`);
//! 4. the signature, with the algorithm pinned by the key's family and the
//!    JWK's `alg`;
//! 5. claims: Clerk machine tokens refused; `iat`/`nbf`/`exp` with the
//!    issuer's leeway, `exp` required, `iat` not in the future; `sub` a
//!    non-empty string; `aud` and `azp` when configured.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cache::{FetchPolicy, RemoteKeys, RemoteSource};
use crate::error::{AuthError, KeySlot, shorten};
use crate::fetch::{FetchError, HttpFetcher};
use crate::issuer::{IssuerConfig, IssuerError, KeySource, audience_matches};
use crate::jwks::KeySet;
use crate::jws::{self, Compact};
use crate::verify::{TOKEN_TYPE_CLAIM, VerifiedToken, check_times};

/// The longest `kid` looked up.
const MAX_KID_BYTES: usize = 256;

/// Clerk's header `cat` for machine-to-machine tokens, which are signed by
/// the same instance key as session tokens.
const CLERK_M2M_CATEGORY: &str = "cl_B7d4PD333AAA";

#[derive(Debug)]
enum Keys {
    Static(Arc<KeySet>),
    Remote(Box<RemoteKeys>),
}

#[derive(Debug)]
struct Issuer {
    config: IssuerConfig,
    keys: Keys,
}

/// The configured issuers, each with its own keys.
#[derive(Debug, Clone, Default)]
pub struct Issuers {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    all: Vec<Issuer>,
    by_iss: HashMap<String, usize>,
    default: Option<usize>,
}

/// The outcome of warming up one remote issuer's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefetchReport {
    /// The issuer's name.
    pub issuer: String,
    /// The number of keys fetched, or why it failed.
    pub result: Result<usize, FetchError>,
}

impl Issuers {
    /// Builds the issuers; `fetcher` and `policy` serve the remote ones.
    pub fn new(
        configs: Vec<IssuerConfig>,
        fetcher: Arc<dyn HttpFetcher>,
        policy: FetchPolicy,
    ) -> Result<Self, IssuerError> {
        let mut inner = Inner::default();
        for config in configs {
            config.validate()?;
            let index = inner.all.len();
            match &config.issuer {
                Some(iss) => {
                    if inner.by_iss.insert(iss.clone(), index).is_some() {
                        return Err(IssuerError::DuplicateIssuer(iss.clone()));
                    }
                }
                None if inner.default.is_some() => return Err(IssuerError::SeveralDefaultIssuers),
                None => inner.default = Some(index),
            }
            let remote = |source| {
                Keys::Remote(Box::new(RemoteKeys::new(
                    config.name.clone(),
                    source,
                    config.allow_insecure_http,
                    fetcher.clone(),
                    policy,
                )))
            };
            let keys = match &config.keys {
                KeySource::Static(set) => Keys::Static(Arc::new(set.clone())),
                KeySource::JwksUrl(url) => remote(RemoteSource::Jwks(url.clone())),
                KeySource::Discovery => {
                    // `validate` guarantees an issuer for discovery.
                    remote(RemoteSource::Discovery(
                        config.issuer.clone().unwrap_or_default(),
                    ))
                }
            };
            inner.all.push(Issuer { config, keys });
        }
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Whether no issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.inner.all.is_empty()
    }

    /// The number of configured issuers.
    pub fn len(&self) -> usize {
        self.inner.all.len()
    }

    /// Whether an issuer without `issuer` (the default issuer) exists.
    pub fn has_default(&self) -> bool {
        self.inner.default.is_some()
    }

    /// The configurations, in order.
    pub fn configs(&self) -> impl Iterator<Item = &IssuerConfig> {
        self.inner.all.iter().map(|issuer| &issuer.config)
    }

    /// How many fetch attempts the issuer named `name` has made (for tests
    /// and diagnostics); `None` for unknown or static issuers.
    pub fn fetch_attempts(&self, name: &str) -> Option<u64> {
        self.inner.all.iter().find_map(|issuer| match &issuer.keys {
            Keys::Remote(remote) if issuer.config.name == name => Some(remote.fetch_attempts()),
            _ => None,
        })
    }

    /// Fetches every remote issuer's keys once (single-flight with
    /// verifications), so configuration problems show at start.
    pub async fn prefetch(&self, now_ms: u64) -> Vec<PrefetchReport> {
        let mut reports = Vec::new();
        for issuer in &self.inner.all {
            if let Keys::Remote(remote) = &issuer.keys {
                reports.push(PrefetchReport {
                    issuer: issuer.config.name.clone(),
                    result: remote.prefetch(now_ms).await,
                });
            }
        }
        reports
    }

    /// The issuer for an unverified `iss`: the exact match, else the default.
    fn select(&self, iss: Option<&str>) -> Option<&Issuer> {
        let exact = iss.and_then(|iss| self.inner.by_iss.get(iss));
        exact
            .or(self.inner.default.as_ref())
            .and_then(|&index| self.inner.all.get(index))
    }

    /// Whether an issuer answers for tokens with this unverified `iss`.
    pub(crate) fn answers_for(&self, iss: Option<&str>) -> bool {
        self.select(iss).is_some()
    }

    /// Verifies an external token with the issuer that answers for its
    /// `iss` ([`answers_for`](Self::answers_for) must hold).
    pub(crate) async fn verify(
        &self,
        parts: &Compact<'_>,
        claims: Map<String, Value>,
        now_ms: u64,
    ) -> Result<VerifiedToken, AuthError> {
        let iss = claims.get("iss").and_then(Value::as_str);
        match self.select(iss) {
            Some(issuer) => issuer.verify(parts, claims, now_ms).await,
            None => Err(AuthError::UnknownIssuer {
                iss: iss.map(shorten),
            }),
        }
    }
}

impl Issuer {
    async fn verify(
        &self,
        parts: &Compact<'_>,
        claims: Map<String, Value>,
        now_ms: u64,
    ) -> Result<VerifiedToken, AuthError> {
        let header = jws::decode_header(parts)?;
        jws::check_crit(&header)?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) if !alg.is_empty() => alg.as_str(),
            _ => {
                return Err(AuthError::InvalidHeader {
                    reason: "JWS \"alg\" (Algorithm) Header Parameter missing or invalid".into(),
                });
            }
        };
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) if kid.len() <= MAX_KID_BYTES => Some(kid.as_str()),
            Some(other) => return Err(self.unknown_kid(other.as_str())),
        };
        let set = match &self.keys {
            Keys::Static(set) => set.clone(),
            Keys::Remote(remote) => remote.keys_for(kid, alg, now_ms).await?,
        };
        let entry = set.select(kid, alg).ok_or_else(|| self.unknown_kid(kid))?;
        jws::verify_signature_pinned(&entry.key, entry.alg.as_deref(), parts)?;
        if self.config.clerk
            && header.get("cat").and_then(Value::as_str) == Some(CLERK_M2M_CATEGORY)
        {
            return Err(AuthError::TokenClass {
                reason: "Clerk machine tokens are not session tokens",
            });
        }
        let expires_at_ms = self.check_claims(&claims, now_ms)?;
        Ok(VerifiedToken {
            token_type: claims
                .get(TOKEN_TYPE_CLAIM)
                .and_then(Value::as_str)
                .map(str::to_owned),
            claims,
            expires_at_ms: Some(expires_at_ms),
            leeway_ms: self.config.leeway_ms,
            verified_with: KeySlot::Issuer,
            issuer: Some(self.config.name.clone()),
        })
    }

    fn unknown_kid(&self, kid: Option<&str>) -> AuthError {
        AuthError::UnknownKid {
            issuer: self.config.name.clone(),
            kid: kid.map(shorten),
        }
    }

    /// The claim rules; returns `expires_at_ms`.
    fn check_claims(&self, claims: &Map<String, Value>, now_ms: u64) -> Result<u64, AuthError> {
        let leeway = self.config.leeway_ms;
        let expires_at_ms =
            check_times(claims, now_ms, leeway)?.ok_or(AuthError::MissingClaim { claim: "exp" })?;
        if let Some(iat) = claims.get("iat").and_then(Value::as_f64) {
            let now = (now_ms / 1000) as f64;
            if iat > now + leeway as f64 / 1000.0 {
                return Err(AuthError::IssuedInFuture { iat });
            }
        }
        if let Some(expected) = &self.config.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(expected.as_str())
        {
            return Err(AuthError::UnknownIssuer {
                iss: claims.get("iss").and_then(Value::as_str).map(shorten),
            });
        }
        if claims
            .get("sub")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(AuthError::MissingClaim { claim: "sub" });
        }
        if !self.config.audiences.is_empty() && !audience_matches(claims, &self.config.audiences) {
            return Err(AuthError::Audience);
        }
        let parties = &self.config.authorized_parties;
        if !parties.is_empty()
            && !claims
                .get("azp")
                .and_then(Value::as_str)
                .is_some_and(|azp| parties.iter().any(|p| p == azp))
        {
            return Err(AuthError::AuthorizedParty);
        }
        Ok(expires_at_ms)
    }
}
