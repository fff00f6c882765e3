//! What one request may do, and the rules of HTTP itself the retries follow:
//! which hosts may be called, which answers are worth another attempt, how long
//! a service asked us to wait.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};

use super::{ClientOptions, SecretHeaders};

/// Everything one attempt needs from the settings (`http.*`, read once per
/// invocation by the functions).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Per attempt, connect to last body byte; `None` = no limit.
    pub timeout: Option<Duration>,
    pub max_body_bytes: u64,
    pub allowed_hosts: AllowedHosts,
    pub max_redirects: u32,
    /// What the client is built with (connect timeout, compression, proxy, TLS).
    pub client: ClientOptions,
    /// Headers dropped when a redirect leaves the origin.
    pub secret_headers: SecretHeaders,
}

/// `http.allowed_hosts`: exact hosts, `*.domain` for its subdomains, `*` for all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    pub(crate) fn parse(list: &str) -> Self {
        Self(
            list.split(',')
                .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        )
    }

    pub(crate) fn allows(&self, host: &str) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.0.iter().any(|p| {
            p == "*"
                || *p == host
                || p.strip_prefix("*.").is_some_and(|domain| {
                    host.len() > domain.len() + 1
                        && host.ends_with(domain)
                        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                })
        })
    }
}

/// Whether a response status is worth another attempt.
pub(crate) fn transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// Whether a failed `method` request may be sent again: idempotent methods
/// (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) always, others (POST, PATCH, …)
/// only when `retry_non_idempotent`.
pub(crate) fn may_retry(method: &Method, retry_non_idempotent: bool) -> bool {
    retry_non_idempotent
        || matches!(
            *method,
            Method::GET
                | Method::HEAD
                | Method::PUT
                | Method::DELETE
                | Method::OPTIONS
                | Method::TRACE
        )
}

/// `Retry-After` as delta-seconds or an HTTP-date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn host_patterns() {
        let any = AllowedHosts::parse("");
        assert!(any.allows("x.org"));
        let list = AllowedHosts::parse(" api.example.com, *.cats.io ,127.0.0.1");
        assert!(list.allows("api.example.com"));
        assert!(list.allows("API.example.com."));
        assert!(list.allows("a.cats.io"));
        assert!(list.allows("b.a.cats.io"));
        assert!(!list.allows("cats.io"));
        assert!(!list.allows("evilcats.io"));
        assert!(!list.allows("example.com"));
        assert!(list.allows("127.0.0.1"));
        assert!(!list.allows("169.254.169.254"));
        assert!(AllowedHosts::parse("*").allows("anything"));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(110) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn what_is_retried() {
        for code in [429, 502, 503, 504] {
            assert!(transient_status(StatusCode::from_u16(code).unwrap()));
        }
        for code in [200, 400, 401, 403, 404, 409, 422, 500, 501] {
            assert!(!transient_status(StatusCode::from_u16(code).unwrap()));
        }
        for m in [
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ] {
            assert!(may_retry(&m, false), "{m}");
        }
        for m in [
            Method::POST,
            Method::PATCH,
            Method::from_bytes(b"PURGE").unwrap(),
        ] {
            assert!(!may_retry(&m, false), "{m}");
            assert!(may_retry(&m, true), "{m}");
        }
    }
}
