//! Shared helpers for the issuer tests: RSA keys generated once, token
//! minting with chosen claims, and a fake fetcher that serves fixed
//! documents, counts calls and can hold them back behind a gate.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ferry_auth::local_issuer::LocalIssuer;
use ferry_auth::{
    FetchError, FetchFuture, FetchPolicy, HttpFetcher, HttpResponse, IssuerConfig, Issuers,
    TokenVerifier,
};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

pub const NOW_S: u64 = 1_800_000_000;
pub const NOW_MS: u64 = NOW_S * 1000;
pub const IDP: &str = "https://idp.example";
pub const OTHER: &str = "https://other.example";
pub const JWKS: &str = "https://idp.example/jwks";
pub const OTHER_JWKS: &str = "https://other.example/jwks";

/// Three RSA keys, generated once per test binary.
pub fn key(index: usize) -> &'static LocalIssuer {
    static KEYS: OnceLock<Vec<LocalIssuer>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (0..3)
            .map(|_| LocalIssuer::generate("https://unused.example").unwrap())
            .collect()
    })[index]
}

pub fn jwk(index: usize) -> Value {
    key(index).jwks()["keys"][0].clone()
}

pub fn jwks(indexes: &[usize]) -> HttpResponse {
    let keys: Vec<Value> = indexes.iter().map(|&i| jwk(i)).collect();
    HttpResponse::ok(json!({ "keys": keys }).to_string())
}

pub fn claims(iss: &str, extra: Value) -> Map<String, Value> {
    let mut claims =
        json!({"iss": iss, "sub": "user_A", "iat": NOW_S, "nbf": NOW_S - 5, "exp": NOW_S + 60})
            .as_object()
            .cloned()
            .unwrap();
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            if v.is_null() {
                claims.remove(&k);
            } else {
                claims.insert(k, v);
            }
        }
    }
    claims
}

pub fn token(signer: usize, iss: &str, extra: Value) -> String {
    key(signer).sign(&claims(iss, extra)).unwrap()
}

/// A fetcher serving fixed documents, counting calls, optionally held
/// back by a gate so concurrent verifications pile up.
#[derive(Default)]
pub struct Fake {
    pub docs: Mutex<HashMap<String, Result<HttpResponse, FetchError>>>,
    pub calls: Mutex<Vec<String>>,
    pub gate: Option<Arc<Semaphore>>,
}

impl Fake {
    pub fn serve(&self, url: &str, response: Result<HttpResponse, FetchError>) {
        self.docs.lock().unwrap().insert(url.to_owned(), response);
    }
    pub fn calls(&self, url: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|u| *u == url)
            .count()
    }
}

impl HttpFetcher for Fake {
    fn get<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(url.to_owned());
            if let Some(gate) = &self.gate {
                let _ = gate.acquire().await;
            }
            let doc = self.docs.lock().unwrap().get(url).cloned();
            doc.unwrap_or(Err(FetchError::Status(404)))
        })
    }
}

pub fn verifier(fake: &Arc<Fake>, configs: Vec<IssuerConfig>) -> TokenVerifier {
    let issuers = Issuers::new(configs, fake.clone(), FetchPolicy::default()).unwrap();
    TokenVerifier::new(Some("jwt-secret"), None)
        .unwrap()
        .with_issuers(issuers)
        .unwrap()
}

pub async fn code(verifier: &TokenVerifier, token: &str, now_ms: u64) -> &'static str {
    match verifier.verify(token, now_ms).await {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

pub fn b64url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
