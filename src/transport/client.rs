//! The session's HTTP clients: connection pools (rustls).

use std::time::Duration;

use parking_lot::Mutex;

/// One per session: the reqwest clients (connection pooling, rustls) shared by
/// every query of the session.
///
/// The connect timeout is a property of the reqwest client: there is one client
/// (and pool) per `http.connect_timeout_ms` in use, so queries with different
/// values each keep theirs (at most [`MAX_CLIENTS`], the oldest dropped first).
#[derive(Debug)]
pub(crate) struct HttpClient {
    clients: Mutex<Vec<(Option<Duration>, reqwest::Client)>>,
}

/// Distinct connect timeouts kept at once.
const MAX_CLIENTS: usize = 8;

fn build(connect_timeout: Option<Duration>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("datafusion-async-udf/", env!("CARGO_PKG_VERSION")))
        .tcp_nodelay(true)
        // redirects are followed by hand, to check every hop's host
        .redirect(reqwest::redirect::Policy::none());
    if let Some(t) = connect_timeout {
        builder = builder.connect_timeout(t);
    }
    builder.build().unwrap_or_default()
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    pub(crate) fn new() -> Self {
        Self {
            clients: Mutex::new(Vec::new()),
        }
    }

    /// The client for `connect_timeout` (cheap: a reqwest client is a handle).
    pub(crate) fn client(&self, connect_timeout: Option<Duration>) -> reqwest::Client {
        let mut clients = self.clients.lock();
        if let Some((_, c)) = clients.iter().find(|(t, _)| *t == connect_timeout) {
            return c.clone();
        }
        if clients.len() >= MAX_CLIENTS {
            clients.remove(0);
        }
        let client = build(connect_timeout);
        clients.push((connect_timeout, client.clone()));
        client
    }
}
