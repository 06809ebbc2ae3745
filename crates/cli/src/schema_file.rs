//! Finding and reading an app's schema file.
//!
//! A schema is Triplit's schema JSON, `{collections, roles?}` (triplit.md
//! §5.1). It comes from:
//!
//! - a `.json` file: read directly (a bare collections object is wrapped
//!   as `{collections: …}`), no JavaScript runtime needed;
//! - a `.ts` file (`triplit/schema.ts`): evaluated by the app's own
//!   `@triplit/cli` with Node, as `triplit schema print --location local
//!   --format json --schemaPath <file>` — the same loader (esbuild bundle,
//!   then import) that `triplit dev` and `triplit schema push` use, so the
//!   JSON is exactly what they would send.
//!
//! Which file: `--schema`, else `TRIPLIT_SCHEMA_PATH`, else
//! `triplit/schema.ts` in the working directory when it exists
//! ([`discover`]), as `triplit dev` looks for it.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// How long evaluating a TypeScript schema may take.
const TS_TIMEOUT: Duration = Duration::from_secs(60);

/// The schema file to use when none is given on the command line:
/// `TRIPLIT_SCHEMA_PATH`, else `triplit/schema.ts` if it exists in `cwd`
/// (the working directory, which relative paths are resolved against).
/// `None` means "no schema file" (stored schema or schemaless).
pub fn discover(env: &HashMap<String, String>, cwd: &Path) -> Option<PathBuf> {
    if let Some(p) = env.get("TRIPLIT_SCHEMA_PATH").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let default = Path::new("triplit").join("schema.ts");
    cwd.join(&default).is_file().then_some(default)
}

/// Whether `path` is a TypeScript schema (evaluated with `@triplit/cli`).
pub fn is_typescript(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "ts")
}

/// Reads the schema in `path` as schema JSON `{collections, roles?}`.
pub fn load(path: &Path) -> anyhow::Result<Value> {
    if !path.exists() {
        bail!("schema file {} does not exist", path.display());
    }
    let value = if is_typescript(path) {
        load_typescript(path)?
    } else {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading schema file {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?
    };
    Ok(normalize(value))
}

/// `{collections, roles?}` as is; anything else is taken as the
/// collections object.
pub fn normalize(v: Value) -> Value {
    if v.get("collections").is_some() {
        v
    } else {
        json!({ "collections": v })
    }
}

/// Where the app's `@triplit/cli` entry point is: the `bin.triplit` of the
/// nearest `node_modules/@triplit/cli` above any of `starts`.
pub fn find_triplit_cli(starts: &[&Path]) -> Option<PathBuf> {
    for start in starts {
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
        for dir in start.ancestors() {
            let pkg_dir = dir.join("node_modules").join("@triplit").join("cli");
            let Ok(text) = std::fs::read_to_string(pkg_dir.join("package.json")) else {
                continue;
            };
            let pkg: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let bin = match pkg.get("bin") {
                Some(Value::String(s)) => Some(s.as_str()),
                Some(Value::Object(m)) => m.get("triplit").and_then(Value::as_str),
                _ => None,
            };
            let entry = pkg_dir.join(bin.unwrap_or("dist/index.js").trim_start_matches("./"));
            if entry.is_file() {
                return Some(entry);
            }
        }
    }
    None
}

fn install_hint(path: &Path) -> String {
    format!(
        "{} is a TypeScript schema, which Ferry evaluates with the app's own @triplit/cli and Node.js. \
         Install it in the app (`npm install --save-dev @triplit/cli`), or convert the schema once \
         (`npx triplit schema print -l local -f json > schema.json`) and pass `--schema schema.json`",
        path.display()
    )
}

/// Evaluates a TypeScript schema with the app's `@triplit/cli`.
fn load_typescript(path: &Path) -> anyhow::Result<Value> {
    let abs = std::path::absolute(path)?;
    let cwd = std::env::current_dir()?;
    let schema_dir = abs.parent().unwrap_or(Path::new("/"));
    let Some(cli) = find_triplit_cli(&[schema_dir, &cwd]) else {
        bail!("{}", install_hint(path));
    };
    let mut cmd = Command::new("node");
    cmd.arg(&cli)
        .args(["schema", "print", "--location", "local", "--format", "json"])
        .arg("--schemaPath")
        .arg(&abs)
        // The command asks for a service token before it looks at
        // `--location`; a local print never uses it.
        .args(["--token", "unused"])
        .current_dir(&cwd)
        .stdin(Stdio::null());
    let out = run_with_timeout(cmd, TS_TIMEOUT).map_err(|e| {
        match e.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::NotFound => {
                anyhow::anyhow!("`node` was not found on PATH. {}", install_hint(path))
            }
            _ => e,
        }
    })?;
    if !out.success {
        bail!(
            "evaluating {} with {} failed:\n{}",
            path.display(),
            cli.display(),
            tail(&out.stderr, &out.stdout)
        );
    }
    match extract_json(&out.stdout) {
        Some(v) => Ok(v),
        None => bail!(
            "{} produced no schema (does it `export const schema = S.Collections({{…}})`?){}",
            path.display(),
            match tail(&out.stderr, &out.stdout) {
                t if t.is_empty() => String::new(),
                t => format!(":\n{t}"),
            }
        ),
    }
}

