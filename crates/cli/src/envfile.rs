//! `.env` / `.env.local` loading, as `triplit dev` does with dotenv.
//!
//! Variables already set in the environment win; `.env.local` is read
//! before `.env`, so its values win over `.env`'s. `${VAR}` references are
//! expanded from what is known so far.

use std::collections::HashMap;
use std::path::Path;

/// Parses one dotenv file's text into ordered pairs.
pub fn parse(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().to_string();
        let value = value.trim();
        let value = if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            inner.replace("\\n", "\n")
        } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            inner.to_string()
        } else {
            value.split(" #").next().unwrap_or("").trim().to_string()
        };
        out.push((key, value));
    }
    out
}

fn expand(value: &str, known: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                out.push_str(known.get(name).map(String::as_str).unwrap_or(""));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Variables to add from `.env.local` and `.env` in `dir`, given the
/// current environment `env`. Returns the pairs not already set.
pub fn load(dir: &Path, env: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut known = env.clone();
    let mut added = Vec::new();
    for name in [".env.local", ".env"] {
        let Ok(text) = std::fs::read_to_string(dir.join(name)) else {
            continue;
        };
        for (k, v) in parse(&text) {
            if known.contains_key(&k) {
                continue;
            }
            let v = expand(&v, &known);
            known.insert(k.clone(), v.clone());
            added.push((k, v));
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_comments_and_exports() {
        let pairs = parse("# c\nA=1\nexport B=\"two words\"\nC='x y'\nD=v # note\n\nbad line\n");
        assert_eq!(
            pairs,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x y".into()),
                ("D".into(), "v".into())
            ]
        );
    }

    #[test]
    fn environment_and_local_file_win() {
        let dir = std::env::temp_dir().join(format!("ferry-envfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".env"), "A=from-env\nB=from-env\nC=${B}-x\n").unwrap();
        std::fs::write(dir.join(".env.local"), "B=from-local\n").unwrap();
        let env = HashMap::from([("A".to_string(), "from-process".to_string())]);
        let added: HashMap<_, _> = load(&dir, &env).into_iter().collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!added.contains_key("A"));
        assert_eq!(added["B"], "from-local");
        assert_eq!(added["C"], "from-local-x");
    }
}
