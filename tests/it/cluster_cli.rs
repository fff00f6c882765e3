//! A real cluster from `dfasync`: a scheduler and two executors as processes on
//! 127.0.0.1, and the shell as their client (`--host`/`--port`) running the
//! seed job: every id requested once.

use crate::common;
use crate::procs::{Process, Redis, free_port, listening, only_in_flight_sent_twice, start};

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const N: usize = 1000;

/// A scheduler and two executors (two tasks each), as processes.
struct Cluster {
    scheduler: u16,
    executors: Vec<Process>,
    _scheduler: Process,
}

impl Cluster {
    async fn start() -> Self {
        let scheduler = free_port();
        let process = start(&[
            "scheduler".into(),
            "--bind-host".into(),
            "127.0.0.1".into(),
            "--bind-port".into(),
            scheduler.to_string(),
        ]);
        listening(scheduler).await;
        let mut executors = Vec::new();
        for _ in 0..2 {
            let (port, grpc) = (free_port(), free_port());
            executors.push(start(&[
                "executor".into(),
                "--bind-port".into(),
                port.to_string(),
                "--bind-grpc-port".into(),
                grpc.to_string(),
                "--scheduler-host".into(),
                "127.0.0.1".into(),
                "--scheduler-port".into(),
                scheduler.to_string(),
                "--concurrent-tasks".into(),
                "2".into(),
            ]));
            listening(port).await;
        }
        Self {
            scheduler,
            executors,
            _scheduler: process,
        }
    }

    /// The shell as the cluster's client, running `sql`.
    fn client(&self, sql: &str) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("dfasync"));
        cmd.args(["-q", "--format", "csv", "--host", "127.0.0.1", "--port"])
            .arg(self.scheduler.to_string())
            .arg("-c")
            .arg(sql)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

/// `n` ids in `files` CSV files (as many partitions) under `dir`.
fn ids(dir: &std::path::Path, n: usize, files: usize) {
    for f in 0..files {
        let mut csv = String::from("id\n");
        for i in 0..n / files {
            writeln!(csv, "{}", f * (n / files) + i + 1).unwrap();
        }
        std::fs::write(dir.join(format!("part-{f}.csv")), csv).unwrap();
    }
}

/// What `child` printed once it ended (killed, and the test failed, if it
/// runs past three minutes).
async fn ended(mut child: std::process::Child) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("the job runs past three minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_job_through_the_shell_on_two_executors() {
    let api = common::mock(20).await;
    let dir = tempfile::tempdir().unwrap();
    // the ids in four files: four partitions over the two executors
    ids(dir.path(), N, 4);
    let cluster = Cluster::start().await;
    let sql = format!(
        "CREATE EXTERNAL TABLE ids (id BIGINT) STORED AS CSV LOCATION '{}/' OPTIONS ('format.has_header' 'true'); \
         SET async_udf.max_in_flight = 100; \
         SELECT count(*) AS ok FROM (SELECT http_get('{}?id=' || id) AS r FROM ids) WHERE r['status'] = 200;",
        dir.path().display(),
        api.url("/v1/images/search")
    );
    let out = ended(cluster.client(&sql).spawn().unwrap()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("ok\n{N}\n")), "{stdout}");
    let by_id = api.requests_by_id();
    assert_eq!(by_id.len(), N, "every id requested");
    assert!(by_id.values().all(|&n| n == 1), "an id requested twice");
    assert!(
        api.stats().peak_in_flight <= 200,
        "at most 2 × 100 in flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_executor_s_tasks_rerun_sending_nothing_already_answered() {
    const POSTS: usize = 3000;
    const BUDGET: usize = 50;
    let api = common::mock(200).await;
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    // six partitions for four task slots: both executors busy, tasks queued
    ids(dir.path(), POSTS, 6);
    let mut cluster = Cluster::start().await;
    let sql = format!(
        "CREATE EXTERNAL TABLE ids (id BIGINT) STORED AS CSV LOCATION '{}/' OPTIONS ('format.has_header' 'true'); \
         SET async_udf.journal = '{}'; \
         SET async_udf.max_in_flight = {BUDGET}; \
         SELECT count(*) FILTER (WHERE r['status'] = 200) AS ok \
         FROM (SELECT http_post('{}?id=' || id, '{{\"id\": ' || id || '}}') AS r FROM ids);",
        dir.path().display(),
        redis.url(),
        api.url("/echo")
    );
    let mut client = cluster.client(&sql).spawn().unwrap();
    let started = Instant::now();
    while api.stats().requests < (POSTS / 3) as u64 {
        assert!(
            client.try_wait().unwrap().is_none(),
            "the job ended before the kill"
        );
        assert!(started.elapsed().as_secs() < 120, "the job does not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.executors[0].kill();
    let at_kill = api.stats().requests;
    let out = ended(client).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("ok\n{POSTS}\n")), "{stdout}");
    assert!(at_kill < POSTS as u64, "killed mid-job: {at_kill}");
    // the lost executor's calls in flight, at most its budget, went twice, keyed
    let sent = only_in_flight_sent_twice(&api, POSTS, BUDGET);
    // and its tasks ran again: what they had answered came from the journal
    // (counted by the surviving executor's journal writer: read until seen)
    let replayed = || {
        let out = Command::new(assert_cmd::cargo::cargo_bin("dfasync"))
            .args(["-q", "--format", "csv", "--journal", &redis.url(), "-c"])
            .arg("SELECT sum(replayed) AS replayed FROM async_journal()")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .nth(1)
            .and_then(|l| l.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let started = Instant::now();
    let mut seen = replayed();
    while seen == 0 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = replayed();
    }
    eprintln!(
        "killed at {at_kill} requests; {} sent twice; {seen} replayed",
        sent - POSTS as u64
    );
    assert!(seen > 0, "the lost executor's tasks replayed nothing");
}
