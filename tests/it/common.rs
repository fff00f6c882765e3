//! Helpers shared by the integration tests.

use std::time::Duration;

use arrow::array::RecordBatch;
use datafusion::common::Result;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_async_udf::mock::{Faults, MockApi, MockConfig};

/// A context with everything registered.
pub fn context() -> SessionContext {
    context_with(SessionConfig::new())
}

pub fn context_with(config: SessionConfig) -> SessionContext {
    let ctx = SessionContext::new_with_config(config.with_information_schema(true));
    datafusion_async_udf::register_all(&ctx).expect("register_all");
    ctx
}

/// The mock API on 127.0.0.1:0 answering after `latency_ms`.
pub async fn mock(latency_ms: u64) -> MockApi {
    MockApi::start(MockConfig::with_latency(Duration::from_millis(latency_ms)))
        .await
        .expect("mock API starts")
}

/// The mock API answering after `latency_ms`, with `faults`.
pub async fn faulty(latency_ms: u64, faults: Faults) -> MockApi {
    let config = MockConfig::with_latency(Duration::from_millis(latency_ms)).with_faults(faults);
    MockApi::start(config).await.expect("mock API starts")
}

/// A context with everything registered and `settings` (`SET …`) run.
pub async fn context_set(settings: impl IntoIterator<Item = impl AsRef<str>>) -> SessionContext {
    let ctx = context();
    for set in settings {
        let set = set.as_ref();
        run(&ctx, set)
            .await
            .unwrap_or_else(|e| panic!("{set}: {e}"));
    }
    ctx
}

pub async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    ctx.sql(sql).await?.collect().await
}

/// Runs a statement whose result is one row with one integer (a count).
pub async fn count(ctx: &SessionContext, sql: &str) -> u64 {
    let batches = run(ctx, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batch = batches.iter().find(|b| b.num_rows() > 0).expect("one row");
    let col = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::UInt64).unwrap();
    col.as_any()
        .downcast_ref::<arrow::array::UInt64Array>()
        .unwrap()
        .value(0)
}

/// Polls `f` every 5 ms until it holds, failing (naming `what`) after `within`.
pub async fn until(within: Duration, what: &str, f: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
