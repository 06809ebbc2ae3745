//! Targets: servers the generator starts itself (same CLI/env contract as
//! `conformance/lib/server.mjs`: `<program> serve --host 127.0.0.1 --port P`,
//! `JWT_SECRET`, `LOCAL_DATABASE_URL`) or already running URLs.

use crate::http;
use crate::jwt;
use anyhow::{Context, Result, anyhow, bail};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How to reach or start a target.
#[derive(Clone, Debug)]
pub struct TargetSpec {
    /// Label in reports (`ferry`, `reference`, `echo`).
    pub name: String,
    /// A command line with `{port}` (started by us), or an `http://` URL.
    pub how: How,
    /// A physical-limit server: no HTTP API, not part of ratios.
    pub physical: bool,
    /// The only scenarios run on it (empty: all).
    pub scenarios: Vec<String>,
}

/// See [`TargetSpec::how`].
#[derive(Clone, Debug)]
pub enum How {
    /// Program and arguments; `{port}` is replaced.
    Spawn(Vec<String>),
    /// A server someone else runs (no RSS/CPU readings, no restarts).
    Url(String),
}

impl TargetSpec {
    /// `NAME=COMMAND…` (whitespace-separated, `{port}` placeholder) or `NAME=http://…`.
    pub fn parse(s: &str, physical: &[String]) -> Result<Self> {
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("expected NAME=COMMAND or NAME=URL: {s}"))?;
        let how = if rest.starts_with("http://") {
            How::Url(rest.trim_end_matches('/').to_string())
        } else {
            How::Spawn(rest.split_whitespace().map(String::from).collect())
        };
        Ok(TargetSpec {
            name: name.to_string(),
            how,
            physical: physical.iter().any(|p| p == name),
            scenarios: Vec::new(),
        })
    }
}

/// A started (or attached) target.
pub struct Running {
    /// The spec it came from.
    pub spec: TargetSpec,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The server process, when we started it.
    pub pid: Option<u32>,
    /// The JWT secret the server verifies with.
    pub secret: String,
    child: Option<Child>,
    dir: Option<PathBuf>,
    port: u16,
    /// Extra environment for the process (e.g. `DATABASE_URL` for a node of a cluster).
    env: Vec<(String, String)>,
    /// Time from spawn to the first `GET /healthcheck` 200 of the last start.
    pub startup: Duration,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Wait until `GET /healthcheck` answers 200.
pub async fn wait_healthy(url: &str, timeout: Duration, child: Option<&mut Child>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut child = child;
    loop {
        if let Some(c) = child.as_deref_mut()
            && let Some(st) = c.try_wait()?
        {
            bail!("server exited before it was ready: {st}");
        }
        if let Ok(r) = http::request(
            url,
            "GET",
            "/healthcheck",
            None,
            None,
            Duration::from_secs(2),
        )
        .await
            && r.status == 200
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} not healthy within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Running {
    /// Start (or attach to) a target with a fresh database.
    pub async fn start(
        spec: &TargetSpec,
        secret: &str,
        ready_timeout: Duration,
    ) -> Result<Running> {
        Self::start_with_env(spec, secret, ready_timeout, Vec::new()).await
    }

    /// [`Running::start`] with extra environment variables for the process
    /// (set after the harness's own, so they win).
    pub async fn start_with_env(
        spec: &TargetSpec,
        secret: &str,
        ready_timeout: Duration,
        env: Vec<(String, String)>,
    ) -> Result<Running> {
        match &spec.how {
            How::Url(u) => Ok(Running {
                spec: spec.clone(),
                url: u.clone(),
                pid: None,
                secret: secret.to_string(),
                child: None,
                dir: None,
                port: 0,
                env,
                startup: Duration::ZERO,
            }),
            How::Spawn(_) => {
                let dir = std::env::temp_dir().join(format!(
                    "ferry-bench-{}-{}-{}",
                    spec.name,
                    std::process::id(),
                    crate::proto::now_us()
                ));
                std::fs::create_dir_all(&dir)?;
                let mut r = Running {
                    spec: spec.clone(),
                    url: String::new(),
                    pid: None,
                    secret: secret.to_string(),
                    child: None,
                    dir: Some(dir),
                    port: 0,
                    env,
                    startup: Duration::ZERO,
                };
                let mut last = None;
                for _ in 0..3 {
                    r.port = free_port()?;
                    match r.launch(ready_timeout).await {
                        Ok(()) => return Ok(r),
                        Err(e) => {
                            let _ = r.halt().await;
                            last = Some(e)
                        }
                    }
                }
                r.cleanup();
                Err(last.unwrap())
            }
        }
    }

    async fn launch(&mut self, ready_timeout: Duration) -> Result<()> {
        let How::Spawn(argv) = &self.spec.how else {
            return Ok(());
        };
        let dir = self.dir.clone().unwrap();
        let argv: Vec<String> = argv
            .iter()
            .map(|a| a.replace("{port}", &self.port.to_string()))
            .collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))?;
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env("JWT_SECRET", &self.secret)
            .env("LOCAL_DATABASE_URL", dir.join("ferry.db"))
            .env("RUST_LOG", "warn")
            .env_remove("EXTERNAL_JWT_SECRET")
            .env_remove("MAX_BODY_SIZE")
            .env_remove("DATABASE_URL")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let t0 = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", argv.join(" ")))?;
        self.pid = child.id();
        self.url = format!("http://127.0.0.1:{}", self.port);
        let res = wait_healthy(&self.url, ready_timeout, Some(&mut child)).await;
        self.startup = t0.elapsed();
        self.child = Some(child);
        res.map_err(|e| anyhow!("{}: {e}\n{}", self.spec.name, self.log_tail()))
    }

