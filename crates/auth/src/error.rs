//! Errors: why a token was refused ([`AuthError`]) and why a configured
//! secret could not be turned into a key ([`KeyError`]).
//!
//! An [`AuthError`] carries two vocabularies:
//!
//! - a stable, Ferry-side reason [`code`](AuthError::code) for logs, metrics
//!   and tests (`"expired"`, `"bad_signature"`, …);
//! - the error Triplit 1.x would have produced for the same token:
//!   [`triplit_name`](AuthError::triplit_name), [`status`](AuthError::status),
//!   [`base_message`](AuthError::base_message) and
//!   [`context`](AuthError::context), which the HTTP and WebSocket layers put
//!   on the wire unchanged (see [`AuthError::triplit_json`]).

use std::fmt;

use serde_json::{Map, Value};

use crate::algorithm::KeyFamily;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    /// The token was empty.
    #[error("no token provided")]
    NoToken,
    /// No secret is configured for this kind of token.
    #[error("no secret configured to verify this token ({slot} is unset or empty)")]
    NoSecret {
        /// The secret that would have been used.
        slot: KeySlot,
    },
    /// The payload could not be decoded as a JWT claims set (not three
    /// `.`-separated parts, payload not JSON, or not a JSON object).
    #[error("token could not be decoded as a JWT: {reason}")]
    Malformed {
        /// What was wrong, in the words of jose's `decodeJwt`.
        reason: &'static str,
    },
    /// The protected header is not JSON, lacks `alg`, or uses `crit` in a way
    /// that is refused.
    #[error("invalid token header: {reason}")]
    InvalidHeader {
        /// What was wrong (jose's wording).
        reason: String,
    },
    /// The header's `alg` is not a signature algorithm that can be used at
    /// all here (`none`, an unknown name).
    #[error("algorithm {alg:?} is not allowed for the {family} key")]
    AlgorithmNotAllowed {
        /// The `alg` from the token header.
        alg: String,
        /// The family of the key that was selected.
        family: KeyFamily,
        /// jose's wording of the refusal.
        detail: String,
    },
    /// The header's `alg` is a real JWS algorithm of another key family (or
    /// curve) than the configured key: for example an HS256 token against an
    /// RSA key, the classic key-confusion attack.
    #[error("algorithm {alg} does not fit the {family} key")]
    KeyMismatch {
        /// The `alg` from the token header.
        alg: String,
        /// The family of the key that was selected.
        family: KeyFamily,
        /// jose's wording of the refusal.
        detail: String,
    },
    /// The signature does not verify with the selected key.
    #[error("signature verification failed")]
    BadSignature,
    /// A registered time claim is present but not a number.
    #[error("\"{claim}\" claim must be a number")]
    InvalidClaim {
        /// `"iat"`, `"nbf"` or `"exp"`.
        claim: &'static str,
    },
    /// `exp` is at or before the current time.
    #[error("token expired (exp {exp})")]
    Expired {
        /// The token's `exp`, in seconds.
        exp: f64,
    },
    /// `nbf` is after the current time.
    #[error("token not valid yet (nbf {nbf})")]
    NotYetValid {
        /// The token's `nbf`, in seconds.
        nbf: f64,
    },
    /// An issuer token's `iat` is after the current time (plus leeway).
    #[error("token issued in the future (iat {iat})")]
    IssuedInFuture {
        /// The token's `iat`, in seconds.
        iat: f64,
    },
    /// A claim an issuer token must carry is missing or not of its type
    /// (`exp` a number, `sub` a non-empty string).
    #[error("\"{claim}\" claim is required")]
    MissingClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// The token's `iss` names no configured issuer, and no Triplit-style
    /// secret can verify it.
    #[error("no configured issuer for iss {iss:?}")]
    UnknownIssuer {
        /// The token's unverified `iss`, shortened for logs.
        iss: Option<String>,
    },
    /// No key of the selected issuer fits the token's `kid` (and `alg`),
    /// even after refetching the issuer's keys (when allowed).
    #[error("issuer {issuer} has no key for kid {kid:?}")]
    UnknownKid {
        /// The configured issuer's name.
        issuer: String,
        /// The token's `kid`, shortened for logs.
        kid: Option<String>,
    },
    /// The issuer's keys could not be fetched (and none are cached).
    #[error("the keys of issuer {issuer} are unavailable ({reason})")]
    JwksUnavailable {
        /// The configured issuer's name.
        issuer: String,
        /// The fetch error's code ([`FetchError::code`](crate::FetchError::code)).
        reason: &'static str,
    },
    /// The token's `aud` does not name a configured audience.
    #[error("audience not accepted")]
    Audience,
    /// The token's `azp` (Clerk's authorized party: the browser origin) is
    /// missing or not in the configured list.
    #[error("authorized party not accepted")]
    AuthorizedParty,
    /// A token of a class the issuer refuses (a Clerk machine token).
    #[error("token class refused: {reason}")]
    TokenClass {
        /// What was refused.
        reason: &'static str,
    },
}

