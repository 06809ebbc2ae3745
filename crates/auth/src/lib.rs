//! Token verification for Ferry, compatible with Triplit 1.x.
//!
//! # The model
//!
//! A Triplit server is configured with up to two secrets:
//!
//! - `JWT_SECRET` verifies Triplit's own tokens: those whose
//!   `x-triplit-token-type` claim is `anon`, `secret` (the service key) or
//!   `test`.
//! - `EXTERNAL_JWT_SECRET` verifies every other token (typically an identity
//!   provider's, such as a Clerk session token). When it is unset, those
//!   tokens fall back to `JWT_SECRET`.
//!
//! Each secret is one static key, recognised by its shape
//! ([`VerificationKey::parse`]): a PEM public key, one JWK as JSON, or else
//! an HMAC secret. The key's family alone decides which `alg` a token may
//! use ([`KeyFamily::allowed_algorithms`]), so `alg: none` and HMAC-with-the-
//! public-key forgeries are refused whatever the header says.
//!
//! [`TokenVerifier::verify`] then checks, as jose's `jwtVerify` does on the
//! reference server: the signature; `nbf` and `exp` when present, in whole
//! seconds with zero leeway by default; nothing else (no `iss`, `aud` or
//! `sub` rules, and a token without `exp` never expires). Time is passed in
//! (`now_ms`); this crate never reads a clock.
//!
//! The verified claims come back as a [`VerifiedToken`], and a refusal as an
//! [`AuthError`], which knows both a stable Ferry reason code and the exact
//! Triplit error (`InvalidTokenSignatureError`, 401, …) to put on the wire.
//!
//! # Implementation notes
//!
//! Parsing follows jose 4 on Node step by step (module `jws`), including its
//! forgiving base64 and its order of checks, so every token is refused at
//! the same step and with the same error class as upstream. Signatures are
//! checked with `jsonwebtoken::crypto::verify` (aws-lc-rs). The crate's
//! `decode`/`Validation` are deliberately not used: every claim rule is
//! implemented here against the injected time, so there is no default to get
//! wrong (60 s leeway, required `exp`, `aud` checks, `nbf` off).
//!
//! `tests/jose_oracle.rs` replays 80 edge cases recorded from jose 4.15.9
//! itself and requires the same claims, error names and context messages.
//!
//! # Deviations from upstream
//!
//! All of them turn a setup upstream cannot use, or uses unsafely, into a
//! working one or a clear start-up error:
//!
//! - Secrets are parsed once, in [`TokenVerifier::new`]; a bad key is a
//!   [`KeyError`] naming the variable, not a failure on every request.
//! - PEMs with literal `\n` escapes are accepted (upstream throws an ASN.1
//!   error), as are leading whitespace and PKCS#1 `RSA PUBLIC KEY` PEMs
//!   (which upstream silently uses as an HMAC secret).
//! - Secrets that look like public keys but are not valid PEM armour, bare
//!   base64 public keys, private JWKs and JSON that is not an
//!   object are refused instead of being used as HMAC secrets or throwing
//!   later.
//! - EC P-521 (ES512), secp256k1 and Ed448 keys are refused at start-up:
//!   the crypto backend has no verifier for them. RSA keys must have
//!   2048–8192 bits (jose refuses smaller ones on every request).
//!
//! - `EXTERNAL_JWT_SECRET` may be a JWK Set (`{"keys": [...]}`); the key
//!   is picked by the token's `kid`.
//!
//! # Beyond Triplit: issuers
//!
//! [`TokenVerifier::with_issuers`] adds [`Issuers`]: trusted token issuers
//! selected by the token's exact `iss` claim, each with its own keys, so
//! one issuer's key can never verify another's tokens. An issuer's keys are
//! static ([`KeySource::Static`]), fetched from a JWKS URL
//! ([`KeySource::JwksUrl`]) or found by OIDC discovery
//! ([`KeySource::Discovery`]); [`IssuerConfig::clerk`] derives all of it
//! from a Clerk publishable key ([`ClerkPublishableKey`]). Fetched keys are
//! cached per issuer by `kid` with `Cache-Control` freshness, single-flight
//! refetches on an unknown `kid`, and a minimum interval between attempts
//! ([`FetchPolicy`]); HTTP goes through the [`HttpFetcher`] trait
//! ([`ReqwestFetcher`] in production). Issuer tokens must carry `exp` and
//! `sub`, get a small leeway (5 s by default), and are checked against
//! `aud` and `azp` when those are configured. Triplit's own tokens
//! (`x-triplit-token-type` `anon`/`secret`/`test`) always use `JWT_SECRET`,
//! and external tokens no issuer answers for follow the Triplit rule.
//!
//! Module [`local_issuer`] is an offline stand-in for Clerk: generated RSA
//! keys, a JWKS, discovery and Clerk-shaped session tokens.
//!
//! Kept as upstream has it, though surprising: an empty `JWT_SECRET` is no
//! secret, an empty `EXTERNAL_JWT_SECRET` refuses external tokens (it does
//! not fall back), the `x-triplit-project-id` claim is not checked, a JWK's
//! `alg`/`use` members are ignored, and there is no size cap on tokens.

mod algorithm;
mod b64;
mod cache;
mod clerk;
mod der;
mod dev;
mod error;
mod fetch;
mod issuer;
mod issuers;
mod jwks;
mod jws;
mod key;
pub mod local_issuer;
mod peek;
mod pem;
mod sign;
mod verify;

pub use algorithm::KeyFamily;
pub use cache::FetchPolicy;
pub use clerk::ClerkPublishableKey;
pub use dev::{DEV_JWT_SECRET, DEV_PROJECT_ID, DevTokens, PROJECT_ID_CLAIM, dev_tokens};
pub use error::{AuthError, KeyError, KeyErrorKind, KeySlot};
pub use fetch::{
    FetchError, FetchFuture, HttpFetcher, HttpResponse, MAX_DOCUMENT_BYTES, ReqwestFetcher,
};
pub use issuer::{
    DEFAULT_ISSUER_LEEWAY_MS, IssuerConfig, IssuerError, KeySource, MAX_LEEWAY_MS, check_url,
    discovery_url, is_loopback_host,
};
pub use issuers::{Issuers, PrefetchReport};
pub use jwks::{KeySet, MAX_KEYS};
pub use key::VerificationKey;
pub use peek::TokenInfo;
pub use pem::normalize_pem;
pub use sign::sign_hs256;
pub use verify::{TOKEN_TYPE_CLAIM, TRIPLIT_TOKEN_TYPES, TokenVerifier, VerifiedToken};
