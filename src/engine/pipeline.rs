//! A pipelined, ordered stream of chunk calls: no barrier at batch boundaries.
//!
//! Input batches are cut into chunks of `chunk_size` rows. A chunk is admitted
//! (its call started) as soon as the window has room, whatever batch it came
//! from; outputs are emitted in input order as soon as every earlier chunk is
//! done. Input is pulled only when the window needs a chunk, so memory is bounded
//! by the window and a consumer that stops (a satisfied `LIMIT`) stops admission.
//!
//! Two kinds of window:
//! * `permits: Some(semaphore)`: one budget slot per chunk call, held while it runs
//!   (`map_in_batches`: one handler call per chunk);
//! * `permits: None`: the call takes slots itself, one per row (column functions
//!   run [`map_ordered`](super::map_ordered) inside), and the window only bounds
//!   the rows admitted but not yet emitted.
//!
//! "In flight" (a budget slot) and "waiting to be emitted" (the reorder window)
//! are separate: finished chunks waiting behind a slow one hold no slot.

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

use super::context::in_chunk;
use super::{CallStats, ChunkContext, metrics};

/// The call made for each chunk: its output batches (any number, any row count).
pub type ChunkCall = Arc<
    dyn Fn(ChunkContext, RecordBatch) -> BoxFuture<'static, Result<Vec<RecordBatch>>> + Send + Sync,
>;

/// A chunk call in the window: its input rows and output batches.
type Running = BoxFuture<'static, Result<(usize, Vec<RecordBatch>)>>;

/// How much a partition's stream may have going at once.
#[derive(Debug, Clone)]
pub struct Window {
    pub chunk_size: usize,
    /// Chunks admitted but not yet emitted.
    pub max_chunks: usize,
    /// Input rows admitted but not yet emitted.
    pub max_rows: usize,
    /// A slot per chunk call, or `None` when the call takes its own slots.
    pub permits: Option<Arc<Semaphore>>,
}

struct State {
    partition: usize,
    input: SendableRecordBatchStream,
    input_done: bool,
    call: ChunkCall,
    window: Window,
    pending: VecDeque<(ChunkContext, RecordBatch)>,
    running: FuturesOrdered<Running>,
    ready: VecDeque<RecordBatch>,
    admitted_rows: usize,
    next_chunk: usize,
    next_row: usize,
}

impl State {
    fn split(&mut self, batch: &RecordBatch) {
        let size = self.window.chunk_size.max(1);
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = size.min(batch.num_rows() - offset);
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

    /// Room for one more chunk (always for the first, however large).
    fn room(&self) -> bool {
        self.running.is_empty()
            || (self.running.len() < self.window.max_chunks
                && self.admitted_rows < self.window.max_rows)
    }

    fn admit(&mut self, permit: Option<tokio::sync::OwnedSemaphorePermit>) {
        let Some((cx, chunk)) = self.pending.pop_front() else {
            return;
        };
        let rows = chunk.num_rows();
        self.admitted_rows += rows;
        let span = tracing::debug_span!(
            "async_chunk",
            partition_index = cx.partition_index,
            chunk_index = cx.chunk_index,
            rows = ?cx.rows,
        );
        let guard = permit.as_ref().map(|_| metrics::start_call());
        let call = in_chunk(cx.clone(), (self.call)(cx, chunk));
        self.running.push_back(
            tracing::Instrument::instrument(
                async move {
                    let out = call.await;
                    if let Some(guard) = guard {
                        guard.finish();
                    }
                    drop(permit);
                    Ok((rows, out?))
                },
                span,
            )
            .boxed(),
        );
    }

    async fn next(&mut self) -> Option<Result<RecordBatch>> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Some(Ok(batch));
            }
            let room = self.room();
            let can_admit = room && !self.pending.is_empty();
            let want_input = room && self.pending.is_empty() && !self.input_done;
            if self.running.is_empty() && !can_admit && !want_input {
                return None;
            }
            let permits = self.window.permits.clone();
            tokio::select! {
                biased;
                Some(result) = self.running.next(), if !self.running.is_empty() => match result {
                    Ok((rows, batches)) => {
                        self.admitted_rows -= rows;
                        self.ready.extend(batches.into_iter().filter(|b| b.num_rows() > 0));
                    }
                    Err(e) => return Some(Err(e)),
                },
                permit = async { match permits { Some(s) => s.acquire_owned().await.map(Some), None => Ok(None) } }, if can_admit => {
                    let Ok(permit) = permit else { return Some(exec_err!("budget closed")) };
                    self.admit(permit);
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

/// The output stream of one partition: `call` over the chunks of `input`,
/// outputs in input order. Calls record into `sinks` (see [`metrics`]).
pub fn pipeline(
    partition: usize,
    input: SendableRecordBatchStream,
    schema: SchemaRef,
    window: Window,
    call: ChunkCall,
    sinks: Vec<Arc<CallStats>>,
) -> SendableRecordBatchStream {
    let state = State {
        partition,
        input,
        input_done: false,
        call,
        window,
        pending: VecDeque::new(),
        running: FuturesOrdered::new(),
        ready: VecDeque::new(),
        admitted_rows: 0,
        next_chunk: 0,
        next_row: 0,
    };
    let span = tracing::debug_span!("async_partition", partition_index = partition);
    let stream = futures::stream::unfold(state, move |mut state| {
        let span = span.clone();
        tracing::Instrument::instrument(
            metrics::within_all(sinks.clone(), async move {
                state.next().await.map(|item| (item, state))
            }),
            span,
        )
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}
