//! Triplit's own tokens, HMAC secrets, secret selection and the upstream
//! error classes (the measured matrix of triplit.md §3.1).

mod common;

use common::*;
use ferry_auth::{
    AuthError, DEV_JWT_SECRET, DEV_PROJECT_ID, KeyFamily, KeySlot, TokenVerifier, dev_tokens,
    sign_hs256,
};
use jsonwebtoken::Algorithm;
use serde_json::json;

/// The tokens `triplit dev` prints with its defaults (triplit.md §6.1).
const UPSTREAM_SERVICE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ4LXRyaXBsaXQtdG9rZW4tdHlwZSI6InNlY3JldCIsIngtdHJpcGxpdC1wcm9qZWN0LWlkIjoibG9jYWwtcHJvamVjdC1pZCJ9.8Z76XXPc9esdlZb2b7NDC7IVajNXKc4eVcPsO7Ve0ug";
const UPSTREAM_ANON: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ4LXRyaXBsaXQtdG9rZW4tdHlwZSI6ImFub24iLCJ4LXRyaXBsaXQtcHJvamVjdC1pZCI6ImxvY2FsLXByb2plY3QtaWQifQ.JzN7Erur8Y-MlFdCaZtovQwxN_m_fSyOIWNzYQ3uVcc";

fn dev_verifier() -> TokenVerifier {
    TokenVerifier::new(Some(DEV_JWT_SECRET), None).unwrap()
}

#[test]
fn dev_tokens_are_byte_identical_to_upstream() {
    let tokens = dev_tokens("jwt-key-for-development-only", "local-project-id");
    assert_eq!(tokens.service, UPSTREAM_SERVICE);
    assert_eq!(tokens.anon, UPSTREAM_ANON);
    assert_eq!(dev_tokens(DEV_JWT_SECRET, DEV_PROJECT_ID), tokens);
}

#[tokio::test]
async fn upstream_dev_tokens_verify() {
    let verifier = dev_verifier();
    let service = verifier.verify(UPSTREAM_SERVICE, NOW_MS).await.unwrap();
    assert!(service.is_service());
    assert_eq!(service.token_type.as_deref(), Some("secret"));
    assert_eq!(service.claims["x-triplit-project-id"], "local-project-id");
    assert_eq!(service.expires_at_ms, None);
    assert_eq!(service.verified_with, KeySlot::JwtSecret);
    let anon = verifier.verify(UPSTREAM_ANON, NOW_MS).await.unwrap();
    assert!(!anon.is_service());
    assert_eq!(anon.token_type.as_deref(), Some("anon"));
}

