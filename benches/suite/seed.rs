//! The seed job: N calls × L ms through SQL and the NOOP sink at several
//! `max_in_flight`, beside the plain reqwest loop and a naive async UDF.

use std::time::{Duration, Instant};

use datafusion::common::Result;
use datafusion::prelude::SessionContext;
use datafusion_async_udf::mock::{MockApi, MockConfig};

use crate::Sizes;
use crate::baselines::{NaiveGet, reqwest_loop};
use crate::report::{Report, SeedPoint, Table, count, secs};

/// A session with everything registered and `settings` applied.
pub async fn session(settings: &[String]) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    datafusion_async_udf::register_all(&ctx)?;
    for s in settings {
        ctx.sql(s).await?.collect().await?;
    }
    Ok(ctx)
}

/// Runs `select` into the NOOP sink; returns the wall time in seconds after
/// checking the sink counted `rows`.
pub async fn to_noop(ctx: &SessionContext, select: &str, rows: usize) -> Result<f64> {
    let start = Instant::now();
    let out = ctx
        .sql(&format!("COPY ({select}) TO 'bench' STORED AS NOOP"))
        .await?
        .collect()
        .await?;
    let wall = start.elapsed().as_secs_f64();
    let counted = arrow::util::pretty::pretty_format_batches(&out)?.to_string();
    assert!(
        counted.contains(&format!(" {rows} ")),
        "the sink counted {counted}"
    );
    Ok(wall)
}

#[allow(clippy::too_many_lines)] // one table, its runs and its targets, read top to bottom
pub async fn run(sizes: &Sizes, report: &mut Report) -> Result<()> {
    let (n, latency) = (
        sizes.seed_calls,
        Duration::from_millis(sizes.seed_latency_ms),
    );
    let l = latency.as_secs_f64();
    let api = MockApi::start(MockConfig::with_latency(latency)).await?;
    let url = api.url("/v1/images/search");
    let mut table = Table::new(
        "Seed job",
        &format!(
            "{n} calls × {} ms (the mock API in the same process) through \
             `COPY (SELECT http_get(url) …) TO … STORED AS NOOP`, and the same calls from a \
             plain tokio + reqwest loop (`buffer_unordered(c)`, no DataFusion). \
             ideal = ceil(N/c)·L; efficiency = ideal / wall. At c = 1 only {} calls are \
             made and the wall time is extrapolated to N (marked *).",
            sizes.seed_latency_ms, sizes.serial_calls
        ),
        &[
            "max_in_flight c",
            "calls made",
            "wall s",
            "ideal s",
            "efficiency",
            "peak in flight (server)",
            "reqwest loop wall s",
            "reqwest efficiency",
            "ours / reqwest (wall)",
        ],
    );
    for c in [1, 16, 64, 256, 1000] {
        let calls = if c == 1 { sizes.serial_calls } else { n };
        let scale = n as f64 / calls as f64;
        let ctx = session(&[format!("SET async_udf.max_in_flight = {c}")]).await?;
        api.reset_stats();
        let select =
            format!("SELECT http_get('{url}?id=' || value) AS r FROM generate_series(1, {calls})");
        let wall = to_noop(&ctx, &select, calls).await? * scale;
        let stats = api.stats();
        assert_eq!(stats.completed as usize, calls, "every call answered");
        let (loop_wall, ok) = reqwest_loop(&url, calls, c).await;
        assert_eq!(ok, calls, "every loop call answered");
        let loop_wall = loop_wall * scale;
        let ideal = n.div_ceil(c) as f64 * l;
        let star = if c == 1 { "*" } else { "" };
        table.row(vec![
            c.to_string(),
            count(calls as f64),
            format!("{}{star}", secs(wall)),
            secs(ideal),
            format!("{:.2}", ideal / wall),
            stats.peak_in_flight.to_string(),
            format!("{}{star}", secs(loop_wall)),
            format!("{:.2}", ideal / loop_wall),
            format!("{:.2}", wall / loop_wall),
        ]);
        report.seed_points.push(SeedPoint {
            concurrency: c,
            ours: wall,
            reqwest: loop_wall,
            ideal,
        });
        if [16, 64, 256].contains(&c) {
            report.target(
                &format!("seed job efficiency ≥ 0.95 at c = {c}"),
                format!("{:.3}", ideal / wall),
                ideal / wall >= 0.95,
            );
        }
        if c == 1000 {
            report.target(
                &format!(
                    "seed job ({n} × {} ms) at c = 1000 under 0.5 s",
                    sizes.seed_latency_ms
                ),
                format!("{} s", secs(wall)),
                wall < 0.5,
            );
        }
    }
    report.table(table);

    // the naive UDF awaits one row after another: a few rows, extrapolated
    let calls = sizes.serial_calls;
    let ctx = session(&[]).await?;
    ctx.register_udf(NaiveGet::udf(1));
    let select =
        format!("SELECT naive_get('{url}?id=' || value) AS r FROM generate_series(1, {calls})");
    let naive = to_noop(&ctx, &select, calls).await? * n as f64 / calls as f64;
    let best = report
        .seed_points
        .iter()
        .map(|p| p.ours)
        .fold(f64::INFINITY, f64::min);
    let mut t = Table::new(
        "Naive async UDF",
        &format!(
            "An `AsyncScalarUDFImpl` that awaits one row after another (what DataFusion's \
             async UDF example leads to), on the stock `AsyncFuncExec`: {calls} calls, \
             extrapolated to {n}."
        ),
        &["design", "wall s for N", "vs http_get at its best c"],
    );
    t.row(vec![
        "naive one-row-at-a-time UDF".into(),
        format!("{}*", secs(naive)),
        format!("{:.0}× slower", naive / best),
    ]);
    report.table(t);
    Ok(())
}
