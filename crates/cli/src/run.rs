//! Turning settings into a running server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use ferry_core::{SystemRandom, SystemTime, TimeSource};
use ferry_server::{AppState, ServerConfig};
use ferry_store::{MemoryStore, Store};
use ferry_store_sqlite::{SqliteConfig, SqliteStore};
use ferry_triplit::db::TriplitDb;

use clap::ValueEnum;

use crate::{DevArgs, Durability, LogFormat, ServeArgs, Storage};

/// The dev-mode defaults `triplit dev` uses.
pub(crate) const DEV_SECRET: &str = "jwt-key-for-development-only";
pub(crate) const DEV_PROJECT: &str = "local-project-id";

/// Everything `run` needs, resolved from flags and environment.
pub struct Settings {
    dev: bool,
    addr: SocketAddr,
    storage: Storage,
    database: PathBuf,
    database_url: Option<String>,
    jwt_secret: String,
    external_secret: Option<String>,
    project_id: String,
    max_body_mb: usize,
    log_format: LogFormat,
    base_path: String,
    schema: Option<PathBuf>,
    auth: crate::config::AuthSettings,
    durability: ferry_store_sqlite::Durability,
}

/// A URL for printing: the password, if any, replaced by `***`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        (None, _) => redact_keywords(url),
        _ => url.to_string(),
    }
}

/// libpq's `key=value` form with the `password` value replaced (quoted
/// values included).
fn redact_keywords(s: &str) -> String {
    let Some(start) = s.find("password") else {
        return s.to_string();
    };
    let rest = &s[start + "password".len()..];
    let Some(eq) = rest.find('=').filter(|i| rest[..*i].trim().is_empty()) else {
        return s.to_string();
    };
    let value = rest[eq + 1..].trim_start();
    let value_start = s.len() - value.len();
    let mut end = value_start;
    let bytes = s.as_bytes();
    if value.starts_with('\'') {
        end += 1;
        while end < bytes.len() && bytes[end] != b'\'' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        end = (end + 1).min(bytes.len());
    } else {
        while end < bytes.len() && !bytes[end].is_ascii_whitespace() {
            end += 1;
        }
    }
    format!("{}***{}", &s[..value_start], &s[end..])
}

/// A database URL selects PostgreSQL: `postgres://…`/`postgresql://…`,
/// or libpq's `key=value` form (`host=… dbname=…`).
fn storage_of(flag: Storage, database_url: Option<&str>) -> Storage {
    match database_url {
        Some(url)
            if url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url
                    .split_whitespace()
                    .any(|w| w.starts_with("host=") || w.starts_with("dbname=")) =>
        {
            Storage::Postgres
        }
        _ => flag,
    }
}

fn non_empty(env: &HashMap<String, String>, key: &str) -> Option<String> {
    env.get(key).filter(|v| !v.is_empty()).cloned()
}

fn max_body(value: Option<String>) -> anyhow::Result<usize> {
    match value {
        None => Ok(100),
        Some(v) => v.trim().parse::<usize>().with_context(|| {
            format!("MAX_BODY_SIZE must be a whole number of megabytes, got {v:?}")
        }),
    }
}

fn durability(
    flag: Option<Durability>,
    env: &HashMap<String, String>,
) -> anyhow::Result<ferry_store_sqlite::Durability> {
    let chosen = match (flag, non_empty(env, "FERRY_DURABILITY")) {
        (Some(d), _) => d,
        (None, None) => Durability::PowerLoss,
        (None, Some(v)) => Durability::from_str(v.trim(), true).map_err(|_| {
            anyhow::anyhow!("FERRY_DURABILITY must be power-loss or process, got {v:?}")
        })?,
    };
    Ok(match chosen {
        Durability::PowerLoss => ferry_store_sqlite::Durability::PowerLoss,
        Durability::Process => ferry_store_sqlite::Durability::Process,
    })
}

fn addr(host: Option<String>, default_host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let host = host.unwrap_or_else(|| default_host.to_string());
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = host
        .parse()
        .with_context(|| format!("--host must be an IP address, got {host:?}"))?;
    Ok(SocketAddr::new(ip, port))
}

