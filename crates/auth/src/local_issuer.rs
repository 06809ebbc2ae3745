//! An offline stand-in for Clerk: a local issuer with its own RSA key.
//!
//! [`LocalIssuer`] holds an RSA-2048 key (generated with aws-lc-rs, or
//! loaded from a PKCS#8 PEM), publishes it as a JWKS with OIDC discovery,
//! and mints tokens shaped like Clerk's v2 session tokens: header
//! `{alg: RS256, kid, typ: JWT}`; claims `azp` (when given), `exp`, `fva`,
//! `iat`, `iss`, `jti`, `nbf` (= `iat − 5`), `sid`, `sub`, `v: 2`, and
//! optionally `email`; 60 s lifetime by default.
//!
//! Its issuer URL is `http://127.0.0.1:<port>`, so Ferry accepts it over
//! plain http (loopback), and its [`publishable_key`] is the `pk_test_…`
//! that encodes `127.0.0.1:<port>`, so the Clerk preset finds it.
//!
//! [`LocalIssuer::rotate`] (`POST /rotate`) replaces the signing key the way
//! rolling Clerk's keys does: new tokens carry the new `kid`, and the JWKS
//! lists the new key and the one it replaced.
//!
//! The routes are plain functions of the request path ([`LocalIssuer::handle`]);
//! `ferry issuer` serves them on loopback, and tests can call them directly.
//! The current time is passed in; the key is the only random thing (drawn
//! from aws-lc-rs's generator), and `jti` is a counter.
//!
//! [`publishable_key`]: LocalIssuer::publishable_key

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use crate::b64;
use crate::clerk::ClerkPublishableKey;

/// The default token lifetime, as Clerk's: 60 s.
pub const DEFAULT_TTL_S: u64 = 60;

/// The longest lifetime a minted token may have: one day.
pub const MAX_TTL_S: u64 = 86_400;

/// Why the local issuer could not be set up or mint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalIssuerError {
    /// Key generation or export failed.
    #[error("RSA key generation failed")]
    KeyGeneration,
    /// The private key PEM is not a PKCS#8 RSA key.
    #[error("invalid private key: {0}")]
    InvalidKey(&'static str),
    /// The issuer URL is not `http(s)://host[:port]`.
    #[error("invalid issuer URL")]
    InvalidIssuer,
    /// A mint request that cannot be honoured.
    #[error("invalid token request: {0}")]
    InvalidRequest(&'static str),
    /// Signing failed.
    #[error("signing failed")]
    Signing,
}

impl LocalIssuerError {
    /// A stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::KeyGeneration => "key_generation",
            Self::InvalidKey(_) => "invalid_key",
            Self::InvalidIssuer => "invalid_issuer",
            Self::InvalidRequest(_) => "invalid_request",
            Self::Signing => "signing",
        }
    }
}

/// What to put in a minted token.
#[derive(Debug, Clone, PartialEq)]
pub struct MintRequest {
    /// The user id (`sub`), e.g. `user_A`.
    pub sub: String,
    /// An `email` claim (Clerk adds one only when the session token is
    /// customised).
    pub email: Option<String>,
    /// The lifetime in seconds (1 ..= [`MAX_TTL_S`]).
    pub ttl_s: u64,
    /// The authorized party (`azp`): the app's origin.
    pub azp: Option<String>,
    /// The session id (`sid`); defaults to `sess_<sub>`.
    pub sid: Option<String>,
    /// More claims, added last (they may not replace the standard ones).
    pub extra: Map<String, Value>,
}

impl MintRequest {
    /// A request for `sub` with the defaults.
    pub fn new(sub: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            email: None,
            ttl_s: DEFAULT_TTL_S,
            azp: None,
            sid: None,
            extra: Map::new(),
        }
    }

    /// Reads `sub`, `email`, `ttl`, `azp` and `sid` from a URL query string
    /// (`sub=user_A&email=a@x.dev&ttl=60`); `sub` defaults to `user_local`.
    pub fn from_query(query: &str) -> Result<Self, LocalIssuerError> {
        let mut request = Self::new("user_local");
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = value.into_owned();
            match name.as_ref() {
                "sub" => request.sub = value,
                "email" => request.email = Some(value),
                "azp" => request.azp = Some(value),
                "sid" => request.sid = Some(value),
                "ttl" => {
                    request.ttl_s = value.parse().map_err(|_| {
                        LocalIssuerError::InvalidRequest("ttl must be whole seconds")
                    })?;
                }
                _ => return Err(LocalIssuerError::InvalidRequest("unknown parameter")),
            }
        }
        Ok(request)
    }
}

/// A response of the local issuer's routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The `Cache-Control`, if any.
    pub cache_control: Option<&'static str>,
    /// The body.
    pub body: String,
}

impl LocalResponse {
    fn json(value: &Value) -> Self {
        Self {
            status: 200,
            content_type: "application/json",
            cache_control: Some("public, max-age=60"),
            body: value.to_string(),
        }
    }

    fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            cache_control: Some("no-store"),
            body: body.into(),
        }
    }
}