/// The last lines of a failed command's output, for the error message.
fn tail(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The first JSON object in `text` that starts a line: the CLI may print
/// other lines (warnings, notices) around the schema.
pub fn extract_json(text: &str) -> Option<Value> {
    if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(text.trim()) {
        return Some(v);
    }
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with('{') {
            let mut stream =
                serde_json::Deserializer::from_str(&text[offset..]).into_iter::<Value>();
            if let Some(Ok(v @ Value::Object(_))) = stream.next() {
                return Some(v);
            }
        }
        offset += line.len();
    }
    None
}

struct Output {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to completion, killing it after `timeout`.
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> anyhow::Result<Output> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("gave up after {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        success: status.success(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_found_among_other_lines() {
        let text = "Warning: something\n{\n  \"collections\": {\"a\": {}}\n}\ntrailing note\n";
        assert_eq!(extract_json(text), Some(json!({"collections": {"a": {}}})));
        assert_eq!(extract_json("{\"x\": 1}"), Some(json!({"x": 1})));
        assert_eq!(extract_json("no schema here\n"), None);
        assert_eq!(extract_json(""), None);
        // A brace that does not start valid JSON is skipped.
        assert_eq!(
            extract_json("{oops\n{\"collections\": {}}\n"),
            Some(json!({"collections": {}}))
        );
    }

    #[test]
    fn bare_collections_are_wrapped() {
        assert_eq!(
            normalize(json!({"todos": {}})),
            json!({"collections": {"todos": {}}})
        );
        let full = json!({"collections": {}, "roles": {}});
        assert_eq!(normalize(full.clone()), full);
    }

    #[test]
    fn discovery_prefers_the_environment_then_triplit_schema_ts() {
        let dir = tempfile::tempdir().unwrap();
        let mut env = HashMap::new();
        assert_eq!(discover(&env, dir.path()), None);
        std::fs::create_dir(dir.path().join("triplit")).unwrap();
        std::fs::write(dir.path().join("triplit/schema.ts"), "").unwrap();
        assert_eq!(
            discover(&env, dir.path()),
            Some(PathBuf::from("triplit/schema.ts"))
        );
        env.insert("TRIPLIT_SCHEMA_PATH".into(), "db/schema.ts".into());
        assert_eq!(
            discover(&env, dir.path()),
            Some(PathBuf::from("db/schema.ts"))
        );
    }

    #[test]
    fn json_files_load_without_node_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        std::fs::write(
            &p,
            r#"{"todos": {"schema": {"type": "record", "properties": {}}}}"#,
        )
        .unwrap();
        let v = load(&p).unwrap();
        assert!(v["collections"]["todos"].is_object());
        let err = load(&dir.path().join("none.json")).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn the_cli_is_found_in_an_ancestor_node_modules() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("node_modules/@triplit/cli");
        std::fs::create_dir_all(pkg.join("dist")).unwrap();
        std::fs::write(
            pkg.join("package.json"),
            r#"{"bin": {"triplit": "./dist/index.js"}}"#,
        )
        .unwrap();
        std::fs::write(pkg.join("dist/index.js"), "").unwrap();
        let deep = dir.path().join("app/triplit");
        std::fs::create_dir_all(&deep).unwrap();
        let found = find_triplit_cli(&[&deep]).unwrap();
        assert!(
            found.ends_with("node_modules/@triplit/cli/dist/index.js"),
            "{found:?}"
        );
        let elsewhere = tempfile::tempdir().unwrap();
        assert_eq!(find_triplit_cli(&[elsewhere.path()]), None);
    }
}
