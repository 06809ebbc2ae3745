//! Fetched keys against a fake fetcher: JWKS rotation, `Cache-Control`
//! freshness, the single-flight refetch rate limit, OIDC discovery and
//! stale keys while the issuer is down. Time is injected (`now_ms`);
//! nothing here sleeps.

mod support;

use std::sync::Arc;

use ferry_auth::{AuthError, FetchError, HttpResponse, IssuerConfig, KeySlot};
use serde_json::json;
use support::*;
use tokio::sync::Semaphore;

#[tokio::test]
async fn jwks_rotation_and_cache_control() {
    let fake = Arc::new(Fake::default());
    let mut first = jwks(&[0]);
    first.cache_control = Some("public, max-age=300".into());
    fake.serve(JWKS, Ok(first));
    let v = verifier(&fake, vec![IssuerConfig::jwks_url(Some(IDP), JWKS)]);
    let verified = v.verify(&token(0, IDP, json!({})), NOW_MS).await.unwrap();
    assert_eq!(verified.verified_with, KeySlot::Issuer);
    assert_eq!(verified.issuer.as_deref(), Some(IDP));
    assert_eq!(verified.expires_at_ms, Some((NOW_S + 60) * 1000));
    assert_eq!(fake.calls(JWKS), 1);
    // Cached: no new fetch for a known kid.
    assert_eq!(
        code(&v, &token(0, IDP, json!({})), NOW_MS + 1000).await,
        "ok"
    );
    assert_eq!(fake.calls(JWKS), 1);
    // The issuer rotates: key 1 appears; its first token triggers a refetch.
    fake.serve(JWKS, Ok(jwks(&[0, 1])));
    let later = NOW_MS + 60_000;
    let rotated = token(
        1,
        IDP,
        json!({"iat": later / 1000, "exp": later / 1000 + 60}),
    );
    assert_eq!(code(&v, &rotated, later).await, "ok");
    assert_eq!(fake.calls(JWKS), 2);
    // Key 0 is withdrawn; still accepted while the set is fresh (default
    // TTL 10 min from the last fetch), refused once it expires.
    fake.serve(JWKS, Ok(jwks(&[1])));
    let t = |ms: u64| token(0, IDP, json!({"iat": ms / 1000, "exp": ms / 1000 + 60}));
    let fresh = later + 9 * 60_000;
    assert_eq!(code(&v, &t(fresh), fresh).await, "ok");
    let expired = later + 10 * 60_000 + 1;
    assert_eq!(code(&v, &t(expired), expired).await, "unknown_kid");
    assert_eq!(fake.calls(JWKS), 3);
}

