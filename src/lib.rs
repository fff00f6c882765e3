//! # datafusion-async-udf
//!
//! Async, concurrent per-row functions for [Apache DataFusion]: call a slow external
//! service once per row with many calls in flight, keep the row order, and land or
//! discard the answers.
//!
//! * SQL: `http_get(url [, headers])`, `http_post(url, body [, headers])`, the
//!   `map_in_batches(handler, (subquery), args…)` table function, `secret(name)`,
//!   `COPY … STORED AS NOOP` and `STORED AS NOOP` tables; the JSON functions of
//!   `datafusion-functions-json`; the README documents each.
//! * Rust: typed async functions ([`AsyncFn`]), `map_in_batches` handlers
//!   ([`BatchHandler`], [`FnHandler`], [`register_handler`]), the DataFrame
//!   extensions [`DataFrameMapExt`] and [`DataFrameNoopExt`], and [`expr_fn`].
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
pub mod config;
mod documented;
mod engine;
pub mod expr_fn;
mod http;
#[cfg(feature = "mock")]
pub mod mock;
mod noop;
mod operator;
mod runtime;
mod secret;
mod transport;
mod udf;

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;

pub use batches::{BatchHandler, DataFrameMapExt, FnHandler, HandlerArgs, register_handler};
pub use config::{AsyncUdfConfig, HttpConfig, OnError};
pub use noop::DataFrameNoopExt;
pub use runtime::AsyncRuntime;
pub use secret::Secrets;
pub use udf::{AsyncFn, CallError, ChunkContext};

/// `state` with this crate's planning: the analyzer rule that gives every async
/// call its own node (exactly once per row, see [`operator`]), the physical planner
/// that plans those nodes into the pipelined operator, and the rule that keeps
/// row order above it, placed right after `EnsureRequirements` (at the end when
/// that rule is missing).
fn with_rules(state: &SessionState, runtime: Arc<AsyncRuntime>) -> SessionState {
    let mut physical = state.physical_optimizers().to_vec();
    let at = physical
        .iter()
        .position(|r| r.name() == "EnsureRequirements")
        .map_or(physical.len(), |i| i + 1);
    physical.insert(at, Arc::new(operator::KeepOrderRule));
    let mut analyzers = state.analyzer().rules.clone();
    analyzers.push(Arc::new(operator::lift::LiftAsyncCalls::new(Arc::clone(
        &runtime,
    ))));
    SessionStateBuilder::new_from_existing(state.clone())
        .with_analyzer_rules(analyzers)
        .with_query_planner(Arc::new(operator::planner::AsyncQueryPlanner::new(runtime)))
        .with_physical_optimizer_rules(physical)
        .build()
}

/// Registers everything on `ctx`: the `async_udf.` and `http.` config namespaces,
/// `http_get`, `http_post`, the JSON functions of `datafusion-functions-json`
/// (`json_get_str`, `->>`, …), the `NOOP` file format (for `COPY`) and the `NOOP`
/// table factory (for `CREATE EXTERNAL TABLE … STORED AS NOOP`), the `map_in_batches`
/// table function with its built-in handler `post_json`, and `secret(name)` (see
/// the README).
///
/// Returns the session's [`AsyncRuntime`] (where its secrets are set).
/// Calling it again on the same context keeps the runtime and the settings.
pub fn register_all(ctx: &SessionContext) -> Result<Arc<AsyncRuntime>> {
    let (runtime, handlers, registered) = {
        let state_ref = ctx.state_ref();
        let mut state = state_ref.write();
        let session_config = state.config_mut();
        config::install(session_config.options_mut());
        let handlers = batches::Handlers::install(session_config);
        let existing = session_config.get_extension::<AsyncRuntime>();
        let registered = existing.is_some();
        let runtime = existing.unwrap_or_else(|| {
            let runtime = Arc::new(AsyncRuntime::new());
            session_config.set_extension(Arc::clone(&runtime));
            runtime
        });
        state.register_file_format(Arc::new(noop::NoopFormatFactory), true)?;
        state
            .table_factories_mut()
            .insert("NOOP".to_string(), Arc::new(noop::NoopTableFactory));
        datafusion_functions_json::register_all(&mut *state)?;
        if !registered {
            *state = with_rules(&state, Arc::clone(&runtime));
        }
        (runtime, handlers, registered)
    };
    for kind in [http::Kind::Get, http::Kind::Post] {
        let udf = http::HttpFunc::udf(kind, Arc::clone(&runtime));
        runtime.adopt(&udf, false);
        ctx.register_udf(documented::documented(udf, http::documentation(kind)));
    }
    if !registered {
        ctx.register_relation_planner(Arc::new(batches::MapInBatchesPlanner::new(
            Arc::clone(&runtime),
            Arc::clone(&handlers),
            ctx.state_weak_ref(),
        )))?;
    }
    ctx.register_udf(secret::SecretFunc::udf(Arc::clone(runtime.secrets())));
    handlers.insert(
        "post_json",
        Arc::new(batches::PostJson::new(Arc::clone(&runtime))),
    );
    Ok(runtime)
}
