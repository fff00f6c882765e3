//! Splitting a batch into chunks of rows.

use std::ops::Range;

/// Splits `0..rows` into consecutive ranges of at most `size` rows (`size` ≥ 1).
pub fn chunk_ranges(rows: usize, size: usize) -> impl Iterator<Item = Range<usize>> {
    let size = size.max(1);
    (0..rows)
        .step_by(size)
        .map(move |start| start..(start + size).min(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_all_rows_in_order() {
        let r: Vec<_> = chunk_ranges(7, 3).collect();
        assert_eq!(r, vec![0..3, 3..6, 6..7]);
        assert_eq!(chunk_ranges(0, 3).count(), 0);
        assert_eq!(chunk_ranges(2, 0).collect::<Vec<_>>(), vec![0..1, 1..2]);
    }
}
