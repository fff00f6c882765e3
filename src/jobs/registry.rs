//! Which query a call belongs to, and the session's running jobs.

use std::sync::{Arc, Weak};

use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionConfig;
use parking_lot::Mutex;

use super::Job;
use crate::config::{self, AsyncUdfConfig};
use crate::engine::Flow;

/// Marks a session config as the config of one query: every plan executed with
/// it counts as that query (its fair share, its progress). Set by the submit
/// functions of [`super`] and by `dfasync` for each statement.
#[derive(Debug)]
pub(crate) struct QueryTag(pub(crate) Arc<Flow>);

impl QueryTag {
    /// `config` marked as a new query's, of the weight its `async_udf.weight` says.
    pub(crate) fn mark(config: &mut SessionConfig) -> Arc<Flow> {
        let flow = new_flow(config);
        config.set_extension(Arc::new(Self(Arc::clone(&flow))));
        flow
    }
}

/// A new query's flow, of the weight `async_udf.weight` says.
fn new_flow(config: &SessionConfig) -> Arc<Flow> {
    let settings: AsyncUdfConfig = config::get(config.options());
    Flow::new(u32::try_from(settings.weight.get()).unwrap_or(u32::MAX))
}

/// The queries of one session: the flow of each execution, and the jobs submitted.
#[derive(Default)]
pub(crate) struct Queries {
    /// Flows of executions that carry no [`QueryTag`]: one per task context
    /// (DataFusion passes one to every partition of a plan it executes).
    untagged: Mutex<Vec<(Weak<TaskContext>, Arc<Flow>)>>,
    running: Mutex<Vec<Job>>,
}

impl Queries {
    /// The flow of the query `context` executes.
    pub(crate) fn flow_of(&self, context: &Arc<TaskContext>) -> Arc<Flow> {
        let config = context.session_config();
        if let Some(tag) = config.get_extension::<QueryTag>() {
            return Arc::clone(&tag.0);
        }
        let mut untagged = self.untagged.lock();
        untagged.retain(|(task, _)| task.strong_count() > 0);
        if let Some((_, flow)) = untagged
            .iter()
            .find(|(task, _)| std::ptr::eq(task.as_ptr(), Arc::as_ptr(context)))
        {
            return Arc::clone(flow);
        }
        let flow = new_flow(config);
        untagged.push((Arc::downgrade(context), Arc::clone(&flow)));
        flow
    }

    pub(crate) fn started(&self, job: &Job) {
        self.running.lock().push(job.clone());
    }

    pub(crate) fn ended(&self, id: u64) {
        self.running.lock().retain(|j| j.id() != id);
    }

    /// The jobs running now, oldest first.
    pub(crate) fn running(&self) -> Vec<Job> {
        self.running.lock().clone()
    }
}

impl std::fmt::Debug for Queries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queries")
            .field("running", &self.running.lock().len())
            .finish_non_exhaustive()
    }
}
