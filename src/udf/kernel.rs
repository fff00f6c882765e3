//! The two ways a typed function is called: per row or per chunk of rows. Both run
//! on the engine and only differ in what one call gets.

use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use async_trait::async_trait;
use datafusion::common::{Result, exec_err};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::convert::{from_array, to_array};
use super::error::verdict;
use crate::config::OnError;
use crate::engine::{
    ChunkContext, RetryPolicy, Slots, chunk_ranges, current_chunk, map_ordered, metrics, retry,
};

/// One evaluation: the session's budget and settings, and where the rows sit in
/// the batch (for error messages).
pub(crate) struct Run<'a> {
    pub name: &'a str,
    pub slots: Arc<Slots>,
    pub chunk_size: usize,
    pub on_error: OnError,
    /// Batch row of each input row (the input holds only non-NULL rows).
    pub positions: &'a [usize],
    /// Retries of calls failing with a transient `CallError`.
    pub retry: RetryPolicy,
    /// The declared output type (traced, or given with `AsyncFn::returns`).
    pub output: &'a DataType,
    /// Where the batch's first row sits in its partition, when known.
    pub partition_offset: Option<usize>,
}

impl Run<'_> {
    /// Under `'row'` a failure becomes that row's error; under `'fail'` the query's,
    /// naming the row (`first_row` indexes the non-NULL input rows).
    fn failure(&self, first_row: usize, what: &str, error: impl Display) -> Result<String> {
        metrics::failed("call");
        match self.on_error {
            OnError::Row => Ok(error.to_string()),
            OnError::Fail => {
                let row = self.positions.get(first_row).copied().unwrap_or(first_row);
                let place = match self.partition_offset {
                    Some(offset) => format!("row {} of the partition", offset + row),
                    None => format!("row {row} of the batch"),
                };
                exec_err!("{}: {what} ({place}) failed: {error}", self.name)
            }
        }
    }
}

/// Calls `attempt` until it succeeds, fails for good or the retries run out
/// (counted in the metrics); a final error says when retries ran out.
async fn with_retries<T, E, Fut>(
    policy: RetryPolicy,
    mut attempt: impl FnMut() -> Fut,
) -> std::result::Result<T, String>
where
    E: Display + 'static,
    Fut: Future<Output = std::result::Result<T, E>>,
{
    let done = retry(policy, |_, _| attempt(), verdict).await;
    metrics::retried(done.attempts as usize - 1);
    done.result.map_err(|e| match done.gave_up {
        Some(_) if done.attempts > 1 => format!("{e} (gave up after {} attempts)", done.attempts),
        _ => e.to_string(),
    })
}

/// Outputs for the input rows: values (NULL where a row failed) and each row's error.
pub(crate) struct Outputs {
    pub values: ArrayRef,
    pub errors: Vec<Option<String>>,
}

fn outputs<O: Serialize>(results: Vec<Result<O, String>>, output: &DataType) -> Result<Outputs> {
    let mut values = Vec::with_capacity(results.len());
    let mut errors = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(v) => {
                values.push(Some(v));
                errors.push(None);
            }
            Err(e) => {
                values.push(None);
                errors.push(Some(e));
            }
        }
    }
    Ok(Outputs {
        values: to_array(values, output)?,
        errors,
    })
}

