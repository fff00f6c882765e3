//! The session's HTTP client: connection pool, rate limits, retries.

use std::time::{Duration, Instant};

use super::attempt::attempt;
use super::policy::{Settings, may_retry};
use super::request::{Outcome, Request};
use crate::engine::{GaveUp, RateLimits, Verdict, retry};

/// One per session: a reqwest client (connection pooling, rustls) and the
/// per-host rate limits shared by every query of the session.
#[derive(Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    rate: RateLimits,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("datafusion-async-udf/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            // redirects are followed by hand, to check every hop's host
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            client,
            rate: RateLimits::default(),
        }
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
        let (request, host) = (&request, host.as_str());
        let done = retry(
            policy,
            |_, left| async move {
                self.rate.acquire(host, settings.requests_per_second).await;
                let tried = attempt(&self.client, request, settings, left).await;
                if tried.outcome.status == Some(429) {
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
