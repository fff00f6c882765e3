//! What `information_schema.routines` and `SHOW FUNCTIONS` say about `http_get`
//! and `http_post`.

use datafusion::logical_expr::Documentation;

use super::Kind;
use crate::documented::SECTION;

const RESULT: &str = "Returns STRUCT<status INT, body VARCHAR, error VARCHAR, attempts INT, \
    elapsed_ms BIGINT>: error is NULL exactly when a 2xx answer arrived and its body was read \
    in full; a NULL url gives NULL and no request. Calls run concurrently (async_udf.max_in_flight \
    per session), at most once per row, with retries, rate limits and timeouts (http.*).";

const HEADERS: &str = "MAP<VARCHAR, VARCHAR> of request headers (optional); \
    secret('NAME') values are sent only to the hosts the secret is scoped to";

/// The documentation of `kind`.
pub(crate) fn documentation(kind: Kind) -> Documentation {
    match kind {
        Kind::Get => Documentation::builder(
            SECTION,
            format!("Sends one HTTP GET per row. {RESULT}"),
            "http_get(url [, headers])",
        )
        .with_sql_example("SELECT http_get('https://api.example.com/items/' || id)['body'] FROM t")
        .with_argument("url", "VARCHAR: an absolute http or https URL")
        .with_argument("headers", HEADERS),
        Kind::Post => Documentation::builder(
            SECTION,
            format!("Sends one HTTP POST per row. {RESULT}"),
            "http_post(url, body [, headers])",
        )
        .with_sql_example(
            "SELECT http_post('https://api.example.com/items', to_json(named_struct('id', id)))['status'] FROM t",
        )
        .with_argument("url", "VARCHAR: an absolute http or https URL")
        .with_argument("body", "VARCHAR: the request body")
        .with_argument("headers", HEADERS),
    }
    .build()
}