#[test]
fn sign_hs256_keeps_claim_order() {
    let token = sign_hs256(&claims(json!({"z": 1, "a": "b"})), "k");
    let payload = token.split('.').nth(1).unwrap();
    assert_eq!(payload, b64url(br#"{"z":1,"a":"b"}"#));
}

#[tokio::test]
async fn hs256_and_hs512_anon_tokens_verify() {
    let verifier = dev_verifier();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let token = sign_hmac(
            alg,
            DEV_JWT_SECRET.as_bytes(),
            &json!({"x-triplit-token-type": "anon", "iat": NOW_S}),
        );
        let verified = verifier.verify(&token, NOW_MS).await.unwrap();
        assert_eq!(verified.token_type.as_deref(), Some("anon"), "{alg:?}");
    }
}

#[tokio::test]
async fn wrong_secret_is_a_signature_error() {
    let token = sign_hs256(&claims(json!({"x-triplit-token-type": "anon"})), "other");
    let err = dev_verifier().verify(&token, NOW_MS).await.unwrap_err();
    assert_eq!(err.code(), "bad_signature");
    assert_eq!(err.triplit_name(), "InvalidTokenSignatureError");
    assert_eq!(err.status(), 401);
    assert_eq!(
        err.base_message(),
        "The signature on your token could not be verified successfully."
    );
    assert_eq!(
        err.context().as_deref(),
        Some("signature verification failed")
    );
}

#[tokio::test]
async fn garbage_is_a_payload_error() {
    let verifier = dev_verifier();
    for garbage in [
        "garbage",
        "abc.def",
        "token",
        "a.b.c",
        "a..c",
        "a.b.c.d",
        "a.b.c.d.e",
    ] {
        let err = verifier.verify(garbage, NOW_MS).await.unwrap_err();
        assert_eq!(err.code(), "malformed", "{garbage}");
        assert_eq!(err.triplit_name(), "InvalidTokenPayloadError");
        assert_eq!(err.status(), 400);
        assert_eq!(err.base_message(), "The token payload is invalid.");
        assert_eq!(
            err.context().as_deref(),
            Some("Token could not be decoded as a valid JWT")
        );
    }
    // A broken header with a good payload gets past decodeJwt, so it is a
    // signature-class error, as upstream has it.
    let token = format!("!!.{}.sig", b64url(br#"{"sub":"x"}"#));
    let err = verifier.verify(&token, NOW_MS).await.unwrap_err();
    assert_eq!(err.code(), "invalid_header");
    assert_eq!(err.triplit_name(), "InvalidTokenSignatureError");
}

#[tokio::test]
async fn empty_token_and_missing_secrets() {
    let err = dev_verifier().verify("", NOW_MS).await.unwrap_err();
    assert_eq!(err, AuthError::NoToken);
    assert_eq!(err.triplit_name(), "TokenVerificationError");

    let none = TokenVerifier::new(None, None).unwrap();
    let err = none.verify(UPSTREAM_ANON, NOW_MS).await.unwrap_err();
    assert_eq!(err.code(), "no_secret");
    assert_eq!(err.triplit_name(), "TokenVerificationError");
    assert_eq!(err.status(), 401);
    assert_eq!(
        err.context().as_deref(),
        Some("No secret provided for token verification")
    );
    // The payload is decoded before the secret is looked for.
    assert_eq!(
        none.verify("garbage", NOW_MS).await.unwrap_err().code(),
        "malformed"
    );
    // An empty JWT_SECRET is no secret.
    let empty = TokenVerifier::new(Some(""), None).unwrap();
    assert_eq!(
        empty
            .verify(UPSTREAM_ANON, NOW_MS)
            .await
            .unwrap_err()
            .code(),
        "no_secret"
    );
}

#[tokio::test]
async fn external_tokens_fall_back_to_jwt_secret() {
    let token = sign_hmac(
        Algorithm::HS256,
        DEV_JWT_SECRET.as_bytes(),
        &external_claims(),
    );
    let verified = dev_verifier().verify(&token, NOW_MS).await.unwrap();
    assert_eq!(verified.claims["sub"], "user_1");
    assert_eq!(verified.token_type, None);
    assert!(!verified.is_triplit_token());
    assert_eq!(verified.verified_with, KeySlot::JwtSecret);
    assert_eq!(verified.expires_at_ms, Some((NOW_S + 3600) * 1000));
    // An unknown token type is external too.
    let foo = sign_hs256(
        &claims(json!({"x-triplit-token-type": "foo"})),
        DEV_JWT_SECRET,
    );
    let verified = dev_verifier().verify(&foo, NOW_MS).await.unwrap();
    assert_eq!(verified.token_type.as_deref(), Some("foo"));
    assert!(!verified.is_triplit_token());
}

#[tokio::test]
async fn empty_external_secret_refuses_external_tokens() {
    // Upstream: `externalSecret ?? jwtSecret` keeps "", then `!secretKey`.
    let verifier = TokenVerifier::new(Some(DEV_JWT_SECRET), Some("")).unwrap();
    let token = sign_hmac(
        Algorithm::HS256,
        DEV_JWT_SECRET.as_bytes(),
        &external_claims(),
    );
    let err = verifier.verify(&token, NOW_MS).await.unwrap_err();
    assert_eq!(
        err,
        AuthError::NoSecret {
            slot: KeySlot::ExternalJwtSecret
        }
    );
    assert!(verifier.verify(UPSTREAM_ANON, NOW_MS).await.is_ok());
}

#[tokio::test]
async fn triplit_tokens_never_use_the_external_secret() {
    let verifier = TokenVerifier::new(Some("triplit-secret"), Some("external-secret")).unwrap();
    let anon = sign_hs256(
        &claims(json!({"x-triplit-token-type": "anon"})),
        "external-secret",
    );
    assert_eq!(
        verifier.verify(&anon, NOW_MS).await.unwrap_err().code(),
        "bad_signature"
    );
    let external = sign_hmac(Algorithm::HS256, b"external-secret", &external_claims());
    let verified = verifier.verify(&external, NOW_MS).await.unwrap();
    assert_eq!(verified.verified_with, KeySlot::ExternalJwtSecret);
    let external_with_jwt = sign_hmac(Algorithm::HS256, b"triplit-secret", &external_claims());
    assert_eq!(
        verifier
            .verify(&external_with_jwt, NOW_MS)
            .await
            .unwrap_err()
            .code(),
        "bad_signature"
    );
}

#[tokio::test]
async fn alg_none_is_refused() {
    // jsonwebtoken cannot even produce `none`; build it by hand, unsigned
    // and with a junk signature.
    let verifier = dev_verifier();
    for signature in ["", "c2ln"] {
        let token = raw_token(
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"x-triplit-token-type":"secret"}"#,
            signature,
        );
        let err = verifier.verify(&token, NOW_MS).await.unwrap_err();
        assert_eq!(err.code(), "algorithm_not_allowed");
        assert_eq!(err.triplit_name(), "InvalidTokenSignatureError");
        assert_eq!(
            err.context().as_deref(),
            Some(
                "Key for the none algorithm must be one of type KeyObject or CryptoKey. \
                 Received an instance of Uint8Array"
            )
        );
    }
    // Other case spellings and unknown names fare no better.
    for alg in ["None", "NONE", "HS1", "hs256", "RSA-OAEP"] {
        let header = format!(r#"{{"alg":"{alg}"}}"#);
        let token = raw_token(&header, r#"{"x-triplit-token-type":"anon"}"#, "");
        let err = verifier.verify(&token, NOW_MS).await.unwrap_err();
        assert_eq!(err.code(), "algorithm_not_allowed", "{alg}");
    }
}

#[tokio::test]
async fn asymmetric_token_against_hmac_secret_is_a_mismatch() {
    let token = sign_pem(
        Algorithm::RS256,
        "rsa.key",
        &json!({"x-triplit-token-type": "secret"}),
    );
    let err = dev_verifier().verify(&token, NOW_MS).await.unwrap_err();
    assert_eq!(err.code(), "key_mismatch");
    match err {
        AuthError::KeyMismatch { alg, family, .. } => {
            assert_eq!(alg, "RS256");
            assert_eq!(family, KeyFamily::Hmac);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn expiry_and_not_before() {
    let verifier = dev_verifier();
    let secret = DEV_JWT_SECRET.as_bytes();
    let expired = sign_hmac(
        Algorithm::HS256,
        secret,
        &json!({"sub": "u", "exp": NOW_S - 1}),
    );
    let err = verifier.verify(&expired, NOW_MS).await.unwrap_err();
    assert_eq!(err.code(), "expired");
    assert_eq!(err.triplit_name(), "InvalidTokenSignatureError");
    assert_eq!(err.status(), 401);
    assert_eq!(
        err.context().as_deref(),
        Some("\"exp\" claim timestamp check failed")
    );
    // `exp` equal to now (in whole seconds) is already expired.
    let at_now = sign_hmac(Algorithm::HS256, secret, &json!({"sub": "u", "exp": NOW_S}));
    assert_eq!(
        verifier
            .verify(&at_now, NOW_MS + 999)
            .await
            .unwrap_err()
            .code(),
        "expired"
    );
    assert!(verifier.verify(&at_now, NOW_MS - 1).await.is_ok());

    let future = sign_hmac(
        Algorithm::HS256,
        secret,
        &json!({"sub": "u", "nbf": NOW_S + 100}),
    );
    let err = verifier.verify(&future, NOW_MS).await.unwrap_err();
    assert_eq!(err.code(), "not_yet_valid");
    assert_eq!(err.triplit_name(), "InvalidTokenSignatureError");
    assert_eq!(
        err.context().as_deref(),
        Some("\"nbf\" claim timestamp check failed")
    );
    assert!(verifier.verify(&future, (NOW_S + 100) * 1000).await.is_ok());

    let no_exp = sign_hmac(Algorithm::HS256, secret, &json!({"sub": "u"}));
    let verified = verifier.verify(&no_exp, u64::MAX).await.unwrap();
    assert_eq!(verified.expires_at_ms, None);
    assert!(!verified.is_expired_at(u64::MAX));
}

#[tokio::test]
async fn leeway_is_opt_in() {
    let secret = DEV_JWT_SECRET.as_bytes();
    let expired = sign_hmac(Algorithm::HS256, secret, &json!({"exp": NOW_S - 3}));
    assert_eq!(dev_verifier().leeway_ms(), 0);
    let lenient = dev_verifier().with_leeway_ms(5_000);
    assert_eq!(lenient.leeway_ms(), 5_000);
    assert!(lenient.verify(&expired, NOW_MS).await.is_ok());
    assert!(lenient.verify(&expired, NOW_MS + 3_000).await.is_err());
}

#[tokio::test]
async fn no_iss_aud_or_sub_rules() {
    let token = sign_hmac(
        Algorithm::HS256,
        DEV_JWT_SECRET.as_bytes(),
        &json!({"aud": "someone-else", "iss": "https://elsewhere", "sub": 42, "iat": NOW_S + 9999}),
    );
    let verified = dev_verifier().verify(&token, NOW_MS).await.unwrap();
    assert_eq!(verified.claims["aud"], "someone-else");
}

#[tokio::test]
async fn malformed_time_claims_are_signature_errors() {
    let secret = DEV_JWT_SECRET.as_bytes();
    for claims in [
        json!({"exp": "9999999999"}),
        json!({"nbf": null}),
        json!({"iat": "now"}),
    ] {
        let token = sign_hmac(Algorithm::HS256, secret, &claims);
        let err = dev_verifier().verify(&token, NOW_MS).await.unwrap_err();
        assert_eq!(err.code(), "invalid_claim", "{claims}");
        assert_eq!(err.triplit_name(), "InvalidTokenSignatureError");
    }
}

#[tokio::test]
async fn claims_keep_their_order_and_duplicates_resolve_to_the_last() {
    let payload = r#"{"role":"user","b":1,"a":2,"role":"admin"}"#;
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let signing_input = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes())
    );
    let key = jsonwebtoken::EncodingKey::from_secret(DEV_JWT_SECRET.as_bytes());
    let signature =
        jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256).unwrap();
    let token = format!("{signing_input}.{signature}");
    let verified = dev_verifier().verify(&token, NOW_MS).await.unwrap();
    // JSON.parse: last value wins, first position kept.
    let keys: Vec<&str> = verified.claims.keys().map(String::as_str).collect();
    assert_eq!(keys, ["role", "b", "a"]);
    assert_eq!(verified.claims["role"], "admin");
}

#[tokio::test]
async fn tampered_payload_fails() {
    let token = dev_tokens(DEV_JWT_SECRET, DEV_PROJECT_ID).anon;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = b64url(br#"{"x-triplit-token-type":"secret"}"#);
    let err = dev_verifier()
        .verify(&parts.join("."), NOW_MS)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_signature");
}

#[tokio::test]
async fn error_json_matches_upstream_shape() {
    let err = dev_verifier().verify("garbage", NOW_MS).await.unwrap_err();
    assert_eq!(
        err.triplit_json(),
        json!({
            "name": "InvalidTokenPayloadError",
            "message": "The token payload is invalid. | Context: Token could not be decoded as a valid JWT",
            "baseMessage": "The token payload is invalid.",
            "status": 400,
            "contextMessage": "Token could not be decoded as a valid JWT",
        })
    );
}
