//! Turning a configured secret into a verification key.
//!
//! Triplit decides by the secret's shape (`getJwtKey` in
//! `server-core/src/token.ts`):
//!
//! 1. starts with `-----BEGIN PUBLIC KEY-----` → an SPKI PEM;
//! 2. parses as JSON → one JWK;
//! 3. otherwise → the UTF-8 bytes are an HMAC secret.
//!
//! Ferry follows that order, parses the key once at start-up, and refuses
//! shapes that upstream cannot use either or that would be dangerous as an
//! HMAC secret (see [`VerificationKey::parse`]).

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use crate::algorithm::{self, AlgorithmRefusal, KeyFamily};
use crate::b64;
use crate::der::{self, Curve, PublicKeyMaterial};
use crate::error::{KeyError, KeyErrorKind};
use crate::pem::{self, PemKind};

/// A key that verifies token signatures, with the family that decides which
/// algorithms are allowed.
#[derive(Clone)]
pub struct VerificationKey {
    family: KeyFamily,
    /// An HMAC key that came from an `oct` JWK: Node imports it as a secret
    /// `KeyObject` rather than raw bytes, which only changes jose's wording
    /// when refusing an asymmetric `alg`.
    oct_jwk: bool,
    key: DecodingKey,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material (an HMAC secret is a password).
        f.debug_struct("VerificationKey")
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// Reads a secret the way Triplit's `JWT_SECRET` / `EXTERNAL_JWT_SECRET`
    /// are read.
    ///
    /// - **PEM** (after optional leading whitespace, `-----BEGIN PUBLIC
    ///   KEY-----` or `-----BEGIN RSA PUBLIC KEY-----`): an RSA, EC P-256/P-384
    ///   or Ed25519 public key, in any layout [`normalize_pem`] accepts.
    /// - **JSON object**: one public JWK, `kty` `RSA`, `EC` (P-256, P-384),
    ///   `OKP` (Ed25519) or `oct` (an HMAC key in `k`). Its `alg`, `use` and
    ///   `kid` are ignored, as upstream ignores them.
    /// - **Anything else**: the UTF-8 bytes are an HMAC secret.
    ///
    /// Refused, although upstream would start (and then fail or be unsafe):
    /// JSON that is not an object but is truthy in JavaScript (a non-zero
    /// number, `true`, a non-empty string, an array; upstream throws "JWK must
    /// be an object" on every request), a JWK Set, a private JWK, PEM armour
    /// that does not start the secret, a bare base64 public key, unsupported
    /// curves (P-521, secp256k1, Ed448) and RSA keys outside 2048–8192 bits.
    /// Falsy JSON (`0`, `false`, `null`, `""`) stays an HMAC secret, as
    /// upstream has it.
    ///
    /// [`normalize_pem`]: crate::normalize_pem
    pub fn parse(secret: &str) -> Result<Self, KeyError> {
        if pem::looks_like_pem(secret) {
            return Ok(Self::from_pem(secret)?);
        }
        if secret.contains("-----BEGIN ") {
            return Err(KeyErrorKind::MisplacedPem.into());
        }
        if let Ok(json) = serde_json::from_str::<Value>(secret) {
            match json {
                Value::Object(jwk) => return Ok(Self::from_jwk(&jwk)?),
                Value::Null | Value::Bool(false) => {}
                Value::Number(n) if n.as_f64() == Some(0.0) => {}
                Value::String(s) if s.is_empty() => {}
                Value::Bool(true) => return Err(KeyErrorKind::JsonNotJwk("true").into()),
                Value::Number(_) => return Err(KeyErrorKind::JsonNotJwk("a number").into()),
                Value::String(_) => return Err(KeyErrorKind::JsonNotJwk("a string").into()),
                Value::Array(_) => return Err(KeyErrorKind::JsonNotJwk("an array").into()),
            }
        }
        if is_bare_public_key(secret) {
            return Err(KeyErrorKind::BarePublicKey.into());
        }
        Ok(Self::hmac(secret.as_bytes()))
    }

    /// An HMAC key from raw secret bytes.
    pub fn hmac(secret: &[u8]) -> Self {
        Self {
            family: KeyFamily::Hmac,
            oct_jwk: false,
            key: DecodingKey::from_secret(secret),
        }
    }

