//! A pipelined, ordered stream of chunk calls: no barrier at batch boundaries.
//!
//! Input batches are cut into chunks of `chunk_size` rows. A chunk is admitted
//! (its call started) as soon as the window has room, whatever batch it came
//! from; outputs are emitted in input order as soon as every earlier chunk is
//! done. Input is pulled only when the window needs a chunk, so memory is bounded
//! by the window and a consumer that stops (a satisfied `LIMIT`) stops admission.
//!
//! Two kinds of window:
//! * `permits: Some(slots)`: one budget slot per chunk call, held while it runs
//!   (`map_in_batches`: one handler call per chunk);
//! * `permits: None`: the call takes slots itself, one per row (column functions
//!   run [`map_ordered`](super::map_ordered) inside), and the window only bounds
//!   the rows admitted but not yet emitted.
//!
//! "In flight" (a budget slot) and "waiting to be emitted" (the reorder window)
//! are separate: finished chunks waiting behind a slow one hold no slot.
//!
//! **Memory.** The window is bounded in bytes too: what finished calls of running
//! chunks hold (reported with [`hold`](super::held::hold)) plus the output
//! waiting to be emitted is reserved in DataFusion's memory pool (one consumer
//! per partition), and no chunk is admitted while that is over `max_bytes` or
//! the pool refuses to grow the reservation. A chunk whose output alone cannot
//! be reserved fails the query with the pool's resources-exhausted error, which
//! names the operator and partition. Output leaves in batches of at most
//! `batch_size` rows.
//!
//! The oldest chunk always runs (nothing could be emitted otherwise), so a chunk
//! must be small in bytes, not only in rows: 100 rows of 1 MB answers are 100 MB.
//! Where chunks are the engine's own unit (per-row functions), they are cut when
//! admitted, to about `max_bytes / 16` by the bytes per row seen so far (at most
//! `chunk_size` rows; [`FIRST_CHUNK`] rows until a first answer is known).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::MemoryReservation;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use futures::{FutureExt, StreamExt};

use super::chunks::{Counted, Cutter};
use super::context::in_chunk;
use super::held::{ChunkBytes, WindowBytes, holding};
use super::window::{Window, bytes_of};
use super::{CallStats, ChunkContext, Flow, Slot, metrics, share};

/// The call made for each chunk: its output batches (any number, any row count).
pub type ChunkCall = Arc<
    dyn Fn(ChunkContext, RecordBatch) -> BoxFuture<'static, Result<Vec<RecordBatch>>> + Send + Sync,
>;

/// A chunk call in the window: its input rows and output batches.
type Running = BoxFuture<'static, Result<(usize, Vec<RecordBatch>)>>;

/// Rows per chunk before the bytes a row holds are known, when chunks are
/// sized by bytes.
pub(crate) const FIRST_CHUNK: usize = 16;

/// Slot requests a partition keeps going at once when it takes a slot per chunk.
const ASK_AHEAD: usize = 16;

struct State {
    partition: usize,
    input: SendableRecordBatchStream,
    input_done: bool,
    call: ChunkCall,
    window: Window,
    pending: Cutter,
    running: FuturesOrdered<Running>,
    /// Budget slots asked for, when the window takes one per chunk: several at
    /// once, so a burst of freed slots is not all served to other queries
    /// while this partition asks for its next one.
    asking: FuturesUnordered<BoxFuture<'static, Slot>>,
    /// What each running chunk's calls hold and did, in admission order.
    running_held: VecDeque<ChunkBytes>,
    /// Output waiting to be emitted, with the bytes each batch releases.
    ready: VecDeque<(RecordBatch, usize)>,
    /// Bytes held by the window: finished calls of running chunks, and `ready`.
    bytes: Arc<WindowBytes>,
    reservation: MemoryReservation,
    admitted_rows: usize,
    next_chunk: usize,
    next_row: usize,
    /// The query whose share of the budget the chunk calls take.
    flow: Option<Arc<Flow>>,
}

impl State {
    /// Queues `batch`, marking the rows that count toward a chunk's size.
    fn split(&mut self, batch: RecordBatch) -> Result<()> {
        let counted = match &self.window.counted {
            Some(Counted(f)) => Some(f(&batch)?),
            None => None,
        };
        self.pending.push(batch, counted);
        Ok(())
    }

