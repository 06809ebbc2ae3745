//! Public-key secrets: PEM layouts, JWKs, every supported algorithm, tokens
//! signed by Node's crypto, key confusion and refused key types.

mod common;

use common::*;
use ferry_auth::{KeyFamily, KeySlot, TokenVerifier, VerificationKey, normalize_pem};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

const JWT_SECRET: &str = "triplit-hmac-secret";

/// A verifier whose external tokens use `external`.
fn external(external: &str) -> TokenVerifier {
    TokenVerifier::new(Some(JWT_SECRET), Some(external)).expect("external secret")
}

async fn assert_external_ok(verifier: &TokenVerifier, token: &str) {
    let verified = verifier
        .verify(token, NOW_MS)
        .await
        .expect("token verifies");
    assert_eq!(verified.claims["sub"], "user_1");
    assert_eq!(verified.verified_with, KeySlot::ExternalJwtSecret);
}

/// The RSA public PEM in several layouts people paste.
fn rsa_pem_layouts() -> Vec<(&'static str, String)> {
    let pem = fixture("rsa.pub.pem");
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    vec![
        ("multi-line", pem.clone()),
        ("single line", pem.replace('\n', "")),
        ("single line with spaces", pem.replace('\n', " ")),
        (
            "indented",
            pem.lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>(),
        ),
        ("CRLF", pem.replace('\n', "\r\n")),
        ("literal \\n escapes", pem.replace('\n', "\\n")),
        ("leading newline", format!("\n{pem}")),
        (
            "one-line body between armour lines",
            format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----"),
        ),
    ]
}

#[tokio::test]
async fn rs256_with_every_pem_layout() {
    let token = sign_pem(Algorithm::RS256, "rsa.key", &external_claims());
    for (layout, pem) in rsa_pem_layouts() {
        let verifier = external(&pem);
        assert_eq!(
            verifier.external_key_family(),
            Some(KeyFamily::Rsa),
            "{layout}"
        );
        assert_eq!(verifier.jwt_key_family(), Some(KeyFamily::Hmac));
        assert_external_ok(&verifier, &token).await;
        assert_eq!(
            normalize_pem(&pem).unwrap(),
            fixture("rsa.pub.pem"),
            "{layout}"
        );
    }
}

#[tokio::test]
async fn rs256_with_pkcs1_pem() {
    let token = sign_pem(Algorithm::RS256, "rsa.key", &external_claims());
    assert_external_ok(&external(&fixture("rsa.pkcs1.pub.pem")), &token).await;
}

#[tokio::test]
async fn all_rsa_algorithms() {
    let verifier = external(&fixture("rsa.pub.pem"));
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        let token = sign_pem(alg, "rsa.key", &external_claims());
        assert_external_ok(&verifier, &token).await;
    }
}

#[tokio::test]
async fn ec_and_eddsa() {
    let cases = [
        (
            Algorithm::ES256,
            "ec256.key",
            "ec256.pub.pem",
            KeyFamily::EcP256,
        ),
        (
            Algorithm::ES384,
            "ec384.key",
            "ec384.pub.pem",
            KeyFamily::EcP384,
        ),
        (
            Algorithm::EdDSA,
            "ed25519.key",
            "ed25519.pub.pem",
            KeyFamily::Ed25519,
        ),
    ];
    for (alg, private, public, family) in cases {
        let verifier = external(&fixture(public));
        assert_eq!(verifier.external_key_family(), Some(family));
        assert_external_ok(&verifier, &sign_pem(alg, private, &external_claims())).await;
        let one_line = fixture(public).replace('\n', "");
        assert_external_ok(
            &external(&one_line),
            &sign_pem(alg, private, &external_claims()),
        )
        .await;
    }
}

#[tokio::test]
async fn compressed_ec_point() {
    let verifier = external(&fixture("ec256.compressed.pub.pem"));
    assert_eq!(verifier.external_key_family(), Some(KeyFamily::EcP256));
    let token = sign_pem(Algorithm::ES256, "ec256.key", &external_claims());
    assert_external_ok(&verifier, &token).await;
}

#[tokio::test]
async fn node_signed_tokens_verify_with_pem_and_jwk() {
    let node = node_fixtures();
    let cases = [
        ("RS256", "rsa.pub.pem", "rsa"),
        ("RS384", "rsa.pub.pem", "rsa"),
        ("RS512", "rsa.pub.pem", "rsa"),
        ("PS256", "rsa.pub.pem", "rsa"),
        ("PS384", "rsa.pub.pem", "rsa"),
        ("PS512", "rsa.pub.pem", "rsa"),
        ("ES256", "ec256.pub.pem", "ec256"),
        ("ES384", "ec384.pub.pem", "ec384"),
        ("EdDSA", "ed25519.pub.pem", "ed25519"),
    ];
    for (alg, pem, jwk) in cases {
        let token = node["tokens"][alg].as_str().unwrap();
        let jwk_json = node["jwks"][jwk].to_string();
        for secret in [fixture(pem), jwk_json] {
            let verified = external(&secret)
                .verify(token, NOW_MS)
                .await
                .unwrap_or_else(|e| panic!("{alg} with {secret}: {e}"));
            assert_eq!(verified.claims["sub"], node["claims"]["sub"]);
            assert_eq!(verified.expires_at_ms, Some(4_102_444_800_000));
        }
    }
}

