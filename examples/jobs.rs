//! Several queries at once: a long ingestion submitted as a job, a small lookup
//! next to it with its fair share of the budget, progress, cancel.
//!
//! ```text
//! cargo run --all-features --example jobs
//! ```

use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::Result;
use datafusion::prelude::*;
use datafusion_async_udf::mock::{MockApi, MockConfig};
use datafusion_async_udf::{AsyncRuntime, DataFrameAsyncExt, SessionAsyncExt, register_all};

#[tokio::main]
async fn main() -> Result<()> {
    let api = MockApi::start(MockConfig::with_latency(Duration::from_millis(100))).await?;
    let search = api.url("/v1/images/search");
    let ctx = SessionContext::new();
    register_all(&ctx)?;
    ctx.sql("SET async_udf.max_in_flight = 64").await?;

    // A long job: 1,000,000 calls into the NOOP sink, in the background.
    let ingest = ctx
        .sql(&format!(
            "SELECT http_get('{search}?id=' || value) AS r FROM generate_series(1, 1000000)"
        ))
        .await?
        .write_noop_async()?;

    // A small lookup submitted after it gets half the budget (the fair share)
    // at once instead of waiting behind a million calls.
    let lookup = ctx
        .sql_async(&format!(
            "SELECT value, http_get('{search}?id=' || value)['status'] AS status \
             FROM generate_series(1, 50) ORDER BY value"
        ))
        .await?;
    let p = lookup.progress();
    println!(
        "lookup job {}: {} calls done, {} in flight",
        lookup.id(),
        p.calls_done,
        p.in_flight
    );
    let rows: usize = lookup.await?.iter().map(RecordBatch::num_rows).sum();
    println!("lookup: {rows} rows");

    // The session lists its running jobs; each one can be watched and cancelled.
    for job in AsyncRuntime::of(&ctx)?.jobs() {
        let p = job.progress();
        println!(
            "job {} ({:?}): {} calls done, {} in flight, {:.1} s: {}",
            job.id(),
            job.state(),
            p.calls_done,
            p.in_flight,
            p.elapsed.as_secs_f64(),
            job.summary()
        );
    }
    ingest.cancel();
    let stopped = ingest.await.unwrap_err();
    println!("{stopped}");
    Ok(())
}