/// Shortens an untrusted token field for logs and errors (at most 64
/// characters, control characters replaced).
pub(crate) fn shorten(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if value.chars().count() > 64 {
        out.push('…');
    }
    out
}

impl AuthError {
    /// A stable reason code, for logs, metrics and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoToken => "no_token",
            Self::NoSecret { .. } => "no_secret",
            Self::Malformed { .. } => "malformed",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::BadSignature => "bad_signature",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::IssuedInFuture { .. } => "issued_in_future",
            Self::MissingClaim { .. } => "missing_claim",
            Self::UnknownIssuer { .. } => "unknown_issuer",
            Self::UnknownKid { .. } => "unknown_kid",
            Self::JwksUnavailable { .. } => "jwks_unavailable",
            Self::Audience => "audience",
            Self::AuthorizedParty => "azp",
            Self::TokenClass { .. } => "token_class",
        }
    }

    /// The configured issuer the refusal is about, when one was selected.
    pub fn issuer(&self) -> Option<&str> {
        match self {
            Self::UnknownKid { issuer, .. } | Self::JwksUnavailable { issuer, .. } => Some(issuer),
            _ => None,
        }
    }

    /// The `name` of the error Triplit returns for this case.
    pub fn triplit_name(&self) -> &'static str {
        match self {
            Self::NoToken | Self::NoSecret { .. } | Self::JwksUnavailable { .. } => {
                "TokenVerificationError"
            }
            Self::Malformed { .. } => "InvalidTokenPayloadError",
            _ => "InvalidTokenSignatureError",
        }
    }

    /// The HTTP status Triplit attaches to the error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed { .. } => 400,
            _ => 401,
        }
    }

    /// Triplit's fixed `baseMessage` for the error class.
    pub fn base_message(&self) -> &'static str {
        match self {
            Self::NoToken | Self::NoSecret { .. } | Self::JwksUnavailable { .. } => {
                "Error verifying token."
            }
            Self::Malformed { .. } => "The token payload is invalid.",
            _ => "The signature on your token could not be verified successfully.",
        }
    }

    /// Triplit's `contextMessage`: the detail upstream passes to the error
    /// (for signature errors, the message of the jose exception).
    pub fn context(&self) -> Option<String> {
        Some(match self {
            Self::NoToken => "No token provided".to_owned(),
            Self::NoSecret { .. } => "No secret provided for token verification".to_owned(),
            Self::Malformed { .. } => "Token could not be decoded as a valid JWT".to_owned(),
            Self::InvalidHeader { reason } => reason.clone(),
            Self::AlgorithmNotAllowed { detail, .. } | Self::KeyMismatch { detail, .. } => {
                detail.clone()
            }
            Self::BadSignature => "signature verification failed".to_owned(),
            Self::InvalidClaim { claim } => format!("\"{claim}\" claim must be a number"),
            Self::Expired { .. } => "\"exp\" claim timestamp check failed".to_owned(),
            Self::NotYetValid { .. } => "\"nbf\" claim timestamp check failed".to_owned(),
            Self::IssuedInFuture { .. } => "\"iat\" claim timestamp check failed".to_owned(),
            Self::MissingClaim { claim } => format!("missing required \"{claim}\" claim"),
            Self::UnknownIssuer { .. } => "\"iss\" claim names no configured issuer".to_owned(),
            Self::UnknownKid { .. } => "no matching key found for the token's \"kid\"".to_owned(),
            Self::JwksUnavailable { reason, .. } => {
                format!("the issuer's signing keys are unavailable ({reason})")
            }
            Self::Audience => "unexpected \"aud\" claim value".to_owned(),
            Self::AuthorizedParty => "unexpected \"azp\" claim value".to_owned(),
            Self::TokenClass { reason } => (*reason).to_owned(),
        })
    }

    /// Triplit's `message`: `baseMessage | Context: contextMessage`.
    pub fn triplit_message(&self) -> String {
        match self.context() {
            Some(context) => format!("{} | Context: {context}", self.base_message()),
            None => self.base_message().to_owned(),
        }
    }

    /// The error as Triplit serialises it (`TriplitError.toJSON()`), in its
    /// key order: `name`, `message`, `baseMessage`, `status`,
    /// `contextMessage`.
    pub fn triplit_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("name".into(), self.triplit_name().into());
        map.insert("message".into(), self.triplit_message().into());
        map.insert("baseMessage".into(), self.base_message().into());
        map.insert("status".into(), self.status().into());
        if let Some(context) = self.context() {
            map.insert("contextMessage".into(), context.into());
        }
        Value::Object(map)
    }
}

