//! The compact JWS layer: splitting a token, decoding its payload and
//! protected header, and checking the signature with a
//! [`VerificationKey`].
//!
//! Each step mirrors jose 4 (`decodeJwt`, then `jwtVerify` →
//! `flattenedVerify`), so a token is refused at the same step, with the same
//! error class, as on the reference server:
//!
//! 1. `decodeJwt`: three parts, a non-empty payload that is a JSON object,
//!    else [`AuthError::Malformed`] (`InvalidTokenPayloadError`). The header
//!    is *not* looked at here.
//! 2. Header: JSON (else "JWS Protected Header is invalid"), `crit` only as
//!    jose allows it, a non-empty string `alg`.
//! 3. `alg` must fit the key's family ([`AuthError::AlgorithmNotAllowed`],
//!    [`AuthError::KeyMismatch`]).
//! 4. The signature over the token's original `header.payload` text.

use serde_json::{Map, Value};

use crate::b64;
use crate::error::AuthError;
use crate::key::VerificationKey;

/// A compact JWS split into its three segments.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Compact<'a> {
    /// `header.payload`: the bytes the signature covers.
    pub(crate) signing_input: &'a str,
    /// The protected header segment.
    pub(crate) header: &'a str,
    /// The payload segment.
    pub(crate) payload: &'a str,
    /// The signature segment.
    pub(crate) signature: &'a str,
}

fn malformed(reason: &'static str) -> AuthError {
    AuthError::Malformed { reason }
}

/// Splits `token` on `.` as `decodeJwt` does.
pub(crate) fn split(token: &str) -> Result<Compact<'_>, AuthError> {
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => {
            return Err(malformed(
                "Only JWTs using Compact JWS serialization can be decoded",
            ));
        }
        _ => return Err(malformed("Invalid JWT")),
    }
    let signing_len = parts[0].len() + 1 + parts[1].len();
    Ok(Compact {
        signing_input: &token[..signing_len],
        header: parts[0],
        payload: parts[1],
        signature: parts[2],
    })
}

/// Decodes a segment to JSON: lenient base64, UTF-8 with replacement and BOM
/// stripping (like `TextDecoder`), then `JSON.parse`.
fn segment_json(segment: &str) -> Option<Value> {
    let bytes = b64::decode_lenient(segment);
    let text = String::from_utf8_lossy(&bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    serde_json::from_str(text).ok()
}

/// The claims set, as `decodeJwt` reads it.
pub(crate) fn decode_payload(parts: &Compact<'_>) -> Result<Map<String, Value>, AuthError> {
    if parts.payload.is_empty() {
        return Err(malformed("JWTs must contain a payload"));
    }
    match segment_json(parts.payload) {
        Some(Value::Object(claims)) => Ok(claims),
        Some(_) => Err(malformed("Invalid JWT Claims Set")),
        None => Err(malformed("Failed to parse the decoded payload as JSON")),
    }
}

fn invalid_header(reason: impl Into<String>) -> AuthError {
    AuthError::InvalidHeader {
        reason: reason.into(),
    }
}

/// The protected header as a map (a JSON non-object reads as `{}`, as a
/// spread does in JavaScript).
pub(crate) fn decode_header(parts: &Compact<'_>) -> Result<Map<String, Value>, AuthError> {
    if parts.header.is_empty() {
        return Ok(Map::new());
    }
    match segment_json(parts.header) {
        Some(Value::Object(header)) => Ok(header),
        Some(_) => Ok(Map::new()),
        None => Err(invalid_header("JWS Protected Header is invalid")),
    }
}

/// jose's `validateCrit` with only `b64` recognised, plus `jwtVerify`'s ban
/// on unencoded payloads.
pub(crate) fn check_crit(header: &Map<String, Value>) -> Result<(), AuthError> {
    let Some(crit) = header.get("crit") else {
        return Ok(());
    };
    let names: Vec<&str> = match crit {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| item.as_str().filter(|s| !s.is_empty()))
            .collect::<Option<_>>()
            .ok_or_else(crit_shape)?,
        _ => return Err(crit_shape()),
    };
    for name in &names {
        if *name != "b64" {
            return Err(invalid_header(format!(
                "Extension Header Parameter \"{name}\" is not recognized"
            )));
        }
        if !header.contains_key(*name) {
            return Err(invalid_header(format!(
                "Extension Header Parameter \"{name}\" is missing"
            )));
        }
    }
    match header.get("b64") {
        Some(Value::Bool(true)) => Ok(()),
        Some(Value::Bool(false)) => Err(invalid_header("JWTs MUST NOT use unencoded payload")),
        _ => Err(invalid_header(
            "The \"b64\" (base64url-encode payload) Header Parameter must be a boolean",
        )),
    }
}

