//! What one `SessionContext` shares between the functions registered on it.

use std::sync::{Arc, Weak};

use datafusion::logical_expr::ScalarUDF;

use crate::config::AsyncUdfConfig;
use crate::engine::journal::{Journal, Merger};
use crate::engine::{Adaptive, Budget, RateLimits};
use crate::jobs::{Job, Queries};
use crate::secret::Secrets;
use crate::transport::HttpClient;

/// What one session shares between its async functions: the in-flight budget,
/// the HTTP clients (connection pools), the per-host rate limits and the
/// secrets. Created by [`crate::register_all`] and stored in the session
/// config; [`AsyncRuntime::of`] finds it.
pub struct AsyncRuntime {
    budget: Budget,
    http: HttpClient,
    rate: RateLimits,
    adaptive: Arc<Adaptive>,
    secrets: Arc<Secrets>,
    queries: Queries,
    /// Identical idempotent calls in flight, merged.
    merger: Arc<Merger>,
    /// The journal in use (`async_udf.journal`), kept open between queries.
    journal: parking_lot::Mutex<Option<(String, Arc<Journal>)>>,
    /// The column functions bound to this runtime (run by its pipelined operator),
    /// and how each is called.
    functions: parking_lot::Mutex<Vec<(ScalarUDF, Calling)>>,
}

/// How the operator calls one of a runtime's functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Calling {
    /// Called once per chunk of rows (otherwise once per row).
    pub per_chunk: bool,
    /// The argument whose NULL means "no call for this row": a row that no
    /// guard needs is given NULL there (see `operator::guard`).
    pub key_arg: usize,
}

