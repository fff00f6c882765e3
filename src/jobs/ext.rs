//! The `…_async` actions: submit a query, get its handle at once.

use std::future::Future;
use std::sync::Arc;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use datafusion::common::config::{CsvOptions, JsonOptions};
use datafusion::common::{DataFusionError, Result};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{DataFrame, SessionContext};

use super::{Job, JobState, QueryHandle, QueryTag};
use crate::AsyncRuntime;
use crate::noop::DataFrameNoopExt;

/// Longest summary kept of a query (characters).
const SUMMARY_CHARS: usize = 200;

/// DataFrame actions that return at once with a [`QueryHandle`], the query
/// running in the background as a job of its session (listed by
/// [`AsyncRuntime::jobs`], with its own fair share of the budget and its own
/// progress). Need a tokio runtime (they spawn a task on it).
pub trait DataFrameAsyncExt: Sized {
    /// Runs `action` on this DataFrame as a job: any DataFrame action
    /// (`write_parquet` where DataFusion has the feature, `show`, …). The named
    /// actions below use it.
    fn run_async<T, F, Fut>(self, action: F) -> Result<QueryHandle<T>>
    where
        T: Send + 'static,
        F: FnOnce(DataFrame) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static;

    /// [`DataFrame::collect`] as a job.
    fn collect_async(self) -> Result<QueryHandle<Vec<RecordBatch>>> {
        self.run_async(DataFrame::collect)
    }

    /// [`DataFrame::count`] as a job.
    fn count_async(self) -> Result<QueryHandle<usize>> {
        self.run_async(DataFrame::count)
    }

    /// [`DataFrameNoopExt::write_noop`] as a job: the whole query runs, the
    /// rows are counted and dropped.
    fn write_noop_async(self) -> Result<QueryHandle<u64>> {
        self.run_async(DataFrameNoopExt::write_noop)
    }

    /// [`DataFrame::write_csv`] as a job.
    fn write_csv_async(
        self,
        path: &str,
        options: DataFrameWriteOptions,
        writer_options: Option<CsvOptions>,
    ) -> Result<QueryHandle<Vec<RecordBatch>>> {
        let path = path.to_string();
        self.run_async(move |df| async move { df.write_csv(&path, options, writer_options).await })
    }

    /// [`DataFrame::write_json`] as a job.
    fn write_json_async(
        self,
        path: &str,
        options: DataFrameWriteOptions,
        writer_options: Option<JsonOptions>,
    ) -> Result<QueryHandle<Vec<RecordBatch>>> {
        let path = path.to_string();
        self.run_async(move |df| async move { df.write_json(&path, options, writer_options).await })
    }

    /// [`DataFrame::write_table`] as a job (`INSERT INTO` a registered table).
    fn write_table_async(
        self,
        table_name: &str,
        options: DataFrameWriteOptions,
    ) -> Result<QueryHandle<Vec<RecordBatch>>> {
        let table = table_name.to_string();
        self.run_async(move |df| async move { df.write_table(&table, options).await })
    }
}

impl DataFrameAsyncExt for DataFrame {
    fn run_async<T, F, Fut>(self, action: F) -> Result<QueryHandle<T>>
    where
        T: Send + 'static,
        F: FnOnce(DataFrame) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let summary = self.logical_plan().display().to_string();
        submit(self, &summary, action)
    }
}

/// SQL text submitted as a job.
#[async_trait]
pub trait SessionAsyncExt {
    /// Plans `sql` (a plan error is returned here) and runs it as a job that
    /// collects its rows: `ctx.sql(sql).await?.collect_async()`, with the SQL
    /// text as the job's summary. Statements such as `SET` or `CREATE` take
    /// effect when planned, as with `ctx.sql`.
    async fn sql_async(&self, sql: &str) -> Result<QueryHandle<Vec<RecordBatch>>>;
}

#[async_trait]
impl SessionAsyncExt for SessionContext {
    async fn sql_async(&self, sql: &str) -> Result<QueryHandle<Vec<RecordBatch>>> {
        let df = self.sql(sql).await?;
        submit(df, sql, DataFrame::collect)
    }
}

/// Marks `df`'s session config as a new query, and spawns `action` on it.
fn submit<T, F, Fut>(df: DataFrame, summary: &str, action: F) -> Result<QueryHandle<T>>
where
    T: Send + 'static,
    F: FnOnce(DataFrame) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let tokio = tokio::runtime::Handle::try_current().map_err(|_| {
        DataFusionError::Execution(
            "…_async: needs a tokio runtime to run the query on (call it from async code)".into(),
        )
    })?;
    let (mut state, plan) = df.into_parts();
    let runtime = AsyncRuntime::from_config(state.config())?;
    let flow = QueryTag::mark(state.config_mut());
    let summary: String = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    let summary = match summary.char_indices().nth(SUMMARY_CHARS) {
        Some((at, _)) => format!("{}…", &summary[..at]),
        None => summary,
    };
    let job = Job::new(summary, flow);
    let run = action(DataFrame::new(state, plan));
    runtime.queries().started(&job);
    let mut ended = Ended {
        job: job.clone(),
        runtime,
        state: JobState::Cancelled,
    };
    let task = tokio.spawn(async move {
        let result = run.await;
        ended.state = match &result {
            Ok(_) => JobState::Done,
            Err(e) => JobState::Failed(e.to_string()),
        };
        drop(ended);
        result
    });
    Ok(QueryHandle::new(job, task))
}

/// Records the end of a job however its task ends (dropped when aborted).
struct Ended {
    job: Job,
    runtime: Arc<AsyncRuntime>,
    state: JobState,
}

impl Drop for Ended {
    fn drop(&mut self) {
        self.job
            .end(std::mem::replace(&mut self.state, JobState::Running));
        self.runtime.queries().ended(self.job.id());
    }
}
