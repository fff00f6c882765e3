//! What one `SessionContext` shares between the functions registered on it.

use crate::batches::Handlers;
use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;

use crate::engine::Budget;
use crate::http::HttpClient;
use crate::secret::Secrets;

/// Per-session shared state: the in-flight [`Budget`], the HTTP client (one
/// connection pool) and the `map_in_batches` handlers. Created by [`crate::register_all`] and stored in the
/// session config, so functions registered later find the same one with
/// [`AsyncRuntime::of`].
pub struct AsyncRuntime {
    budget: Budget,
    http: Arc<HttpClient>,
    handlers: Handlers,
    secrets: Arc<Secrets>,
    /// The column functions bound to this runtime (run by its pipelined operator),
    /// and whether each is called per chunk of rows.
    functions: parking_lot::Mutex<Vec<(ScalarUDF, bool)>>,
}

impl AsyncRuntime {
    /// A runtime with its own budget and connection pool.
    pub fn new() -> Self {
        Self {
            budget: Budget::default(),
            http: Arc::new(HttpClient::new()),
            handlers: Handlers::default(),
            secrets: Arc::default(),
            functions: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// The in-flight budget shared by all async functions of the session.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The shared HTTP client (connection pool, per-host rate limits).
    pub fn http(&self) -> &Arc<HttpClient> {
        &self.http
    }

    /// The values `secret('NAME')` returns (see [`crate::secret`]).
    pub fn secrets(&self) -> &Arc<Secrets> {
        &self.secrets
    }

    /// Records `udf` as bound to this runtime (its budget, client, settings);
    /// `per_chunk`: it is called once per chunk of rows.
    pub(crate) fn adopt(&self, udf: &ScalarUDF, per_chunk: bool) {
        let mut functions = self.functions.lock();
        if !functions.iter().any(|(f, _)| f == udf) {
            functions.push((udf.clone(), per_chunk));
        }
    }

    /// Whether `udf` is one of this runtime's functions.
    pub(crate) fn owns(&self, udf: &ScalarUDF) -> bool {
        self.functions.lock().iter().any(|(f, _)| f == udf)
    }

    /// Whether `udf` is one of this runtime's per-chunk functions.
    pub(crate) fn per_chunk(&self, udf: &ScalarUDF) -> bool {
        self.functions.lock().iter().any(|(f, c)| *c && f == udf)
    }

    /// The `map_in_batches` handlers registered on the session.
    pub fn handlers(&self) -> &Handlers {
        &self.handlers
    }

    /// The runtime of `ctx`, or a plan error if [`crate::register_all`] was not called.
    pub fn require(
        ctx: &datafusion::prelude::SessionContext,
    ) -> datafusion::common::Result<Arc<Self>> {
        Self::from_config(ctx.state_ref().read().config())
    }

    /// The runtime stored in a session's config by [`crate::register_all`], or a
    /// plan error saying to call it.
    pub fn from_config(
        config: &datafusion::execution::context::SessionConfig,
    ) -> datafusion::common::Result<Arc<Self>> {
        config.get_extension::<Self>().ok_or_else(|| {
            datafusion::common::plan_datafusion_err!(
                "call datafusion_async_udf::register_all(&ctx) before using async functions or map_in_batches"
            )
        })
    }

    /// The runtime registered on `ctx` by [`crate::register_all`], if any.
    pub fn of(ctx: &datafusion::prelude::SessionContext) -> Option<Arc<Self>> {
        Self::from_config(ctx.state_ref().read().config()).ok()
    }
}

/// Short: plans and errors print functions with their runtime.
impl std::fmt::Debug for AsyncRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRuntime")
            .field("max_in_flight", &self.budget.limit())
            .finish_non_exhaustive()
    }
}

impl Default for AsyncRuntime {
    fn default() -> Self {
        Self::new()
    }
}