/// One signing key and its published forms.
struct SigningKey {
    kid: String,
    private_pem: String,
    public_pem: String,
    jwk: Value,
    encoding: EncodingKey,
}

/// The current key and the one it replaced (still published, so tokens
/// minted before a rotation verify until they expire).
struct Keys {
    current: Arc<SigningKey>,
    retired: Option<Value>,
}

/// A local token issuer.
pub struct LocalIssuer {
    issuer: String,
    keys: RwLock<Keys>,
    minted: AtomicU64,
}

impl std::fmt::Debug for LocalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl LocalIssuer {
    /// An issuer at `issuer_url` (e.g. `http://127.0.0.1:6544`) with a new
    /// RSA-2048 key.
    pub fn generate(issuer_url: &str) -> Result<Self, LocalIssuerError> {
        let pair =
            KeyPair::generate(KeySize::Rsa2048).map_err(|_| LocalIssuerError::KeyGeneration)?;
        let der: Pkcs8V1Der<'static> =
            pair.as_der().map_err(|_| LocalIssuerError::KeyGeneration)?;
        Self::from_pair(issuer_url, &pair, pem("PRIVATE KEY", der.as_ref()))
    }

    /// An issuer at `issuer_url` with the key in `private_pem` (PKCS#8,
    /// `-----BEGIN PRIVATE KEY-----`, as [`private_key_pem`] writes it).
    ///
    /// [`private_key_pem`]: Self::private_key_pem
    pub fn from_private_pem(issuer_url: &str, private_pem: &str) -> Result<Self, LocalIssuerError> {
        let body: String = private_pem
            .trim()
            .strip_prefix("-----BEGIN PRIVATE KEY-----")
            .and_then(|rest| rest.trim_end().strip_suffix("-----END PRIVATE KEY-----"))
            .ok_or(LocalIssuerError::InvalidKey(
                "expected a PKCS#8 PRIVATE KEY PEM",
            ))?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| LocalIssuerError::InvalidKey("the PEM body is not base64"))?;
        let pair = KeyPair::from_pkcs8(&der)
            .map_err(|_| LocalIssuerError::InvalidKey("not an RSA key"))?;
        Self::from_pair(issuer_url, &pair, pem("PRIVATE KEY", &der))
    }

    fn from_pair(
        issuer_url: &str,
        pair: &KeyPair,
        private_pem: String,
    ) -> Result<Self, LocalIssuerError> {
        let parsed = url::Url::parse(issuer_url).map_err(|_| LocalIssuerError::InvalidIssuer)?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.host_str().is_none()
            || parsed.path() != "/"
        {
            return Err(LocalIssuerError::InvalidIssuer);
        }
        Ok(Self {
            issuer: issuer_url.trim_end_matches('/').to_owned(),
            keys: RwLock::new(Keys {
                current: Arc::new(signing_key(pair, private_pem)?),
                retired: None,
            }),
            minted: AtomicU64::new(0),
        })
    }

    fn current(&self) -> Arc<SigningKey> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .current
            .clone()
    }

    /// Rotates the signing key, as Clerk does when you roll its keys: a new
    /// RSA-2048 key signs from now on, and the JWKS publishes it next to
    /// the key it replaced (so tokens already minted keep verifying until
    /// they expire; the key before that is dropped). Returns the new `kid`.
    pub fn rotate(&self) -> Result<String, LocalIssuerError> {
        let pair =
            KeyPair::generate(KeySize::Rsa2048).map_err(|_| LocalIssuerError::KeyGeneration)?;
        let der: Pkcs8V1Der<'static> =
            pair.as_der().map_err(|_| LocalIssuerError::KeyGeneration)?;
        let next = Arc::new(signing_key(&pair, pem("PRIVATE KEY", der.as_ref()))?);
        let kid = next.kid.clone();
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let old = std::mem::replace(&mut keys.current, next);
        keys.retired = Some(old.jwk.clone());
        Ok(kid)
    }

    /// The issuer URL (the `iss` of minted tokens).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key id (`ins_local_…`, derived from the key's thumbprint, so it
    /// is stable for a persisted key).
    pub fn kid(&self) -> String {
        self.current().kid.clone()
    }

    /// The current private key, PKCS#8 PEM (for `--keys` persistence).
    pub fn private_key_pem(&self) -> String {
        self.current().private_pem.clone()
    }

    /// The current public key, SPKI PEM (for `TRIPLIT_EXTERNAL_JWT_SECRET`).
    pub fn public_key_pem(&self) -> String {
        self.current().public_pem.clone()
    }

    /// The `pk_test_…` publishable key for this issuer's `host[:port]`.
    pub fn publishable_key(&self) -> String {
        let host = self
            .issuer
            .split_once("://")
            .map_or(self.issuer.as_str(), |(_, rest)| rest);
        ClerkPublishableKey::encode(host, false)
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.issuer)
    }

    /// The JWK Set document: the current key, then the one it replaced.
    pub fn jwks(&self) -> Value {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut list = vec![keys.current.jwk.clone()];
        list.extend(keys.retired.clone());
        json!({ "keys": list })
    }

    /// The OIDC discovery document.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url(),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// The claims a token minted at `now_s` would carry, in Clerk's order.
    pub fn claims(
        &self,
        request: &MintRequest,
        now_s: u64,
    ) -> Result<Map<String, Value>, LocalIssuerError> {
        if request.sub.is_empty() {
            return Err(LocalIssuerError::InvalidRequest("sub must not be empty"));
        }
        if !(1..=MAX_TTL_S).contains(&request.ttl_s) {
            return Err(LocalIssuerError::InvalidRequest(
                "ttl must be 1 to 86400 seconds",
            ));
        }
        let serial = self.minted.fetch_add(1, Ordering::Relaxed) + 1;
        let mut claims = Map::new();
        if let Some(azp) = &request.azp {
            claims.insert("azp".into(), azp.clone().into());
        }
        claims.insert("exp".into(), (now_s + request.ttl_s).into());
        claims.insert("fva".into(), json!([0, -1]));
        claims.insert("iat".into(), now_s.into());
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("jti".into(), format!("{:020x}", serial).into());
        claims.insert("nbf".into(), now_s.saturating_sub(5).into());
        let sid = request
            .sid
            .clone()
            .unwrap_or_else(|| format!("sess_{}", request.sub));
        claims.insert("sid".into(), sid.into());
        claims.insert("sub".into(), request.sub.clone().into());
        claims.insert("v".into(), 2.into());
        if let Some(email) = &request.email {
            claims.insert("email".into(), email.clone().into());
        }
        for (name, value) in &request.extra {
            claims.entry(name.clone()).or_insert_with(|| value.clone());
        }
        Ok(claims)
    }

    /// Mints a session token at `now_s` (Unix seconds).
    pub fn mint(&self, request: &MintRequest, now_s: u64) -> Result<String, LocalIssuerError> {
        self.sign(&self.claims(request, now_s)?)
    }

    /// Signs arbitrary `claims` with this issuer's key and `kid` (for
    /// negative tests: wrong `iss`, missing `exp`, …).
    pub fn sign(&self, claims: &Map<String, Value>) -> Result<String, LocalIssuerError> {
        let key = self.current();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|_| LocalIssuerError::Signing)
    }

    /// Answers a `GET` for `path_and_query` at `now_s`:
    /// `/.well-known/jwks.json` (also `/v1/jwks`),
    /// `/.well-known/openid-configuration`, `/token?sub=…&email=…&ttl=…`
    /// (the token as text), and `/` (a short help text).
    pub fn handle(&self, path_and_query: &str, now_s: u64) -> LocalResponse {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        match path {
            "/.well-known/jwks.json" | "/v1/jwks" => LocalResponse::json(&self.jwks()),
            "/.well-known/openid-configuration" => LocalResponse::json(&self.discovery()),
            "/token" => match MintRequest::from_query(query).and_then(|r| self.mint(&r, now_s)) {
                Ok(token) => LocalResponse::text(200, token),
                Err(e) => LocalResponse::text(400, format!("{e}\n")),
            },
            "/" => LocalResponse::text(
                200,
                format!(
                    "Ferry local issuer {}\nGET /token?sub=user_A&email=a@x.dev&ttl=60\nGET /.well-known/jwks.json\nGET /.well-known/openid-configuration\nPOST /rotate\n",
                    self.issuer
                ),
            ),
            _ => LocalResponse::text(404, "not found\n"),
        }
    }

    /// Answers a `POST` for `path`: `/rotate` rotates the key
    /// ([`rotate`](Self::rotate)) and answers the new `kid` as text.
    pub fn handle_post(&self, path: &str) -> LocalResponse {
        match path.split_once('?').map_or(path, |(p, _)| p) {
            "/rotate" => match self.rotate() {
                Ok(kid) => LocalResponse::text(200, kid),
                Err(e) => LocalResponse::text(500, format!("{e}\n")),
            },
            _ => LocalResponse::text(404, "not found\n"),
        }
    }
}

