//! Where a chunk of rows comes from, for the function and its logs.

use std::future::Future;
use std::ops::Range;

/// Given to per-chunk functions and `map_in_batches` handlers, like
/// spark_pipeline_framework's `partition_index`, `chunk_index` and
/// `chunk_input_range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkContext {
    /// The input partition. `None` only when a column function runs outside the
    /// pipelined operator (`async_udf.pipelined = false`): DataFusion's own
    /// operator does not tell functions their partition.
    pub partition_index: Option<usize>,
    /// Position of the chunk within the partition (within the batch being
    /// evaluated outside the pipelined operator).
    pub chunk_index: usize,
    /// The chunk's rows, counted like `chunk_index`. For column functions the
    /// range covers the chunk's NULL rows too, though only non-NULL rows are sent.
    pub rows: Range<usize>,
    /// This call's idempotency key: derived from its rows (and, for calls not
    /// declared pure, which identical call of the query it is), the same on
    /// every retry, rerun and executor. A handler that posts its chunk sends it
    /// as an `Idempotency-Key` header, so the server drops copies. Empty
    /// before the call is keyed (in a chunk's context while it is being cut).
    pub idempotency_key: String,
}

tokio::task_local! {
    static CURRENT: ChunkContext;
}

/// Runs `f` as the work on chunk `cx` (see [`current_chunk`]).
pub async fn in_chunk<F: Future>(cx: ChunkContext, f: F) -> F::Output {
    CURRENT.scope(cx, f).await
}

/// The chunk the pipeline is working on in this task, if any: lets a column
/// function evaluated on one chunk report where the chunk sits in its partition.
pub fn current_chunk() -> Option<ChunkContext> {
    CURRENT.try_with(Clone::clone).ok()
}
