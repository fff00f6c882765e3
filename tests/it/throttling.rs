//! Throttling that converges: a server's advertised quota is paced so that it
//! refuses nothing, a window limit without headers is learned and kept for the
//! session, and what was learned shows in `async_hosts()`. Counted at the
//! mock: its refusals (429s) and the requests per id.

use datafusion_async_udf::mock::MockApi;

use crate::common::{self, context_set, count, run};

/// Runs `rows` calls of `/limited/{style}?{params}` on `ctx`; every one must
/// come back 200 (retries allowed).
async fn job(ctx: &datafusion::prelude::SessionContext, api: &MockApi, path: &str, rows: u64, from: u64) {
    let url = api.url(path);
    let sql = format!(
        "SELECT count(*) FROM generate_series({from}, {}) \
         WHERE http_get('{url}&id=' || value)['status'] = 200",
        from + rows - 1
    );
    assert_eq!(count(ctx, &sql).await, rows, "{path}");
}

async fn throttling_context() -> datafusion::prelude::SessionContext {
    context_set([
        "SET async_udf.max_in_flight = 256",
        "SET http.max_retries = 10",
        "SET http.retry_initial_ms = 50",
    ])
    .await
}

/// A fixed window of 25 per second advertised in each header style: the quota
/// is spread until each reset, so the server refuses nothing (the start's
/// first calls fit in the quota), and every id is called once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertised_quotas_are_paced_without_refusals() {
    for style in ["ietf", "ietf-fields", "github", "openai", "anthropic"] {
        let api = common::mock(0).await;
        let ctx = throttling_context().await;
        job(&ctx, &api, &format!("/limited/{style}?limit=25&window_ms=1000"), 100, 1).await;
        let stats = api.stats();
        assert_eq!(stats.throttled, 0, "{style}: {stats:?}");
        let per_id = api.requests_by_id();
        assert_eq!(per_id.len(), 100, "{style}");
        assert!(per_id.values().all(|n| *n == 1), "{style}: an id called twice");
        // the pace and its reason are listed for the host
        let hosts = run(&ctx, "SELECT host, reason FROM async_hosts()").await.unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&hosts).unwrap().to_string();
        assert!(text.contains("advertised"), "{style}: {text}");
    }
}

/// A sliding window of 20 per second that only refuses (no headers at all):
/// after its first refusals the rate is learned and paced just below it, so
/// few more are refused; the next query of the session starts paced and is
/// refused nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_without_headers_is_learned_and_kept_for_the_session() {
    let api = common::mock(0).await;
    let ctx = throttling_context().await;
    let path = "/limited/none?limit=20&window_ms=1000&sliding=1";
    job(&ctx, &api, path, 200, 1).await;
    let first = api.stats();
    // the start's last window is refused (the calls sent after the 20th, before
    // the first refusals came back: the window grows by one per answer from
    // 16), then none: the job ends before the first probe
    assert!(first.throttled <= 32, "{first:?}");
    api.reset_stats();
    job(&ctx, &api, path, 60, 1000).await;
    let second = api.stats();
    assert_eq!(second.throttled, 0, "the next query starts paced: {second:?}");
    let hosts = run(&ctx, "SELECT host, pace, reason, refused FROM async_hosts()")
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&hosts).unwrap().to_string();
    assert!(text.contains("learned"), "{text}");
}
