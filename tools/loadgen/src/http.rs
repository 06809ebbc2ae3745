//! A minimal HTTP/1.1 client (one request per connection, `Connection:
//! close`): enough for `/healthcheck`, `/override-schema`, `/bulk-insert`
//! and `/fetch` on 127.0.0.1.

use anyhow::{Context, Result, anyhow, bail};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The parts of an answer the generator uses.
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The (de-chunked) body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as UTF-8 (lossy), for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `host:port` and path prefix of an `http://` base URL.
pub fn split_url(base: &str) -> Result<(String, String)> {
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// URLs are supported: {base}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    Ok((hostport.to_string(), path.to_string()))
}

/// One request; `body` is sent as JSON when given.
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Response> {
    tokio::time::timeout(timeout, request_inner(base, method, path, token, body))
        .await
        .map_err(|_| anyhow!("{method} {path}: no answer within {timeout:?}"))?
}

async fn request_inner(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Result<Response> {
    let (hostport, prefix) = split_url(base)?;
    let mut s = TcpStream::connect(&hostport)
        .await
        .with_context(|| format!("connect {hostport}"))?;
    s.set_nodelay(true)?;
    let mut head =
        format!("{method} {prefix}{path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await?;
    if let Some(b) = body {
        s.write_all(b).await?;
    }
    s.flush().await?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let header_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before the response head");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "content-length" {
                content_length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let mut rest = buf.split_off(header_end + 4);
    if let Some(n) = content_length.filter(|_| !chunked) {
        rest.reserve(n.saturating_sub(rest.len()));
        while rest.len() < n {
            let mut chunk = vec![0u8; (n - rest.len()).min(256 * 1024)];
            let k = s.read(&mut chunk).await?;
            if k == 0 {
                bail!("connection closed after {} of {n} body bytes", rest.len());
            }
            rest.extend_from_slice(&chunk[..k]);
        }
        rest.truncate(n);
    } else {
        s.read_to_end(&mut rest).await?;
        if chunked {
            rest = dechunk(&rest)?;
        }
    }
    Ok(Response { status, body: rest })
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    loop {
        let i = find(b, b"\r\n").ok_or_else(|| anyhow!("bad chunked body"))?;
        let size_str = std::str::from_utf8(&b[..i])?
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let size = usize::from_str_radix(&size_str, 16)?;
        b = &b[i + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// POST JSON and require a 200.
pub async fn post_ok(
    base: &str,
    path: &str,
    token: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<Response> {
    let bytes = serde_json::to_vec(body)?;
    let r = request(base, "POST", path, Some(token), Some(&bytes), timeout).await?;
    if r.status != 200 {
        bail!(
            "POST {path}: {} {}",
            r.status,
            r.text().chars().take(500).collect::<String>()
        );
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunks() {
        assert_eq!(
            super::dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
    }
}
