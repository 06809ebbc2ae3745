//! Which `alg` a token may use with which key.
//!
//! The key's family decides, never the token header alone: an HMAC secret
//! allows HS256/384/512, an RSA key RS* and PS*, an EC key the one ES
//! algorithm of its curve, an Ed25519 key EdDSA. Everything else is refused,
//! and the refusal is worded as jose words it on the reference server.

use std::fmt;

use jsonwebtoken::Algorithm;

/// The kind of key, which fixes the algorithms a token may use with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyFamily {
    /// A shared secret: HS256, HS384, HS512.
    Hmac,
    /// An RSA public key (2048–8192 bits): RS256/384/512 and PS256/384/512.
    Rsa,
    /// An EC public key on P-256: ES256.
    EcP256,
    /// An EC public key on P-384: ES384.
    EcP384,
    /// An Ed25519 public key: EdDSA.
    Ed25519,
}

impl KeyFamily {
    /// The `alg` values a token may carry for a key of this family.
    pub fn allowed_algorithms(self) -> &'static [&'static str] {
        match self {
            Self::Hmac => &["HS256", "HS384", "HS512"],
            Self::Rsa => &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
            Self::EcP256 => &["ES256"],
            Self::EcP384 => &["ES384"],
            Self::Ed25519 => &["EdDSA"],
        }
    }

    /// Whether this is an asymmetric (public-key) family.
    pub fn is_asymmetric(self) -> bool {
        self != Self::Hmac
    }
}

impl fmt::Display for KeyFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hmac => "HMAC",
            Self::Rsa => "RSA",
            Self::EcP256 => "EC P-256",
            Self::EcP384 => "EC P-384",
            Self::Ed25519 => "Ed25519",
        })
    }
}

/// The JWS algorithms jose knows, for telling "another family's algorithm"
/// (a key mismatch) from "no algorithm at all".
fn is_known_jws_algorithm(alg: &str) -> bool {
    matches!(
        alg,
        "HS256"
            | "HS384"
            | "HS512"
            | "RS256"
            | "RS384"
            | "RS512"
            | "PS256"
            | "PS384"
            | "PS512"
            | "ES256"
            | "ES384"
            | "ES512"
            | "ES256K"
            | "EdDSA"
    )
}

/// The crate algorithm for an allowed `alg`.
fn to_algorithm(alg: &str) -> Option<Algorithm> {
    Some(match alg {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Why `alg` cannot be used with a key of `family`, in jose's words.
#[derive(Debug)]
pub(crate) struct AlgorithmRefusal {
    /// Whether `alg` is a real JWS algorithm of another family.
    pub(crate) mismatch: bool,
    /// jose's message.
    pub(crate) detail: String,
}

/// Decides whether a token's `alg` may be used with a key of `family`.
pub(crate) fn check(family: KeyFamily, alg: &str) -> Result<Algorithm, AlgorithmRefusal> {
    if family.allowed_algorithms().contains(&alg)
        && let Some(algorithm) = to_algorithm(alg)
    {
        return Ok(algorithm);
    }
    let mismatch = is_known_jws_algorithm(alg);
    let unsupported =
        || format!("alg {alg} is not supported either by JOSE or your javascript runtime");
    let detail = if family == KeyFamily::Hmac {
        if alg.starts_with("HS") {
            unsupported()
        } else {
            format!(
                "Key for the {alg} algorithm must be one of type KeyObject or CryptoKey. \
                 Received an instance of Uint8Array"
            )
        }
    } else if alg.starts_with("HS") {
        "KeyObject or CryptoKey instances for symmetric algorithms must be of type \"secret\""
            .to_owned()
    } else {
        let kind = "Invalid key for this operation, its asymmetricKeyType must be";
        match alg {
            "RS256" | "RS384" | "RS512" => format!("{kind} rsa"),
            "PS256" | "PS384" | "PS512" => format!("{kind} rsa or rsa-pss"),
            "EdDSA" => format!("{kind} ed25519 or ed448"),
            "ES256" | "ES384" | "ES512" | "ES256K" => match family {
                KeyFamily::EcP256 | KeyFamily::EcP384 => {
                    let actual = if family == KeyFamily::EcP256 {
                        "P-256"
                    } else {
                        "P-384"
                    };
                    let expected = match alg {
                        "ES256" => "P-256",
                        "ES384" => "P-384",
                        "ES512" => "P-521",
                        _ => "secp256k1",
                    };
                    format!(
                        "Invalid key curve for the algorithm, its curve must be {expected}, got {actual}"
                    )
                }
                _ => format!("{kind} ec"),
            },
            _ => unsupported(),
        }
    };
    Err(AlgorithmRefusal { mismatch, detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_follow_the_key() {
        assert!(check(KeyFamily::Hmac, "HS512").is_ok());
        assert!(check(KeyFamily::EcP384, "ES384").is_ok());
        let refusal = check(KeyFamily::Rsa, "HS256").unwrap_err();
        assert!(refusal.mismatch);
        assert!(
            refusal
                .detail
                .contains("symmetric algorithms must be of type \"secret\"")
        );
        let refusal = check(KeyFamily::Hmac, "none").unwrap_err();
        assert!(!refusal.mismatch);
        let refusal = check(KeyFamily::EcP256, "ES384").unwrap_err();
        assert!(refusal.mismatch);
        assert!(refusal.detail.ends_with("must be P-384, got P-256"));
        assert!(!check(KeyFamily::Ed25519, "HS1").unwrap_err().mismatch);
        assert!(!check(KeyFamily::Rsa, "rs256").unwrap_err().mismatch);
    }
}
