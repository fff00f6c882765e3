//! Exactly once: every async call written in a query is evaluated once per input
//! row, whatever reads its result. A matrix of query shapes × {http_get,
//! http_post, http_request, a typed function, map_in_batches}, counted per id where the call
//! lands (the mock server, or the typed function's own counter).

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::*;
use datafusion_async_udf::{AsyncFn, CallError, register_handler};
use datafusion_async_udf::{ChunkContext, FnHandler};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use common::{context, mock, run};

const N: i64 = 24;

/// Query shapes; `{C}` is one call per row of `generate_series(1, N)` over
/// `value`, returning a struct with `status`, `attempts`, `error`. `{N}` is N.
const SHAPES: &[(&str, &str)] = &[
    (
        "several fields",
        "SELECT r['status'], r['error'], r['attempts'] FROM (SELECT {C} AS r FROM generate_series(1, {N}))",
    ),
    (
        "aggregates and FILTER",
        "SELECT count(*) FILTER (WHERE r['status'] = 200), min(r['attempts']), max(r['attempts']) FROM (SELECT {C} AS r FROM generate_series(1, {N}))",
    ),
    (
        "WHERE and sum",
        "SELECT sum(r['attempts']) FROM (SELECT {C} AS r FROM generate_series(1, {N})) WHERE r['status'] = 200 AND r['error'] IS NULL",
    ),
    (
        "GROUP BY and HAVING",
        "SELECT r['status'], count(*) FROM (SELECT {C} AS r FROM generate_series(1, {N})) GROUP BY r['status'] HAVING max(r['attempts']) >= 1",
    ),
    (
        "CASE branches",
        "SELECT CASE WHEN r['status'] = 200 THEN r['attempts'] WHEN r['error'] IS NOT NULL THEN -1 ELSE r['attempts'] + 1 END FROM (SELECT {C} AS r FROM generate_series(1, {N}))",
    ),
    (
        "call in WHERE",
        "SELECT value FROM generate_series(1, {N}) WHERE {C}['status'] = 200",
    ),
    (
        "call in aggregates",
        "SELECT max({C}['attempts']) FROM generate_series(1, {N})",
    ),
    (
        "call in FILTER",
        "SELECT count(*) FILTER (WHERE {C}['status'] = 200) FROM generate_series(1, {N})",
    ),
    (
        "call in GROUP BY",
        "SELECT {C}['status'] AS s, count(*) FROM generate_series(1, {N}) GROUP BY 1",
    ),
    (
        "call in ORDER BY",
        "SELECT value FROM generate_series(1, {N}) ORDER BY {C}['attempts'], value",
    ),
    (
        "call in a window",
        "SELECT value, row_number() OVER (ORDER BY {C}['status'], value) FROM generate_series(1, {N})",
    ),
    (
        "call in a join condition",
        "SELECT a.value FROM generate_series(1, {N}) a JOIN generate_series(1, {N}) b ON a.value = b.value AND {Ca}['status'] = 200",
    ),
    (
        "IN subquery",
        "SELECT value FROM generate_series(1, {N}) WHERE value IN (SELECT value FROM (SELECT value, {C} AS r FROM generate_series(1, {N})) WHERE r['status'] = 200 AND r['attempts'] > 0)",
    ),
    (
        "UNION ALL branches",
        "SELECT r['status'], r['attempts'] FROM (SELECT {C} AS r FROM generate_series(1, 10)) UNION ALL SELECT r['status'], r['attempts'] FROM (SELECT {C} AS r FROM generate_series(11, {N}))",
    ),
    (
        "CTE read once",
        "WITH c AS (SELECT value, {C} AS r FROM generate_series(1, {N})) SELECT r['status'], r['attempts'], count(*) FILTER (WHERE r['error'] IS NULL) OVER () FROM c",
    ),
    (
        "INSERT ... SELECT",
        "INSERT INTO sink SELECT r['status'], r['attempts'] FROM (SELECT {C} AS r FROM generate_series(1, {N})) WHERE r['error'] IS NULL",
    ),
    (
        "COPY",
        "COPY (SELECT r['status'], r['attempts'], r['error'] FROM (SELECT {C} AS r FROM generate_series(1, {N}))) TO 'ignored' STORED AS NOOP",
    ),
];

