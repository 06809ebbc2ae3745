//! The per-issuer cache of fetched keys.
//!
//! Each remote issuer owns one [`RemoteKeys`]; nothing is shared between
//! issuers, so a key fetched for one can never verify another's tokens.
//! Time is the `now_ms` of the verification that needs the keys (injected,
//! never read from a clock).
//!
//! Rules ([`FetchPolicy`]):
//!
//! - A fetched set is fresh for `Cache-Control: max-age`, clamped to
//!   `[min_ttl, max_ttl]` (`no-store`/`no-cache` count as 0, hence
//!   `min_ttl`); without the header, `default_ttl`.
//! - A token whose `kid` is not in the fresh set, or any token once the set
//!   is stale, triggers a refetch. Fetches are single-flight (concurrent
//!   verifications wait for the one in progress and then re-check), and a
//!   new attempt starts at most once per `refetch_interval` whatever its
//!   outcome, so a flood of unknown `kid`s costs one request per interval.
//! - When a refresh fails, the last good set keeps being used for
//!   `stale_for` past its expiry. An unknown `kid` is never served from it.
//! - Discovery: the `jwks_uri` is learnt from the discovery document on the
//!   first fetch and re-learnt after `max_ttl`, or after a JWKS fetch fails.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::error::AuthError;
use crate::fetch::{FetchError, HttpFetcher, MAX_DOCUMENT_BYTES, max_age};
use crate::issuer::{check_url, discovery_url};
use crate::jwks::{KeySet, SetOrigin};

/// How remote keys are cached and refetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Freshness when the response has no `max-age` (10 minutes).
    pub default_ttl_ms: u64,
    /// The shortest freshness honoured (1 minute).
    pub min_ttl_ms: u64,
    /// The longest freshness honoured (24 hours).
    pub max_ttl_ms: u64,
    /// The least time between two fetch attempts of one issuer (30 s).
    pub refetch_interval_ms: u64,
    /// How long past expiry the last good set is used while refreshes
    /// fail (24 hours).
    pub stale_for_ms: u64,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            default_ttl_ms: 10 * 60_000,
            min_ttl_ms: 60_000,
            max_ttl_ms: 24 * 3_600_000,
            refetch_interval_ms: 30_000,
            stale_for_ms: 24 * 3_600_000,
        }
    }
}

/// Where the keys are fetched from.
#[derive(Debug, Clone)]
pub(crate) enum RemoteSource {
    /// A JWKS URL.
    Jwks(String),
    /// Discovery from this issuer URL.
    Discovery(String),
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    fresh_until_ms: u64,
    usable_until_ms: u64,
    last_attempt_ms: Option<u64>,
    last_error: Option<FetchError>,
    jwks_uri: Option<(String, u64)>,
    fetches: u64,
}

