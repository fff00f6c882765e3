//! `http.proxy`: every request goes through the proxy, once per row.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;

use crate::common::{context, mock, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_goes_through_the_proxy_once() {
    let api = mock(0).await;
    let ctx = context();
    run(&ctx, &format!("SET http.proxy = '{}'", api.base_url()))
        .await
        .unwrap();
    let out = run(
        &ctx,
        "SELECT count(*) FILTER (WHERE http_get('http://svc.invalid/echo?id=p' || value)['status'] = 200) \
         FROM generate_series(1, 25)",
    )
    .await
    .unwrap();
    assert_eq!(out[0].column(0).as_primitive::<Int64Type>().value(0), 25);
    assert_eq!(api.stats().proxied, 25);
    let by_id = api.requests_by_id();
    assert_eq!(by_id.len(), 25, "{by_id:?}");
    assert!(by_id.values().all(|&n| n == 1), "{by_id:?}");

    // NO_PROXY-style bypass is the environment's; without the setting, no proxy
    run(&ctx, "RESET http.proxy").await.ok();
    run(&ctx, "SET http.proxy = DEFAULT").await.unwrap();
    let out = run(
        &ctx,
        &format!(
            "SELECT http_get('{}')['status']",
            api.url("/echo?id=direct")
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        out[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int32Type>()
            .value(0),
        200
    );
    assert_eq!(api.stats().proxied, 25, "a direct request");
}
