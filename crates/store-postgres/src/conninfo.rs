//! The connection string: libpq's TLS options on top of tokio-postgres.
//!
//! tokio-postgres parses both forms libpq accepts (`postgres://…?k=v&…`
//! and `k=v k='v w' …`) but knows only `sslmode=disable|prefer|require`
//! and refuses unknown options. [`parse`] takes `sslmode` (all five libpq
//! values) and `sslrootcert` out of the string first, hands the rest to
//! tokio-postgres, and sets its TLS mode to what the connector needs:
//! `verify-ca` and `verify-full` always encrypt, so they become `require`
//! there and the certificate rules live in `tls.rs`.

use crate::error::PgError;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// TLS when the server offers it, else plain (the default).
    Prefer,
    /// TLS always; the certificate is not checked unless `sslrootcert` is
    /// given (then as [`SslMode::VerifyCa`]).
    Require,
    /// TLS with a certificate chain up to a trusted root.
    VerifyCa,
    /// [`SslMode::VerifyCa`] and the host name matches the certificate.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, PgError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(PgError::Url(format!(
                    "sslmode {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }

    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A parsed connection string.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    /// Everything tokio-postgres understands, TLS mode adjusted.
    pub(crate) pg: tokio_postgres::Config,
    /// The libpq mode asked for.
    pub(crate) ssl_mode: SslMode,
    /// `sslrootcert`, if given.
    pub(crate) root_cert: Option<String>,
}

/// Parses `url` in either form.
pub(crate) fn parse(url: &str) -> Result<ConnInfo, PgError> {
    let trimmed = url.trim();
    let (rest, options) =
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            take_from_url(trimmed)?
        } else {
            take_from_keywords(trimmed)?
        };
    let mut ssl_mode = SslMode::Prefer;
    let mut root_cert = None;
    for (key, value) in options {
        match key.as_str() {
            "sslmode" => ssl_mode = SslMode::parse(&value)?,
            _ => root_cert = Some(value).filter(|v| !v.is_empty()),
        }
    }
    let mut pg: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| PgError::Url(crate::error::describe(&e)))?;
    pg.ssl_mode(match ssl_mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    });
    Ok(ConnInfo {
        pg,
        ssl_mode,
        root_cert,
    })
}

fn is_taken(key: &str) -> bool {
    key == "sslmode" || key == "sslrootcert"
}

/// Removes the TLS options from a URL's query string.
fn take_from_url(url: &str) -> Result<(String, Vec<(String, String)>), PgError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Vec::new()));
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key)?;
        if is_taken(&key) {
            taken.push((key, percent_decode(value)?));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, taken))
}

fn percent_decode(s: &str) -> Result<String, PgError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| PgError::Url(format!("bad percent-encoding in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PgError::Url(format!("{s:?} is not UTF-8")))
}

/// Removes the TLS options from a `key=value` string, keeping the other
/// options' text exactly as written.
fn take_from_keywords(s: &str) -> Result<(String, Vec<(String, String)>), PgError> {
    let bytes = s.as_bytes();
    let mut rest = String::with_capacity(s.len());
    let mut taken = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &s[start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() || bytes[i] != b'=' {
            return Err(PgError::Url(format!("option {key:?} has no value")));
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = Vec::new();
        if i < bytes.len() && bytes[i] == b'\'' {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(PgError::Url(format!("unterminated quote in {key:?}"))),
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < bytes.len() => {
                        value.push(bytes[i + 1]);
                        i += 2;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                value.push(bytes[i]);
                i += 1;
            }
        }
        if is_taken(key) {
            let value = String::from_utf8(value)
                .map_err(|_| PgError::Url(format!("{key} is not UTF-8")))?;
            taken.push((key.to_owned(), value));
        } else {
            if !rest.is_empty() {
                rest.push(' ');
            }
            rest.push_str(&s[start..i]);
        }
    }
    Ok((rest, taken))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_only_the_tls_options() {
        let info = parse(
            "postgres://u@h:5432/db?application_name=x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(info.ssl_mode, SslMode::VerifyFull);
        assert_eq!(info.root_cert.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(info.pg.get_application_name(), Some("x"));
        assert_eq!(info.pg.get_dbname(), Some("db"));
        assert_eq!(
            info.pg.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        let plain = parse("postgresql://u@h/db").unwrap();
        assert_eq!(plain.ssl_mode, SslMode::Prefer);
        assert_eq!(plain.root_cert, None);
    }

    #[test]
    fn keyword_strings_keep_quoted_values() {
        let info = parse(
            "host=h dbname = 'my db' sslmode=verify-ca sslrootcert='/a path/it\\'s.pem' user=u",
        )
        .unwrap();
        assert_eq!(info.ssl_mode, SslMode::VerifyCa);
        assert_eq!(info.root_cert.as_deref(), Some("/a path/it's.pem"));
        assert_eq!(info.pg.get_dbname(), Some("my db"));
        assert_eq!(info.pg.get_user(), Some("u"));
        let off = parse("host=h sslmode=disable").unwrap();
        assert_eq!(
            off.pg.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }

    #[test]
    fn bad_values_are_errors() {
        for bad in [
            "postgres://h/db?sslmode=sometimes",
            "host=h sslmode=",
            "host=h sslrootcert='open",
            "host",
            "postgres://h/db?sslmode=%zz",
        ] {
            assert!(
                matches!(parse(bad), Err(PgError::Url(_))),
                "{bad} should be refused"
            );
        }
    }
}
