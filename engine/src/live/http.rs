//! The client of a supervisor's control API, on the workspace's HTTP stack (reqwest): every call
//! is async, so no control call blocks a runtime worker.

use std::time::Duration;

use crate::error::Chain;

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

/// Base URL and secret of one control API.
#[derive(Clone)]
pub struct ControlClient {
    base: String,
    secret: String,
    http: reqwest::Client,
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

/// What a `{"error": ...}` answer says, else the body.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<super::wire::ErrorWire>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned())
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
        if hostport.is_empty() || !hostport.contains(':') {
            return Err(format!("control url `{base}` names no host and port"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .map_err(|e| format!("control url `{base}`: {e}"))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            secret: secret.to_owned(),
            http,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request (`GET` or `POST`) and returns the body of a 2xx answer.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Vec<u8>, HttpError> {
        let what = format!("{method} {path}");
        let unreachable = |message: String| HttpError::Unreachable {
            url: self.base.clone(),
            what: what.clone(),
            message,
        };
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(&url),
            _ => self.http.post(&url),
        }
        .bearer_auth(&self.secret)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.unwrap_or_default())
        .timeout(timeout);
        let answer = req.send().await.map_err(|e| {
            unreachable(if e.is_timeout() {
                format!("no answer within {}", humantime::format_duration(timeout))
            } else {
                e.chain()
            })
        })?;
        let status = answer.status().as_u16();
        let body = answer
            .bytes()
            .await
            .map_err(|e| unreachable(e.chain()))?
            .to_vec();
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(HttpError::Status {
                status,
                message: error_message(&body),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_supervisor_is_a_clear_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = ControlClient::new(&format!("http://127.0.0.1:{port}"), "ab12").unwrap();
        let e = c
            .call("GET", "/state", None, Duration::from_secs(1))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("did not answer GET /state"), "{e}");
        assert!(ControlClient::new("127.0.0.1:1", "ab12").is_err());
        // a secret that could smuggle another header line is refused before any connection
        assert!(ControlClient::new("http://127.0.0.1:1", "ab\r\nX: y").is_err());
        assert!(ControlClient::new("http://127.0.0.1:1", "").is_err());
        assert!(!format!("{c:?}").contains("ab12"));
    }

    #[test]
    fn an_error_answer_reads_as_its_message() {
        assert_eq!(error_message(br#"{"error":"no node 7"}"#), "no node 7");
        assert_eq!(error_message(b"plain text"), "plain text");
    }
}