#[tokio::test]
async fn max_age_is_clamped() {
    let fake = Arc::new(Fake::default());
    let mut short = jwks(&[0]);
    short.cache_control = Some("max-age=1".into());
    fake.serve(JWKS, Ok(short));
    let v = verifier(&fake, vec![IssuerConfig::jwks_url(Some(IDP), JWKS)]);
    assert_eq!(code(&v, &token(0, IDP, json!({})), NOW_MS).await, "ok");
    // max-age=1 is raised to the 60 s minimum: no refetch at +30 s.
    assert_eq!(
        code(&v, &token(0, IDP, json!({})), NOW_MS + 30_000).await,
        "ok"
    );
    assert_eq!(fake.calls(JWKS), 1);
    assert_eq!(
        code(
            &v,
            &token(0, IDP, json!({"exp": NOW_S + 200})),
            NOW_MS + 61_000
        )
        .await,
        "ok"
    );
    assert_eq!(fake.calls(JWKS), 2);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_once_per_interval() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = Arc::new(Fake {
        gate: Some(gate.clone()),
        ..Fake::default()
    });
    fake.serve(JWKS, Ok(jwks(&[0])));
    let v = Arc::new(verifier(
        &fake,
        vec![IssuerConfig::jwks_url(Some(IDP), JWKS)],
    ));
    // Tokens signed by a key the issuer does not publish, each with its own
    // made-up kid (the header kid is the signer's; rewrite it).
    let forged: Vec<String> = (0..50)
        .map(|i| {
            let t = token(1, IDP, json!({}));
            let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
            let header = json!({"alg": "RS256", "typ": "JWT", "kid": format!("kid-{i}")});
            parts[0] = b64url(&header.to_string());
            parts.join(".")
        })
        .collect();
    let tasks: Vec<_> = forged
        .into_iter()
        .map(|t| {
            let v = v.clone();
            tokio::spawn(async move { v.verify(&t, NOW_MS).await.map(|_| ()) })
        })
        .collect();
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1000);
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap_err().code(), "unknown_kid");
    }
    assert_eq!(fake.calls(JWKS), 1, "single flight");
    // Within the 30 s interval: still no new fetch.
    let again = token(1, IDP, json!({}));
    assert_eq!(code(&v, &again, NOW_MS + 29_999).await, "unknown_kid");
    assert_eq!(fake.calls(JWKS), 1);
    assert_eq!(v.issuers().fetch_attempts(IDP), Some(1));
    // After it: exactly one more.
    assert_eq!(code(&v, &again, NOW_MS + 30_000).await, "unknown_kid");
    assert_eq!(code(&v, &again, NOW_MS + 30_001).await, "unknown_kid");
    assert_eq!(fake.calls(JWKS), 2);
    // A known kid never waits for a refetch.
    assert_eq!(
        code(&v, &token(0, IDP, json!({})), NOW_MS + 30_002).await,
        "ok"
    );
    assert_eq!(fake.calls(JWKS), 2);
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_checks_the_issuer() {
    let fake = Arc::new(Fake::default());
    let discovery = "https://idp.example/.well-known/openid-configuration";
    let doc = |issuer: &str, jwks_uri: &str| {
        Ok(HttpResponse::ok(
            json!({"issuer": issuer, "jwks_uri": jwks_uri}).to_string(),
        ))
    };
    fake.serve(discovery, doc(IDP, "https://keys.idp.example/jwks"));
    fake.serve("https://keys.idp.example/jwks", Ok(jwks(&[0])));
    let v = verifier(&fake, vec![IssuerConfig::oidc(IDP)]);
    assert_eq!(code(&v, &token(0, IDP, json!({})), NOW_MS).await, "ok");
    assert_eq!(fake.calls(discovery), 1);
    // A document naming another issuer, or an http jwks_uri, is refused.
    for (issuer, uri, reason) in [
        (OTHER, "https://keys.idp.example/jwks", "issuer_mismatch"),
        (IDP, "http://keys.idp.example/jwks", "no_jwks_uri"),
    ] {
        let fake = Arc::new(Fake::default());
        fake.serve(discovery, doc(issuer, uri));
        let v = verifier(&fake, vec![IssuerConfig::oidc(IDP)]);
        let err = v
            .verify(&token(0, IDP, json!({})), NOW_MS)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            AuthError::JwksUnavailable {
                issuer: IDP.into(),
                reason
            }
        );
        assert_eq!(err.code(), "jwks_unavailable");
    }
}

#[tokio::test]
async fn failures_serve_stale_keys_but_not_unknown_kids() {
    let fake = Arc::new(Fake::default());
    fake.serve(JWKS, Err(FetchError::Status(503)));
    let v = verifier(&fake, vec![IssuerConfig::jwks_url(Some(IDP), JWKS)]);
    let t = |ms: u64| token(0, IDP, json!({"iat": ms / 1000, "exp": ms / 1000 + 60}));
    assert_eq!(code(&v, &t(NOW_MS), NOW_MS).await, "jwks_unavailable");
    fake.serve(JWKS, Ok(jwks(&[0])));
    // The failed attempt holds the next one back for 30 s.
    assert_eq!(
        code(&v, &t(NOW_MS + 10_000), NOW_MS + 10_000).await,
        "jwks_unavailable"
    );
    assert_eq!(code(&v, &t(NOW_MS + 30_000), NOW_MS + 30_000).await, "ok");
    // The issuer goes down after the keys expire: the stale set still works.
    fake.serve(JWKS, Err(FetchError::Timeout));
    let later = NOW_MS + 3_600_000;
    assert_eq!(code(&v, &t(later), later).await, "ok");
    assert_eq!(
        code(
            &v,
            &token(
                1,
                IDP,
                json!({"iat": later / 1000, "exp": later / 1000 + 60})
            ),
            later + 40_000
        )
        .await,
        "unknown_kid"
    );
}
