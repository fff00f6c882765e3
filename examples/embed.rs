//! Embedding: a SessionContext in a Rust application, everything registered with
//! one call, a typed struct→struct function and a map_in_batches handler of our
//! own, used from SQL and from the DataFrame API.
//!
//! ```text
//! cargo run --all-features --example embed
//! ```

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::Result;
use datafusion::functions::core::expr_ext::FieldAccessor;
use datafusion::prelude::*;
use datafusion_async_udf::expr_fn::http_get;
use datafusion_async_udf::mock::{MockApi, MockConfig};
use datafusion_async_udf::{
    AsyncFn, ChunkContext, DataFrameMapExt, DataFrameNoopExt, FnHandler, register_all,
    register_handler,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
struct Address {
    street: String,
    city: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    // The bundled mock API stands in for a real service (no network needed).
    let api = MockApi::start(MockConfig::default()).await?;
    let search = api.url("/v1/images/search");

    // One call registers http_get, http_post, map_in_batches, the JSON functions,
    // the NOOP sink and the async_udf.* / http.* settings.
    let ctx = SessionContext::new();
    register_all(&ctx)?;
    ctx.sql("SET async_udf.max_in_flight = 128").await?;

    // SQL: one call per row, many in flight, answers parsed from JSON.
    let df = ctx
        .sql(&format!(
            "SELECT value AS n, json_get_str(http_get('{search}?id=cat' || value)['body'], 0, 'id') AS id
             FROM generate_series(1, 3)"
        ))
        .await?;
    df.show().await?;

    // A typed struct -> struct function from an async closure (a real one would
    // call an address service here).
    AsyncFn::per_row("standardize", |a: Address| async move {
        Ok::<_, String>(Address {
            street: a.street.trim().to_uppercase(),
            city: a.city.trim().to_uppercase(),
        })
    })?
    .register(&ctx)?;
    ctx.sql(
        "SELECT standardize(named_struct('street', s, 'city', c)) AS address
         FROM (VALUES (' 1 main st', 'springfield '), ('2 elm st', ' shelbyville')) AS t(s, c)",
    )
    .await?
    .show()
    .await?;

    // A map_in_batches handler: a chunk of rows in, any number of rows out.
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("chunk", DataType::Int64, false),
    ]));
    let out = Arc::clone(&schema);
    let handler = FnHandler::new(
        Arc::clone(&schema),
        move |rows: RecordBatch, cx: ChunkContext| {
            let out = Arc::clone(&out);
            async move {
                let n = arrow::compute::cast(rows.column(0), &DataType::Int64)?;
                let chunk: ArrayRef = Arc::new(Int64Array::from(vec![
                    cx.chunk_index as i64;
                    rows.num_rows()
                ]));
                Ok(vec![RecordBatch::try_new(out, vec![n, chunk])?])
            }
        },
    );
    register_handler(&ctx, "tag_chunks", Arc::new(handler))?;
    ctx.sql("SET async_udf.chunk_size = 2").await?;
    ctx.sql(
        "SELECT * FROM map_in_batches('tag_chunks', (SELECT value FROM generate_series(1, 5)))",
    )
    .await?
    .show()
    .await?;

    // DataFrame API: the same functions as expressions (`expr_fn`) and methods.
    let df = ctx
        .sql("SELECT value FROM generate_series(1, 100)")
        .await?
        .select(vec![
            col("value"),
            http_get(concat(vec![lit(format!("{search}?id=")), col("value")]))
                .field("status")
                .alias("status"),
        ])?
        .map_in_batches("tag_chunks", vec![])?;

    // Run it all and keep nothing: returns the row count.
    let rows = df.write_noop().await?;
    println!("{rows} rows, {} calls", api.stats().requests);
    assert_eq!(rows, 100);
    Ok(())
}
