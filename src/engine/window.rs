//! What a partition's pipeline may have going at once: chunks, rows and bytes.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch};

use super::Slots;
use super::chunks::Counted;

/// Rows admitted and not yet emitted, at most, as a multiple of
/// [`Window::max_rows`]: finished rows waiting for an earlier one are bounded
/// by the window's bytes, and by this.
pub(crate) const FINISHED_ROOM: usize = 8;

/// How much a partition's stream may have going at once.
#[derive(Debug, Clone)]
pub struct Window {
    /// Rows per chunk (counted rows only, when `counted` is set).
    pub chunk_size: usize,
    /// Rows that count toward `chunk_size`; `None`: every row.
    pub counted: Option<Counted>,
    /// Cut chunks smaller than `chunk_size` when rows hold many bytes (for
    /// per-row functions; a per-chunk function gets the chunks it was promised).
    pub by_bytes: bool,
    /// Chunks admitted but not yet emitted.
    pub max_chunks: usize,
    /// Rows admitted and not finished: still to be called, in flight or
    /// waiting to retry (finished rows of running chunks, known when
    /// `calls_per_row` is set, count apart: [`FINISHED_ROOM`]).
    pub max_rows: usize,
    /// Calls each row makes that report their end (one per per-row function
    /// of the operator); 0: none does, a row counts as unfinished until its
    /// chunk has ended.
    pub calls_per_row: usize,
    /// Bytes held by finished calls and output not yet emitted.
    pub max_bytes: usize,
    /// Rows per output batch at most.
    pub batch_size: usize,
    /// A slot per chunk call, or `None` when the call takes its own slots.
    pub permits: Option<Arc<Slots>>,
}

impl Window {
    /// Room for more rows, with `admitted` rows admitted and not emitted, and
    /// `ended` calls of running chunks ended (rows count as finished only once
    /// as many calls ended as each row makes).
    pub(crate) fn rows_room(&self, admitted: usize, ended: usize) -> bool {
        let finished = match self.calls_per_row {
            0 => 0,
            n => (ended / n).min(admitted),
        };
        admitted - finished < self.max_rows
            && admitted < self.max_rows.saturating_mul(FINISHED_ROOM)
    }
}

/// The bytes of `batches`' rows: a chunk's input columns are slices of a
/// batch every chunk of it shares, so each counts its share, not the whole
/// buffer (which would count one input batch once per chunk).
pub(crate) fn bytes_of(batches: &[RecordBatch]) -> usize {
    batches
        .iter()
        .flat_map(RecordBatch::columns)
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(max_rows: usize, calls_per_row: usize) -> Window {
        Window {
            chunk_size: 100,
            counted: None,
            by_bytes: true,
            max_chunks: usize::MAX,
            max_rows,
            calls_per_row,
            max_bytes: usize::MAX,
            batch_size: 8192,
            permits: None,
        }
    }

    #[test]
    fn finished_rows_count_apart_up_to_a_bound() {
        let w = window(100, 2);
        assert!(w.rows_room(99, 0));
        assert!(!w.rows_room(100, 0));
        // two calls per row: 1 ended call finishes no row
        assert!(!w.rows_room(100, 1));
        assert!(w.rows_room(100, 2));
        // 700 of 750 rows finished: 50 unfinished
        assert!(w.rows_room(750, 1400));
        // but never more than 8 × max_rows admitted
        assert!(!w.rows_room(800, 1600));
        // calls that report nothing: every admitted row is unfinished
        assert!(!window(100, 0).rows_room(100, 1000));
    }
}
