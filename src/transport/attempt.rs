//! One attempt of a request: redirects followed by hand (so every hop is checked
//! against `http.allowed_hosts`), the body read within `http.max_body_bytes`.

use std::borrow::Cow;
use std::error::Error as _;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Client, Method, Response, StatusCode, Url};

use super::Headers;
use super::charset;
use super::policy::{Settings, retry_after, transient_status};
use super::ratelimit::{Quota, advertised};
use super::request::{Body, ErrorKind, Outcome, Request};

/// The outcome of one attempt and whether another one may help.
#[derive(Debug)]
pub(crate) struct Tried {
    /// Boxed: it travels up through every layer of the call and into its
    /// chunk's results, a pointer's copy at each step instead of the struct's.
    pub outcome: Box<Outcome>,
    pub transient: bool,
    pub retry_after: Option<Duration>,
    /// The quotas the answer advertised (rate-limit headers).
    pub advertised: Vec<Quota>,
}

impl Tried {
    fn failed(kind: ErrorKind, error: impl Into<String>, transient: bool) -> Self {
        Self {
            outcome: Box::new(Outcome::failed(kind, error)),
            transient,
            retry_after: None,
            advertised: Vec::new(),
        }
    }
}

/// Scheme, host and port: a redirect that changes any of them leaves the origin.
fn origin(url: &Url) -> (&str, Option<&str>, Option<u16>) {
    (url.scheme(), url.host_str(), url.port_or_known_default())
}

/// One attempt within `time_left` (the per-attempt timeout or what is left of the
/// row's total, whichever is shorter).
pub(crate) async fn attempt(
    client: &Client,
    request: &Request,
    settings: &Settings,
    time_left: Option<Duration>,
) -> Tried {
    let limit = match (settings.timeout, time_left) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let run = follow(client, request, settings);
    match limit {
        None => run.await,
        Some(limit) => match tokio::time::timeout(limit, run).await {
            Ok(tried) => tried,
            Err(_) => Tried::failed(
                ErrorKind::Timeout,
                format!("timed out after {} ms", limit.as_millis()),
                true,
            ),
        },
    }
}

async fn follow(client: &Client, request: &Request, settings: &Settings) -> Tried {
    // the request's own parts until a redirect changes them
    let mut method = Cow::Borrowed(&request.method);
    let mut url = Cow::Borrowed(&request.url);
    let mut headers = Cow::Borrowed(&request.headers);
    let mut body = request.body.clone();
    for _ in 0..=settings.max_redirects {
        let host = url.host_str().unwrap_or_default();
        if !settings.allowed_hosts.allows(host) {
            return Tried::failed(
                ErrorKind::Other,
                format!("host '{host}' is not in http.allowed_hosts"),
                false,
            );
        }
        let mut builder = client
            .request(method.as_ref().clone(), url.as_ref().clone())
            .headers(headers.as_ref().clone());
        if let Some(b) = &body {
            builder = builder.body(b.clone());
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                let (kind, error) = describe(&e);
                let transient = !e.is_builder() && !permanent(&error);
                return Tried::failed(kind, error, transient);
            }
        };
        let status = response.status();
        let location = status
            .is_redirection()
            .then(|| response.headers().get(LOCATION).cloned())
            .flatten();
        let Some(location) = location else {
            return read(response, settings.max_body_bytes, request.binary).await;
        };
        let next = match location.to_str().ok().and_then(|l| url.join(l).ok()) {
            Some(next) if matches!(next.scheme(), "http" | "https") => next,
            _ => {
                return Tried::failed(
                    ErrorKind::Other,
                    format!("redirect to an invalid location ({status})"),
                    false,
                );
            }
        };
        if origin(&next) != origin(&url) {
            let headers = headers.to_mut();
            for name in settings.secret_headers.names() {
                headers.remove(name);
            }
            for name in &request.secret_headers {
                headers.remove(name);
            }
        }
        if status == StatusCode::SEE_OTHER
            || (matches!(status.as_u16(), 301 | 302) && *method == Method::POST)
        {
            method = Cow::Owned(Method::GET);
            body = None;
        }
        url = Cow::Owned(next);
    }
    Tried::failed(
        ErrorKind::Other,
        format!(
            "too many redirects (more than http.max_redirects = {})",
            settings.max_redirects
        ),
        false,
    )
}

