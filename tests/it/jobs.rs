//! Async actions: jobs submitted with handles, their progress and cancel, and
//! the fair share of the budget between queries running at once.

use std::time::{Duration, Instant};

use datafusion::common::Result;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::SessionContext;
use datafusion_async_udf::jobs::{Job, JobState, QueryHandle};
use datafusion_async_udf::mock::MockApi;
use datafusion_async_udf::{AsyncRuntime, DataFrameAsyncExt, SessionAsyncExt};

use crate::common::{context, count, mock, run, until};

const BUDGET: usize = 16;

/// A job of 100,000 calls, once it holds the whole budget.
async fn big_job(
    ctx: &SessionContext,
    api: &MockApi,
) -> Result<QueryHandle<Vec<arrow::array::RecordBatch>>> {
    let big = ctx.sql_async(&calls(api, "big", 100_000)).await?;
    until(
        Duration::from_secs(10),
        "the big job to fill the budget",
        || big.progress().in_flight == BUDGET,
    )
    .await;
    Ok(big)
}

async fn session() -> SessionContext {
    let ctx = context();
    run(&ctx, &format!("SET async_udf.max_in_flight = {BUDGET}"))
        .await
        .unwrap();
    ctx
}

/// `rows` calls to the mock, ids `{tag}-1` … `{tag}-{rows}`, counted.
fn calls(api: &MockApi, tag: &str, rows: usize) -> String {
    format!(
        "SELECT count(*) AS n FROM generate_series(1, {rows}) \
         WHERE http_get('{}?id={tag}-' || value)['status'] = 200",
        api.url("/v1/images/search")
    )
}

fn running_ids(ctx: &SessionContext) -> Vec<u64> {
    AsyncRuntime::of(ctx)
        .unwrap()
        .jobs()
        .iter()
        .map(Job::id)
        .collect()
}

