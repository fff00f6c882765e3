//! The benchmark suite: the seed job at several concurrencies beside its baselines,
//! overhead-bound runs, memory and heavy-tail utilization, in one run on one machine.
//!
//! ```text
//! cargo bench --bench suite                  # full run (a few minutes)
//! cargo bench --bench suite -- --quick       # smoke run, seconds
//! cargo test --all-features --bench suite -- --quick   # the same in the debug build (CI)
//! cargo bench --bench suite -- --write       # full run, rewrites BENCHMARKS.md's results
//! cargo bench --bench suite -- --only seed,memory
//! cargo bench --bench suite --features ballista -- --only cluster
//! ```
//!
//! Tables are printed and written, with the plots, to `target/bench/`
//! (`report.md`, `report.json`, `seed.svg`, `throughput.svg`).

mod baselines;
#[cfg(feature = "ballista")]
mod cluster;
mod converge;
mod fairness;
mod guards;
mod heavy_tail;
mod journal;
mod memory;
mod overhead;
mod plots;
mod report;
mod seed;
mod throttling;

use std::path::{Path, PathBuf};

use datafusion::common::{DataFusionError, Result};

use report::Report;

/// How big each part of a run is.
pub struct Sizes {
    /// Calls of the seed job.
    pub seed_calls: usize,
    /// Latency of each seed call.
    pub seed_latency_ms: u64,
    /// Calls of the serial (max_in_flight = 1) run, extrapolated.
    pub serial_calls: usize,
    /// Calls against a zero-latency mock (overhead).
    pub zero_latency_calls: usize,
    /// Duration of each wrk run.
    pub wrk_seconds: u64,
    /// Rows of the typed identity function runs.
    pub identity_rows: usize,
    /// Rows of the 1 KB-body memory run.
    pub memory_rows: usize,
    /// Rows of 1 MB bodies.
    pub big_body_rows: usize,
    /// Calls of the heavy-tail run.
    pub heavy_tail_calls: usize,
    /// The budget of the fairness runs (latency: `seed_latency_ms`).
    pub fair_budget: usize,
    /// Calls of the small job of the fairness runs.
    pub fair_small_calls: usize,
    /// Rows of the throttling runs: random 429s (a short job and a long one),
    /// a concurrency cap, a rate cap.
    pub throttle_rows: (usize, usize, usize, usize),
    /// Rows of the converging-throttling runs: a 5/s sliding window, each
    /// advertised 20 per 2 s window, the queueing server, a 50/s window.
    pub converge_rows: (usize, usize, usize, usize),
    /// Calls of the guarded-calls runs.
    pub guarded_calls: usize,
    /// Latency of each guarded-calls run call.
    pub guarded_latency_ms: u64,
    /// Zero-latency GETs of the journal runs (each written, then replayed).
    pub journal_calls: usize,
    /// Calls of the cluster run (feature `ballista`), at the seed latency.
    #[cfg_attr(not(feature = "ballista"), allow(dead_code))]
    pub cluster_calls: usize,
}

const FULL: Sizes = Sizes {
    seed_calls: 1000,
    seed_latency_ms: 350,
    serial_calls: 20,
    zero_latency_calls: 100_000,
    wrk_seconds: 5,
    identity_rows: 10_000_000,
    memory_rows: 1_000_000,
    big_body_rows: 20_000,
    heavy_tail_calls: 5000,
    fair_budget: 64,
    fair_small_calls: 50,
    throttle_rows: (5000, 50_000, 2000, 50),
    converge_rows: (300, 200, 4000, 1000),
    guarded_calls: 10_000,
    guarded_latency_ms: 50,
    journal_calls: 200_000,
    cluster_calls: 10_000,
};