    /// The last lines of the server's output.
    pub fn log_tail(&self) -> String {
        self.dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("server.log")).ok())
            .map(|s| {
                s.lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }

    /// SIGTERM, then SIGKILL after 5 s.
    async fn halt(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = c.id() {
                let _ = std::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status();
            }
            if tokio::time::timeout(Duration::from_secs(5), c.wait())
                .await
                .is_err()
            {
                let _ = c.kill().await;
            }
        }
        self.pid = None;
        Ok(())
    }

    fn cleanup(&mut self) {
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    /// Stop and delete the database.
    pub async fn stop(mut self) {
        let _ = self.halt().await;
        self.cleanup();
    }

    /// Stop (SIGTERM) and start again on the same database and port; returns
    /// the time from spawn to healthcheck 200.
    pub async fn restart(&mut self, ready_timeout: Duration) -> Result<Duration> {
        if self.child.is_none() {
            bail!("cannot restart a target we did not start");
        }
        self.halt().await?;
        self.launch(ready_timeout).await?;
        Ok(self.startup)
    }

    /// Database files' size on disk (bytes).
    pub fn db_bytes(&self) -> u64 {
        let Some(d) = &self.dir else { return 0 };
        std::fs::read_dir(d)
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("ferry.db"))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The service token for this server.
    pub fn service_token(&self) -> String {
        jwt::service_token(&self.secret)
    }

    /// Push the benchmark schema (skipped for physical-limit servers).
    pub async fn push_schema(&self) -> Result<()> {
        if self.spec.physical {
            return Ok(());
        }
        let r = http::post_ok(
            &self.url,
            "/override-schema",
            &self.service_token(),
            &serde_json::json!({"schema": crate::proto::schema(), "failOnBackwardsIncompatibleChange": false}),
            Duration::from_secs(30),
        )
        .await?;
        let v: serde_json::Value = serde_json::from_slice(&r.body)?;
        if v["successful"] != true {
            bail!("schema push failed: {}", r.text());
        }
        Ok(())
    }

    /// Current RSS of the server process.
    pub fn rss(&self) -> Option<u64> {
        self.pid.and_then(crate::proc::rss_bytes)
    }
}
