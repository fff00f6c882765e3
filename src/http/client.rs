//! The session's HTTP client: connection pool, rate limits, retries.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::attempt::attempt;
use super::policy::{Settings, may_retry};
use super::request::{Outcome, Request};
use crate::engine::{GaveUp, RateLimits, Verdict, metrics, retry};

/// One per session: a reqwest client (connection pooling, rustls) and the
/// per-host rate limits shared by every query of the session.
///
/// The connect timeout is a property of the reqwest client: there is one client
/// (and pool) per `http.connect_timeout_ms` in use, so queries with different
/// values each keep theirs (at most [`MAX_CLIENTS`], the oldest dropped first).
#[derive(Debug)]
pub struct HttpClient {
    clients: Mutex<Vec<(Option<Duration>, reqwest::Client)>>,
    rate: RateLimits,
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
    pub fn new() -> Self {
        Self {
            clients: Mutex::new(Vec::new()),
            rate: RateLimits::default(),
        }
    }

    /// The client for `connect_timeout` (cheap: a reqwest client is a handle).
    fn client(&self, connect_timeout: Option<Duration>) -> reqwest::Client {
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

    /// Sends `request` with retries (transient failures, never a POST unless
    /// `http.retry_post`), the per-host rate limit and a pause of the host after a
    /// 429. Never panics; every failure is described in the outcome.
    pub async fn send(&self, request: Request, settings: &Settings) -> Outcome {
        let start = Instant::now();
        let host = request.url.host_str().unwrap_or_default().to_string();
        let policy = if may_retry(&request.method, settings.retry_post) {
            settings.retry
        } else {
            settings.retry.with_max_retries(0)
        };
        let client = &self.client(settings.connect_timeout);
        let (request, host) = (&request, host.as_str());
        let done = retry(
            policy,
            |_, left| async move {
                let waiting = Instant::now();
                self.rate.acquire(host, settings.requests_per_second).await;
                metrics::rate_waited(waiting.elapsed());
                let tried = attempt(client, request, settings, left).await;
                if tried.outcome.status == Some(429) {
                    metrics::throttled();
                    let pause = tried.retry_after.unwrap_or(Duration::from_secs(1));
                    self.rate.pause(host, pause.min(settings.retry.max));
                }
                tried
            },
            |tried| {
                if tried.transient {
                    Verdict::Retry {
                        after: tried.retry_after,
                    }
                } else {
                    Verdict::Done
                }
            },
        )
        .await;
        metrics::retried(done.attempts.saturating_sub(1) as usize);
        let mut outcome = done.result.outcome;
        outcome.attempts = done.attempts;
        outcome.elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let (Some(error), Some(why)) = (outcome.error.as_mut(), done.gave_up) {
            let why = match why {
                GaveUp::Retries if done.attempts > 1 => {
                    format!(" (gave up after {} attempts)", done.attempts)
                }
                GaveUp::Retries => String::new(),
                GaveUp::Deadline => format!(
                    " (gave up after {} attempts: http.total_timeout_ms reached)",
                    done.attempts
                ),
            };
            error.push_str(&why);
        }
        outcome
    }
}
