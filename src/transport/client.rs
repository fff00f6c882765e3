//! The session's HTTP clients: connection pools (rustls), one per set of
//! [`ClientOptions`] in use.

use std::time::Duration;

use parking_lot::Mutex;
use reqwest::{Certificate, Identity, NoProxy, Proxy};

use super::request::redact;

/// What a reqwest client is built with (the `http.*` settings that are
/// properties of a connection pool, not of a request).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientOptions {
    /// TCP + TLS set-up; `None` = no limit.
    pub connect_timeout: Option<Duration>,
    /// Send `Accept-Encoding` and decode gzip, deflate, brotli and zstd bodies.
    pub compression: bool,
    /// Proxy URL for every request; empty = `HTTP_PROXY` / `HTTPS_PROXY` /
    /// `ALL_PROXY` from the environment. `NO_PROXY` is honoured either way.
    pub proxy: String,
    /// PEM file of CA certificates trusted besides the built-in roots.
    pub ca_file: String,
    /// PEM files of the client certificate (chain) and its private key (mTLS).
    pub client_cert: String,
    pub client_key: String,
    /// Accept any server certificate (development only).
    pub tls_insecure: bool,
    /// `User-Agent`; empty = `datafusion-async-udf/VERSION`.
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: None,
            compression: true,
            proxy: String::new(),
            ca_file: String::new(),
            client_cert: String::new(),
            client_key: String::new(),
            tls_insecure: false,
            user_agent: String::new(),
        }
    }
}

/// One per session: the reqwest clients (connection pooling, rustls) shared by
/// every query of the session.
///
/// Connect timeout, compression, proxy, TLS options and user agent are
/// properties of a reqwest client: there is one client (and pool) per set of
/// them in use, so queries with different values each keep theirs (at most
/// [`MAX_CLIENTS`], the oldest dropped first).
#[derive(Debug, Default)]
pub(crate) struct HttpClient {
    clients: Mutex<Vec<(ClientOptions, reqwest::Client)>>,
}

/// Distinct option sets kept at once.
const MAX_CLIENTS: usize = 8;

fn read(setting: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{setting}: cannot read '{path}': {e}"))
}

fn build(o: &ClientOptions) -> Result<reqwest::Client, String> {
    let user_agent = if o.user_agent.is_empty() {
        concat!("datafusion-async-udf/", env!("CARGO_PKG_VERSION"))
    } else {
        o.user_agent.as_str()
    };
    let mut builder = reqwest::Client::builder()
        .user_agent(user_agent)
        .tcp_nodelay(true)
        // redirects are followed by hand, to check every hop's host
        .redirect(reqwest::redirect::Policy::none())
        .gzip(o.compression)
        .deflate(o.compression)
        .brotli(o.compression)
        .zstd(o.compression);
    if let Some(t) = o.connect_timeout {
        builder = builder.connect_timeout(t);
    }
    if !o.proxy.is_empty() {
        let proxy = Proxy::all(o.proxy.as_str())
            .map_err(|e| format!("http.proxy '{}': {e}", redact(&o.proxy)))?
            .no_proxy(NoProxy::from_env());
        builder = builder.proxy(proxy);
    }
    if !o.ca_file.is_empty() {
        let pem = read("http.ca_file", &o.ca_file)?;
        let certs = Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("http.ca_file '{}': {e}", o.ca_file))?;
        if certs.is_empty() {
            return Err(format!("http.ca_file '{}': no PEM certificate", o.ca_file));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    match (o.client_cert.is_empty(), o.client_key.is_empty()) {
        (true, true) => {}
        (false, false) => {
            let mut pem = read("http.client_cert", &o.client_cert)?;
            pem.push(b'\n');
            pem.extend(read("http.client_key", &o.client_key)?);
            let identity = Identity::from_pem(&pem).map_err(|e| {
                format!("http.client_cert / http.client_key: not a PEM certificate and key: {e}")
            })?;
            builder = builder.identity(identity);
        }
        _ => return Err("http.client_cert and http.client_key must be set together".into()),
    }
    if o.tls_insecure {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

impl HttpClient {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The client for `options` (cheap: a reqwest client is a handle), or why
    /// the options cannot make one (a file that cannot be read, a bad proxy URL).
    pub(crate) fn client(&self, options: &ClientOptions) -> Result<reqwest::Client, String> {
        let mut clients = self.clients.lock();
        if let Some((_, c)) = clients.iter().find(|(o, _)| o == options) {
            return Ok(c.clone());
        }
        let client = build(options)?;
        if clients.len() >= MAX_CLIENTS {
            clients.remove(0);
        }
        clients.push((options.clone(), client.clone()));
        Ok(client)
    }
}
