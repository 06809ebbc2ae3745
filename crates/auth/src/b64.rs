//! Base64 the way the reference server reads it.
//!
//! jose 4 on Node decodes every JWT segment (and Node decodes every JWK
//! member) with `Buffer.from(s, 'base64')`, which never fails: it accepts
//! both the standard and the URL-safe alphabet, skips any other character,
//! stops at the first `=`, and drops a trailing lone sextet. Reproducing
//! that keeps the split between "undecodable payload" (400) and "bad
//! signature" (401) identical to upstream. Signatures are always checked over
//! the token's original text, so this leniency never lets a modified token
//! through.
//!
//! PEM bodies are stricter (standard alphabet, whitespace removed by the
//! caller, padding optional): a broken key should fail at start-up.

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};

/// Decodes like Node's `Buffer.from(input, 'base64')`.
pub(crate) fn decode_lenient(input: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut sextets = 0;
    for &byte in input.as_bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(value);
        sextets += 1;
        if sextets == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            sextets = 0;
        }
    }
    match sextets {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out
}

/// Canonical base64url without padding (what JWTs use).
pub(crate) fn encode_url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The standard alphabet with optional padding, for PEM bodies and bare
/// base64 keys.
const STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Strict standard-alphabet decoding (no whitespace, padding optional).
pub(crate) fn decode_standard(input: &str) -> Option<Vec<u8>> {
    STANDARD_ANY_PADDING.decode(input).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Pairs of (input, `Buffer.from(input, 'base64').toString('hex')`)
    /// printed by Node 20.
    const NODE_VECTORS: &[(&str, &str)] = &[
        ("", ""),
        ("a", ""),
        ("ab", "69"),
        ("abc", "69b7"),
        ("abcd", "69b71d"),
        ("ab=c", "69"),
        ("ab==cd", "69"),
        ("a$b$c$d", "69b71d"),
        ("ab cd", "69b71d"),
        ("a-_b", "6befdb"),
        ("a+/b", "6befdb"),
        ("abcde", "69b71d"),
        ("YQ", "61"),
        ("YQ=", "61"),
        ("YQ==", "61"),
        ("YQ===x", "61"),
        ("=YQ", ""),
        ("Y Q", "61"),
        ("eyJ4IjoxfQ", "7b2278223a317d"),
        ("eyJ4IjoxfQ==", "7b2278223a317d"),
        ("*eyJ4IjoxfQ", "7b2278223a317d"),
        ("ey.J4", "7b2278"),
        ("\u{e9}YQ", "61"),
        ("YQ\u{0}", "61"),
        ("YWJj=ZGVm", "616263"),
        ("A/_9$C90$$_A", "03fffd0bdd3f"),
        ("/__yAyC/y$", "fffff20320bf"),
        ("y/90C.$$C.", "cbff7408"),
        (".00_.y$0/C", "d34ff2d3f0"),
        ("/$.$9y9AC_", "ffdcbd002f"),
        ("A.$y", "03"),
        ("_0-0.0_A", "ff4fb4d3f0"),
        ("9A/$", "f40f"),
        ("$A.0_$", "034f"),
        ("_\n", ""),
        (".yy.y/9_/9", "cb2cbff7fffd"),
        ("0Cy_C9_$", "d02cbf0bdf"),
        ("AA.$$A$.", "0000"),
    ];

    #[test]
    fn matches_node_buffer_decoding() {
        for (input, expected) in NODE_VECTORS {
            assert_eq!(hex(&decode_lenient(input)), *expected, "input {input:?}");
        }
    }

    #[test]
    fn url_encoding_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_lenient(&encode_url(&bytes)), bytes);
        assert!(!encode_url(&bytes).contains('='));
    }

    #[test]
    fn standard_decoding_is_strict_about_characters() {
        assert_eq!(decode_standard("YQ==").unwrap(), b"a");
        assert_eq!(decode_standard("YQ").unwrap(), b"a");
        assert!(decode_standard("Y Q").is_none());
        assert!(decode_standard("YQ\\n").is_none());
    }
}