#[tokio::test]
async fn rs256_with_a_jwk_carrying_alg_use_and_kid() {
    let mut jwk = node_fixtures()["jwks"]["rsa"].clone();
    jwk["alg"] = json!("RS256");
    jwk["use"] = json!("sig");
    jwk["kid"] = json!("fixture");
    let verifier = external(&jwk.to_string());
    assert_eq!(verifier.external_key_family(), Some(KeyFamily::Rsa));
    let token = sign_pem(Algorithm::RS256, "rsa.key", &external_claims());
    assert_external_ok(&verifier, &token).await;
    // Pretty-printed JSON is still one JWK.
    let pretty = serde_json::to_string_pretty(&jwk).unwrap();
    assert_external_ok(&external(&pretty), &token).await;
}

#[tokio::test]
async fn jwt_secret_may_be_a_public_key_too() {
    let verifier = TokenVerifier::new(Some(&fixture("ed25519.pub.pem")), None).unwrap();
    let service = json!({"x-triplit-token-type": "secret"});
    let token = sign_pem(Algorithm::EdDSA, "ed25519.key", &service);
    assert!(verifier.verify(&token, NOW_MS).await.unwrap().is_service());
    // External tokens fall back to the same key.
    let token = sign_pem(Algorithm::EdDSA, "ed25519.key", &external_claims());
    let verified = verifier.verify(&token, NOW_MS).await.unwrap();
    assert_eq!(verified.verified_with, KeySlot::JwtSecret);
}

#[tokio::test]
async fn hs256_external_token_refused_with_rsa_key() {
    let verifier = external(&fixture("rsa.pub.pem"));
    // Signed with JWT_SECRET: upstream refuses it once an external key is set.
    let token = sign_hmac(Algorithm::HS256, JWT_SECRET.as_bytes(), &external_claims());
    let err = verifier.verify(&token, NOW_MS).await.unwrap_err();
    assert_eq!(err.code(), "key_mismatch");
    assert_eq!(err.triplit_name(), "InvalidTokenSignatureError");
    assert_eq!(
        err.context().as_deref(),
        Some(
            "KeyObject or CryptoKey instances for symmetric algorithms must be of type \"secret\""
        )
    );
    // The key-confusion forgery: HMAC keyed with the public PEM itself.
    for forged in [
        node_fixtures()["tokens"]["HS256_with_rsa_pem_as_secret"]
            .as_str()
            .unwrap()
            .to_owned(),
        sign_hmac(
            Algorithm::HS256,
            fixture("rsa.pub.pem").as_bytes(),
            &external_claims(),
        ),
    ] {
        assert_eq!(
            verifier.verify(&forged, NOW_MS).await.unwrap_err().code(),
            "key_mismatch"
        );
    }
}

#[tokio::test]
async fn algorithms_are_pinned_to_the_key() {
    let rsa_token = sign_pem(Algorithm::RS256, "rsa.key", &external_claims());
    let es256 = sign_pem(Algorithm::ES256, "ec256.key", &external_claims());
    let es384 = sign_pem(Algorithm::ES384, "ec384.key", &external_claims());
    let eddsa = sign_pem(Algorithm::EdDSA, "ed25519.key", &external_claims());
    let cases = [
        ("ec256.pub.pem", &rsa_token),
        ("ec256.pub.pem", &es384),
        ("ec384.pub.pem", &es256),
        ("ed25519.pub.pem", &es256),
        ("rsa.pub.pem", &eddsa),
        ("rsa.pub.pem", &es256),
    ];
    for (key, token) in cases {
        let err = external(&fixture(key))
            .verify(token, NOW_MS)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "key_mismatch", "{key}");
    }
    let err = external(&fixture("ec256.pub.pem"))
        .verify(&es384, NOW_MS)
        .await
        .unwrap_err();
    assert_eq!(
        err.context().as_deref(),
        Some("Invalid key curve for the algorithm, its curve must be P-384, got P-256")
    );
}

