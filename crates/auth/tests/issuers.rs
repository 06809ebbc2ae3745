//! Configured issuers against a fake fetcher: selection by `iss`, per-issuer
//! key isolation, the `iss`/`aud`/`azp`/leeway rules, the default issuer,
//! the Triplit fallback and static key sets. Time is injected (`now_ms`).

mod support;

use std::sync::Arc;

use ferry_auth::{AuthError, FetchPolicy, IssuerConfig, Issuers, KeySlot, TokenVerifier};
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn one_issuers_key_never_verifies_anothers_tokens() {
    let fake = Arc::new(Fake::default());
    fake.serve(JWKS, Ok(jwks(&[0])));
    fake.serve(OTHER_JWKS, Ok(jwks(&[1])));
    let v = verifier(
        &fake,
        vec![
            IssuerConfig::jwks_url(Some(IDP), JWKS),
            IssuerConfig::jwks_url(Some(OTHER), OTHER_JWKS),
        ],
    );
    assert_eq!(code(&v, &token(0, IDP, json!({})), NOW_MS).await, "ok");
    assert_eq!(code(&v, &token(1, OTHER, json!({})), NOW_MS).await, "ok");
    // Issuer A's key (and kid), claiming issuer B: B has no such key.
    assert_eq!(
        code(&v, &token(0, OTHER, json!({})), NOW_MS).await,
        "unknown_kid"
    );
    assert_eq!(
        code(&v, &token(1, IDP, json!({})), NOW_MS).await,
        "unknown_kid"
    );
    // Unknown issuers are refused without any fetch.
    let before = fake.calls.lock().unwrap().len();
    let unknown = v
        .verify(&token(0, "https://evil.example", json!({})), NOW_MS)
        .await;
    assert_eq!(
        unknown.unwrap_err(),
        AuthError::UnknownIssuer {
            iss: Some("https://evil.example".into())
        }
    );
    assert_eq!(fake.calls.lock().unwrap().len(), before);
}

#[tokio::test]
async fn claim_rules() {
    let fake = Arc::new(Fake::default());
    fake.serve(JWKS, Ok(jwks(&[0])));
    let config = IssuerConfig::jwks_url(Some(IDP), JWKS)
        .with_audiences(vec!["api".into()])
        .with_authorized_parties(vec!["https://app.example".into()]);
    let v = verifier(&fake, vec![config]);
    let good = json!({"aud": ["x", "api"], "azp": "https://app.example"});
    assert_eq!(code(&v, &token(0, IDP, good.clone()), NOW_MS).await, "ok");
    let with = |extra: Value| {
        let mut merged = good.as_object().cloned().unwrap();
        merged.extend(extra.as_object().cloned().unwrap());
        token(0, IDP, Value::Object(merged))
    };
    let cases = [
        (json!({"aud": "other"}), "audience"),
        (json!({"aud": null}), "audience"),
        (json!({"azp": "https://evil.example"}), "azp"),
        (json!({"azp": null}), "azp"),
        (json!({"exp": null}), "missing_claim"),
        (json!({"sub": null}), "missing_claim"),
        (json!({"sub": ""}), "missing_claim"),
        (json!({"exp": "soon"}), "invalid_claim"),
        (json!({"exp": NOW_S - 10}), "expired"),
        (json!({"nbf": NOW_S + 10}), "not_yet_valid"),
        (json!({"iat": NOW_S + 10}), "issued_in_future"),
    ];
    for (extra, expected) in cases {
        assert_eq!(
            code(&v, &with(extra.clone()), NOW_MS).await,
            expected,
            "{extra}"
        );
    }
    // The Triplit rule for Triplit's own token types is untouched: an
    // issuer-signed "anon" token goes to JWT_SECRET and fails there.
    let anon = with(json!({"x-triplit-token-type": "anon"}));
    assert_eq!(code(&v, &anon, NOW_MS).await, "key_mismatch");
}

#[tokio::test]
async fn leeway_is_per_issuer() {
    let fake = Arc::new(Fake::default());
    fake.serve(JWKS, Ok(jwks(&[0])));
    let v = verifier(&fake, vec![IssuerConfig::jwks_url(Some(IDP), JWKS)]);
    let exp = token(0, IDP, json!({"exp": NOW_S}));
    // Default 5 s: accepted up to exp + 4.999 s, refused at exp + 5 s.
    assert_eq!(code(&v, &exp, NOW_MS + 4_999).await, "ok");
    assert_eq!(code(&v, &exp, NOW_MS + 5_000).await, "expired");
    let early = token(0, IDP, json!({"iat": NOW_S + 5, "nbf": NOW_S + 5}));
    assert_eq!(code(&v, &early, NOW_MS).await, "ok");
    let strict = verifier(
        &fake,
        vec![IssuerConfig::jwks_url(Some(IDP), JWKS).with_leeway_ms(0)],
    );
    assert_eq!(code(&strict, &exp, NOW_MS).await, "expired");
    assert_eq!(code(&strict, &early, NOW_MS).await, "not_yet_valid");
}

