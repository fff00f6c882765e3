//! Resilience against a misbehaving API: the soak test, the rate limit, the SSRF
//! guard seen from the server.

use crate::common;

use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, Int64Type};
use datafusion_async_udf::mock::Faults;

use common::{context, faulty, run};

/// 5,000 rows against 20 % 503, 5 % 429, 2 % broken connections and 1 % answers
/// slower than the timeout: every row right after retries, none lost, none
/// duplicated, order kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_every_row_survives() {
    const ROWS: i64 = 5_000;
    let api = faulty(
        2,
        Faults {
            seed: 42,
            error_rate: 0.20,
            throttle_rate: 0.05,
            reset_rate: 0.02,
            slow_rate: 0.01,
            slow: Duration::from_secs(5),
            ..Faults::default()
        },
    )
    .await;
    let ctx = context();
    for set in [
        "SET async_udf.max_in_flight = 128",
        "SET http.max_retries = 12",
        "SET http.retry_initial_ms = 5",
        "SET http.retry_max_ms = 50",
        "SET http.timeout_ms = 1000",
    ] {
        run(&ctx, set).await.unwrap();
    }
    let url = api.url("/v1/images/search");
    let start = Instant::now();
    let out = run(
        &ctx,
        &format!(
            "SELECT value, r['status'] AS status, json_get_str(r['body'], 0, 'id') AS id, \
                    r['error'] AS error, r['attempts'] AS attempts \
             FROM (SELECT value, http_get('{url}?id=row' || value) AS r FROM generate_series(1, {ROWS}))"
        ),
    )
    .await
    .unwrap();
    let wall = start.elapsed();
    let rows: usize = out.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows as i64, ROWS, "no row lost");
    let mut expected = 1;
    let mut retries = 0;
    for batch in &out {
        let value = batch.column(0).as_primitive::<Int64Type>();
        let status = batch.column(1).as_primitive::<Int32Type>();
        let id = batch.column(2).as_string::<i32>();
        let error = batch.column(3).as_string::<i32>();
        let attempts = batch.column(4).as_primitive::<Int32Type>();
        for i in 0..batch.num_rows() {
            assert_eq!(value.value(i), expected, "order kept");
            assert!(error.is_null(i), "row {expected}: {}", error.value(i));
            assert_eq!(status.value(i), 200);
            assert_eq!(
                id.value(i),
                format!("row{expected}"),
                "each row its own answer"
            );
            retries += i64::from(attempts.value(i)) - 1;
            expected += 1;
        }
    }
    let stats = api.stats();
    assert_eq!(stats.distinct_successes, ROWS as u64, "every id answered");
    assert_eq!(stats.successes, ROWS as u64, "no id answered twice");
    assert!(
        retries > ROWS / 5,
        "faults were injected: {retries} retries"
    );
    println!(
        "soak: {ROWS} rows, {} requests, {retries} retries, {} throttled, 0 failures, {:.2} s",
        stats.requests,
        stats.throttled,
        wall.as_secs_f64()
    );
}

/// TheCatAPI's free tier: 120 requests a minute. At 2 requests a second no call
/// is ever throttled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_avoids_429() {
    let api = faulty(
        2,
        Faults {
            per_minute: 120,
            ..Faults::default()
        },
    )
    .await;
    let ctx = context();
    run(&ctx, "SET http.max_retries = 0").await.unwrap();
    run(&ctx, "SET http.requests_per_second = 2.0")
        .await
        .unwrap();
    let url = api.url("/v1/images/search");
    let sql = format!(
        "SELECT count(*) FROM (SELECT http_get('{url}?id=' || value) AS r FROM generate_series(1, 6)) WHERE r['status'] = 200"
    );
    let start = Instant::now();
    assert_eq!(common::count(&ctx, &sql).await, 6);
    // 6 requests at 2/s: the last starts 2.5 s after the first
    assert!(
        start.elapsed() >= Duration::from_millis(2_400),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(api.stats().throttled, 0);

    // the control: the same mock throttles a client without the limit
    let strict = faulty(
        2,
        Faults {
            per_minute: 3,
            ..Faults::default()
        },
    )
    .await;
    run(&ctx, "SET http.requests_per_second = 0").await.unwrap();
    run(&ctx, "SET http.retry_max_ms = 10").await.unwrap();
    let url = strict.url("/v1/images/search");
    let sql = format!(
        "SELECT count(*) FROM (SELECT http_get('{url}?id=' || value) AS r FROM generate_series(1, 6)) WHERE r['status'] = 429"
    );
    assert_eq!(common::count(&ctx, &sql).await, 3);
    assert_eq!(strict.stats().throttled, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_block_before_connecting() {
    let api = common::mock(0).await;
    let ctx = context();
    run(&ctx, "SET http.allowed_hosts = '*.example.com'")
        .await
        .unwrap();
    let url = api.url("/status/200");
    let n = common::count(
        &ctx,
        &format!("SELECT count(*) FROM (SELECT http_get('{url}') AS r FROM generate_series(1, 5)) WHERE r['error'] LIKE '%not in http.allowed_hosts'"),
    )
    .await;
    assert_eq!(n, 5);
    assert_eq!(
        api.stats().requests,
        0,
        "no connection to a host not allowed"
    );
}

/// A 429 delays the request that got it by its Retry-After; the other rows to
/// the same host go on (a service shedding a little load does not stall a job).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_delays_only_the_throttled_request() {
    let api = common::mock(20).await;
    let ctx = context();
    for set in [
        "SET async_udf.max_in_flight = 4",
        "SET http.max_retries = 1",
    ] {
        run(&ctx, set).await.unwrap();
    }
    let sql = format!(
        "SELECT value, r['status'] AS status, r['attempts'] AS attempts, r['elapsed_ms'] AS ms \
         FROM (SELECT value, http_get(CASE WHEN value = 1 THEN '{}' ELSE '{}?id=' || value END) AS r \
         FROM generate_series(1, 40)) ORDER BY value",
        api.url("/status/429?retry_after=2"),
        api.url("/v1/images/search")
    );
    let batches = run(&ctx, &sql).await.unwrap();
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let column = |i: usize| {
        arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Int64)
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone()
    };
    let (status, attempts, ms) = (column(1), column(2), column(3));
    // row 1: throttled twice, waited the 2 s it was asked to
    assert_eq!((status.value(0), attempts.value(0)), (429, 2));
    assert!(ms.value(0) >= 2_000, "{}", ms.value(0));
    // the 39 others, most of them sent while row 1 waited: none waited for it
    for i in 1..40 {
        assert_eq!(status.value(i), 200);
        assert!(ms.value(i) < 1_000, "row {}: {} ms", i + 1, ms.value(i));
    }
}
