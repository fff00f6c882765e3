//! What one `SessionContext` shares between the functions registered on it.

use crate::batches::Handlers;
use crate::engine::Budget;

/// Per-session shared state: the in-flight [`Budget`], the HTTP client (one
/// connection pool) and the `map_in_batches` handlers. Created by [`crate::register_all`] and stored in the
/// session config, so functions registered later find the same one with
/// [`AsyncRuntime::of`].
#[derive(Debug)]
pub struct AsyncRuntime {
    budget: Budget,
    http: reqwest::Client,
    handlers: Handlers,
}

impl AsyncRuntime {
    /// A runtime with its own budget and connection pool.
    pub fn new() -> Self {
        Self {
            budget: Budget::default(),
            http: crate::http::client(),
            handlers: Handlers::default(),
        }
    }

    /// The in-flight budget shared by all async functions of the session.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The shared HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The `map_in_batches` handlers registered on the session.
    pub fn handlers(&self) -> &Handlers {
        &self.handlers
    }

    /// The runtime of `ctx`, or a plan error if [`crate::register_all`] was not called.
    pub fn require(
        ctx: &datafusion::prelude::SessionContext,
    ) -> datafusion::common::Result<std::sync::Arc<Self>> {
        Self::of(ctx).ok_or_else(|| {
            datafusion::common::plan_datafusion_err!(
                "call datafusion_async_udf::register_all(&ctx) before registering async functions"
            )
        })
    }

    /// The runtime registered on `ctx` by [`crate::register_all`], if any.
    pub fn of(ctx: &datafusion::prelude::SessionContext) -> Option<std::sync::Arc<Self>> {
        ctx.state_ref().read().config().get_extension::<Self>()
    }
}

impl Default for AsyncRuntime {
    fn default() -> Self {
        Self::new()
    }
}