#[tokio::test]
async fn default_issuer_and_triplit_fallback() {
    let fake = Arc::new(Fake::default());
    fake.serve(JWKS, Ok(jwks(&[0])));
    // With an issuer for IDP only, an HS256 token signed with JWT_SECRET
    // (a gateway token) still follows the Triplit rule.
    let v = verifier(&fake, vec![IssuerConfig::jwks_url(Some(IDP), JWKS)]);
    let gateway = ferry_auth::sign_hs256(&claims("gateway", json!({})), "jwt-secret");
    let verified = v.verify(&gateway, NOW_MS).await.unwrap();
    assert_eq!(verified.verified_with, KeySlot::JwtSecret);
    // An RS256 token of an unknown issuer is reported as such.
    assert_eq!(
        code(&v, &token(1, OTHER, json!({})), NOW_MS).await,
        "unknown_issuer"
    );
    // A default issuer (no `issuer`) takes every external token.
    let v = verifier(&fake, vec![IssuerConfig::jwks_url(None, JWKS)]);
    assert_eq!(
        code(&v, &token(0, "anything", json!({})), NOW_MS).await,
        "ok"
    );
    assert_eq!(
        code(&v, &token(0, "anything", json!({"iss": null})), NOW_MS).await,
        "ok"
    );
    // It cannot be combined with EXTERNAL_JWT_SECRET, nor doubled.
    let issuers = Issuers::new(
        vec![IssuerConfig::jwks_url(None, JWKS)],
        fake.clone(),
        FetchPolicy::default(),
    )
    .unwrap();
    let err = TokenVerifier::new(Some("s"), Some("e"))
        .unwrap()
        .with_issuers(issuers)
        .unwrap_err();
    assert_eq!(err.code(), "default_issuer_conflict");
    let twice = vec![
        IssuerConfig::jwks_url(None, JWKS),
        IssuerConfig::jwks_url(None, OTHER_JWKS),
    ];
    let err = Issuers::new(twice, fake.clone(), FetchPolicy::default()).unwrap_err();
    assert_eq!(err.code(), "several_default_issuers");
    let dup = vec![
        IssuerConfig::jwks_url(Some(IDP), JWKS),
        IssuerConfig::oidc(IDP),
    ];
    assert_eq!(
        Issuers::new(dup, fake.clone(), FetchPolicy::default())
            .unwrap_err()
            .code(),
        "duplicate_issuer"
    );
    let insecure = vec![IssuerConfig::jwks_url(Some(IDP), "http://idp.example/jwks")];
    assert_eq!(
        Issuers::new(insecure, fake, FetchPolicy::default())
            .unwrap_err()
            .code(),
        "insecure_url"
    );
}

#[tokio::test]
async fn static_keys_and_jwks_external_secret() {
    let fake = Arc::new(Fake::default());
    let set = json!({"keys": [jwk(0), jwk(1)]}).to_string();
    let v = verifier(
        &fake,
        vec![IssuerConfig::static_keys(Some(IDP), &set).unwrap()],
    );
    assert_eq!(code(&v, &token(1, IDP, json!({})), NOW_MS).await, "ok");
    assert_eq!(
        code(&v, &token(2, IDP, json!({})), NOW_MS).await,
        "unknown_kid"
    );
    assert!(fake.calls.lock().unwrap().is_empty());
    // The Triplit path with a JWK Set in EXTERNAL_JWT_SECRET: by kid, with
    // Triplit's claim rules (no exp needed).
    let triplit = TokenVerifier::new(Some("jwt-secret"), Some(&set)).unwrap();
    let no_exp = token(1, IDP, json!({"exp": null}));
    let verified = triplit.verify(&no_exp, NOW_MS).await.unwrap();
    assert_eq!(verified.verified_with, KeySlot::ExternalJwtSecret);
    assert_eq!(verified.expires_at_ms, None);
    assert_eq!(
        code(&triplit, &token(2, IDP, json!({})), NOW_MS).await,
        "unknown_kid"
    );
    // A JWK's `alg` pins the algorithm: an RS256-only key refuses PS256.
    let mut pinned = jwk(0);
    pinned["alg"] = "RS256".into();
    let pinned =
        TokenVerifier::new(Some("s"), Some(&json!({"keys": [pinned]}).to_string())).unwrap();
    let ps256 = {
        use jsonwebtoken::{Algorithm, EncodingKey, Header};
        let mut header = Header::new(Algorithm::PS256);
        header.kid = Some(key(0).kid().to_owned());
        let encoding = EncodingKey::from_rsa_pem(key(0).private_key_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims(IDP, json!({})), &encoding).unwrap()
    };
    assert_eq!(code(&pinned, &ps256, NOW_MS).await, "key_mismatch");
}
