//! Registration of everything on a `SessionContext` or a `SessionState`.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::prelude::SessionContext;

use crate::runtime::AsyncRuntime;
use crate::{batches, config, documented, http, noop, operator, secret};
use crate::{hosts_sql, journal_sql};

mod sealed {
    pub trait Sealed {}
    impl Sealed for &datafusion::prelude::SessionContext {}
    impl Sealed for &mut datafusion::execution::SessionState {}
}

/// Where this crate registers things: a `&SessionContext`, or a
/// `&mut SessionState` — for sessions built with a `SessionStateBuilder`
/// (build the state, register, then `SessionContext::new_with_state(state)`
/// or `SessionStateBuilder::new_from_existing(state)` to go on building), as
/// Ballista's executors and embedders with their own planners do.
pub trait SessionLike: sealed::Sealed {
    /// Runs `f` on the session's state.
    #[doc(hidden)]
    fn with_state<R>(self, f: impl FnOnce(&mut SessionState) -> R) -> R;
}

impl SessionLike for &SessionContext {
    fn with_state<R>(self, f: impl FnOnce(&mut SessionState) -> R) -> R {
        f(&mut self.state_ref().write())
    }
}

impl SessionLike for &mut SessionState {
    fn with_state<R>(self, f: impl FnOnce(&mut SessionState) -> R) -> R {
        f(self)
    }
}

/// Registers everything on `session` (`&ctx` or `&mut state`): the `async_udf.`
/// and `http.` config namespaces, the HTTP functions (`http_get`, `http_post`,
/// `http_request`, …, `urlencode`), the JSON functions of
/// `datafusion-functions-json` (`json_get_str`, `->>`, …), the `NOOP` file format
/// (for `COPY`) and the `NOOP` table factory (for `CREATE EXTERNAL TABLE …
/// STORED AS NOOP`), the `map_in_batches` table function with its built-in
/// handler `post_json`, and `secret(name)` (see the README).
///
/// Returns the session's [`AsyncRuntime`] (where its secrets are set).
/// Calling it again on the same session keeps the runtime and the settings.
///
/// ```
/// # fn demo() -> datafusion::common::Result<()> {
/// use datafusion::execution::session_state::SessionStateBuilder;
/// use datafusion::prelude::SessionContext;
///
/// let mut state = SessionStateBuilder::new().with_default_features().build();
/// datafusion_async_udf::register_all(&mut state)?;
/// let ctx = SessionContext::new_with_state(state);
/// # Ok(())
/// # }
/// ```
pub fn register_all(session: impl SessionLike) -> Result<Arc<AsyncRuntime>> {
    session.with_state(register_state)
}

fn register_state(state: &mut SessionState) -> Result<Arc<AsyncRuntime>> {
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
    datafusion_functions_json::register_all(state)?;
    if !registered {
        *state = with_rules(state, Arc::clone(&runtime));
        state.register_relation_planner(Arc::new(batches::MapInBatchesRelation::new(
            Arc::clone(&handlers),
        )))?;
    }
    batches::list(state);
    for kind in http::Kind::ALL {
        let udf = http::HttpFunc::udf(kind, &runtime);
        runtime.adopt(
            &udf,
            crate::runtime::Calling {
                per_chunk: false,
                key_arg: kind.url_arg(),
            },
        );
        state.register_udf(Arc::new(documented::documented(
            udf,
            http::documentation(kind),
        )))?;
    }
    state.register_udf(Arc::new(http::UrlEncode::udf()))?;
    state.register_udtf("async_journal", Arc::new(journal_sql::JournalTable));
    state.register_udtf("async_hosts", Arc::new(hosts_sql::HostsTable));
    state.register_udf(Arc::new(journal_sql::ClearJournal::udf(&runtime)))?;
    state.register_udf(Arc::new(secret::SecretFunc::udf(Arc::clone(
        runtime.secrets(),
    ))))?;
    handlers.insert(
        "post_json",
        Arc::new(batches::PostJson::new(Arc::clone(&runtime))),
    );
    Ok(runtime)
}

/// `state` with this crate's planning: the analyzer rule that gives every async
/// call its own node (exactly once per row, see `operator`), the physical planner
/// that plans those nodes (and `map_in_batches`), and the rule that keeps row
/// order above them, placed right after `EnsureRequirements` (at the end when
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
    let planner = operator::planner::AsyncQueryPlanner::new(
        Arc::clone(&runtime),
        vec![Arc::new(batches::MapInBatchesPlanner::new(runtime))],
    );
    SessionStateBuilder::new_from_existing(state.clone())
        .with_analyzer_rules(analyzers)
        .with_query_planner(Arc::new(planner))
        .with_physical_optimizer_rules(physical)
        .build()
}
