//! `http_get(url [, headers])` and `http_post(url, body [, headers])`.
//!
//! Both are volatile async scalar functions, clients of the [engine](crate::engine)
//! over the [transport](crate::transport):
//! one call per row with a non-NULL url, at most `async_udf.max_in_flight` at once
//! per session, results in row order. They return
//! `STRUCT<status INT, body VARCHAR, error VARCHAR, attempts INT, elapsed_ms BIGINT>`:
//! `error` is NULL exactly when a 2xx response arrived and its body was read in full;
//! `status` is NULL when no response arrived; a NULL url gives a NULL struct and no
//! call. Transient failures are retried ([`send`] says how), requests are
//! rate-limited per host, redirects are followed by hand within `http.allowed_hosts`.

mod args;
mod docs;
mod func;
mod output;
mod send;

use reqwest::Method;

pub(crate) use docs::documentation;
pub(crate) use func::HttpFunc;
pub(crate) use send::{Policy, Session, send};

/// Which of the two functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Get,
    Post,
}

impl Kind {
    /// The SQL name.
    pub(crate) fn name(self) -> &'static str {
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
