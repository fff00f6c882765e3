//! One HTTP request, and its outcome as a row value.

use reqwest::header::HeaderMap;
use reqwest::{Method, Url};

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
    /// Requests sent (0 when the row could not be sent at all).
    pub attempts: u32,
    /// Time from the first attempt to the outcome, retries and waits included.
    pub elapsed_ms: u64,
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
