//! PEM armour as people paste it into environment variables.
//!
//! Triplit hands a secret starting with `-----BEGIN PUBLIC KEY-----` to
//! Node's OpenSSL, which accepts the usual multi-line form, the whole key on
//! one line (the Clerk guide says to remove the newlines) and indented lines
//! (upstream's own test). Ferry reads all of these by stripping the armour
//! and every whitespace character from the body.
//!
//! **Literal `\n` escapes.** A key copied out of JSON or a `.env` file often
//! carries the two characters `\` `n` instead of newlines. Upstream fails on
//! it (an ASN.1 error on every request). Ferry *accepts* it: a backslash can
//! never occur in base64, so `\n`, `\r` and `\t` escapes are unambiguous and
//! are removed like the whitespace they stand for. Any other backslash is an
//! error.
//!
//! Besides SPKI (`PUBLIC KEY`), Ferry also reads PKCS#1 (`RSA PUBLIC KEY`),
//! which upstream silently treats as an HMAC secret, making every RS256 token
//! fail and letting anyone who has the public key mint HS256 tokens. Other
//! labels (private keys, certificates) are refused.

use crate::b64;
use crate::error::{KeyError, KeyErrorKind};

const ARMOUR: &str = "-----";
const SPKI_LABEL: &str = "PUBLIC KEY";
const PKCS1_LABEL: &str = "RSA PUBLIC KEY";

/// What a PEM's label says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PemKind {
    /// `-----BEGIN PUBLIC KEY-----`: an X.509 `SubjectPublicKeyInfo`.
    Spki,
    /// `-----BEGIN RSA PUBLIC KEY-----`: a PKCS#1 `RSAPublicKey`.
    Pkcs1Rsa,
}

/// Whether `secret` (after leading whitespace) starts with PEM armour.
pub(crate) fn looks_like_pem(secret: &str) -> bool {
    secret.trim_start().starts_with("-----BEGIN ")
}

/// Reads one PEM block: its kind and DER body.
pub(crate) fn parse(secret: &str) -> Result<(PemKind, Vec<u8>), KeyErrorKind> {
    let text = secret.trim_start();
    let after_begin = text
        .strip_prefix("-----BEGIN ")
        .ok_or(KeyErrorKind::InvalidPem("missing -----BEGIN line"))?;
    let label_end = after_begin
        .find(ARMOUR)
        .ok_or(KeyErrorKind::InvalidPem("unterminated -----BEGIN line"))?;
    let label = &after_begin[..label_end];
    let kind = match label {
        SPKI_LABEL => PemKind::Spki,
        PKCS1_LABEL => PemKind::Pkcs1Rsa,
        other => return Err(KeyErrorKind::UnsupportedPem(other.to_owned())),
    };
    let rest = &after_begin[label_end + ARMOUR.len()..];
    let footer = format!("-----END {label}-----");
    let footer_at = rest
        .find(&footer)
        .ok_or(KeyErrorKind::InvalidPem("missing -----END line"))?;
    let body = squeeze(&rest[..footer_at])?;
    let trailer = squeeze(&rest[footer_at + footer.len()..])?;
    if !trailer.is_empty() {
        return Err(KeyErrorKind::InvalidPem("text after the -----END line"));
    }
    if body.is_empty() {
        return Err(KeyErrorKind::InvalidPem("empty body"));
    }
    let der = b64::decode_standard(&body).ok_or(KeyErrorKind::InvalidPem("body is not base64"))?;
    Ok((kind, der))
}

/// Removes whitespace and literal `\n`, `\r`, `\t` escapes.
fn squeeze(text: &str) -> Result<String, KeyErrorKind> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'r' | 't') => {}
                _ => return Err(KeyErrorKind::InvalidPem("stray backslash")),
            }
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    Ok(out)
}

/// Rewrites a PEM public key in the canonical form: armour on its own lines,
/// the body re-wrapped at 64 columns, one final newline.
///
/// Accepts every form [`TokenVerifier`](crate::TokenVerifier) accepts
/// (one line, indented, CRLF, literal `\n` escapes).
pub fn normalize_pem(secret: &str) -> Result<String, KeyError> {
    let (kind, der) = parse(secret)?;
    let label = match kind {
        PemKind::Spki => SPKI_LABEL,
        PemKind::Pkcs1Rsa => PKCS1_LABEL,
    };
    let body = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

    fn wrapped() -> String {
        format!("-----BEGIN PUBLIC KEY-----\n{BODY}\n-----END PUBLIC KEY-----\n")
    }

    #[test]
    fn accepts_every_layout() {
        let expected = parse(&wrapped()).unwrap();
        let layouts = [
            format!("-----BEGIN PUBLIC KEY-----{BODY}-----END PUBLIC KEY-----"),
            format!("-----BEGIN PUBLIC KEY-----\r\n{BODY}\r\n-----END PUBLIC KEY-----\r\n"),
            format!(
                "  -----BEGIN PUBLIC KEY-----\n    {}\n    {}\n    -----END PUBLIC KEY-----",
                &BODY[..30],
                &BODY[30..]
            ),
            format!("-----BEGIN PUBLIC KEY-----\\n{BODY}\\n-----END PUBLIC KEY-----\\n"),
        ];
        for layout in layouts {
            assert_eq!(parse(&layout).unwrap(), expected, "{layout:?}");
        }
    }

    #[test]
    fn normalizes_to_64_columns() {
        let one_line = "-----BEGIN PUBLIC KEY-----MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr1BnYi9hrPI/Ot+jGw52-----END PUBLIC KEY-----";
        let normal = normalize_pem(one_line).unwrap();
        let lines: Vec<&str> = normal.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END PUBLIC KEY-----"));
        assert!(normal.ends_with('\n'));
        assert_eq!(normalize_pem(&normal).unwrap(), normal);
    }

    #[test]
    fn refuses_broken_armour() {
        let cases = [
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n", "invalid_pem"),
            ("-----BEGIN PUBLIC KEY", "invalid_pem"),
            (
                "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----",
                "invalid_pem",
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAA\\xAA\n-----END PUBLIC KEY-----",
                "invalid_pem",
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nA*AA\n-----END PUBLIC KEY-----",
                "invalid_pem",
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----junk",
                "invalid_pem",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "unsupported_pem",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                "unsupported_pem",
            ),
        ];
        for (text, code) in cases {
            assert_eq!(parse(text).unwrap_err().code(), code, "{text:?}");
        }
    }

    #[test]
    fn reads_the_pkcs1_label() {
        let text = "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----";
        assert_eq!(parse(text).unwrap().0, PemKind::Pkcs1Rsa);
    }
}
