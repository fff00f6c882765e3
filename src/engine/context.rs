//! Where a chunk of rows comes from, for the function and its logs.

use std::ops::Range;

/// Given to per-chunk functions and `map_in_batches` handlers, like
/// spark_pipeline_framework's `partition_index`, `chunk_index` and
/// `chunk_input_range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkContext {
    /// The input partition. `None` in column functions: DataFusion evaluates scalar
    /// functions without telling them their partition.
    pub partition_index: Option<usize>,
    /// Position of the chunk: within the batch being evaluated for column
    /// functions, within the partition for `map_in_batches`.
    pub chunk_index: usize,
    /// The chunk's rows, counted like `chunk_index` (batch rows for column
    /// functions, only non-NULL rows being sent; partition rows for `map_in_batches`).
    pub rows: Range<usize>,
}
