//! Embedding: a SessionContext in a Rust application, everything registered with
//! one call, used from SQL and from the DataFrame API.
//!
//! ```text
//! cargo run --example embed
//! ```

use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::functions::core::expr_ext::FieldAccessor;
use datafusion::prelude::*;
use datafusion_async_udf::mock::{MockApi, MockConfig};
use datafusion_async_udf::{DataFrameNoopExt, register_all};

#[tokio::main]
async fn main() -> Result<()> {
    // The bundled mock API stands in for a real service (no network needed).
    let api = MockApi::start(MockConfig::default()).await?;
    let search = api.url("/v1/images/search");

    // One call registers http_get, http_post, the JSON functions, the NOOP sink
    // and the async_udf.* / http.* settings.
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

    // DataFrame API: the same function as an expression.
    let http_get = ctx.udf("http_get")?;
    let df = ctx
        .sql("SELECT value FROM generate_series(1, 100)")
        .await?
        .select(vec![
            col("value"),
            http_get
                .call(vec![concat(vec![
                    lit(format!("{search}?id=")),
                    col("value"),
                ])])
                .field("status")
                .alias("status"),
        ])?;

    // Run it all and keep nothing: returns the row count.
    let rows = df.write_noop().await?;
    println!("{rows} rows, {} calls", api.stats().requests);
    assert_eq!(rows, 100);
    Ok(())
}
