//! The schema file of a running server: loaded at start, and in `ferry
//! dev` watched and re-applied on save.
//!
//! Both go through `/override-schema` as the service (the same checks as
//! `triplit schema push`):
//!
//! - at start without `failOnBackwardsIncompatibleChange`, as upstream's
//!   `createDB` applies `triplit dev`'s schema: an edit that existing data
//!   allows is applied; a refusal stops the server with the issues, as
//!   `triplit dev` stops.
//! - on save with `failOnBackwardsIncompatibleChange: true`: only
//!   backwards-compatible changes are applied while the server runs; a
//!   refusal is printed with its issues, and the server keeps its schema.
//!   (`triplit dev` only prints "restart or push" on a change.)
//!
//! Watching polls the files' modification times every second: the schema
//! file, and for a TypeScript schema the other `.ts` files beside it (the
//! modules it may import).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::bail;
use ferry_triplit::db::TriplitDb;
use ferry_triplit::http::{Body, Input};
use ferry_triplit::session::Session;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::schema_report;

/// How often the schema files are looked at.
const POLL: Duration = Duration::from_secs(1);
/// How long a change must stay still before it is read (editors that
/// write in several steps).
const SETTLE: Duration = Duration::from_millis(150);

/// Sends `schema` to `/override-schema` as the service; the answer
/// (upstream's `SchemaChange` JSON).
pub async fn apply(db: &TriplitDb, schema: Value, strict: bool) -> anyhow::Result<Value> {
    let reply = ferry_triplit::http::handle(
        db,
        &Session::service(),
        "override-schema",
        Input::Json(json!({"schema": schema, "failOnBackwardsIncompatibleChange": strict})),
        false,
    )
    .await;
    match reply.body {
        Body::Json(v) if v.get("successful").is_some() => Ok(v),
        Body::Json(v) => bail!("applying the schema failed: {v}"),
        _ => bail!("applying the schema failed (status {})", reply.status),
    }
}

async fn load(path: &Path) -> anyhow::Result<Value> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || crate::schema_file::load(&path)).await?
}

/// Loads the schema file at start. A refusal is an error: the server does
/// not start, as `triplit dev` does not (`Failed to initialize database:
/// SCHEMA_UPDATE_FAILED`).
pub async fn load_at_start(db: &TriplitDb, path: &Path) -> anyhow::Result<()> {
    let schema = load(path).await?;
    let change = apply(db, schema, false).await?;
    if schema_report::successful(&change) {
        let n = schema_report::diff_len(&change);
        tracing::info!(path = %path.display(), changes = n, "schema loaded");
        return Ok(());
    }
    bail!(
        "the schema in {} was refused; the stored schema and data are unchanged.\n{}",
        path.display(),
        schema_report::refusal(&change).trim_end()
    );
}

/// The files to watch for `schema`.
pub fn watched_files(schema: &Path) -> Vec<PathBuf> {
    let mut files = vec![schema.to_path_buf()];
    if crate::schema_file::is_typescript(schema)
        && let Some(dir) = schema.parent()
        && let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let mut siblings: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && crate::schema_file::is_typescript(p))
            .filter(|p| p.file_name() != schema.file_name())
            .collect();
        siblings.sort();
        files.extend(siblings);
    }
    files
}

/// The state of the watched files: each one's modification time and size
/// (`None` if missing).
pub type Fingerprint = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

/// Looks at the watched files now.
pub fn fingerprint(schema: &Path) -> Fingerprint {
    watched_files(schema)
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (p, meta)
        })
        .collect()
}

/// Watches the schema file until `shutdown`, applying each saved change.
pub fn spawn(
    db: Arc<TriplitDb>,
    path: PathBuf,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = fingerprint(&path);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
            let now = fingerprint(&path);
            if now == seen {
                continue;
            }
            tokio::time::sleep(SETTLE).await;
            let settled = fingerprint(&path);
            if settled != now {
                // Still being written: look again on the next poll.
                continue;
            }
            seen = settled;
            on_change(&db, &path).await;
        }
    })
}