#[tokio::test]
async fn wrong_public_key_is_a_signature_error() {
    let token = sign_pem(Algorithm::RS256, "rsa.key", &external_claims());
    let err = external(&fixture("rsa-other.pub.pem"))
        .verify(&token, NOW_MS)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_signature");
    assert_eq!(err.triplit_name(), "InvalidTokenSignatureError");
}

#[tokio::test]
async fn asymmetric_tokens_expire_too() {
    let verifier = external(&fixture("rsa.pub.pem"));
    let expired = sign_pem(
        Algorithm::RS256,
        "rsa.key",
        &json!({"sub": "u", "exp": NOW_S - 1}),
    );
    assert_eq!(
        verifier.verify(&expired, NOW_MS).await.unwrap_err().code(),
        "expired"
    );
    let later = sign_pem(
        Algorithm::RS256,
        "rsa.key",
        &json!({"sub": "u", "nbf": NOW_S + 5}),
    );
    assert_eq!(
        verifier.verify(&later, NOW_MS).await.unwrap_err().code(),
        "not_yet_valid"
    );
    let forever = sign_pem(Algorithm::RS256, "rsa.key", &json!({"sub": "u"}));
    assert_eq!(
        verifier
            .verify(&forever, NOW_MS)
            .await
            .unwrap()
            .expires_at_ms,
        None
    );
}

#[tokio::test]
async fn alg_none_is_refused_by_public_keys() {
    for key in ["rsa.pub.pem", "ec256.pub.pem", "ed25519.pub.pem"] {
        let token = raw_token(r#"{"alg":"none"}"#, r#"{"sub":"admin"}"#, "");
        let err = external(&fixture(key))
            .verify(&token, NOW_MS)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "algorithm_not_allowed", "{key}");
        assert_eq!(
            err.context().as_deref(),
            Some("alg none is not supported either by JOSE or your javascript runtime")
        );
    }
}

#[test]
fn unusable_keys_are_refused_at_start_up() {
    let rsa_jwk: Value = node_fixtures()["jwks"]["rsa"].clone();
    let cases = [
        (fixture("ec521.pub.pem"), "unsupported_key"),
        (fixture("ed448.pub.pem"), "unsupported_key"),
        (fixture("rsa1024.pub.pem"), "rsa_key_size"),
        (fixture("rsa.key"), "unsupported_pem"),
        (
            fixture("rsa.pub.pem").replace("-----END PUBLIC KEY-----", ""),
            "invalid_pem",
        ),
        // A PEM left in its quotes (a JSON string): never an HMAC secret.
        (
            format!("\"{}\"", fixture("rsa.pub.pem").replace('\n', "\\n")),
            "misplaced_pem",
        ),
        ("12345".to_owned(), "json_not_jwk"),
        (format!("'{}'", fixture("rsa.pub.pem")), "misplaced_pem"),
    ];
    for (secret, code) in cases {
        let err = TokenVerifier::new(Some(JWT_SECRET), Some(&secret)).unwrap_err();
        assert_eq!(err.code(), code, "{secret}");
        assert_eq!(err.slot, Some(KeySlot::ExternalJwtSecret));
        let err = TokenVerifier::new(Some(&secret), None).unwrap_err();
        assert_eq!(err.slot, Some(KeySlot::JwtSecret));
        assert!(err.to_string().starts_with("JWT_SECRET: "));
    }
    // A JWK Set is fine as EXTERNAL_JWT_SECRET (picked by kid), not as
    // JWT_SECRET, and it must hold a usable key.
    let set = json!({"keys": [rsa_jwk]}).to_string();
    assert!(TokenVerifier::new(Some(JWT_SECRET), Some(&set)).is_ok());
    let err = TokenVerifier::new(Some(&set), None).unwrap_err();
    assert_eq!(err.code(), "jwk_set");
    let empty = TokenVerifier::new(Some(JWT_SECRET), Some(r#"{"keys":[]}"#)).unwrap_err();
    assert_eq!(empty.code(), "empty_jwk_set");
}

#[test]
fn a_bare_base64_public_key_is_not_an_hmac_secret() {
    let pem = fixture("rsa.pub.pem");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let err = VerificationKey::parse(&body).unwrap_err();
    assert_eq!(err.code(), "bare_public_key");
}

#[test]
fn signature_only_check() {
    let key = VerificationKey::parse(&fixture("rsa.pub.pem")).unwrap();
    assert_eq!(key.family(), KeyFamily::Rsa);
    let token = sign_pem(Algorithm::RS256, "rsa.key", &json!({"exp": 1}));
    // Expired, but the JWS layer alone is fine.
    assert!(key.verify_signature(&token).is_ok());
    let mut tampered = token.clone();
    tampered.push('A');
    assert_eq!(
        key.verify_signature(&tampered).unwrap_err().code(),
        "bad_signature"
    );
}