/// Which configured secret a key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySlot {
    /// `JWT_SECRET`: Triplit's own tokens, and the fallback for external ones.
    JwtSecret,
    /// `EXTERNAL_JWT_SECRET`: tokens from an identity provider.
    ExternalJwtSecret,
    /// A configured issuer (`[[auth.issuers]]`, a JWKS URL, OIDC discovery or
    /// the Clerk preset); [`VerifiedToken::issuer`](crate::VerifiedToken::issuer)
    /// names it.
    Issuer,
}

impl KeySlot {
    /// The environment variable's name (`JWT_SECRET`, `EXTERNAL_JWT_SECRET`).
    pub fn env_name(self) -> &'static str {
        match self {
            Self::JwtSecret => "JWT_SECRET",
            Self::ExternalJwtSecret => "EXTERNAL_JWT_SECRET",
            Self::Issuer => "auth.issuers",
        }
    }
}

impl fmt::Display for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.env_name())
    }
}

/// A configured secret that cannot be used as a verification key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct KeyError {
    /// The secret it came from, when known.
    pub slot: Option<KeySlot>,
    /// What is wrong with it.
    pub kind: KeyErrorKind,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.slot {
            Some(slot) => write!(f, "{slot}: {}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl KeyError {
    /// The same error, attributed to `slot`.
    pub fn in_slot(mut self, slot: KeySlot) -> Self {
        self.slot = Some(slot);
        self
    }

    /// A stable reason code (see [`KeyErrorKind::code`]).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

impl From<KeyErrorKind> for KeyError {
    fn from(kind: KeyErrorKind) -> Self {
        Self { slot: None, kind }
    }
}

/// What is wrong with a configured secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyErrorKind {
    /// A PEM whose armour or base64 body is broken.
    #[error("invalid PEM: {0}")]
    InvalidPem(&'static str),
    /// A PEM of a kind that holds no usable public key (a private key, a
    /// certificate, …).
    #[error(
        "unsupported PEM label {0:?}: use an SPKI public key (-----BEGIN PUBLIC KEY-----) \
         or a PKCS#1 RSA public key"
    )]
    UnsupportedPem(String),
    /// Text that contains PEM armour somewhere other than at its start.
    #[error("the secret contains PEM armour but does not start with it")]
    MisplacedPem,
    /// The DER inside a PEM is not a public key structure.
    #[error("invalid public key DER: {0}")]
    InvalidDer(&'static str),
    /// A well-formed public key of a type or curve this server cannot use.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// An RSA modulus outside 2048..=8192 bits.
    #[error("RSA key of {0} bits: 2048 to 8192 bits are supported")]
    RsaKeySize(usize),
    /// A JSON object that is not a valid public JWK.
    #[error("invalid JWK: {0}")]
    InvalidJwk(String),
    /// A JWK Set (`{"keys": [...]}`) where one key is expected.
    #[error("a JWK Set is not supported here: give one JWK object")]
    JwkSet,
    /// A JWK Set with no key that can verify signatures.
    #[error("the JWK Set has no usable signing key")]
    EmptyJwkSet,
    /// A JWK with private members (`d`, …); give the public key only.
    #[error("the JWK holds a private key: give the public key only")]
    PrivateJwk,
    /// JSON that is not an object (a number, string, array or `true`):
    /// Triplit cannot use such a secret either.
    #[error("the secret parses as JSON ({0}) but is not a JWK object")]
    JsonNotJwk(&'static str),
    /// Base64 DER of a public key without PEM armour. Used as an HMAC secret
    /// it would let anyone who knows the public key forge tokens.
    #[error("the secret is a bare base64 public key: wrap it in PEM armour")]
    BarePublicKey,
}

impl KeyErrorKind {
    /// A stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPem(_) => "invalid_pem",
            Self::UnsupportedPem(_) => "unsupported_pem",
            Self::MisplacedPem => "misplaced_pem",
            Self::InvalidDer(_) => "invalid_der",
            Self::UnsupportedKey(_) => "unsupported_key",
            Self::RsaKeySize(_) => "rsa_key_size",
            Self::InvalidJwk(_) => "invalid_jwk",
            Self::JwkSet => "jwk_set",
            Self::EmptyJwkSet => "empty_jwk_set",
            Self::PrivateJwk => "private_jwk",
            Self::JsonNotJwk(_) => "json_not_jwk",
            Self::BarePublicKey => "bare_public_key",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triplit_json_has_upstream_shape() {
        let json = AuthError::Expired { exp: 1.0 }.triplit_json();
        assert_eq!(
            serde_json::to_string(&json).unwrap(),
            r#"{"name":"InvalidTokenSignatureError","message":"The signature on your token could not be verified successfully. | Context: \"exp\" claim timestamp check failed","baseMessage":"The signature on your token could not be verified successfully.","status":401,"contextMessage":"\"exp\" claim timestamp check failed"}"#
        );
    }

    #[test]
    fn classes() {
        let malformed = AuthError::Malformed {
            reason: "Invalid JWT",
        };
        assert_eq!(malformed.triplit_name(), "InvalidTokenPayloadError");
        assert_eq!(malformed.status(), 400);
        let no_secret = AuthError::NoSecret {
            slot: KeySlot::JwtSecret,
        };
        assert_eq!(no_secret.triplit_name(), "TokenVerificationError");
        assert_eq!(no_secret.status(), 401);
        assert_eq!(
            no_secret.triplit_message(),
            "Error verifying token. | Context: No secret provided for token verification"
        );
    }

    #[test]
    fn key_error_names_its_slot() {
        let err = KeyError::from(KeyErrorKind::JwkSet).in_slot(KeySlot::ExternalJwtSecret);
        assert!(err.to_string().starts_with("EXTERNAL_JWT_SECRET: "));
        assert_eq!(err.code(), "jwk_set");
    }
}
