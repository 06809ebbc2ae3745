//! The local issuer end to end: it serves its JWKS and discovery over real
//! HTTP on 127.0.0.1, and Ferry verifies its Clerk-shaped tokens through
//! the Clerk preset (publishable key), OIDC discovery, a JWKS URL and the
//! Triplit-style PEM secret.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ferry_auth::local_issuer::{LocalIssuer, MintRequest};
use ferry_auth::{
    ClerkPublishableKey, FetchPolicy, HttpFetcher, IssuerConfig, Issuers, KeySlot, ReqwestFetcher,
    TokenVerifier,
};
use serde_json::json;

const NOW_S: u64 = 1_800_000_000;
const NOW_MS: u64 = NOW_S * 1000;

async fn route(State(issuer): State<Arc<LocalIssuer>>, request: Request) -> Response {
    let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let reply = issuer.handle(target, NOW_S);
    let status = axum::http::StatusCode::from_u16(reply.status).unwrap();
    let mut response = (
        status,
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response();
    if let Some(cache) = reply.cache_control {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, cache.parse().unwrap());
    }
    response
}

/// Serves a fresh local issuer on 127.0.0.1 and returns it.
async fn serve() -> Arc<LocalIssuer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let issuer = Arc::new(LocalIssuer::generate(&format!("http://{addr}")).unwrap());
    let app = axum::Router::new()
        .fallback(route)
        .with_state(issuer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    issuer
}

fn verifier(configs: Vec<IssuerConfig>) -> TokenVerifier {
    let fetcher: Arc<dyn HttpFetcher> = Arc::new(ReqwestFetcher::new().unwrap());
    let issuers = Issuers::new(configs, fetcher, FetchPolicy::default()).unwrap();
    TokenVerifier::new(Some("jwt-secret"), None)
        .unwrap()
        .with_issuers(issuers)
        .unwrap()
}

#[tokio::test]
async fn clerk_preset_round_trip_over_http() {
    let issuer = serve().await;
    let pk = issuer.publishable_key();
    assert!(pk.starts_with("pk_test_"));
    let decoded = ClerkPublishableKey::parse(&pk).unwrap();
    assert_eq!(decoded.issuer_url(), issuer.issuer());
    let config = IssuerConfig::clerk(&pk)
        .unwrap()
        .with_authorized_parties(vec!["http://localhost:5173".into()]);
    let v = verifier(vec![config]);
    let mut request = MintRequest::new("user_A");
    request.email = Some("a@x.dev".into());
    request.azp = Some("http://localhost:5173".into());
    let token = issuer.mint(&request, NOW_S).unwrap();
    let verified = v.verify(&token, NOW_MS).await.unwrap();
    assert_eq!(verified.verified_with, KeySlot::Issuer);
    let c = &verified.claims;
    assert_eq!(c["sub"], "user_A");
    assert_eq!(c["email"], "a@x.dev");
    assert_eq!(c["iss"], issuer.issuer());
    assert_eq!(c["v"], 2);
    assert_eq!(c["sid"], "sess_user_A");
    assert_eq!(c["fva"], json!([0, -1]));
    assert_eq!(c["nbf"], NOW_S - 5);
    assert_eq!(verified.expires_at_ms, Some((NOW_S + 60) * 1000));
    // An open socket stays usable as long as the token verifies: the leeway too.
    assert_eq!(verified.leeway_ms, 5_000);
    assert_eq!(verified.usable_until_ms(), Some((NOW_S + 65) * 1000));
    // Clerk's 60 s lifetime, plus the 5 s leeway.
    assert_eq!(v.verify(&token, NOW_MS + 64_999).await.map(|_| ()), Ok(()));
    assert_eq!(
        v.verify(&token, NOW_MS + 65_000).await.unwrap_err().code(),
        "expired"
    );
    // The authorized-party rule.
    let no_azp = issuer.mint(&MintRequest::new("user_A"), NOW_S).unwrap();
    assert_eq!(v.verify(&no_azp, NOW_MS).await.unwrap_err().code(), "azp");
    // A Clerk machine token (header `cat`) signed by the same key is refused.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(issuer.kid().to_owned());
    header.extras.insert("cat", "cl_B7d4PD333AAA");
    let encoding =
        jsonwebtoken::EncodingKey::from_rsa_pem(issuer.private_key_pem().as_bytes()).unwrap();
    let claims = issuer.claims(&request, NOW_S).unwrap();
    let m2m = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    assert_eq!(
        v.verify(&m2m, NOW_MS).await.unwrap_err().code(),
        "token_class"
    );
}

#[tokio::test]
async fn discovery_and_jwks_url_over_http() {
    let issuer = serve().await;
    let token = issuer.mint(&MintRequest::new("user_B"), NOW_S).unwrap();
    for config in [
        IssuerConfig::oidc(issuer.issuer()),
        IssuerConfig::jwks_url(Some(issuer.issuer()), &issuer.jwks_url()),
        IssuerConfig::jwks_url(None, &issuer.jwks_url()),
    ] {
        let v = verifier(vec![config]);
        let reports = v.prefetch(NOW_MS).await;
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].result, Ok(1));
        assert_eq!(
            v.verify(&token, NOW_MS).await.unwrap().claims["sub"],
            "user_B"
        );
    }
    // Another local issuer's tokens, claiming this issuer, are refused.
    let impostor = LocalIssuer::generate(issuer.issuer()).unwrap();
    let forged = impostor.mint(&MintRequest::new("user_B"), NOW_S).unwrap();
    let v = verifier(vec![IssuerConfig::oidc(issuer.issuer())]);
    assert_eq!(
        v.verify(&forged, NOW_MS).await.unwrap_err().code(),
        "unknown_kid"
    );
}

