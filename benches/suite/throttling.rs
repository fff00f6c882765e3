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

/// A reorder window of 256 × the budget (the default is 32 ×): rows finished
/// behind one that waits out a `Retry-After` or two are held, not stalled.
const LONG_WINDOW: usize = 65_536;

/// One job against a mock with `faults`: wall seconds, what the mock saw.
async fn job(
    rows: usize,
    latency_ms: u64,
    faults: Faults,
    adaptive: bool,
    window_rows: Option<usize>,
) -> Result<(f64, MockStats)> {
    let config = MockConfig::with_latency(Duration::from_millis(latency_ms)).with_faults(faults);
    let api = MockApi::start(config).await?;
    let mut settings = vec![
        "SET async_udf.max_in_flight = 256".into(),
        "SET http.max_retries = 10".into(),
        format!("SET http.adaptive = {adaptive}"),
    ];
    settings.extend(window_rows.map(|n| format!("SET async_udf.window_rows = {n}")));
    let ctx = session(&settings).await?;
    let url = api.url("/v1/images/search?");
    let wall = all_answered(&ctx, &url, rows).await?;
    Ok((wall, api.stats()))
}

/// Runs `rows` GETs of `url` followed by `id=N` and checks that every one
/// answered 200: the wall seconds.
pub async fn all_answered(
    ctx: &datafusion::prelude::SessionContext,
    url: &str,
    rows: usize,
) -> Result<f64> {
    let start = Instant::now();
    let ok = ctx
        .sql(&format!(
            "SELECT count(*) FROM generate_series(1, {rows}) \
             WHERE http_get('{url}id=' || value)['status'] = 200"
        ))
        .await?
        .collect()
        .await?;
    let wall = start.elapsed().as_secs_f64();
    let answered = arrow::util::pretty::pretty_format_batches(&ok)?.to_string();
    assert!(answered.contains(&format!("| {rows} ")), "{answered}");
    Ok(wall)
}

pub async fn run(sizes: &Sizes, report: &mut Report) -> Result<()> {
    let (shed_rows, long_rows, cap_rows, rate_rows) = sizes.throttle_rows;
    let mut t = Table::new(
        "Throttling",
        "Defaults except `async_udf.max_in_flight = 256`, `http.max_retries = 10`; each \
         server behaviour with `http.adaptive` off (fixed limits: the behaviour before issue \
         #16) and on, beside the same job on a fault-free mock in the same run. Every row ends \
         with status 200. refused = 429 and 503 answers / requests the mock received. The \
         rows of issue #35 (each with its target) put the ideal wall time in the fault-free \
         column.",
        &[
            "server",
            "rows",
            "http.adaptive",
            "wall s",
            "fault-free wall s",
            "measure",
            "requests",
            "refused",
            "refused / requests",
        ],
    );
    let shed = Faults {
        seed: 16,
        throttle_rate: 0.05,
        ..Faults::default()
    };
    let servers = [
        (
            "random 5 % 429 (Retry-After 1 s), 20 ms",
            shed_rows,
            20,
            shed,
        ),
        (
            "random 5 % 429 (Retry-After 1 s), 20 ms",
            long_rows,
            20,
            shed,
        ),
        (
            "503 above 32 in flight, 50 ms",
            cap_rows,
            50,
            Faults {
                max_in_flight: 32,
                ..Faults::default()
            },
        ),
        (
            "5 requests/s, 429 beyond, 20 ms",
            rate_rows,
            20,
            Faults {
                per_second: 5,
                ..Faults::default()
            },
        ),
    ];
    for (i, (server, rows, latency, faults)) in servers.into_iter().enumerate() {
        let (clean, _) = job(rows, latency, Faults::default(), true, None).await?;
        for adaptive in [false, true] {
            let (wall, s) = job(rows, latency, faults, adaptive, None).await?;
            let refused = refused_share(&s);
            let (measure, target) = judge(i, rows, latency, wall, clean, refused);
            t.row(row(
                server,
                rows,
                &adaptive.to_string(),
                wall,
                clean,
                &measure,
                &s,
            ));
            if let (true, Some((what, value, met))) = (adaptive, target) {
                report.target(&format!("throttling: {what}"), value, met);
            }
        }
    }
    more_rows(&mut t, report, shed, shed_rows, long_rows).await?;
    crate::converge::rows(sizes, &mut t, report).await?;
    report.table(t);
    Ok(())
}

