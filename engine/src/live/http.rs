//! A minimal blocking HTTP/1.1 client for the supervisor's control API. Some `Testnet` methods
//! (network faults) are synchronous and may be called from any thread, inside or outside the
//! async runtime; a plain socket works in every one of those places, an async client does not.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A failed control call: the supervisor could not be reached, or answered with an error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// Connect, write or read failed.
    #[error("the supervisor at {url} did not answer {what}: {message}")]
    Unreachable {
        /// Control URL.
        url: String,
        /// The request.
        what: String,
        /// The cause.
        message: String,
    },
    /// A non-2xx answer; the message is the supervisor's.
    #[error("{message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The `error` field of the body, or the body.
        message: String,
    },
}

/// Base URL, secret and timeouts of one control API.
#[derive(Clone)]
pub struct ControlClient {
    base: String,
    addr: SocketAddr,
    secret: String,
    connect_timeout: Duration,
}

/// Never prints the secret.
impl std::fmt::Debug for ControlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlClient")
            .field("base", &self.base)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ControlClient {
    /// A client of `base` (`http://HOST:PORT`) sending `secret` (the testnet's, from its state
    /// file) with every call.
    pub fn new(base: &str, secret: &str) -> Result<Self, String> {
        if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "the control secret for `{base}` is missing or malformed (see the testnet's state file)"
            ));
        }
        let hostport = base
            .strip_prefix("http://")
            .ok_or_else(|| format!("control url `{base}` must start with http://"))?
            .trim_end_matches('/');
        let addr = hostport
            .to_socket_addrs()
            .map_err(|e| format!("control url `{base}`: {e}"))?
            .next()
            .ok_or_else(|| format!("control url `{base}` resolves to no address"))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            addr,
            secret: secret.to_owned(),
            connect_timeout: Duration::from_secs(2),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request and returns the body of a 2xx answer.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Vec<u8>, HttpError> {
        let what = format!("{method} {path}");
        let unreachable = |message: String| HttpError::Unreachable {
            url: self.base.clone(),
            what: what.clone(),
            message,
        };
        let mut stream = TcpStream::connect_timeout(&self.addr, self.connect_timeout)
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| unreachable(e.to_string()))?;
        let body = body.unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            self.secret,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .map_err(|e| unreachable(e.to_string()))?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(|e| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                unreachable(format!(
                    "no answer within {}",
                    humantime::format_duration(timeout)
                ))
            } else {
                unreachable(e.to_string())
            }
        })?;
        let (status, body) = parse_response(&raw).map_err(unreachable)?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            let message = serde_json::from_slice::<super::wire::ErrorWire>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            Err(HttpError::Status { status, message })
        }
    }
}

fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("truncated answer (no header end)")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "header is not utf-8")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("bad status line")?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &raw[split + 4..];
    Ok((
        status,
        if chunked {
            dechunk(body)?
        } else {
            body.to_vec()
        },
    ))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk")?;
        let size_text = std::str::from_utf8(&b[..eol]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size `{size_text}`"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_answers() {
        let (s, b) = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi").unwrap();
        assert_eq!((s, b.as_slice()), (200, b"hi".as_slice()));
        let (s, b) = parse_response(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((s, b.as_slice()), (404, b"abcde".as_slice()));
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn unreachable_supervisor_is_a_clear_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = ControlClient::new(&format!("http://127.0.0.1:{port}"), "ab12").unwrap();
        let e = c
            .call("GET", "/state", None, Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did not answer GET /state"), "{e}");
        assert!(ControlClient::new("127.0.0.1:1", "ab12").is_err());
        // a secret that could smuggle another header line is refused before any connection
        assert!(ControlClient::new("http://127.0.0.1:1", "ab\r\nX: y").is_err());
        assert!(ControlClient::new("http://127.0.0.1:1", "").is_err());
        assert!(!format!("{c:?}").contains("ab12"));
    }
}
