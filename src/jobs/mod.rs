//! Async actions: several queries of one session at once, each a job with a
//! handle, progress and cancel, sharing the in-flight budget fairly.
//!
//! * [`DataFrameAsyncExt`] (`collect_async`, `count_async`, `write_noop_async`,
//!   `write_csv_async`, `write_json_async`, `write_table_async`, and
//!   `run_async` for any other action) and [`SessionAsyncExt::sql_async`] start a
//!   query in a tokio task and return a [`QueryHandle`] at once; awaiting it gives
//!   the result.
//! * Every query — submitted or not — is a flow of the session's budget (see
//!   `async_udf.fair_share` and `async_udf.weight`): when the budget is full,
//!   freed slots go to the query holding the fewest per unit of weight.
//! * [`AsyncRuntime::jobs`](crate::AsyncRuntime::jobs) lists the running jobs.

mod ext;
mod handle;
mod registry;

pub use ext::{DataFrameAsyncExt, SessionAsyncExt};
pub use handle::{Job, JobState, Progress, QueryHandle};
pub(crate) use registry::{Queries, QueryTag};