    /// The key's family.
    pub fn family(&self) -> KeyFamily {
        self.family
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    /// Decides whether a token's `alg` may be used with this key.
    pub(crate) fn check_algorithm(&self, alg: &str) -> Result<Algorithm, AlgorithmRefusal> {
        let refusal = match algorithm::check(self.family, alg) {
            Ok(algorithm) => return Ok(algorithm),
            Err(refusal) => refusal,
        };
        if self.oct_jwk && !alg.starts_with("HS") {
            return Err(AlgorithmRefusal {
                detail: "KeyObject or CryptoKey instances for asymmetric algorithms must not be \
                         of type \"secret\""
                    .to_owned(),
                ..refusal
            });
        }
        Err(refusal)
    }

    fn from_pem(secret: &str) -> Result<Self, KeyErrorKind> {
        let (kind, der) = pem::parse(secret)?;
        let material = match kind {
            PemKind::Spki => der::parse_spki(&der)?,
            PemKind::Pkcs1Rsa => der::parse_pkcs1_rsa(&der)?,
        };
        Self::from_material(material)
    }

    fn from_material(material: PublicKeyMaterial) -> Result<Self, KeyErrorKind> {
        Ok(match material {
            PublicKeyMaterial::Rsa { n, e } => {
                let bits = bit_len(&n);
                if !(2048..=8192).contains(&bits) {
                    return Err(KeyErrorKind::RsaKeySize(bits));
                }
                Self {
                    family: KeyFamily::Rsa,
                    oct_jwk: false,
                    key: DecodingKey::from_rsa_raw_components(&n, &e),
                }
            }
            PublicKeyMaterial::Ec { curve, point } => Self {
                family: match curve {
                    Curve::P256 => KeyFamily::EcP256,
                    Curve::P384 => KeyFamily::EcP384,
                },
                oct_jwk: false,
                key: DecodingKey::from_ec_der(&point),
            },
            PublicKeyMaterial::Ed25519(raw) => Self {
                family: KeyFamily::Ed25519,
                oct_jwk: false,
                key: DecodingKey::from_ed_der(&raw),
            },
        })
    }

    pub(crate) fn from_jwk(jwk: &Map<String, Value>) -> Result<Self, KeyErrorKind> {
        if jwk.contains_key("keys") && !jwk.contains_key("kty") {
            return Err(KeyErrorKind::JwkSet);
        }
        let kty = jwk
            .get("kty")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid_jwk("missing \"kty\""))?;
        let is_private = ["d", "p", "q", "dp", "dq", "qi"]
            .iter()
            .any(|member| jwk.contains_key(*member));
        if is_private && kty != "oct" {
            return Err(KeyErrorKind::PrivateJwk);
        }
        let material = match kty {
            "oct" => {
                let k = member(jwk, "k")?;
                if k.is_empty() {
                    return Err(invalid_jwk("empty \"k\""));
                }
                return Ok(Self {
                    oct_jwk: true,
                    ..Self::hmac(&k)
                });
            }
            "RSA" => {
                if jwk.contains_key("oth") {
                    return Err(KeyErrorKind::UnsupportedKey(
                        "multi-prime RSA JWK (\"oth\")".into(),
                    ));
                }
                let strip = |bytes: Vec<u8>| {
                    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
                    bytes[start..].to_vec()
                };
                let n = strip(member(jwk, "n")?);
                let e = strip(member(jwk, "e")?);
                if n.is_empty() || e.is_empty() {
                    return Err(invalid_jwk("zero \"n\" or \"e\""));
                }
                PublicKeyMaterial::Rsa { n, e }
            }
            "EC" => {
                let curve = match jwk.get("crv").and_then(Value::as_str) {
                    Some("P-256") => Curve::P256,
                    Some("P-384") => Curve::P384,
                    Some(other @ ("P-521" | "secp256k1")) => {
                        return Err(KeyErrorKind::UnsupportedKey(format!("EC curve {other}")));
                    }
                    _ => return Err(invalid_jwk("missing or unknown \"crv\"")),
                };
                let (x, y) = (member(jwk, "x")?, member(jwk, "y")?);
                let len = curve.coordinate_len();
                if x.len() != len || y.len() != len {
                    return Err(invalid_jwk(
                        "\"x\"/\"y\" have the wrong length for the curve",
                    ));
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                der::ec_point(curve, &point)?
            }
            "OKP" => match jwk.get("crv").and_then(Value::as_str) {
                Some("Ed25519") => der::ed25519(&member(jwk, "x")?)
                    .map_err(|_| invalid_jwk("an Ed25519 \"x\" has 32 bytes"))?,
                Some(other) => {
                    return Err(KeyErrorKind::UnsupportedKey(format!("OKP curve {other}")));
                }
                None => return Err(invalid_jwk("missing \"crv\"")),
            },
            other => {
                return Err(KeyErrorKind::UnsupportedKey(format!("JWK kty {other:?}")));
            }
        };
        Self::from_material(material)
    }
}

fn invalid_jwk(what: &str) -> KeyErrorKind {
    KeyErrorKind::InvalidJwk(what.to_owned())
}

/// A base64url member of a JWK, decoded the way Node decodes it.
fn member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, KeyErrorKind> {
    match jwk.get(name) {
        Some(Value::String(s)) => Ok(b64::decode_lenient(s)),
        _ => Err(invalid_jwk(&format!("missing or non-string \"{name}\""))),
    }
}

/// The number of significant bits in a big-endian unsigned integer.
fn bit_len(bytes: &[u8]) -> usize {
    match bytes.iter().position(|&b| b != 0) {
        Some(i) => (bytes.len() - i) * 8 - bytes[i].leading_zeros() as usize,
        None => 0,
    }
}

/// Whether `secret` is a public key in base64 DER without PEM armour.
fn is_bare_public_key(secret: &str) -> bool {
    let compact: String = secret.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() < 40 {
        return false;
    }
    match b64::decode_standard(&compact) {
        Some(der) => der::parse_spki(&der).is_ok() || der::parse_pkcs1_rsa(&der).is_ok(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_strings_are_hmac() {
        for secret in [
            "jwt-key-for-development-only",
            "0",
            "null",
            "false",
            "\"\"",
            "{not json",
        ] {
            assert_eq!(
                VerificationKey::parse(secret).unwrap().family(),
                KeyFamily::Hmac
            );
        }
    }

    #[test]
    fn truthy_non_object_json_is_refused() {
        for secret in ["12345", "true", "\"text\"", "[1]", "[{\"kty\":\"RSA\"}]"] {
            let err = VerificationKey::parse(secret).unwrap_err();
            assert_eq!(err.code(), "json_not_jwk", "{secret}");
        }
    }

    #[test]
    fn jwk_shapes() {
        let oct = r#"{"kty":"oct","k":"c2VjcmV0"}"#;
        assert_eq!(
            VerificationKey::parse(oct).unwrap().family(),
            KeyFamily::Hmac
        );
        let cases = [
            (r#"{"keys":[]}"#, "jwk_set"),
            (
                r#"{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}"#,
                "private_jwk",
            ),
            (r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#, "rsa_key_size"),
            (r#"{"kty":"RSA","e":"AQAB"}"#, "invalid_jwk"),
            (
                r#"{"kty":"EC","crv":"P-256","x":"AQAB","y":"AQAB"}"#,
                "invalid_jwk",
            ),
            (
                r#"{"kty":"EC","crv":"P-521","x":"AQAB","y":"AQAB"}"#,
                "unsupported_key",
            ),
            (
                r#"{"kty":"OKP","crv":"Ed448","x":"AQAB"}"#,
                "unsupported_key",
            ),
            (r#"{"kty":"OKP","crv":"Ed25519","x":"AQAB"}"#, "invalid_jwk"),
            (r#"{"kty":"oct","k":""}"#, "invalid_jwk"),
            (r#"{"kty":"DSA"}"#, "unsupported_key"),
            (r#"{}"#, "invalid_jwk"),
        ];
        for (secret, code) in cases {
            assert_eq!(
                VerificationKey::parse(secret).unwrap_err().code(),
                code,
                "{secret}"
            );
        }
    }

    #[test]
    fn pem_lookalikes_never_become_hmac_secrets() {
        let quoted = "'-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----'";
        assert_eq!(
            VerificationKey::parse(quoted).unwrap_err().code(),
            "misplaced_pem"
        );
        let bare = "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
        assert_eq!(
            VerificationKey::parse(bare).unwrap_err().code(),
            "bare_public_key"
        );
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{bare}\n-----END PUBLIC KEY-----");
        assert_eq!(
            VerificationKey::parse(&pem).unwrap().family(),
            KeyFamily::Ed25519
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = VerificationKey::parse("super-secret").unwrap();
        assert!(!format!("{key:?}").contains("super"));
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_len(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_len(&[0x01]), 1);
        assert_eq!(bit_len(&[0, 0]), 0);
    }
}
