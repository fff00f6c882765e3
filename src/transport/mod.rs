//! HTTP transport: one attempt of one request, and nothing else.
//!
//! The reqwest clients (connection pools, rustls), an attempt with its timeout,
//! redirects followed by hand (every hop checked against `http.allowed_hosts`,
//! secret headers dropped when the origin changes), the body read within
//! `http.max_body_bytes` (decompressed, decoded from its charset), the outcome as a row value with its [`ErrorKind`], and
//! the rules of HTTP the retries follow. Retries, rate limits and the budget
//! come from the engine, combined by the HTTP functions (`crate::http`); this
//! layer knows nothing of them, of settings namespaces or of DataFusion.

mod attempt;
mod charset;
mod client;
mod headers;
mod policy;
mod ratelimit;
mod request;
mod secret_headers;
mod url_parser;

pub(crate) use attempt::attempt;
pub(crate) use client::{ClientOptions, HttpClient};
pub(crate) use headers::Headers;
pub(crate) use policy::{AllowedHosts, Settings, may_retry};
#[cfg(all(test, feature = "mock"))]
pub(crate) use ratelimit::advertised as read_advertised;
pub(crate) use request::{Body, ErrorKind, Outcome, Request, parse_url, redact};
pub(crate) use secret_headers::SecretHeaders;
pub(crate) use url_parser::UrlParser;