/// One issuer's fetched keys.
pub(crate) struct RemoteKeys {
    name: String,
    source: RemoteSource,
    allow_insecure_http: bool,
    fetcher: Arc<dyn HttpFetcher>,
    policy: FetchPolicy,
    state: Mutex<State>,
    fetch_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("name", &self.name)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl RemoteKeys {
    pub(crate) fn new(
        name: String,
        source: RemoteSource,
        allow_insecure_http: bool,
        fetcher: Arc<dyn HttpFetcher>,
        policy: FetchPolicy,
    ) -> Self {
        Self {
            name,
            source,
            allow_insecure_http,
            fetcher,
            policy,
            state: Mutex::new(State::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The number of fetch attempts so far (discovery and JWKS together
    /// count as one).
    pub(crate) fn fetch_attempts(&self) -> u64 {
        self.state().fetches
    }

    /// The fresh set, if it has a key for `(kid, alg)`.
    fn fresh_hit(&self, kid: Option<&str>, alg: &str, now_ms: u64) -> Option<Arc<KeySet>> {
        let state = self.state();
        let keys = state.keys.as_ref()?;
        (now_ms < state.fresh_until_ms && keys.select(kid, alg).is_some()).then(|| keys.clone())
    }

    /// The keys to verify a `(kid, alg)` token with at `now_ms`, fetching
    /// them when the rules allow. The caller still selects the key: a
    /// returned set may lack `kid`.
    pub(crate) async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: &str,
        now_ms: u64,
    ) -> Result<Arc<KeySet>, AuthError> {
        if let Some(keys) = self.fresh_hit(kid, alg, now_ms) {
            return Ok(keys);
        }
        let _single_flight = self.fetch_lock.lock().await;
        if let Some(keys) = self.fresh_hit(kid, alg, now_ms) {
            return Ok(keys);
        }
        if self.may_fetch(now_ms) {
            let _ = self.refresh(now_ms).await;
        }
        let state = self.state();
        match &state.keys {
            Some(keys) if now_ms < state.usable_until_ms => Ok(keys.clone()),
            _ => Err(AuthError::JwksUnavailable {
                issuer: self.name.clone(),
                reason: state
                    .last_error
                    .as_ref()
                    .map_or("not_fetched", FetchError::code),
            }),
        }
    }

    fn may_fetch(&self, now_ms: u64) -> bool {
        self.state()
            .last_attempt_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= self.policy.refetch_interval_ms)
    }

    /// One fetch attempt; must be called under `fetch_lock`.
    pub(crate) async fn refresh(&self, now_ms: u64) -> Result<usize, FetchError> {
        {
            let mut state = self.state();
            state.last_attempt_ms = Some(now_ms);
            state.fetches += 1;
        }
        let result = self.fetch_set(now_ms).await;
        let mut state = self.state();
        match result {
            Ok((set, ttl_ms)) => {
                let count = set.len();
                tracing::debug!(issuer = %self.name, keys = count, ttl_ms, "issuer keys fetched");
                state.keys = Some(Arc::new(set));
                state.fresh_until_ms = now_ms.saturating_add(ttl_ms);
                state.usable_until_ms = state
                    .fresh_until_ms
                    .saturating_add(self.policy.stale_for_ms);
                state.last_error = None;
                Ok(count)
            }
            Err(e) => {
                tracing::warn!(issuer = %self.name, reason = e.code(), error = %e, "fetching issuer keys failed");
                if matches!(self.source, RemoteSource::Discovery(_)) {
                    state.jwks_uri = None;
                }
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Single-flight refresh for warming up at start.
    pub(crate) async fn prefetch(&self, now_ms: u64) -> Result<usize, FetchError> {
        let _single_flight = self.fetch_lock.lock().await;
        self.refresh(now_ms).await
    }

    async fn fetch_set(&self, now_ms: u64) -> Result<(KeySet, u64), FetchError> {
        let jwks_uri = match &self.source {
            RemoteSource::Jwks(url) => url.clone(),
            RemoteSource::Discovery(issuer) => {
                let known = self.state().jwks_uri.clone();
                match known {
                    Some((uri, at)) if now_ms.saturating_sub(at) < self.policy.max_ttl_ms => uri,
                    _ => {
                        let uri = self.discover(issuer).await?;
                        self.state().jwks_uri = Some((uri.clone(), now_ms));
                        uri
                    }
                }
            }
        };
        let (document, cache_control) = self.get_json(&jwks_uri).await?;
        let set = KeySet::from_value(&document, SetOrigin::Published)
            .map_err(|e| FetchError::InvalidJwks(e.to_string()))?;
        let ttl = match cache_control.as_deref().and_then(max_age) {
            Some(seconds) => seconds
                .saturating_mul(1000)
                .clamp(self.policy.min_ttl_ms, self.policy.max_ttl_ms),
            None => self.policy.default_ttl_ms,
        };
        Ok((set, ttl))
    }

    /// Reads the discovery document and returns its checked `jwks_uri`.
    async fn discover(&self, issuer: &str) -> Result<String, FetchError> {
        let (document, _) = self.get_json(&discovery_url(issuer)).await?;
        let found = document.get("issuer").and_then(Value::as_str).unwrap_or("");
        if found != issuer {
            return Err(FetchError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: found.to_owned(),
            });
        }
        let uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| FetchError::NoJwksUri("missing".into()))?;
        check_url(uri, self.allow_insecure_http)
            .map_err(|e| FetchError::NoJwksUri(e.to_string()))?;
        Ok(uri.to_owned())
    }

    async fn get_json(&self, url: &str) -> Result<(Value, Option<String>), FetchError> {
        let response = self.fetcher.get(url).await?;
        if response.status != 200 {
            return Err(FetchError::Status(response.status));
        }
        if response.body.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::TooLarge);
        }
        let value: Value = serde_json::from_slice(&response.body)
            .map_err(|e| FetchError::InvalidJson(e.to_string()))?;
        if !value.is_object() {
            return Err(FetchError::InvalidJson("not an object".into()));
        }
        Ok((value, response.cache_control))
    }
}
