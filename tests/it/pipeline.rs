//! The pipelined operator: calls flow past stragglers and batch boundaries, order
//! is kept, the budget holds, LIMIT stops admission, EXPLAIN ANALYZE shows what
//! the calls did, fan-out is planned only when asked for.

use crate::common;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use arrow::util::pretty::pretty_format_batches;

use common::{context, mock, run};

async fn set(ctx: &datafusion::prelude::SessionContext, settings: &[&str]) {
    for s in settings {
        run(ctx, s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

fn values(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

/// 200 rows in batches of 50, budget 20; row 1 takes 3 s, every other row 10 ms.
/// Returns (rows in order?, most requests that arrived while one was handled, peak).
async fn straggler(pipelined: bool) -> (bool, u64, u64) {
    let api = mock(0).await;
    let ctx = context();
    set(
        &ctx,
        &[
            // one partition: DataFusion would otherwise run two stock operators
            "SET datafusion.execution.target_partitions = 1",
            "SET datafusion.execution.batch_size = 50",
            "SET async_udf.max_in_flight = 20",
            &format!("SET async_udf.pipelined = {pipelined}"),
        ],
    )
    .await;
    let url = api.url("/v1/images/search");
    let out = run(
        &ctx,
        &format!(
            "SELECT value, http_get('{url}?id=' || value || '&latency_ms=' || \
             CASE WHEN value = 1 THEN 3000 ELSE 10 END)['status'] AS s \
             FROM generate_series(1, 200)"
        ),
    )
    .await
    .unwrap();
    let in_order = values(&out) == (1..=200).collect::<Vec<_>>();
    let stats = api.stats();
    assert_eq!(stats.completed, 200);
    (in_order, stats.max_overtaken, stats.peak_in_flight)
}

/// The per-batch design waits for the straggler before starting the next batch:
/// only the other 49 rows of its batch start meanwhile. The operator keeps
/// admitting: all 199 other rows start and finish while the straggler runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_keep_flowing_past_a_straggler() {
    let (in_order, overtaken, peak) = straggler(true).await;
    assert!(in_order, "order kept");
    // the first 20 requests race to the server, so the straggler may arrive up to
    // 19 places late; everything after the first 20 starts while it runs
    assert!(
        overtaken >= 180,
        "the other rows started during the straggler: {overtaken}"
    );
    assert!(peak <= 20, "peak {peak} within the budget");

    let (in_order, overtaken, peak) = straggler(false).await;
    assert!(in_order);
    assert!(
        overtaken <= 49,
        "AsyncFuncExec stops at the batch boundary: {overtaken}"
    );
    assert!(peak <= 20);
}

/// Heavy-tailed random latencies over many small batches: rows come back in
/// input order, the budget is never exceeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_kept_with_random_latencies_across_batches() {
    let api = mock(0).await;
    let ctx = context();
    set(
        &ctx,
        &[
            "SET datafusion.execution.batch_size = 64",
            "SET async_udf.max_in_flight = 32",
            "SET async_udf.chunk_size = 7",
        ],
    )
    .await;
    let url = api.url("/v1/images/search?median_ms=5&p99_ms=100");
    let out = run(
        &ctx,
        &format!(
            "SELECT value, json_get_str(http_get('{url}&id=row' || value)['body'], 0, 'id') AS id \
             FROM generate_series(1, 1000)"
        ),
    )
    .await
    .unwrap();
    assert_eq!(values(&out), (1..=1000).collect::<Vec<_>>());
    for b in &out {
        let (v, id) = (
            b.column(0).as_primitive::<Int64Type>(),
            b.column(1).as_string::<i32>(),
        );
        for i in 0..b.num_rows() {
            assert_eq!(
                id.value(i),
                format!("row{}", v.value(i)),
                "each row its answer"
            );
        }
    }
    let stats = api.stats();
    assert!(stats.peak_in_flight <= 32, "{stats:?}");
    assert!(stats.peak_in_flight >= 16, "calls overlapped: {stats:?}");
}

/// A satisfied LIMIT stops admission: DataFusion's operator would take a whole
/// 8192-row batch first; this one stops within its window (32 × budget rows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_stops_admission() {
    let api = mock(1).await;
    let ctx = context();
    set(
        &ctx,
        &[
            "SET async_udf.max_in_flight = 8",
            "SET async_udf.chunk_size = 4",
        ],
    )
    .await;
    let url = api.url("/v1/images/search");
    let out = run(
        &ctx,
        &format!("SELECT http_get('{url}?id=' || value) FROM generate_series(1, 1000000) LIMIT 10"),
    )
    .await
    .unwrap();
    assert_eq!(out.iter().map(RecordBatch::num_rows).sum::<usize>(), 10);
    let requests = api.stats().requests;
    assert!(
        (10..=32 * 8 + 8).contains(&requests),
        "{requests} requests for LIMIT 10"
    );
}

/// EXPLAIN ANALYZE shows calls, retries, 429s, errors by kind, in-flight figures,
/// latency percentiles and the rate limiter's wait on the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_analyze_shows_the_metrics() {
    let api = mock(0).await;
    let ctx = context();
    set(
        &ctx,
        &[
            "SET http.max_retries = 2",
            "SET http.retry_initial_ms = 1",
            "SET http.retry_max_ms = 2",
            "SET async_udf.max_in_flight = 8",
        ],
    )
    .await;
    // 30 rows: 10 × 200, 10 × 503 (3 attempts each), 10 × 429 (3 attempts each)
    let base = api.url("/status/");
    let out = run(
        &ctx,
        &format!(
            "EXPLAIN ANALYZE SELECT http_get('{base}' || CASE value % 3 WHEN 0 THEN '200?a=1' \
             WHEN 1 THEN '503?a=1' ELSE '429?retry_after=0' END || '&id=' || value)['status'] \
             FROM generate_series(1, 30)"
        ),
    )
    .await
    .unwrap();
    let text = pretty_format_batches(&out).unwrap().to_string();
    let line = text
        .lines()
        .find(|l| l.contains("AsyncPipelineExec"))
        .unwrap_or_else(|| panic!("no operator in\n{text}"));
    for expected in [
        "output_rows=30",
        "calls=30",
        "retries=40",
        "http_429=30",
        "errors=20",
        "errors_by_kind=http_4xx:10 http_5xx:10",
        "in_flight=peak 8 of 8, mean ",
        "%), admitting ",
        "latency=p50 ",
        "p99 ",
        "rate_limit_wait=",
    ] {
        assert!(line.contains(expected), "{expected} missing in\n{line}");
    }
    assert_eq!(api.stats().requests, 10 + 30 + 30);
}

/// Fan-out is planned only when asked for: a round-robin repartition below the
/// operator with `async_udf.fan_out = true`, none at all (order kept) without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_only_when_asked() {
    let ctx = context();
    set(&ctx, &["SET datafusion.execution.target_partitions = 2"]).await;
    let sql = "EXPLAIN SELECT json_get_str(http_get('http://127.0.0.1:1/?id=' || value)['body'], 'id') \
               FROM generate_series(1, 100000)";
    let plan = |batches: Vec<RecordBatch>| pretty_format_batches(&batches).unwrap().to_string();
    set(&ctx, &["SET datafusion.explain.format = 'indent'"]).await;
    let off = plan(run(&ctx, sql).await.unwrap());
    assert!(!off.contains("RepartitionExec"), "{off}");
    set(&ctx, &["SET async_udf.fan_out = true"]).await;
    let on = plan(run(&ctx, sql).await.unwrap());
    let operator = on.find("AsyncPipelineExec").expect("operator");
    let repartition = on.rfind("RepartitionExec: partitioning=RoundRobinBatch(2)");
    assert!(
        repartition.is_some_and(|r| r > operator),
        "round-robin below the operator:\n{on}"
    );
}
