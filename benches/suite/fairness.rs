//! Several queries at once: a small job submitted while a big one holds the
//! whole budget, with the fair share on and off.
//!
//! The big job (100,000 calls) runs as a background job and fills the budget;
//! then a small job of `n` calls is submitted and awaited. Its ideal is
//! ceil(n / fair share) · L with the fair share = budget / 2 (two queries of
//! equal weight). The big job's throughput is measured over two latency periods
//! before the small job and two after it ended: work-conserving sharing gives
//! the big job the whole budget back.

use std::time::{Duration, Instant};

use datafusion::common::Result;
use datafusion_async_udf::jobs::QueryHandle;
use datafusion_async_udf::mock::{MockApi, MockConfig};
use datafusion_async_udf::{DataFrameAsyncExt, SessionAsyncExt};

use crate::Sizes;
use crate::report::{Report, Table, secs};
use crate::seed::session;

/// The big job's calls per second over `window` by Little's law: its mean
/// calls in flight (its own counter, read every millisecond) over the mock's
/// `latency`. Counting the calls that end within the window misreads this job:
/// its first `budget` calls start together and so end together, a wave every
/// latency period, and a window of two periods holds one wave or two depending
/// on where it starts (one run read exactly half the full rate that way).
async fn rate<T>(big: &QueryHandle<T>, window: Duration, latency: Duration) -> f64 {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    // a late read is not made up by a burst of reads at one instant
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut sum, mut reads) = (0usize, 0u32);
    while start.elapsed() < window {
        tick.tick().await;
        sum += big.progress().in_flight;
        reads += 1;
    }
    sum as f64 / f64::from(reads.max(1)) / latency.as_secs_f64()
}

pub async fn run(sizes: &Sizes, report: &mut Report) -> Result<()> {
    let (budget, small, latency_ms) = (
        sizes.fair_budget,
        sizes.fair_small_calls,
        sizes.seed_latency_ms,
    );
    let latency = Duration::from_millis(latency_ms);
    let api = MockApi::start(MockConfig::with_latency(latency)).await?;
    let share = budget / 2;
    let ideal = small.div_ceil(share) as f64 * latency.as_secs_f64();
    let full_rate = budget as f64 / latency.as_secs_f64();
    let mut t = Table::new(
        "Several queries at once: fair share of the budget",
        &format!(
            "A job of 100,000 calls × {latency_ms} ms fills the budget ({budget}); then a small \
             job of {small} calls is submitted and awaited. Fair share = budget / 2 = {share}; the \
             small job's ideal = ceil({small} / {share}) × {latency_ms} ms = {}. The big job's \
             calls/s over two latency periods before the small job and after it ended, by \
             Little's law: its mean calls in flight (read every ms) / {latency_ms} ms (the whole \
             budget: {full_rate:.0}/s). The small job is http_get, or map_in_batches('post_json') \
             with one row per chunk (one call per chunk).",
            secs(ideal)
        ),
        &[
            "small job",
            "async_udf.fair_share",
            "small job wall s",
            "ideal s",
            "wall / ideal",
            "small job's peak in flight",
            "big job calls/s before",
            "big job calls/s after",
        ],
    );
    for kind in ["http_get", "map_in_batches"] {
        for fair in [true, false] {
            let m = trial(&api, budget, small, latency, kind, fair).await?;
            t.row(vec![
                kind.into(),
                fair.to_string(),
                secs(m.wall),
                secs(ideal),
                format!("{:.2}", m.wall / ideal),
                m.peak.to_string(),
                format!("{:.0}", m.before),
                format!("{:.0}", m.after),
            ]);
            if fair {
                report.target(
                    &format!(
                        "fair share: a small {kind} job next to a big one within 2 × its ideal"
                    ),
                    format!("{:.2} × ideal", m.wall / ideal),
                    m.wall <= 2.0 * ideal,
                );
                report.target(
                    &format!("fair share: the big job back to ≥ 0.9 of the full budget's rate after the small {kind} job"),
                    format!("{:.2}", m.after / full_rate),
                    m.after >= 0.9 * full_rate,
                );
            }
        }
    }
    report.table(t);
    Ok(())
}

/// What one run measured.
struct Measured {
    /// The small job's wall time, s.
    wall: f64,
    /// The small job's peak in flight.
    peak: usize,
    /// The big job's calls/s before the small job and after it.
    before: f64,
    after: f64,
}

/// The big job, then the small `kind` job next to it.
async fn trial(
    api: &MockApi,
    budget: usize,
    small: usize,
    latency: Duration,
    kind: &str,
    fair: bool,
) -> Result<Measured> {
    let url = api.url("/v1/images/search");
    let ctx = session(&[
        format!("SET async_udf.max_in_flight = {budget}"),
        format!("SET async_udf.fair_share = {fair}"),
    ])
    .await?;
    let big = ctx
        .sql(&format!(
            "SELECT http_get('{url}?id=big-' || value) AS r FROM generate_series(1, 100000)"
        ))
        .await?
        .write_noop_async()?;
    let start = Instant::now();
    while big.progress().in_flight < budget && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = rate(&big, latency * 2, latency).await;
    // the small job's map_in_batches: one call per row (the big job's
    // settings were taken when it started)
    ctx.sql("SET async_udf.chunk_size = 1")
        .await?
        .collect()
        .await?;
    let sql = match kind {
        "http_get" => format!(
            "SELECT http_get('{url}?id=small-' || value) AS r FROM generate_series(1, {small})"
        ),
        _ => format!(
            "SELECT * FROM map_in_batches('post_json', \
             (SELECT value FROM generate_series(1, {small})), '{}')",
            api.url("/v1/batch")
        ),
    };
    let start = Instant::now();
    let job = ctx.sql_async(&sql).await?;
    let small_job = job.job().clone();
    job.await?;
    let wall = start.elapsed().as_secs_f64();
    let after = rate(&big, latency * 2, latency).await;
    big.cancel();
    let _ = big.await;
    Ok(Measured {
        wall,
        peak: small_job.progress().peak_in_flight,
        before,
        after,
    })
}