async fn on_change(db: &TriplitDb, path: &Path) {
    if !path.exists() {
        eprintln!(
            "Schema file {} was removed; the server keeps its schema.",
            path.display()
        );
        return;
    }
    let schema = match load(path).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "Schema file {} changed but could not be read; the server keeps its schema:\n{e:#}",
                path.display()
            );
            return;
        }
    };
    match apply(db, schema, true).await {
        Ok(change) if schema_report::successful(&change) => {
            let n = schema_report::diff_len(&change);
            if n == 0 {
                println!("Schema file {} saved: no schema changes.", path.display());
            } else {
                println!(
                    "Schema updated from {}: {n} change(s) applied.",
                    path.display()
                );
                if let Some(d) = change.get("diff").and_then(Value::as_array) {
                    print!("{}", schema_report::diff(d));
                }
            }
        }
        Ok(change) => {
            let hint = if change.get("code").and_then(Value::as_str)
                == Some("SCHEMA_COMPATIBILITY_MISMATCH")
            {
                "Only backwards-compatible changes are applied on save: make the change \
                 compatible, or run `ferry schema push` to apply it (existing data allows it).\n"
            } else {
                "Fix the schema or the data as the issues say, and save again.\n"
            };
            eprint!(
                "Schema change in {} not applied; the server keeps its schema.\n{}{hint}",
                path.display(),
                schema_report::refusal(&change)
            );
        }
        Err(e) => eprintln!("Schema change in {} not applied: {e:#}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typescript_schemas_watch_their_sibling_modules() {
        let dir = tempfile::tempdir().unwrap();
        let schema = dir.path().join("schema.ts");
        std::fs::write(&schema, "").unwrap();
        std::fs::write(dir.path().join("roles.ts"), "").unwrap();
        std::fs::write(dir.path().join("notes.md"), "").unwrap();
        std::fs::create_dir(dir.path().join(".temp")).unwrap();
        let files = watched_files(&schema);
        assert_eq!(files, vec![schema.clone(), dir.path().join("roles.ts")]);
        let json = dir.path().join("schema.json");
        std::fs::write(&json, "{}").unwrap();
        assert_eq!(watched_files(&json), vec![json]);
    }

    #[test]
    fn the_fingerprint_changes_when_a_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let schema = dir.path().join("schema.json");
        std::fs::write(&schema, "{}").unwrap();
        let before = fingerprint(&schema);
        assert_eq!(before, fingerprint(&schema));
        std::fs::write(&schema, "{\"collections\": {}}").unwrap();
        assert_ne!(before, fingerprint(&schema));
        std::fs::remove_file(&schema).unwrap();
        assert_eq!(fingerprint(&schema)[0].1, None);
    }

    #[tokio::test]
    async fn saved_changes_apply_only_when_backwards_compatible() {
        let db = TriplitDb::open(
            Arc::new(ferry_store::MemoryStore::new()),
            Arc::new(ferry_core::SystemTime),
            Arc::new(ferry_core::SystemRandom),
        )
        .await
        .unwrap();
        let base = json!({"collections": {"todos": {"schema": {"type": "record",
            "properties": {"id": {"type": "string", "config": {}}}}}}});
        assert!(schema_report::successful(
            &apply(&db, base, false).await.unwrap()
        ));
        let with = |p: Value| {
            json!({"collections": {"todos": {"schema": {"type": "record",
                "properties": {"id": {"type": "string", "config": {}}, "x": p}}}}})
        };
        // A new optional attribute is compatible.
        let optional = with(json!({"type": "string", "config": {"optional": true}}));
        let change = apply(&db, optional, true).await.unwrap();
        assert!(schema_report::successful(&change));
        assert_eq!(schema_report::diff_len(&change), 1);
        // Optional → required is not, even on an empty collection.
        let required = with(json!({"type": "string", "config": {}}));
        let change = apply(&db, required, true).await.unwrap();
        assert_eq!(change["code"], "SCHEMA_COMPATIBILITY_MISMATCH");
        let stored = db.schema().unwrap().to_json();
        assert_eq!(
            stored["collections"]["todos"]["schema"]["properties"]["x"]["config"]["optional"],
            true
        );
    }
}
