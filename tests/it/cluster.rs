//! On an in-process Ballista cluster (a scheduler and two executors, feature
//! `ballista`): the same rows as one process, every id called exactly once, and
//! at most executors × budget calls in flight.

use crate::common;

use std::fmt::Write as _;

use arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use datafusion_async_udf::AsyncFn;
use datafusion_async_udf::cluster::ClusterSetup;

use common::{mock, run};

const EXECUTORS: u64 = 2;
const BUDGET: u64 = 4;
const FILES: i64 = 4;
const PER_FILE: i64 = 25;

/// The ids 1..=100 in four CSV files: four partitions spread over the executors.
fn ids(dir: &std::path::Path) {
    for f in 0..FILES {
        let mut csv = String::from("id\n");
        for i in 1..=PER_FILE {
            writeln!(csv, "{}", f * PER_FILE + i).unwrap();
        }
        std::fs::write(dir.join(format!("part-{f}.csv")), csv).unwrap();
    }
}

fn setup() -> ClusterSetup {
    ClusterSetup::new().with_registration(|state| {
        AsyncFn::per_row("twice", |x: i64| async move { Ok::<_, String>(2 * x) })?.register(state)
    })
}

async fn prepare(ctx: &SessionContext, dir: &std::path::Path) {
    for sql in [
        format!(
            "CREATE EXTERNAL TABLE ids (id BIGINT) STORED AS CSV LOCATION '{}/' OPTIONS ('format.has_header' 'true')",
            dir.display()
        ),
        format!("SET async_udf.max_in_flight = {BUDGET}"),
        "SET async_udf.chunk_size = 10".to_string(),
        format!(
            "CREATE EXTERNAL TABLE sink (status INT) STORED AS NOOP LOCATION '{}/sink'",
            dir.display()
        ),
    ] {
        run(ctx, &sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_rows_as_one_process_each_id_once() {
    let api = mock(20).await;
    let url = api.url("/v1/images/search");
    let dir = tempfile::tempdir().unwrap();
    ids(dir.path());
    let cluster = setup().standalone(EXECUTORS as usize, 2).await.unwrap();
    let local = SessionContext::new_with_state(setup().state().unwrap());
    for ctx in [&cluster, &local] {
        prepare(ctx, dir.path()).await;
    }
    let call = format!("http_get('{url}?id=' || id)");
    let queries = [
        format!(
            "SELECT id, {call}['status'] AS s, {call}['body'] IS NOT NULL AS b FROM ids ORDER BY id"
        ),
        format!(
            "SELECT count(*) FILTER (WHERE r['status'] = 200), min(r['attempts']), max(r['attempts']) FROM (SELECT {call} AS r FROM ids)"
        ),
        format!(
            "SELECT id % 3 AS k, count(*) FROM ids WHERE {call}['status'] = 200 GROUP BY 1 ORDER BY 1"
        ),
        format!("SELECT count(*) FROM (SELECT {call} AS r FROM ids LIMIT 30)"),
        // a guarded call: the executors call the even ids only
        format!(
            "SELECT id, CASE WHEN id % 2 = 0 THEN {call}['status'] END AS s, coalesce(CASE WHEN id % 2 = 0 THEN 0 END, twice(id)) AS t FROM ids ORDER BY id"
        ),
        format!(
            "COPY (SELECT {call} AS r FROM ids) TO '{}/copy' STORED AS NOOP",
            dir.path().display()
        ),
        format!("INSERT INTO sink SELECT {call}['status'] FROM ids"),
        format!(
            "SELECT sum(twice(id)), count(*) FROM (SELECT id FROM ids WHERE {call}['status'] = 200)"
        ),
        // chunks of 10 rows of each 25-row file: 3 POSTs per file
        format!(
            "SELECT count(*), min(status), max(status) FROM map_in_batches('post_json', (SELECT id FROM ids), '{}')",
            api.url("/v1/batch")
        ),
    ];
    for sql in &queries {
        let mut answers = Vec::new();
        for ctx in [&cluster, &local] {
            api.reset_stats();
            let batches = run(ctx, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let by_id = api.requests_by_id();
            let stats = api.stats();
            if sql.contains("map_in_batches") {
                assert_eq!(
                    stats.requests as i64,
                    FILES * 3,
                    "{sql}: one POST per chunk"
                );
            } else if sql.contains("WHEN id % 2 = 0") {
                assert_eq!(
                    by_id.len() as i64,
                    FILES * PER_FILE / 2,
                    "{sql}: the even ids called"
                );
                assert!(
                    by_id.keys().all(|id| id.parse::<i64>().unwrap() % 2 == 0),
                    "{sql}: an odd id called: {by_id:?}"
                );
            } else if !sql.contains("LIMIT") {
                assert_eq!(
                    by_id.len() as i64,
                    FILES * PER_FILE,
                    "{sql}: every id called"
                );
            }
            assert!(
                by_id.values().all(|&n| n == 1),
                "{sql}: an id called twice: {by_id:?}"
            );
            assert!(
                stats.peak_in_flight <= EXECUTORS * BUDGET,
                "{sql}: peak {} in flight",
                stats.peak_in_flight
            );
            answers.push(pretty_format_batches(&batches).unwrap().to_string());
        }
        assert_eq!(
            answers[0], answers[1],
            "{sql}: cluster and one process differ"
        );
    }
}

/// `secret('NAME')` reaches the header on the executors, whose runtimes hold
/// the value (set by the application's registration), and the plan shows no value.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_resolve_on_the_executors() {
    const VALUE: &str = "cluster-s3cr3t";
    let api = mock(0).await;
    let dir = tempfile::tempdir().unwrap();
    ids(dir.path());
    let setup = ClusterSetup::new().with_registration(|state| {
        datafusion_async_udf::AsyncRuntime::of(&mut *state)?
            .secrets()
            .set("TEST_TOKEN", VALUE, "127.0.0.1");
        Ok(())
    });
    let cluster = setup.standalone(EXECUTORS as usize, 2).await.unwrap();
    prepare(&cluster, dir.path()).await;
    let sql = format!(
        "SELECT http_get('{}', map(['authorization'], ['Bearer ' || secret('TEST_TOKEN')]))['body'] AS b FROM ids",
        api.url("/echo")
    );
    let out = pretty_format_batches(&run(&cluster, &sql).await.unwrap())
        .unwrap()
        .to_string();
    let expected = format!("Bearer {VALUE}");
    assert_eq!(
        out.matches(&expected).count() as i64,
        FILES * PER_FILE,
        "every row's header carried the value"
    );
    let plan = pretty_format_batches(&run(&cluster, &format!("EXPLAIN {sql}")).await.unwrap())
        .unwrap()
        .to_string();
    assert!(!plan.contains(VALUE), "{plan}");
}
