//! The client side of `ferry schema`: calls to a running Ferry or Triplit
//! server's admin routes with a service token.
//!
//! The server is `--remote`, else `TRIPLIT_DB_URL`, else
//! `http://localhost:6543`; the token is `--token`, else
//! `TRIPLIT_SERVICE_TOKEN` — as for `triplit schema push`. Beyond
//! upstream, a server on a loopback address may be called without a token:
//! then `ferry dev`'s own service token is used (signed with
//! `TRIPLIT_JWT_SECRET` and `TRIPLIT_PROJECT_ID`, or their defaults).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// The default server, `triplit dev`'s.
pub const DEFAULT_URL: &str = "http://localhost:6543";

/// A server to call, with the token to call it with.
pub struct Remote {
    /// The base URL, without a trailing slash (may carry a path prefix).
    pub url: String,
    token: String,
    client: reqwest::Client,
}

fn non_empty(env: &HashMap<String, String>, key: &str) -> Option<String> {
    env.get(key).filter(|v| !v.is_empty()).cloned()
}

/// Whether `url` names a loopback host (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Remote {
    /// Resolves the server and token from flags and environment.
    pub fn new(
        remote: Option<String>,
        token: Option<String>,
        env: &HashMap<String, String>,
    ) -> anyhow::Result<Self> {
        let url = remote
            .filter(|r| !r.is_empty())
            .or_else(|| non_empty(env, "TRIPLIT_DB_URL"))
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        if !url.starts_with("http://") && !url.starts_with("https://") {
            bail!("invalid server URL {url:?}: it must start with http:// or https://");
        }
        let parsed =
            reqwest::Url::parse(&url).with_context(|| format!("invalid server URL {url:?}"))?;
        let token = match token
            .filter(|t| !t.is_empty())
            .or_else(|| non_empty(env, "TRIPLIT_SERVICE_TOKEN"))
        {
            Some(t) => t,
            None if is_loopback(&parsed) => {
                let secret = non_empty(env, "TRIPLIT_JWT_SECRET")
                    .unwrap_or_else(|| crate::run::DEV_SECRET.into());
                let project = non_empty(env, "TRIPLIT_PROJECT_ID")
                    .unwrap_or_else(|| crate::run::DEV_PROJECT.into());
                ferry_auth::dev_tokens(&secret, &project).service
            }
            None => bail!(
                "a service token is needed for {url}: pass --token or set TRIPLIT_SERVICE_TOKEN"
            ),
        };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            token,
            client,
        })
    }

    /// `POST /<route>` with a JSON body; the JSON answer of a 200, or an
    /// error naming the status and the server's error.
    pub async fn post(&self, route: &str, body: &Value) -> anyhow::Result<Value> {
        let endpoint = format!("{}/{route}", self.url);
        let res = self
            .client
            .post(&endpoint)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "no answer from {}: {e} (is the server running? set --remote or TRIPLIT_DB_URL)",
                    self.url
                )
            })?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let json: Option<Value> = serde_json::from_str(&text).ok();
        if !status.is_success() {
            let detail = match &json {
                Some(v) if v.get("name").is_some() => format!(
                    "{}: {}",
                    v["name"].as_str().unwrap_or(""),
                    v.get("message").and_then(Value::as_str).unwrap_or("")
                ),
                _ => text.chars().take(500).collect(),
            };
            let hint = if status.as_u16() == 401 {
                " (is the token the server's service token? pass --token or set TRIPLIT_SERVICE_TOKEN)"
            } else {
                ""
            };
            bail!("POST {endpoint} answered {status}: {detail}{hint}");
        }
        json.with_context(|| format!("POST {endpoint} did not answer JSON: {text:.200}"))
    }

    /// The server's schema (`POST /schema`): `None` when it is schemaless.
    pub async fn schema(&self) -> anyhow::Result<Option<Value>> {
        let answer = self
            .post("schema", &serde_json::json!({"format": "json"}))
            .await?;
        match answer.get("type").and_then(Value::as_str) {
            Some("schema") => Ok(answer.get("schema").cloned()),
            Some("schemaless") => Ok(None),
            _ => bail!("unexpected answer from {}/schema: {answer}", self.url),
        }
    }
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

    #[test]
    fn flags_win_over_environment_and_defaults_follow_triplit() {
        let r = Remote::new(None, None, &env(&[])).unwrap();
        assert_eq!(r.url, DEFAULT_URL);
        // No token on a loopback server: ferry dev's service token.
        assert_eq!(
            r.token,
            ferry_auth::dev_tokens(crate::run::DEV_SECRET, crate::run::DEV_PROJECT).service
        );
        let e = env(&[
            ("TRIPLIT_DB_URL", "http://127.0.0.1:7000/triplit/"),
            ("TRIPLIT_SERVICE_TOKEN", "from-env"),
        ]);
        let r = Remote::new(None, None, &e).unwrap();
        assert_eq!(
            (r.url.as_str(), r.token.as_str()),
            ("http://127.0.0.1:7000/triplit", "from-env")
        );
        let r = Remote::new(
            Some("https://db.example.com".into()),
            Some("flag".into()),
            &e,
        )
        .unwrap();
        assert_eq!(
            (r.url.as_str(), r.token.as_str()),
            ("https://db.example.com", "flag")
        );
    }

    #[test]
    fn a_remote_server_needs_a_token_and_urls_need_a_scheme() {
        let err = Remote::new(Some("https://db.example.com".into()), None, &env(&[]))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("TRIPLIT_SERVICE_TOKEN"), "{err}");
        let err = Remote::new(Some("localhost:6543".into()), None, &env(&[]))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("http://"), "{err}");
        let secret = env(&[("TRIPLIT_JWT_SECRET", "s"), ("TRIPLIT_PROJECT_ID", "p")]);
        let r = Remote::new(Some("http://[::1]:1".into()), None, &secret).unwrap();
        assert_eq!(r.token, ferry_auth::dev_tokens("s", "p").service);
    }
}
