//! SuperJSON annotation paths: dotted segments with `.` and `\\` escaped
//! (and the legacy escaping of superjson 2.2.2 and older).

use super::deserialization_error;
use crate::error::TriplitError;

/// Escapes one path segment for a SuperJSON annotation path: `\` becomes
/// `\\` and `.` becomes `\.` (superjson's `escapeKey`). A collection named
/// `weird.name` is annotated at `weird\.name.sets`.
pub fn escape_path_segment(s: &str) -> String {
    if !s.contains(['\\', '.']) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c == '\\' || c == '.' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Joins segments into an annotation path, escaping each one
/// (superjson's `stringifyPath`). The inverse of [`split_annotation_path`]
/// with `legacy = false`.
pub fn join_annotation_path<S: AsRef<str>>(segments: &[S]) -> String {
    segments
        .iter()
        .map(|s| escape_path_segment(s.as_ref()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Splits an annotation path into its segments (superjson's `parsePath`).
///
/// With `legacy = false` (payloads with `meta.v >= 1`), `\\` is a
/// backslash, `\.` a dot inside a segment, an unescaped `.` separates
/// segments, and any other backslash (including a trailing one) is an
/// error. With `legacy = true` (no `meta.v`), only `\.` is an escape and
/// other backslashes are literal. `""` is one empty segment.
pub fn split_annotation_path(path: &str, legacy: bool) -> Result<Vec<String>, TriplitError> {
    if !path.contains('\\') {
        return Ok(path.split('.').map(str::to_owned).collect());
    }
    let mut segments = Vec::new();
    let mut segment = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some('.') => {
                    segment.push('.');
                    chars.next();
                }
                Some('\\') if !legacy => {
                    segment.push('\\');
                    chars.next();
                }
                _ if legacy => segment.push('\\'),
                _ => {
                    return Err(deserialization_error(format!(
                        "invalid SuperJSON annotation path {path:?}: a backslash must escape '.' or '\\'"
                    )));
                }
            },
            '.' => segments.push(std::mem::take(&mut segment)),
            c => segment.push(c),
        }
    }
    segments.push(segment);
    Ok(segments)
}
