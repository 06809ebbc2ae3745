//! Authentication settings from `ferry.toml` and the environment, turned
//! into a [`TokenVerifier`].
//!
//! The file is `--config <path>`, else `FERRY_CONFIG`, else `./ferry.toml`
//! when it exists. Its `[auth]` table:
//!
//! ```toml
//! [auth]
//! leeway_seconds = 5                 # issuer tokens (default 5)
//!
//! [[auth.issuers]]
//! clerk_publishable_key = "pk_test_…"
//! authorized_parties = ["http://localhost:5173"]
//!
//! [[auth.issuers]]
//! issuer = "https://tenant.eu.auth0.com/"   # OIDC discovery
//! audiences = ["https://api.example.com"]
//! ```
//!
//! Each issuer takes its keys from exactly one of `clerk_publishable_key`,
//! `jwks_url`, `keys` (PEM, JWK, JWK Set or HMAC secret), or discovery from
//! `issuer` (the default when only `issuer` is given). The environment adds
//! issuers after the file's: `CLERK_PUBLISHABLE_KEY` (with
//! `CLERK_AUTHORIZED_PARTIES`), `FERRY_OIDC_ISSUER`, `FERRY_JWKS_URL` (with
//! `FERRY_JWKS_ISSUER`), sharing `FERRY_AUTH_AUDIENCE` and
//! `FERRY_AUTH_ALLOW_INSECURE_HTTP`; `FERRY_AUTH_LEEWAY_SECONDS` overrides
//! the leeway. `docs/configuration.md` documents every setting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use ferry_auth::{FetchPolicy, IssuerConfig, Issuers, ReqwestFetcher, TokenVerifier};
use ferry_core::TimeSource;
use serde::Deserialize;

/// The longest key refetch interval accepted: one hour.
const MAX_REFETCH_INTERVAL_S: u64 = 3_600;

/// What the file may contain (other top-level tables are left to others).
#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    #[serde(default)]
    auth: AuthSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthSection {
    leeway_seconds: Option<u64>,
    refetch_interval_seconds: Option<u64>,
    #[serde(default)]
    issuers: Vec<IssuerEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerEntry {
    name: Option<String>,
    issuer: Option<String>,
    clerk_publishable_key: Option<String>,
    jwks_url: Option<String>,
    keys: Option<String>,
    discovery: Option<bool>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    authorized_parties: Vec<String>,
    leeway_seconds: Option<u64>,
    #[serde(default)]
    allow_insecure_http: bool,
}

/// The resolved authentication settings.
#[derive(Debug, Default)]
pub struct AuthSettings {
    issuers: Vec<IssuerConfig>,
    /// `FERRY_AUTH_LEEWAY_SECONDS`, which also applies to Triplit-rule tokens.
    env_leeway_ms: Option<u64>,
    /// How keys are fetched (`refetch_interval_seconds` /
    /// `FERRY_AUTH_REFETCH_INTERVAL_SECONDS`; otherwise the defaults).
    fetch_policy: FetchPolicy,
    /// The file that was read, for messages.
    source: Option<PathBuf>,
}

fn non_empty<'a>(env: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    env.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn list(value: Option<&str>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn flag(env: &HashMap<String, String>, key: &str) -> anyhow::Result<bool> {
    match non_empty(env, key) {
        None => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some("0" | "false" | "no") => Ok(false),
        Some(other) => bail!("{key} must be true or false, got {other:?}"),
    }
}

