//! Durable calls across processes: a `dfasync` child killed with SIGKILL in
//! the middle of a POST job, then rerun (an embedded journal and a real
//! `redis-server`); two processes on one journal file; the faults a journal
//! meets mid-job (its Redis going away, a file that can no longer grow).
//! Counted at the mock, per id, with the `Idempotency-Key` of every request.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use datafusion_async_udf::mock::MockApi;

use crate::common::mock;
use crate::procs::{Redis, only_in_flight_sent_twice};

const N: usize = 20_000;

fn dfasync() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("dfasync"))
}

/// `n` POSTs of distinct records, printed as CSV `ok,replayed`.
fn job(api: &MockApi, journal: &str, n: usize, budget: usize) -> Command {
    let mut cmd = dfasync();
    cmd.args(["-q", "--format", "csv", "--journal", journal])
        .arg("-c")
        .arg(format!("SET async_udf.max_in_flight = {budget}"))
        .arg("-c")
        .arg(format!(
            "SELECT count(*) FILTER (WHERE r['status'] = 200) AS ok, count(*) FILTER (WHERE r['attempts'] = 0) AS replayed \
             FROM (SELECT http_post('{}?id=' || value, '{{\"id\": ' || value || '}}') AS r FROM generate_series(1, {n}))",
            api.url("/echo")
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn finish(cmd: Command) -> Output {
    let mut cmd = cmd;
    tokio::task::spawn_blocking(move || cmd.output().expect("dfasync runs"))
        .await
        .unwrap()
}

/// The `ok,replayed` a finished job printed.
fn counts(out: &Output) -> (usize, usize) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.split(',').count() == 2 && l.split(',').all(|v| v.parse::<usize>().is_ok()))
        .unwrap_or_else(|| panic!("no counts in {text}"));
    let mut v = line.split(',').map(|v| v.parse().unwrap());
    (v.next().unwrap(), v.next().unwrap())
}

/// Waits until the mock has seen `n` requests (the child is working).
async fn until_requests(api: &MockApi, n: u64, child: &mut Child) {
    let start = Instant::now();
    while api.stats().requests < n {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the job ended before the kill"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the job does not start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Kills a job with SIGKILL mid-way, reruns it, and checks what the server
/// saw: every id answered, the copies only what was in flight and each with
/// its first key; a third run sends nothing.
async fn kill_and_resume(journal: &str) {
    let api = mock(100).await;
    let budget = 256;
    let mut child = job(&api, journal, N, budget).spawn().unwrap();
    until_requests(&api, 6_000, &mut child).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let at_kill = api.stats().requests as usize;
    assert!(at_kill < N, "killed mid-way: {at_kill}");
    let (ok, replayed) = counts(&finish(job(&api, journal, N, budget)).await);
    assert_eq!(ok, N, "every row answered");
    assert!(
        replayed >= at_kill - budget && replayed <= at_kill,
        "{replayed} replayed of {at_kill} sent"
    );
    let sent = only_in_flight_sent_twice(&api, N, budget);
    let (ok, replayed) = counts(&finish(job(&api, journal, N, budget)).await);
    assert_eq!((ok, replayed), (N, N));
    assert_eq!(
        api.requests_by_id().values().sum::<u64>(),
        sent,
        "the third run sends nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_job_resumes_from_its_journal_file() {
    let dir = tempfile::tempdir().unwrap();
    kill_and_resume(dir.path().join("calls.journal").to_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_job_resumes_from_its_redis_journal() {
    let redis = Redis::start();
    kill_and_resume(&redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_one_journal_file_gets_a_clear_error() {
    let api = mock(200).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let path = path.to_str().unwrap();
    let mut first = job(&api, path, 5_000, 16).spawn().unwrap();
    until_requests(&api, 1, &mut first).await;
    let out = finish(job(&api, path, 10, 16)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "async_udf.journal: cannot use the journal '{path}'"
        )) && text.contains("in use by another process"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_mid_job_fails_the_query_and_keeps_what_was_recorded() {
    let api = mock(50).await;
    let mut redis = Redis::start();
    let url = redis.url();
    let mut child = job(&api, &url, 5_000, 64).spawn().unwrap();
    until_requests(&api, 500, &mut child).await;
    redis.stop();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains(&format!("async_udf.journal {url}")), "{text}");
    assert!(text.contains("Redis"), "{text}");
    // unreachable from the start: an error before anything is sent
    let before = api.stats().requests;
    let out = finish(job(&api, &url, 10, 4)).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("Redis is unreachable"),
        "{text}"
    );
    assert_eq!(api.stats().requests, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_file_that_cannot_grow_fails_the_query_and_loses_nothing() {
    use std::os::unix::process::CommandExt;
    let api = mock(0).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let path = path.to_str().unwrap();
    assert_eq!(counts(&finish(job(&api, path, 10, 64)).await), (10, 0));
    // as a full disk does: writes past the file's size and 256 KiB more fail
    // (EFBIG, SIGXFSZ ignored); 4,000 answers of the echo need megabytes
    let size = std::fs::metadata(path).unwrap().len() + (256 << 10);
    let mut cmd = job(&api, path, 4_000, 64);
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: size,
                rlim_max: size,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &raw const limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = finish(cmd).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "async_udf.journal '{path}': cannot record an answer"
        )),
        "{text}"
    );
    let first: u64 = api.requests_by_id().values().sum();
    // without the limit: what was recorded is replayed, the rest sent
    let (ok, replayed) = counts(&finish(job(&api, path, 4_000, 64)).await);
    assert_eq!(ok, 4_000);
    assert!(replayed > 10, "recorded answers kept: {replayed}");
    let sent: u64 = api.requests_by_id().values().sum();
    assert_eq!(sent - first, (4_000 - replayed) as u64);
}