    /// Counted rows for the next chunk.
    fn chunk_rows(&self) -> usize {
        let size = self.window.chunk_size.max(1);
        if !self.window.by_bytes {
            return size;
        }
        match self.bytes.bytes_per_row() {
            None => size.min(FIRST_CHUNK),
            Some(per_row) => (self.window.max_bytes / 16 / per_row.max(1)).clamp(1, size),
        }
    }

    /// Room for more rows (see [`Window::rows_room`]).
    fn rows_room(&self) -> bool {
        self.window.rows_room(self.admitted_rows, self.bytes.done())
    }

    /// Room for one more chunk (always for the first, however large).
    fn room(&self) -> bool {
        if self.running.is_empty() {
            return true;
        }
        if self.running.len() >= self.window.max_chunks || !self.rows_room() {
            return false;
        }
        let held = self.bytes.held();
        held < self.window.max_bytes && self.reservation.try_resize(held).is_ok()
    }

    /// The oldest chunk finished with `batches`: they join the batches to emit,
    /// cut to `batch_size` rows, and replace what its calls held.
    fn finished(&mut self, batches: Vec<RecordBatch>) -> Result<()> {
        let calls_held = self.running_held.pop_front().map_or(0, |c| {
            self.bytes.forget_done(c.done.load(Ordering::SeqCst));
            c.held.load(Ordering::SeqCst)
        });
        self.bytes
            .set_head(self.running_held.front().map_or(usize::MAX, |c| c.chunk));
        let bytes = bytes_of(&batches);
        self.bytes.add(bytes);
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        self.bytes.observe(bytes, rows);
        self.bytes.release(calls_held);
        let size = self.window.batch_size.max(1);
        for batch in batches.into_iter().filter(|b| b.num_rows() > 0) {
            let rows = batch.num_rows();
            let mut offset = 0;
            while offset < rows {
                let len = size.min(rows - offset);
                self.ready.push_back((batch.slice(offset, len), 0));
                offset += len;
            }
        }
        // the last batch releases the chunk's bytes
        if let Some(last) = self.ready.back_mut() {
            last.1 += bytes;
        } else {
            self.bytes.release(bytes);
            return Ok(());
        }
        let held = self.bytes.held();
        match self.reservation.try_resize(held) {
            // over the pool with nothing else held: this chunk alone cannot fit
            Err(e) if held == bytes => Err(e),
            _ => Ok(()),
        }
    }

    fn emit(&mut self) -> Option<RecordBatch> {
        let (batch, bytes) = self.ready.pop_front()?;
        metrics::emitted(batch.num_rows());
        self.bytes.release(bytes);
        let held = self.bytes.held();
        if held < self.reservation.size() {
            self.reservation.shrink(self.reservation.size() - held);
        }
        Some(batch)
    }

    fn admit(&mut self, permit: Option<Slot>) {
        let Some(chunk) = self.pending.cut(self.chunk_rows()) else {
            return;
        };
        let rows = chunk.num_rows();
        let cx = ChunkContext {
            partition_index: Some(self.partition),
            chunk_index: self.next_chunk,
            rows: self.next_row..self.next_row + rows,
            idempotency_key: String::new(),
        };
        self.next_chunk += 1;
        self.next_row += rows;
        self.admitted_rows += rows;
        let span = tracing::debug_span!(
            "async_chunk",
            partition_index = cx.partition_index,
            chunk_index = cx.chunk_index,
            rows = ?cx.rows,
        );
        let guard = permit.as_ref().map(|_| metrics::start_call());
        if self.running_held.is_empty() {
            self.bytes.set_head(cx.chunk_index);
        }
        let chunk_bytes = ChunkBytes::new(&self.bytes, cx.chunk_index);
        self.running_held.push_back(chunk_bytes.clone());
        let call = holding(chunk_bytes, in_chunk(cx.clone(), (self.call)(cx, chunk)));
        let run = async move {
            let out = call.await;
            if let Some(guard) = guard {
                guard.finish();
            }
            drop(permit);
            Ok((rows, out?))
        };
        // a chunk is polled on every call's wake-up: no span to enter and
        // leave each time when tracing does not record it
        self.running.push_back(if span.is_disabled() {
            run.boxed()
        } else {
            tracing::Instrument::instrument(run, span).boxed()
        });
    }