/// The published forms of `pair`: SPKI PEM, JWK and the `kid` (an RFC 7638
/// thumbprint prefix, so a persisted key keeps its id).
fn signing_key(pair: &KeyPair, private_pem: String) -> Result<SigningKey, LocalIssuerError> {
    let public = pair.public_key();
    let spki: PublicKeyX509Der<'static> = public
        .as_der()
        .map_err(|_| LocalIssuerError::KeyGeneration)?;
    let components = PublicKeyComponents::<Vec<u8>>::from(public);
    let (n, e) = (
        b64::encode_url(&components.n),
        b64::encode_url(&components.e),
    );
    // RFC 7638 thumbprint: SHA-256 of the required members in order.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    let thumbprint = b64::encode_url(digest.as_ref());
    let kid = format!("ins_local_{}", &thumbprint[..16]);
    let encoding = EncodingKey::from_rsa_pem(private_pem.as_bytes())
        .map_err(|_| LocalIssuerError::InvalidKey("not usable for RS256"))?;
    Ok(SigningKey {
        jwk: json!({"use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256", "n": n, "e": e}),
        kid,
        private_pem,
        public_pem: pem("PUBLIC KEY", spki.as_ref()),
        encoding,
    })
}

/// PEM armour around `der`, wrapped at 64 columns.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
