//! `map_in_batches`: DataFrame in, DataFrame out, chunk by chunk, asynchronously —
//! like Spark's `mapInPandas`/`mapInArrow`, but streaming and concurrent.
//!
//! A [`BatchHandler`] is registered by name ([`register_handler`]); it gets chunks
//! (`RecordBatch`es of up to `async_udf.chunk_size` rows) with a [`ChunkContext`](crate::ChunkContext)
//! (`partition_index`, `chunk_index`, row range) and returns zero or more batches
//! of the output schema it declared.
//!
//! * SQL: `SELECT * FROM map_in_batches('handler', (SELECT …))`; literals after
//!   the input are passed to the handler
//!   (`map_in_batches('post_json', (SELECT …), 'http://…')`).
//! * DataFrame: [`DataFrameMapExt::map_in_batches`].
//!
//! Chunks of all partitions share the session's in-flight budget
//! (`async_udf.max_in_flight`). Within a partition, output batches come in input
//! order, each as soon as its chunk and every earlier one are done; the next chunk
//! is admitted as soon as a call slot frees (no barrier at batch boundaries), and
//! the input is read only as far as needed: at most `max_in_flight` chunks of a
//! partition are admitted and not yet emitted, so memory is bounded by
//! `max_in_flight × chunk_size` rows per partition, never by the partition's size.
//! A `LIMIT` above stops reading and drops the calls in flight. A handler error
//! fails the query (a handler that wants per-row errors puts them in a column).

mod dataframe;
pub(crate) mod exec;
mod handler;
pub(crate) mod node;
mod post_json;
mod relation;
mod stream;

use std::sync::Arc;

use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::LogicalPlan;

pub use dataframe::DataFrameMapExt;
pub(crate) use handler::Handlers;
pub use handler::{BatchHandler, FnHandler, HandlerArgs};
pub(crate) use node::MapInBatchesPlanner;
pub(crate) use post_json::PostJson;
pub(crate) use relation::{MapInBatchesRelation, list};

use crate::register::SessionLike;

/// Registers `handler` under `name` on `session` (`&ctx` or `&mut state`, after
/// [`crate::register_all`]).
pub fn register_handler(
    session: impl SessionLike,
    name: &str,
    handler: Arc<dyn BatchHandler>,
) -> Result<()> {
    session
        .with_state(|state| Handlers::of(state.config()))?
        .insert(name, handler);
    Ok(())
}

/// The logical plan of `map_in_batches(name, input, args…)`: one way, shared by SQL
/// and the DataFrame API.
fn relation(
    input: LogicalPlan,
    name: &str,
    args: Vec<ScalarValue>,
    handlers: &Handlers,
) -> Result<LogicalPlan> {
    node::MapInBatches::plan(input, name, handlers.get(name)?, args)
}
