//! `dfasync`'s background statements, as a user types them: `\submit`, `\jobs`,
//! `\wait`, `\result`, `\cancel`; Ctrl-C stops a `\wait`, not the job.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion_async_udf::mock::MockApi;

use crate::common::until;

const BUDGET: u64 = 8;

fn calls(api: &MockApi, tag: &str, rows: usize, latency_ms: u64) -> String {
    format!(
        "SELECT count(*) AS {tag}_rows FROM generate_series(1, {rows}) \
         WHERE http_get('{}?latency_ms={latency_ms}&id={tag}-' || value)['status'] = 200",
        api.url("/v1/images/search")
    )
}

/// `dfasync -q --format csv` in `dir`, its stdin, and its stdout as it comes.
fn shell(
    dir: &std::path::Path,
) -> (
    Child,
    ChildStdin,
    Arc<Mutex<String>>,
    std::thread::JoinHandle<()>,
) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("dfasync"))
        .args(["-q", "--format", "csv"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let out = Arc::new(Mutex::new(String::new()));
    let reader = {
        let (out, stdout) = (Arc::clone(&out), child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                let mut out = out.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        })
    };
    (child, stdin, out, reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_jobs_wait_result_cancel() {
    let api = common::mock(0).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut stdin, out, reader) = shell(dir.path());
    let printed = |what: &str| out.lock().unwrap().contains(what);
    let mut say = |line: &str| {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    };
    say(&format!("SET async_udf.max_in_flight = {BUDGET};"));
    say(&format!("\\submit {}", calls(&api, "big", 1_000_000, 200)));
    until(Duration::from_secs(30), "the big job's calls", || {
        api.stats().in_flight == BUDGET
    })
    .await;
    // the shell is free while the job runs: a second one, waited for
    say(&format!("\\submit {}", calls(&api, "small", 20, 0)));
    say("\\wait 2");
    say("\\result 2");
    until(Duration::from_secs(30), "the small job", || {
        api.stats().requests >= 20
    })
    .await;
    // Ctrl-C during a \wait stops the waiting, not the job
    say("\\wait 1");
    until(Duration::from_secs(30), "\\wait 1 to start", || {
        printed("[1] waiting")
    })
    .await;
    let before = api.stats().requests;
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sends a signal to our own child process; no memory is touched.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    until(Duration::from_secs(30), "the big job going on", || {
        api.stats().requests > before + 3 * BUDGET
    })
    .await;
    say("\\jobs");
    say("\\cancel 1");
    until(Duration::from_secs(5), "no call after \\cancel", || {
        api.stats().in_flight == 0
    })
    .await;
    say("\\jobs");
    say("\\wait 7");
    say("\\q");
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "dfasync did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    reader.join().unwrap();
    let out = out.lock().unwrap().clone();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?}\n{out}\n{err}");
    for expected in [
        "[1] submitted",
        "[2] submitted",
        "[2] done",
        "small_rows\n20\n",
        "^C",
        "[1] cancelled",
        // \jobs: job 1 running, later cancelled; job 2 done, 20 calls, 20 rows
        "job,state,calls done,in flight,errors,retries,rows,elapsed,query",
        "\n1,running,",
        "\n1,cancelled,",
        "\n2,done,20,0,0,0,20,",
    ] {
        assert!(out.contains(expected), "{expected:?} in\n{out}\n{err}");
    }
    assert!(err.contains("no job 7"), "{err}");
    let by_id = api.requests_by_id();
    assert!(by_id.iter().all(|(_, n)| *n == 1), "each id called once");
    assert_eq!(
        by_id.keys().filter(|id| id.starts_with("small-")).count(),
        20
    );
}
