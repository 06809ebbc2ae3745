//! [`TokenVerifier`]: which secret or issuer verifies a token, and the
//! Triplit claim checks.

use serde_json::{Map, Value};

use crate::algorithm::KeyFamily;
use crate::error::{AuthError, KeyError, KeySlot, shorten};
use crate::issuer::IssuerError;
use crate::issuers::{Issuers, PrefetchReport};
use crate::jwks::KeySet;
use crate::jws;
use crate::key::VerificationKey;

/// The claim that marks Triplit's own tokens.
pub const TOKEN_TYPE_CLAIM: &str = "x-triplit-token-type";

/// The `x-triplit-token-type` values verified with `JWT_SECRET`. Any other
/// token (no claim, or another value) is an *external* token.
pub const TRIPLIT_TOKEN_TYPES: [&str; 3] = ["test", "anon", "secret"];

/// How `EXTERNAL_JWT_SECRET` is configured.
#[derive(Debug, Clone)]
enum External {
    /// Not set: external tokens fall back to `JWT_SECRET`.
    Unset,
    /// Set to the empty string. Upstream's `externalSecret ?? jwtSecret`
    /// keeps the `""`, and `!secretKey` then refuses every external token.
    Empty,
    /// A key.
    Key(VerificationKey),
    /// A JWK Set (`{"keys": [...]}`): the key is picked by the token's `kid`.
    Set(KeySet),
}

/// Verifies bearer tokens the way a Triplit 1.x server does.
///
/// Built once from the configured secrets and issuers; cheap to clone
/// (clones share the issuers' key caches) and `Send + Sync`.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    jwt: Option<VerificationKey>,
    external: External,
    leeway_ms: u64,
    issuers: Issuers,
}

/// A token whose signature and time claims were checked.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// All the payload's claims, in the token's order. They become Triplit's
    /// session variables (`$token.*`, `$session.*`).
    pub claims: Map<String, Value>,
    /// The `x-triplit-token-type` claim, when it is a string.
    pub token_type: Option<String>,
    /// `exp × 1000` (rounded down), when the token has an `exp`. A token
    /// without `exp` never expires.
    pub expires_at_ms: Option<u64>,
    /// The clock leeway the token was verified with: it stays acceptable
    /// until `expires_at_ms + leeway_ms` ([`Self::usable_until_ms`]).
    pub leeway_ms: u64,
    /// The secret whose key verified the signature ([`KeySlot::Issuer`] for
    /// a configured issuer).
    pub verified_with: KeySlot,
    /// The name of the configured issuer that verified the token, if any.
    pub issuer: Option<String>,
}

impl VerifiedToken {
    /// Whether this is a service token (`x-triplit-token-type: secret`),
    /// which bypasses permissions.
    pub fn is_service(&self) -> bool {
        self.token_type.as_deref() == Some("secret")
    }

    /// Whether this is one of Triplit's own tokens (`anon`, `secret`,
    /// `test`) rather than an external one.
    pub fn is_triplit_token(&self) -> bool {
        is_triplit_type(self.token_type.as_deref())
    }

    /// Until when (Unix ms) the token is usable on an open connection: its
    /// `exp` plus the leeway it was verified with, the same moment from
    /// which verifying it again would fail. With Triplit's rule (no leeway)
    /// that is `exp × 1000`, as upstream; a Clerk token gets the issuer's
    /// 5 s, so a server clock slightly ahead of the browser's does not
    /// close the socket before the client's refresh (one second before
    /// `exp`, by the client's clock) arrives.
    pub fn usable_until_ms(&self) -> Option<u64> {
        self.expires_at_ms
            .map(|exp| exp.saturating_add(self.leeway_ms))
    }

    /// Whether the token counts as expired at `now_ms` on an open
    /// connection. Upstream tests `exp * 1000 < Date.now()` on every
    /// message, so a token is still usable during its last millisecond.
    pub fn is_expired_at(&self, now_ms: u64) -> bool {
        self.usable_until_ms().is_some_and(|until| until < now_ms)
    }
}

fn is_triplit_type(token_type: Option<&str>) -> bool {
    token_type.is_some_and(|t| TRIPLIT_TOKEN_TYPES.contains(&t))
}

