//! Calls only for the rows that use them: a call under CASE, COALESCE, NVL,
//! NVL2, AND/OR or an aggregate's FILTER runs once for each row that needs its
//! answer and never for another. Every shape counts the requests per id at
//! the mock (or the typed function's own counter) and asserts both which ids
//! were called and that none was called twice.

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use arrow::util::pretty::pretty_format_batches;
use datafusion_async_udf::mock::MockApi;
use datafusion_async_udf::{AsyncFn, ChunkContext};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use common::{context, mock, run};

/// `{G}`: an http_get of id `value` (`{Gb}`: of `b.value`, `{K}`: of `k`
/// and `value % 10`; `{P}`: an http_post), `{A}`/`{B}`: two other calls of
/// the row, ids `a…` and `b…`.
fn sql(api: &MockApi, template: &str) -> String {
    let get = |prefix: &str, column: &str| {
        format!(
            "http_get('{}?id={prefix}' || {column})",
            api.url("/v1/images/search")
        )
    };
    template
        .replace(
            "{P}",
            &format!(
                "http_post('{}?id=' || value, 'row ' || value)",
                api.url("/echo")
            ),
        )
        .replace("{Gb}", &get("", "b.value"))
        .replace("{K}", &get("k", "(value % 10)"))
        .replace("{G}", &get("", "value"))
        .replace("{A}", &get("a", "value"))
        .replace("{B}", &get("b", "value"))
        .replace("{ECHO}", &api.url("/echo"))
}

/// Asserts each id of `expected` was requested exactly once, and no other.
fn assert_called(shape: &str, counts: &HashMap<String, u64>, expected: &BTreeSet<String>) {
    for (id, n) in counts {
        assert_eq!(*n, 1, "{shape}: id {id} was called {n} times");
    }
    let called: BTreeSet<String> = counts.keys().cloned().collect();
    let extra: Vec<_> = called.difference(expected).collect();
    let missing: Vec<_> = expected.difference(&called).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{shape}: called but not needed {extra:?}, needed but not called {missing:?}"
    );
}

fn ids(prefix: &str, keep: impl Fn(i64) -> bool, n: i64) -> BTreeSet<String> {
    (1..=n)
        .filter(|&v| keep(v))
        .map(|v| format!("{prefix}{v}"))
        .collect()
}