    /// Keeps up to [`ASK_AHEAD`] slot requests going while chunks may start
    /// (none otherwise: their places in the queue go to others).
    fn ask(&mut self, can_admit: bool) {
        let Some(slots) = &self.window.permits else {
            return;
        };
        if !can_admit {
            if !self.asking.is_empty() {
                self.asking = FuturesUnordered::new();
            }
            return;
        }
        let room = self.window.max_chunks.saturating_sub(self.running.len());
        while self.asking.len() < room.min(ASK_AHEAD) {
            let (slots, flow) = (Arc::clone(slots), self.flow.clone());
            self.asking
                .push(async move { slots.acquire(flow.as_deref()).await }.boxed());
        }
    }

    async fn next(&mut self) -> Option<Result<RecordBatch>> {
        loop {
            if let Some(batch) = self.emit() {
                return Some(Ok(batch));
            }
            let room = self.room();
            let can_admit = room && !self.pending.is_empty();
            let want_input = room && self.pending.is_empty() && !self.input_done;
            if self.running.is_empty() && !can_admit && !want_input {
                return None;
            }
            self.ask(can_admit);
            let counts_itself = self.window.permits.is_none();
            // held back by unfinished rows: a call that ends inside a running
            // chunk may make room
            let more = !self.pending.is_empty() || !self.input_done;
            let by_rows = more && !room && self.window.calls_per_row > 0 && !self.rows_room();
            let bytes = Arc::clone(&self.bytes);
            tokio::select! {
                biased;
                Some(result) = self.running.next(), if !self.running.is_empty() => match result {
                    Ok((rows, batches)) => {
                        self.admitted_rows -= rows;
                        if let Err(e) = self.finished(batches) {
                            return Some(Err(e));
                        }
                    }
                    Err(e) => return Some(Err(e)),
                },
                Some(slot) = self.asking.next(), if can_admit && !self.asking.is_empty() => {
                    self.admit(Some(slot));
                }
                () = std::future::ready(()), if can_admit && counts_itself => self.admit(None),
                () = bytes.call_ended(), if by_rows => {}
                batch = self.input.next(), if want_input => match batch {
                    None => self.input_done = true,
                    Some(Err(e)) => return Some(Err(e)),
                    Some(Ok(batch)) => {
                        if let Err(e) = self.split(batch) {
                            return Some(Err(e));
                        }
                    }
                },
            }
        }
    }
}

/// Where a partition's stream accounts for what it does: the call metrics (see
/// [`metrics`]), the memory its window holds, and the query whose share of the
/// budget its calls take (see [`share`]; its counters join the sinks).
#[derive(Debug)]
pub struct Accounts {
    pub sinks: Vec<Arc<CallStats>>,
    pub reservation: MemoryReservation,
    pub flow: Option<Arc<Flow>>,
}

/// The output stream of one partition: `call` over the chunks of `input`,
/// outputs in input order.
pub fn pipeline(
    partition: usize,
    input: SendableRecordBatchStream,
    schema: SchemaRef,
    window: Window,
    call: ChunkCall,
    accounts: Accounts,
) -> SendableRecordBatchStream {
    let Accounts {
        mut sinks,
        reservation,
        flow,
    } = accounts;
    sinks.extend(flow.as_ref().map(|f| Arc::clone(f.stats())));
    let bytes = Arc::new(WindowBytes::new(window.max_bytes));
    let state = State {
        partition,
        input,
        input_done: false,
        call,
        window,
        pending: Cutter::default(),
        running: FuturesOrdered::new(),
        asking: FuturesUnordered::new(),
        running_held: VecDeque::new(),
        ready: VecDeque::new(),
        bytes,
        reservation,
        admitted_rows: 0,
        next_chunk: 0,
        next_row: 0,
        flow: flow.clone(),
    };
    let span = tracing::debug_span!("async_partition", partition_index = partition);
    let stream = futures::stream::unfold(state, move |mut state| {
        let span = span.clone();
        let next = metrics::within_all(sinks.clone(), async move {
            state.next().await.map(|item| (item, state))
        });
        let next = match &flow {
            Some(flow) => share::in_flow(Arc::clone(flow), next).left_future(),
            None => next.right_future(),
        };
        tracing::Instrument::instrument(next, span)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}
