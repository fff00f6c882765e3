//! One HTTP request and its outcome as a row value.

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Client, Method, Url};

/// Limits applied to one request, read from `http.*` at execution time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time limit from connecting until the whole body is read; `None` = no limit.
    pub timeout: Option<Duration>,
    /// Largest body read.
    pub max_body_bytes: u64,
}

/// A request ready to send.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<String>,
}

/// What a row gets: `error` is `None` exactly when a 2xx response arrived and its
/// body was read in full; `status` is `None` when no response arrived.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub status: Option<u16>,
    pub body: Option<String>,
    pub error: Option<String>,
}

impl Outcome {
    /// A failure before any response arrived.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            ..Self::default()
        }
    }
}

/// Parses and checks a URL: absolute, http or https.
pub fn parse_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("invalid URL '{}': {e}", redact(raw)))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "unsupported URL scheme '{other}' (only http and https are allowed)"
        )),
    }
}

/// The URL as shown in errors: without user name and password.
pub fn redact(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => raw.to_string(),
    }
}

/// Sends `request` and reads the body, within `limits`. Never panics; every
/// failure is described in the outcome.
pub async fn send(client: &Client, request: Request, limits: Limits) -> Outcome {
    let attempt = attempt(client, request, limits.max_body_bytes);
    match limits.timeout {
        None => attempt.await,
        Some(limit) => match tokio::time::timeout(limit, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::failed(format!("timed out after {} ms", limit.as_millis())),
        },
    }
}

async fn attempt(client: &Client, request: Request, max_body: u64) -> Outcome {
    let mut builder = client
        .request(request.method, request.url)
        .headers(request.headers);
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let mut response = match builder.send().await {
        Ok(r) => r,
        Err(e) => return Outcome::failed(describe(&e)),
    };
    let status = response.status();
    let mut outcome = Outcome {
        status: Some(status.as_u16()),
        ..Outcome::default()
    };
    if response.content_length().is_some_and(|n| n > max_body) {
        outcome.error = Some(too_large(max_body));
        return outcome;
    }
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if (bytes.len() + chunk.len()) as u64 > max_body {
                    outcome.error = Some(too_large(max_body));
                    return outcome;
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                outcome.error = Some(format!("reading body failed: {}", describe(&e)));
                return outcome;
            }
        }
    }
    match String::from_utf8(bytes) {
        Ok(text) => outcome.body = Some(text),
        Err(e) => {
            outcome.error = Some(format!(
                "response body is not valid UTF-8 ({} bytes, first invalid byte at {})",
                e.as_bytes().len(),
                e.utf8_error().valid_up_to()
            ));
            return outcome;
        }
    }
    if !status.is_success() {
        outcome.error = Some(format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ));
    }
    outcome
}

fn too_large(max_body: u64) -> String {
    format!("response body exceeds http.max_body_bytes ({max_body} bytes)")
}

/// A reqwest error as a short sentence without the URL (which may hold secrets and
/// is known to the caller anyway).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect failed"
    } else if e.is_body() || e.is_decode() {
        "body failed"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(parse_url("http://127.0.0.1:1/x").is_ok());
        assert!(parse_url("https://example.com").is_ok());
        let e = parse_url("").unwrap_err();
        assert!(e.starts_with("invalid URL ''"), "{e}");
        let e = parse_url("file:///etc/passwd").unwrap_err();
        assert!(e.contains("unsupported URL scheme 'file'"), "{e}");
        assert!(parse_url("ftp://x/y").unwrap_err().contains("'ftp'"));
        assert!(parse_url("not a url").unwrap_err().contains("invalid URL"));
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(redact("http://user:secret@h/p"), "http://h/p");
        assert_eq!(redact("http://h/p"), "http://h/p");
    }
}
