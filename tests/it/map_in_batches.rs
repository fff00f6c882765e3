//! map_in_batches from Rust: closure handlers, outputs of any size, partitions,
//! the shared budget, LIMIT, bounded memory, errors.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::prelude::*;
use datafusion_async_udf::{ChunkContext, FnHandler};
use datafusion_async_udf::{DataFrameMapExt, register_handler};
use futures::StreamExt;

use common::{context, context_with, run};

fn out_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int64, false),
        Field::new("tag", DataType::Utf8, false),
    ]))
}

/// Live counters of a handler: calls started, running now, peak running, rows seen.
#[derive(Default)]
struct Probe {
    started: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
    rows: AtomicUsize,
}

/// Copies column 0 (`value`) and tags each row with partition and chunk; sleeps a
/// little, later chunks less (so they finish first).
fn tagger(
    probe: Arc<Probe>,
    delay_ms: u64,
) -> FnHandler<
    impl Fn(RecordBatch, ChunkContext) -> futures::future::BoxFuture<'static, Result<Vec<RecordBatch>>>
    + Send
    + Sync,
> {
    FnHandler::new(out_schema(), move |chunk: RecordBatch, cx: ChunkContext| {
        let probe = Arc::clone(&probe);
        Box::pin(async move {
            probe.started.fetch_add(1, Ordering::SeqCst);
            probe.rows.fetch_add(chunk.num_rows(), Ordering::SeqCst);
            let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
            probe.peak.fetch_max(now, Ordering::SeqCst);
            let wait = delay_ms.saturating_sub(cx.chunk_index as u64 % delay_ms.max(1));
            tokio::time::sleep(Duration::from_millis(wait)).await;
            probe.running.fetch_sub(1, Ordering::SeqCst);
            let v = arrow::compute::cast(chunk.column(0), &DataType::Int64)?;
            let tag = StringArray::from(vec![
                format!(
                    "p{}c{}",
                    cx.partition_index.unwrap_or(99),
                    cx.chunk_index
                );
                chunk.num_rows()
            ]);
            Ok(vec![RecordBatch::try_new(
                out_schema(),
                vec![v, Arc::new(tag)],
            )?])
        }) as futures::future::BoxFuture<'static, Result<Vec<RecordBatch>>>
    })
}

