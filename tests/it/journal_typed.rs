//! The journal for typed functions and `map_in_batches`: calls counted in the
//! function (and at the mock for `post_json`), answers replayed by a rerun
//! exactly as they were, failures called again, pure functions called once
//! per distinct input, and each chunk's idempotency key.

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use datafusion_async_udf::{AsyncFn, CallError, ChunkContext};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use common::{context_set, count, mock, run};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Enriched {
    id: i64,
    label: String,
    score: f64,
    tags: Vec<String>,
}

/// A session with the journal at `journal` (empty: off).
async fn session(journal: &str, more: &[&str]) -> SessionContext {
    let mut settings = vec![
        format!("SET async_udf.journal = '{journal}'"),
        "SET async_udf.max_in_flight = 16".to_string(),
    ];
    settings.extend(more.iter().map(|s| (*s).to_string()));
    context_set(settings).await
}

/// Registers `enrich` (fails for good on 13) counting its calls in `calls`.
fn enrich(ctx: &SessionContext, calls: &Arc<AtomicUsize>, pure: bool) {
    let calls = Arc::clone(calls);
    let f = AsyncFn::per_row("enrich", move |id: i64| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            if id == 13 {
                return Err(CallError::permanent("13 is unlucky"));
            }
            Ok(Enriched {
                id,
                label: format!("id-{id}"),
                // NaN and -0.0 must come back as they went
                score: match id % 3 {
                    0 => f64::NAN,
                    1 => -0.0,
                    _ => id as f64 / 7.0,
                },
                tags: (0..id % 4).map(|t| format!("t{t}")).collect(),
            })
        }
    })
    .unwrap()
    .with_error_field()
    .unwrap();
    let f = if pure { f.pure() } else { f };
    f.register(ctx).unwrap();
}