#[tokio::test]
async fn unreachable_issuer_is_jwks_unavailable() {
    // Bind and drop a listener to get a port with nothing on it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let issuer = LocalIssuer::generate(&url).unwrap();
    let v = verifier(vec![IssuerConfig::oidc(&url)]);
    let token = issuer.mint(&MintRequest::new("user_C"), NOW_S).unwrap();
    let err = v.verify(&token, NOW_MS).await.unwrap_err();
    assert_eq!(err.code(), "jwks_unavailable");
    assert_eq!(err.issuer(), Some(url.as_str()));
}

#[tokio::test]
async fn triplit_style_pem_secret_verifies_local_tokens() {
    let issuer = LocalIssuer::generate("http://127.0.0.1:6544").unwrap();
    let one_line: String = issuer.public_key_pem().lines().collect();
    let v = TokenVerifier::new(Some("jwt-secret"), Some(&one_line)).unwrap();
    let token = issuer.mint(&MintRequest::new("user_D"), NOW_S).unwrap();
    let verified = v.verify(&token, NOW_MS).await.unwrap();
    assert_eq!(verified.verified_with, KeySlot::ExternalJwtSecret);
    // Persisted keys give the same kid and public key.
    let again = LocalIssuer::from_private_pem(issuer.issuer(), &issuer.private_key_pem()).unwrap();
    assert_eq!(again.kid(), issuer.kid());
    assert_eq!(again.jwks(), issuer.jwks());
}

#[test]
fn routes_as_plain_functions() {
    let issuer = LocalIssuer::generate("http://127.0.0.1:6544").unwrap();
    let jwks = issuer.handle("/.well-known/jwks.json", NOW_S);
    assert_eq!(jwks.status, 200);
    let doc: serde_json::Value = serde_json::from_str(&jwks.body).unwrap();
    assert_eq!(doc["keys"][0]["kid"], issuer.kid());
    assert_eq!(doc["keys"][0]["alg"], "RS256");
    let discovery: serde_json::Value = serde_json::from_str(
        &issuer
            .handle("/.well-known/openid-configuration", NOW_S)
            .body,
    )
    .unwrap();
    assert_eq!(discovery["issuer"], "http://127.0.0.1:6544");
    assert_eq!(
        discovery["jwks_uri"],
        "http://127.0.0.1:6544/.well-known/jwks.json"
    );
    let minted = issuer.handle("/token?sub=user_A&email=a%40x.dev&ttl=120", NOW_S);
    assert_eq!(minted.status, 200);
    assert_eq!(minted.body.split('.').count(), 3);
    for bad in [
        "/token?ttl=0",
        "/token?ttl=x",
        "/token?sub=",
        "/token?what=1",
    ] {
        assert_eq!(issuer.handle(bad, NOW_S).status, 400, "{bad}");
    }
    assert_eq!(issuer.handle("/nope", NOW_S).status, 404);
    let err = LocalIssuer::from_private_pem("http://127.0.0.1:1", "nope").unwrap_err();
    assert_eq!(err.code(), "invalid_key");
    assert_eq!(
        LocalIssuer::generate("not a url").unwrap_err().code(),
        "invalid_issuer"
    );
}

fn kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn key_rotation_is_followed_through_the_jwks() {
    let issuer = serve().await;
    let v = verifier(vec![
        IssuerConfig::clerk(&issuer.publishable_key()).unwrap(),
    ]);
    let old_kid = issuer.kid();
    let before = issuer.mint(&MintRequest::new("user_A"), NOW_S).unwrap();
    v.verify(&before, NOW_MS).await.unwrap();

    let new_kid = issuer.rotate().unwrap();
    assert_ne!(new_kid, old_kid);
    assert_eq!(issuer.kid(), new_kid);
    assert_eq!(kids(&issuer.jwks()), vec![new_kid.clone(), old_kid.clone()]);
    let after = issuer.mint(&MintRequest::new("user_A"), NOW_S).unwrap();
    let header = jsonwebtoken::decode_header(&after).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));

    // Within 30 s of the last fetch an unknown kid does not refetch…
    assert_eq!(
        v.verify(&after, NOW_MS + 1_000).await.unwrap_err().code(),
        "unknown_kid"
    );
    // …after that the refetch finds the new key, and tokens minted before
    // the rotation keep verifying with the retired one.
    v.verify(&after, NOW_MS + 31_000).await.unwrap();
    v.verify(&before, NOW_MS + 31_000).await.unwrap();

    // A second rotation drops the first key from the JWKS.
    let third = issuer.rotate().unwrap();
    assert_eq!(kids(&issuer.jwks()), vec![third, new_kid]);
    let post = issuer.handle_post("/rotate");
    assert_eq!(post.status, 200);
    assert_eq!(post.body, issuer.kid());
    assert_eq!(issuer.handle_post("/nope").status, 404);
}
