//! `dfasync` as a process.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

fn dfasync() -> Command {
    Command::cargo_bin("dfasync").unwrap()
}

/// Runs a blocking command without stalling the runtime that serves the mock.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_calls_the_api() {
    let api = common::mock(0).await;
    let sql = format!(
        "SELECT http_get('{}')['status'] AS status",
        api.url("/v1/images/search")
    );
    blocking(move || {
        dfasync()
            .args(["-q", "--format", "csv", "-c", &sql])
            .assert()
            .success()
            .stdout(contains("status\n200\n"));
    })
    .await;
    assert_eq!(api.stats().requests, 1);
}

/// The proxy environment variables are honoured (a process of its own: the
/// tests share theirs), and NO_PROXY bypasses the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_environment_variables_are_honoured() {
    let api = common::mock(0).await;
    let proxy = api.base_url();
    blocking(move || {
        dfasync()
            .env("HTTP_PROXY", &proxy)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .args(["-q", "--format", "csv", "-c"])
            .arg("SELECT http_get('http://svc.invalid/echo')['status'] AS status")
            .assert()
            .success()
            .stdout(contains("status\n200\n"));
        dfasync()
            .env("HTTP_PROXY", &proxy)
            .env("NO_PROXY", "svc.invalid")
            .args(["-q", "--format", "csv", "-c"])
            .arg("SELECT http_get('http://svc.invalid/echo')['error'] LIKE 'connection failed%' AS direct")
            .assert()
            .success()
            .stdout(contains("direct\ntrue\n"));
    })
    .await;
    assert_eq!(api.stats().proxied, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_functions_noop_and_set_are_registered() {
    let api = common::mock(0).await;
    let url = api.url("/v1/images/search");
    let sql = vec![
        "SET async_udf.max_in_flight = 5".to_string(),
        format!(
            "SELECT json_get_str(http_get('{url}?id=c' || value)['body'], 0, 'id') AS id \
             FROM generate_series(1, 3)"
        ),
        format!(
            "COPY (SELECT http_get('{url}?n=' || value) FROM generate_series(1, 9)) TO 'x' STORED AS NOOP"
        ),
    ];
    blocking(move || {
        dfasync()
            .args(["-q", "--format", "csv", "-c"])
            .args(&sql)
            .assert()
            .success()
            .stdout(contains("id\nc1\nc2\nc3\n"))
            .stdout(contains("count\n9\n"));
    })
    .await;
    assert_eq!(api.stats().requests, 12);
}

#[tokio::test]
async fn plan_error_names_function_and_argument() {
    blocking(|| {
        dfasync()
            .args(["-q", "-c", "SELECT http_get(42)"])
            .assert()
            .failure()
            .stdout(contains(
                "http_get: argument 1 (url) must be VARCHAR, got Int64",
            ));
    })
    .await;
}

#[tokio::test]
async fn maxrows_and_format_flags() {
    blocking(|| {
        dfasync()
            .args([
                "-q",
                "--maxrows",
                "2",
                "-c",
                "SELECT * FROM generate_series(1, 5)",
            ])
            .assert()
            .success()
            .stdout(contains("| 2     |\n| .     |"))
            .stdout(contains("| 3").not());
        dfasync()
            .args(["-q", "--format", "json", "-c", "SELECT 7 AS n"])
            .assert()
            .success()
            .stdout(contains("[{\"n\":7}]"));
    })
    .await;
}

/// `sql/cats.sql` as the README runs it, against a mock on a free port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cats_sql_file_runs() {
    let api = common::mock(20).await;
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/cats.sql")).unwrap();
    assert!(text.contains("http://127.0.0.1:8089"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cats.sql");
    std::fs::write(
        &file,
        text.replace("http://127.0.0.1:8089", &api.base_url()),
    )
    .unwrap();
    blocking(move || {
        dfasync()
            .args(["-q", "-f"])
            .arg(&file)
            .assert()
            .success()
            .stdout(contains("1000"));
    })
    .await;
    assert!(api.stats().requests >= 1000);
}

/// `dfasync mock-api` serves until killed.
#[tokio::test]
async fn mock_api_subcommand_serves() {
    let bin = assert_cmd::cargo::cargo_bin("dfasync");
    let mut child = std::process::Command::new(bin)
        .args(["mock-api", "--port", "0", "--latency-ms", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let body = reqwest::get(format!("{base}/v1/images/search?id=zz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["id"], "zz");
    assert!(v[0]["width"].as_u64().unwrap() > 0);
    assert_eq!(v[0]["breeds"], serde_json::json!([]));
}

#[test]
fn reset_restores_our_defaults() {
    dfasync()
        .args([
            "-q",
            "--format",
            "csv",
            "-c",
            "SET http.timeout_ms = 5",
            "SET async_udf.max_in_flight = 3",
            "RESET http.timeout_ms",
            "RESET async_udf.max_in_flight",
            "SELECT name, value FROM information_schema.df_settings WHERE name IN ('http.timeout_ms', 'async_udf.max_in_flight') ORDER BY name",
        ])
        .assert()
        .success()
        .stdout(contains("async_udf.max_in_flight,64\nhttp.timeout_ms,30000\n"));
}

/// datafusion-cli's memory flags: a query whose answers cannot fit in the pool
/// fails with the pool's error naming the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_bounds_the_async_operator() {
    let api = common::mock(0).await;
    let sql = format!(
        "SELECT length(http_get('{}')['body']) FROM generate_series(1, 2)",
        api.url("/bytes/200000")
    );
    blocking(move || {
        dfasync()
            .args([
                "-q",
                "-m",
                "100k",
                "--mem-pool-type",
                "fair",
                "--top-memory-consumers",
                "2",
                "-c",
                &sql,
            ])
            .assert()
            .failure()
            .stdout(contains("Resources exhausted").and(contains("AsyncPipelineExec[0]")));
        dfasync()
            .args([
                "-q",
                "-m",
                "64m",
                "-d",
                "1g",
                "--object-store-profiling",
                "summary",
                "--format",
                "csv",
                "-c",
                &sql,
            ])
            .assert()
            .success()
            .stdout(contains("200000"));
    })
    .await;
}