fn values(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_and_dataframe_keep_order_and_context() {
    let ctx = context();
    let probe = Arc::new(Probe::default());
    register_handler(&ctx, "tag", Arc::new(tagger(Arc::clone(&probe), 20))).unwrap();
    run(&ctx, "SET async_udf.chunk_size = 10").await.unwrap();

    let out = run(
        &ctx,
        "SELECT v, tag FROM map_in_batches('tag', (SELECT value FROM generate_series(1, 95)))",
    )
    .await
    .unwrap();
    assert_eq!(values(&out), (1..=95).collect::<Vec<_>>());
    let all = concat_batches(&out[0].schema(), &out).unwrap();
    let tags = all.column(1).as_string::<i32>();
    assert_eq!(tags.value(0), "p0c0");
    assert_eq!(tags.value(94), "p0c9");
    assert_eq!(probe.started.load(Ordering::SeqCst), 10);

    let df = ctx
        .sql("SELECT value FROM generate_series(1, 30)")
        .await
        .unwrap()
        .map_in_batches("tag", vec![])
        .unwrap()
        .filter(col("v").gt(lit(25)))
        .unwrap();
    assert_eq!(
        values(&df.collect().await.unwrap()),
        vec![26, 27, 28, 29, 30]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_and_many_rows_per_chunk() {
    let ctx = context();
    // even chunks vanish, odd chunks triple each row
    let handler = FnHandler::new(
        out_schema(),
        |chunk: RecordBatch, cx: ChunkContext| async move {
            if cx.chunk_index.is_multiple_of(2) {
                return Ok(vec![]);
            }
            let v = arrow::compute::cast(chunk.column(0), &DataType::Int64)?;
            let v = v.as_primitive::<Int64Type>();
            let tripled = Int64Array::from_iter_values(v.values().iter().flat_map(|x| [*x; 3]));
            let n = tripled.len();
            let tags = StringArray::from(vec!["x"; n]);
            let half = n / 2;
            let b = RecordBatch::try_new(out_schema(), vec![Arc::new(tripled), Arc::new(tags)])?;
            Ok(vec![
                b.slice(0, half),
                RecordBatch::new_empty(out_schema()),
                b.slice(half, n - half),
            ])
        },
    );
    register_handler(&ctx, "odd3", Arc::new(handler)).unwrap();
    run(&ctx, "SET async_udf.chunk_size = 2").await.unwrap();
    let out = run(
        &ctx,
        "SELECT v FROM map_in_batches('odd3', (SELECT value FROM generate_series(1, 8)))",
    )
    .await
    .unwrap();
    assert_eq!(values(&out), vec![3, 3, 3, 4, 4, 4, 7, 7, 7, 8, 8, 8]);
    assert!(
        out.iter().all(|b| b.num_rows() > 0),
        "no empty batches are emitted"
    );
    let n = common::count(
        &ctx,
        "SELECT count(*) FROM map_in_batches('odd3', (SELECT value FROM generate_series(1, 1)))",
    )
    .await;
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_share_the_budget() {
    let ctx = context_with(SessionConfig::new().with_target_partitions(4));
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Int64,
        false,
    )]));
    let parts: Vec<Vec<RecordBatch>> = (0..4i64)
        .map(|p| {
            let ids = Int64Array::from_iter_values(p * 1000..p * 1000 + 200);
            vec![RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(ids)]).unwrap()]
        })
        .collect();
    ctx.register_table("t", Arc::new(MemTable::try_new(schema, parts).unwrap()))
        .unwrap();
    let probe = Arc::new(Probe::default());
    register_handler(&ctx, "tag", Arc::new(tagger(Arc::clone(&probe), 30))).unwrap();
    run(&ctx, "SET async_udf.chunk_size = 5").await.unwrap();
    run(&ctx, "SET async_udf.max_in_flight = 12").await.unwrap();

    let out = run(
        &ctx,
        "SELECT v, tag FROM map_in_batches('tag', (SELECT * FROM t))",
    )
    .await
    .unwrap();
    assert_eq!(out.iter().map(RecordBatch::num_rows).sum::<usize>(), 800);
    assert_eq!(probe.started.load(Ordering::SeqCst), 160);
    assert_eq!(
        probe.peak.load(Ordering::SeqCst),
        12,
        "one budget for 4 partitions"
    );
    let all = concat_batches(&out[0].schema(), &out).unwrap();
    let tags = all.column(1).as_string::<i32>();
    let partitions: std::collections::BTreeSet<_> = tags.iter().map(|t| &t.unwrap()[..2]).collect();
    assert_eq!(partitions.len(), 4, "{partitions:?}");
    // within each partition, rows stay in input order
    let v = all.column(0).as_primitive::<Int64Type>();
    for p in 0..4 {
        let rows: Vec<i64> = (0..all.num_rows())
            .filter(|&i| tags.value(i).starts_with(&format!("p{p}")))
            .map(|i| v.value(i))
            .collect();
        assert!(
            rows.windows(2).all(|w| w[0] < w[1]),
            "partition {p} out of order"
        );
    }
}

