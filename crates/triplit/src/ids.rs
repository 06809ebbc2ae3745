//! Id generation for schema defaults, with injected randomness and time.
//!
//! Upstream's `{"func": …, "args": …}` defaults (`calcDefaultValue` in
//! `packages/db/src/schema/data-types/type.ts`) map to:
//!
//! - `"nanoid"` and its alias `"uuid"` → `nanoid(args[0])` when `args[0]` is a
//!   number, else `nanoid()` (21 characters). `S.Id()` uses this. The
//!   `nanoid` package (v5) takes one random byte per character and keeps its
//!   low 6 bits, over a 64-symbol URL-safe alphabet;
//! - `"uuidv4"` → `crypto.randomUUID()`: a lowercase, hyphenated RFC 9562
//!   version 4 UUID;
//! - `"uuidv7"` → the optional `uuidv7` package: 48-bit Unix milliseconds,
//!   version 7, variant `10`. (Upstream throws when that optional package is
//!   not installed; Ferry always generates one.)
//!
//! [`default_id`] dispatches on those names. Everything takes a
//! `&dyn RandomSource` (and a `&dyn TimeSource` for v7), so tests can seed it.

use ferry_core::{RandomSource, TimeSource};
use parking_lot::Mutex;
use serde_json::Value;

use crate::error::TriplitError;

/// nanoid's URL alphabet (`nanoid/url-alphabet`), in nanoid's order.
pub const NANOID_ALPHABET: &str =
    "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";

/// The length of `nanoid()` without an argument.
pub const NANOID_DEFAULT_LEN: usize = 21;

/// The longest nanoid [`default_id`] generates. Upstream has no explicit
/// limit (it allocates `128 × size` bytes); Ferry refuses larger sizes
/// instead of allocating without bound.
pub const NANOID_MAX_LEN: usize = 1 << 16;

/// The largest 48-bit value: the last millisecond a v7 UUID can encode.
const MAX_UNIX_MS_48: u64 = (1 << 48) - 1;

/// A 21-character nanoid, like `nanoid()`.
pub fn nanoid(rng: &dyn RandomSource) -> String {
    nanoid_len(rng, NANOID_DEFAULT_LEN)
}

/// A nanoid of `n` characters, like `nanoid(n)`: `n` random bytes, each
/// mapped to `NANOID_ALPHABET[byte & 63]` (uniform, since the alphabet has
/// exactly 64 symbols). `n == 0` gives the empty string.
pub fn nanoid_len(rng: &dyn RandomSource, n: usize) -> String {
    let alphabet = NANOID_ALPHABET.as_bytes();
    let mut bytes = vec![0u8; n];
    rng.fill(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(b & 63)]))
        .collect()
}

/// Formats 16 bytes as a lowercase hyphenated UUID (`8-4-4-4-12`).
fn format_uuid(b: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(byte >> 4)]));
        s.push(char::from(HEX[usize::from(byte & 15)]));
    }
    s
}

/// A random (version 4) UUID, RFC 9562 §5.4, lowercase and hyphenated like
/// `crypto.randomUUID()`: 122 random bits, version nibble `4`, variant `10`.
pub fn uuid_v4(rng: &dyn RandomSource) -> String {
    let mut b = [0u8; 16];
    rng.fill(&mut b);
    b[6] = 0x40 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    format_uuid(&b)
}

/// The bytes of a version 7 UUID from its fields (RFC 9562 §5.7), laid out
/// as the `uuidv7` package's `UUID.fromFieldsV7` does: 48 bits of Unix ms,
/// version `7`, 12 bits `rand_a`, variant `10`, then 62 bits `rand_b`.
fn v7_bytes(unix_ms: u64, rand_a: u16, rand_b: u64) -> [u8; 16] {
    let ms = unix_ms.min(MAX_UNIX_MS_48);
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    let rand_a = rand_a & 0x0fff;
    b[6] = 0x70 | (rand_a >> 8) as u8;
    b[7] = rand_a as u8;
    let rand_b = rand_b & ((1 << 62) - 1);
    b[8..].copy_from_slice(&rand_b.to_be_bytes());
    b[8] |= 0x80;
    b
}