impl Settings {
    /// `ferry serve`.
    pub fn serve(args: ServeArgs, env: &HashMap<String, String>) -> anyhow::Result<Self> {
        let port = match args.port {
            Some(p) => p,
            None => match non_empty(env, "PORT") {
                Some(p) => p
                    .parse()
                    .with_context(|| format!("PORT must be a port number, got {p:?}"))?,
                None => 8080,
            },
        };
        let Some(jwt_secret) = non_empty(env, "JWT_SECRET") else {
            bail!(
                "JWT_SECRET is required for `ferry serve` (the secret that signs service and anon tokens); use `ferry dev` for a development server with default secrets"
            );
        };
        Ok(Self {
            dev: false,
            addr: addr(args.common.host, "0.0.0.0", port)?,
            storage: storage_of(
                args.common.storage,
                args.common
                    .database_url
                    .as_deref()
                    .or(env.get("DATABASE_URL").map(String::as_str)),
            ),
            database_url: args
                .common
                .database_url
                .clone()
                .or_else(|| non_empty(env, "DATABASE_URL")),
            database: PathBuf::from(
                args.database
                    .or_else(|| non_empty(env, "LOCAL_DATABASE_URL"))
                    .unwrap_or_else(|| "ferry-data/ferry.db".into()),
            ),
            jwt_secret,
            external_secret: non_empty(env, "EXTERNAL_JWT_SECRET"),
            project_id: non_empty(env, "PROJECT_ID").unwrap_or_default(),
            max_body_mb: max_body(non_empty(env, "MAX_BODY_SIZE"))?,
            log_format: args.common.log_format,
            auth: crate::config::AuthSettings::load(args.common.config.as_deref(), env)?,
            durability: durability(args.common.durability, env)?,
            base_path: args.common.base_path,
            schema: args.common.schema,
        })
    }

