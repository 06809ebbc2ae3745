//! Fetching JWKS and discovery documents over HTTP, behind a trait.
//!
//! [`HttpFetcher`] is the seam: the server uses [`ReqwestFetcher`]
//! (reqwest with rustls and the platform's trust store), tests use a fake
//! or a local server. A fetcher only performs `GET`s and reports the status,
//! the body and the `Cache-Control` header; what the document means and how
//! long to keep it is decided by the caller (module `cache`).
//!
//! [`ReqwestFetcher`] caps every exchange: 5 s to connect, 10 s in total,
//! 256 KiB of body, at most 3 redirects and only to `https` URLs. Which URLs
//! may be fetched at all (https, or http for loopback hosts) is checked when
//! an issuer is configured and again for a discovered `jwks_uri`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// What a `GET` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body (at most [`MAX_DOCUMENT_BYTES`]).
    pub body: Vec<u8>,
    /// The `Cache-Control` header, if any.
    pub cache_control: Option<String>,
}

impl HttpResponse {
    /// A `200 OK` with `body` and no `Cache-Control`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            body: body.into(),
            cache_control: None,
        }
    }
}

/// Why a key document could not be obtained. Codes are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The server answered with a status other than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// Connecting, TLS or reading failed.
    #[error("request failed: {0}")]
    Transport(String),
    /// The exchange took longer than allowed.
    #[error("request timed out")]
    Timeout,
    /// The body exceeded [`MAX_DOCUMENT_BYTES`].
    #[error("document larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    /// The body is not a JSON object.
    #[error("not a JSON document: {0}")]
    InvalidJson(String),
    /// The document is not a JWK Set with a usable key.
    #[error("invalid JWK Set: {0}")]
    InvalidJwks(String),
    /// A discovery document's `issuer` differs from the configured issuer.
    #[error("discovery document names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// What the document says.
        found: String,
    },
    /// A discovery document has no acceptable `jwks_uri`.
    #[error("discovery document has no usable jwks_uri: {0}")]
    NoJwksUri(String),
}

impl FetchError {
    /// A stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Status(_) => "http_status",
            Self::Transport(_) => "transport",
            Self::Timeout => "timeout",
            Self::TooLarge => "too_large",
            Self::InvalidJson(_) => "invalid_json",
            Self::InvalidJwks(_) => "invalid_jwks",
            Self::IssuerMismatch { .. } => "issuer_mismatch",
            Self::NoJwksUri(_) => "no_jwks_uri",
        }
    }
}

/// The future a fetcher returns.
pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<HttpResponse, FetchError>> + Send + 'a>>;

/// Performs `GET` requests for key documents.
pub trait HttpFetcher: Send + Sync + 'static {
    /// Fetches `url`. Implementations must not follow redirects to
    /// non-`https` URLs and should cap the body at [`MAX_DOCUMENT_BYTES`].
    fn get<'a>(&'a self, url: &'a str) -> FetchFuture<'a>;
}

/// The production fetcher: reqwest with rustls (aws-lc-rs) and the
/// platform's trust store.
#[derive(Debug, Clone)]
pub struct ReqwestFetcher {
    client: reqwest::Client,
}

impl ReqwestFetcher {
    /// A fetcher with the limits described in the module documentation.
    pub fn new() -> Result<Self, FetchError> {
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 3 || attempt.url().scheme() != "https" {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(redirects)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        Ok(Self { client })
    }

    async fn fetch(&self, url: &str) -> Result<HttpResponse, FetchError> {
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout
            } else {
                FetchError::Transport(e.without_url().to_string())
            }
        };
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let cache_control = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if response
            .content_length()
            .is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            body,
            cache_control,
        })
    }
}

impl HttpFetcher for ReqwestFetcher {
    fn get<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(self.fetch(url))
    }
}

/// The `max-age` of a `Cache-Control` header, in seconds; `Some(0)` for
/// `no-store` / `no-cache`; `None` when it says nothing about freshness.
pub(crate) fn max_age(cache_control: &str) -> Option<u64> {
    let mut age = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            age = value.and_then(|v| v.parse::<u64>().ok());
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        assert_eq!(max_age("public, max-age=600"), Some(600));
        assert_eq!(max_age("max-age=\"30\", must-revalidate"), Some(30));
        assert_eq!(max_age("MAX-AGE=5"), Some(5));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("private, no-cache, max-age=100"), Some(0));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=-1"), None);
        assert_eq!(max_age("max-age"), None);
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(FetchError::Status(500).code(), "http_status");
        assert_eq!(FetchError::TooLarge.code(), "too_large");
        let mismatch = FetchError::IssuerMismatch {
            expected: "a".into(),
            found: "b".into(),
        };
        assert_eq!(mismatch.code(), "issuer_mismatch");
    }
}
