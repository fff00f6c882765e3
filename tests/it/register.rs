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
