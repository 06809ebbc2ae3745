//! The `ferry` binary: the one place that wires concrete pieces together
//! (store backend, clock, randomness, token verifier, protocol, server).

mod config;
mod envfile;
mod issuer;
mod remote;
mod run;
mod schema_cmd;
mod schema_file;
mod schema_report;
mod watch;

use std::collections::HashMap;

/// Turns transparent huge pages off for this process, whatever the
/// system's setting (`always` faults every fresh region in 2 MiB at a time).
/// The allocator's fresh memory was then zeroed by the kernel a huge page
/// at a time: half of a 100,000-entity `/bulk-insert` was `clear_page`, and
/// an idle server's RSS doubled. mimalloc is also built without its own
/// `MADV_HUGEPAGE` requests (the `no_thp` feature). Failure (an old kernel)
/// only leaves the default.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("ferry: could not turn transparent huge pages off: {e}");
    }
}

/// mimalloc: the server allocates and frees many small JSON values per
/// request and per commit, where glibc's allocator spends much of the time
/// consolidating free chunks and keeps freed memory in fragmented arenas.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand, ValueEnum};

/// Ferry runs Triplit apps, unchanged, on your own server.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the production server, configured like Triplit's self-hosted
    /// image: PORT (8080), JWT_SECRET (required), EXTERNAL_JWT_SECRET,
    /// LOCAL_DATABASE_URL, MAX_BODY_SIZE (MB, default 100); PROJECT_ID is
    /// accepted and ignored.
    Serve(ServeArgs),
    /// Run a development server, a drop-in for `npx triplit dev`: port 6543,
    /// the TRIPLIT_* variables, `.env`/`.env.local` loaded, dev tokens
    /// printed.
    Dev(DevArgs),
    /// Run a local token issuer on 127.0.0.1, an offline stand-in for
    /// Clerk: JWKS, OIDC discovery and Clerk-shaped session tokens
    /// (`GET /token?sub=user_A`); prints the matching pk_test_ key and PEM.
    Issuer(issuer::IssuerArgs),
    /// Push, print or diff a server's schema, like `triplit schema …`,
    /// without Node for a JSON schema: --remote/TRIPLIT_DB_URL (default
    /// http://localhost:6543), --token/TRIPLIT_SERVICE_TOKEN.
    Schema(schema_cmd::SchemaArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Storage {
    /// Embedded SQLite file (durable; the default).
    Sqlite,
    /// In memory (lost on exit; for tests and experiments).
    Memory,
    /// PostgreSQL (several Ferry nodes may share one database); needs
    /// --database-url or DATABASE_URL.
    Postgres,
}

/// What an acknowledged write survives (SQLite only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Durability {
    /// Power loss and OS crashes: every commit is fsynced.
    PowerLoss,
    /// A crash of Ferry only: commits are not fsynced, so the last writes
    /// before a power loss may be lost (what @triplit/server does).
    Process,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, clap::Args)]
struct CommonArgs {
    /// Address to bind. Defaults: 0.0.0.0 for `serve`, 127.0.0.1 for `dev`.
    #[arg(long)]
    host: Option<String>,
    /// Storage backend.
    #[arg(long, short = 's', value_enum, default_value_t = Storage::Sqlite)]
    storage: Storage,
    /// What an acknowledged write survives, for the SQLite backend
    /// [env: FERRY_DURABILITY; default power-loss]. PostgreSQL follows its
    /// server's `synchronous_commit`.
    #[arg(long, value_enum)]
    durability: Option<Durability>,
    /// Log output format (filter with RUST_LOG, e.g. RUST_LOG=ferry=debug).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Mount every route under this path prefix (e.g. /triplit), for
    /// servers reached at https://host/triplit.
    #[arg(long, default_value = "")]
    base_path: String,
    /// Load this schema at start, like `triplit schema push`: Triplit's
    /// schema JSON, or a `schema.ts` (evaluated with the app's
    /// @triplit/cli and Node). `dev` defaults to TRIPLIT_SCHEMA_PATH or
    /// triplit/schema.ts, and applies backwards-compatible changes on save.
    #[arg(long, alias = "schemaPath")]
    schema: Option<std::path::PathBuf>,
    /// PostgreSQL URL (postgres://…); selects the PostgreSQL backend
    /// [env: DATABASE_URL].
    #[arg(long)]
    database_url: Option<String>,
    /// Ferry configuration file (token issuers under [auth]) [env:
    /// FERRY_CONFIG; default ./ferry.toml if it exists].
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Port to listen on [env: PORT; default 8080].
    #[arg(long, short = 'p')]
    port: Option<u16>,
    /// SQLite database path [env: LOCAL_DATABASE_URL; default ./ferry-data/ferry.db].
    #[arg(long)]
    database: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, clap::Args)]
struct DevArgs {
    /// Port to listen on (also --port) [default 6543].
    #[arg(long = "dbPort", short = 'd', alias = "port")]
    db_port: Option<u16>,
    /// SQLite database path [env: TRIPLIT_LOCAL_DATABASE_URL; default triplit/.data/ferry/ferry.db].
    #[arg(long)]
    database: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> anyhow::Result<()> {
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    let mut env: HashMap<String, String> = std::env::vars().collect();
    let settings = match cli.command {
        Command::Serve(args) => run::Settings::serve(args, &env)?,
        Command::Dev(args) => {
            let cwd = std::env::current_dir()?;
            for (k, v) in envfile::load(&cwd, &env) {
                env.insert(k, v);
            }
            run::Settings::dev(args, &env)?
        }
        Command::Issuer(args) => return issuer::run(args),
        Command::Schema(args) => {
            let cwd = std::env::current_dir()?;
            for (k, v) in envfile::load(&cwd, &env) {
                env.insert(k, v);
            }
            std::process::exit(schema_cmd::run(args, &env)?);
        }
    };
    run::run(settings)
}