impl IssuerEntry {
    fn into_config(self, index: usize, default_leeway_ms: u64) -> anyhow::Result<IssuerConfig> {
        let label = || format!("[[auth.issuers]] #{}", index + 1);
        let sources = [
            self.clerk_publishable_key.is_some(),
            self.jwks_url.is_some(),
            self.keys.is_some(),
            self.discovery == Some(true),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            bail!(
                "{}: give only one of clerk_publishable_key, jwks_url, keys, discovery",
                label()
            );
        }
        let issuer = self.issuer.as_deref();
        let mut config = if let Some(pk) = &self.clerk_publishable_key {
            let mut config = IssuerConfig::clerk(pk).with_context(label)?;
            if let Some(iss) = issuer {
                config.issuer = Some(iss.to_owned());
            }
            config
        } else if let Some(url) = &self.jwks_url {
            IssuerConfig::jwks_url(issuer, url)
        } else if let Some(keys) = &self.keys {
            IssuerConfig::static_keys(issuer, keys).with_context(label)?
        } else if let Some(iss) = issuer {
            if self.discovery == Some(false) {
                bail!("{}: discovery = false needs jwks_url or keys", label());
            }
            IssuerConfig::oidc(iss)
        } else {
            bail!(
                "{}: needs clerk_publishable_key, jwks_url, keys or issuer",
                label()
            );
        };
        if let Some(name) = self.name {
            config = config.with_name(name);
        }
        let leeway_ms = match self.leeway_seconds {
            Some(s) => s.saturating_mul(1000),
            None => default_leeway_ms,
        };
        Ok(config
            .with_audiences(self.audiences)
            .with_authorized_parties(self.authorized_parties)
            .with_leeway_ms(leeway_ms)
            .with_insecure_http(self.allow_insecure_http))
    }
}

impl AuthSettings {
    /// Reads the file (`flag`, else `FERRY_CONFIG`, else `./ferry.toml` if
    /// present) and the environment.
    pub fn load(flag_path: Option<&Path>, env: &HashMap<String, String>) -> anyhow::Result<Self> {
        let explicit = flag_path
            .map(Path::to_path_buf)
            .or_else(|| non_empty(env, "FERRY_CONFIG").map(PathBuf::from));
        let path = explicit.clone().or_else(|| {
            let default = PathBuf::from("ferry.toml");
            default.is_file().then_some(default)
        });
        let file = match &path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text).with_context(|| {
                    format!("{} is not a valid Ferry configuration", path.display())
                })?
            }
            None => FileConfig::default(),
        };
        Self::from_parts(file, env, path)
    }

    fn from_parts(
        file: FileConfig,
        env: &HashMap<String, String>,
        source: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let env_leeway_ms = match non_empty(env, "FERRY_AUTH_LEEWAY_SECONDS") {
            None => None,
            Some(v) => Some(
                v.parse::<u64>()
                    .with_context(|| {
                        format!("FERRY_AUTH_LEEWAY_SECONDS must be whole seconds, got {v:?}")
                    })?
                    .saturating_mul(1000),
            ),
        };
        let refetch_s = match non_empty(env, "FERRY_AUTH_REFETCH_INTERVAL_SECONDS") {
            Some(v) => Some(v.parse::<u64>().with_context(|| {
                format!("FERRY_AUTH_REFETCH_INTERVAL_SECONDS must be whole seconds, got {v:?}")
            })?),
            None => file.auth.refetch_interval_seconds,
        };
        let mut fetch_policy = FetchPolicy::default();
        if let Some(seconds) = refetch_s {
            if !(1..=MAX_REFETCH_INTERVAL_S).contains(&seconds) {
                anyhow::bail!(
                    "the key refetch interval must be 1 to {MAX_REFETCH_INTERVAL_S} seconds, got {seconds}"
                );
            }
            fetch_policy.refetch_interval_ms = seconds * 1000;
        }
        let default_leeway_ms = env_leeway_ms
            .or(file.auth.leeway_seconds.map(|s| s.saturating_mul(1000)))
            .unwrap_or(ferry_auth::DEFAULT_ISSUER_LEEWAY_MS);
        let mut issuers = Vec::new();
        for (index, entry) in file.auth.issuers.into_iter().enumerate() {
            issuers.push(entry.into_config(index, default_leeway_ms)?);
        }
        let audiences = list(non_empty(env, "FERRY_AUTH_AUDIENCE"));
        let insecure = flag(env, "FERRY_AUTH_ALLOW_INSECURE_HTTP")?;
        let finish = |config: IssuerConfig| {
            config
                .with_leeway_ms(default_leeway_ms)
                .with_insecure_http(insecure)
        };
        if let Some(pk) = non_empty(env, "CLERK_PUBLISHABLE_KEY") {
            let config = IssuerConfig::clerk(pk).context("CLERK_PUBLISHABLE_KEY")?;
            let parties = list(non_empty(env, "CLERK_AUTHORIZED_PARTIES"));
            issuers.push(finish(config.with_authorized_parties(parties)));
        }
        if let Some(iss) = non_empty(env, "FERRY_OIDC_ISSUER") {
            issuers.push(finish(
                IssuerConfig::oidc(iss).with_audiences(audiences.clone()),
            ));
        }
        if let Some(url) = non_empty(env, "FERRY_JWKS_URL") {
            let iss = non_empty(env, "FERRY_JWKS_ISSUER");
            issuers.push(finish(
                IssuerConfig::jwks_url(iss, url).with_audiences(audiences),
            ));
        }
        Ok(Self {
            issuers,
            env_leeway_ms,
            fetch_policy,
            source,
        })
    }

    /// Builds the verifier: Triplit's two secrets plus the issuers.
    pub fn verifier(
        &self,
        jwt_secret: &str,
        external_secret: Option<&str>,
    ) -> anyhow::Result<TokenVerifier> {
        let mut verifier = TokenVerifier::new(Some(jwt_secret), external_secret)
            .map_err(|e| anyhow::anyhow!("the JWT secret is not usable: {e}"))?;
        if let Some(ms) = self.env_leeway_ms {
            verifier = verifier.with_leeway_ms(ms);
        }
        if self.issuers.is_empty() {
            return Ok(verifier);
        }
        let origin = match &self.source {
            Some(path) => format!(
                "the auth issuers (from {} and the environment)",
                path.display()
            ),
            None => "the auth issuers (from the environment)".to_owned(),
        };
        let fetcher = ReqwestFetcher::new().map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let issuers = Issuers::new(self.issuers.clone(), Arc::new(fetcher), self.fetch_policy)
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        for config in issuers.configs() {
            tracing::info!(
                issuer = %config.name,
                iss = config.issuer.as_deref().unwrap_or("(default issuer)"),
                keys = config.fetch_url().as_deref().unwrap_or("static"),
                "token issuer configured"
            );
        }
        verifier
            .with_issuers(issuers)
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))
    }
}