impl TokenVerifier {
    /// Builds a verifier from Triplit's `JWT_SECRET` and
    /// `EXTERNAL_JWT_SECRET`.
    ///
    /// Each secret is an HMAC string, a PEM public key or one JWK as JSON
    /// (see [`VerificationKey::parse`]); a bad one is reported now, with the
    /// variable's name, rather than on every request as upstream does.
    ///
    /// `EXTERNAL_JWT_SECRET` may also be a JWK Set (`{"keys": [...]}`),
    /// which upstream cannot use: its key is then picked by the token's
    /// `kid`.
    ///
    /// `None` means unset. `Some("")` keeps upstream's meaning: an empty
    /// `JWT_SECRET` verifies nothing, and an empty `EXTERNAL_JWT_SECRET`
    /// refuses external tokens instead of falling back to `JWT_SECRET`.
    pub fn new(jwt_secret: Option<&str>, external_secret: Option<&str>) -> Result<Self, KeyError> {
        let jwt = match jwt_secret {
            None | Some("") => None,
            Some(secret) => {
                Some(VerificationKey::parse(secret).map_err(|e| e.in_slot(KeySlot::JwtSecret))?)
            }
        };
        let external = match external_secret {
            None => External::Unset,
            Some("") => External::Empty,
            Some(secret) if KeySet::looks_like_set(secret) => External::Set(
                KeySet::parse(secret).map_err(|e| e.in_slot(KeySlot::ExternalJwtSecret))?,
            ),
            Some(secret) => External::Key(
                VerificationKey::parse(secret)
                    .map_err(|e| e.in_slot(KeySlot::ExternalJwtSecret))?,
            ),
        };
        Ok(Self {
            jwt,
            external,
            leeway_ms: 0,
            issuers: Issuers::default(),
        })
    }

    /// Adds configured issuers. An external token whose `iss` equals an
    /// issuer's `issuer` is verified by that issuer alone; the default
    /// issuer (one without `issuer`) takes external tokens whose `iss`
    /// matches none; the rest follow the Triplit rule
    /// (`EXTERNAL_JWT_SECRET`, else `JWT_SECRET`).
    ///
    /// A default issuer cannot be combined with `EXTERNAL_JWT_SECRET`.
    pub fn with_issuers(mut self, issuers: Issuers) -> Result<Self, IssuerError> {
        if issuers.has_default() && !matches!(self.external, External::Unset) {
            return Err(IssuerError::DefaultIssuerConflict);
        }
        self.issuers = issuers;
        Ok(self)
    }

    /// The configured issuers.
    pub fn issuers(&self) -> &Issuers {
        &self.issuers
    }

    /// Fetches the keys of every remote issuer once; see
    /// [`Issuers::prefetch`].
    pub async fn prefetch(&self, now_ms: u64) -> Vec<PrefetchReport> {
        self.issuers.prefetch(now_ms).await
    }

    /// Allows `leeway_ms` of clock skew on `exp` and `nbf` of tokens that
    /// follow the Triplit rule (issuers have their own leeway). The default,
    /// like upstream's, is zero.
    pub fn with_leeway_ms(mut self, leeway_ms: u64) -> Self {
        self.leeway_ms = leeway_ms;
        self
    }

    /// The configured clock-skew allowance.
    pub fn leeway_ms(&self) -> u64 {
        self.leeway_ms
    }

    /// The family of the `JWT_SECRET` key, if one is configured.
    pub fn jwt_key_family(&self) -> Option<KeyFamily> {
        self.jwt.as_ref().map(VerificationKey::family)
    }

    /// The family of the key external tokens are verified with: the
    /// `EXTERNAL_JWT_SECRET` key, or the `JWT_SECRET` one it falls back to.
    pub fn external_key_family(&self) -> Option<KeyFamily> {
        match &self.external {
            External::Set(_) => None,
            _ => self
                .key_for(false, None)
                .ok()
                .map(|(key, _, _)| key.family()),
        }
    }

    /// The key for a Triplit (`true`) or external (`false`) token; for a JWK
    /// Set, the member for the token's header.
    fn key_for(
        &self,
        triplit: bool,
        parts: Option<&jws::Compact<'_>>,
    ) -> Result<(&VerificationKey, Option<&str>, KeySlot), AuthError> {
        let jwt = || {
            self.jwt
                .as_ref()
                .map(|key| (key, None, KeySlot::JwtSecret))
                .ok_or(AuthError::NoSecret {
                    slot: KeySlot::JwtSecret,
                })
        };
        if triplit {
            return jwt();
        }
        match &self.external {
            External::Unset => jwt(),
            External::Empty => Err(AuthError::NoSecret {
                slot: KeySlot::ExternalJwtSecret,
            }),
            External::Key(key) => Ok((key, None, KeySlot::ExternalJwtSecret)),
            External::Set(set) => {
                let header = match parts {
                    Some(parts) => jws::decode_header(parts)?,
                    None => Map::new(),
                };
                let kid = header.get("kid").and_then(Value::as_str);
                let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
                let entry = set.select(kid, alg).ok_or_else(|| AuthError::UnknownKid {
                    issuer: KeySlot::ExternalJwtSecret.env_name().to_owned(),
                    kid: kid.map(shorten),
                })?;
                Ok((&entry.key, entry.alg.as_deref(), KeySlot::ExternalJwtSecret))
            }
        }
    }

