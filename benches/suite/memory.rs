//! Peak memory: `http_get` over many rows into the NOOP sink, with 1 KB bodies
//! (growth with rows) and 1 MB bodies (the window bounded in bytes, with and
//! without a memory pool limit), each in a fresh child process (this binary,
//! `--memory-child ROWS URL [POOL_BYTES]`) so the peak RSS (`VmHWM`) is that
//! query's alone. The mock API runs in the parent.

use std::process::Command;

use std::sync::Arc;

use datafusion::common::{Result, exec_datafusion_err};
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_async_udf::mock::{MockApi, MockConfig};

use crate::Sizes;
use crate::report::{Report, Table, count, secs};
use crate::seed::{session, to_noop};

/// `VmHWM` (peak resident set) of this process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The child's side: runs the query (in a memory pool of `limit` bytes, like
/// `dfasync --memory-limit`), prints `idle_kib wall_s peak_kib`.
pub async fn child(rows: usize, url: &str, limit: Option<usize>) -> Result<()> {
    let ctx = match limit {
        None => session(&[]).await?,
        Some(bytes) => {
            let runtime = RuntimeEnvBuilder::new()
                .with_memory_pool(Arc::new(GreedyMemoryPool::new(bytes)))
                .build_arc()?;
            let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
            datafusion_async_udf::register_all(&ctx)?;
            ctx
        }
    };
    let idle = peak_rss_kib();
    // distinct URLs: identical GETs in flight would share one request
    let select =
        format!("SELECT http_get('{url}?n=' || value) AS r FROM generate_series(1, {rows})");
    let wall = to_noop(&ctx, &select, rows).await?;
    println!("{idle} {wall} {}", peak_rss_kib());
    Ok(())
}

/// Runs one child; returns `(idle KiB, wall s, peak KiB)`.
fn measure(api: &MockApi, rows: usize, url: &str, limit: Option<usize>) -> Result<(f64, f64, f64)> {
    api.reset_stats();
    let mut args = vec![
        "--memory-child".to_string(),
        rows.to_string(),
        url.to_string(),
    ];
    args.extend(limit.map(|l| l.to_string()));
    let out = Command::new(std::env::current_exe()?)
        .args(&args)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let figures: Vec<f64> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [idle, wall, peak] = figures[..] else {
        return Err(exec_datafusion_err!(
            "memory child for {rows} rows said {text:?} / {:?}",
            String::from_utf8_lossy(&out.stderr)
        ));
    };
    assert_eq!(api.stats().completed as usize, rows, "every call answered");
    Ok((idle, wall, peak))
}

fn mib(kib: f64) -> String {
    format!("{:.0}", kib / 1024.0)
}

pub async fn run(sizes: &Sizes, report: &mut Report) -> Result<()> {
    let api = MockApi::start(MockConfig::default()).await?;
    small_bodies(&api, sizes, report)?;
    big_bodies(&api, sizes, report)
}

fn small_bodies(api: &MockApi, sizes: &Sizes, report: &mut Report) -> Result<()> {
    let url = api.url("/bytes/1024");
    let mut t = Table::new(
        "Memory",
        "Peak resident set (VmHWM) of a process that runs `SELECT http_get(url) … FROM \
         generate_series(1, N)` into the NOOP sink, 1 KB bodies, defaults (64 in flight, \
         8,192-row batches); idle = the same process before the query.",
        &[
            "rows",
            "wall s",
            "idle RSS MiB",
            "peak RSS MiB",
            "peak / peak(smallest)",
        ],
    );
    let mut peaks = Vec::new();
    for rows in [sizes.memory_rows / 10, sizes.memory_rows] {
        let (idle, wall, peak) = measure(api, rows, &url, None)?;
        peaks.push(peak);
        t.row(vec![
            count(rows as f64),
            secs(wall),
            mib(idle),
            mib(peak),
            format!("{:.2}", peak / peaks[0]),
        ]);
    }
    report.table(t);
    let (small, large) = (peaks[0], peaks[1]);
    report.target(
        &format!(
            "peak RSS at {} rows ≤ 256 MB",
            count(sizes.memory_rows as f64)
        ),
        format!("{:.0} MiB", large / 1024.0),
        large <= 256.0 * 1024.0,
    );
    report.target(
        "peak RSS grows ≤ 1.2× from N/10 to N rows",
        format!("{:.2}×", large / small),
        large / small <= 1.2,
    );
    Ok(())
}

/// 1 MB bodies: what the window holds is bounded in bytes (`async_udf.window_bytes`,
/// 64 MiB by default) and by the memory pool when one is set.
fn big_bodies(api: &MockApi, sizes: &Sizes, report: &mut Report) -> Result<()> {
    const MB: usize = 1_000_000;
    const LIMIT: usize = 256 << 20;
    let url = api.url(&format!("/bytes/{MB}"));
    let rows = sizes.big_body_rows;
    let mut t = Table::new(
        "Memory, 1 MB bodies",
        "The same query over 1 MB bodies (`/bytes/1000000`), defaults, and in a 256 MiB \
         memory pool (`dfasync --memory-limit 256M`). Without the byte bound the reorder \
         window (2,048 rows) alone would hold 2 GB.",
        &["rows", "memory pool", "wall s", "peak RSS MiB", "MB/s"],
    );
    let mut peaks = Vec::new();
    for limit in [None, Some(LIMIT)] {
        let (_, wall, peak) = measure(api, rows, &url, limit)?;
        peaks.push(peak);
        t.row(vec![
            count(rows as f64),
            limit.map_or("none".into(), |l| format!("{} MiB", l >> 20)),
            secs(wall),
            mib(peak),
            format!("{:.0}", rows as f64 / wall),
        ]);
    }
    report.table(t);
    report.target(
        &format!(
            "peak RSS, {} rows × 1 MB, defaults ≤ 512 MB",
            count(rows as f64)
        ),
        format!("{} MiB", mib(peaks[0])),
        peaks[0] <= 512.0 * 1024.0,
    );
    report.target(
        &format!(
            "peak RSS, {} rows × 1 MB, --memory-limit 256M ≤ 400 MB",
            count(rows as f64)
        ),
        format!("{} MiB", mib(peaks[1])),
        peaks[1] <= 400.0 * 1024.0,
    );
    Ok(())
}
