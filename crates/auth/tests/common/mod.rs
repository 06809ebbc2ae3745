//! Shared helpers for the integration tests: fixture loading and a test
//! minter built on `jsonwebtoken`'s encoder.

#![allow(dead_code)]

use std::path::PathBuf;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

/// 2027-01-15T08:00:00Z, the tests' "now".
pub const NOW_MS: u64 = 1_800_000_000_000;
/// `NOW_MS` in seconds.
pub const NOW_S: u64 = NOW_MS / 1000;

/// The contents of `tests/keys/<name>`.
pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `tests/keys/node-tokens.json`: tokens signed by Node's crypto.
pub fn node_fixtures() -> Value {
    serde_json::from_str(&fixture("node-tokens.json")).expect("node-tokens.json")
}

/// A JSON object literal as a claims map.
pub fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// The usual external claims: a subject that expires an hour after `NOW`.
pub fn external_claims() -> Value {
    json!({"sub": "user_1", "iat": NOW_S, "exp": NOW_S + 3600})
}

/// Signs `claims` with a private PEM from `tests/keys/`.
pub fn sign_pem(alg: Algorithm, private_key_file: &str, claims: &Value) -> String {
    let pem = fixture(private_key_file);
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .expect("private key fixture");
    jsonwebtoken::encode(&Header::new(alg), claims, &key).expect("encode")
}

/// Signs `claims` with an HMAC secret.
pub fn sign_hmac(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret))
        .expect("encode")
}

/// Base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token from raw header and payload JSON text, with `signature` as the
/// third segment.
pub fn raw_token(header: &str, payload: &str, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes())
    )
}
