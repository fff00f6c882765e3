//! `http_get(url [, headers])` and `http_post(url, body [, headers])`.
//!
//! Both are volatile async scalar functions and clients of the [engine](crate::engine):
//! one call per row with a non-NULL url, at most `async_udf.max_in_flight` at once
//! per session, results in row order. They return
//! `STRUCT<status INT, body VARCHAR, error VARCHAR>`: `error` is NULL exactly when a
//! 2xx response arrived and its body was read in full; `status` is NULL when no
//! response arrived; a NULL url gives a NULL struct and no call.

mod args;
mod func;
mod output;
mod request;

use reqwest::Method;

pub use func::HttpFunc;
pub use request::{Limits, Outcome, Request, parse_url, send};

/// Which of the two functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Get,
    Post,
}

impl Kind {
    /// The SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Get => "http_get",
            Self::Post => "http_post",
        }
    }

    fn method(self) -> Method {
        match self {
            Self::Get => Method::GET,
            Self::Post => Method::POST,
        }
    }
}

/// The session's HTTP client: connection pooling, TLS (rustls), bounded redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("datafusion-async-udf/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(10))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
        .unwrap_or_default()
}
