//! Just enough DER to read a public key: an X.509 `SubjectPublicKeyInfo`
//! (what `-----BEGIN PUBLIC KEY-----` holds) or a PKCS#1 `RSAPublicKey`
//! (`-----BEGIN RSA PUBLIC KEY-----`).
//!
//! The point is to learn the key's family *and curve* at start-up, so the
//! allowed algorithms follow the key (P-256 → ES256 only, P-384 → ES384
//! only) and unsupported keys are refused before any token arrives.

use crate::error::KeyErrorKind;

/// A parsed public key, not yet bound to a crypto backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKeyMaterial {
    /// RSA modulus and exponent, big-endian, without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// An EC point (SEC1 encoding) on a supported curve.
    Ec {
        /// The curve.
        curve: Curve,
        /// The point, uncompressed (`04 || x || y`) or compressed.
        point: Vec<u8>,
    },
    /// A raw 32-byte Ed25519 public key.
    Ed25519(Vec<u8>),
}

/// The EC curves ES256 and ES384 use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    /// NIST P-256 (ES256).
    P256,
    /// NIST P-384 (ES384).
    P384,
}

impl Curve {
    /// The byte length of one coordinate.
    pub(crate) fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }
}

const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_SECP256K1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71];

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

/// Reads consecutive DER TLVs from a buffer.
struct Reader<'a> {
    rest: &'a [u8],
}

type DerResult<T> = Result<T, KeyErrorKind>;

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element's tag and contents.
    fn any(&mut self) -> DerResult<(u8, &'a [u8])> {
        let truncated = KeyErrorKind::InvalidDer("truncated element");
        let (&tag, rest) = self.rest.split_first().ok_or(truncated.clone())?;
        if tag & 0x1f == 0x1f {
            return Err(KeyErrorKind::InvalidDer("multi-byte tags are not expected"));
        }
        let (&first, mut rest) = rest.split_first().ok_or(truncated.clone())?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return Err(KeyErrorKind::InvalidDer("bad length"));
            }
            let (len_bytes, after) = rest.split_at(count);
            rest = after;
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        if rest.len() < len {
            return Err(truncated);
        }
        let (contents, after) = rest.split_at(len);
        self.rest = after;
        Ok((tag, contents))
    }

    /// The next element, which must have tag `tag`.
    fn expect(&mut self, tag: u8) -> DerResult<&'a [u8]> {
        match self.any()? {
            (found, contents) if found == tag => Ok(contents),
            _ => Err(KeyErrorKind::InvalidDer("unexpected element")),
        }
    }

    fn finish(&self) -> DerResult<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(KeyErrorKind::InvalidDer("trailing data"))
        }
    }
}

/// The contents of an unsigned big-endian INTEGER without its leading zeros.
fn unsigned(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

/// Parses a PKCS#1 `RSAPublicKey ::= SEQUENCE { n INTEGER, e INTEGER }`.
pub(crate) fn parse_pkcs1_rsa(der: &[u8]) -> DerResult<PublicKeyMaterial> {
    let mut outer = Reader::new(der);
    let body = outer.expect(TAG_SEQUENCE)?;
    outer.finish()?;
    let mut fields = Reader::new(body);
    let n = unsigned(fields.expect(TAG_INTEGER)?);
    let e = unsigned(fields.expect(TAG_INTEGER)?);
    fields.finish()?;
    if n.is_empty() || e.is_empty() {
        return Err(KeyErrorKind::InvalidDer("zero RSA modulus or exponent"));
    }
    Ok(PublicKeyMaterial::Rsa { n, e })
}

/// Parses a `SubjectPublicKeyInfo`.
pub(crate) fn parse_spki(der: &[u8]) -> DerResult<PublicKeyMaterial> {
    let mut outer = Reader::new(der);
    let spki = outer.expect(TAG_SEQUENCE)?;
    outer.finish()?;
    let mut spki = Reader::new(spki);
    let algorithm = spki.expect(TAG_SEQUENCE)?;
    let bits = spki.expect(TAG_BIT_STRING)?;
    spki.finish()?;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(KeyErrorKind::InvalidDer("bad public key bit string")),
    };
    let mut algorithm = Reader::new(algorithm);
    let oid = algorithm.expect(TAG_OID)?;
    let params = if algorithm.is_empty() {
        None
    } else {
        Some(algorithm.any()?)
    };
    algorithm.finish()?;

    match oid {
        OID_RSA_ENCRYPTION => parse_pkcs1_rsa(key),
        OID_EC_PUBLIC_KEY => {
            let curve = match params {
                Some((TAG_OID, OID_P256)) => Curve::P256,
                Some((TAG_OID, OID_P384)) => Curve::P384,
                Some((TAG_OID, OID_P521)) => return Err(unsupported("EC curve P-521 (ES512)")),
                Some((TAG_OID, OID_SECP256K1)) => {
                    return Err(unsupported("EC curve secp256k1 (ES256K)"));
                }
                _ => return Err(unsupported("EC key on an unknown or explicit curve")),
            };
            ec_point(curve, key)
        }
        OID_ED25519 => ed25519(key),
        OID_ED448 => Err(unsupported("Ed448")),
        OID_RSASSA_PSS => Err(unsupported(
            "RSASSA-PSS-restricted RSA key: export it as a plain RSA public key",
        )),
        _ => Err(unsupported("unknown public key algorithm")),
    }
}

