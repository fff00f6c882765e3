//! # datafusion-async-udf
//!
//! Async, concurrent per-row functions for [Apache DataFusion]: call a slow external
//! service once per row with many calls in flight, keep the row order, and land or
//! discard the answers.
//!
//! * SQL: `http_get(url [, headers [, params]])`, `http_post(url, body [, headers])`,
//!   `http_put`, `http_patch`, `http_delete`, `http_head`, `http_post_form`,
//!   `http_request(method, …)`, `http_get_bytes`, `http_request_bytes`, `urlencode`, the
//!   `map_in_batches(handler, (subquery), args…)` table function, `secret(name)`,
//!   `COPY … STORED AS NOOP` and `STORED AS NOOP` tables; the JSON functions of
//!   `datafusion-functions-json`; the README documents each.
//! * Rust: typed async functions ([`AsyncFn`]), `map_in_batches` handlers
//!   ([`BatchHandler`], [`FnHandler`], [`register_handler`]), the DataFrame
//!   extensions [`DataFrameMapExt`] and [`DataFrameNoopExt`], and [`expr_fn`].
//! * Async actions ([`jobs`]): `collect_async`, `write_noop_async`, … return a
//!   [`QueryHandle`] at once (progress, cancel, await for the result); the queries
//!   running at once share the budget fairly.
//! * Every call written in a query runs at most once per row; calls flow across
//!   batch boundaries in a pipelined operator, within one in-flight budget per
//!   session (`async_udf.max_in_flight`), rows in input order, memory bounded in
//!   bytes through DataFusion's memory pool.
//! * Settings in the `async_udf.` and `http.` namespaces: [`config`].
//! * Feature `mock`: a mock API for tests and demos (`mock`); feature `cli`: the
//!   `dfasync` binary.
//!
//! One call registers everything on a `SessionContext`:
//!
//! ```no_run
//! # async fn demo() -> datafusion::common::Result<()> {
//! use datafusion::prelude::SessionContext;
//!
//! let ctx = SessionContext::new();
//! datafusion_async_udf::register_all(&ctx)?;
//! ctx.sql("SET async_udf.max_in_flight = 256").await?;
//! let df = ctx
//!     .sql("SELECT http_get('http://127.0.0.1:8089/v1/images/search')['status'] AS status")
//!     .await?;
//! df.show().await?;
//! # Ok(())
//! # }
//! ```
//!
//! [Apache DataFusion]: https://datafusion.apache.org

mod batches;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "ballista")]
pub mod cluster;
pub mod config;
mod documented;
mod engine;
pub mod expr_fn;
mod hosts_sql;
mod http;
pub mod jobs;
mod journal_sql;
#[cfg(feature = "mock")]
pub mod mock;
mod noop;
mod operator;
mod quota;
mod register;
mod runtime;
mod secret;
mod transport;
mod udf;

pub use batches::{BatchHandler, DataFrameMapExt, FnHandler, HandlerArgs, register_handler};
pub use config::{AsyncUdfConfig, HttpConfig, OnError};
pub use jobs::{DataFrameAsyncExt, QueryHandle, SessionAsyncExt};
pub use noop::DataFrameNoopExt;
pub use register::{SessionLike, register_all};
pub use runtime::AsyncRuntime;
pub use secret::Secrets;
pub use udf::{AsyncFn, CallError, ChunkContext};
