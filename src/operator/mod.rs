//! The pipelined async operator.
//!
//! DataFusion plans async column functions (`http_get`, typed [`AsyncFn`]s) into
//! `AsyncFuncExec`, which takes one batch at a time and awaits it whole: the next
//! batch starts only when the slowest call of this one has answered. With
//! heavy-tailed latency most of the budget then sits idle behind stragglers.
//!
//! An analyzer rule ([`lift`]) moves every async call written in a query into an
//! `AsyncCalls` logical node of its own, before the optimizer can copy it, so each
//! call runs exactly once per row. Our physical planner ([`planner`]) plans that
//! node into [`AsyncPipelineExec`] when every call in it belongs to this crate,
//! and into DataFusion's `AsyncFuncExec` otherwise (other async UDFs were not
//! written for concurrent chunks) or when `async_udf.pipelined` is off.
//!
//! Per partition, the operator runs the engine's [pipeline](crate::engine::pipeline):
//! input batches are cut into chunks of `async_udf.chunk_size` rows; chunks are
//! admitted while fewer than `async_udf.window_rows` admitted rows are unfinished
//! (finished rows waiting for an earlier one count apart, bounded in bytes and
//! by 8 × `window_rows`), and their rows take slots of the session's budget
//! (`async_udf.max_in_flight`, shared by all partitions and queries) as soon as
//! slots free, whatever batch they came from, older chunks first. Output batches (one per chunk) leave
//! in input order as soon as their rows are done. Input is pulled only when the
//! window has room, so memory is bounded and a satisfied `LIMIT` stops admission.
//!
//! **Fan-out.** With `async_udf.fan_out = true`, the operator tells DataFusion it
//! benefits from input partitioning: a single-partition input (a CSV file,
//! `generate_series`) larger than `datafusion.execution.batch_size` rows is then
//! spread round-robin over `datafusion.execution.target_partitions`, and the CPU
//! work on the results above the operator (JSON parsing, casts) runs on every
//! core. The calls do not need it (one partition can fill the whole budget), and
//! row order then no longer follows the input, so it is off by default. When off,
//! a second rule ([`KeepOrderRule`], after `EnsureRequirements`) also removes the
//! round-robin repartition DataFusion would put right above the operator, so the
//! rows of a single-partition input come out in input order.
//!
//! **Only the rows that need a call** ([`guard`]): a call under a CASE branch,
//! a later COALESCE argument, the right side of AND/OR or an aggregate's FILTER
//! keeps its guard in the node; planning folds it into the function's key
//! argument (an HTTP function's url, a typed function's argument), NULL for
//! the rows it skips, so nothing is sent for them ([`call`]). The pipelined
//! operator counts them: `rows_skipped` in `EXPLAIN ANALYZE`.
//!
//! **Where calls may stand.** Anywhere an expression may: lifting the call below
//! the node that reads it also lets nested calls `f(g(x))`, ORDER BY, GROUP BY,
//! window and join expressions call async functions (see [`lift`]).
//!
//! **Metrics** (`EXPLAIN ANALYZE`): `calls`, `rows_skipped`, `retries`, `http_429`, `errors`,
//! `errors_by_kind`, `in_flight` (peak, time-weighted mean, share of the budget),
//! `latency` (p50/p90/p99 per call, retries included), `rate_limit_wait`, and
//! `output_rows`.
//!
//! [`AsyncFn`]: crate::AsyncFn

pub(crate) mod call;
mod copies;
pub(crate) mod display;
pub(crate) mod exec;
pub(crate) mod guard;
pub(crate) mod lift;
pub(crate) mod node;
pub(crate) mod planner;
mod rule;
pub(crate) mod shared;

pub use rule::KeepOrderRule;