fn crit_shape() -> AuthError {
    invalid_header(
        "\"crit\" (Critical) Header Parameter MUST be an array of non-empty strings when present",
    )
}

/// Checks the header and signature of `parts` against `key`. Claims are not
/// looked at.
pub(crate) fn verify_signature(
    key: &VerificationKey,
    parts: &Compact<'_>,
) -> Result<(), AuthError> {
    verify_signature_pinned(key, None, parts)
}

/// [`verify_signature`] for a key that also pins one `alg` (a JWK Set
/// member with an `alg` member): a token with another `alg`, even one of the
/// key's family, is a key mismatch.
pub(crate) fn verify_signature_pinned(
    key: &VerificationKey,
    pinned_alg: Option<&str>,
    parts: &Compact<'_>,
) -> Result<(), AuthError> {
    let header = decode_header(parts)?;
    check_crit(&header)?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) if !alg.is_empty() => alg.as_str(),
        _ => {
            return Err(invalid_header(
                "JWS \"alg\" (Algorithm) Header Parameter missing or invalid",
            ));
        }
    };
    let family = key.family();
    let algorithm = key.check_algorithm(alg).map_err(|refusal| {
        let alg = alg.to_owned();
        if refusal.mismatch {
            AuthError::KeyMismatch {
                alg,
                family,
                detail: refusal.detail,
            }
        } else {
            AuthError::AlgorithmNotAllowed {
                alg,
                family,
                detail: refusal.detail,
            }
        }
    })?;
    if let Some(pinned) = pinned_alg
        && pinned != alg
    {
        return Err(AuthError::KeyMismatch {
            alg: alg.to_owned(),
            family,
            detail: format!("the selected key only allows {pinned}"),
        });
    }
    // Decode leniently (as Node does), then hand the crate canonical base64url.
    let signature = b64::encode_url(&b64::decode_lenient(parts.signature));
    match jsonwebtoken::crypto::verify(
        &signature,
        parts.signing_input.as_bytes(),
        key.decoding_key(),
        algorithm,
    ) {
        Ok(true) => Ok(()),
        // `Err` would mean the key does not fit the algorithm, which
        // `check_algorithm` has ruled out; refuse the token either way.
        Ok(false) | Err(_) => Err(AuthError::BadSignature),
    }
}

