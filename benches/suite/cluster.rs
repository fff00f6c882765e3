//! The seed job on one process and on an in-process Ballista cluster (feature
//! `ballista`): a scheduler and two executors with the same per-executor budget.

use std::fmt::Write as _;
use std::time::Duration;

use datafusion::common::Result;
use datafusion::prelude::SessionContext;
use datafusion_async_udf::cluster::ClusterSetup;
use datafusion_async_udf::mock::{MockApi, MockConfig};

use crate::Sizes;
use crate::report::{Report, Table, count, secs};
use crate::seed::to_noop;

/// Calls in flight per process (per executor on the cluster).
const BUDGET: usize = 100;
const EXECUTORS: usize = 2;
/// Input files: partitions for the executors' task slots.
const FILES: usize = 8;

/// The ids 1..=n in [`FILES`] CSV files under `dir`.
fn ids(dir: &std::path::Path, n: usize) -> std::io::Result<()> {
    let per = n.div_ceil(FILES);
    for f in 0..FILES {
        let mut csv = String::from("id\n");
        for id in (f * per + 1)..=((f + 1) * per).min(n) {
            let _ = writeln!(csv, "{id}");
        }
        std::fs::write(dir.join(format!("part-{f}.csv")), csv)?;
    }
    Ok(())
}

/// Wall seconds of the seed job on `ctx`, after its set-up statements.
async fn job(ctx: &SessionContext, dir: &std::path::Path, url: &str, n: usize) -> Result<f64> {
    for sql in [
        format!(
            "CREATE EXTERNAL TABLE ids (id BIGINT) STORED AS CSV LOCATION '{}/' \
             OPTIONS ('format.has_header' 'true')",
            dir.display()
        ),
        format!("SET async_udf.max_in_flight = {BUDGET}"),
        // one partition per file: tasks for every executor's slots (with the
        // default, one per core, the scan is two tasks, which Ballista's
        // default placement gives to one executor)
        format!("SET datafusion.execution.target_partitions = {FILES}"),
    ] {
        ctx.sql(&sql).await?.collect().await?;
    }
    to_noop(
        ctx,
        &format!("SELECT http_get('{url}?id=' || id) AS r FROM ids"),
        n,
    )
    .await
}

pub async fn run(sizes: &Sizes, report: &mut Report) -> Result<()> {
    let (n, latency) = (
        sizes.cluster_calls,
        Duration::from_millis(sizes.seed_latency_ms),
    );
    let api = MockApi::start(MockConfig::with_latency(latency)).await?;
    let url = api.url("/v1/images/search");
    let dir = tempfile::tempdir()?;
    ids(dir.path(), n)?;
    let mut t = Table::new(
        "Scale out: the seed job on a Ballista cluster",
        &format!(
            "{} calls × {} ms into the NOOP sink, ids read from {FILES} CSV files, \
             `async_udf.max_in_flight = {BUDGET}` per process: one process, and an \
             in-process Ballista 55 cluster (scheduler + {EXECUTORS} executors of 4 task \
             slots, each executor its own budget; all on this machine). ideal = \
             ceil(N / total budget)·L; efficiency = ideal / wall; requests per id as the \
             mock counted them.",
            count(n as f64),
            sizes.seed_latency_ms
        ),
        &[
            "run",
            "total budget",
            "wall s",
            "rows/s",
            "ideal s",
            "efficiency",
            "requests per id (max)",
            "peak in flight",
            "mean in flight",
        ],
    );
    let setup = ClusterSetup::new();
    let runs: [(&str, usize); 2] = [("one process", 1), ("cluster, 2 executors", EXECUTORS)];
    for (label, executors) in runs {
        let ctx = if executors == 1 {
            SessionContext::new_with_state(setup.state()?)
        } else {
            setup.standalone(executors, 4).await?
        };
        api.reset_stats();
        let sub = tempfile::tempdir_in(dir.path())?;
        for f in 0..FILES {
            let name = format!("part-{f}.csv");
            std::fs::copy(dir.path().join(&name), sub.path().join(&name))?;
        }
        let wall = job(&ctx, sub.path(), &url, n).await?;
        let by_id = api.requests_by_id();
        let most = by_id.values().copied().max().unwrap_or(0);
        assert_eq!(by_id.len(), n, "every id requested");
        let total = BUDGET * executors;
        let ideal = n.div_ceil(total) as f64 * latency.as_secs_f64();
        t.row(vec![
            label.into(),
            total.to_string(),
            secs(wall),
            count(n as f64 / wall),
            secs(ideal),
            format!("{:.2}", ideal / wall),
            most.to_string(),
            api.stats().peak_in_flight.to_string(),
            format!("{:.0}", api.stats().mean_in_flight),
        ]);
    }
    report.table(t);
    Ok(())
}
