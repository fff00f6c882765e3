//! Adaptive limits per host (`http.adaptive`): a server that refuses work above
//! its capacity gets fewer refused requests than with fixed limits; answers
//! show in `EXPLAIN ANALYZE`.

use std::time::Duration;

use datafusion_async_udf::mock::{Faults, MockApi, MockConfig, MockStats};

use crate::common::{context, count, run};

/// 600 rows against a server refusing (503, at once) above 16 in flight, budget
/// 128; what the server saw.
async fn against_a_capped_server(adaptive: bool) -> MockStats {
    let faults = Faults {
        max_in_flight: 16,
        ..Faults::default()
    };
    let api =
        MockApi::start(MockConfig::with_latency(Duration::from_millis(30)).with_faults(faults))
            .await
            .unwrap();
    let ctx = context();
    for set in [
        "SET async_udf.max_in_flight = 128".to_string(),
        "SET http.max_retries = 20".into(),
        "SET http.retry_initial_ms = 20".into(),
        format!("SET http.adaptive = {adaptive}"),
    ] {
        run(&ctx, &set).await.unwrap();
    }
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
