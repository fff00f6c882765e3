//! One HTTP request, and its outcome as a row value.

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName};
use reqwest::{Method, Url};

use super::Headers;

/// A request ready to send.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// The answer's body is wanted as exact bytes, not as text.
    pub binary: bool,
    /// Headers whose values came from `secret(…)`: dropped, like the secret header
    /// names, when a redirect leaves the origin.
    pub secret_headers: Vec<HeaderName>,
}

/// Why a row failed, decided where the failure happens and counted by kind in
/// the metrics (`errors_by_kind` in `EXPLAIN ANALYZE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorKind {
    /// The row could not be sent at all (invalid URL, header or body).
    Invalid,
    /// No connection (refused, unknown host, TLS or certificate failure).
    Connect,
    /// No answer in time.
    Timeout,
    /// An answer whose body could not be read, was too large or was not text.
    Body,
    /// An answer with a 4xx status.
    Http4xx,
    /// An answer with a 5xx status.
    Http5xx,
    /// Anything else (a redirect loop, a host not allowed, …).
    #[default]
    Other,
}

impl ErrorKind {
    /// The kind's name in the metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Body => "body",
            Self::Http4xx => "http_4xx",
            Self::Http5xx => "http_5xx",
            Self::Other => "other",
        }
    }

    /// The kind of an answer with a status that is not a success.
    pub fn of_status(status: u16) -> Self {
        match status {
            500.. => Self::Http5xx,
            400.. => Self::Http4xx,
            _ => Self::Other,
        }
    }
}

/// A response body: text (decoded from its declared charset, UTF-8 if none),
/// or exact bytes when the request asked for them.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Text(String),
    Bytes(Bytes),
}

impl Body {
    /// Its size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            Self::Bytes(b) => b.len(),
        }
    }

    /// The text, if it is text.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t),
            Self::Bytes(_) => None,
        }
    }

    /// The bytes: of the text in UTF-8, or as received.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Text(t) => t.as_bytes(),
            Self::Bytes(b) => b,
        }
    }
}

/// What a row gets: `error` is `None` exactly when a 2xx response arrived and its
/// body was read in full; `status` is `None` when no response arrived.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub status: Option<u16>,
    pub body: Option<Body>,
    /// The response headers (empty when no response arrived).
    pub headers: Headers,
    pub error: Option<String>,
    /// What kind of failure `error` is (meaningless without one).
    pub kind: ErrorKind,
    /// Requests sent (0 when the row could not be sent at all).
    pub attempts: u32,
    /// Time from the first attempt to the outcome, retries and waits included.
    pub elapsed_ms: u64,
}

impl Outcome {
    /// A failure before any response arrived.
    pub fn failed(kind: ErrorKind, error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            kind,
            ..Self::default()
        }
    }

    /// About what it holds in memory: the body, the headers and itself.
    pub fn held_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.body.as_ref().map_or(0, Body::len)
            + self.headers.size()
            + self.error.as_ref().map_or(0, String::len)
    }

    /// An answer arrived but the row failed: `error`, of `kind`.
    pub fn fail(&mut self, kind: ErrorKind, error: impl Into<String>) {
        self.error = Some(error.into());
        self.kind = kind;
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