/// Shapes over `generate_series(1, 100)` and the ids they need.
#[allow(clippy::too_many_lines)] // one table of shapes, read top to bottom
fn shapes() -> Vec<(&'static str, &'static str, BTreeSet<String>)> {
    let n = 100;
    let both = |a: BTreeSet<String>, b: BTreeSet<String>| a.union(&b).cloned().collect();
    vec![
        (
            "CASE WHEN … THEN post",
            "SELECT CASE WHEN value % 2 = 0 THEN {P}['status'] END FROM generate_series(1, 100)",
            ids("", |v| v % 2 == 0, n),
        ),
        (
            "coalesce: a later argument",
            "SELECT coalesce(CASE WHEN value > 90 THEN 1 END, {G}['status']) FROM generate_series(1, 100)",
            ids("", |v| v <= 90, n),
        ),
        (
            "WHERE … OR call",
            "SELECT value FROM generate_series(1, 100) WHERE value <= 50 OR {G}['status'] = 200",
            ids("", |v| v > 50, n),
        ),
        (
            "WHERE … AND call",
            "SELECT value FROM generate_series(1, 100) WHERE value > 50 AND {G}['status'] = 200",
            ids("", |v| v > 50, n),
        ),
        (
            "AND in SELECT",
            "SELECT value > 60 AND {G}['status'] = 200 FROM generate_series(1, 100)",
            ids("", |v| v > 60, n),
        ),
        (
            "OR with a NULL left side (three-valued logic)",
            "SELECT (CASE WHEN value % 2 = 0 THEN NULL ELSE value > 50 END) OR {G}['status'] = 200 FROM generate_series(1, 100)",
            ids("", |v| v % 2 == 0 || v <= 50, n),
        ),
        (
            "CASE: a call in a later WHEN",
            "SELECT CASE WHEN value <= 30 THEN 0 WHEN {G}['status'] = 200 THEN 1 ELSE 2 END FROM generate_series(1, 100)",
            ids("", |v| v > 30, n),
        ),
        (
            "CASE: ELSE",
            "SELECT CASE WHEN value % 3 = 0 THEN 0 WHEN value % 3 = 1 THEN 1 ELSE {G}['status'] END FROM generate_series(1, 100)",
            ids("", |v| v % 3 == 2, n),
        ),
        (
            "simple CASE",
            "SELECT CASE value % 4 WHEN 0 THEN {A}['status'] WHEN 1 THEN -1 ELSE {B}['status'] END FROM generate_series(1, 100)",
            both(ids("a", |v| v % 4 == 0, n), ids("b", |v| v % 4 >= 2, n)),
        ),
        (
            "nvl and ifnull",
            "SELECT nvl(CASE WHEN value % 5 = 0 THEN 7 END, {A}['status']), ifnull(CASE WHEN value % 5 <> 0 THEN 7 END, {B}['status']) FROM generate_series(1, 100)",
            both(ids("a", |v| v % 5 != 0, n), ids("b", |v| v % 5 == 0, n)),
        ),
        (
            "nvl2",
            "SELECT nvl2(CASE WHEN value <= 20 THEN 1 END, {A}['status'], {B}['status']) FROM generate_series(1, 100)",
            both(ids("a", |v| v <= 20, n), ids("b", |v| v > 20, n)),
        ),
        (
            "nullif needs both",
            "SELECT nullif({G}['status'], 200) FROM generate_series(1, 100)",
            ids("", |_| true, n),
        ),
        (
            "aggregate FILTER",
            "SELECT sum({A}['status']) FILTER (WHERE value % 4 = 0), count(*) FILTER (WHERE {B}['status'] = 200) FROM generate_series(1, 100)",
            both(ids("a", |v| v % 4 == 0, n), ids("b", |_| true, n)),
        ),
        (
            "nested guards compose",
            "SELECT coalesce(CASE WHEN value % 2 = 0 THEN NULL ELSE 1 END, CASE WHEN value % 3 = 0 THEN {G}['status'] END) FROM generate_series(1, 100)",
            ids("", |v| v % 6 == 0, n),
        ),
        (
            "one call read under two guards: the union",
            "SELECT CASE WHEN value % 2 = 0 THEN {G}['status'] END, CASE WHEN value % 3 = 0 THEN {G}['size'] END FROM generate_series(1, 100)",
            ids("", |v| v % 2 == 0 || v % 3 == 0, n),
        ),
        (
            "a guarded and an unguarded read: every row",
            "SELECT CASE WHEN value % 2 = 0 THEN {G}['status'] END, {G}['size'] FROM generate_series(1, 100)",
            ids("", |_| true, n),
        ),
        (
            "HAVING … OR call",
            "SELECT value % 10, count(*) FROM generate_series(1, 100) GROUP BY value % 10 HAVING value % 10 > 5 OR {K}['status'] = 200",
            ids("k", |v| v <= 5, 5)
                .into_iter()
                .chain(["k0".to_string()])
                .collect(),
        ),
        (
            "JOIN … ON with OR",
            "SELECT a.value FROM generate_series(1, 100) a JOIN (SELECT value FROM generate_series(1, 100)) b ON a.value = b.value AND (b.value > 80 OR {Gb}['status'] = 200)",
            ids("", |v| v <= 80, n),
        ),
        (
            "both sides call: the right one where the left did not decide",
            "SELECT json_get_str(http_get('{ECHO}?id=a' || value || '&p=' || (value % 2))['body'], 'query', 'p') = '0' OR {B}['status'] = 200 FROM generate_series(1, 100)",
            both(ids("a", |_| true, n), ids("b", |v| v % 2 == 1, n)),
        ),
        (
            "INSERT … SELECT",
            "INSERT INTO sink SELECT value, CASE WHEN value % 2 = 0 THEN {P}['status'] END FROM generate_series(1, 100)",
            ids("", |v| v % 2 == 0, n),
        ),
        (
            "COPY … STORED AS NOOP",
            "COPY (SELECT CASE WHEN value % 5 = 0 THEN {P}['status'] ELSE 0 END FROM generate_series(1, 100)) TO 'ignored' STORED AS NOOP",
            ids("", |v| v % 5 == 0, n),
        ),
    ]
}

