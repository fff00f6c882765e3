//! Heavy-tailed latency: what a per-batch barrier costs, side by side in one run.
//!
//! N calls (default 5,000) whose latency is log-normal (median 50 ms, p99 1 s, drawn
//! per id by the mock), budget 256, input batches of 512 rows, one partition:
//!
//! * (a) DataFusion's `AsyncFuncExec` with a naive concurrent UDF
//!   (`buffered(256)` over the batch's rows, reqwest);
//! * (b) `AsyncFuncExec` with this crate's `http_get` (`async_udf.pipelined = false`);
//! * (c) the pipelined operator (`http_get`, the default).
//!
//! `cargo run --release --example heavy_tail [-- N]`
//!
//! Figures are the mock server's: mean requests in flight over the whole job, and
//! over the admission phase (first to last request's arrival: while the client
//! still had rows to send, which is what its scheduler controls; afterwards only
//! the slowest calls remain). The best any design can do is
//! ideal = max(Σ latency / budget, slowest call): efficiency = ideal / wall.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, StringArray};
use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion_async_udf::mock::{MockApi, MockConfig, lognormal_latency};
use datafusion_async_udf::{DataFrameNoopExt, register_all};
use futures::StreamExt;

const BUDGET: usize = 256;
const MEDIAN_MS: f64 = 50.0;
const P99_MS: f64 = 1000.0;

/// What users write after reading DataFusion's async UDF example and adding
/// concurrency: `buffered(n)` over the rows of the batch.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NaiveGet {
    signature: Signature,
}

impl ScalarUDFImpl for NaiveGet {
    fn name(&self) -> &str {
        "naive_get"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> Result<ColumnarValue> {
        unreachable!("async only")
    }
}

#[async_trait]
impl AsyncScalarUDFImpl for NaiveGet {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let urls = args.args[0].to_array(args.number_rows)?;
        let urls = urls.as_any().downcast_ref::<StringArray>().unwrap().clone();
        let client = reqwest::Client::new();
        let bodies: Vec<Option<String>> = futures::stream::iter(0..urls.len())
            .map(|i| {
                let (client, url) = (client.clone(), urls.value(i).to_string());
                async move {
                    let r = client.get(url).send().await.ok()?;
                    r.text().await.ok()
                }
            })
            .buffered(BUDGET)
            .collect()
            .await;
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(bodies))))
    }
}

async fn run(ctx: &SessionContext, function: &str, url: &str, n: usize) -> Result<f64> {
    let sql = format!("SELECT {function}('{url}&id=' || value) AS r FROM generate_series(1, {n})");
    let start = Instant::now();
    ctx.sql(&sql).await?.write_noop().await?;
    Ok(start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000);
    let api = MockApi::start(MockConfig::default()).await?;
    let url = api.url(&format!(
        "/v1/images/search?median_ms={MEDIAN_MS}&p99_ms={P99_MS}"
    ));
    let latencies: Vec<f64> = (1..=n)
        .map(|i| lognormal_latency(&i.to_string(), MEDIAN_MS, P99_MS).as_secs_f64())
        .collect();
    let total: f64 = latencies.iter().sum();
    let slowest = latencies.iter().cloned().fold(0.0, f64::max);
    let ideal = (total / BUDGET as f64).max(slowest);
    println!(
        "N = {n}, budget {BUDGET}, batches of 512 rows, 1 partition; latency median {MEDIAN_MS} ms, \
         p99 {P99_MS} ms, slowest {slowest:.2} s, sum {total:.0} s; ideal wall {ideal:.2} s"
    );
    println!(
        "| design | wall s | mean in flight | mean / budget | in flight while admitting | \
         admitting / budget | efficiency (ideal / wall) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, function, pipelined) in [
        ("(a) AsyncFuncExec + naive buffered UDF", "naive_get", false),
        (
            "(b) AsyncFuncExec + http_get (per-batch)",
            "http_get",
            false,
        ),
        ("(c) AsyncPipelineExec + http_get", "http_get", true),
    ] {
        let ctx = SessionContext::new();
        register_all(&ctx)?;
        ctx.register_udf(
            AsyncScalarUDF::new(Arc::new(NaiveGet {
                signature: Signature::exact(vec![DataType::Utf8], Volatility::Volatile),
            }))
            .into_scalar_udf(),
        );
        for s in [
            format!("SET async_udf.max_in_flight = {BUDGET}"),
            "SET datafusion.execution.batch_size = 512".into(),
            "SET datafusion.execution.target_partitions = 1".into(),
            format!("SET async_udf.pipelined = {pipelined}"),
        ] {
            ctx.sql(&s).await?.collect().await?;
        }
        api.reset_stats();
        let wall = run(&ctx, function, &url, n).await?;
        let stats = api.stats();
        assert_eq!(stats.completed as usize, n, "{label}: every call answered");
        let (mean, admitting) = (stats.mean_in_flight, stats.admitting_in_flight);
        println!(
            "| {label} | {wall:.2} | {mean:.0} | {:.2} | {admitting:.0} | {:.2} | {:.2} |",
            mean / BUDGET as f64,
            admitting / BUDGET as f64,
            ideal / wall
        );
    }
    Ok(())
}