/// Attempts per id: 2 transient failures, then success.
const FAIL: u64 = 2;

async fn setup() -> SessionContext {
    let ctx = context();
    for sql in [
        "SET http.retry_initial_ms = 1",
        "SET http.retry_post = true",
        "SET async_udf.retry_initial_ms = 1",
        "CREATE EXTERNAL TABLE sink (status INT, attempts INT) STORED AS NOOP LOCATION 'noop://'",
    ] {
        run(&ctx, sql).await.unwrap();
    }
    ctx
}

fn assert_once_each(shape: &str, function: &str, counts: &HashMap<String, u64>, per_row: u64) {
    for id in 1..=N {
        let got = counts.get(&id.to_string()).copied().unwrap_or(0);
        assert_eq!(
            got, per_row,
            "{function} × {shape}: id {id} was called {got} times, expected {per_row}; all: {counts:?}"
        );
    }
    assert_eq!(
        counts.len() as i64,
        N,
        "{function} × {shape}: unexpected ids {counts:?}"
    );
}

async fn http_matrix(function: &str, call: impl Fn(&str) -> String) {
    let api = mock(0).await;
    let ctx = setup().await;
    for (shape, template) in SHAPES {
        api.reset_stats();
        let sql = template
            .replace("{Ca}", &call("a.value"))
            .replace("{C}", &call("value"))
            .replace("{N}", &N.to_string())
            .replace("{BASE}", &api.url("/flaky/"));
        run(&ctx, &sql)
            .await
            .unwrap_or_else(|e| panic!("{function} × {shape}: {sql}\n{e}"));
        assert_once_each(shape, function, &api.requests_by_id(), FAIL + 1);
    }
}

#[tokio::test]
async fn http_get_once_per_row_in_every_shape() {
    http_matrix("http_get", |v| {
        format!("http_get('{{BASE}}' || {v} || '?fail={FAIL}')")
    })
    .await;
}

#[tokio::test]
async fn http_post_once_per_row_in_every_shape() {
    http_matrix("http_post", |v| {
        format!("http_post('{{BASE}}' || {v} || '?fail={FAIL}', 'row ' || {v})")
    })
    .await;
}

#[tokio::test]
async fn http_request_once_per_row_in_every_shape() {
    // a method per row (PATCH retried only because the setup turns on
    // http.retry_post, the former name of http.retry_non_idempotent)
    http_matrix("http_request", |v| {
        format!(
            "http_request(CASE {v} % 3 WHEN 0 THEN 'PUT' WHEN 1 THEN 'PATCH' ELSE 'DELETE' END, \
             '{{BASE}}' || {v} || '?fail={FAIL}', NULL, 'row ' || {v})"
        )
    })
    .await;
}

#[derive(Clone, Serialize, Deserialize)]
struct Reply {
    status: i32,
    attempts: i32,
    error: Option<String>,
}

#[tokio::test]
async fn typed_function_once_per_row_in_every_shape() {
    let ctx = context();
    run(&ctx, "SET async_udf.retry_initial_ms = 1")
        .await
        .unwrap();
    run(
        &ctx,
        "CREATE EXTERNAL TABLE sink (status INT, attempts INT) STORED AS NOOP LOCATION 'noop://'",
    )
    .await
    .unwrap();
    let counts: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let seen = Arc::clone(&counts);
    AsyncFn::per_row("enrich", move |id: i64| {
        let seen = Arc::clone(&seen);
        async move {
            let n = {
                let mut seen = seen.lock();
                let n = seen.entry(id.to_string()).or_default();
                *n += 1;
                *n
            };
            if n <= FAIL {
                return Err(CallError::transient("not yet"));
            }
            Ok(Reply {
                status: 200,
                attempts: n as i32,
                error: None,
            })
        }
    })
    .unwrap()
    .register(&ctx)
    .unwrap();
    for (shape, template) in SHAPES {
        counts.lock().clear();
        let sql = template
            .replace("{Ca}", "enrich(a.value)")
            .replace("{C}", "enrich(value)")
            .replace("{N}", &N.to_string());
        run(&ctx, &sql)
            .await
            .unwrap_or_else(|e| panic!("enrich × {shape}: {sql}\n{e}"));
        assert_once_each(shape, "typed", &counts.lock(), FAIL + 1);
    }
}

