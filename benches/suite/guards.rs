//! Guarded calls: a call under `CASE WHEN value % 10 = 0 THEN … END` over 10×
//! the rows makes as many calls as an unguarded one over the 1×, and must keep
//! their throughput: the rows a guard skips cost no more than themselves.
//!
//! Both runs: N calls × L ms, budget 256, one partition, into the NOOP sink;
//! the guarded one over 10 N rows. Calls counted by the mock server.

use datafusion::common::Result;
use datafusion_async_udf::mock::{MockApi, MockConfig};

use crate::Sizes;
use crate::report::{Report, Table, count, secs};
use crate::seed::{session, to_noop};

const BUDGET: usize = 256;

pub async fn run(sizes: &Sizes, report: &mut Report) -> Result<()> {
    let (n, latency) = (sizes.guarded_calls, sizes.guarded_latency_ms);
    let api = MockApi::start(MockConfig::with_latency(std::time::Duration::from_millis(
        latency,
    )))
    .await?;
    let url = api.url("/v1/images/search");
    let ideal = (n as f64 / BUDGET as f64).ceil() * latency as f64 / 1000.0;
    let mut t = Table::new(
        "Guarded calls",
        &format!(
            "{} calls × {latency} ms, budget {BUDGET}, 1 partition, into the NOOP sink: \
             unguarded over {} rows, and guarded by `CASE WHEN value % 10 = 0 THEN … END` \
             over {} rows (the other 90 % of the rows call nothing). Calls counted by the \
             mock server. ideal = ceil(calls / budget) × latency = {ideal:.2} s.",
            count(n as f64),
            count(n as f64),
            count(10.0 * n as f64),
        ),
        &["run", "rows", "calls", "wall s", "calls/s", "vs unguarded"],
    );
    let mut unguarded_rate = 0.0;
    for (label, rows, select) in [
        (
            "unguarded",
            n,
            format!("SELECT http_get('{url}?id=' || value)['status'] FROM generate_series(1, {n})"),
        ),
        (
            "guarded to 10 % of the rows",
            10 * n,
            format!(
                "SELECT CASE WHEN value % 10 = 0 THEN http_get('{url}?id=' || value)['status'] END \
                 FROM generate_series(1, {})",
                10 * n
            ),
        ),
    ] {
        let ctx = session(&[
            format!("SET async_udf.max_in_flight = {BUDGET}"),
            "SET datafusion.execution.target_partitions = 1".into(),
        ])
        .await?;
        api.reset_stats();
        let wall = to_noop(&ctx, &select, rows).await?;
        let calls = api.stats().completed as usize;
        assert_eq!(calls, n, "{label}: one call per needed row");
        let rate = calls as f64 / wall;
        if unguarded_rate == 0.0 {
            unguarded_rate = rate;
        }
        t.row(vec![
            label.into(),
            count(rows as f64),
            count(calls as f64),
            secs(wall),
            format!("{rate:.0}"),
            format!("{:.2}", rate / unguarded_rate),
        ]);
        if rows != n {
            report.target(
                "guarded calls: 10 × the rows guarded to 10 % keep ≥ 0.95 of the unguarded calls/s",
                format!("{:.2}", rate / unguarded_rate),
                rate >= 0.95 * unguarded_rate,
            );
        }
    }
    report.table(t);
    Ok(())
}