#[tokio::test]
async fn a_call_runs_only_for_the_rows_that_need_it() {
    let api = mock(0).await;
    let ctx = context();
    run(
        &ctx,
        "CREATE EXTERNAL TABLE sink (n BIGINT, status INT) STORED AS NOOP LOCATION 'noop://'",
    )
    .await
    .unwrap();
    for (shape, template, expected) in shapes() {
        api.reset_stats();
        let sql = sql(&api, template);
        run(&ctx, &sql)
            .await
            .unwrap_or_else(|e| panic!("{shape}: {sql}\n{e}"));
        assert_called(shape, &api.requests_by_id(), &expected);
    }
}

#[tokio::test]
async fn guarded_rows_get_the_answers_and_the_others_their_own_values() {
    let api = mock(0).await;
    let ctx = context();
    let out = run(
        &ctx,
        &sql(
            &api,
            "SELECT value, coalesce(CASE WHEN value > 6 THEN -1 END, {G}['status']) AS s \
             FROM generate_series(1, 8) ORDER BY value",
        ),
    )
    .await
    .unwrap();
    let s: Vec<i64> = out
        .iter()
        .flat_map(|b| {
            let c = arrow::compute::cast(b.column(1), &DataType::Int64).unwrap();
            c.as_primitive::<Int64Type>().values().to_vec()
        })
        .collect();
    assert_eq!(s, vec![200, 200, 200, 200, 200, 200, -1, -1]);
}

#[tokio::test]
async fn limit_stops_calling_under_a_guard() {
    let api = mock(0).await;
    let ctx = context();
    let out = run(
        &ctx,
        &sql(
            &api,
            "SELECT value, CASE WHEN value % 10 = 0 THEN {G}['status'] ELSE 0 END \
             FROM generate_series(1, 1000) LIMIT 20",
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        out.iter()
            .map(arrow::array::RecordBatch::num_rows)
            .sum::<usize>(),
        20
    );
    let counts = api.requests_by_id();
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    assert!(
        counts.keys().all(|id| id.parse::<i64>().unwrap() % 10 == 0),
        "an unguarded row was called: {counts:?}"
    );
    assert!(
        counts.contains_key("10") && counts.contains_key("20"),
        "{counts:?}"
    );
    assert!(counts.len() <= 4, "LIMIT 20 made {} calls", counts.len());
}

#[tokio::test]
async fn a_volatile_guard_is_evaluated_once_per_row() {
    let api = mock(0).await;
    let ctx = context();
    let out = run(
        &ctx,
        &sql(
            &api,
            "SELECT value, CASE WHEN random() < 0.3 THEN {G}['status'] END AS s \
             FROM generate_series(1, 400)",
        ),
    )
    .await
    .unwrap();
    let counts = api.requests_by_id();
    let mut answered = BTreeSet::new();
    for b in &out {
        let v = b.column(0).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            if b.column(1).is_valid(i) {
                answered.insert(v.value(i).to_string());
            }
        }
    }
    // every row that took the branch has its answer, and only those were called
    assert_called("random() < 0.3", &counts, &answered);
    assert!(
        (40..=200).contains(&answered.len()),
        "{} of 400 rows took a 30 % branch",
        answered.len()
    );
}