    /// Verifies `token` at `now_ms` (Unix milliseconds) and returns its
    /// claims.
    ///
    /// The steps follow upstream's `parseAndValidateToken`: decode the
    /// payload; pick `JWT_SECRET` for `anon`/`secret`/`test` tokens and
    /// `EXTERNAL_JWT_SECRET` (else `JWT_SECRET`) for the rest; check the
    /// header, the algorithm against the key's family and the signature; then
    /// `iat` (a number if present), `nbf` (not after now) and `exp` (after
    /// now), in whole seconds (`floor(now_ms / 1000)`) with the configured
    /// leeway. No `iss`, `aud` or `sub` rules apply, and `exp` is optional.
    ///
    /// Before the Triplit rule, an external token whose `iss` names a
    /// configured issuer (or any external token, when a default issuer is
    /// configured) goes to that issuer instead: its keys (possibly fetched
    /// now, which is why this is `async`), `exp` required, `sub` required,
    /// the issuer's leeway, `aud`/`azp` when configured (module `issuers`).
    /// When issuers are configured and the token falls back to `JWT_SECRET`
    /// (no `EXTERNAL_JWT_SECRET`) with a key or algorithm of another family,
    /// the refusal is [`AuthError::UnknownIssuer`], which says more than a
    /// key mismatch.
    pub async fn verify(&self, token: &str, now_ms: u64) -> Result<VerifiedToken, AuthError> {
        if token.is_empty() {
            return Err(AuthError::NoToken);
        }
        let parts = jws::split(token)?;
        let claims = jws::decode_payload(&parts)?;
        let token_type = claims
            .get(TOKEN_TYPE_CLAIM)
            .and_then(Value::as_str)
            .map(str::to_owned);
        let triplit = is_triplit_type(token_type.as_deref());
        if !triplit && !self.issuers.is_empty() {
            let iss = claims.get("iss").and_then(Value::as_str);
            if self.issuers.answers_for(iss) {
                return self.issuers.verify(&parts, claims, now_ms).await;
            }
            let iss = iss.map(shorten);
            return self
                .verify_triplit_rule(&parts, claims, token_type, false, now_ms)
                .map_err(|e| match (&self.external, &e) {
                    (
                        External::Unset,
                        AuthError::NoSecret { .. }
                        | AuthError::KeyMismatch { .. }
                        | AuthError::AlgorithmNotAllowed { .. },
                    ) => AuthError::UnknownIssuer { iss },
                    _ => e,
                });
        }
        self.verify_triplit_rule(&parts, claims, token_type, triplit, now_ms)
    }

    /// Triplit's rule: the secret for the token class, signature, times.
    fn verify_triplit_rule(
        &self,
        parts: &jws::Compact<'_>,
        claims: Map<String, Value>,
        token_type: Option<String>,
        triplit: bool,
        now_ms: u64,
    ) -> Result<VerifiedToken, AuthError> {
        let (key, pinned_alg, slot) = self.key_for(triplit, Some(parts))?;
        jws::verify_signature_pinned(key, pinned_alg, parts)?;
        let expires_at_ms = check_times(&claims, now_ms, self.leeway_ms)?;
        Ok(VerifiedToken {
            claims,
            token_type,
            expires_at_ms,
            leeway_ms: self.leeway_ms,
            verified_with: slot,
            issuer: None,
        })
    }
}

/// A time claim: absent, or a number (anything else is refused, `null`
/// included, as jose tests `!== undefined`).
fn time_claim(claims: &Map<String, Value>, claim: &'static str) -> Result<Option<f64>, AuthError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or(AuthError::InvalidClaim { claim }),
        Some(_) => Err(AuthError::InvalidClaim { claim }),
    }
}

