//! The noop sink from Rust: `df.write_noop()`, and that nothing is written.

use crate::common;

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionConfig;
use datafusion_async_udf::DataFrameNoopExt;

use common::{context, context_with, count, mock};

#[tokio::test]
async fn write_noop_consumes_every_partition() {
    let ctx = context_with(SessionConfig::new().with_target_partitions(3));
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    let part = |n: i64| {
        vec![
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int64Array::from_iter_values(0..n))],
            )
            .unwrap(),
        ]
    };
    let table = MemTable::try_new(Arc::clone(&schema), vec![part(10), part(200), part(3)]).unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
    let df = ctx.sql("SELECT v * 2 FROM t").await.unwrap();
    assert_eq!(df.write_noop().await.unwrap(), 213);
    let df = ctx.sql("SELECT v FROM t WHERE v > 100").await.unwrap();
    assert_eq!(df.write_noop().await.unwrap(), 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_noop_runs_the_calls() {
    let api = mock(0).await;
    let ctx = context();
    let url = api.url("/status/200");
    let df = ctx
        .sql(&format!(
            "SELECT http_get('{url}?n=' || value) FROM generate_series(1, 42)"
        ))
        .await
        .unwrap();
    assert_eq!(df.write_noop().await.unwrap(), 42);
    assert_eq!(api.stats().requests, 42);
}

#[tokio::test]
async fn copy_and_insert_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    let ctx = context();
    let copy = format!(
        "COPY (SELECT * FROM generate_series(1, 1000)) TO '{}' STORED AS NOOP",
        target.display()
    );
    assert_eq!(count(&ctx, &copy).await, 1000);
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE s (v BIGINT) STORED AS NOOP LOCATION '{}'",
        target.display()
    ))
    .await
    .unwrap();
    assert_eq!(
        count(&ctx, "INSERT INTO s SELECT * FROM generate_series(1, 10)").await,
        10
    );
    assert!(!target.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
