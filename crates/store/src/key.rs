//! Order-preserving tuple encoding for composite keys.
//!
//! Keys are built from typed parts so that byte order equals tuple order:
//! strings and byte strings are escaped (`0x00` → `0x00 0xFF`) and closed
//! with `0x00`, so a shorter string sorts before its extensions; integers
//! are fixed-width big-endian. Each part carries a type tag so that parts of
//! different types never compare ambiguously.

const TAG_STR: u8 = 0x01;
const TAG_U64: u8 = 0x02;
const TAG_BYTES: u8 = 0x03;

/// Builds a composite key part by part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyBuf(Vec<u8>);

impl KeyBuf {
    /// An empty key.
    pub fn new() -> Self {
        Self(Vec::with_capacity(48))
    }

    /// Appends a string part.
    pub fn str(mut self, s: &str) -> Self {
        self.0.push(TAG_STR);
        escape_into(&mut self.0, s.as_bytes());
        self
    }

    /// Appends a byte-string part.
    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.0.push(TAG_BYTES);
        escape_into(&mut self.0, b);
        self
    }

    /// Appends an unsigned integer part.
    pub fn u64(mut self, n: u64) -> Self {
        self.0.push(TAG_U64);
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// Appends raw bytes that are already order-preserving and
    /// self-delimiting (used for protocol-specific value encodings).
    pub fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }

    /// The encoded key.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }

    /// The encoded key so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

fn escape_into(out: &mut Vec<u8>, b: &[u8]) {
    for &byte in b {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
    out.push(0);
}

/// A decoded key part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A string part.
    Str(String),
    /// A byte-string part.
    Bytes(Vec<u8>),
    /// An integer part.
    U64(u64),
}

/// Decodes a key made only of [`KeyBuf::str`], [`KeyBuf::bytes`] and
/// [`KeyBuf::u64`] parts. `None` when the key is not of that form.
pub fn decode(mut key: &[u8]) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    while let Some((&tag, rest)) = key.split_first() {
        key = rest;
        match tag {
            TAG_STR | TAG_BYTES => {
                let (bytes, rest) = unescape(key)?;
                key = rest;
                parts.push(if tag == TAG_STR {
                    Part::Str(String::from_utf8(bytes).ok()?)
                } else {
                    Part::Bytes(bytes)
                });
            }
            TAG_U64 => {
                let (n, rest) = key.split_at_checked(8)?;
                key = rest;
                parts.push(Part::U64(u64::from_be_bytes(n.try_into().ok()?)));
            }
            _ => return None,
        }
    }
    Some(parts)
}

/// Reads one escaped string part (without its tag) from the front of `key`;
/// returns it and the rest.
pub fn unescape(key: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < key.len() {
        let b = key[i];
        if b == 0 {
            if key.get(i + 1) == Some(&0xFF) {
                out.push(0);
                i += 2;
                continue;
            }
            return Some((out, &key[i + 1..]));
        }
        out.push(b);
        i += 1;
    }
    None
}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` when no such key exists (the prefix is all `0xFF`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let k = KeyBuf::new().str("todos").bytes(b"a\0b").u64(7).finish();
        assert_eq!(
            decode(&k).unwrap(),
            vec![
                Part::Str("todos".into()),
                Part::Bytes(b"a\0b".to_vec()),
                Part::U64(7)
            ]
        );
    }

    #[test]
    fn prefix_end_carries() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
    }

    proptest! {
        #[test]
        fn string_order_is_preserved(a in ".*", b in ".*", n in any::<u64>()) {
            let ka = KeyBuf::new().str(&a).u64(n).finish();
            let kb = KeyBuf::new().str(&b).u64(n).finish();
            prop_assert_eq!(a.as_bytes().cmp(b.as_bytes()), ka.cmp(&kb));
        }

        #[test]
        fn bytes_order_is_preserved(a in proptest::collection::vec(any::<u8>(), 0..8), b in proptest::collection::vec(any::<u8>(), 0..8)) {
            let ka = KeyBuf::new().bytes(&a).str("x").finish();
            let kb = KeyBuf::new().bytes(&b).str("x").finish();
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
            prop_assert_eq!(decode(&ka).unwrap()[0].clone(), Part::Bytes(a));
        }
    }
}
