//! Throttling that converges: a server's advertised quota is paced so that it
//! refuses nothing, a window limit without headers is learned and kept for the
//! session, and what was learned shows in `async_hosts()`. Counted at the
//! mock: its refusals (429s) and the requests per id.

use datafusion_async_udf::mock::{MockApi, MockStats};

use crate::common::{self, context_set, count, run};

/// Runs `rows` calls of `/limited/{style}?{params}` on `ctx`; every one must
/// come back 200 (retries allowed).
async fn job(
    ctx: &datafusion::prelude::SessionContext,
    api: &MockApi,
    path: &str,
    rows: u64,
    from: u64,
) {
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

/// A fixed window of 20 per 2 s advertised in each header style (the five
/// servers at once), after a first call whose answer tells the quota: it is
/// spread until each reset, so the servers refuse nothing, and every id is
/// called once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertised_quotas_are_paced_without_refusals() {
    let styles = ["ietf", "ietf-fields", "github", "openai", "anthropic"];
    let runs = styles.map(|style| async move {
        let api = common::mock(0).await;
        let ctx = throttling_context().await;
        let path = format!("/limited/{style}?limit=20&window_ms=2000");
        // the first answer tells the quota; after it, nothing is refused
        job(&ctx, &api, &path, 1, 1000).await;
        api.reset_stats();
        job(&ctx, &api, &path, 100, 1).await;
        let hosts = run(&ctx, "SELECT host, reason FROM async_hosts()")
            .await
            .unwrap();
        let hosts = arrow::util::pretty::pretty_format_batches(&hosts)
            .unwrap()
            .to_string();
        (style, api.stats(), api.requests_by_id(), hosts)
    });
    for (style, stats, per_id, hosts) in futures::future::join_all(runs).await {
        assert_eq!(stats.throttled, 0, "{style}: {stats:?}");
        assert_eq!(per_id.len(), 100, "{style}");
        assert!(
            per_id.values().all(|n| *n == 1),
            "{style}: an id called twice"
        );
        // the pace and its reason are listed for the host
        assert!(hosts.contains("advertised"), "{style}: {hosts}");
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
    // 16, more of it on a busy machine), then none: the job ends before the
    // first probe
    assert!(first.throttled <= 48, "{first:?}");
    api.reset_stats();
    job(&ctx, &api, path, 60, 1000).await;
    let second = api.stats();
    assert_eq!(
        second.throttled, 0,
        "the next query starts paced: {second:?}"
    );
    let hosts = run(
        &ctx,
        "SELECT host, pace, reason, refused FROM async_hosts()",
    )
    .await
    .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&hosts)
        .unwrap()
        .to_string();
    assert!(text.contains("learned"), "{text}");
}

/// Calls to a server serving 16 at a time (50 ms each) that queues the rest:
/// `warm` rows, then (counted afresh) `rows` more; what it saw of the second.
async fn against_a_queue(latency_limit: bool, warm: u64, rows: u64) -> MockStats {
    let api = common::mock(0).await;
    let ctx = throttling_context().await;
    run(&ctx, &format!("SET http.latency_limit = {latency_limit}"))
        .await
        .unwrap();
    let url = api.url("/queue?servers=16&latency_ms=50");
    for (from, n) in [(1, warm), (warm + 1, rows)] {
        api.reset_stats();
        let sql = format!(
            "SELECT count(*) FROM generate_series({from}, {}) \
             WHERE http_get('{url}&id=' || value)['status'] = 200",
            from + n - 1
        );
        assert_eq!(count(&ctx, &sql).await, n);
    }
    let hosts = run(&ctx, "SELECT limited_by FROM async_hosts()")
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&hosts)
        .unwrap()
        .to_string();
    assert_eq!(
        text.contains("latency"),
        latency_limit,
        "{text}{:?}",
        api.stats()
    );
    api.stats()
}

/// A server that slows down instead of refusing: its latency rises with the
/// calls in flight, so fewer are sent at once and each waits little in its
/// line (≤ 3× its 50 ms at the mock, once the first query taught the limit:
/// the start's calls were all sent before any answer); without the latency
/// limit the whole budget waits there (> 6×).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queueing_server_keeps_its_latency_low() {
    let limited = against_a_queue(true, 400, 1600).await;
    // ≤ 2× on a quiet machine (BENCHMARKS.md); a test shares its two cores
    // with the others, which the client's own latency measures too
    assert!(limited.mean_served_ms <= 150.0, "{limited:?}");
    assert!(limited.peak_in_flight <= 64, "{limited:?}");
    let unlimited = against_a_queue(false, 100, 800).await;
    assert!(unlimited.mean_served_ms > 300.0, "{unlimited:?}");
}
