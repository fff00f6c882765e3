//! Peak memory: `http_get` over many rows with 1 KB bodies into the NOOP sink, each
//! size in a fresh child process (this binary, `--memory-child ROWS URL`) so the
//! peak RSS (`VmHWM`) is that query's alone. The mock API runs in the parent.

use std::process::Command;

use datafusion::common::{Result, exec_datafusion_err};
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

/// The child's side: runs the query, prints `idle_kib wall_s peak_kib`.
pub async fn child(rows: usize, url: &str) -> Result<()> {
    let ctx = session(&[]).await?;
    let idle = peak_rss_kib();
    let select = format!("SELECT http_get('{url}') AS r FROM generate_series(1, {rows})");
    let wall = to_noop(&ctx, &select, rows).await?;
    println!("{idle} {wall} {}", peak_rss_kib());
    Ok(())
}

pub async fn run(sizes: &Sizes, report: &mut Report) -> Result<()> {
    let api = MockApi::start(MockConfig::default()).await?;
    let url = api.url("/bytes/1024");
    let exe = std::env::current_exe()?;
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
        api.reset_stats();
        let out = Command::new(&exe)
            .args(["--memory-child", &rows.to_string(), &url])
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
        peaks.push(peak);
        let mib = |kib: f64| format!("{:.0}", kib / 1024.0);
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
