//! `CHUNK` reassembly.
//!
//! The client splits a large message by UTF-16 code units, so a chunk may
//! end inside a surrogate pair and arrive as a lone surrogate escape
//! (`"\ud83d"`) that is not valid UTF-8 on its own. Chunks are therefore
//! decoded to UTF-16 units, joined, and only then turned into a string.

use std::collections::HashMap;

use serde_json::Value;

use crate::TriplitError;

/// Limits on what a peer may buffer.
const MAX_PENDING_MESSAGES: usize = 64;
const MAX_CHUNKS: usize = 1 << 16;

#[derive(Debug)]
struct Pending {
    total: usize,
    parts: Vec<Option<Vec<u16>>>,
    received: usize,
}

/// Chunks received so far, by message id.
#[derive(Debug, Default)]
pub struct Chunks {
    pending: HashMap<String, Pending>,
}

fn chunk_error(context: impl Into<String>) -> TriplitError {
    TriplitError::malformed_payload("Invalid CHUNK message.", Some(context.into()))
}

/// Decodes a JSON string literal's contents into UTF-16 units, keeping lone
/// surrogates. `raw` is the JSON text of the string including quotes.
pub fn json_string_units(raw: &str) -> Result<Vec<u16>, TriplitError> {
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .ok_or_else(|| chunk_error("data must be a string"))?;
    let mut out = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u16; 2];
            out.extend_from_slice(c.encode_utf16(&mut buf));
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"' as u16),
            Some('\\') => out.push('\\' as u16),
            Some('/') => out.push('/' as u16),
            Some('b') => out.push(0x08),
            Some('f') => out.push(0x0C),
            Some('n') => out.push('\n' as u16),
            Some('r') => out.push('\r' as u16),
            Some('t') => out.push('\t' as u16),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let unit = u16::from_str_radix(&hex, 16)
                    .map_err(|_| chunk_error(format!("bad \\u escape: {hex}")))?;
                out.push(unit);
            }
            other => return Err(chunk_error(format!("bad escape: {other:?}"))),
        }
    }
    Ok(out)
}

impl Chunks {
    /// Adds one chunk (the raw JSON text of its `data` string, its index,
    /// the total and the message id). Returns the whole message once every
    /// chunk has arrived.
    pub fn add(
        &mut self,
        id: &str,
        index: usize,
        total: usize,
        data_json: &str,
    ) -> Result<Option<String>, TriplitError> {
        if total == 0 || total > MAX_CHUNKS || index >= total {
            return Err(chunk_error(format!("index {index} of total {total}")));
        }
        if !self.pending.contains_key(id) && self.pending.len() >= MAX_PENDING_MESSAGES {
            return Err(chunk_error("too many chunked messages in progress"));
        }
        let units = json_string_units(data_json)?;
        let entry = self
            .pending
            .entry(id.to_string())
            .or_insert_with(|| Pending {
                total,
                parts: vec![None; total],
                received: 0,
            });
        if entry.total != total {
            return Err(chunk_error("total changed between chunks"));
        }
        if entry.parts[index].is_none() {
            entry.received += 1;
        }
        entry.parts[index] = Some(units);
        if entry.received < entry.total {
            return Ok(None);
        }
        let done = self.pending.remove(id).expect("entry exists");
        let units: Vec<u16> = done.parts.into_iter().flatten().flatten().collect();
        String::from_utf16(&units)
            .map(Some)
            .map_err(|_| chunk_error("the joined chunks are not valid UTF-16"))
    }
}

/// Extracts the raw JSON text of `payload.data` from a CHUNK frame without
/// decoding it (serde_json would reject a lone surrogate).
pub fn raw_chunk_data(frame: &str) -> Result<(Value, String), TriplitError> {
    #[derive(serde::Deserialize)]
    struct Frame<'a> {
        #[serde(borrow)]
        payload: ChunkPayload<'a>,
    }
    #[derive(serde::Deserialize)]
    struct ChunkPayload<'a> {
        #[serde(borrow)]
        data: &'a serde_json::value::RawValue,
        total: Value,
        index: Value,
        id: Value,
    }
    let f: Frame = serde_json::from_str(frame).map_err(|e| chunk_error(e.to_string()))?;
    let meta =
        serde_json::json!({"total": f.payload.total, "index": f.payload.index, "id": f.payload.id});
    Ok((meta, f.payload.data.get().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrogate_pairs_split_across_chunks_are_joined() {
        let mut c = Chunks::default();
        // "a😀b" split inside the emoji's surrogate pair.
        assert_eq!(c.add("m", 0, 2, r#""a\ud83d""#).unwrap(), None);
        assert_eq!(
            c.add("m", 1, 2, r#""\ude00b""#).unwrap().as_deref(),
            Some("a😀b")
        );
    }

    #[test]
    fn chunks_may_arrive_out_of_order_and_bad_ones_are_refused() {
        let mut c = Chunks::default();
        assert_eq!(c.add("x", 1, 2, r#""lo""#).unwrap(), None);
        assert_eq!(
            c.add("x", 0, 2, r#""hel""#).unwrap().as_deref(),
            Some("hello")
        );
        assert_eq!(
            c.add("y", 2, 2, r#""z""#).unwrap_err().name,
            "MalformedMessagePayloadError"
        );
        assert!(c.add("z", 0, 1, "5").is_err());
        assert!(
            c.add("w", 0, 1, r#""\ud83d""#).is_err(),
            "a lone surrogate at the end is invalid"
        );
    }

    #[test]
    fn raw_data_keeps_lone_surrogates() {
        let frame = r#"{"type":"CHUNK","payload":{"data":"x\ud83d","total":2,"index":0,"id":"k"}}"#;
        let (meta, raw) = raw_chunk_data(frame).unwrap();
        assert_eq!(raw, r#""x\ud83d""#);
        assert_eq!(meta["total"], 2);
    }
}
