//! The in-flight budget, seen from the mock server: how many calls are in flight at
//! once, shared by all partitions, changed by SET, stopped by cancellation.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::ExecutionPlanProperties;
use datafusion::prelude::SessionConfig;
use datafusion_async_udf::DataFrameNoopExt;

use common::{context, context_with, count, mock, run};

/// `COPY` of one http_get per row of generate_series(1, n) to the noop sink.
fn copy_series(url: &str, n: usize) -> String {
    format!(
        "COPY (SELECT http_get('{url}?id=' || value) AS r FROM generate_series(1, {n})) \
         TO 'x' STORED AS NOOP"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_partition_reaches_the_budget() {
    let api = mock(150).await;
    let ctx = context();
    run(&ctx, "SET async_udf.max_in_flight = 64").await.unwrap();
    let rows = count(&ctx, &copy_series(&api.url("/v1/images/search"), 1000)).await;
    assert_eq!(rows, 1000);
    let stats = api.stats();
    assert_eq!(stats.requests, 1000);
    assert_eq!(stats.completed, 1000);
    assert_eq!(stats.peak_in_flight, 64, "peak == min(max_in_flight, N)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_rows_than_budget_all_fly_at_once() {
    let api = mock(200).await;
    let ctx = context();
    let rows = count(&ctx, &copy_series(&api.url("/v1/images/search"), 20)).await;
    assert_eq!(rows, 20);
    assert_eq!(api.stats().peak_in_flight, 20, "peak == min(64, 20)");
}

fn partitioned_table(partitions: usize, rows_each: i64) -> MemTable {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let parts = (0..partitions as i64)
        .map(|p| {
            let ids = Int64Array::from_iter_values(p * rows_each..(p + 1) * rows_each);
            vec![RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(ids)]).unwrap()]
        })
        .collect();
    MemTable::try_new(schema, parts).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_is_shared_by_all_partitions() {
    let api = mock(100).await;
    let ctx = context_with(SessionConfig::new().with_target_partitions(4));
    ctx.register_table("t", Arc::new(partitioned_table(4, 100)))
        .unwrap();
    run(&ctx, "SET async_udf.max_in_flight = 16").await.unwrap();

    let url = api.url("/v1/images/search");
    let df = ctx
        .sql(&format!(
            "SELECT id, http_get('{url}?id=' || id) AS r FROM t"
        ))
        .await
        .unwrap();
    let plan = df.clone().create_physical_plan().await.unwrap();
    assert_eq!(
        plan.output_partitioning().partition_count(),
        4,
        "4 partitions run at once"
    );
    assert_eq!(df.write_noop().await.unwrap(), 400);

    let stats = api.stats();
    assert_eq!(stats.requests, 400);
    // per-partition budgets would let 4 × 16 calls fly
    assert_eq!(
        stats.peak_in_flight, 16,
        "never above max_in_flight, and reaches it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_between_queries_resizes_the_budget() {
    let api = mock(100).await;
    let ctx = context();
    let url = api.url("/v1/images/search");
    for limit in [8u64, 32] {
        api.reset_stats();
        run(&ctx, &format!("SET async_udf.max_in_flight = {limit}"))
            .await
            .unwrap();
        assert_eq!(count(&ctx, &copy_series(&url, 100)).await, 100);
        assert_eq!(api.stats().peak_in_flight, limit);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_urls_make_no_call() {
    let api = mock(0).await;
    let ctx = context();
    let url = api.url("/status/200");
    let sql = format!(
        "COPY (SELECT http_get(CASE WHEN value % 2 = 0 THEN '{url}?id=' || value END) FROM generate_series(1, 10)) \
         TO 'x' STORED AS NOOP"
    );
    assert_eq!(count(&ctx, &sql).await, 10);
    assert_eq!(api.stats().requests, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_query_stops_every_call() {
    let api = mock(60_000).await;
    let ctx = context();
    run(&ctx, "SET async_udf.max_in_flight = 10").await.unwrap();
    let sql = copy_series(&api.url("/v1/images/search"), 500);
    let query = tokio::spawn({
        let ctx = ctx.clone();
        async move { run(&ctx, &sql).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.stats().in_flight < 10 {
        assert!(
            Instant::now() < deadline,
            "calls never started: {:?}",
            api.stats()
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    query.abort();
    assert!(query.await.unwrap_err().is_cancelled());
    // the server sees the connections close and its handlers dropped
    while api.stats().in_flight > 0 {
        assert!(
            Instant::now() < deadline,
            "calls still in flight: {:?}",
            api.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = api.stats();
    assert_eq!(stats.requests, 10, "no call admitted after the drop");
    assert_eq!(stats.completed, 0);
}

/// Reading several fields of one result calls the API once per row, not once per
/// field (DataFusion would otherwise inline the volatile call into each access).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_per_row_whatever_fields_are_read() {
    let api = mock(0).await;
    let ctx = context();
    let url = api.url("/v1/images/search");
    let sql = format!(
        "SELECT r['status'], r['body'], r['error'], r['attempts'] \
         FROM (SELECT http_get('{url}?id=' || value) AS r FROM generate_series(1, 50))"
    );
    let rows: usize = run(&ctx, &sql)
        .await
        .unwrap()
        .iter()
        .map(arrow::array::RecordBatch::num_rows)
        .sum();
    assert_eq!(rows, 50);
    assert_eq!(api.stats().requests, 50);
}

/// Two queries running at once with different `max_in_flight` (a SET between
/// starting them): each keeps its own bound; neither replaces the other's budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_with_different_budgets_keep_their_own() {
    let (a, b) = (mock(100).await, mock(100).await);
    let ctx = context();
    run(&ctx, "SET async_udf.max_in_flight = 4").await.unwrap();
    let first = {
        let (ctx, sql) = (ctx.clone(), copy_series(&a.url("/v1/images/search"), 80));
        tokio::spawn(async move { count(&ctx, &sql).await })
    };
    while a.stats().in_flight == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run(&ctx, "SET async_udf.max_in_flight = 8").await.unwrap();
    assert_eq!(
        count(&ctx, &copy_series(&b.url("/v1/images/search"), 80)).await,
        80
    );
    assert_eq!(first.await.unwrap(), 80);
    assert_eq!(
        a.stats().peak_in_flight,
        4,
        "the first query kept its budget of 4"
    );
    assert_eq!(
        b.stats().peak_in_flight,
        8,
        "the second query got its own 8"
    );
}
