//! The call journal in one process: answers recorded and replayed by a rerun,
//! identical POSTs kept apart, identical GETs sent once, Idempotency-Key,
//! secrets kept out of the file, the listing and clearing functions, and the
//! errors of a journal that cannot be used. Counted at the mock.

use crate::common;

use std::collections::HashMap;

use datafusion::prelude::SessionContext;
use datafusion_async_udf::mock::MockApi;

use common::{context_set, count, mock, run};

/// A session with the journal at `location`, `max_in_flight` 64.
async fn session(location: &str, more: &[&str]) -> SessionContext {
    let mut settings = vec![
        format!("SET async_udf.journal = '{location}'"),
        "SET async_udf.max_in_flight = 64".to_string(),
    ];
    settings.extend(more.iter().map(|s| (*s).to_string()));
    context_set(settings).await
}

/// `n` POSTs of distinct records to the mock's /echo: (rows answered 200,
/// rows replayed).
fn posts(api: &MockApi, n: usize) -> String {
    format!(
        "SELECT count(*) FILTER (WHERE r['status'] = 200) AS ok, count(*) FILTER (WHERE r['attempts'] = 0) AS replayed \
         FROM (SELECT http_post('{}?id=' || value, '{{\"id\": ' || value || '}}') AS r FROM generate_series(1, {n}))",
        api.url("/echo")
    )
}

async fn two(ctx: &SessionContext, sql: &str) -> (u64, u64) {
    let batches = run(ctx, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let b = &batches[0];
    let col = |i: usize| {
        arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::UInt64)
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::UInt64Array>()
            .unwrap()
            .value(0)
    };
    (col(0), col(1))
}

