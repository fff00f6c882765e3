//! A real cluster from `dfasync`: a scheduler and two executors as processes on
//! 127.0.0.1, and the shell as their client (`--host`/`--port`) running the
//! seed job: every id requested once.

use crate::common;

use std::fmt::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const N: usize = 1000;

/// A port free right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the process when the test ends, passed or not.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[String]) -> Process {
    Process(
        Command::new(assert_cmd::cargo::cargo_bin("dfasync"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dfasync starts"),
    )
}

/// Waits until something listens on `port`.
async fn listening(port: u16) {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_job_through_the_shell_on_two_executors() {
    let api = common::mock(20).await;
    let dir = tempfile::tempdir().unwrap();
    // the ids in four files: four partitions over the two executors
    for f in 0..4 {
        let mut csv = String::from("id\n");
        for i in 0..N / 4 {
            writeln!(csv, "{}", f * (N / 4) + i + 1).unwrap();
        }
        std::fs::write(dir.path().join(format!("part-{f}.csv")), csv).unwrap();
    }
    let scheduler = free_port();
    let _scheduler = start(&[
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
    let sql = format!(
        "CREATE EXTERNAL TABLE ids (id BIGINT) STORED AS CSV LOCATION '{}/' OPTIONS ('format.has_header' 'true'); \
         SET async_udf.max_in_flight = 100; \
         SELECT count(*) AS ok FROM (SELECT http_get('{}?id=' || id) AS r FROM ids) WHERE r['status'] = 200;",
        dir.path().display(),
        api.url("/v1/images/search")
    );
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("dfasync")
            .unwrap()
            .args(["-q", "--format", "csv", "--host", "127.0.0.1", "--port"])
            .arg(scheduler.to_string())
            .arg("-c")
            .arg(sql)
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
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
