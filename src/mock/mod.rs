//! The bundled mock API: a loopback HTTP service imitating TheCatAPI.
//!
//! Routes (every route honours `?latency_ms=N`, overriding the configured latency):
//! * `GET /v1/images/search[?id=X&limit=N]` — a JSON array of N (default 1) images
//!   `{"breeds": [], "id", "url", "width", "height"}`, like TheCatAPI;
//!   `id` defaults to a fresh one per request.
//! * `ANY /echo` — `{"version", "method", "path", "query", "headers", "body"}` of the request.
//! * `POST /v1/batch` — a JSON array in, `[{"i": index, "row": element}, …]` out
//!   (for `map_in_batches('post_json', …)`).
//! * `GET /status/{code}` — that status, body `status {code}`.
//! * `GET /bytes/{n}` — a body of `n` bytes; `GET /invalid-utf8` — a body that is
//!   not UTF-8; `GET /redirect/{n}` — `n` redirects, then 200; `GET /redirect-loop`;
//!   `GET /redirect-to?url=U` — a redirect to `U`.
//! * `GET /stats` — the [`MockStats`] counters as JSON.
//! * Servers that limit their clients: `GET /limited/{style}` (fixed or sliding
//!   windows, advertising their quota in one of five header styles, or not at
//!   all) and `GET /queue` (serves a few at a time, the others wait in line).
//! * Real-world answers: compressed (`/compress/{n}`, `/gzip/{n}`, `/deflate/{n}`,
//!   `/brotli/{n}`, `/zstd/{n}`, `/zeros/{n}`), binary (`/image/png`), in another
//!   charset (`/encoding/latin1`), chosen headers (`/response-headers?k=v`).
//! * A forward proxy: a request with an absolute URI (`GET http://any.host/echo`)
//!   is served by the mock itself; those to `/echo` are counted in
//!   [`MockStats::proxied`].
//!
//! [`Faults`] (seeded, deterministic per request id) inject 503s, 429s with
//! `Retry-After`, a per-minute request limit like TheCatAPI's free tier, connection
//! resets and slow answers.
//!
//! [`MockApi::start_tls`] serves the same routes over TLS with a [`TestPki`]'s
//! server certificate (for `localhost` and `127.0.0.1`), optionally requiring
//! a client certificate.
//!
//! It binds 127.0.0.1 only. Tests start it in-process on port 0 with
//! [`MockApi::start`]; `dfasync mock-api --port 8089 --latency-ms 350` runs it
//! from the command line.

mod conns;
mod faults;
mod limits;
mod routes;
mod state;
mod stats;
mod tls;
mod web;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpSocket;
use tokio::sync::oneshot;

pub use faults::Faults;
pub use stats::MockStats;
pub use tls::TestPki;
pub use web::PNG_BYTES;

/// The latency the mock waits for a request with `id`, `median_ms` and `p99_ms`
/// in its query string: log-normal, drawn deterministically from the id.
pub fn lognormal_latency(id: &str, median_ms: f64, p99_ms: f64) -> std::time::Duration {
    state::State::lognormal(id, median_ms, p99_ms)
}

/// How the mock behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct MockConfig {
    /// Delay before every response (unless the request says `latency_ms`).
    pub latency: Duration,
    /// Faults injected into `/v1/images/search`, `/echo` and `/v1/batch`.
    pub faults: Faults,
}

impl MockConfig {
    /// A mock answering after `latency`, without faults.
    pub const fn with_latency(latency: Duration) -> Self {
        Self {
            latency,
            faults: Faults::NONE,
        }
    }

    /// The same with `faults`.
    pub const fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }
}

/// A running mock API; stops when dropped.
#[derive(Debug)]
pub struct MockApi {
    addr: SocketAddr,
    scheme: &'static str,
    state: Arc<state::State>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

impl MockApi {
    /// Starts on 127.0.0.1 with an ephemeral port (for tests).
    pub async fn start(config: MockConfig) -> io::Result<Self> {
        Self::start_on(0, config).await
    }

    /// Starts on 127.0.0.1:`port` (0 = any free port).
    #[allow(clippy::unused_async)] // binding is synchronous today; callers await a start
    pub async fn start_on(port: u16, config: MockConfig) -> io::Result<Self> {
        let listener = bind(port)?;
        let addr = listener.local_addr()?;
        Ok(Self::serve(listener, addr, "http", config))
    }

    /// Starts over TLS on 127.0.0.1 with an ephemeral port, presenting `pki`'s
    /// server certificate; `mutual`: only clients presenting a certificate
    /// signed by `pki`'s CA get an answer. [`Self::base_url`] is then
    /// `https://localhost:PORT`.
    #[allow(clippy::unused_async)] // as start_on
    pub async fn start_tls(config: MockConfig, pki: &TestPki, mutual: bool) -> io::Result<Self> {
        let tcp = bind(0)?;
        let addr = tcp.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(pki.server_config(mutual)?));
        Ok(Self::serve(
            tls::TlsListener { tcp, acceptor },
            addr,
            "https",
            config,
        ))
    }

    fn serve<L>(listener: L, addr: SocketAddr, scheme: &'static str, config: MockConfig) -> Self
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let state = Arc::new(state::State::new(config));
        let app = routes::router(Arc::clone(&state));
        let listener = conns::Counting {
            inner: listener,
            state: Arc::clone(&state),
        };
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Self {
            addr,
            scheme,
            state,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` over TLS.
    pub fn base_url(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", self.addr.port()),
            _ => format!("http://{}", self.addr),
        }
    }

    /// [`Self::base_url`] followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The counters now.
    pub fn stats(&self) -> MockStats {
        self.state.stats()
    }

    /// Zeroes the counters (and forgets the fault history).
    pub fn reset_stats(&self) {
        self.state.counters.reset();
        self.state.faults.reset();
        self.state.limits.reset();
        self.state.per_id.lock().clear();
        self.state.keys_per_id.lock().clear();
    }

    /// The `Idempotency-Key` header of every request to `/echo` (per id) and
    /// to `/v1/batch` (per body, as `batch:<body>`), in arrival order
    /// (`None`: it had none).
    pub fn idempotency_keys_by_id(&self) -> std::collections::HashMap<String, Vec<Option<String>>> {
        self.state.keys_per_id.lock().clone()
    }

    /// Requests received so far per id (the `id` query parameter of the
    /// fault-injecting routes, or the `{id}` of `/flaky/{id}`).
    pub fn requests_by_id(&self) -> std::collections::HashMap<String, u64> {
        self.state.per_id.lock().clone()
    }

    /// Serves until the process is interrupted (Ctrl-C).
    pub async fn run_until_ctrl_c(mut self) -> io::Result<()> {
        tokio::signal::ctrl_c().await?;
        self.stop().await
    }

    /// Stops accepting and waits for the server task.
    pub async fn stop(&mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

/// A listening socket on 127.0.0.1:`port`, with a deep backlog: benchmarks
/// open a thousand connections at once.
fn bind(port: u16) -> io::Result<tokio::net::TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(4096)
}

impl Drop for MockApi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