fn unsupported(what: &str) -> KeyErrorKind {
    KeyErrorKind::UnsupportedKey(what.to_owned())
}

/// Checks the shape of a SEC1 point for `curve`.
pub(crate) fn ec_point(curve: Curve, point: &[u8]) -> DerResult<PublicKeyMaterial> {
    let coord = curve.coordinate_len();
    let ok = match point.first() {
        Some(0x04) => point.len() == 1 + 2 * coord,
        Some(0x02 | 0x03) => point.len() == 1 + coord,
        _ => false,
    };
    if !ok {
        return Err(KeyErrorKind::InvalidDer("bad EC point"));
    }
    Ok(PublicKeyMaterial::Ec {
        curve,
        point: point.to_vec(),
    })
}

/// Checks the length of a raw Ed25519 key.
pub(crate) fn ed25519(key: &[u8]) -> DerResult<PublicKeyMaterial> {
    if key.len() != 32 {
        return Err(KeyErrorKind::InvalidDer("an Ed25519 key has 32 bytes"));
    }
    Ok(PublicKeyMaterial::Ed25519(key.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wraps `contents` in a TLV.
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            out.extend_from_slice(&[0x82, (contents.len() >> 8) as u8, contents.len() as u8]);
        }
        out.extend_from_slice(contents);
        out
    }

    fn spki(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
        let mut bits = vec![0];
        bits.extend_from_slice(key);
        let mut body = tlv(TAG_SEQUENCE, algorithm);
        body.extend(tlv(TAG_BIT_STRING, &bits));
        tlv(TAG_SEQUENCE, &body)
    }

    #[test]
    fn reads_an_ed25519_spki() {
        let der = spki(&tlv(TAG_OID, OID_ED25519), &[7; 32]);
        assert_eq!(
            parse_spki(&der).unwrap(),
            PublicKeyMaterial::Ed25519(vec![7; 32])
        );
    }

    #[test]
    fn reads_an_ec_spki_and_its_curve() {
        let mut alg = tlv(TAG_OID, OID_EC_PUBLIC_KEY);
        alg.extend(tlv(TAG_OID, OID_P384));
        let mut point = vec![4];
        point.extend_from_slice(&[1; 96]);
        match parse_spki(&spki(&alg, &point)).unwrap() {
            PublicKeyMaterial::Ec { curve, .. } => assert_eq!(curve, Curve::P384),
            other => panic!("{other:?}"),
        }
        // A P-256-sized point under a P-384 OID is refused.
        let mut short = vec![4];
        short.extend_from_slice(&[1; 64]);
        assert!(parse_spki(&spki(&alg, &short)).is_err());
    }

    #[test]
    fn reads_rsa_and_strips_integer_padding() {
        let mut fields = tlv(TAG_INTEGER, &[0x00, 0xc1, 0x02]);
        fields.extend(tlv(TAG_INTEGER, &[0x01, 0x00, 0x01]));
        let pkcs1 = tlv(TAG_SEQUENCE, &fields);
        let mut alg = tlv(TAG_OID, OID_RSA_ENCRYPTION);
        alg.extend(tlv(0x05, &[]));
        assert_eq!(
            parse_spki(&spki(&alg, &pkcs1)).unwrap(),
            PublicKeyMaterial::Rsa {
                n: vec![0xc1, 0x02],
                e: vec![0x01, 0x00, 0x01]
            }
        );
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        for bytes in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x02, 0x30],
            &[0x1f, 0x00],
            &[0x30, 0x00, 0x00],
        ] {
            assert!(parse_spki(bytes).is_err(), "{bytes:?}");
            assert!(parse_pkcs1_rsa(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn names_unsupported_keys() {
        let mut alg = tlv(TAG_OID, OID_EC_PUBLIC_KEY);
        alg.extend(tlv(TAG_OID, OID_P521));
        let err = parse_spki(&spki(&alg, &[4; 133])).unwrap_err();
        assert_eq!(err.code(), "unsupported_key");
        let err = parse_spki(&spki(&tlv(TAG_OID, OID_ED448), &[0; 57])).unwrap_err();
        assert_eq!(err.code(), "unsupported_key");
    }
}
