//! The HTTP functions: `http_get`, `http_get_bytes`, `http_head`, `http_delete`,
//! `http_post`, `http_put`, `http_patch`, `http_post_form`, `http_request`,
//! `http_request_bytes`, and `urlencode`.
//!
//! All but `urlencode` are volatile async scalar functions, clients of the
//! [engine](crate::engine) over the [transport](crate::transport): one call per
//! row with a non-NULL url, at most `async_udf.max_in_flight` at once per session,
//! results in row order. They return `STRUCT<status INT, body VARCHAR (BINARY for
//! the *_bytes functions), error VARCHAR, attempts INT, elapsed_ms BIGINT, headers
//! MAP(VARCHAR, VARCHAR), content_type VARCHAR, reason VARCHAR, size BIGINT>`: `error` is NULL
//! exactly when a 2xx response arrived and its body was read in full; `status` is
//! NULL when no response arrived; a NULL url gives a NULL struct and no call.
//! Transient failures are retried ([`send`] says how), requests are rate-limited
//! per host, redirects are followed by hand within `http.allowed_hosts`.

mod args;
mod docs;
mod func;
mod journal;
mod output;
mod rows;
mod send;
mod urlencode;

use reqwest::Method;

pub(crate) use docs::documentation;
pub(crate) use func::HttpFunc;
pub(crate) use journal::add_idempotency_key;
pub(crate) use send::{Policy, Session, send};
pub(crate) use urlencode::UrlEncode;

/// Which HTTP function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Get,
    GetBytes,
    Head,
    Delete,
    Post,
    Put,
    Patch,
    PostForm,
    Request,
    RequestBytes,
}

/// A parameter of an HTTP function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Method,
    Url,
    Body,
    Headers,
    /// Query parameters added to the URL.
    Params,
    /// Form fields sent as an `application/x-www-form-urlencoded` body.
    Form,
}

impl Param {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Method => "method",
            Self::Url => "url",
            Self::Body => "body",
            Self::Headers => "headers",
            Self::Params => "params",
            Self::Form => "form",
        }
    }
}

impl Kind {
    /// Every function, in the order they are registered.
    pub(crate) const ALL: [Self; 10] = [
        Self::Get,
        Self::GetBytes,
        Self::Head,
        Self::Delete,
        Self::Post,
        Self::Put,
        Self::Patch,
        Self::PostForm,
        Self::Request,
        Self::RequestBytes,
    ];

    /// The SQL name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Get => "http_get",
            Self::GetBytes => "http_get_bytes",
            Self::Head => "http_head",
            Self::Delete => "http_delete",
            Self::Post => "http_post",
            Self::Put => "http_put",
            Self::Patch => "http_patch",
            Self::PostForm => "http_post_form",
            Self::Request => "http_request",
            Self::RequestBytes => "http_request_bytes",
        }
    }

    /// The parameters in order, and how many are required.
    pub(crate) fn params(self) -> (&'static [Param], usize) {
        use Param::{Body, Form, Headers, Method, Params, Url};
        match self {
            Self::Get | Self::GetBytes => (&[Url, Headers, Params], 1),
            Self::Head | Self::Delete => (&[Url, Headers], 1),
            Self::Post | Self::Put | Self::Patch => (&[Url, Body, Headers], 2),
            Self::PostForm => (&[Url, Headers, Form], 3),
            Self::Request | Self::RequestBytes => (&[Method, Url, Headers, Body], 2),
        }
    }

    /// The position of the url argument (a row whose url is NULL is not called).
    pub(crate) fn url_arg(self) -> usize {
        self.params()
            .0
            .iter()
            .position(|p| *p == Param::Url)
            .unwrap_or(0)
    }

    /// How it is called, optional parameters in brackets.
    pub(crate) fn usage(self) -> String {
        let (params, required) = self.params();
        let mut out = format!("{}(", self.name());
        for (i, p) in params.iter().enumerate() {
            if i >= required {
                out.push_str(" [, ");
            } else if i > 0 {
                out.push_str(", ");
            }
            out.push_str(p.name());
        }
        out.push_str(&"]".repeat(params.len() - required));
        out.push(')');
        out
    }

    /// The method, unless the caller gives it (`http_request`).
    fn method(self) -> Option<Method> {
        match self {
            Self::Get | Self::GetBytes => Some(Method::GET),
            Self::Head => Some(Method::HEAD),
            Self::Delete => Some(Method::DELETE),
            Self::Post | Self::PostForm => Some(Method::POST),
            Self::Put => Some(Method::PUT),
            Self::Patch => Some(Method::PATCH),
            Self::Request | Self::RequestBytes => None,
        }
    }

    /// Whether the body comes back as exact bytes (`BINARY`).
    pub(crate) fn binary(self) -> bool {
        matches!(self, Self::GetBytes | Self::RequestBytes)
    }
}

/// The methods `http_request` accepts (case-insensitive).
pub(crate) const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// `raw` as one of [`METHODS`], or why not.
pub(crate) fn method(raw: &str) -> Result<Method, String> {
    let upper = raw.trim().to_ascii_uppercase();
    if METHODS.contains(&upper.as_str()) {
        Method::from_bytes(upper.as_bytes()).map_err(|e| e.to_string())
    } else {
        Err(format!(
            "unknown HTTP method '{raw}' (one of {})",
            METHODS.join(", ")
        ))
    }
}
