//! Per-chunk typed functions on realistic inputs: chunks of `chunk_size` non-NULL
//! rows and never an empty call, failures in any chunk reported without a panic,
//! and a declared output type.

use crate::common;

use std::sync::Arc;

use arrow::datatypes::DataType;
use arrow::util::pretty::pretty_format_batches;
use datafusion_async_udf::{AsyncFn, ChunkContext};
use parking_lot::Mutex;

use common::{context, run};

#[tokio::test]
async fn chunks_hold_chunk_size_non_null_rows_and_no_call_is_empty() {
    let ctx = context();
    let sizes: Arc<Mutex<Vec<usize>>> = Arc::default();
    let seen = Arc::clone(&sizes);
    AsyncFn::per_chunk("sized", move |rows: Vec<i64>, _cx: ChunkContext| {
        seen.lock().push(rows.len());
        async move { Ok::<_, String>(rows) }
    })
    .unwrap()
    .register(&ctx)
    .unwrap();
    run(&ctx, "SET async_udf.chunk_size = 3").await.unwrap();
    // every 4th row NULL: 750 non-NULL rows
    let out = run(
        &ctx,
        "SELECT count(sized(CASE WHEN value % 4 = 0 THEN NULL ELSE value END)) FROM generate_series(1, 1000)",
    )
    .await
    .unwrap();
    assert!(
        pretty_format_batches(&out)
            .unwrap()
            .to_string()
            .contains("| 750 ")
    );
    {
        let sizes = sizes.lock();
        assert!(!sizes.contains(&0), "a call with no rows: {sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 750);
        assert_eq!(sizes.len(), 250, "750 rows in chunks of 3: {sizes:?}");
    }
    // all NULL: no call at all
    run(
        &ctx,
        "SELECT sized(CAST(NULL AS BIGINT)) FROM generate_series(1, 10)",
    )
    .await
    .unwrap();
    assert_eq!(sizes.lock().len(), 250, "a call for NULL rows");
}

#[tokio::test]
async fn a_failing_later_chunk_fails_the_query_naming_its_row() {
    let ctx = context();
    AsyncFn::per_chunk("picky", |rows: Vec<i64>, _cx: ChunkContext| async move {
        if rows.contains(&17) {
            Err(format!("no 17 please ({} rows)", rows.len()))
        } else {
            Ok(rows)
        }
    })
    .unwrap()
    .register(&ctx)
    .unwrap();
    for sql in [
        "SET async_udf.chunk_size = 5",
        "SET async_udf.on_error = 'fail'",
    ] {
        run(&ctx, sql).await.unwrap();
    }
    // chunk 3 (rows 15..20 of the partition) fails; its first row is row 15
    let err = run(&ctx, "SELECT picky(value) FROM generate_series(1, 40)")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("picky: chunk 3"), "{err}");
    assert!(err.contains("row 15 of the partition"), "{err}");
    assert!(err.contains("no 17 please"), "{err}");
}

#[tokio::test]
async fn returns_declares_the_output_type() {
    let ctx = context();
    AsyncFn::per_row("shout", |s: String| async move {
        Ok::<_, String>(s.to_uppercase())
    })
    .unwrap()
    .returns(DataType::LargeUtf8)
    .register(&ctx)
    .unwrap();
    let out = run(
        &ctx,
        "SELECT shout(x) AS s, arrow_typeof(shout(x)) AS t FROM (VALUES ('a'), ('b')) v(x)",
    )
    .await
    .unwrap();
    let text = pretty_format_batches(&out).unwrap().to_string();
    assert!(text.contains("| A | LargeUtf8 |"), "{text}");
    assert!(text.contains("| B | LargeUtf8 |"), "{text}");
}
