//! Splitting input into chunks of rows.
//!
//! [`chunk_ranges`] splits a list of items (a typed function's rows outside the
//! pipelined operator); [`Cutter`] cuts a partition's batches as the pipeline
//! admits chunks, counting only the rows a function is called with.

use std::collections::VecDeque;
use std::ops::Range;

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::common::Result;

/// Splits `0..rows` into consecutive ranges of at most `size` rows (`size` ≥ 1).
pub fn chunk_ranges(rows: usize, size: usize) -> impl Iterator<Item = Range<usize>> {
    let size = size.max(1);
    (0..rows)
        .step_by(size)
        .map(move |start| start..(start + size).min(rows))
}

/// Which rows of a batch count toward `chunk_size` (the others ride along): the
/// rows a per-chunk function is actually called with.
#[derive(Clone)]
pub struct Counted(pub Arc<CountRows>);

/// Marks the rows of a batch that count.
pub type CountRows = dyn Fn(&RecordBatch) -> Result<Vec<bool>> + Send + Sync;

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counted")
    }
}

/// An input batch waiting to be cut, from `offset` on.
struct Waiting {
    batch: RecordBatch,
    /// Rows that count toward a chunk's size (`None`: every row).
    counted: Option<Vec<bool>>,
    offset: usize,
}

impl Waiting {
    fn counts(&self, row: usize) -> bool {
        self.counted.as_ref().is_none_or(|c| c[row])
    }
}

/// A partition's input batches, cut into chunks when they are admitted (so the
/// size of each chunk can follow what earlier chunks held).
///
/// A chunk holds up to `size` counted rows and never crosses a batch boundary;
/// uncounted rows (NULL arguments of a per-chunk function) ride along with the
/// counted rows before them, so no chunk is cut that holds none unless a whole
/// batch has none.
#[derive(Default)]
pub(crate) struct Cutter {
    queue: VecDeque<Waiting>,
}

impl Cutter {
    /// Queues `batch` (empty batches are dropped).
    pub(crate) fn push(&mut self, batch: RecordBatch, counted: Option<Vec<bool>>) {
        if batch.num_rows() > 0 {
            self.queue.push_back(Waiting {
                batch,
                counted,
                offset: 0,
            });
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The next chunk of up to `size` (≥ 1) counted rows, in input order.
    pub(crate) fn cut(&mut self, size: usize) -> Option<RecordBatch> {
        let size = size.max(1);
        let next = self.queue.front_mut()?;
        let rows = next.batch.num_rows();
        let (mut end, mut n) = (next.offset, 0);
        while end < rows && n < size {
            n += usize::from(next.counts(end));
            end += 1;
        }
        // the uncounted rows that follow belong to this chunk too
        while end < rows && !next.counts(end) {
            end += 1;
        }
        let chunk = next.batch.slice(next.offset, end - next.offset);
        next.offset = end;
        if end == rows {
            self.queue.pop_front();
        }
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int32Array};

    use super::*;

    #[test]
    fn ranges_cover_all_rows_in_order() {
        let r: Vec<_> = chunk_ranges(7, 3).collect();
        assert_eq!(r, vec![0..3, 3..6, 6..7]);
        assert_eq!(chunk_ranges(0, 3).count(), 0);
        assert_eq!(chunk_ranges(2, 0).collect::<Vec<_>>(), vec![0..1, 1..2]);
    }

    fn batch(rows: i32) -> RecordBatch {
        let a: ArrayRef = Arc::new(Int32Array::from_iter_values(0..rows));
        RecordBatch::try_from_iter([("a", a)]).unwrap()
    }

    fn firsts(chunks: &[RecordBatch]) -> Vec<(i32, usize)> {
        chunks
            .iter()
            .map(|c| {
                let a = c.column(0).as_any().downcast_ref::<Int32Array>().unwrap();
                (a.value(0), c.num_rows())
            })
            .collect()
    }

    #[test]
    fn cuts_within_batches_at_any_size() {
        let mut cutter = Cutter::default();
        cutter.push(batch(5), None);
        cutter.push(batch(0), None);
        cutter.push(batch(2), None);
        let mut chunks = Vec::new();
        for size in [2, 2, 2, 0, 9] {
            chunks.extend(cutter.cut(size));
        }
        assert_eq!(firsts(&chunks), [(0, 2), (2, 2), (4, 1), (0, 1), (1, 1)]);
        assert!(cutter.is_empty());
        assert!(cutter.cut(3).is_none());
    }

    #[test]
    fn uncounted_rows_ride_along() {
        let mut cutter = Cutter::default();
        let counted = [false, true, true, false, false, true, false];
        cutter.push(batch(7), Some(counted.to_vec()));
        cutter.push(batch(2), Some(vec![false, false]));
        let chunks: Vec<_> = std::iter::from_fn(|| cutter.cut(2)).collect();
        // [N C C N N] [C N], then a batch with nothing counted goes whole
        assert_eq!(firsts(&chunks), [(0, 5), (5, 2), (0, 2)]);
    }
}
