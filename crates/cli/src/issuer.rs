//! `ferry issuer`: an offline stand-in for Clerk on loopback.
//!
//! It serves [`ferry_auth::local_issuer::LocalIssuer`]'s routes on
//! `127.0.0.1:<port>` (JWKS, OIDC discovery, `GET /token?sub=…`) and prints
//! what to configure: the `pk_test_…` publishable key for Ferry's Clerk
//! preset, the issuer URL for OIDC discovery, and the PEM public key for
//! the Triplit-style `TRIPLIT_EXTERNAL_JWT_SECRET` flow. With `--keys FILE`
//! the private key is kept in `FILE` (created when missing), so tokens and
//! the key id survive restarts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_auth::local_issuer::{LocalIssuer, MintRequest};
use ferry_core::{SystemTime, TimeSource};

/// `ferry issuer`'s flags.
#[derive(Debug, clap::Args)]
pub struct IssuerArgs {
    /// Port on 127.0.0.1 (the issuer only ever listens on loopback).
    #[arg(long, short = 'p', default_value_t = 6544)]
    port: u16,
    /// Keep the private key in this file (PKCS#8 PEM), creating it when
    /// missing; without it a new key is generated at every start.
    #[arg(long)]
    keys: Option<PathBuf>,
}

fn load_or_create(path: Option<&Path>, issuer_url: &str) -> anyhow::Result<LocalIssuer> {
    let Some(path) = path else {
        return LocalIssuer::generate(issuer_url).context("generating the issuer key");
    };
    if path.exists() {
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return LocalIssuer::from_private_pem(issuer_url, &pem)
            .with_context(|| format!("{} does not hold the issuer's private key", path.display()));
    }
    let issuer = LocalIssuer::generate(issuer_url).context("generating the issuer key")?;
    write_private(path, &issuer.private_key_pem())?;
    Ok(issuer)
}

fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, pem.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Replaces the key file after a rotation: written beside it (mode 0600),
/// then renamed over it.
fn replace_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    let temp = path.with_file_name(name);
    let _ = std::fs::remove_file(&temp);
    write_private(&temp, pem)?;
    std::fs::rename(&temp, path).with_context(|| format!("replacing {}", path.display()))
}

struct Shared {
    issuer: LocalIssuer,
    keys: Option<PathBuf>,
    time: SystemTime,
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    if !peer.ip().is_loopback() {
        return (StatusCode::FORBIDDEN, "loopback only\n").into_response();
    }
    if request.method() == Method::OPTIONS {
        return cors(StatusCode::NO_CONTENT.into_response());
    }
    let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let reply = if request.method() == Method::POST {
        let reply = shared.issuer.handle_post(target);
        if reply.status == 200
            && let Some(path) = &shared.keys
            && let Err(e) = replace_private(path, &shared.issuer.private_key_pem())
        {
            tracing::warn!(error = %e, "the rotated key could not be saved");
        }
        if reply.status == 200 {
            tracing::info!(kid = %reply.body, "signing key rotated");
        }
        reply
    } else if request.method() == Method::GET || request.method() == Method::HEAD {
        shared.issuer.handle(target, shared.time.now_ms() / 1000)
    } else {
        return (StatusCode::METHOD_NOT_ALLOWED, "GET or POST only\n").into_response();
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response();
    if let Some(cache) = reply.cache_control {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    cors(response)
}

/// Lets a browser app's `refreshHandler` fetch `/token` from another port.
fn cors(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn print_banner(issuer: &LocalIssuer, keys: Option<&Path>) {
    let url = issuer.issuer();
    let sample = issuer
        .mint(&MintRequest::new("user_local"), SystemTime.now_ms() / 1000)
        .unwrap_or_default();
    let one_line: String = issuer.public_key_pem().lines().collect::<Vec<_>>().join("");
    println!("Ferry local issuer (an offline stand-in for Clerk) running");
    println!("  Issuer:           {url}");
    println!("  JWKS:             {}", issuer.jwks_url());
    println!("  Discovery:        {url}/.well-known/openid-configuration");
    println!("  Key id:           {}", issuer.kid());
    match keys {
        Some(path) => println!("  Private key:      {}", path.display()),
        None => println!("  Private key:      generated for this run (use --keys FILE to keep it)"),
    }
    println!();
    println!("Point Ferry at it, one of:");
    println!("  CLERK_PUBLISHABLE_KEY={}", issuer.publishable_key());
    println!("  FERRY_OIDC_ISSUER={url}");
    println!("  TRIPLIT_EXTERNAL_JWT_SECRET=\"{one_line}\"   # Triplit-style, ferry dev");
    println!();
    println!("Get a token (60 s, like Clerk's):");
    println!("  curl -s '{url}/token?sub=user_A&email=a@x.dev&ttl=60'");
    println!("Roll the signing key (new kid; the JWKS keeps the previous key too):");
    println!("  curl -s -X POST {url}/rotate");
    println!("Sample token for user_local:");
    println!("  {sample}");
    println!();
    println!("Public key (PEM):");
    print!("{}", issuer.public_key_pem());
}

/// Runs the issuer until Ctrl-C.
pub fn run(args: IssuerArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let local = listener.local_addr()?;
        let issuer = load_or_create(args.keys.as_deref(), &format!("http://{local}"))?;
        print_banner(&issuer, args.keys.as_deref());
        let shared = Arc::new(Shared {
            issuer,
            keys: args.keys.clone(),
            time: SystemTime,
        });
        let app = axum::Router::new().fallback(handle).with_state(shared);
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/issuer.pem");
        let first = load_or_create(Some(&path), "http://127.0.0.1:6544").unwrap();
        let again = load_or_create(Some(&path), "http://127.0.0.1:6544").unwrap();
        assert_eq!(first.kid(), again.kid());
        assert_eq!(first.public_key_pem(), again.public_key_pem());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // After a rotation the file holds the new key, still 0600.
        first.rotate().unwrap();
        replace_private(&path, &first.private_key_pem()).unwrap();
        let reloaded = load_or_create(Some(&path), "http://127.0.0.1:6544").unwrap();
        assert_eq!(reloaded.kid(), first.kid());
        assert_ne!(reloaded.kid(), again.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("bad.pem"), "nope").unwrap();
        assert!(load_or_create(Some(&dir.path().join("bad.pem")), "http://127.0.0.1:1").is_err());
    }
}