async fn shown(ctx: &SessionContext, sql: &str) -> String {
    let out = run(ctx, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    pretty_format_batches(&out).unwrap().to_string()
}

/// `n` rows over 50 distinct inputs.
fn query(n: usize) -> String {
    format!("SELECT value, enrich(value % 50) AS e FROM generate_series(1, {n}) ORDER BY value")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_answers_are_replayed_as_they_were_and_failures_called_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typed.journal");
    let path = path.to_str().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let ctx = session(path, &[]).await;
    enrich(&ctx, &calls, false);
    let first = shown(&ctx, &query(200)).await;
    assert_eq!(
        calls.swap(0, Ordering::SeqCst),
        200,
        "not pure: one call a row"
    );
    assert!(
        first.contains("13 is unlucky") && first.contains("NaN"),
        "{first}"
    );
    // 196 answers recorded (4 rows failed on 13: not recorded)
    assert_eq!(
        count(
            &ctx,
            "SELECT count(*) FROM async_journal() WHERE function = 'enrich'"
        )
        .await,
        196
    );

    // a new session on the journal: only the failed rows are called again
    let ctx = session(path, &[]).await;
    enrich(&ctx, &calls, false);
    assert_eq!(shown(&ctx, &query(200)).await, first);
    assert_eq!(calls.swap(0, Ordering::SeqCst), 4);

    // 50 more rows: the 5th copy of each input, a new entry (49 of them),
    // and the five rows of 13 again
    let more = shown(&ctx, &query(250)).await;
    assert_eq!(calls.swap(0, Ordering::SeqCst), 49 + 5);
    assert!(more.starts_with(&first[..first.len() - first.lines().last().unwrap().len() - 1]));

    // without the journal every row is called
    let ctx = session("", &[]).await;
    enrich(&ctx, &calls, false);
    assert_eq!(shown(&ctx, &query(200)).await, first);
    assert_eq!(calls.swap(0, Ordering::SeqCst), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pure_function_is_called_once_per_distinct_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pure.journal");
    let path = path.to_str().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    // without the journal: identical calls of one evaluation (a batch, here)
    // share one call
    let ctx = session("", &["SET async_udf.pipelined = false"]).await;
    enrich(&ctx, &calls, true);
    let expected = shown(&ctx, &query(200)).await;
    assert_eq!(calls.swap(0, Ordering::SeqCst), 50);
    // with it: answered once for the TTL, in any query
    let ctx = session(path, &[]).await;
    enrich(&ctx, &calls, true);
    assert_eq!(shown(&ctx, &query(200)).await, expected);
    // 13 failed: shared by its copies in one evaluation, never recorded
    let first = calls.swap(0, Ordering::SeqCst);
    assert!((50..=53).contains(&first), "{first} calls");
    assert_eq!(
        count(
            &ctx,
            "SELECT count(*) FROM async_journal() WHERE function = 'enrich'"
        )
        .await,
        49
    );
    assert_eq!(shown(&ctx, &query(200)).await, expected);
    let again = calls.swap(0, Ordering::SeqCst);
    assert!((1..=4).contains(&again), "only 13 again: {again} calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_are_recorded_and_each_has_its_own_stable_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chunks.journal");
    let path = path.to_str().unwrap();
    let keys: Arc<Mutex<Vec<String>>> = Arc::default();
    let register = |ctx: &SessionContext| {
        let keys = Arc::clone(&keys);
        AsyncFn::per_chunk("double", move |xs: Vec<i64>, cx: ChunkContext| {
            keys.lock().push(cx.idempotency_key.clone());
            async move { Ok::<_, String>(xs.into_iter().map(|x| x * 2).collect::<Vec<_>>()) }
        })
        .unwrap()
        .register(ctx)
        .unwrap();
    };
    let sql = "SELECT sum(double(value % 7)) FROM generate_series(1, 100)";
    let settings = [
        "SET async_udf.chunk_size = 10",
        "SET datafusion.execution.target_partitions = 1",
    ];
    let ctx = session("", &settings).await;
    register(&ctx);
    let expected = count(&ctx, sql).await;
    let without: Vec<String> = std::mem::take(&mut *keys.lock());
    assert_eq!(without.len(), 10);
    let distinct: HashSet<&String> = without.iter().collect();
    assert_eq!(distinct.len(), 10, "a key for each chunk: {without:?}");
    assert!(without.iter().all(|k| k.len() == 32));

    let ctx = session(path, &settings).await;
    register(&ctx);
    assert_eq!(count(&ctx, sql).await, expected);
    let with: Vec<String> = std::mem::take(&mut *keys.lock());
    let mut sorted = (without.clone(), with);
    sorted.0.sort();
    sorted.1.sort();
    assert_eq!(sorted.0, sorted.1, "the same keys with the journal on");

    let ctx = session(path, &settings).await;
    register(&ctx);
    assert_eq!(count(&ctx, sql).await, expected);
    assert!(keys.lock().is_empty(), "a rerun calls no chunk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_in_batches_chunks_are_posted_once_with_a_key_and_replayed() {
    let api = mock(2).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batches.journal");
    let path = path.to_str().unwrap();
    let sql = format!(
        "SELECT value, status, response, error FROM map_in_batches('post_json', \
         (SELECT value FROM generate_series(1, 50)), '{}') ORDER BY value",
        api.url("/v1/batch")
    );
    let settings = ["SET async_udf.chunk_size = 10"];
    let ctx = session(path, &settings).await;
    let first = shown(&ctx, &sql).await;
    let posted = api.idempotency_keys_by_id();
    assert_eq!(posted.len(), 5, "{posted:?}");
    let mut seen = HashSet::new();
    for (body, keys) in &posted {
        assert_eq!(keys.len(), 1, "{body} posted {} times", keys.len());
        let key = keys[0]
            .clone()
            .unwrap_or_else(|| panic!("{body}: no Idempotency-Key"));
        assert!(key.starts_with('"') && key.len() == 34, "{key}");
        assert!(seen.insert(key));
    }
    assert_eq!(
        count(
            &ctx,
            "SELECT count(*) FROM async_journal() WHERE function = 'map_in_batches(post_json)'"
        )
        .await,
        5
    );
    let ctx = session(path, &settings).await;
    assert_eq!(shown(&ctx, &sql).await, first);
    let again = api.idempotency_keys_by_id();
    assert_eq!(again, posted, "a rerun posts nothing");
}
