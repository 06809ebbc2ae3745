//! JWK Sets (`{"keys": [...]}`): parsing, and picking the key for a token.
//!
//! A set comes from `EXTERNAL_JWT_SECRET`, from an issuer's static `keys`,
//! or from a JWKS URL. Each member becomes a [`VerificationKey`] whose
//! family fixes the algorithms it allows; a member's `alg`, when present,
//! narrows that to exactly one (unlike a single JWK secret, where Triplit
//! ignores `alg`). Members that cannot verify signatures are skipped rather
//! than failing the whole set: `use` other than `sig`, an `alg` the key
//! cannot use, an unsupported `kty` or curve, private members. Symmetric
//! (`oct`) members are accepted only in configured sets, never from a URL:
//! a published HMAC key would let anyone mint tokens.
//!
//! Selection ([`KeySet::select`]) is by `kid` within this set only; a token
//! without `kid` is accepted only when exactly one member fits its `alg`.

use serde_json::{Map, Value};

use crate::algorithm;
use crate::error::{KeyError, KeyErrorKind};
use crate::key::VerificationKey;

/// At most this many members of a set are used.
pub const MAX_KEYS: usize = 100;

/// One usable member of a JWK Set.
#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    /// The member's `kid`.
    pub(crate) kid: Option<String>,
    /// The member's `alg`, which then is the only one it allows.
    pub(crate) alg: Option<String>,
    /// The key.
    pub(crate) key: VerificationKey,
}

/// The usable keys of a JWK Set.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
    skipped: usize,
}

/// Where a set comes from, which decides whether HMAC members are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOrigin {
    /// Configured by the operator (`EXTERNAL_JWT_SECRET`, `keys`).
    Configured,
    /// Fetched from a URL.
    Published,
}

impl KeySet {
    /// Parses a JWK Set given as configuration text (`EXTERNAL_JWT_SECRET`,
    /// an issuer's `keys`). HMAC (`oct`) members are allowed here.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| KeyErrorKind::InvalidJwk(format!("JWK Set is not JSON: {e}")))?;
        Ok(Self::from_value(&value, SetOrigin::Configured)?)
    }

    /// Reads a set from parsed JSON.
    pub(crate) fn from_value(value: &Value, origin: SetOrigin) -> Result<Self, KeyErrorKind> {
        let keys = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| KeyErrorKind::InvalidJwk("a JWK Set needs a \"keys\" array".into()))?;
        let mut set = Self::default();
        for member in keys {
            if set.entries.len() == MAX_KEYS {
                set.skipped += 1;
                continue;
            }
            match member.as_object().and_then(|jwk| entry(jwk, origin)) {
                Some(entry) => set.entries.push(entry),
                None => set.skipped += 1,
            }
        }
        if set.entries.is_empty() {
            return Err(KeyErrorKind::EmptyJwkSet);
        }
        Ok(set)
    }

    /// Whether `text` looks like a JWK Set rather than one JWK: a JSON
    /// object with `keys` and without `kty`.
    pub(crate) fn looks_like_set(text: &str) -> bool {
        matches!(
            serde_json::from_str::<Value>(text),
            Ok(Value::Object(map)) if map.contains_key("keys") && !map.contains_key("kty")
        )
    }

    /// A set of one key without `kid` (a single PEM, JWK or HMAC secret).
    pub(crate) fn single(key: VerificationKey) -> Self {
        Self {
            entries: vec![KeyEntry {
                kid: None,
                alg: None,
                key,
            }],
            skipped: 0,
        }
    }

    /// The number of usable keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set has no usable key (never true for a parsed set).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many members were skipped as unusable.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The `kid`s of the usable keys, in the set's order.
    pub fn kids(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter_map(|e| e.kid.as_deref())
            .collect()
    }

    /// The key for a token with header `kid` and `alg`.
    ///
    /// With a `kid`: the member with that `kid`, preferring one whose `alg`
    /// equals the token's (a member of the wrong algorithm is still returned,
    /// so that the refusal says "key mismatch"). Without a `kid`: the only
    /// member whose family and `alg` fit, if there is exactly one. A token
    /// `kid` that no member has may still use the only fitting member
    /// *without* a `kid` (a single configured key ignores `kid`, as Triplit
    /// does).
    pub(crate) fn select(&self, kid: Option<&str>, alg: &str) -> Option<&KeyEntry> {
        if let Some(kid) = kid {
            let mut with_kid = self
                .entries
                .iter()
                .filter(|e| e.kid.as_deref() == Some(kid));
            if let Some(first) = with_kid.next() {
                if fits(first, alg) {
                    return Some(first);
                }
                return Some(with_kid.find(|e| fits(e, alg)).unwrap_or(first));
            }
        }
        let mut candidates = self
            .entries
            .iter()
            .filter(|e| fits(e, alg) && (kid.is_none() || e.kid.is_none()));
        let only = candidates.next()?;
        candidates.next().is_none().then_some(only)
    }
}

