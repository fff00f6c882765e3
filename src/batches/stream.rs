//! The per-partition stream of `map_in_batches`: the engine's
//! [pipeline](crate::engine::pipeline) with one budget slot per handler call.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{Result, exec_err};
use datafusion::execution::SendableRecordBatchStream;
use futures::FutureExt;

use super::handler::{BatchHandler, HandlerArgs};
use crate::engine::journal::{
    Fingerprint, Journal, Merger, Mode, Once, Recorded, Step, batch_rows, decode_batches,
    encode_batches,
};
use crate::engine::{Accounts, ChunkContext, Flow, Window, metrics, pipeline};

/// What a partition's handler calls are keyed by and recorded in.
pub(crate) struct Keep {
    /// `map_in_batches(handler)`, as the journal names it.
    pub function: String,
    pub journal: Option<Arc<Journal>>,
    pub merger: Arc<Merger>,
}

impl Keep {
    /// The handler's output for `chunk`: recorded, or from the call, which is
    /// recorded before it is returned.
    async fn call(
        &self,
        flow: Option<&Flow>,
        (handler, args, schema): (&dyn BatchHandler, &HandlerArgs, &SchemaRef),
        cx: ChunkContext,
        chunk: RecordBatch,
    ) -> Result<Vec<RecordBatch>> {
        let (fields, rows) = batch_rows(&chunk)?;
        let mut f = Fingerprint::new(&self.function);
        f.part(fields.as_bytes());
        f.part(format!("{:?}", args.values).as_bytes());
        for row in &rows {
            f.part(row.data());
        }
        let once = Once {
            journal: self.journal.as_ref(),
            merger: &self.merger,
            flow,
        };
        let lead = match once
            .steps(&[Some((f.finish(), Mode::Distinct))])
            .await?
            .pop()
        {
            Some(Some(Step::Replay(_, recorded))) => {
                metrics::replayed(1);
                return decode_batches(recorded.answer);
            }
            Some(Some(Step::Lead(lead))) => lead,
            _ => return exec_err!("{}: a distinct call must lead", self.function),
        };
        let cx = ChunkContext {
            idempotency_key: lead.token(),
            ..cx
        };
        let out = check_schema(schema, handler.call(chunk, cx.clone(), args).await?, &cx)?;
        if self.journal.is_some() {
            let answer = encode_batches(schema, &out)?;
            let recorded = Recorded::new(&self.function, 0, answer);
            if let Some(commit) = lead.finish(|| Arc::new(()), Some(|| recorded)) {
                commit.await?;
            }
        }
        Ok(out)
    }
}

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
#[allow(clippy::too_many_arguments)]
pub(crate) fn map_stream(
    partition: usize,
    input: SendableRecordBatchStream,
    handler: Arc<dyn BatchHandler>,
    args: Arc<HandlerArgs>,
    schema: SchemaRef,
    window: Window,
    accounts: Accounts,
    keep: Keep,
) -> SendableRecordBatchStream {
    let out_schema = Arc::clone(&schema);
    let (keep, flow) = (Arc::new(keep), accounts.flow.clone());
    let call = Arc::new(move |cx: ChunkContext, chunk: RecordBatch| {
        let (handler, args) = (Arc::clone(&handler), Arc::clone(&args));
        let (schema, keep, flow) = (Arc::clone(&schema), Arc::clone(&keep), flow.clone());
        async move {
            keep.call(
                flow.as_deref(),
                (handler.as_ref(), &args, &schema),
                cx,
                chunk,
            )
            .await
        }
        .boxed()
    });
    pipeline(partition, input, out_schema, window, call, accounts)
}