/// jose's claim-set time rules; returns `expires_at_ms`.
pub(crate) fn check_times(
    claims: &Map<String, Value>,
    now_ms: u64,
    leeway_ms: u64,
) -> Result<Option<u64>, AuthError> {
    // jose works in whole seconds: `Math.floor(Date.now() / 1000)`.
    let now = (now_ms / 1000) as f64;
    let tolerance = leeway_ms as f64 / 1000.0;
    time_claim(claims, "iat")?;
    if let Some(nbf) = time_claim(claims, "nbf")?
        && nbf > now + tolerance
    {
        return Err(AuthError::NotYetValid { nbf });
    }
    let Some(exp) = time_claim(claims, "exp")? else {
        return Ok(None);
    };
    if exp <= now - tolerance {
        return Err(AuthError::Expired { exp });
    }
    // Saturating: a far-future `exp` is "never" in practice.
    Ok(Some((exp * 1000.0).floor() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn exp_boundary_is_whole_seconds() {
        let c = claims(json!({"exp": 100}));
        assert_eq!(check_times(&c, 99_999, 0), Ok(Some(100_000)));
        assert_eq!(
            check_times(&c, 100_000, 0),
            Err(AuthError::Expired { exp: 100.0 })
        );
        assert_eq!(check_times(&c, 100_500, 1000), Ok(Some(100_000)));
        assert!(check_times(&c, 101_000, 1000).is_err());
    }

    #[test]
    fn nbf_boundary_is_whole_seconds() {
        let c = claims(json!({"nbf": 100}));
        assert_eq!(check_times(&c, 100_000, 0), Ok(None));
        assert_eq!(
            check_times(&c, 99_999, 0),
            Err(AuthError::NotYetValid { nbf: 100.0 })
        );
        assert_eq!(check_times(&c, 99_000, 1000), Ok(None));
    }

    #[test]
    fn nbf_is_checked_before_exp_and_types_before_times() {
        let c = claims(json!({"nbf": 200, "exp": 50}));
        assert_eq!(
            check_times(&c, 100_000, 0).unwrap_err().code(),
            "not_yet_valid"
        );
        for bad in [
            json!({"iat": "1"}),
            json!({"exp": null}),
            json!({"nbf": [1]}),
        ] {
            assert_eq!(
                check_times(&claims(bad), 0, 0).unwrap_err().code(),
                "invalid_claim"
            );
        }
        let fractional = claims(json!({"exp": 100.0005, "iat": 1.5}));
        assert_eq!(check_times(&fractional, 100_000, 0), Ok(Some(100_000)));
        let huge = claims(json!({"exp": 1e300}));
        assert_eq!(check_times(&huge, 0, 0), Ok(Some(u64::MAX)));
    }

    #[test]
    fn socket_expiry_uses_milliseconds() {
        let mut token = VerifiedToken {
            claims: Map::new(),
            token_type: None,
            expires_at_ms: Some(5_000),
            leeway_ms: 0,
            verified_with: KeySlot::JwtSecret,
            issuer: None,
        };
        assert_eq!(token.usable_until_ms(), Some(5_000));
        assert!(!token.is_expired_at(5_000));
        assert!(token.is_expired_at(5_001));
        // With a leeway the socket stays usable as long as the token verifies.
        token.leeway_ms = 5_000;
        assert_eq!(token.usable_until_ms(), Some(10_000));
        assert!(!token.is_expired_at(10_000));
        assert!(token.is_expired_at(10_001));
        token.expires_at_ms = Some(u64::MAX);
        assert_eq!(token.usable_until_ms(), Some(u64::MAX));
        token.expires_at_ms = None;
        assert!(!token.is_expired_at(u64::MAX));
    }

    #[test]
    fn secrets_are_chosen_by_token_type() {
        let both = TokenVerifier::new(Some("a"), Some("b")).unwrap();
        assert_eq!(both.key_for(true, None).unwrap().2, KeySlot::JwtSecret);
        assert_eq!(
            both.key_for(false, None).unwrap().2,
            KeySlot::ExternalJwtSecret
        );
        let fallback = TokenVerifier::new(Some("a"), None).unwrap();
        assert_eq!(fallback.key_for(false, None).unwrap().2, KeySlot::JwtSecret);
        let empty_external = TokenVerifier::new(Some("a"), Some("")).unwrap();
        assert_eq!(
            empty_external.key_for(false, None).unwrap_err().code(),
            "no_secret"
        );
        assert!(empty_external.external_key_family().is_none());
        let empty_jwt = TokenVerifier::new(Some(""), Some("b")).unwrap();
        assert_eq!(
            empty_jwt.key_for(true, None).unwrap_err().code(),
            "no_secret"
        );
        assert!(empty_jwt.jwt_key_family().is_none());
        assert!(!is_triplit_type(Some("foo")));
        assert!(is_triplit_type(Some("test")));
    }

    #[test]
    fn verifier_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TokenVerifier>();
    }
}
