//! A submitted query: its handle, its progress, cancelling it.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use datafusion::common::{DataFusionError, Result};
use parking_lot::Mutex;
use tokio::task::{AbortHandle, JoinHandle};

use crate::engine::Flow;

/// Where a submitted query is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Still running.
    Running,
    /// Finished with a result.
    Done,
    /// Finished with this error.
    Failed(String),
    /// Stopped by [`Job::cancel`].
    Cancelled,
}

/// What a query's calls have done so far.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Progress {
    /// Calls (rows of per-row functions, chunks of per-chunk functions and
    /// `map_in_batches`) finished, with or without an error.
    pub calls_done: usize,
    /// Calls running now.
    pub in_flight: usize,
    /// Most calls running at once so far.
    pub peak_in_flight: usize,
    /// Calls or rows that ended in an error.
    pub errors: usize,
    /// Attempts beyond the first.
    pub retries: usize,
    /// Rows out of the query's async operators so far.
    pub rows: usize,
    /// Since the query was submitted (until it ended, once it has).
    pub elapsed: Duration,
}

/// A submitted query, as the session lists it: id, what it runs, progress,
/// cancel. Cheap to clone; see [`QueryHandle`] for its result.
#[derive(Clone)]
pub struct Job {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    summary: String,
    flow: Arc<Flow>,
    started: Instant,
    ended: Mutex<Option<(Instant, JobState)>>,
    abort: OnceLock<AbortHandle>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id())
            .field("summary", &self.summary())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Job {
    pub(crate) fn new(summary: String, flow: Arc<Flow>) -> Self {
        Self {
            inner: Arc::new(Inner {
                id: flow.id(),
                summary,
                flow,
                started: Instant::now(),
                ended: Mutex::new(None),
                abort: OnceLock::new(),
            }),
        }
    }

    /// A number no other job of this process has.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The SQL text, or the root of the DataFrame's plan.
    pub fn summary(&self) -> &str {
        &self.inner.summary
    }

    /// Its weight in the fair share of the budget (`async_udf.weight`).
    pub fn weight(&self) -> u32 {
        self.inner.flow.weight()
    }

    /// Running, or how it ended.
    pub fn state(&self) -> JobState {
        self.inner
            .ended
            .lock()
            .as_ref()
            .map_or(JobState::Running, |(_, s)| s.clone())
    }

    /// What its calls have done so far.
    pub fn progress(&self) -> Progress {
        let stats = self.inner.flow.stats();
        let end = self.inner.ended.lock().as_ref().map(|(t, _)| *t);
        let flight = stats.in_flight();
        Progress {
            calls_done: stats.done.value(),
            in_flight: flight.now,
            peak_in_flight: flight.peak,
            errors: stats.errors.value(),
            retries: stats.retries.value(),
            rows: stats.rows.value(),
            elapsed: end.unwrap_or_else(Instant::now) - self.inner.started,
        }
    }

    /// Stops the query: its calls in flight are dropped (their connections
    /// closed) and no more start. Awaiting its handle then gives an error saying
    /// it was cancelled. Nothing happens if it has already ended.
    pub fn cancel(&self) {
        if self.end(JobState::Cancelled)
            && let Some(abort) = self.inner.abort.get()
        {
            abort.abort();
        }
    }

    /// Records how the job ended, unless it already had; whether this did.
    pub(crate) fn end(&self, state: JobState) -> bool {
        let mut ended = self.inner.ended.lock();
        if ended.is_some() {
            return false;
        }
        *ended = Some((Instant::now(), state));
        true
    }

    pub(crate) fn set_abort(&self, abort: AbortHandle) {
        let _ = self.inner.abort.set(abort);
    }

    fn cancelled(&self) -> DataFusionError {
        DataFusionError::Execution(format!(
            "job {} was cancelled: {}",
            self.id(),
            self.summary()
        ))
    }
}

/// A query submitted with one of the `…_async` functions: running already.
///
/// Await it (`handle.await`) for the result. Until then, [`progress`],
/// [`cancel`] and the rest of its [`Job`] are at hand. **Dropping the handle
/// does not stop the query** (like a tokio `JoinHandle`): it runs on, listed by
/// [`AsyncRuntime::jobs`](crate::AsyncRuntime::jobs) where it can still be
/// watched and cancelled, and its result is dropped when it ends.
///
/// [`progress`]: QueryHandle::progress
/// [`cancel`]: QueryHandle::cancel
#[derive(Debug)]
pub struct QueryHandle<T> {
    job: Job,
    task: JoinHandle<Result<T>>,
}

impl<T> QueryHandle<T> {
    pub(crate) fn new(job: Job, task: JoinHandle<Result<T>>) -> Self {
        job.set_abort(task.abort_handle());
        Self { job, task }
    }

    /// The job: id, summary, state, progress, cancel (clone it to keep it).
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// See [`Job::id`].
    pub fn id(&self) -> u64 {
        self.job.id()
    }

    /// See [`Job::progress`].
    pub fn progress(&self) -> Progress {
        self.job.progress()
    }

    /// See [`Job::cancel`].
    pub fn cancel(&self) {
        self.job.cancel();
    }
}

impl<T: Send + 'static> IntoFuture for QueryHandle<T> {
    type Output = Result<T>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            match self.task.await {
                Ok(result) => result,
                Err(e) if e.is_cancelled() => Err(self.job.cancelled()),
                Err(e) => Err(DataFusionError::ExecutionJoin(Box::new(e))),
            }
        })
    }
}
