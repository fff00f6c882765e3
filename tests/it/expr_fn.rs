//! The DataFrame API's expression builders: calls built outside any session run
//! on the session that plans them (its budget and settings), once per row.

use crate::common;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int32Type;
use common::{context, mock};
use datafusion::functions::core::expr_ext::FieldAccessor;
use datafusion::prelude::{SessionContext, col, concat, lit};
use datafusion_async_udf::expr_fn::{
    http_get, http_get_bytes, http_get_with_headers, http_post, http_request,
};

fn statuses(batches: &[RecordBatch]) -> Vec<i32> {
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int32Type>().iter().flatten())
        .collect()
}

#[tokio::test]
async fn http_get_and_http_post_from_the_dataframe_api() {
    let api = mock(0).await;
    let ctx = context();
    ctx.sql("SET async_udf.max_in_flight = 3").await.unwrap();
    let ids = ctx
        .sql("SELECT value FROM generate_series(1, 20)")
        .await
        .unwrap();
    let url = concat(vec![lit(api.url("/v1/images/search?id=")), col("value")]);
    let r = http_get(url).alias("r");
    let df = ids.select(vec![r]).unwrap();
    // two fields of one call: still one request per row
    let df = df
        .select(vec![
            col("r").field("status").alias("status"),
            col("r").field("attempts").alias("attempts"),
        ])
        .unwrap();
    let out = df.collect().await.unwrap();
    assert_eq!(statuses(&out), vec![200; 20]);
    let stats = api.stats();
    assert_eq!(stats.requests, 20, "{stats:?}");
    assert!(stats.peak_in_flight <= 3, "the session's budget: {stats:?}");

    let post = ctx
        .sql("SELECT 'x' AS body")
        .await
        .unwrap()
        .select(vec![
            http_post(lit(api.url("/echo")), col("body"))
                .field("status")
                .alias("s"),
        ])
        .unwrap();
    assert_eq!(statuses(&post.collect().await.unwrap()), vec![200]);

    // any method, and exact bytes
    let df = ctx
        .sql("SELECT 'PUT' AS m")
        .await
        .unwrap()
        .select(vec![
            http_request(
                col("m"),
                lit(api.url("/echo")),
                lit(datafusion::scalar::ScalarValue::Null),
                lit("b"),
            )
            .field("status")
            .alias("s"),
            http_get_bytes(lit(api.url("/image/png")))
                .field("size")
                .alias("png"),
        ])
        .unwrap();
    let out = df.collect().await.unwrap();
    assert_eq!(statuses(&out), vec![200]);
    let png = out[0]
        .column(1)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0);
    assert_eq!(png, datafusion_async_udf::mock::PNG_BYTES as i64);
}

#[tokio::test]
async fn headers_and_a_session_without_register_all() {
    let api = mock(0).await;
    let ctx = context();
    let call = http_get_with_headers(
        lit(api.url("/v1/images/search")),
        datafusion::functions_nested::map::map(vec![lit("x-a")], vec![lit("1")]),
    );
    let one = ctx.sql("SELECT 1").await.unwrap();
    let out = one
        .select(vec![call.field("status").alias("s")])
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(statuses(&out), vec![200]);

    // no register_all: a clear error, no request
    let bare = SessionContext::new();
    let err = bare
        .sql("SELECT 1")
        .await
        .unwrap()
        .select(vec![http_get(lit(api.url("/v1/images/search")))])
        .unwrap()
        .collect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("register_all"), "{err}");
    assert_eq!(api.stats().requests, 1);
}
