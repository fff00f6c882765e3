//! Adaptive limits per host (`http.adaptive`): a server that refuses work above
//! its capacity gets fewer refused requests than with fixed limits; answers
//! show in `EXPLAIN ANALYZE`; a row waiting to retry holds no budget slot.

use std::time::Duration;

use datafusion_async_udf::mock::{Faults, MockStats};

use crate::common::{self, context_set, count, run};

/// 600 rows against a server refusing (503, at once) above 16 in flight, budget
/// 128; what the server saw.
async fn against_a_capped_server(adaptive: bool) -> MockStats {
    let faults = Faults {
        max_in_flight: 16,
        ..Faults::default()
    };
    let api = common::faulty(30, faults).await;
    let ctx = context_set([
        "SET async_udf.max_in_flight = 128".to_string(),
        "SET http.max_retries = 20".into(),
        "SET http.retry_initial_ms = 20".into(),
        format!("SET http.adaptive = {adaptive}"),
    ])
    .await;
    let url = api.url("/v1/images/search");
    let sql = format!(
        "SELECT count(*) FROM generate_series(1, 600) WHERE http_get('{url}?id=' || value)['status'] = 200"
    );
    assert_eq!(count(&ctx, &sql).await, 600);
    let plan = run(&ctx, &format!("EXPLAIN ANALYZE {sql}")).await.unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    if adaptive {
        assert!(text.contains("host_limits=127.0.0.1:"), "{text}");
        assert!(text.contains("overloaded"), "{text}");
    } else {
        assert!(text.contains("host_limits=unchanged"), "{text}");
    }
    api.stats()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_server_is_refused_less_often() {
    let fixed = against_a_capped_server(false).await;
    let adaptive = against_a_capped_server(true).await;
    // each run: 600 answers, and the requests the server refused on top
    assert!(fixed.refused > 0, "{fixed:?}");
    assert!(
        adaptive.refused * 2 < fixed.refused,
        "adaptive {} refused, fixed {}",
        adaptive.refused,
        fixed.refused
    );
}

/// A row waiting out a `Retry-After` gives its budget slot back: with a budget
/// of two and rows 1 and 2 throttled, the 38 other rows are all answered while
/// those two wait their 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_waiting_to_retry_holds_no_budget_slot() {
    let api = std::sync::Arc::new(common::mock(20).await);
    let ctx = context_set([
        "SET async_udf.max_in_flight = 2",
        "SET http.max_retries = 1",
    ])
    .await;
    let sql = format!(
        "SELECT count(*) FROM generate_series(1, 40) \
         WHERE http_get(CASE WHEN value <= 2 THEN '{}&id=' || value ELSE '{}?id=' || value END)['status'] > 0",
        api.url("/status/429?retry_after=2"),
        api.url("/v1/images/search")
    );
    let query = tokio::spawn(async move { run(&ctx, &sql).await.unwrap() });
    common::until(Duration::from_secs(30), "the 38 other rows", || {
        api.stats().successes >= 38
    })
    .await;
    // the retries of rows 1 and 2 have not been sent yet
    let seen = api.stats();
    assert_eq!(seen.requests, 40, "{seen:?}");
    query.await.unwrap();
    assert_eq!(api.stats().requests, 42, "rows 1 and 2 retried once");
}

/// Rows that finished behind a row waiting to retry count apart from the
/// reorder window's unfinished rows: with a window of 8 rows in chunks of 4,
/// the 63 rows after a throttled row 1 (up to 8 × the window in all) are
/// answered while it waits its 5 s (before, admission stopped at 8 rows
/// until it answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_rows_behind_a_waiting_row_do_not_stop_admission() {
    let api = std::sync::Arc::new(common::mock(20).await);
    let ctx = context_set([
        "SET async_udf.max_in_flight = 2",
        "SET async_udf.window_rows = 8",
        "SET async_udf.chunk_size = 4",
        "SET http.max_retries = 1",
    ])
    .await;
    let sql = format!(
        "SELECT count(*) FROM generate_series(1, 100) \
         WHERE http_get(CASE WHEN value = 1 THEN '{}' ELSE '{}?id=' || value END)['status'] > 0",
        api.url("/status/429?retry_after=5"),
        api.url("/v1/images/search")
    );
    let query = tokio::spawn(async move { run(&ctx, &sql).await.unwrap() });
    common::until(Duration::from_secs(30), "63 rows after row 1", || {
        api.stats().successes >= 63
    })
    .await;
    // row 1's retry has not been sent yet, and no row past 8 × 8 was admitted
    assert_eq!(api.stats().requests, 64);
    query.await.unwrap();
    assert_eq!(api.stats().requests, 101, "row 1 retried once");
}

/// 40 rows against a server allowing 5 requests a second (429 at once
/// beyond, `Retry-After: 1`): with fixed limits every second's burst is
/// refused; adaptive, the start's burst and its probe are, then the capped
/// rate keeps within the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_server_is_refused_at_its_start_only() {
    let mut throttled = Vec::new();
    for adaptive in [false, true] {
        let faults = Faults {
            per_second: 5,
            ..Faults::default()
        };
        let api = common::faulty(20, faults).await;
        let ctx = context_set([
            "SET http.max_retries = 20".to_string(),
            format!("SET http.adaptive = {adaptive}"),
        ])
        .await;
        let url = api.url("/v1/images/search");
        let sql = format!(
            "SELECT count(*) FROM generate_series(1, 40) WHERE http_get('{url}?id=' || value)['status'] = 200"
        );
        assert_eq!(count(&ctx, &sql).await, 40);
        throttled.push(api.stats().throttled);
    }
    let (fixed, adaptive) = (throttled[0], throttled[1]);
    // adaptive: the start's burst (4 to 10 in quiet runs: the ramp's first
    // steps) and the probe; every row's burst past the first, fixed
    assert!(
        adaptive * 3 < fixed,
        "adaptive {adaptive} refused, fixed {fixed}"
    );
}
