//! # datafusion-async-udf
//!
//! Async, concurrent per-row functions for [Apache DataFusion]: call a slow external
//! service once per row with many calls in flight, keep the row order, and land or
//! discard the answers.
//!
//! * `http_get(url [, headers])`, `http_post(url, body [, headers])` — see [`http`].
//! * A [pipelined operator](operator) in place of DataFusion's `AsyncFuncExec`:
//!   calls keep flowing across batch boundaries; metrics in `EXPLAIN ANALYZE`.
//! * The [engine](engine) behind them: chunked calls, one in-flight budget per
//!   session shared by all partitions and queries, results in input order.
//! * A [noop sink](noop): `COPY … STORED AS NOOP`, `STORED AS NOOP` tables for
//!   `INSERT INTO`, and [`DataFrameNoopExt::write_noop`].
//! * Settings in the `async_udf.` and `http.` namespaces — see [`config`].
//! * A bundled mock API for tests and demos (no network needed; feature `mock`).
//! * `dfasync`, datafusion-cli with all of this registered (feature `cli`).
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

pub mod batches;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod engine;
pub mod http;
#[cfg(feature = "mock")]
pub mod mock;
pub mod noop;
pub mod operator;
mod runtime;
pub mod secret;
pub mod udf;

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;

pub use batches::{BatchHandler, DataFrameMapExt, register_handler};
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
    analyzers.push(Arc::new(operator::lift::LiftAsyncCalls));
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
/// [`secret`]).
///
/// Returns the session's [`AsyncRuntime`] (its in-flight budget and HTTP client).
/// Calling it again on the same context keeps the runtime and the settings.
pub fn register_all(ctx: &SessionContext) -> Result<Arc<AsyncRuntime>> {
    let (runtime, registered) = {
        let state_ref = ctx.state_ref();
        let mut state = state_ref.write();
        let session_config = state.config_mut();
        config::install(session_config.options_mut());
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
        (runtime, registered)
    };
    for kind in [http::Kind::Get, http::Kind::Post] {
        let udf = http::HttpFunc::udf(kind, Arc::clone(&runtime));
        runtime.adopt(&udf, false);
        ctx.register_udf(udf);
    }
    if !registered {
        ctx.register_relation_planner(Arc::new(batches::MapInBatchesPlanner::new(
            Arc::clone(&runtime),
            ctx.state_weak_ref(),
        )))?;
    }
    ctx.register_udf(secret::SecretFunc::udf(Arc::clone(runtime.secrets())));
    runtime.handlers().insert(
        "post_json",
        Arc::new(batches::PostJson::new(Arc::clone(runtime.http()))),
    );
    Ok(runtime)
}
