//! The per-partition stream of `map_in_batches`: chunks admitted as budget frees,
//! output in input order, input pulled only as far as the window needs.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{Result, exec_err};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use tokio::sync::Semaphore;

use super::handler::{BatchHandler, HandlerArgs};
use crate::engine::ChunkContext;

/// Settings of one partition's stream.
pub(crate) struct Limits {
    pub semaphore: Arc<Semaphore>,
    pub chunk_size: usize,
    /// Chunks admitted but not yet emitted (in flight or finished behind a slower
    /// earlier one): bounds memory to `window × chunk_size` input rows.
    pub window: usize,
}

struct State {
    partition: usize,
    input: SendableRecordBatchStream,
    input_done: bool,
    handler: Arc<dyn BatchHandler>,
    args: Arc<HandlerArgs>,
    schema: SchemaRef,
    limits: Limits,
    pending: VecDeque<(ChunkContext, RecordBatch)>,
    in_flight: FuturesOrdered<BoxFuture<'static, Result<Vec<RecordBatch>>>>,
    ready: VecDeque<RecordBatch>,
    next_chunk: usize,
    next_row: usize,
}

impl State {
    fn split(&mut self, batch: &RecordBatch) {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = self.limits.chunk_size.min(batch.num_rows() - offset);
            let cx = ChunkContext {
                partition_index: Some(self.partition),
                chunk_index: self.next_chunk,
                rows: self.next_row..self.next_row + len,
            };
            self.pending.push_back((cx, batch.slice(offset, len)));
            self.next_chunk += 1;
            self.next_row += len;
            offset += len;
        }
    }

    async fn next(&mut self) -> Option<Result<RecordBatch>> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Some(Ok(batch));
            }
            let room = self.in_flight.len() < self.limits.window;
            let can_admit = room && !self.pending.is_empty();
            let want_input = room && self.pending.is_empty() && !self.input_done;
            if self.in_flight.is_empty() && !can_admit && !want_input {
                return None;
            }
            let semaphore = Arc::clone(&self.limits.semaphore);
            tokio::select! {
                biased;
                Some(result) = self.in_flight.next(), if !self.in_flight.is_empty() => match result {
                    Ok(batches) => self.ready.extend(batches.into_iter().filter(|b| b.num_rows() > 0)),
                    Err(e) => return Some(Err(e)),
                },
                permit = semaphore.acquire_owned(), if can_admit => {
                    let Ok(permit) = permit else { return Some(exec_err!("budget closed")) };
                    let Some((cx, chunk)) = self.pending.pop_front() else { continue };
                    let (handler, args) = (Arc::clone(&self.handler), Arc::clone(&self.args));
                    let schema = Arc::clone(&self.schema);
                    let check = move |out: Vec<RecordBatch>, cx: &ChunkContext| -> Result<Vec<RecordBatch>> {
                        check_schema(&schema, out, cx)
                    };
                    self.in_flight.push_back(
                        async move {
                            let out = handler.call(chunk, cx.clone(), &args).await;
                            drop(permit);
                            check(out?, &cx)
                        }
                        .boxed(),
                    );
                }
                batch = self.input.next(), if want_input => match batch {
                    None => self.input_done = true,
                    Some(Err(e)) => return Some(Err(e)),
                    Some(Ok(batch)) => self.split(&batch),
                },
            }
        }
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

/// The output stream of one partition.
pub(crate) fn map_stream(
    partition: usize,
    input: SendableRecordBatchStream,
    handler: Arc<dyn BatchHandler>,
    args: Arc<HandlerArgs>,
    schema: SchemaRef,
    limits: Limits,
) -> SendableRecordBatchStream {
    let state = State {
        partition,
        input,
        input_done: false,
        handler,
        args,
        schema: Arc::clone(&schema),
        limits,
        pending: VecDeque::new(),
        in_flight: FuturesOrdered::new(),
        ready: VecDeque::new(),
        next_chunk: 0,
        next_row: 0,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        state.next().await.map(|item| (item, state))
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}