fn total(by_id: &HashMap<String, u64>) -> u64 {
    by_id.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_replays_every_answered_post_and_sends_nothing() {
    let api = mock(5).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.journal");
    let path = path.to_str().unwrap();
    let ctx = session(path, &[]).await;
    assert_eq!(two(&ctx, &posts(&api, 300)).await, (300, 0));
    let by_id = api.requests_by_id();
    assert_eq!((by_id.len(), total(&by_id)), (300, 300));
    // every POST carried a key, each its own
    let keys = api.idempotency_keys_by_id();
    let mut seen = std::collections::HashSet::new();
    for (id, ks) in &keys {
        let k = ks[0]
            .clone()
            .unwrap_or_else(|| panic!("id {id}: no Idempotency-Key"));
        assert!(
            k.starts_with('"') && k.ends_with('"') && k.len() == 34,
            "{k}"
        );
        assert!(seen.insert(k), "a key reused for another payload");
    }
    // the same statement again, in the same session and in a new one
    assert_eq!(two(&ctx, &posts(&api, 300)).await, (300, 300));
    drop(ctx);
    let ctx = session(path, &[]).await;
    assert_eq!(two(&ctx, &posts(&api, 300)).await, (300, 300));
    assert_eq!(total(&api.requests_by_id()), 300, "nothing sent again");
    // a longer job sends only the new rows
    assert_eq!(two(&ctx, &posts(&api, 350)).await, (350, 300));
    let by_id = api.requests_by_id();
    assert_eq!((by_id.len(), total(&by_id)), (350, 350));
    // the replayed answer is the recorded one
    let sql = format!(
        "SELECT r['body'] FROM (SELECT http_post('{}?id=7', '{{\"id\": 7}}') AS r)",
        api.url("/echo")
    );
    let first = arrow::util::pretty::pretty_format_batches(&run(&ctx, &sql).await.unwrap())
        .unwrap()
        .to_string();
    assert!(
        first.contains(r#"\"id\": 7"#) || first.contains(r#""id": 7"#),
        "{first}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_posts_stay_distinct_and_a_rerun_sends_only_the_extra_copies() {
    let api = mock(5).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let ctx = session(path.to_str().unwrap(), &[]).await;
    let same = |n: usize| {
        format!(
            "SELECT count(*) FILTER (WHERE r['status'] = 200), count(*) FILTER (WHERE r['attempts'] = 0) \
             FROM (SELECT http_post('{}?id=same', '{{\"a\": 1}}') AS r FROM generate_series(1, {n}))",
            api.url("/echo")
        )
    };
    assert_eq!(two(&ctx, &same(10)).await, (10, 0));
    assert_eq!(api.requests_by_id()["same"], 10, "POSTs are never merged");
    let keys: std::collections::HashSet<_> = api.idempotency_keys_by_id()["same"]
        .iter()
        .cloned()
        .collect();
    assert_eq!(keys.len(), 10, "the k-th copy has its own key");
    assert_eq!(two(&ctx, &same(10)).await, (10, 10));
    assert_eq!(two(&ctx, &same(13)).await, (13, 10));
    assert_eq!(api.requests_by_id()["same"], 13);
    let keys: std::collections::HashSet<_> = api.idempotency_keys_by_id()["same"]
        .iter()
        .cloned()
        .collect();
    assert_eq!(keys.len(), 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_gets_are_sent_once_with_the_journal_and_merged_in_flight_without() {
    let api = mock(20).await;
    let sql = format!(
        "SELECT count(*) FILTER (WHERE r['status'] = 200) FROM \
         (SELECT http_get('{}?id=' || (value % 100)) AS r FROM generate_series(1, 10000))",
        api.url("/echo")
    );
    // without a journal: identical calls in flight at once share one request
    let ctx = context_set(["SET async_udf.max_in_flight = 256"]).await;
    assert_eq!(count(&ctx, &sql).await, 10_000);
    let by_id = api.requests_by_id();
    assert_eq!(by_id.len(), 100);
    // never two requests for one URL at once: at most 100 in flight, though
    // the budget is 256
    let seen = api.stats();
    assert!(seen.peak_in_flight <= 100, "{seen:?}");
    assert!(total(&by_id) < 10_000, "{seen:?}");
    // with the journal: each URL once, for the TTL
    api.reset_stats();
    let dir = tempfile::tempdir().unwrap();
    let ctx = session(
        dir.path().join("j").to_str().unwrap(),
        &["SET async_udf.max_in_flight = 256"],
    )
    .await;
    assert_eq!(count(&ctx, &sql).await, 10_000);
    let by_id = api.requests_by_id();
    assert_eq!((by_id.len(), total(&by_id)), (100, 100), "{by_id:?}");
    assert!(
        api.idempotency_keys_by_id()
            .values()
            .flatten()
            .all(Option::is_none),
        "GETs carry no key"
    );
    assert_eq!(count(&ctx, &sql).await, 10_000);
    assert_eq!(total(&api.requests_by_id()), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_follow_the_setting_and_a_key_of_the_call_wins() {
    let api = mock(0).await;
    let ctx = context_set(["SET http.idempotency_key = 'off'"]).await;
    let post = |id: &str, headers: &str| {
        format!(
            "SELECT http_post('{}?id={id}', 'x'{headers})['status']",
            api.url("/echo")
        )
    };
    run(&ctx, &post("off", "")).await.unwrap();
    assert_eq!(api.idempotency_keys_by_id()["off"], vec![None]);
    let ctx = context_set(["SET http.idempotency_key = 'auto'"]).await;
    run(
        &ctx,
        &post("own", ", map(['Idempotency-Key'], ['\"mine-1\"'])"),
    )
    .await
    .unwrap();
    assert_eq!(
        api.idempotency_keys_by_id()["own"],
        vec![Some("\"mine-1\"".to_string())]
    );
    // the same call gets the same key in another session (a rerun)
    run(&ctx, &post("again", "")).await.unwrap();
    let ctx = context_set(["SET async_udf.max_in_flight = 3"]).await;
    run(&ctx, &post("again", "")).await.unwrap();
    let keys = &api.idempotency_keys_by_id()["again"];
    assert_eq!(keys.len(), 2);
    assert!(keys[0].is_some() && keys[0] == keys[1], "{keys:?}");
    let e = run(&ctx, "SET http.idempotency_key = 'sometimes'")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("http.idempotency_key") && e.contains("'auto' or 'off'"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_reaches_the_journal_file() {
    const VALUE: &str = "s3cr3t-Value-That-Must-Not-Leak-4711";
    let api = mock(0).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let ctx = session(
        path.to_str().unwrap(),
        &["SET http.secret_headers = 'x-custom-token'"],
    )
    .await;
    datafusion_async_udf::AsyncRuntime::of(&ctx)
        .unwrap()
        .secrets()
        .set("TOKEN", VALUE, "127.0.0.1");
    // /flaky answers {"id", "method", "body"}: no request header comes back
    let sql = format!(
        "SELECT count(*) FILTER (WHERE r['status'] = 200) FROM (SELECT http_post('{}/flaky/' || value, 'b', \
         map(['Authorization', 'X-Custom-Token'], [secret('TOKEN'), '{VALUE}-plain'])) AS r FROM generate_series(1, 50))",
        api.base_url()
    );
    assert_eq!(count(&ctx, &sql).await, 50);
    assert_eq!(count(&ctx, &sql).await, 50);
    assert_eq!(
        total(&api.requests_by_id()),
        50,
        "replayed with the secret in the key"
    );
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 50 * 20, "the entries are in the file");
    assert!(
        !bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
        "a secret value is in the journal file"
    );
    assert!(bytes.windows(6).any(|w| w == b"\"body\""), "answers are");
    let listing = common::run(&ctx, "SELECT * FROM async_journal()")
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&listing)
        .unwrap()
        .to_string();
    assert!(!text.contains(VALUE), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_lists_and_clears_its_entries() {
    let api = mock(0).await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = session(dir.path().join("j").to_str().unwrap(), &[]).await;
    assert_eq!(two(&ctx, &posts(&api, 20)).await, (20, 0));
    assert_eq!(two(&ctx, &posts(&api, 20)).await, (20, 20));
    let sql = "SELECT count(*), min(function), min(status), max(status), sum(replayed), min(bytes) > 0, \
               bool_and(recorded_at <= now()), min(length(key)) FROM async_journal()";
    let listing = arrow::util::pretty::pretty_format_batches(&run(&ctx, sql).await.unwrap())
        .unwrap()
        .to_string();
    for want in ["| 20 ", "http_post", "| 200 ", "| true ", "| 64 "] {
        assert!(listing.contains(want), "{want} in\n{listing}");
    }
    assert_eq!(count(&ctx, "SELECT async_journal_clear()").await, 20);
    assert_eq!(count(&ctx, "SELECT count(*) FROM async_journal()").await, 0);
    assert_eq!(
        two(&ctx, &posts(&api, 20)).await,
        (20, 0),
        "cleared: sent again"
    );
    assert_eq!(total(&api.requests_by_id()), 40);
    let off = context_set(Vec::<String>::new()).await;
    let e = run(&off, "SELECT * FROM async_journal()")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("async_journal: no journal is on") && e.contains("SET async_udf.journal"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_used_is_a_clear_error_at_query_start() {
    let api = mock(0).await;
    let dir = tempfile::tempdir().unwrap();
    // not a journal: garbage
    let garbage = dir.path().join("garbage.journal");
    std::fs::write(&garbage, vec![0x5a; 64 * 1024]).unwrap();
    // a journal cut in half: a copy of a used one (a journal open in this
    // process is not opened again)
    let used = dir.path().join("used.journal");
    let cut = dir.path().join("cut.journal");
    {
        let ctx = session(used.to_str().unwrap(), &[]).await;
        assert_eq!(two(&ctx, &posts(&api, 200)).await, (200, 0));
    }
    let bytes = std::fs::read(&used).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let missing = dir.path().join("no/such/dir/j");
    for (path, why) in [
        (garbage.to_str().unwrap(), "move it away"),
        (cut.to_str().unwrap(), "move it away"),
        (missing.to_str().unwrap(), "does not exist"),
        ("/proc/async-journal", "cannot use the journal"),
    ] {
        let ctx = session(path, &[]).await;
        let before = total(&api.requests_by_id());
        let e = run(&ctx, &posts(&api, 5)).await.unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "async_udf.journal: cannot use the journal '{path}'"
            )),
            "{e}"
        );
        assert!(e.contains(why), "{why} in {e}");
        assert_eq!(total(&api.requests_by_id()), before, "{path}: nothing sent");
    }
}
