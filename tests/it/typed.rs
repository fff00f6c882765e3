//! Typed async column functions: the four shapes, per row and per chunk, from SQL
//! and the DataFrame API.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arrow::util::pretty::pretty_format_batches;
use datafusion::execution::FunctionRegistry;
use datafusion::functions::core::expr_ext::FieldAccessor;
use datafusion::prelude::*;
use datafusion_async_udf::{AsyncFn, ChunkContext};
use serde::{Deserialize, Serialize};

use common::{context, run};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Address {
    street: String,
    number: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Geo {
    lat: f64,
    lon: f64,
    tags: Vec<String>,
    parent: Option<Inner>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Inner {
    code: String,
}

async fn table(ctx: &SessionContext, sql: &str) -> String {
    let batches = run(ctx, sql).await.unwrap_or_else(|e| panic!("{sql}\n{e}"));
    pretty_format_batches(&batches).unwrap().to_string()
}

/// Later rows answer sooner: order must come from the engine, not from timing.
fn shuffled_delay(x: i64) -> Duration {
    Duration::from_millis(((x * 37) % 23) as u64)
}

fn register_shapes(ctx: &SessionContext) {
    AsyncFn::per_row("double", |x: i64| async move {
        tokio::time::sleep(shuffled_delay(x)).await;
        Ok::<_, String>(x * 2)
    })
    .unwrap()
    .register(ctx)
    .unwrap();
    AsyncFn::per_row("geocode", |s: String| async move {
        Ok::<_, String>(Geo {
            lat: s.len() as f64,
            lon: -1.5,
            tags: vec![s.to_uppercase()],
            parent: (s.len() > 3).then(|| Inner {
                code: format!("c-{s}"),
            }),
        })
    })
    .unwrap()
    .register(ctx)
    .unwrap();
    AsyncFn::per_row("label", |a: Address| async move {
        Ok::<_, String>(format!(
            "{} {}",
            a.number.map_or("?".to_string(), |n| n.to_string()),
            a.street
        ))
    })
    .unwrap()
    .register(ctx)
    .unwrap();
    AsyncFn::per_chunk(
        "standardize",
        |rows: Vec<Address>, _cx: ChunkContext| async move {
            Ok::<_, String>(
                rows.into_iter()
                    .map(|a| Address {
                        street: a.street.to_uppercase(),
                        number: a.number.map(|n| n + 1),
                    })
                    .collect::<Vec<_>>(),
            )
        },
    )
    .unwrap()
    .register(ctx)
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shapes_from_sql() {
    let ctx = context();
    register_shapes(&ctx);
    assert_eq!(
        table(
            &ctx,
            "SELECT value, double(value) AS d FROM generate_series(1, 4)"
        )
        .await,
        "+-------+---+\n| value | d |\n+-------+---+\n| 1     | 2 |\n| 2     | 4 |\n| 3     | 6 |\n| 4     | 8 |\n+-------+---+"
    );
    assert_eq!(
        table(
            &ctx,
            "SELECT geocode(s) AS g FROM (VALUES ('ab'), ('main'), (NULL)) t(s)"
        )
        .await,
        "+-------------------------------------------------------------+\n\
         | g                                                           |\n\
         +-------------------------------------------------------------+\n\
         | {lat: 2.0, lon: -1.5, tags: [AB], parent: }                 |\n\
         | {lat: 4.0, lon: -1.5, tags: [MAIN], parent: {code: c-main}} |\n\
         |                                                             |\n\
         +-------------------------------------------------------------+"
    );
    assert_eq!(
        table(
            &ctx,
            "SELECT label(named_struct('street', s, 'number', n)) AS l \
             FROM (VALUES ('Main', 5), ('Side', NULL)) t(s, n)"
        )
        .await,
        "+--------+\n| l      |\n+--------+\n| 5 Main |\n| ? Side |\n+--------+"
    );
    assert_eq!(
        table(
            &ctx,
            "SELECT standardize(named_struct('street', s, 'number', n))['street'] AS s2, \
                    standardize(named_struct('street', s, 'number', n))['number'] AS n2 \
             FROM (VALUES ('main', 5), ('side', NULL)) t(s, n)"
        )
        .await,
        "+------+----+\n| s2   | n2 |\n+------+----+\n| MAIN | 6  |\n| SIDE |    |\n+------+----+"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shapes_from_dataframes() {
    let ctx = context();
    register_shapes(&ctx);
    let df = ctx
        .sql("SELECT value AS v, CAST(value AS VARCHAR) AS s FROM generate_series(1, 3)")
        .await
        .unwrap()
        .select(vec![
            ctx.udf("double").unwrap().call(vec![col("v")]).alias("d"),
            ctx.udf("geocode")
                .unwrap()
                .call(vec![col("s")])
                .field("lat")
                .alias("lat"),
            ctx.udf("label")
                .unwrap()
                .call(vec![named_struct(vec![
                    lit("street"),
                    col("s"),
                    lit("number"),
                    col("v"),
                ])])
                .alias("l"),
            ctx.udf("standardize")
                .unwrap()
                .call(vec![named_struct(vec![
                    lit("street"),
                    lit("x"),
                    lit("number"),
                    col("v"),
                ])])
                .field("number")
                .alias("n"),
        ])
        .unwrap();
    let out = pretty_format_batches(&df.collect().await.unwrap())
        .unwrap()
        .to_string();
    assert_eq!(
        out,
        "+---+-----+-----+---+\n| d | lat | l   | n |\n+---+-----+-----+---+\n\
         | 2 | 1.0 | 1 1 | 2 |\n| 4 | 1.0 | 2 2 | 3 |\n| 6 | 1.0 | 3 3 | 4 |\n+---+-----+-----+---+"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_kept_and_budget_shared_under_shuffled_latency() {
    let ctx = context();
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n2, p2) = (Arc::clone(&now), Arc::clone(&peak));
    AsyncFn::per_row("slow_id", move |x: i64| {
        let (now, peak) = (Arc::clone(&n2), Arc::clone(&p2));
        async move {
            let k = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(k, Ordering::SeqCst);
            tokio::time::sleep(shuffled_delay(x)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, String>(x)
        }
    })
    .unwrap()
    .register(&ctx)
    .unwrap();
    run(&ctx, "SET async_udf.max_in_flight = 20").await.unwrap();
    let bad = common::count(
        &ctx,
        "SELECT count(*) FROM (SELECT value, slow_id(value) AS r FROM generate_series(1, 500)) WHERE r <> value",
    )
    .await;
    assert_eq!(bad, 0);
    assert_eq!(peak.load(Ordering::SeqCst), 20);
    // output order is input order
    let batches = run(
        &ctx,
        "SELECT slow_id(value) AS r FROM generate_series(1, 200)",
    )
    .await
    .unwrap();
    let got: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(got, (1..=200).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_get_their_context_and_chunk_size() {
    let ctx = context();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    AsyncFn::per_chunk("chunked", move |rows: Vec<i64>, cx: ChunkContext| {
        let seen = Arc::clone(&s2);
        async move {
            seen.lock()
                .unwrap()
                .push((cx.chunk_index, cx.rows.clone(), rows.len()));
            Ok::<_, String>(
                rows.iter()
                    .map(|r| format!("{}@{}", r, cx.chunk_index))
                    .collect::<Vec<_>>(),
            )
        }
    })
    .unwrap()
    .register(&ctx)
    .unwrap();
    run(&ctx, "SET async_udf.chunk_size = 4").await.unwrap();
    let out = table(
        &ctx,
        "SELECT chunked(CASE WHEN value = 3 THEN NULL ELSE value END) AS c FROM generate_series(1, 10)",
    )
    .await;
    let cells: Vec<&str> = out
        .lines()
        .skip(3)
        .filter(|l| l.starts_with("| "))
        .map(|l| l.trim_matches(|c| c == '|' || c == ' '))
        .collect();
    assert_eq!(
        cells,
        [
            "1@0", "2@0", "", "4@0", "5@0", "6@1", "7@1", "8@1", "9@1", "10@2"
        ],
        "{out}"
    );
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by_key(|(i, _, _)| *i);
    // the pipelined operator's chunks hold chunk_size non-NULL rows: partition
    // rows, NULL rows included in the range but not sent
    assert_eq!(seen, vec![(0, 0..5, 4), (1, 5..9, 4), (2, 9..10, 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_output_length_is_an_error() {
    let ctx = context();
    AsyncFn::per_chunk("short", |rows: Vec<i64>, _cx: ChunkContext| async move {
        Ok::<_, String>(rows.into_iter().skip(1).collect::<Vec<i64>>())
    })
    .unwrap()
    .register(&ctx)
    .unwrap();
    let err = run(&ctx, "SELECT short(value) FROM generate_series(1, 5)")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("short: chunk 0 (rows 0..5) returned 4 values for 5 rows; a chunk function must return one value per row"),
        "{err}"
    );
}

fn register_flaky(ctx: &SessionContext) {
    AsyncFn::per_row("flaky", |x: i64| async move {
        if x % 4 == 0 {
            Err(format!("no luck with {x}"))
        } else {
            Ok(Address {
                street: format!("s{x}"),
                number: Some(x),
            })
        }
    })
    .unwrap()
    .with_error_field()
    .unwrap()
    .register(ctx)
    .unwrap();
    AsyncFn::per_row("flaky_scalar", |x: i64| async move {
        if x % 4 == 0 {
            Err(format!("no luck with {x}"))
        } else {
            Ok(x)
        }
    })
    .unwrap()
    .register(ctx)
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_row_fails_only_itself() {
    let ctx = context();
    register_flaky(&ctx);
    let out = table(
        &ctx,
        "SELECT value, flaky(value) AS f, flaky_scalar(value) AS s FROM generate_series(3, 5)",
    )
    .await;
    assert_eq!(
        out,
        "+-------+---------------------------------------------+---+\n\
         | value | f                                           | s |\n\
         +-------+---------------------------------------------+---+\n\
         | 3     | {street: s3, number: 3, error: }            | 3 |\n\
         | 4     | {street: , number: , error: no luck with 4} |   |\n\
         | 5     | {street: s5, number: 5, error: }            | 5 |\n\
         +-------+---------------------------------------------+---+"
    );
    run(&ctx, "SET async_udf.on_error = 'fail'").await.unwrap();
    let err = run(
        &ctx,
        "SELECT flaky_scalar(value) FROM generate_series(1, 5)",
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("flaky_scalar: call (row 3 of the partition) failed: no luck with 4"),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_input_is_a_plan_error() {
    let ctx = context();
    register_shapes(&ctx);
    let err = ctx.sql("SELECT double('x')").await.unwrap_err().to_string();
    assert!(
        err.contains("double: argument 1 must be Int64 (or convertible to it), got Utf8"),
        "{err}"
    );
    let err = ctx
        .sql("SELECT label(named_struct('road', 'x', 'number', 1))")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("label: argument 1 must be Struct("), "{err}");
    let err = ctx
        .sql("SELECT double(1, 2)")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("double"), "{err}");
    assert!(
        AsyncFn::per_row("s", |x: i64| async move { Ok::<_, String>(x) })
            .unwrap()
            .with_error_field()
            .is_err()
    );
}

#[tokio::test]
async fn register_needs_register_all() {
    let ctx = SessionContext::new();
    let err = AsyncFn::per_row("f", |x: i64| async move { Ok::<_, String>(x) })
        .unwrap()
        .register(&ctx)
        .unwrap_err();
    assert!(err.to_string().contains("register_all"), "{err}");
}

/// A typed function is listed with the description its author gave (or its
/// types), and still runs once per row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_functions_are_documented() {
    let ctx = context();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    AsyncFn::per_row("triple", move |x: i64| {
        c.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, String>(x * 3) }
    })
    .unwrap()
    .with_description("Multiplies by three, slowly")
    .register(&ctx)
    .unwrap();
    AsyncFn::per_chunk("plain", |rows: Vec<i64>, _cx: ChunkContext| async move {
        Ok::<_, String>(rows)
    })
    .unwrap()
    .register(&ctx)
    .unwrap();
    let out = table(
        &ctx,
        "SELECT routine_name, description, syntax_example FROM information_schema.routines \
         WHERE routine_name IN ('triple', 'plain') ORDER BY routine_name",
    )
    .await;
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("| {name} ")))
            .unwrap_or_else(|| panic!("{name} is listed: {out}"))
            .to_string()
    };
    let plain = row("plain");
    assert!(
        plain.contains("Typed async function: Int64 -> Int64"),
        "{plain}"
    );
    assert!(plain.contains("plain(arg)"), "{plain}");
    assert!(
        row("triple").contains("Multiplies by three, slowly"),
        "{out}"
    );
    let sum = table(
        &ctx,
        "SELECT sum(triple(value)) AS s FROM generate_series(1, 10)",
    )
    .await;
    assert!(sum.contains("| 165 |"), "{sum}");
    assert_eq!(calls.load(Ordering::SeqCst), 10);
}