/// Whether `entry` may verify a token with `alg`.
fn fits(entry: &KeyEntry, alg: &str) -> bool {
    entry.key.family().allowed_algorithms().contains(&alg)
        && entry.alg.as_deref().is_none_or(|pinned| pinned == alg)
}

/// A set member as a usable key, or `None` to skip it.
fn entry(jwk: &Map<String, Value>, origin: SetOrigin) -> Option<KeyEntry> {
    if jwk.get("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let kty = jwk.get("kty").and_then(Value::as_str)?;
    if kty == "oct" && origin == SetOrigin::Published {
        return None;
    }
    let key = VerificationKey::from_jwk(jwk).ok()?;
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(alg)) => {
            algorithm::check(key.family(), alg).ok()?;
            Some(alg.clone())
        }
        Some(_) => return None,
    };
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return None,
    };
    Some(KeyEntry { kid, alg, key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyFamily;
    use serde_json::json;

    const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn ec(kid: &str) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": kid})
    }

    #[test]
    fn unusable_members_are_skipped() {
        let set = json!({"keys": [
            ec("a"),
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "enc", "use": "enc"},
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "rs", "alg": "RS256"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "h"},
            "not an object",
        ]});
        let published = KeySet::from_value(&set, SetOrigin::Published).unwrap();
        assert_eq!(published.kids(), ["a"]);
        assert_eq!(published.skipped(), 5);
        let configured = KeySet::from_value(&set, SetOrigin::Configured).unwrap();
        assert_eq!(configured.kids(), ["a", "h"]);
    }

    #[test]
    fn empty_and_malformed_sets_are_errors() {
        assert_eq!(
            KeySet::parse(r#"{"keys": []}"#).unwrap_err().code(),
            "empty_jwk_set"
        );
        assert_eq!(
            KeySet::parse(r#"{"keys": 1}"#).unwrap_err().code(),
            "invalid_jwk"
        );
        assert_eq!(KeySet::parse("nope").unwrap_err().code(), "invalid_jwk");
        assert!(KeySet::looks_like_set(r#"{"keys": []}"#));
        assert!(!KeySet::looks_like_set(r#"{"kty": "oct", "keys": []}"#));
    }

    #[test]
    fn selection_by_kid_and_alg() {
        let set = KeySet::from_value(
            &json!({"keys": [ec("a"), ec("b"), {"kty": "oct", "k": "c2VjcmV0", "kid": "h", "alg": "HS512"}]}),
            SetOrigin::Configured,
        )
        .unwrap();
        assert_eq!(
            set.select(Some("b"), "ES256").unwrap().kid.as_deref(),
            Some("b")
        );
        assert!(set.select(Some("zz"), "ES256").is_none());
        // The wrong algorithm still finds the key (refused later as a mismatch).
        assert_eq!(
            set.select(Some("a"), "RS256").unwrap().key.family(),
            KeyFamily::EcP256
        );
        // Without kid: ambiguous for ES256, unique for HS512, none for HS256.
        assert!(set.select(None, "ES256").is_none());
        assert_eq!(set.select(None, "HS512").unwrap().kid.as_deref(), Some("h"));
        assert!(set.select(None, "HS256").is_none());
        // An unknown kid does not fall back to members that have a kid.
        assert!(set.select(Some("zz"), "HS512").is_none());
        let single = KeySet::single(VerificationKey::hmac(b"k"));
        assert!(single.select(Some("any"), "HS256").is_some());
        assert!(single.select(None, "RS256").is_none());
    }

    #[test]
    fn sets_are_capped() {
        let keys: Vec<Value> = (0..MAX_KEYS + 5).map(|i| ec(&format!("k{i}"))).collect();
        let set = KeySet::from_value(&json!({ "keys": keys }), SetOrigin::Published).unwrap();
        assert_eq!(set.len(), MAX_KEYS);
        assert_eq!(set.skipped(), 5);
    }
}
