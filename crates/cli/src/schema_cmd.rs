//! `ferry schema push|print|diff`: Triplit's schema commands without Node
//! (for a JSON schema), against any Ferry or Triplit server.
//!
//! - `push` sends `POST /override-schema {schema,
//!   failOnBackwardsIncompatibleChange}` like `triplit schema push`
//!   (triplit.md §5.2): the flag is `false` with `--force`, else
//!   `--enforce-backwards-compatibility`. Exits 1 unless `successful`.
//! - `print` writes the server's schema (`POST /schema`) as JSON, or with
//!   `--location local` the local file's.
//! - `diff` fetches the server's schema and computes, locally, what a push
//!   would change and which changes are backwards incompatible (the data
//!   checks need the server, so it says what each one needs).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use ferry_triplit::schema::Schema;
use ferry_triplit::schema::diff::diff_schemas;
use ferry_triplit::schema::issues::backwards_incompatible_edits;
use serde_json::{Value, json};

use crate::remote::Remote;
use crate::schema_report;

/// `ferry schema …`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    #[command(subcommand)]
    command: SchemaCommand,
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Apply the local schema to the server, like `triplit schema push`;
    /// exits 1 unless the server accepts it.
    Push(PushArgs),
    /// Print the server's schema (or, with `--location local`, the local
    /// file's) as JSON; nothing for a schemaless server.
    Print(PrintArgs),
    /// Show what pushing the local schema would change, and which changes
    /// are backwards incompatible; changes nothing.
    Diff(DiffArgs),
}

#[derive(Debug, clap::Args)]
struct RemoteArgs {
    /// Server URL [env: TRIPLIT_DB_URL; default http://localhost:6543].
    #[arg(long, short = 'r')]
    remote: Option<String>,
    /// Service token [env: TRIPLIT_SERVICE_TOKEN; default for a loopback
    /// server: `ferry dev`'s service token].
    #[arg(long, short = 't')]
    token: Option<String>,
}

#[derive(Debug, clap::Args)]
struct LocalArgs {
    /// Schema file, `.ts` (needs the app's @triplit/cli and Node) or
    /// `.json` [env: TRIPLIT_SCHEMA_PATH; default triplit/schema.ts].
    #[arg(long, alias = "schemaPath")]
    schema: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct PushArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    local: LocalArgs,
    /// Apply backwards-incompatible changes that existing data allows
    /// (`failOnBackwardsIncompatibleChange: false`, whatever `-e` says).
    #[arg(long, short = 'f')]
    force: bool,
    /// Refuse any backwards-incompatible change, even one existing data
    /// allows (`failOnBackwardsIncompatibleChange: true`).
    #[arg(long, short = 'e', alias = "enforceBackwardsCompatibility")]
    enforce_backwards_compatibility: bool,
    /// Print the issues even when the push succeeds.
    #[arg(long, short = 'p', alias = "printIssues")]
    print_issues: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Location {
    /// The server's schema.
    Remote,
    /// The local schema file's.
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PrintFormat {
    /// Triplit's schema JSON.
    Json,
}

#[derive(Debug, clap::Args)]
struct PrintArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    local: LocalArgs,
    /// Which schema to print.
    #[arg(long, short = 'l', value_enum, default_value_t = Location::Remote)]
    location: Location,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = PrintFormat::Json)]
    format: PrintFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DiffFormat {
    /// One line per change, then the backwards-incompatible ones.
    Text,
    /// `{"diff": […], "issues": […]}` in upstream's shapes.
    Json,
}

#[derive(Debug, clap::Args)]
struct DiffArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    local: LocalArgs,
    /// Which side is newer: `local` shows what a push would change.
    #[arg(long, short = 'a', value_enum, default_value_t = Location::Local)]
    ahead: Location,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,
}

/// Runs a `ferry schema` command; returns the process exit code.
pub fn run(args: SchemaArgs, env: &HashMap<String, String>) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match args.command {
            SchemaCommand::Push(a) => push(a, env).await,
            SchemaCommand::Print(a) => print(a, env).await,
            SchemaCommand::Diff(a) => diff(a, env).await,
        }
    })
}

fn remote(args: RemoteArgs, env: &HashMap<String, String>) -> anyhow::Result<Remote> {
    Remote::new(args.remote, args.token, env)
}

/// The local schema JSON from `--schema`, `TRIPLIT_SCHEMA_PATH` or
/// `triplit/schema.ts`.
fn local_schema(args: &LocalArgs, env: &HashMap<String, String>) -> anyhow::Result<Value> {
    let cwd = std::env::current_dir()?;
    let path = match &args.schema {
        Some(p) => p.clone(),
        None => match crate::schema_file::discover(env, &cwd) {
            Some(p) => p,
            None => bail!(
                "no schema file: there is no triplit/schema.ts here; pass --schema <file.ts|file.json> or set TRIPLIT_SCHEMA_PATH"
            ),
        },
    };
    crate::schema_file::load(&path)
}

