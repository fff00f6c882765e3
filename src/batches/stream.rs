//! The per-partition stream of `map_in_batches`: the engine's
//! [pipeline](crate::engine::pipeline) with one budget slot per handler call.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{Result, exec_err};
use datafusion::execution::SendableRecordBatchStream;
use futures::FutureExt;

use super::handler::{BatchHandler, HandlerArgs};
use crate::engine::{Accounts, ChunkContext, Window, pipeline};

fn check_schema(
    schema: &SchemaRef,
    out: Vec<RecordBatch>,
    cx: &ChunkContext,
) -> Result<Vec<RecordBatch>> {
    for b in &out {
        if b.schema().fields() != schema.fields() {
            return exec_err!(
                "map_in_batches: the handler returned a batch of schema {} for chunk {} (rows {:?}), \
                 expected {}",
                b.schema(),
                cx.chunk_index,
                cx.rows,
                schema
            );
        }
    }
    Ok(out)
}

/// The output stream of one partition. `window.permits` must be set: each
/// handler call holds one slot of the session's budget.
pub(crate) fn map_stream(
    partition: usize,
    input: SendableRecordBatchStream,
    handler: Arc<dyn BatchHandler>,
    args: Arc<HandlerArgs>,
    schema: SchemaRef,
    window: Window,
    accounts: Accounts,
) -> SendableRecordBatchStream {
    let out_schema = Arc::clone(&schema);
    let call = Arc::new(move |cx: ChunkContext, chunk: RecordBatch| {
        let (handler, args) = (Arc::clone(&handler), Arc::clone(&args));
        let schema = Arc::clone(&schema);
        async move {
            let out = handler.call(chunk, cx.clone(), &args).await;
            check_schema(&schema, out?, &cx)
        }
        .boxed()
    });
    pipeline(partition, input, out_schema, window, call, accounts)
}
