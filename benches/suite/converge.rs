//! Throttling that converges (issue #35): servers that only refuse past a
//! sliding window, that advertise their quota in headers, that queue instead
//! of refusing — rows of the Throttling table, each with its target.
//!
//! Defaults except `max_in_flight = 256` and `http.max_retries = 10`. The
//! mock counts what it receives (refusals, the time each served request
//! spent from arrival to answer).

use std::time::Duration;

use datafusion::common::Result;
use datafusion_async_udf::mock::{MockApi, MockConfig, MockStats};

use crate::Sizes;
use crate::report::{Report, Table};
use crate::seed::session;

/// `rows` GETs of `path` (with `&id=N`) on a fresh session and mock answering
/// after `latency_ms`: wall seconds, what the mock saw, and the job's start
/// and end as seconds of the clock.
/// With `warm`, one call is made first (its answer tells what the server
/// advertises) and the mock's counters start afresh after it.
async fn job(
    rows: usize,
    latency_ms: u64,
    path: &str,
    warm: bool,
) -> Result<(f64, MockStats, (f64, f64))> {
    let clock = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let api = MockApi::start(MockConfig::with_latency(Duration::from_millis(latency_ms))).await?;
    let ctx = session(&[
        "SET async_udf.max_in_flight = 256".into(),
        "SET http.max_retries = 10".into(),
    ])
    .await?;
    let url = api.url(path);
    if warm {
        ctx.sql(&format!("SELECT http_get('{url}&id=warm')['status']"))
            .await?
            .collect()
            .await?;
        api.reset_stats();
    }
    let began = clock();
    let wall = crate::throttling::all_answered(&ctx, &format!("{url}&"), rows).await?;
    Ok((wall, api.stats(), (began, clock())))
}

/// A server allowing `rate` requests/s over a sliding second, refusing the
/// rest with a bare 429: the rate is learned.
async fn window(t: &mut Table, report: &mut Report, rows: usize, rate: u32) -> Result<()> {
    let path = format!("/limited/none?limit={rate}&window_ms=1000&sliding=1");
    let (wall, s, _) = job(rows, 20, &path, false).await?;
    let of = rows as f64 / wall / f64::from(rate);
    let refused = s.throttled as f64 / s.requests.max(1) as f64;
    let met = of >= 0.95 && refused <= 0.03;
    let target = "≥ 0.95 of the rate, ≤ 3 % refused";
    t.row(crate::throttling::row(
        &format!("{rate} requests/s, sliding 1 s window, bare 429s, 20 ms"),
        rows,
        "true",
        wall,
        rows as f64 / f64::from(rate),
        &format!("{of:.2} of the rate (target {target})"),
        &s,
    ));
    report.target(
        &format!("throttling: {rate}/s sliding window without headers, {rows} rows: {target}"),
        format!("{of:.2}, refused {:.1} %", refused * 100.0),
        met,
    );
    Ok(())
}

/// A fixed window of 20 per 2 s advertised in `style`'s headers, after a
/// first call (whose answer tells the quota).
async fn advertised(t: &mut Table, report: &mut Report, rows: usize, style: &str) -> Result<()> {
    let path = format!("/limited/{style}?limit=20&window_ms=2000");
    let (wall, s, (began, ended)) = job(rows, 20, &path, true).await?;
    // the quota of the windows the job spanned (the mock's windows of 2 s
    // start on even seconds of the clock)
    let windows = ((ended / 2.0).floor() - (began / 2.0).floor() + 1.0).max(1.0);
    let used = rows as f64 / (20.0 * windows);
    let met = s.throttled == 0 && used >= 0.95;
    let target = "0 refused after the first answer, ≥ 0.95 of the quota";
    t.row(crate::throttling::row(
        &format!("20 per 2 s fixed window, advertised ({style}), 20 ms"),
        rows,
        "true",
        wall,
        rows as f64 / 10.0,
        &format!(
            "{used:.2} of the quota of {windows:.0} windows, {} refused after the first answer (target {target})",
            s.throttled
        ),
        &s,
    ));
    report.target(
        &format!("throttling: advertised quota ({style}): {target}"),
        format!("{used:.2}, {} refused after the first answer", s.throttled),
        met,
    );
    Ok(())
}

/// A server serving 16 at a time, 50 ms each, queueing the rest.
async fn queue(t: &mut Table, report: &mut Report, rows: usize) -> Result<()> {
    let (wall, s, _) = job(rows, 50, "/queue?servers=16", false).await?;
    let capacity = 16.0 / 0.05;
    let of = rows as f64 / wall / capacity;
    let latency = s.mean_served_ms / 50.0;
    let met = latency <= 2.0 && of >= 0.9;
    let target = "mean latency ≤ 2× unloaded at ≥ 0.9 of capacity";
    t.row(crate::throttling::row(
        "serves 16 at a time, 50 ms, the rest wait in line",
        rows,
        "true",
        wall,
        rows as f64 / capacity,
        &format!(
            "{of:.2} of capacity, mean latency {:.0} ms = {latency:.1}× unloaded (target {target})",
            s.mean_served_ms
        ),
        &s,
    ));
    report.target(
        &format!("throttling: a queueing server: {target}"),
        format!("{latency:.1}×, {of:.2} of capacity"),
        met,
    );
    Ok(())
}

/// The rows of issue #35, added to the Throttling table.
pub async fn rows(sizes: &Sizes, t: &mut Table, report: &mut Report) -> Result<()> {
    let (sliding, advertised_rows, queue_rows, fifty) = sizes.converge_rows;
    window(t, report, sliding, 5).await?;
    for style in ["ietf", "github", "openai"] {
        advertised(t, report, advertised_rows, style).await?;
    }
    queue(t, report, queue_rows).await?;
    window(t, report, fifty, 50).await?;
    Ok(())
}