#[tokio::test]
async fn a_failing_guard_fails_as_without_the_call_and_sends_nothing_for_its_row() {
    let api = mock(0).await;
    let ctx = context();
    let plain = run(
        &ctx,
        "SELECT CASE WHEN 10 / (value - 5) > 0 THEN 1 END FROM generate_series(1, 10)",
    )
    .await
    .unwrap_err()
    .to_string();
    let guarded = run(
        &ctx,
        &sql(
            &api,
            "SELECT CASE WHEN 10 / (value - 5) > 0 THEN {P}['status'] END FROM generate_series(1, 10)",
        ),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(plain.contains("Divide by zero"), "{plain}");
    assert!(guarded.contains("Divide by zero"), "{guarded}");
    assert!(
        api.requests_by_id().is_empty(),
        "sent for a failed guard: {:?}",
        api.requests_by_id()
    );
}

#[tokio::test]
async fn explain_shows_the_guard_and_explain_analyze_counts_skipped_rows() {
    let api = mock(0).await;
    let ctx = context();
    let query = sql(
        &api,
        "SELECT CASE WHEN value % 4 = 0 THEN {P}['status'] END FROM generate_series(1, 100)",
    );
    let plan = pretty_format_batches(&run(&ctx, &format!("EXPLAIN {query}")).await.unwrap())
        .unwrap()
        .to_string();
    assert!(
        plan.contains(" WHEN generate_series().value % Int64(4) = Int64(0)"),
        "{plan}"
    );
    let analyzed = pretty_format_batches(
        &run(&ctx, &format!("EXPLAIN ANALYZE {query}"))
            .await
            .unwrap(),
    )
    .unwrap()
    .to_string();
    assert!(analyzed.contains("calls=25"), "{analyzed}");
    assert!(analyzed.contains("rows_skipped=75"), "{analyzed}");
}

#[derive(Clone, Serialize, Deserialize)]
struct Pair {
    id: i64,
    weight: i64,
}

/// A typed function per row (scalar and struct argument) and per chunk:
/// called only for the rows their guards need, a chunk holding only those.
#[tokio::test]
async fn typed_functions_follow_the_guards() {
    let ctx = context();
    run(&ctx, "SET async_udf.chunk_size = 4").await.unwrap();
    let rows: Arc<Mutex<Vec<i64>>> = Arc::default();
    let seen = Arc::clone(&rows);
    AsyncFn::per_row("twice", move |v: i64| {
        seen.lock().push(v);
        async move { Ok::<_, String>(v * 2) }
    })
    .unwrap()
    .register(&ctx)
    .unwrap();
    let pairs: Arc<Mutex<Vec<i64>>> = Arc::default();
    let seen = Arc::clone(&pairs);
    AsyncFn::per_row("weigh", move |p: Pair| {
        seen.lock().push(p.id);
        async move { Ok::<_, String>(p) }
    })
    .unwrap()
    .register(&ctx)
    .unwrap();
    let chunks: Arc<Mutex<Vec<Vec<i64>>>> = Arc::default();
    let seen = Arc::clone(&chunks);
    AsyncFn::per_chunk("batch", move |rows: Vec<i64>, _cx: ChunkContext| {
        seen.lock().push(rows.clone());
        async move { Ok::<_, String>(rows) }
    })
    .unwrap()
    .register(&ctx)
    .unwrap();
    run(
        &ctx,
        "SELECT CASE WHEN value % 3 = 0 THEN twice(value) END, \
                coalesce(CASE WHEN value > 10 THEN 0 END, weigh(named_struct('id', value, 'weight', 1))['weight']), \
                value > 20 AND batch(value) > 0 \
         FROM generate_series(1, 30)",
    )
    .await
    .unwrap();
    let mut twice = rows.lock().clone();
    twice.sort_unstable();
    assert_eq!(twice, (1..=30).filter(|v| v % 3 == 0).collect::<Vec<_>>());
    let mut weighed = pairs.lock().clone();
    weighed.sort_unstable();
    assert_eq!(weighed, (1..=10).collect::<Vec<_>>());
    let chunks = chunks.lock().clone();
    let mut batched: Vec<i64> = chunks.iter().flatten().copied().collect();
    batched.sort_unstable();
    assert_eq!(batched, (21..=30).collect::<Vec<_>>());
    assert!(
        chunks.iter().all(|c| !c.is_empty() && c.len() <= 4),
        "{chunks:?}"
    );
    assert_eq!(
        chunks.len(),
        3,
        "10 guarded rows in chunks of 4: {chunks:?}"
    );
}

/// `async_udf.pipelined = false` (DataFusion's own operator): the guard
/// is folded into the call's url, so the same rows are called.
#[tokio::test]
async fn guards_hold_in_datafusions_own_operator_too() {
    let api = mock(0).await;
    let ctx = context();
    run(&ctx, "SET async_udf.pipelined = false").await.unwrap();
    let query = sql(
        &api,
        "SELECT CASE WHEN value % 2 = 0 THEN {P}['status'] END FROM generate_series(1, 40)",
    );
    run(&ctx, &query).await.unwrap();
    assert_called(
        "pipelined = false",
        &api.requests_by_id(),
        &ids("", |v| v % 2 == 0, 40),
    );
}