fn requests_for(api: &MockApi, tag: &str) -> Vec<u64> {
    let mut by_id: Vec<_> = api
        .requests_by_id()
        .into_iter()
        .filter(|(id, _)| id.starts_with(&format!("{tag}-")))
        .map(|(_, n)| n)
        .collect();
    by_id.sort_unstable();
    by_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_small_job_gets_its_share_next_to_a_big_one() -> Result<()> {
    let api = mock(40).await;
    let ctx = session().await;
    let big = big_job(&ctx, &api).await?;
    // rows kept by a call's answer, counted
    let small = ctx
        .sql(&format!(
            "SELECT value FROM generate_series(1, 48) \
             WHERE http_get('{}?id=small-' || value)['status'] = 200",
            api.url("/v1/images/search")
        ))
        .await?
        .count_async()?;
    assert_eq!(running_ids(&ctx), [big.id(), small.id()]);
    let small_job = small.job().clone();
    assert_eq!(small.await?, 48);
    let p = small_job.progress();
    assert_eq!(small_job.state(), JobState::Done);
    assert_eq!((p.calls_done, p.errors, p.in_flight), (48, 0, 0));
    // every freed slot went to the small job until it held its half
    assert!(p.peak_in_flight >= BUDGET / 2, "{p:?}");
    assert_eq!(requests_for(&api, "small"), vec![1; 48]);
    // work-conserving: the big job takes the whole budget back
    until(
        Duration::from_secs(10),
        "the big job to refill the budget",
        || big.progress().in_flight == BUDGET,
    )
    .await;
    assert!(api.stats().peak_in_flight <= BUDGET as u64);
    big.cancel();
    assert!(big.await.unwrap_err().to_string().contains("was cancelled"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn weights_divide_the_budget() -> Result<()> {
    let api = mock(40).await;
    let ctx = session().await;
    let big = big_job(&ctx, &api).await?;
    run(&ctx, "SET async_udf.weight = 3").await?;
    let heavy = ctx.sql_async(&calls(&api, "heavy", 200)).await?;
    assert_eq!(heavy.job().weight(), 3);
    let heavy_job = heavy.job().clone();
    assert_eq!(heavy.await?.len(), 1);
    // 3 : 1 → 12 of 16 slots
    let peak = heavy_job.progress().peak_in_flight;
    assert!(peak >= BUDGET * 3 / 4, "peak {peak}");
    assert!(api.stats().peak_in_flight <= BUDGET as u64);
    big.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_stops_every_call_at_once() -> Result<()> {
    let api = mock(2_000).await;
    let ctx = session().await;
    let job = ctx.sql_async(&calls(&api, "c", 10_000)).await?;
    until(Duration::from_secs(10), "the budget to fill", || {
        api.stats().in_flight == BUDGET as u64
    })
    .await;
    let asked = Instant::now();
    job.cancel();
    until(Duration::from_secs(5), "the mock to see no call", || {
        api.stats().in_flight == 0
    })
    .await;
    let stopped = asked.elapsed();
    assert!(stopped < Duration::from_millis(100), "{stopped:?}");
    assert_eq!(job.job().state(), JobState::Cancelled);
    assert!(running_ids(&ctx).is_empty());
    let err = job.await.unwrap_err().to_string();
    assert!(
        err.contains("was cancelled") && err.contains("generate_series"),
        "{err}"
    );
    // no call started after the cancel
    let requests = api.stats().requests;
    tokio::task::yield_now().await;
    assert_eq!(api.stats().requests, requests);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_handle_runs_on_and_stays_listed() -> Result<()> {
    let api = mock(50).await;
    let ctx = session().await;
    let df = ctx.sql(&calls(&api, "d", 64)).await?;
    let handle = df.collect_async()?;
    let job = handle.job().clone();
    drop(handle);
    assert_eq!(running_ids(&ctx), [job.id()]);
    until(Duration::from_secs(10), "the job to end", || {
        job.state() != JobState::Running
    })
    .await;
    assert_eq!(job.state(), JobState::Done);
    assert!(running_ids(&ctx).is_empty());
    let p = job.progress();
    assert_eq!((p.calls_done, p.rows), (64, 64));
    assert_eq!(requests_for(&api, "d"), vec![1; 64]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_and_plan_errors() -> Result<()> {
    let api = mock(5).await;
    let ctx = session().await;
    let url = api.url("/v1/images/search");
    let df = ctx
        .sql(&format!(
            "SELECT http_get('{url}?id=w-' || value)['status'] AS s FROM generate_series(1, 30)"
        ))
        .await?;
    assert_eq!(df.clone().write_noop_async()?.await?, 30);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let written = df
        .write_csv_async(path.to_str().unwrap(), DataFrameWriteOptions::new(), None)?
        .await?;
    assert_eq!(written.len(), 1);
    assert_eq!(std::fs::read_to_string(&path)?.lines().count(), 31);
    // a bad query fails when submitted, naming what is wrong
    let err = ctx.sql_async("SELECT nope()").await.unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    // a query failing while it runs: the job says so
    run(&ctx, "SET async_udf.on_error = 'fail'").await?;
    let failing = ctx
        .sql_async("SELECT http_get('http://127.0.0.1:1/')['status']")
        .await?;
    let job = failing.job().clone();
    assert!(failing.await.is_err());
    assert!(matches!(job.state(), JobState::Failed(e) if e.contains("http_get")));
    assert_eq!(count(&ctx, &calls(&api, "after", 3)).await, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn map_in_batches_shares_the_budget_too() -> Result<()> {
    let api = mock(40).await;
    let ctx = session().await;
    run(&ctx, "SET async_udf.chunk_size = 1").await?;
    let batch = |rows: usize| {
        format!(
            "SELECT count(*) FROM map_in_batches('post_json', \
             (SELECT value FROM generate_series(1, {rows})), '{}') WHERE status = 200",
            api.url("/v1/batch")
        )
    };
    // the big job's calls wait for slots in many places at once (one per chunk
    // being admitted), the small one's in one (a chunk at a time): first come,
    // first served would give it a slot now and then
    let big = big_job(&ctx, &api).await?;
    let small = ctx.sql_async(&batch(40)).await?;
    let small_job = small.job().clone();
    small.await?;
    let p = small_job.progress();
    assert_eq!((p.calls_done, p.errors), (40, 0));
    assert!(p.peak_in_flight >= BUDGET / 2, "{p:?}");
    assert!(api.stats().peak_in_flight <= BUDGET as u64);
    big.cancel();
    Ok(())
}