/// A time-ordered (version 7) UUID for the current time of `time`: 48 bits
/// of Unix milliseconds (saturating at the 48-bit maximum), version `7`,
/// variant `10` and 74 random bits. UUIDs from later milliseconds sort
/// after earlier ones (as strings and as bytes); within one millisecond
/// the order is random — use [`UuidV7Generator`] for a strictly increasing
/// sequence.
pub fn uuid_v7(rng: &dyn RandomSource, time: &dyn TimeSource) -> String {
    let mut r = [0u8; 10];
    rng.fill(&mut r);
    let rand_a = u16::from_be_bytes([r[0], r[1]]);
    let mut rb = [0u8; 8];
    rb.copy_from_slice(&r[2..]);
    format_uuid(&v7_bytes(time.now_ms(), rand_a, u64::from_be_bytes(rb)))
}

/// A strictly increasing v7 UUID sequence, with the algorithm of the
/// `uuidv7` package's `V7Generator` (the one upstream's `uuidv7` default
/// calls): a 42-bit counter (`rand_a` and the top 30 bits of `rand_b`)
/// re-seeded randomly each new millisecond and incremented within one, the
/// timestamp carried forward when the clock goes back by up to ten seconds
/// or the counter overflows, and 32 fresh random bits at the end.
#[derive(Debug, Default)]
pub struct UuidV7Generator {
    /// `(timestamp in ms + 1, counter)`; 0 means "not started".
    state: Mutex<(u64, u64)>,
}

impl UuidV7Generator {
    /// Clock rollback, in ms, below which the previous timestamp is reused.
    const ROLLBACK_ALLOWANCE_MS: u64 = 10_000;
    /// The largest 42-bit counter.
    const MAX_COUNTER: u64 = (1 << 42) - 1;

    /// A generator that has produced nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn random_counter(rng: &dyn RandomSource) -> u64 {
        rng.next_u64() & Self::MAX_COUNTER
    }

    /// The next UUID: greater than every UUID this generator returned
    /// before, unless the clock went back by more than ten seconds (then the
    /// sequence restarts at the new time, like upstream).
    pub fn generate(&self, rng: &dyn RandomSource, time: &dyn TimeSource) -> String {
        let now_biased = time.now_ms().min(MAX_UNIX_MS_48) + 1;
        let mut state = self.state.lock();
        let (ts_biased, counter) = &mut *state;
        if now_biased > *ts_biased {
            *ts_biased = now_biased;
            *counter = Self::random_counter(rng);
        } else if now_biased + Self::ROLLBACK_ALLOWANCE_MS >= *ts_biased {
            *counter += 1;
            if *counter > Self::MAX_COUNTER {
                *ts_biased += 1;
                *counter = Self::random_counter(rng);
            }
        } else {
            *ts_biased = now_biased;
            *counter = Self::random_counter(rng);
        }
        let tail = u64::from(rng.next_u64() as u32);
        let rand_a = (*counter >> 30) as u16;
        let rand_b = ((*counter & ((1 << 30) - 1)) << 32) | tail;
        format_uuid(&v7_bytes(*ts_biased - 1, rand_a, rand_b))
    }
}

/// JavaScript `ToInt32` (what `size |= 0` does in nanoid).
fn js_to_int32(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    let m = n.trunc().rem_euclid(4_294_967_296.0);
    if m >= 2_147_483_648.0 {
        (m - 4_294_967_296.0) as i32
    } else {
        m as i32
    }
}

/// The nanoid length upstream uses for the default args `args`: `args[0]`
/// when it is a number (then `ToInt32` of it, as `nanoid` does `size |= 0`),
/// otherwise 21. An error for a negative size (nanoid throws
/// `RangeError: Wrong ID size`) or one above [`NANOID_MAX_LEN`].
pub fn nanoid_len_from_args(args: &Value) -> Result<usize, TriplitError> {
    let first = match args {
        Value::Array(a) => a.first(),
        Value::Object(o) => o.get("0"),
        _ => None,
    };
    let Some(n) = first.and_then(Value::as_f64) else {
        return Ok(NANOID_DEFAULT_LEN);
    };
    let size = js_to_int32(n);
    let size = usize::try_from(size)
        .map_err(|_| TriplitError::internal(format!("Wrong ID size: nanoid({size})")))?;
    if size > NANOID_MAX_LEN {
        return Err(TriplitError::internal(format!(
            "nanoid({size}) exceeds the maximum id length {NANOID_MAX_LEN}"
        )));
    }
    Ok(size)
}

