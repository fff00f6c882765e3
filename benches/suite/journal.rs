//! The call journal's cost: the seed job (all calls in flight) and zero-latency
//! GETs with an embedded journal against the same runs without it, and the
//! rate of a rerun that replays every answer from the journal.

use datafusion::common::Result;
use datafusion_async_udf::mock::{MockApi, MockConfig};

use crate::Sizes;
use crate::report::{Report, Table, count, secs};
use crate::seed::{session, to_noop};

/// Concurrency of the zero-latency runs (the default `async_udf.max_in_flight`).
const CONCURRENCY: usize = 64;

pub async fn run(sizes: &Sizes, report: &mut Report) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("dfasync-bench-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut t = Table::new(
        "Call journal",
        &format!(
            "The same job without a journal and with an embedded one (a fresh redb file, \
             fsync per group commit), then the rerun that replays every answer from it. \
             Seed: {} GETs × {} ms, all in flight. Zero latency: {} GETs answered at once, \
             {CONCURRENCY} in flight. Into the NOOP sink; requests counted by the mock.",
            count(sizes.seed_calls as f64),
            sizes.seed_latency_ms,
            count(sizes.journal_calls as f64),
        ),
        &[
            "job", "journal", "rows", "requests", "wall s", "rows/s", "vs off",
        ],
    );
    let jobs = [
        (
            "seed",
            sizes.seed_calls,
            sizes.seed_latency_ms,
            sizes.seed_calls,
        ),
        ("zero latency", sizes.journal_calls, 0, CONCURRENCY),
    ];
    for (i, (job, n, latency, budget)) in jobs.into_iter().enumerate() {
        let config = MockConfig::with_latency(std::time::Duration::from_millis(latency));
        let api = MockApi::start(config).await?;
        let select = format!(
            "SELECT http_get('{}?id=' || value) AS r FROM generate_series(1, {n})",
            api.url("/v1/images/search")
        );
        let path = dir.join(format!("{i}.journal"));
        let _ = std::fs::remove_file(&path);
        let mut off_rate = 0.0;
        for (label, journal) in [
            ("off", String::new()),
            ("on", path.display().to_string()),
            ("replay", path.display().to_string()),
        ] {
            let ctx = session(&[
                format!("SET async_udf.max_in_flight = {budget}"),
                format!("SET async_udf.journal = '{journal}'"),
            ])
            .await?;
            api.reset_stats();
            let wall = to_noop(&ctx, &select, n).await?;
            let requests = api.stats().requests as usize;
            let want = if label == "replay" { 0 } else { n };
            assert_eq!(requests, want, "{job}, journal {label}: requests");
            let rate = n as f64 / wall;
            if label == "off" {
                off_rate = rate;
            }
            t.row(vec![
                job.into(),
                label.into(),
                count(n as f64),
                count(requests as f64),
                secs(wall),
                format!("{rate:.0}"),
                format!("{:.2}", rate / off_rate),
            ]);
            match (job, label) {
                ("seed", "on") => report.target(
                    "seed job (c = all) with the embedded journal within 10 % of without",
                    format!("{:.2}× its wall time", off_rate / rate),
                    rate * 1.10 >= off_rate,
                ),
                ("zero latency", "on") => report.target(
                    "zero-latency GETs with the embedded journal ≥ 0.5 of without",
                    format!("{:.2}", rate / off_rate),
                    rate >= 0.5 * off_rate,
                ),
                ("zero latency", "replay") => report.target(
                    "a rerun replays ≥ 100,000 answered rows/s",
                    format!("{rate:.0} rows/s"),
                    rate >= 100_000.0,
                ),
                _ => {}
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    report.table(t);
    Ok(())
}