const QUICK: Sizes = Sizes {
    seed_calls: 200,
    seed_latency_ms: 50,
    serial_calls: 4,
    zero_latency_calls: 2000,
    wrk_seconds: 1,
    identity_rows: 200_000,
    memory_rows: 20_000,
    big_body_rows: 1_000,
    heavy_tail_calls: 500,
    fair_budget: 16,
    fair_small_calls: 20,
    throttle_rows: (500, 2000, 200, 10),
    converge_rows: (10, 30, 200, 50),
    guarded_calls: 500,
    guarded_latency_ms: 20,
    journal_calls: 5_000,
    cluster_calls: 400,
};

/// The sections; `cluster` runs only in a build with feature `ballista`
/// (`cargo bench --bench suite --features ballista`).
const SECTIONS: [&str; 10] = [
    "seed",
    "overhead",
    "engine",
    "memory",
    "heavy_tail",
    "fairness",
    "throttling",
    "guards",
    "journal",
    "cluster",
];
const MARKER: &str = "<!-- results below: written by `cargo bench --bench suite -- --write` -->";

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--memory-child") {
        let rows = args.get(i + 1).and_then(|r| r.parse().ok()).unwrap_or(0);
        let url = args.get(i + 2).cloned().unwrap_or_default();
        let limit = args.get(i + 3).and_then(|r| r.parse().ok());
        return memory::child(rows, &url, limit).await;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let write = args.iter().any(|a| a == "--write");
    let only: Vec<String> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map_or_else(
            || {
                SECTIONS
                    .iter()
                    .map(std::string::ToString::to_string)
                    .collect()
            },
            |s| s.split(',').map(str::to_string).collect(),
        );
    if let Some(bad) = only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
        return Err(DataFusionError::Plan(format!(
            "unknown section {bad:?}; sections: {}",
            SECTIONS.join(", ")
        )));
    }
    let sizes = if quick { &QUICK } else { &FULL };
    let mut report = Report {
        mode: if quick { "quick" } else { "full" }.into(),
        machine: report::machine(),
        ..Report::default()
    };
    println!(
        "benchmark suite ({} run) on {}",
        report.mode, report.machine
    );
    let wants = |s: &str| only.iter().any(|o| o == s);
    if wants("seed") {
        seed::run(sizes, &mut report).await?;
    }
    if wants("overhead") {
        overhead::http(sizes, &mut report).await?;
    }
    if wants("engine") {
        overhead::engine(sizes, &mut report).await?;
    }
    if wants("memory") {
        memory::run(sizes, &mut report).await?;
    }
    if wants("heavy_tail") {
        heavy_tail::run(sizes, &mut report).await?;
    }
    if wants("fairness") {
        fairness::run(sizes, &mut report).await?;
    }
    if wants("throttling") {
        throttling::run(sizes, &mut report).await?;
    }
    if wants("guards") {
        guards::run(sizes, &mut report).await?;
    }
    if wants("journal") {
        journal::run(sizes, &mut report).await?;
    }
    #[cfg(feature = "ballista")]
    if wants("cluster") {
        cluster::run(sizes, &mut report).await?;
    }
    #[cfg(not(feature = "ballista"))]
    if wants("cluster") && only.len() == 1 {
        return Err(DataFusionError::Plan(
            "the cluster section needs `--features ballista`".into(),
        ));
    }
    let dir = target_dir().join("bench");
    report.write(&dir)?;
    println!("\nwritten to {}", dir.display());
    if write {
        write_benchmarks_md(&report)?;
    }
    Ok(())
}

/// The cargo target directory this binary was built in (`target/release/deps/..`).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Replaces everything after [`MARKER`] in BENCHMARKS.md with this run's results,
/// and copies the plots to `benches/results/`.
fn write_benchmarks_md(report: &Report) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path)?;
    let head = text
        .split_once(MARKER)
        .map(|(head, _)| head)
        .ok_or_else(|| DataFusionError::Plan(format!("no results marker in {}", path.display())))?;
    let plots = root.join("benches/results");
    std::fs::create_dir_all(&plots)?;
    report.plots(&plots)?;
    let body = report.markdown("benches/results");
    std::fs::write(&path, format!("{head}{MARKER}\n\n{body}"))?;
    println!("rewrote {} and {}", path.display(), plots.display());
    Ok(())
}