async fn read(mut response: Response, max_body: u64, binary: bool) -> Tried {
    let status = response.status();
    let mut tried = Tried {
        outcome: Box::new(Outcome {
            status: Some(status.as_u16()),
            // copied out now: the response's own map pins the connection's
            // read buffer for as long as it is kept (see `Headers`)
            headers: Headers::of(response.headers()),
            ..Outcome::default()
        }),
        transient: transient_status(status),
        // a wait asked with a refusal (429, 503) or a redirect
        retry_after: if status.is_success() {
            None
        } else {
            retry_after(response.headers())
        },
        advertised: advertised(response.headers()),
    };
    // the length on the wire; a compressed body has none here (it is decoded
    // as it arrives), so its decoded size is checked chunk by chunk below: a
    // compression bomb is cut off at max_body, never inflated
    if response.content_length().is_some_and(|n| n > max_body) {
        tried.outcome.fail(ErrorKind::Body, too_large(max_body));
        return tried;
    }
    // sized once when the length is known (≤ max_body, checked above): a
    // growing Vec would briefly hold twice the body on every reallocation
    let known = response.content_length().unwrap_or(0);
    let mut bytes = Vec::with_capacity(usize::try_from(known).unwrap_or(0));
    let read = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if (bytes.len() + chunk.len()) as u64 > max_body {
                    break Err((ErrorKind::Body, too_large(max_body), false));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break Ok(()),
            Err(e) => {
                let (_, error) = describe(&e);
                break Err((
                    ErrorKind::Body,
                    format!("reading body failed: {error}"),
                    true,
                ));
            }
        }
    };
    if let Err((kind, error, transient)) = read {
        tried.outcome.fail(kind, error);
        tried.transient |= transient;
        return tried;
    }
    let body = if binary {
        Ok(Body::Bytes(bytes.into()))
    } else {
        charset::decode(bytes, tried.outcome.headers.get(CONTENT_TYPE.as_str())).map(Body::Text)
    };
    match body {
        Ok(body) => tried.outcome.body = Some(body),
        Err(error) => {
            tried.outcome.fail(ErrorKind::Body, error);
            return tried;
        }
    }
    if !status.is_success() {
        tried.outcome.fail(
            ErrorKind::of_status(status.as_u16()),
            format!(
                "HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
        );
    }
    tried
}

fn too_large(max_body: u64) -> String {
    format!("response body exceeds http.max_body_bytes ({max_body} bytes)")
}

/// Whether a failure to connect will fail the same way on every attempt: the
/// server's certificate is not trusted or not valid for the host name, or the TLS
/// handshake was refused (rustls' and the peer's alerts).
fn permanent(error: &str) -> bool {
    const PERMANENT: [&str; 5] = [
        "invalid peer certificate",
        "certificate",
        "UnknownIssuer",
        "NotValidForName",
        "received fatal alert",
    ];
    PERMANENT.iter().any(|p| error.contains(p))
}

/// A reqwest error as its kind and a short sentence without the URL (which may
/// hold secrets and is known to the caller anyway).
fn describe(e: &reqwest::Error) -> (ErrorKind, String) {
    let (kind, what) = if e.is_timeout() {
        (ErrorKind::Timeout, "timed out")
    } else if e.is_connect() {
        (ErrorKind::Connect, "connection failed")
    } else if e.is_body() || e.is_decode() {
        (ErrorKind::Body, "body failed")
    } else {
        (ErrorKind::Other, "request failed")
    };
    let mut cause = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        (kind, what.to_string())
    } else {
        (kind, format!("{what}: {cause}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_are_permanent() {
        assert!(permanent(
            "connection failed: invalid peer certificate: UnknownIssuer"
        ));
        assert!(permanent(
            "connection failed: invalid peer certificate: NotValidForName"
        ));
        assert!(permanent(
            "connection failed: received fatal alert: BadCertificate"
        ));
        assert!(!permanent(
            "connection failed: Connection refused (os error 111)"
        ));
        assert!(!permanent("timed out after 100 ms"));
    }

    #[test]
    fn origin_is_scheme_host_and_port() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(origin(&u("http://a/x")), origin(&u("http://a:80/y")));
        assert_ne!(origin(&u("http://a/x")), origin(&u("https://a/x")));
        assert_ne!(origin(&u("http://a:1/x")), origin(&u("http://a:2/x")));
        assert_ne!(origin(&u("http://a/x")), origin(&u("http://b/x")));
    }
}
