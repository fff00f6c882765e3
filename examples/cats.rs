//! The seed job, offline: N calls to the bundled mock of TheCatAPI (350 ms each)
//! through SQL and the noop sink, serially (small N) and with high concurrency.
//!
//! ```text
//! cargo run --all-features --example cats [-- --calls 1000 --latency-ms 350 --serial-calls 10]
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use datafusion::common::Result;
use datafusion::prelude::SessionContext;
use datafusion_async_udf::mock::{MockApi, MockConfig};

#[derive(Parser)]
struct Args {
    /// Calls in the concurrent runs.
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    /// Latency of every mock response (ms).
    #[arg(long, default_value_t = 350)]
    latency_ms: u64,
    /// Calls in the serial (max_in_flight = 1) baseline.
    #[arg(long, default_value_t = 10)]
    serial_calls: usize,
}

struct Row {
    approach: String,
    calls: usize,
    wall: Duration,
    ideal: Duration,
    peak: u64,
}

async fn run(
    ctx: &SessionContext,
    api: &MockApi,
    latency: Duration,
    calls: usize,
    in_flight: usize,
) -> Result<Row> {
    ctx.sql(&format!("SET async_udf.max_in_flight = {in_flight}"))
        .await?
        .collect()
        .await?;
    api.reset_stats();
    let sql = format!(
        "COPY (SELECT http_get('{}?n=' || value) AS r FROM generate_series(1, {calls})) \
         TO 'cats' STORED AS NOOP",
        api.url("/v1/images/search")
    );
    let start = Instant::now();
    let out = ctx.sql(&sql).await?.collect().await?;
    let wall = start.elapsed();
    let rows = arrow::util::pretty::pretty_format_batches(&out)?.to_string();
    let stats = api.stats();
    assert!(
        rows.contains(&calls.to_string()),
        "noop sink counted {rows}"
    );
    assert_eq!(stats.completed, calls as u64, "every call answered");
    let waves = calls.div_ceil(in_flight) as u32;
    Ok(Row {
        approach: format!("SQL + NOOP, max_in_flight = {in_flight}"),
        calls,
        wall,
        ideal: latency * waves,
        peak: stats.peak_in_flight,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let latency = Duration::from_millis(args.latency_ms);
    let api = MockApi::start(MockConfig::with_latency(latency)).await?;
    let ctx = SessionContext::new();
    datafusion_async_udf::register_all(&ctx)?;
    println!(
        "mock TheCatAPI on {} answering after {} ms\n",
        api.base_url(),
        args.latency_ms
    );

    let mut rows = vec![run(&ctx, &api, latency, args.serial_calls, 1).await?];
    rows[0].approach = format!(
        "serial, max_in_flight = 1 (small N = {})",
        args.serial_calls
    );
    for in_flight in [64, args.calls] {
        rows.push(run(&ctx, &api, latency, args.calls, in_flight).await?);
    }

    let serial_rate = rows[0].calls as f64 / rows[0].wall.as_secs_f64();
    println!(
        "| {:<44} | {:>5} | {:>9} | {:>9} | {:>8} | {:>11} | {:>5} |",
        "approach", "calls", "wall (s)", "calls/s", "speed-up", "ideal/wall", "peak"
    );
    println!(
        "|{:-<46}|{:->7}|{:->11}|{:->11}|{:->10}|{:->13}|{:->7}|",
        "", "", "", "", "", "", ""
    );
    for r in &rows {
        let rate = r.calls as f64 / r.wall.as_secs_f64();
        println!(
            "| {:<44} | {:>5} | {:>9.3} | {:>9.1} | {:>7.1}x | {:>11.2} | {:>5} |",
            r.approach,
            r.calls,
            r.wall.as_secs_f64(),
            rate,
            rate / serial_rate,
            r.ideal.as_secs_f64() / r.wall.as_secs_f64(),
            r.peak,
        );
    }
    println!(
        "\nideal = ceil(calls / max_in_flight) x latency; speed-up is calls/s against the serial row. \
         The serial row uses a small N: at 1 call per {} ms, {} calls would take {:.0} s.",
        args.latency_ms,
        args.calls,
        args.calls as f64 * latency.as_secs_f64()
    );
    Ok(())
}