#[tokio::test]
async fn map_in_batches_once_per_row_in_every_shape() {
    let ctx = context();
    let counts: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let seen = Arc::clone(&counts);
    let schema = Arc::new(Schema::new(vec![
        Field::new("value", DataType::Int64, false),
        Field::new("status", DataType::Int64, false),
    ]));
    let out = Arc::clone(&schema);
    let handler = FnHandler::new(schema, move |rows: RecordBatch, _cx: ChunkContext| {
        let (seen, out) = (Arc::clone(&seen), Arc::clone(&out));
        async move {
            let values = arrow::compute::cast(rows.column(0), &DataType::Int64)?;
            let values = values
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone();
            let mut seen = seen.lock();
            for v in values.iter().flatten() {
                *seen.entry(v.to_string()).or_default() += 1;
            }
            let status = Int64Array::from(vec![200; values.len()]);
            Ok(vec![RecordBatch::try_new(
                out,
                vec![Arc::new(values), Arc::new(status)],
            )?])
        }
    });
    register_handler(&ctx, "count_rows", Arc::new(handler)).unwrap();
    run(&ctx, "SET async_udf.chunk_size = 5").await.unwrap();
    let input =
        format!("map_in_batches('count_rows', (SELECT value FROM generate_series(1, {N})))");
    let shapes = [
        format!("SELECT value, status FROM {input}"),
        format!("SELECT count(*) FILTER (WHERE status = 200), min(value), max(value) FROM {input}"),
        format!("SELECT status, count(*) FROM {input} GROUP BY status HAVING max(value) >= 1"),
        format!("SELECT sum(value) FROM {input} WHERE status = 200 AND value > 0"),
        format!(
            "SELECT a.value FROM {input} a JOIN generate_series(1, {N}) b ON a.value = b.value"
        ),
        format!("COPY (SELECT * FROM {input}) TO 'ignored' STORED AS NOOP"),
    ];
    for sql in shapes {
        counts.lock().clear();
        run(&ctx, &sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}\n{e}"));
        assert_once_each(&sql, "map_in_batches", &counts.lock(), 1);
    }
}

/// A CTE read twice is computed once (DataFusion inlines it at each reference;
/// the copies are shared), whatever each reference does with it.
#[tokio::test]
async fn a_cte_read_twice_is_computed_once() {
    let api = mock(0).await;
    let ctx = context();
    run(&ctx, "SET http.retry_post = true").await.unwrap();
    run(&ctx, "SET http.retry_initial_ms = 1").await.unwrap();
    let cte = format!(
        "WITH c AS (SELECT value, http_post('{}' || value || '?fail=1', 'x') AS r \
         FROM generate_series(1, {N}))",
        api.url("/flaky/")
    );
    for (shape, body) in [
        (
            "self-join",
            "SELECT a.value, b.r['attempts'] FROM c a JOIN c b ON a.value = b.value",
        ),
        (
            "UNION ALL of both",
            "SELECT r['status'] FROM c UNION ALL SELECT r['attempts'] FROM c WHERE r['status'] = 200",
        ),
        (
            "one side limited",
            "SELECT * FROM (SELECT value FROM c LIMIT 3) a JOIN c b ON a.value = b.value",
        ),
        (
            "scalar subquery",
            "SELECT count(*), (SELECT max(r['attempts']) FROM c) FROM c",
        ),
    ] {
        api.reset_stats();
        let sql = format!("{cte} {body}");
        run(&ctx, &sql)
            .await
            .unwrap_or_else(|e| panic!("{shape}: {sql}\n{e}"));
        assert_once_each(shape, "CTE", &api.requests_by_id(), 2);
    }
    // the results agree between the two references
    let out = run(
        &ctx,
        &format!("{cte} SELECT count(*) FROM c a JOIN c b ON a.value = b.value AND a.r['elapsed_ms'] = b.r['elapsed_ms']"),
    )
    .await
    .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&out)
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!("| {N} ")),
        "both references see the same rows:\n{text}"
    );
}
