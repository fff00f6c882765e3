//! Child processes the cross-process tests start: `dfasync` (a shell, a
//! scheduler, executors) and a real `redis-server`, each on a free port and
//! stopped when the test ends; and what the mock must have seen after a
//! crash and a rerun.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use datafusion_async_udf::mock::MockApi;

/// A port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the process when the test ends, passed or not.
pub struct Process(pub Child);

impl Process {
    /// Kills it now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `dfasync args…`, its output discarded.
pub fn start(args: &[String]) -> Process {
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
pub async fn listening(port: u16) {
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

/// After a crash and a rerun of `n` POSTs to `/echo?id=…`: every id called,
/// at most `in_flight` of them twice (what was in flight at the crash), each
/// copy with its first `Idempotency-Key`, every POST keyed. Returns the
/// requests sent.
pub fn only_in_flight_sent_twice(api: &MockApi, n: usize, in_flight: usize) -> u64 {
    let by_id: HashMap<String, u64> = api.requests_by_id();
    assert_eq!(by_id.len(), n, "every id called");
    let sent: u64 = by_id.values().sum();
    let extra = sent as usize - n;
    assert!(
        extra <= in_flight,
        "{extra} sent twice: more than were in flight at the crash ({in_flight})"
    );
    let keys = api.idempotency_keys_by_id();
    let twice: Vec<_> = by_id.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(twice.len(), extra);
    for (id, n) in twice {
        assert_eq!(*n, 2, "id {id}");
        let ks = &keys[id];
        assert!(ks[0].is_some() && ks[0] == ks[1], "id {id}: keys {ks:?}");
    }
    assert!(
        keys.values().flatten().all(Option::is_some),
        "every POST keyed"
    );
    sent
}

/// A `redis-server` on a free port, stopped when dropped.
pub struct Redis {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; .ci/run installs it)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "redis-server does not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Self {
            child: Some(child),
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
