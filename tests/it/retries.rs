//! Typed functions retry calls that fail with a transient `CallError`, and only those.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use datafusion_async_udf::AsyncFn;
use datafusion_async_udf::CallError;

use common::{context, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_permanent_ones_are_not() {
    let ctx = context();
    let attempts: Arc<Mutex<HashMap<i64, u32>>> = Arc::default();
    let seen = Arc::clone(&attempts);
    // odd ids fail twice with a transient error, then succeed; ids divisible by 10
    // fail permanently; the rest succeed at once
    AsyncFn::per_row("flaky_double", move |id: i64| {
        let n = {
            let mut a = seen.lock().unwrap();
            let n = a.entry(id).or_default();
            *n += 1;
            *n
        };
        async move {
            match id {
                _ if id % 10 == 0 => Err(CallError::permanent(format!("{id} is not found"))),
                _ if id % 2 == 1 && n <= 2 => {
                    Err(CallError::transient("busy").retry_after(Duration::from_millis(1)))
                }
                _ => Ok(id * 2),
            }
        }
    })
    .unwrap()
    .register(&ctx)
    .unwrap();
    for s in [
        "SET async_udf.retry_initial_ms = 1",
        "SET async_udf.retry_max_ms = 5",
    ] {
        run(&ctx, s).await.unwrap();
    }
    let out = run(
        &ctx,
        "SELECT value, flaky_double(value) FROM generate_series(1, 40)",
    )
    .await
    .unwrap();
    for b in &out {
        let (v, d) = (
            b.column(0).as_primitive::<Int64Type>(),
            b.column(1).as_primitive::<Int64Type>(),
        );
        for i in 0..b.num_rows() {
            let id = v.value(i);
            if id % 10 == 0 {
                assert!(d.is_null(i), "row {id} failed for good");
            } else {
                assert_eq!(d.value(i), id * 2, "row {id} answered after retries");
            }
        }
    }
    let a = attempts.lock().unwrap().clone();
    assert_eq!(a[&1], 3, "two transient failures, then success");
    assert_eq!(a[&2], 1);
    assert_eq!(a[&10], 1, "permanent errors are not retried");

    // with retries off, a transient failure is the row's error at once
    attempts.lock().unwrap().clear();
    run(&ctx, "SET async_udf.max_retries = 0").await.unwrap();
    run(&ctx, "SET async_udf.on_error = 'fail'").await.unwrap();
    let err = run(
        &ctx,
        "SELECT flaky_double(value) FROM generate_series(3, 3)",
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("flaky_double") && err.contains("busy"),
        "{err}"
    );
    assert_eq!(attempts.lock().unwrap()[&3], 1);
}
