//! What `information_schema.routines` and `SHOW FUNCTIONS` say about the HTTP
//! functions.

use datafusion::logical_expr::Documentation;

use super::{Kind, METHODS, Param};
use crate::documented::SECTION;

const RESULT: &str = "Returns STRUCT<status INT, body, error VARCHAR, attempts INT, elapsed_ms \
    BIGINT, headers MAP(VARCHAR, VARCHAR), content_type VARCHAR, reason VARCHAR, size BIGINT>: error is NULL \
    exactly when a 2xx answer arrived and its body was read in full; a NULL url gives NULL and no \
    request. Calls run concurrently (async_udf.max_in_flight per session), at most once per row, \
    with retries, rate limits and timeouts (http.*).";

const HEADERS: &str = "MAP(VARCHAR, VARCHAR) of request headers (optional); \
    secret('NAME') values are sent only to the hosts the secret is scoped to";

fn what(kind: Kind) -> &'static str {
    match kind {
        Kind::Get => "Sends one HTTP GET per row; the body is text (decoded from its charset).",
        Kind::GetBytes => "Sends one HTTP GET per row; the body is BINARY, the exact bytes.",
        Kind::Head => "Sends one HTTP HEAD per row (status and headers, no body).",
        Kind::Delete => "Sends one HTTP DELETE per row.",
        Kind::Post => "Sends one HTTP POST per row (retried only with http.retry_non_idempotent).",
        Kind::Put => "Sends one HTTP PUT per row.",
        Kind::Patch => {
            "Sends one HTTP PATCH per row (retried only with http.retry_non_idempotent)."
        }
        Kind::PostForm => "Sends one form-encoded HTTP POST per row.",
        Kind::Request => "Sends one HTTP request per row with the given method.",
        Kind::RequestBytes => {
            "Sends one HTTP request per row with the given method; the body is BINARY."
        }
    }
}

fn example(kind: Kind) -> String {
    let u = "'https://api.example.com/items/' || id";
    match kind {
        Kind::Get | Kind::GetBytes | Kind::Head | Kind::Delete => {
            format!("SELECT {}({u})['status'] FROM t", kind.name())
        }
        Kind::Post | Kind::Put | Kind::Patch => format!(
            "SELECT {}({u}, to_json(named_struct('id', id)))['status'] FROM t",
            kind.name()
        ),
        Kind::PostForm => {
            format!("SELECT http_post_form({u}, NULL, MAP {{'name': name}})['status'] FROM t")
        }
        Kind::Request | Kind::RequestBytes => {
            format!("SELECT {}('OPTIONS', {u})['headers'] FROM t", kind.name())
        }
    }
}

fn argument(param: Param) -> String {
    match param {
        Param::Method => format!("VARCHAR: one of {}", METHODS.join(", ")),
        Param::Url => "VARCHAR: an absolute http or https URL".into(),
        Param::Body => "VARCHAR or BINARY: the request body".into(),
        Param::Headers => HEADERS.into(),
        Param::Params => "MAP(VARCHAR, VARCHAR) of query parameters, percent-encoded and \
            added to the URL (optional)"
            .into(),
        Param::Form => "MAP(VARCHAR, VARCHAR) of form fields, sent percent-encoded as an \
            application/x-www-form-urlencoded body"
            .into(),
    }
}

/// The documentation of `kind`.
pub(crate) fn documentation(kind: Kind) -> Documentation {
    let mut doc = Documentation::builder(SECTION, format!("{} {RESULT}", what(kind)), kind.usage())
        .with_sql_example(example(kind));
    for param in kind.params().0 {
        doc = doc.with_argument(param.name(), argument(*param));
    }
    doc.build()
}
