//! Expression builders for the DataFrame API, like DataFusion's own `expr_fn`:
//!
//! ```no_run
//! # async fn demo() -> datafusion::common::Result<()> {
//! use datafusion::functions::core::expr_ext::FieldAccessor;
//! use datafusion::prelude::*;
//! use datafusion_async_udf::expr_fn::http_get;
//!
//! let ctx = SessionContext::new();
//! datafusion_async_udf::register_all(&ctx)?;
//! let df = ctx.sql("SELECT 'http://127.0.0.1:8089/v1/images/search' AS url").await?;
//! let status = df.select(vec![http_get(col("url")).field("status").alias("status")])?;
//! status.show().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The calls they build belong to no session: when a query is planned they become
//! calls of that session's functions (its budget, client and settings), so the
//! session needs [`register_all`](crate::register_all).

use std::sync::Arc;

use datafusion::logical_expr::Expr;
use datafusion::logical_expr::expr::ScalarFunction;

use crate::http::{HttpFunc, Kind};

fn call(kind: Kind, args: Vec<Expr>) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(HttpFunc::unbound(kind)),
        args,
    ))
}

/// `http_get(url)`: one GET per row with a non-NULL url; a struct of `status`,
/// `body`, `error`, `attempts`, `elapsed_ms`, `headers`, `content_type`,
/// `reason`, `size`.
pub fn http_get(url: Expr) -> Expr {
    call(Kind::Get, vec![url])
}

/// `http_get(url, headers)`, `headers` a `MAP<VARCHAR, VARCHAR>`.
pub fn http_get_with_headers(url: Expr, headers: Expr) -> Expr {
    call(Kind::Get, vec![url, headers])
}

/// `http_post(url, body)`: one POST per row with a non-NULL url.
pub fn http_post(url: Expr, body: Expr) -> Expr {
    call(Kind::Post, vec![url, body])
}

/// `http_post(url, body, headers)`, `headers` a `MAP<VARCHAR, VARCHAR>`.
pub fn http_post_with_headers(url: Expr, body: Expr, headers: Expr) -> Expr {
    call(Kind::Post, vec![url, body, headers])
}

/// `http_get_bytes(url)`: [`http_get`] with the body as `BINARY`, the exact bytes.
pub fn http_get_bytes(url: Expr) -> Expr {
    call(Kind::GetBytes, vec![url])
}

/// `http_request(method, url, headers, body)`: one request per row with any of
/// GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (`headers` a
/// `MAP<VARCHAR, VARCHAR>` or NULL, `body` `VARCHAR`/`BINARY` or NULL).
pub fn http_request(method: Expr, url: Expr, headers: Expr, body: Expr) -> Expr {
    call(Kind::Request, vec![method, url, headers, body])
}