/// The input is an ordinary child of the plan: planned and optimized once with
/// the rest, shown by `EXPLAIN`; filters above are not pushed into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_input() {
    let ctx = context();
    let probe = Arc::new(Probe::default());
    register_handler(&ctx, "tag", Arc::new(tagger(probe, 1))).unwrap();
    let out = run(
        &ctx,
        "EXPLAIN SELECT v FROM map_in_batches('tag', \
         (SELECT value FROM generate_series(1, 95) WHERE value > 3)) WHERE v < 10",
    )
    .await
    .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&out)
        .unwrap()
        .to_string();
    let logical = text.find("logical_plan").unwrap();
    let physical = text.find("physical_plan").unwrap();
    let (logical, physical) = if logical < physical {
        (&text[logical..physical], &text[physical..])
    } else {
        (&text[logical..], &text[physical..logical])
    };
    let outer = logical.find("Filter: map_in_batches.v < Int64(10)");
    let node = logical.find("MapInBatches: handler=tag");
    let inner = logical.find("Filter: generate_series().value > Int64(3)");
    assert!(
        outer.is_some() && node.is_some() && inner.is_some(),
        "{logical}"
    );
    assert!(outer < node && node < inner, "{logical}");
    assert_eq!(logical.matches("MapInBatches").count(), 1, "{logical}");
    let exec = physical.find("MapInBatchesExec: handler=tag");
    let filter = physical.rfind("FilterExec: value@0 > 3");
    assert!(
        exec.is_some() && filter.is_some() && exec < filter,
        "{physical}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_stops_calling() {
    let ctx = context();
    let probe = Arc::new(Probe::default());
    register_handler(&ctx, "tag", Arc::new(tagger(Arc::clone(&probe), 10))).unwrap();
    run(&ctx, "SET async_udf.chunk_size = 10").await.unwrap();
    run(&ctx, "SET async_udf.max_in_flight = 8").await.unwrap();
    let out = run(
        &ctx,
        "SELECT v FROM map_in_batches('tag', (SELECT value FROM generate_series(1, 1000000))) LIMIT 15",
    )
    .await
    .unwrap();
    assert_eq!(values(&out).len(), 15);
    let calls = probe.started.load(Ordering::SeqCst);
    // 2 chunks answer the LIMIT; each partition admits at most a window (8) more
    let partitions = ctx.state().config().target_partitions();
    assert!(
        calls >= 2 && calls <= partitions * (2 + 8),
        "{calls} calls for LIMIT 15 over {partitions} partitions"
    );
    println!("LIMIT 15 over 1,000,000 rows made {calls} calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_is_bounded_by_the_window() {
    let ctx = context();
    let probe = Arc::new(Probe::default());
    register_handler(&ctx, "tag", Arc::new(tagger(Arc::clone(&probe), 1))).unwrap();
    run(&ctx, "SET async_udf.chunk_size = 100").await.unwrap();
    run(&ctx, "SET async_udf.max_in_flight = 4").await.unwrap();
    let df = ctx
        .sql("SELECT v FROM map_in_batches('tag', (SELECT value FROM generate_series(1, 500000)))")
        .await
        .unwrap();
    let mut stream = df.execute_stream().await.unwrap();
    let batch_size = 8192;
    let (mut emitted, mut worst) = (0usize, 0usize);
    while let Some(batch) = stream.next().await {
        emitted += batch.unwrap().num_rows();
        // a slow consumer: input is read only as far as the window needs
        tokio::time::sleep(Duration::from_micros(200)).await;
        let admitted = probe.rows.load(Ordering::SeqCst);
        worst = worst.max(admitted - emitted);
    }
    assert_eq!(emitted, 500_000);
    // rows handed to the handler but not yet emitted: at most the window of chunks
    // plus the input batch being split (never the 500,000 rows of the partition)
    assert!(
        worst <= 4 * 100 + batch_size,
        "{worst} rows admitted ahead of the consumer"
    );
}

#[tokio::test]
async fn errors_are_clear() {
    let ctx = context();
    let probe = Arc::new(Probe::default());
    register_handler(&ctx, "tag", Arc::new(tagger(probe, 1))).unwrap();
    let err = ctx
        .sql("SELECT * FROM map_in_batches('nope', (SELECT 1))")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("registered handlers: [post_json, tag]"),
        "{err}"
    );
    let err = ctx
        .sql("SELECT * FROM map_in_batches('tag', (SELECT 1), 'extra')")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("takes no arguments after the input, got 1"),
        "{err}"
    );
    let err = ctx
        .sql("SELECT 1")
        .await
        .unwrap()
        .map_in_batches("nope", vec![ScalarValue::from(1)])
        .unwrap_err();
    assert!(err.to_string().contains("no handler named 'nope'"), "{err}");

    // a handler returning the wrong schema fails the query, naming the chunk
    let bad = FnHandler::new(
        out_schema(),
        |chunk: RecordBatch, _cx: ChunkContext| async move { Ok(vec![chunk]) },
    );
    register_handler(&ctx, "bad", Arc::new(bad)).unwrap();
    let err = run(&ctx, "SELECT * FROM map_in_batches('bad', (SELECT 1 AS a))")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the handler returned a batch of schema"),
        "{err}"
    );
    assert!(err.to_string().contains("for chunk 0 (rows 0..1)"), "{err}");

    // a handler error fails the query
    let failing = FnHandler::new(
        out_schema(),
        |_chunk: RecordBatch, _cx: ChunkContext| async move {
            datafusion::common::exec_err!("service said no")
        },
    );
    register_handler(&ctx, "failing", Arc::new(failing)).unwrap();
    let err = run(
        &ctx,
        "SELECT * FROM map_in_batches('failing', (SELECT 1 AS a))",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("service said no"), "{err}");
    assert!(!ctx.table_exist("map_in_batches").unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_stops_calls_at_the_server() {
    let api = common::mock(20).await;
    let ctx = context();
    run(&ctx, "SET async_udf.chunk_size = 10").await.unwrap();
    run(&ctx, "SET async_udf.max_in_flight = 4").await.unwrap();
    let sql = format!(
        "SELECT value, error FROM map_in_batches('post_json', \
         (SELECT value FROM generate_series(1, 100000)), '{}') LIMIT 5",
        api.url("/v1/batch")
    );
    let out = run(&ctx, &sql).await.unwrap();
    assert_eq!(out.iter().map(RecordBatch::num_rows).sum::<usize>(), 5);
    let partitions = ctx.state().config().target_partitions() as u64;
    let requests = api.stats().requests;
    // one chunk answers the LIMIT; each partition admits at most 4 chunks ahead
    assert!(
        requests >= 1 && requests <= partitions * (1 + 4),
        "{requests} requests"
    );
}