/// The value of an id default function `{"func": func, "args": args}`:
/// `Some` for `"nanoid"`, `"uuid"` (an alias of nanoid upstream, not a
/// UUID), `"uuidv4"` and `"uuidv7"`; `None` for any other `func` (`"now"`,
/// `"Set.empty"` and unknown names are not ids).
pub fn default_id(
    func: &str,
    args: &Value,
    rng: &dyn RandomSource,
    time: &dyn TimeSource,
) -> Option<Result<String, TriplitError>> {
    match func {
        "nanoid" | "uuid" => Some(nanoid_len_from_args(args).map(|n| nanoid_len(rng, n))),
        "uuidv4" => Some(Ok(uuid_v4(rng))),
        "uuidv7" => Some(Ok(uuid_v7(rng, time))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::{ManualTime, SeededRandom};
    use serde_json::json;

    /// A source that hands out a fixed byte sequence, for layout tests.
    struct Bytes(Mutex<Vec<u8>>);
    impl RandomSource for Bytes {
        fn fill(&self, buf: &mut [u8]) {
            let mut src = self.0.lock();
            for b in buf.iter_mut() {
                *b = if src.is_empty() { 0 } else { src.remove(0) };
            }
        }
    }

    fn is_uuid_shape(s: &str) -> bool {
        s.len() == 36
            && s.char_indices().all(|(i, c)| {
                if matches!(i, 8 | 13 | 18 | 23) {
                    c == '-'
                } else {
                    matches!(c, '0'..='9' | 'a'..='f')
                }
            })
    }

    #[test]
    fn alphabet_has_64_distinct_url_safe_symbols() {
        let mut chars: Vec<char> = NANOID_ALPHABET.chars().collect();
        assert_eq!(chars.len(), 64);
        assert!(
            chars
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        );
        chars.sort_unstable();
        chars.dedup();
        assert_eq!(chars.len(), 64);
    }

    #[test]
    fn nanoid_lengths_and_alphabet() {
        let rng = SeededRandom::new(7);
        let id = nanoid(&rng);
        assert_eq!(id.chars().count(), 21);
        assert!(id.chars().all(|c| NANOID_ALPHABET.contains(c)));
        assert_eq!(nanoid_len(&rng, 0), "");
        assert_eq!(nanoid_len(&rng, 5).len(), 5);
        assert_eq!(nanoid_len(&rng, 1000).len(), 1000);
    }

    #[test]
    fn nanoid_uses_low_six_bits_in_byte_order() {
        let rng = Bytes(Mutex::new(vec![0, 63, 64, 255, 11]));
        // alphabet[0] = 'u', alphabet[63] = 't', alphabet[11] = 'T'.
        assert_eq!(nanoid_len(&rng, 5), "ututT");
    }

    #[test]
    fn nanoid_covers_the_whole_alphabet_uniformly_enough() {
        let rng = SeededRandom::new(42);
        let s = nanoid_len(&rng, 64 * 200);
        let mut counts = std::collections::HashMap::new();
        for c in s.chars() {
            *counts.entry(c).or_insert(0usize) += 1;
        }
        assert_eq!(counts.len(), 64);
        assert!(
            counts.values().all(|&n| (100..=300).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn deterministic_with_seeded_random() {
        let a = SeededRandom::new(1);
        let b = SeededRandom::new(1);
        let t = ManualTime::new(1_795_415_366_724);
        assert_eq!(nanoid(&a), nanoid(&b));
        assert_eq!(uuid_v4(&a), uuid_v4(&b));
        assert_eq!(uuid_v7(&a, &t), uuid_v7(&b, &t));
        assert_ne!(nanoid(&a), nanoid(&a));
    }

    #[test]
    fn uuid_v4_version_and_variant() {
        let rng = SeededRandom::new(3);
        for _ in 0..100 {
            let u = uuid_v4(&rng);
            assert!(is_uuid_shape(&u), "{u}");
            assert_eq!(&u[14..15], "4");
            assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        }
        let ones = Bytes(Mutex::new(vec![0xff; 16]));
        assert_eq!(uuid_v4(&ones), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let zeros = Bytes(Mutex::new(vec![0; 16]));
        assert_eq!(uuid_v4(&zeros), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn uuid_v7_layout() {
        let t = ManualTime::new(1_795_415_366_724);
        let zeros = Bytes(Mutex::new(vec![0; 10]));
        assert_eq!(uuid_v7(&zeros, &t), "01a20718-5c44-7000-8000-000000000000");
        let ones = Bytes(Mutex::new(vec![0xff; 10]));
        assert_eq!(uuid_v7(&ones, &t), "01a20718-5c44-7fff-bfff-ffffffffffff");
        let rng = SeededRandom::new(9);
        for _ in 0..100 {
            let u = uuid_v7(&rng, &t);
            assert!(is_uuid_shape(&u), "{u}");
            assert!(u.starts_with("01a20718-5c44-7"), "{u}");
            assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        }
        // Saturates at the 48-bit maximum instead of wrapping.
        let far = ManualTime::new(u64::MAX);
        assert!(uuid_v7(&rng, &far).starts_with("ffffffff-ffff-7"));
    }

    #[test]
    fn uuid_v7_monotone_in_time() {
        let rng = SeededRandom::new(11);
        let t = ManualTime::new(0);
        let mut prev = uuid_v7(&rng, &t);
        for ms in [
            1u64,
            2,
            1000,
            1_795_415_366_724,
            1_795_415_366_725,
            MAX_UNIX_MS_48,
        ] {
            t.set(ms);
            let next = uuid_v7(&rng, &t);
            assert!(next > prev, "{prev} !< {next}");
            prev = next;
        }
    }

    #[test]
    fn generator_is_strictly_increasing_within_a_millisecond_and_across_rollback() {
        let rng = SeededRandom::new(5);
        let t = ManualTime::new(1_000_000);
        let g = UuidV7Generator::new();
        let mut prev = g.generate(&rng, &t);
        for i in 0..2000u64 {
            if i % 500 == 0 {
                // Small rollback: the previous timestamp is reused.
                t.set(1_000_000 - 5_000 + i);
            }
            let next = g.generate(&rng, &t);
            assert!(is_uuid_shape(&next));
            assert!(next > prev, "{prev} !< {next}");
            prev = next;
        }
        // A rollback beyond ten seconds restarts at the new time.
        t.set(1_000);
        let restarted = g.generate(&rng, &t);
        assert!(restarted < prev);
        assert!(restarted.starts_with("00000000-03e8-7"), "{restarted}");
    }

    #[test]
    fn generator_counter_overflow_advances_the_timestamp() {
        let g = UuidV7Generator::new();
        let t = ManualTime::new(5);
        let ones = Bytes(Mutex::new(vec![0xff; 64]));
        let first = g.generate(&ones, &t);
        // Counter started at the 42-bit maximum: the next one overflows.
        let second = g.generate(&ones, &t);
        assert!(first.starts_with("00000000-0005-7fff-bfff-"), "{first}");
        assert!(second.starts_with("00000000-0006-7"), "{second}");
        assert!(second > first);
    }

    #[test]
    fn default_functions() {
        let rng = SeededRandom::new(1);
        let t = ManualTime::new(1);
        let id = |f: &str, a: Value| default_id(f, &a, &rng, &t);
        assert_eq!(id("nanoid", Value::Null).unwrap().unwrap().len(), 21);
        assert_eq!(id("uuid", Value::Null).unwrap().unwrap().len(), 21);
        assert_eq!(id("nanoid", json!([10])).unwrap().unwrap().len(), 10);
        assert_eq!(id("uuid", json!([3.9])).unwrap().unwrap().len(), 3);
        assert_eq!(id("nanoid", json!([0])).unwrap().unwrap(), "");
        assert_eq!(id("nanoid", json!(["10"])).unwrap().unwrap().len(), 21);
        assert_eq!(id("nanoid", json!([])).unwrap().unwrap().len(), 21);
        assert_eq!(id("nanoid", json!("12")).unwrap().unwrap().len(), 21);
        assert_eq!(id("nanoid", json!({"0": 4})).unwrap().unwrap().len(), 4);
        assert_eq!(
            id("nanoid", json!([4_294_967_301.0]))
                .unwrap()
                .unwrap()
                .len(),
            5
        );
        assert!(id("nanoid", json!([-1])).unwrap().is_err());
        assert!(id("nanoid", json!([1e9])).unwrap().is_err());
        let v4 = id("uuidv4", Value::Null).unwrap().unwrap();
        assert!(is_uuid_shape(&v4) && &v4[14..15] == "4");
        let v7 = id("uuidv7", Value::Null).unwrap().unwrap();
        assert!(is_uuid_shape(&v7) && v7.starts_with("00000000-0001-7"));
        assert!(id("now", Value::Null).is_none());
        assert!(id("Set.empty", Value::Null).is_none());
        assert!(id("nope", Value::Null).is_none());
    }

    #[test]
    fn to_int32() {
        assert_eq!(js_to_int32(3.9), 3);
        assert_eq!(js_to_int32(-3.9), -3);
        assert_eq!(js_to_int32(f64::NAN), 0);
        assert_eq!(js_to_int32(f64::INFINITY), 0);
        assert_eq!(js_to_int32(2_147_483_648.0), -2_147_483_648);
        assert_eq!(js_to_int32(4_294_967_301.0), 5);
    }
}