/// A typed function with its Rust types erased.
#[async_trait]
pub(crate) trait Kernel: Send + Sync {
    async fn run(&self, rows: ArrayRef, run: Run<'_>) -> Result<Outputs>;

    /// Whether one call takes a chunk of rows.
    fn per_chunk(&self) -> bool {
        false
    }
}

/// `|row| async { … }`: one call per row.
pub(crate) struct RowKernel<I, O, F> {
    pub f: F,
    pub input: DataType,
    pub types: PhantomData<fn(I) -> O>,
}

#[async_trait]
impl<I, O, E, F, Fut> Kernel for RowKernel<I, O, F>
where
    I: DeserializeOwned + Clone + Send + Sync + 'static,
    O: Serialize + Send + 'static,
    E: Display + Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
{
    async fn run(&self, rows: ArrayRef, run: Run<'_>) -> Result<Outputs> {
        let inputs: Vec<I> = from_array(&rows, &self.input)?;
        let run = &run;
        let results = map_ordered(
            Arc::clone(&run.slots),
            inputs.into_iter().enumerate(),
            |(k, input)| async move {
                match with_retries(run.retry, || (self.f)(input.clone())).await {
                    Ok(out) => Ok(Ok(out)),
                    Err(e) => run.failure(k, "call", e).map(Err),
                }
            },
        )
        .await?;
        outputs(results, run.output)
    }
}

/// `|rows, context| async { … }`: one call per chunk of up to `chunk_size` rows,
/// returning one value per row.
pub(crate) struct ChunkKernel<I, O, F> {
    pub f: F,
    pub input: DataType,
    pub types: PhantomData<fn(I) -> O>,
}

/// Moves `items` into chunks of `size`, each with its context and the index of
/// its first item. Within the pipelined operator the items are one of its chunks
/// and keep its context. No chunk is empty.
fn into_chunks<I>(items: Vec<I>, size: usize) -> Vec<(ChunkContext, usize, Vec<I>)> {
    if items.is_empty() {
        return Vec::new();
    }
    if let Some(cx) = current_chunk().filter(|_| items.len() <= size) {
        return vec![(cx, 0, items)];
    }
    let ranges: Vec<_> = chunk_ranges(items.len(), size).collect();
    let mut items = items.into_iter();
    ranges
        .into_iter()
        .enumerate()
        .map(|(chunk_index, rows)| {
            let chunk = items.by_ref().take(rows.len()).collect();
            let start = rows.start;
            let cx = ChunkContext {
                partition_index: None,
                chunk_index,
                rows,
            };
            (cx, start, chunk)
        })
        .collect()
}

#[async_trait]
impl<I, O, E, F, Fut> Kernel for ChunkKernel<I, O, F>
where
    I: DeserializeOwned + Clone + Send + Sync + 'static,
    O: Serialize + Send + 'static,
    E: Display + Send + 'static,
    F: Fn(Vec<I>, ChunkContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<O>, E>> + Send + 'static,
{
    fn per_chunk(&self) -> bool {
        true
    }

    async fn run(&self, rows: ArrayRef, run: Run<'_>) -> Result<Outputs> {
        let inputs: Vec<I> = from_array(&rows, &self.input)?;
        let run = &run;
        let chunks = into_chunks(inputs, run.chunk_size);
        let results = map_ordered(Arc::clone(&run.slots), chunks, |(cx, start, chunk)| {
            let n = chunk.len();
            async move {
                let what = format!("chunk {} (rows {:?})", cx.chunk_index, cx.rows);
                match with_retries(run.retry, || (self.f)(chunk.clone(), cx.clone())).await {
                    Ok(out) if out.len() == n => Ok(out.into_iter().map(Ok).collect::<Vec<_>>()),
                    Ok(out) => exec_err!(
                        "{}: {what} returned {} values for {n} rows; a chunk function must return one value per row",
                        run.name,
                        out.len()
                    ),
                    Err(e) => {
                        let msg = run.failure(start, &what, e)?;
                        Ok((0..n).map(|_| Err(msg.clone())).collect())
                    }
                }
            }
        })
        .await?;
        outputs(results.into_iter().flatten().collect(), run.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_order_and_ranges() {
        let chunks = into_chunks((0..7).collect(), 3);
        let shapes: Vec<_> = chunks
            .iter()
            .map(|(cx, _, c)| (cx.chunk_index, cx.rows.clone(), c.clone()))
            .collect();
        assert_eq!(
            shapes,
            vec![
                (0, 0..3, vec![0, 1, 2]),
                (1, 3..6, vec![3, 4, 5]),
                (2, 6..7, vec![6])
            ]
        );
        assert!(
            into_chunks(Vec::<u8>::new(), 3).is_empty(),
            "no empty chunk"
        );
    }
}