impl AsyncRuntime {
    /// A runtime with its own budget and connection pool.
    pub(crate) fn new() -> Self {
        Self {
            budget: Budget::default(),
            http: HttpClient::new(),
            rate: RateLimits::default(),
            adaptive: Arc::default(),
            secrets: Arc::default(),
            queries: Queries::default(),
            merger: Arc::default(),
            journal: parking_lot::Mutex::new(None),
            functions: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// The in-flight budget shared by all async functions of the session.
    pub(crate) fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The session's HTTP clients (connection pools).
    pub(crate) fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The per-host rate limits shared by every query of the session.
    pub(crate) fn rate(&self) -> &RateLimits {
        &self.rate
    }

    /// The per-host adaptive limits shared by every query of the session.
    pub(crate) fn adaptive(&self) -> &Arc<Adaptive> {
        &self.adaptive
    }

    /// The session's identical idempotent calls in flight.
    pub(crate) fn merger(&self) -> &Arc<Merger> {
        &self.merger
    }

    /// The journal `settings` name (`async_udf.journal`), opened at its first
    /// use; `None` when it is off. An error names the journal and says how to
    /// recover.
    pub(crate) fn journal(
        &self,
        settings: &AsyncUdfConfig,
    ) -> datafusion::common::Result<Option<Arc<Journal>>> {
        let location = settings.journal.trim();
        let mut current = self.journal.lock();
        if location.is_empty() {
            *current = None;
            return Ok(None);
        }
        if let Some((_, journal)) = current.as_ref().filter(|(open, _)| open == location) {
            journal.set_ttl(settings.journal_ttl.0);
            return Ok(Some(Arc::clone(journal)));
        }
        let journal = Journal::open(location, settings.journal_ttl.0)?;
        *current = Some((location.to_string(), Arc::clone(&journal)));
        Ok(Some(journal))
    }

    /// The session's queries: each one's share of the budget, the jobs running.
    pub(crate) fn queries(&self) -> &Queries {
        &self.queries
    }

    /// The jobs submitted with the `…_async` actions
    /// ([`DataFrameAsyncExt`](crate::DataFrameAsyncExt),
    /// [`SessionAsyncExt`](crate::SessionAsyncExt)) still running, oldest first.
    pub fn jobs(&self) -> Vec<Job> {
        self.queries.running()
    }

    /// The secrets `secret('NAME')` refers to: set them here, each scoped to
    /// the hosts it may be sent to.
    pub fn secrets(&self) -> &Arc<Secrets> {
        &self.secrets
    }

    /// Records `udf` as bound to this runtime (its budget, client, settings),
    /// called as `calling` says.
    pub(crate) fn adopt(&self, udf: &ScalarUDF, calling: Calling) {
        let mut functions = self.functions.lock();
        if !functions.iter().any(|(f, _)| f == udf) {
            functions.push((udf.clone(), calling));
        }
    }

    /// How `udf` is called, if it is one of this runtime's functions.
    pub(crate) fn calling(&self, udf: &ScalarUDF) -> Option<Calling> {
        self.functions
            .lock()
            .iter()
            .find(|(f, _)| f == udf)
            .map(|(_, c)| *c)
    }

    /// What a call of `udf` must call instead, if anything: the async function
    /// inside a [documented](crate::documented) one, and this runtime's function
    /// of the same name for an async function that is not this runtime's (built
    /// by [`crate::expr_fn`], or bound to another session), so the call runs on
    /// this session's budget and client.
    pub(crate) fn rebound(&self, udf: &ScalarUDF) -> Option<ScalarUDF> {
        let unwrapped = crate::documented::inner(udf);
        let udf = unwrapped.unwrap_or(udf);
        udf.as_async()?;
        let functions = self.functions.lock();
        if functions.iter().any(|(f, _)| f == udf) {
            return unwrapped.cloned();
        }
        functions
            .iter()
            .find(|(f, _)| f.name() == udf.name())
            .map(|(f, _)| f.clone())
    }

    /// Whether `udf` is one of this runtime's per-chunk functions.
    pub(crate) fn per_chunk(&self, udf: &ScalarUDF) -> bool {
        self.calling(udf).is_some_and(|c| c.per_chunk)
    }

    /// The runtime [`crate::register_all`] stored in `session` (`&ctx` or
    /// `&mut state`), or a plan error saying to call it.
    pub fn of(session: impl crate::SessionLike) -> datafusion::common::Result<Arc<Self>> {
        session.with_state(|state| Self::from_config(state.config()))
    }

    /// The runtime stored in a session's config (the one lookup [`Self::of`]
    /// uses too).
    pub(crate) fn from_config(
        config: &datafusion::execution::context::SessionConfig,
    ) -> datafusion::common::Result<Arc<Self>> {
        config.get_extension::<Self>().ok_or_else(|| {
            datafusion::common::plan_datafusion_err!(
                "call datafusion_async_udf::register_all(&ctx) before using async functions or map_in_batches"
            )
        })
    }
}

/// How a function refers to the runtime it is bound to: weakly. The runtime
/// keeps its functions ([`AsyncRuntime::adopt`]); were they to keep it too, a
/// dropped session's runtime would never be freed, and its connection pools
/// would hold their connections open until the pools' idle timeout. While a
/// query runs, its task context holds the runtime (a session config extension).
#[derive(Debug, Clone)]
pub(crate) struct Bound(Weak<AsyncRuntime>);

impl Bound {
    pub(crate) fn new(runtime: &Arc<AsyncRuntime>) -> Self {
        Self(Arc::downgrade(runtime))
    }

    /// The runtime, or an error naming `function` when its session is gone.
    pub(crate) fn get(&self, function: &str) -> datafusion::common::Result<Arc<AsyncRuntime>> {
        self.0.upgrade().ok_or_else(|| {
            datafusion::common::exec_datafusion_err!(
                "{function}: the session it was registered on was dropped; register it on this one"
            )
        })
    }

    /// Whether both are bound to the same runtime.
    pub(crate) fn same(&self, other: &Self) -> bool {
        Weak::ptr_eq(&self.0, &other.0)
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
