//! Ctrl-C (SIGINT) sent to the `dfasync` process: every call in flight stops and no
//! further request reaches the server. In the REPL the query is cancelled and the
//! session goes on; with `-c` the process ends.

use crate::common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use datafusion_async_udf::mock::{MockApi, MockStats};

const BUDGET: u64 = 8;

fn dfasync() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("dfasync"))
}

fn interrupt(child: &Child) {
    let pid = i32::try_from(child.id()).expect("pid fits");
    // SAFETY: sends a signal to our own child process; no memory is touched.
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(rc, 0, "kill(SIGINT)");
}

/// Waits (polling, up to `within`) until `f` holds for the mock's counters.
async fn until(api: &MockApi, within: Duration, what: &str, f: impl Fn(&MockStats) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        let stats = api.stats();
        if f(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits up to `within` for the process to end; kills it and fails otherwise.
async fn exited(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dfasync did not end within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// 100 calls that each take a minute: only Ctrl-C ends them in time.
fn slow_query(api: &MockApi) -> String {
    format!(
        "SELECT count(http_get('{}?latency_ms=60000&id=' || value)['status']) AS n \
         FROM generate_series(1, 100)",
        api.url("/v1/images/search")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_the_repl_cancels_the_query_and_the_session_goes_on() {
    let api = common::mock(0).await;
    // the REPL writes its history (.history) into the working directory
    let dir = tempfile::tempdir().unwrap();
    let mut child = dfasync()
        .arg("-q")
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "SET async_udf.max_in_flight = {BUDGET};").unwrap();
    writeln!(stdin, "{};", slow_query(&api)).unwrap();
    stdin.flush().unwrap();
    let busy = |s: &MockStats| s.in_flight == BUDGET;
    until(&api, Duration::from_secs(30), "calls in flight", busy).await;

    interrupt(&child);
    let idle = |s: &MockStats| s.in_flight == 0;
    until(
        &api,
        Duration::from_secs(5),
        "connections closed after ^C",
        idle,
    )
    .await;
    assert_eq!(api.stats().requests, BUDGET, "no call admitted after ^C");

    // the session is still there
    writeln!(stdin, "SELECT 40 + 2 AS answer;").unwrap();
    writeln!(stdin, "\\q").unwrap();
    drop(stdin);
    let status = exited(&mut child, Duration::from_secs(30)).await;
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{status:?}\n{out}");
    assert!(out.contains("^C"), "{out}");
    assert!(out.contains("42"), "{out}");
    assert_eq!(api.stats().requests, BUDGET, "nothing more was called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_a_command_and_its_calls() {
    let api = common::mock(0).await;
    let mut child = dfasync()
        .args([
            "-q",
            "-c",
            &format!("SET async_udf.max_in_flight = {BUDGET}"),
        ])
        .args(["-c", &slow_query(&api)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let busy = |s: &MockStats| s.in_flight == BUDGET;
    until(&api, Duration::from_secs(30), "calls in flight", busy).await;

    interrupt(&child);
    let status = exited(&mut child, Duration::from_secs(5)).await;
    assert!(!status.success(), "interrupted, not finished: {status:?}");
    let idle = |s: &MockStats| s.in_flight == 0;
    until(&api, Duration::from_secs(5), "connections closed", idle).await;
    assert_eq!(api.stats().requests, BUDGET);
    assert_eq!(api.stats().completed, 0);
}