/// The long random-429 job with a larger reorder window, and the fault-free
/// job with the adaptive limits off and on.
async fn more_rows(
    t: &mut Table,
    report: &mut Report,
    shed: Faults,
    shed_rows: usize,
    long_rows: usize,
) -> Result<()> {
    // the long job again with a larger reorder window
    let window = Some(LONG_WINDOW);
    let (clean, _) = job(long_rows, 20, Faults::default(), true, window).await?;
    let (wall, s) = job(long_rows, 20, shed, true, window).await?;
    t.row(row(
        &format!("random 5 % 429, window_rows = {LONG_WINDOW}"),
        long_rows,
        "true",
        wall,
        clean,
        &format!("throughput {:.2} of fault-free", clean / wall),
        &s,
    ));
    // no faults: adaptation must not cost
    let (off, _) = job(shed_rows, 20, Faults::default(), false, None).await?;
    let (on, s) = job(shed_rows, 20, Faults::default(), true, None).await?;
    t.row(row(
        "no faults, 20 ms",
        shed_rows,
        "on vs off",
        on,
        off,
        &format!("wall {:.2} × fixed limits'", on / off),
        &s,
    ));
    report.target(
        "throttling: no faults, adaptive limits within 5 % of fixed ones",
        format!("{:.2} × wall", on / off),
        on <= 1.05 * off,
    );
    Ok(())
}

fn refused_share(s: &MockStats) -> f64 {
    (s.throttled + s.refused) as f64 / s.requests.max(1) as f64
}

pub fn row(
    server: &str,
    rows: usize,
    adaptive: &str,
    wall: f64,
    clean: f64,
    measure: &str,
    s: &MockStats,
) -> Vec<String> {
    vec![
        server.into(),
        count(rows as f64),
        adaptive.into(),
        secs(wall),
        secs(clean),
        measure.into(),
        count(s.requests as f64),
        count((s.throttled + s.refused) as f64),
        format!("{:.0} %", refused_share(s) * 100.0),
    ]
}

/// The measure of server `i`'s row, and its target if it has one:
/// (measure, (target, measured, met)).
fn judge(
    i: usize,
    rows: usize,
    latency_ms: u64,
    wall: f64,
    clean: f64,
    refused: f64,
) -> (String, Option<(&'static str, String, bool)>) {
    match i {
        0 | 1 => {
            let share = clean / wall;
            let measure = format!("throughput {share:.2} of fault-free");
            // a short job lasts as long as its unluckiest row's waits (two
            // 429s: 2 s): the target is the long job's, whose throughput that
            // tail does not decide
            let target = (i == 1).then(|| {
                (
                    "random 5 % 429 keeps ≥ 50 % of the fault-free throughput",
                    format!("{share:.2}"),
                    share >= 0.5,
                )
            });
            (measure, target)
        }
        2 => {
            let e = rows.div_ceil(32) as f64 * latency_ms as f64 / 1000.0 / wall;
            (
                format!("efficiency {e:.2} of ceil(N/32)·L"),
                Some((
                    "a server refusing above 32 in flight: efficiency ≥ 0.8 and refused ≤ 10 %",
                    format!("{e:.2}, refused {:.0} %", refused * 100.0),
                    e >= 0.8 && refused <= 0.1,
                )),
            )
        }
        _ => {
            let of = rows as f64 / wall / 5.0;
            (
                format!("{of:.2} of the allowed rate"),
                Some((
                    "a server allowing 5 requests/s: ≥ 0.9 of the rate and refused ≤ 10 %",
                    format!("{of:.2}, refused {:.0} %", refused * 100.0),
                    of >= 0.9 && refused <= 0.1,
                )),
            )
        }
    }
}
