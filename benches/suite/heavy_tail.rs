//! Heavy-tailed latency: what a per-batch barrier costs, side by side.
//!
//! N calls whose latency is log-normal (median 50 ms, p99 1 s, drawn per id by the
//! mock), budget 256, input batches of 512 rows, one partition:
//! (a) DataFusion's `AsyncFuncExec` with a naive concurrent UDF (`buffered(256)`
//! over the batch's rows); (b) `AsyncFuncExec` with `http_get`
//! (`async_udf.pipelined = false`); (c) the pipelined operator.
//!
//! Figures are the mock server's: mean requests in flight over the whole job, and
//! over the admission phase (first to last request's arrival: while the client
//! still had rows to send, which is what its scheduler controls; afterwards only
//! the slowest calls remain). The best any design can do is
//! ideal = max(Σ latency / budget, slowest call): efficiency = ideal / wall.

use datafusion::common::Result;
use datafusion_async_udf::mock::{MockApi, MockConfig, lognormal_latency};

use crate::Sizes;
use crate::baselines::NaiveGet;
use crate::report::{Report, Table, count, secs};
use crate::seed::{session, to_noop};

const BUDGET: usize = 256;
const MEDIAN_MS: f64 = 50.0;
const P99_MS: f64 = 1000.0;

pub async fn run(sizes: &Sizes, report: &mut Report) -> Result<()> {
    let n = sizes.heavy_tail_calls;
    let api = MockApi::start(MockConfig::default()).await?;
    let url = api.url(&format!(
        "/v1/images/search?median_ms={MEDIAN_MS}&p99_ms={P99_MS}"
    ));
    let latencies: Vec<f64> = (1..=n)
        .map(|i| lognormal_latency(&i.to_string(), MEDIAN_MS, P99_MS).as_secs_f64())
        .collect();
    let total: f64 = latencies.iter().sum();
    let slowest = latencies.iter().copied().fold(0.0, f64::max);
    let ideal = (total / BUDGET as f64).max(slowest);
    let mut t = Table::new(
        "Heavy-tail utilization",
        &format!(
            "{} calls, log-normal latency (median {MEDIAN_MS} ms, p99 {P99_MS} ms; slowest \
             {slowest:.2} s, sum {total:.0} s), budget {BUDGET}, 512-row batches, 1 partition. \
             In flight as seen by the mock server: mean over the whole job, and over the \
             admission phase (first to last request: while rows still waited for a slot). \
             ideal = max(Σ latency / budget, slowest) = {ideal:.2} s.",
            count(n as f64)
        ),
        &[
            "design",
            "wall s",
            "mean in flight",
            "mean / budget",
            "in flight while admitting",
            "admitting / budget",
            "efficiency (ideal / wall)",
        ],
    );
    for (label, function, pipelined) in [
        ("(a) AsyncFuncExec + naive buffered UDF", "naive_get", false),
        (
            "(b) AsyncFuncExec + http_get (per batch)",
            "http_get",
            false,
        ),
        ("(c) AsyncPipelineExec + http_get", "http_get", true),
    ] {
        let ctx = session(&[
            format!("SET async_udf.max_in_flight = {BUDGET}"),
            "SET datafusion.execution.batch_size = 512".into(),
            "SET datafusion.execution.target_partitions = 1".into(),
            format!("SET async_udf.pipelined = {pipelined}"),
        ])
        .await?;
        ctx.register_udf(NaiveGet::udf(BUDGET));
        api.reset_stats();
        let select =
            format!("SELECT {function}('{url}&id=' || value) AS r FROM generate_series(1, {n})");
        let wall = to_noop(&ctx, &select, n).await?;
        let stats = api.stats();
        assert_eq!(stats.completed as usize, n, "{label}: every call answered");
        let (mean, admitting) = (stats.mean_in_flight, stats.admitting_in_flight);
        t.row(vec![
            label.into(),
            secs(wall),
            format!("{mean:.0}"),
            format!("{:.2}", mean / BUDGET as f64),
            format!("{admitting:.0}"),
            format!("{:.2}", admitting / BUDGET as f64),
            format!("{:.2}", ideal / wall),
        ]);
        if pipelined {
            report.target(
                "heavy tail: pipelined operator keeps ≥ 0.9 × budget in flight while admitting",
                format!(
                    "{:.2} (whole job: {:.2})",
                    admitting / BUDGET as f64,
                    mean / BUDGET as f64
                ),
                admitting >= 0.9 * BUDGET as f64,
            );
        }
    }
    report.table(t);
    Ok(())
}
