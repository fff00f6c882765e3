//! `register_all` on unusual sessions: no panic, everything planned.

use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;

#[tokio::test]
async fn a_session_without_physical_optimizer_rules() {
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_physical_optimizer_rules(vec![])
        .build();
    let ctx = SessionContext::new_with_state(state);
    datafusion_async_udf::register_all(&ctx).expect("no EnsureRequirements: no panic");
    // registering twice keeps one runtime
    let a = datafusion_async_udf::register_all(&ctx).unwrap();
    let b = datafusion_async_udf::register_all(&ctx).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    let plan = ctx
        .sql("EXPLAIN SELECT http_get('http://127.0.0.1:1/')['status']")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(text.contains("AsyncPipelineExec"), "{text}");
}

/// Everything registers on a `SessionState` built with a `SessionStateBuilder`
/// (as Ballista's executors build theirs), and works once the state is a context.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_on_a_session_state() {
    use std::sync::Arc;

    use arrow::array::{AsArray, RecordBatch};
    use arrow::datatypes::Int64Type;
    use datafusion_async_udf::{AsyncFn, AsyncRuntime, ChunkContext, FnHandler};

    let api = crate::common::mock(0).await;
    let mut state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(datafusion::prelude::SessionConfig::new().with_information_schema(true))
        .build();
    let runtime = datafusion_async_udf::register_all(&mut state).unwrap();
    assert!(Arc::ptr_eq(
        &runtime,
        &AsyncRuntime::of(&mut state).unwrap()
    ));
    AsyncFn::per_row("plus_one", |x: i64| async move { Ok::<_, String>(x + 1) })
        .unwrap()
        .register(&mut state)
        .unwrap();
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("n", arrow::datatypes::DataType::Int64, false),
    ]));
    let out_schema = Arc::clone(&schema);
    let rows = FnHandler::new(
        Arc::clone(&schema),
        move |chunk: RecordBatch, _cx: ChunkContext| {
            let schema = Arc::clone(&out_schema);
            async move {
                let n = arrow::array::Int64Array::from(vec![chunk.num_rows() as i64]);
                Ok(vec![RecordBatch::try_new(schema, vec![Arc::new(n)])?])
            }
        },
    );
    datafusion_async_udf::register_handler(&mut state, "rows", Arc::new(rows)).unwrap();
    let ctx = SessionContext::new_with_state(state);
    // registering again on the context keeps the state's runtime
    assert!(Arc::ptr_eq(
        &runtime,
        &datafusion_async_udf::register_all(&ctx).unwrap()
    ));

    let sql = format!(
        "SELECT count(*) FILTER (WHERE http_get('{}' || value)['status'] = 200), sum(plus_one(value)) \
         FROM generate_series(1, 20)",
        api.url("/v1/images/search?id=")
    );
    let out = crate::common::run(&ctx, &sql).await.unwrap();
    assert_eq!(out[0].column(0).as_primitive::<Int64Type>().value(0), 20);
    assert_eq!(out[0].column(1).as_primitive::<Int64Type>().value(0), 230);
    let by_id = api.requests_by_id();
    assert_eq!(by_id.len(), 20, "{by_id:?}");
    assert!(by_id.values().all(|&n| n == 1), "{by_id:?}");

    crate::common::run(&ctx, "SET async_udf.chunk_size = 8")
        .await
        .unwrap();
    let out = crate::common::run(
        &ctx,
        "SELECT sum(n), count(*) FROM map_in_batches('rows', (SELECT value FROM generate_series(1, 20)))",
    )
    .await
    .unwrap();
    assert_eq!(out[0].column(0).as_primitive::<Int64Type>().value(0), 20);
    assert_eq!(
        out[0].column(1).as_primitive::<Int64Type>().value(0),
        3,
        "chunks of 8, 8, 4"
    );

    // map_in_batches is listed among the table functions
    let out = crate::common::run(
        &ctx,
        "SELECT function_type FROM information_schema.routines WHERE routine_name = 'map_in_batches'",
    )
    .await
    .unwrap();
    assert_eq!(out[0].column(0).as_string::<i32>().value(0), "TABLE");
}

/// A dropped session frees what `register_all` and `register` made for it: its
/// runtime, and with it the connection pools. The server sees every connection
/// close at once (a pool kept alive would hold them until its 90 s idle
/// timeout: a process making a session per job ran out of file descriptors).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_closes_its_connections() {
    use std::sync::Arc;
    use std::time::Duration;

    use datafusion_async_udf::{AsyncFn, AsyncRuntime};

    use crate::common::{context_set, count, mock, until};

    let api = mock(50).await;
    let ctx = context_set(["SET async_udf.max_in_flight = 20"]).await;
    AsyncFn::per_row("plus_one", |x: i64| async move { Ok::<_, String>(x + 1) })
        .unwrap()
        .register(&ctx)
        .unwrap();
    let runtime = Arc::downgrade(&AsyncRuntime::of(&ctx).unwrap());
    let url = api.url("/v1/images/search");
    let sql = format!(
        "SELECT count(*) FROM (SELECT http_get('{url}?id=' || value)['status'] AS s, \
         plus_one(value) AS p FROM generate_series(1, 100)) WHERE s = 200 AND p > 1"
    );
    assert_eq!(count(&ctx, &sql).await, 100);
    let open = api.stats().open_connections;
    assert!(
        (1..=20).contains(&open),
        "pooled while the session lives: {open}"
    );
    drop(ctx);
    let closed = || api.stats().open_connections == 0;
    until(Duration::from_secs(5), "the connections to close", closed).await;
    assert!(
        runtime.upgrade().is_none(),
        "the runtime outlived its session"
    );
}