impl VerificationKey {
    /// Checks only the JWS layer of `token` with this key: the protected
    /// header, the algorithm against the key's family, and the signature.
    /// The payload is not decoded, so it need not be JSON (useful for JWS
    /// test vectors); use [`TokenVerifier::verify`] for tokens.
    ///
    /// [`TokenVerifier::verify`]: crate::TokenVerifier::verify
    pub fn verify_signature(&self, token: &str) -> Result<(), AuthError> {
        verify_signature(self, &split(token)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(json: &str) -> String {
        b64::encode_url(json.as_bytes())
    }

    #[test]
    fn split_counts_parts_like_decode_jwt() {
        assert_eq!(split("a.b").unwrap_err().code(), "malformed");
        assert!(matches!(
            split("a.b.c.d.e"),
            Err(AuthError::Malformed { reason }) if reason.starts_with("Only JWTs")
        ));
        let parts = split("h.p.s").unwrap();
        assert_eq!(parts.signing_input, "h.p");
        assert_eq!(parts.signature, "s");
        assert_eq!(split("..").unwrap().signing_input, ".");
    }

    #[test]
    fn payload_must_be_a_json_object() {
        let reason =
            |payload: &str| match decode_payload(&split(&format!("h.{payload}.s")).unwrap()) {
                Err(AuthError::Malformed { reason }) => reason,
                other => panic!("{other:?}"),
            };
        assert_eq!(reason(""), "JWTs must contain a payload");
        assert_eq!(reason(&enc("[1]")), "Invalid JWT Claims Set");
        assert_eq!(
            reason(&enc("{x")),
            "Failed to parse the decoded payload as JSON"
        );
        assert_eq!(reason("def"), "Failed to parse the decoded payload as JSON");
        let bom = enc("\u{feff}{\"a\":1}");
        assert!(decode_payload(&split(&format!("h.{bom}.s")).unwrap()).is_ok());
    }

    #[test]
    fn header_rules() {
        let key = VerificationKey::hmac(b"k");
        let check = |header: &str| {
            let token = format!("{}.{}.sig", header, enc("{}"));
            verify_signature(&key, &split(&token).unwrap()).unwrap_err()
        };
        let context = |err: AuthError| err.context().unwrap();
        assert_eq!(context(check("!!")), "JWS Protected Header is invalid");
        assert!(context(check(&enc("{}"))).contains("\"alg\""));
        assert!(context(check(&enc("[]"))).contains("\"alg\""));
        assert!(context(check("")).contains("\"alg\""));
        assert!(context(check(&enc(r#"{"alg":""}"#))).contains("\"alg\""));
        assert!(context(check(&enc(r#"{"alg":"HS256","crit":[]}"#))).contains("\"crit\""));
        assert!(
            context(check(&enc(r#"{"alg":"HS256","crit":["exp"],"exp":1}"#)))
                .contains("not recognized")
        );
        assert!(context(check(&enc(r#"{"alg":"HS256","crit":["b64"]}"#))).contains("missing"));
        assert!(
            context(check(&enc(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#)))
                .contains("unencoded")
        );
        // b64:true under crit is allowed: the token then fails on its signature.
        let err = check(&enc(r#"{"alg":"HS256","crit":["b64"],"b64":true}"#));
        assert_eq!(err.code(), "bad_signature");
        assert_eq!(
            check(&enc(r#"{"alg":"none"}"#)).code(),
            "algorithm_not_allowed"
        );
        assert_eq!(check(&enc(r#"{"alg":"RS256"}"#)).code(), "key_mismatch");
    }

    /// A tiny deterministic generator, so the test needs no extra crates.
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[tokio::test]
    async fn arbitrary_input_never_panics() {
        let alphabet: Vec<char> = "eyJhbGciOiJIUzI1NiJ9.-_=+/ \\\"{}[]:,\u{e9}\u{0}"
            .chars()
            .collect();
        let verifier =
            crate::TokenVerifier::new(Some("s"), Some("{\"kty\":\"oct\",\"k\":\"AA\"}")).unwrap();
        let mut seed = 1;
        for _ in 0..5_000 {
            let len = (lcg(&mut seed) % 40) as usize;
            let token: String = (0..len)
                .map(|_| alphabet[(lcg(&mut seed) as usize) % alphabet.len()])
                .collect();
            let _ = verifier.verify(&token, lcg(&mut seed)).await;
            let _ = crate::VerificationKey::parse(&token);
            let _ = crate::normalize_pem(&format!("-----BEGIN PUBLIC KEY-----{token}"));
        }
        // Structured garbage: valid base64url JSON in every segment.
        for header in [
            "{}",
            "{\"alg\":\"HS256\"}",
            "{\"alg\":\"RS256\"}",
            "1",
            "\"x\"",
        ] {
            for payload in [
                "{}",
                "{\"exp\":1e308}",
                "{\"nbf\":-1e308}",
                "[]",
                "{\"exp\":-0}",
            ] {
                let token = format!("{}.{}.{}", enc(header), enc(payload), enc("sig"));
                let _ = verifier.verify(&token, u64::MAX).await;
            }
        }
    }
}