async fn push(args: PushArgs, env: &HashMap<String, String>) -> anyhow::Result<i32> {
    let fail_on_incompatible = if args.force {
        false
    } else {
        args.enforce_backwards_compatibility
    };
    let schema = local_schema(&args.local, env)?;
    let remote = remote(args.remote, env)?;
    let body = json!({
        "schema": schema,
        "failOnBackwardsIncompatibleChange": fail_on_incompatible,
    });
    let change = remote.post("override-schema", &body).await?;
    if change.get("successful").is_none() {
        bail!(
            "unexpected answer from {}/override-schema: {change}",
            remote.url
        );
    }
    if !schema_report::successful(&change) {
        eprint!("{}", schema_report::refusal(&change));
        return Ok(1);
    }
    let n = schema_report::diff_len(&change);
    if n == 0 {
        println!("Schema pushed to {}: no changes.", remote.url);
    } else {
        println!("Schema pushed to {}: {n} change(s) applied.", remote.url);
        if let Some(d) = change.get("diff").and_then(Value::as_array) {
            print!("{}", schema_report::diff(d));
        }
    }
    let issues = change.get("issues").and_then(Value::as_array);
    if (args.print_issues || fail_on_incompatible)
        && let Some(list) = issues.filter(|l| !l.is_empty())
    {
        println!("Backwards-incompatible changes ({}):", list.len());
        print!("{}", schema_report::issues(list));
    }
    Ok(0)
}

async fn print(args: PrintArgs, env: &HashMap<String, String>) -> anyhow::Result<i32> {
    let PrintFormat::Json = args.format;
    let schema = match args.location {
        Location::Local => Some(local_schema(&args.local, env)?),
        Location::Remote => remote(args.remote, env)?.schema().await?,
    };
    if let Some(schema) = schema {
        println!("{}", serde_json::to_string_pretty(&schema)?);
    }
    Ok(0)
}

/// Parses schema JSON as the server would store it (default roles added).
fn parse(mut v: Value, what: &str) -> anyhow::Result<Schema> {
    ferry_triplit::schema::apply_default_roles(&mut v);
    Schema::from_json(&v)
        .map_err(|e| anyhow::anyhow!("the {what} schema is invalid: {}", e.message))
}

/// `{diff, issues}` from `old` to `new`: every difference, and the
/// backwards-incompatible ones as upstream's issues (without the data
/// check, which only the server can run).
pub fn compare(old: &Schema, new: &Schema) -> (Vec<Value>, Vec<Value>) {
    let d = diff_schemas(old, new);
    let issues = backwards_incompatible_edits(&d)
        .into_iter()
        .map(|edit| {
            json!({
                "issue": edit.issue,
                "dataConstraint": edit.data_constraint.as_str(),
                "context": edit.context.to_json(),
                "cure": edit.cure(),
            })
        })
        .collect();
    (d.iter().map(|x| x.to_json()).collect(), issues)
}

async fn diff(args: DiffArgs, env: &HashMap<String, String>) -> anyhow::Result<i32> {
    let local = parse(local_schema(&args.local, env)?, "local")?;
    let remote = remote(args.remote, env)?;
    let Some(server_json) = remote.schema().await? else {
        match args.format {
            DiffFormat::Json => println!("{}", json!({"remote": "schemaless"})),
            DiffFormat::Text => println!(
                "{} is schemaless: a push would set the whole local schema.",
                remote.url
            ),
        }
        return Ok(0);
    };
    let server = parse(server_json, "remote").context("reading the server's schema")?;
    let (d, issues) = match args.ahead {
        Location::Local => compare(&server, &local),
        Location::Remote => compare(&local, &server),
    };
    match args.format {
        DiffFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"diff": d, "issues": issues}))?
            )
        }
        DiffFormat::Text if d.is_empty() => {
            println!(
                "No differences between the local schema and {}.",
                remote.url
            )
        }
        DiffFormat::Text => {
            print!("{}", schema_report::diff(&d));
            if issues.is_empty() {
                println!("All changes are backwards compatible.");
            } else {
                println!(
                    "{} backwards-incompatible change(s); the server applies them only if its data allows (and never with -e):",
                    issues.len()
                );
                print!("{}", schema_report::issues(&issues));
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn todos(extra: Value) -> Schema {
        let mut props = json!({"id": {"type": "string", "config": {}}});
        props
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let v =
            json!({"collections": {"todos": {"schema": {"type": "record", "properties": props}}}});
        parse(v, "test").unwrap()
    }

    #[test]
    fn compare_reports_dangerous_edits_with_their_cure() {
        let old = todos(json!({}));
        let safe = todos(json!({"note": {"type": "string", "config": {"optional": true}}}));
        let (d, issues) = compare(&old, &safe);
        assert_eq!(d.len(), 1);
        assert!(issues.is_empty());
        let required = todos(json!({"n": {"type": "number", "config": {}}}));
        let (d, issues) = compare(&old, &required);
        assert_eq!(d[0]["type"], "insert");
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0]["dataConstraint"], "collection_is_empty");
        assert_eq!(
            issues[0]["cure"],
            "make 'n' optional or delete all entities in 'todos' to allow this edit"
        );
        assert!(compare(&required, &required).0.is_empty());
    }

    #[test]
    fn local_schemas_get_default_roles_like_the_server_stores() {
        let s = todos(json!({}));
        assert!(s.roles().is_some());
        let invalid = parse(
            json!({"collections": {"t": {"schema": {"type": "string"}}}}),
            "local",
        );
        assert!(
            invalid
                .err()
                .unwrap()
                .to_string()
                .starts_with("the local schema is invalid")
        );
    }
}
