//! One HTTP request, and its outcome as a row value.

use reqwest::header::{HeaderMap, HeaderName};
use reqwest::{Method, Url};

/// A request ready to send.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<String>,
    /// Headers whose values came from `secret(…)`: dropped, like the secret header
    /// names, when a redirect leaves the origin.
    pub secret_headers: Vec<HeaderName>,
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

    /// A short name for the kind of failure, for metrics: `http_4xx`, `http_5xx`,
    /// `timeout`, `connect`, `body`, `invalid` (the row could not be sent) or `other`.
    pub fn error_kind(&self) -> &'static str {
        let error = self.error.as_deref().unwrap_or_default();
        match self.status {
            Some(s) if s >= 500 => "http_5xx",
            Some(s) if s >= 400 => "http_4xx",
            Some(_) => "body",
            None if self.attempts == 0 => "invalid",
            None if error.contains("timed out") => "timeout",
            None if error.starts_with("connection failed") => "connect",
            None if error.starts_with("reading body") || error.starts_with("body") => "body",
            None => "other",
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

/// Query parameters whose values are hidden in errors (matched case-insensitively,
/// as a part of the name: `api_key`, `X-Api-Key`, `access_token`, …).
const SECRET_PARAMS: [&str; 7] = [
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "signature",
    "auth",
];

/// The URL as shown in errors: without user name and password, and with the values
/// of secret-looking query parameters replaced by `***`.
pub fn redact(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw) else {
        return raw.to_string();
    };
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET_PARAMS.iter().any(|s| lower.contains(s));
                (
                    k.into_owned(),
                    if secret {
                        "***".to_string()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
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
        assert_eq!(
            redact("http://h/p?id=7&api_key=s3cr3t&Access_Token=t"),
            "http://h/p?id=7&api_key=***&Access_Token=***"
        );
        assert_eq!(redact("not a url"), "not a url");
    }
}
