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
use crate::engine::journal::{Answer, Fingerprint, Key, Mode, Once, RowCodec, each_once};
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
    /// The input type (the function's argument, cast).
    pub input_type: &'a DataType,
    /// The declared output type (traced, or given with `AsyncFn::returns`).
    pub output: &'a DataType,
    /// Where the batch's first row sits in its partition, when known.
    pub partition_offset: Option<usize>,
    /// The journal, identical calls in flight, the query's occurrences.
    pub once: Once<'a>,
    /// Declared pure: identical calls share one answer.
    pub pure: bool,
}

impl Run<'_> {
    /// Whether calls are keyed: recorded in the journal, or merged.
    fn keyed(&self) -> bool {
        self.pure || self.once.journal.is_some()
    }

    fn mode(&self) -> Mode {
        if self.pure {
            Mode::Merge
        } else {
            Mode::Distinct
        }
    }

    /// The key of a call on `rows` (each one's bytes in Arrow's row format).
    fn fingerprint<'r>(&self, rows: impl Iterator<Item = &'r [u8]>) -> Key {
        let mut f = Fingerprint::new(self.name);
        f.part(format!("{}", self.input_type).as_bytes());
        f.part(format!("{}", self.output).as_bytes());
        for row in rows {
            f.part(row);
        }
        f.finish()
    }

    /// `values` as one answer: the rows of their output array.
    fn encode<O: Serialize>(&self, codec: &RowCodec, values: Vec<O>) -> Result<Answer> {
        let array = to_array(values.into_iter().map(Some).collect(), self.output)?;
        let rows = codec.rows(&array)?;
        Ok(Ok(RowCodec::encode(rows.iter().map(|r| r.data()))))
    }

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

/// Outputs from answers and the rows each holds (a failed one: that many
/// NULL rows with its error).
fn decoded(answers: &[(Answer, usize)], codec: &RowCodec) -> Result<Outputs> {
    let bytes: Vec<_> = answers
        .iter()
        .map(|(a, n)| (a.as_ref().ok().cloned(), *n))
        .collect();
    Ok(Outputs {
        values: codec.decode(&bytes)?,
        errors: answers
            .iter()
            .flat_map(|(a, n)| std::iter::repeat_n(a.as_ref().err().cloned(), *n))
            .collect(),
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
        let call = |k: usize, input: I| async move {
            match with_retries(run.retry, || (self.f)(input.clone())).await {
                Ok(out) => Ok(Ok(out)),
                Err(e) => run.failure(k, "call", e).map(Err),
            }
        };
        if !run.keyed() {
            let results = map_ordered(
                Arc::clone(&run.slots),
                inputs.into_iter().enumerate(),
                |(k, input)| call(k, input),
            )
            .await?;
            return outputs(results, run.output);
        }
        let codec = &RowCodec::new(run.output)?;
        let keyed = RowCodec::new(run.input_type)?.rows(&rows)?;
        let calls = inputs
            .into_iter()
            .enumerate()
            .map(|(k, input)| {
                let key = run.fingerprint(std::iter::once(keyed.row(k).data()));
                ((k, input), key, run.mode())
            })
            .collect();
        let answers = each_once(
            &run.once,
            run.name,
            Arc::clone(&run.slots),
            calls,
            |(k, input), _| async move {
                match call(k, input).await? {
                    Ok(out) => run.encode(codec, vec![out]),
                    Err(e) => Ok(Err(e)),
                }
            },
        )
        .await?;
        let answers: Vec<_> = answers.into_iter().map(|a| (a, 1)).collect();
        decoded(&answers, codec)
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
                idempotency_key: String::new(),
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
        let codec = &RowCodec::new(run.output)?;
        let keyed = RowCodec::new(run.input_type)?.rows(&rows)?;
        let sizes: Vec<usize> = chunks.iter().map(|(_, _, c)| c.len()).collect();
        let calls = chunks
            .into_iter()
            .map(|(cx, start, chunk)| {
                let rows = (start..start + chunk.len()).map(|k| keyed.row(k).data());
                let key = run.fingerprint(rows);
                ((cx, start, chunk), key, run.mode())
            })
            .collect();
        let answers = each_once(
            &run.once,
            run.name,
            Arc::clone(&run.slots),
            calls,
            |(cx, start, chunk), token| {
                let n = chunk.len();
                let cx = ChunkContext {
                    idempotency_key: token,
                    ..cx
                };
                async move {
                    let what = format!("chunk {} (rows {:?})", cx.chunk_index, cx.rows);
                    match with_retries(run.retry, || (self.f)(chunk.clone(), cx.clone())).await {
                        Ok(out) if out.len() == n => run.encode(codec, out),
                        Ok(out) => exec_err!(
                            "{}: {what} returned {} values for {n} rows; a chunk function must return one value per row",
                            run.name,
                            out.len()
                        ),
                        Err(e) => run.failure(start, &what, e).map(Err),
                    }
                }
            },
        )
        .await?;
        let answers: Vec<_> = answers.into_iter().zip(sizes).collect();
        decoded(&answers, codec)
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