    /// `ferry dev`.
    pub fn dev(args: DevArgs, env: &HashMap<String, String>) -> anyhow::Result<Self> {
        let schema = match args.common.schema {
            Some(p) => Some(p),
            None => crate::schema_file::discover(env, &std::env::current_dir()?),
        };
        Ok(Self {
            dev: true,
            addr: addr(args.common.host, "127.0.0.1", args.db_port.unwrap_or(6543))?,
            storage: storage_of(
                args.common.storage,
                args.common
                    .database_url
                    .as_deref()
                    .or(env.get("DATABASE_URL").map(String::as_str)),
            ),
            database_url: args
                .common
                .database_url
                .clone()
                .or_else(|| non_empty(env, "DATABASE_URL")),
            database: PathBuf::from(
                args.database
                    .or_else(|| non_empty(env, "TRIPLIT_LOCAL_DATABASE_URL"))
                    .unwrap_or_else(|| "triplit/.data/ferry/ferry.db".into()),
            ),
            jwt_secret: non_empty(env, "TRIPLIT_JWT_SECRET").unwrap_or_else(|| DEV_SECRET.into()),
            external_secret: non_empty(env, "TRIPLIT_EXTERNAL_JWT_SECRET"),
            project_id: non_empty(env, "TRIPLIT_PROJECT_ID").unwrap_or_else(|| DEV_PROJECT.into()),
            max_body_mb: max_body(non_empty(env, "TRIPLIT_MAX_BODY_SIZE"))?,
            log_format: args.common.log_format,
            auth: crate::config::AuthSettings::load(args.common.config.as_deref(), env)?,
            durability: durability(args.common.durability, env)?,
            base_path: args.common.base_path,
            schema,
        })
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs the server until SIGTERM or Ctrl-C, then finishes in-flight
/// commits and closes the store.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    init_logging(settings.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(settings))
}

async fn serve(s: Settings) -> anyhow::Result<()> {
    let metrics = ferry_server::metrics::install();
    // For PostgreSQL: whether the connection is encrypted, for the banner.
    let mut tls = None;
    let store: Arc<dyn Store> = match s.storage {
        Storage::Memory => Arc::new(MemoryStore::new()),
        Storage::Postgres => {
            let Some(url) = s.database_url.as_deref() else {
                bail!("--storage postgres needs --database-url or DATABASE_URL (postgres://…)");
            };
            let pg = ferry_store_postgres::PostgresStore::connect(url)
                .await
                .with_context(|| "connecting to PostgreSQL (DATABASE_URL)".to_string())?;
            tls = Some(format!(
                "TLS {} (sslmode={})",
                if pg.encrypted() { "on" } else { "off" },
                pg.ssl_mode().as_str()
            ));
            Arc::new(pg)
        }
        Storage::Sqlite => Arc::new(
            SqliteStore::open_with(
                &s.database,
                SqliteConfig {
                    durability: s.durability,
                    ..SqliteConfig::default()
                },
            )
            .await
            .with_context(|| format!("opening SQLite database {}", s.database.display()))?,
        ),
    };
    let time: Arc<dyn TimeSource> = Arc::new(SystemTime);
    let db = Arc::new(
        TriplitDb::open(store.clone(), time.clone(), Arc::new(SystemRandom))
            .await
            .map_err(|e| anyhow::anyhow!("opening the database: {e}"))?,
    );
    // Fan-out of every commit (local or from other nodes) follows the
    // store's change feed.
    let _feed = db.start_feed();
    if let Some(path) = &s.schema {
        crate::watch::load_at_start(&db, path).await?;
    }
    let auth = &s.auth;
    let verifier = Arc::new(auth.verifier(&s.jwt_secret, s.external_secret.as_deref())?);
    crate::config::spawn_prefetch(verifier.clone(), time.clone());
    let shutdown = tokio_util::sync::CancellationToken::new();
    if s.dev
        && let Some(path) = &s.schema
    {
        crate::watch::spawn(db.clone(), path.clone(), shutdown.clone());
    }
    let state = AppState {
        db: db.clone(),
        verifier,
        time,
        config: ServerConfig {
            max_body_bytes: s.max_body_mb.saturating_mul(1024 * 1024),
            base_path: s.base_path.clone(),
        },
        metrics: Some(metrics),
        connections: Default::default(),
        shared_results: Default::default(),
        rng: Arc::new(SystemRandom),
        shutdown: shutdown.clone(),
    };
    let listener = tokio::net::TcpListener::bind(s.addr)
        .await
        .with_context(|| format!("binding {}", s.addr))?;
    let local = listener.local_addr()?;
    let url = format!("http://{}{}", local, s.base_path);
    let location = match s.storage {
        Storage::Memory => "memory (lost on exit)".to_string(),
        Storage::Postgres => format!(
            "{}, {}",
            redact_url(s.database_url.as_deref().unwrap_or_default()),
            tls.as_deref().unwrap_or_default()
        ),
        Storage::Sqlite => {
            let path = std::path::absolute(&s.database).unwrap_or(s.database.clone());
            match s.durability {
                ferry_store_sqlite::Durability::PowerLoss => path.display().to_string(),
                ferry_store_sqlite::Durability::Process => format!(
                    "{} (durability: process; commits are not fsynced)",
                    path.display()
                ),
            }
        }
    };
    if s.dev {
        let tokens = ferry_auth::dev_tokens(&s.jwt_secret, &s.project_id);
        println!("Ferry dev server running");
        println!("  Server URL:    {url}");
        println!("  Data:          {location}");
        if let Some(path) = &s.schema {
            println!("  Schema:        {} (applied on save)", path.display());
        }
        println!("  Service token: {}", tokens.service);
        println!("  Anon token:    {}", tokens.anon);
    } else {
        println!(
            "Ferry listening on {url} (storage: {}, data: {location})",
            store.backend_name()
        );
    }
    tracing::info!(%url, storage = store.backend_name(), data = %location, "listening");
    let on_signal = shutdown.clone();
    axum::serve(listener, ferry_server::router(state))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Realtime sessions end (close 1001, clients reconnect) so the
            // server can drain.
            on_signal.cancel();
        })
        .await?;
    tracing::info!("shutting down: finishing in-flight commits");
    store
        .close()
        .await
        .map_err(|e| anyhow::anyhow!("closing the store: {e}"))?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod storage_tests {
    use super::*;

    #[test]
    fn both_libpq_forms_select_postgres() {
        for url in [
            "postgres://u@h/db",
            "postgresql://u@h/db?sslmode=require",
            "host=h dbname=db sslmode=verify-full",
        ] {
            assert!(matches!(
                storage_of(Storage::Sqlite, Some(url)),
                Storage::Postgres
            ));
        }
        assert!(matches!(
            storage_of(Storage::Sqlite, Some("ferry.db")),
            Storage::Sqlite
        ));
        assert!(matches!(storage_of(Storage::Memory, None), Storage::Memory));
    }

    #[test]
    fn durability_comes_from_the_flag_then_the_environment() {
        use ferry_store_sqlite::Durability as D;
        let env = |v: &str| HashMap::from([("FERRY_DURABILITY".to_string(), v.to_string())]);
        assert_eq!(durability(None, &HashMap::new()).unwrap(), D::PowerLoss);
        assert_eq!(durability(None, &env("process")).unwrap(), D::Process);
        assert_eq!(
            durability(None, &env(" Power-Loss ")).unwrap(),
            D::PowerLoss
        );
        assert_eq!(
            durability(Some(Durability::PowerLoss), &env("process")).unwrap(),
            D::PowerLoss
        );
        assert!(durability(None, &env("none")).is_err());
    }

    #[test]
    fn keyword_passwords_are_redacted() {
        assert_eq!(
            redact_url("host=h password=s3cret dbname=db"),
            "host=h password=*** dbname=db"
        );
        assert_eq!(
            redact_url("host=h password = 'a b\\'c' dbname=db"),
            "host=h password = *** dbname=db"
        );
        assert_eq!(redact_url("host=h dbname=db"), "host=h dbname=db");
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    }
}