/// Fetches every remote issuer's keys once in the background, logging
/// failures, so a wrong URL shows at start rather than at the first sign-in.
pub fn spawn_prefetch(verifier: Arc<TokenVerifier>, time: Arc<dyn TimeSource>) {
    if verifier.issuers().is_empty() {
        return;
    }
    tokio::spawn(async move {
        for report in verifier.prefetch(time.now_ms()).await {
            match report.result {
                Ok(keys) => tracing::info!(issuer = %report.issuer, keys, "issuer keys loaded"),
                Err(e) => tracing::warn!(
                    issuer = %report.issuer,
                    reason = e.code(),
                    error = %e,
                    "issuer keys could not be loaded; tokens from this issuer are refused until they can"
                ),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(text: &str, vars: &[(&str, &str)]) -> anyhow::Result<AuthSettings> {
        AuthSettings::from_parts(toml::from_str(text)?, &env(vars), None)
    }

    #[test]
    fn file_and_environment_issuers() {
        let pk = ferry_auth::ClerkPublishableKey::encode("clerk.example.com", true);
        let text = format!(
            r#"
            [server]
            anything = 1
            [auth]
            leeway_seconds = 2
            [[auth.issuers]]
            clerk_publishable_key = "{pk}"
            authorized_parties = ["https://app.example.com"]
            [[auth.issuers]]
            issuer = "https://tenant.auth0.com/"
            audiences = ["api"]
            leeway_seconds = 0
            [[auth.issuers]]
            issuer = "supabase"
            keys = "hmac-secret"
            "#
        );
        let settings = parse(&text, &[("FERRY_OIDC_ISSUER", "http://127.0.0.1:6544")]).unwrap();
        let issuers = &settings.issuers;
        assert_eq!(issuers.len(), 4);
        assert_eq!(
            issuers[0].issuer.as_deref(),
            Some("https://clerk.example.com")
        );
        assert_eq!(issuers[0].authorized_parties, ["https://app.example.com"]);
        assert_eq!(issuers[0].leeway_ms, 2000);
        assert_eq!(issuers[1].leeway_ms, 0);
        assert!(matches!(issuers[1].keys, ferry_auth::KeySource::Discovery));
        assert!(matches!(issuers[2].keys, ferry_auth::KeySource::Static(_)));
        assert_eq!(issuers[3].issuer.as_deref(), Some("http://127.0.0.1:6544"));
        assert!(settings.verifier("s", None).is_ok());
    }

    #[test]
    fn bad_configurations_are_refused() {
        for text in [
            "[auth]\nunknown = 1",
            "[[auth.issuers]]\nname = \"x\"",
            "[[auth.issuers]]\njwks_url = \"https://a/j\"\nkeys = \"k\"",
            "[[auth.issuers]]\nissuer = \"https://a\"\ndiscovery = false",
            "[[auth.issuers]]\nclerk_publishable_key = \"pk_test_nope\"",
        ] {
            assert!(parse(text, &[]).is_err(), "{text}");
        }
        let insecure = parse("[[auth.issuers]]\nissuer = \"http://example.com\"", &[]).unwrap();
        assert!(insecure.verifier("s", None).is_err());
        assert!(parse("", &[("FERRY_AUTH_LEEWAY_SECONDS", "x")]).is_err());
        for bad in ["0", "3601", "x", "-1"] {
            assert!(
                parse("", &[("FERRY_AUTH_REFETCH_INTERVAL_SECONDS", bad)]).is_err(),
                "{bad}"
            );
        }
        assert!(parse("[auth]\nrefetch_interval_seconds = 0", &[]).is_err());
        let default_twice = parse("", &[("FERRY_JWKS_URL", "https://a.example/jwks")]).unwrap();
        assert!(default_twice.verifier("s", Some("other")).is_err());
    }

    #[test]
    fn environment_lists_and_leeway() {
        let pk = ferry_auth::ClerkPublishableKey::encode("127.0.0.1:6544", false);
        let settings = parse(
            "",
            &[
                ("CLERK_PUBLISHABLE_KEY", pk.as_str()),
                (
                    "CLERK_AUTHORIZED_PARTIES",
                    "http://localhost:5173, http://127.0.0.1:5173",
                ),
                ("FERRY_AUTH_LEEWAY_SECONDS", "7"),
            ],
        )
        .unwrap();
        assert_eq!(settings.issuers[0].authorized_parties.len(), 2);
        assert_eq!(settings.issuers[0].leeway_ms, 7000);
        assert_eq!(settings.env_leeway_ms, Some(7000));
        assert_eq!(settings.fetch_policy, FetchPolicy::default());
        assert!(settings.verifier("s", None).is_ok());
    }

    #[test]
    fn refetch_interval_from_file_and_environment() {
        let file = "[auth]\nrefetch_interval_seconds = 120";
        assert_eq!(
            parse(file, &[]).unwrap().fetch_policy.refetch_interval_ms,
            120_000
        );
        let both = parse(file, &[("FERRY_AUTH_REFETCH_INTERVAL_SECONDS", "1")]).unwrap();
        assert_eq!(both.fetch_policy.refetch_interval_ms, 1_000);
        assert_eq!(
            both.fetch_policy.min_ttl_ms,
            FetchPolicy::default().min_ttl_ms
        );
    }
}
