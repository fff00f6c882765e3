//! Throttling: servers that shed load, refuse work above a concurrency, or
//! allow a few requests per second — each against the same job without faults
//! in the same run (issue #16's yardsticks).
//!
//! Defaults except `max_in_flight = 256` and `http.max_retries = 10`, as a new
//! user would run them. The mock counts what it receives.

use std::time::{Duration, Instant};

use datafusion::common::Result;
use datafusion_async_udf::mock::{Faults, MockApi, MockConfig, MockStats};

use crate::Sizes;
use crate::report::{Report, Table, count, secs};
use crate::seed::session;

/// One job against a mock with `faults`: wall seconds, what the mock saw.
async fn job(rows: usize, latency_ms: u64, faults: Faults) -> Result<(f64, MockStats)> {
    let config = MockConfig::with_latency(Duration::from_millis(latency_ms)).with_faults(faults);
    let api = MockApi::start(config).await?;
    let ctx = session(&[
        "SET async_udf.max_in_flight = 256".into(),
        "SET http.max_retries = 10".into(),
    ])
    .await?;
    let url = api.url("/v1/images/search");
    let start = Instant::now();
    let ok = ctx
        .sql(&format!(
            "SELECT count(*) FROM generate_series(1, {rows}) \
             WHERE http_get('{url}?id=' || value)['status'] = 200"
        ))
        .await?
        .collect()
        .await?;
    let wall = start.elapsed().as_secs_f64();
    let answered = arrow::util::pretty::pretty_format_batches(&ok)?.to_string();
    assert!(answered.contains(&format!("| {rows} ")), "{answered}");
    Ok((wall, api.stats()))
}

pub async fn run(sizes: &Sizes, report: &mut Report) -> Result<()> {
    let (shed_rows, cap_rows, rate_rows) = sizes.throttle_rows;
    let mut t = Table::new(
        "Throttling",
        "Defaults except `async_udf.max_in_flight = 256`, `http.max_retries = 10`; each \
         server behaviour beside the same job on a fault-free mock in the same run. Every row \
         ends with status 200. refused = 429 and 503 answers / requests the mock received.",
        &[
            "server",
            "rows",
            "wall s",
            "fault-free wall s",
            "measure",
            "requests",
            "refused",
            "refused / requests",
        ],
    );
    // 5 % of answers 429 with Retry-After: 1, 20 ms otherwise
    let shed = Faults {
        seed: 16,
        throttle_rate: 0.05,
        ..Faults::default()
    };
    let (wall, s) = job(shed_rows, 20, shed).await?;
    let (clean, _) = job(shed_rows, 20, Faults::default()).await?;
    let share = clean / wall;
    t.row(row(
        "random 5 % 429 (Retry-After 1 s), 20 ms",
        shed_rows,
        wall,
        clean,
        &format!("throughput {share:.2} of fault-free"),
        &s,
    ));
    report.target(
        "throttling: random 5 % 429 keeps ≥ 50 % of the fault-free throughput",
        format!("{share:.2}"),
        share >= 0.5,
    );
    // 503 above 32 in flight, 50 ms answers
    let cap = Faults {
        max_in_flight: 32,
        ..Faults::default()
    };
    let (wall, s) = job(cap_rows, 50, cap).await?;
    let (clean, _) = job(cap_rows, 50, Faults::default()).await?;
    let ideal = cap_rows.div_ceil(32) as f64 * 0.05;
    let efficiency = ideal / wall;
    let refused = refused_share(&s);
    t.row(row(
        "503 above 32 in flight, 50 ms",
        cap_rows,
        wall,
        clean,
        &format!("efficiency {efficiency:.2} of ceil(N/32)·L"),
        &s,
    ));
    report.target(
        "throttling: a server refusing above 32 in flight: efficiency ≥ 0.8",
        format!("{efficiency:.2}"),
        efficiency >= 0.8,
    );
    report.target(
        "throttling: a server refusing above 32 in flight: refused ≤ 10 % of requests",
        format!("{:.0} %", refused * 100.0),
        refused <= 0.1,
    );
    // 5 requests per second, 429 beyond
    let rate = Faults {
        per_second: 5,
        ..Faults::default()
    };
    let (wall, s) = job(rate_rows, 20, rate).await?;
    let (clean, _) = job(rate_rows, 20, Faults::default()).await?;
    let of_allowed = rate_rows as f64 / wall / 5.0;
    let refused = refused_share(&s);
    t.row(row(
        "5 requests/s, 429 beyond, 20 ms",
        rate_rows,
        wall,
        clean,
        &format!("{of_allowed:.2} of the allowed rate"),
        &s,
    ));
    report.target(
        "throttling: a server allowing 5 requests/s: ≥ 0.9 of the allowed rate",
        format!("{of_allowed:.2}"),
        of_allowed >= 0.9,
    );
    report.target(
        "throttling: a server allowing 5 requests/s: refused ≤ 10 % of requests",
        format!("{:.0} %", refused * 100.0),
        refused <= 0.1,
    );
    report.unmeasured(
        "throttling: no faults, adaptive limits on: within 5 % of today",
        "http.adaptive is not built yet (issue #16)".into(),
    );
    report.table(t);
    Ok(())
}

fn refused_share(s: &MockStats) -> f64 {
    (s.throttled + s.refused) as f64 / s.requests.max(1) as f64
}

fn row(
    server: &str,
    rows: usize,
    wall: f64,
    clean: f64,
    measure: &str,
    s: &MockStats,
) -> Vec<String> {
    vec![
        server.into(),
        count(rows as f64),
        secs(wall),
        secs(clean),
        measure.into(),
        count(s.requests as f64),
        count((s.throttled + s.refused) as f64),
        format!("{:.0} %", refused_share(s) * 100.0),
    ]
}
