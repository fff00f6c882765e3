//! One row's request, start to outcome: the transport's attempts, with the
//! engine's retries (full jitter, `Retry-After` honoured) and per-host rate
//! limits, and the settings that drive them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::common::Result;
use parking_lot::Mutex;
use reqwest::Url;

use crate::config::{AsyncUdfConfig, HttpConfig};
use crate::engine::{
    Adaptive, AdaptiveKey, GaveUp, KeySlot, RateLimits, RetryPolicy, Rules, Signal, Verdict,
    metrics, retry,
};
use crate::runtime::AsyncRuntime;
use crate::transport::{
    AllowedHosts, ClientOptions, ErrorKind, Outcome, Request, SecretHeaders, Settings, attempt,
    may_retry,
};

/// The settings of one invocation (`http.*`, with `async_udf.*` for the retry
/// keys `http.*` leaves unset).
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// What each attempt may do.
    pub transport: Settings,
    pub retry: RetryPolicy,
    pub retry_non_idempotent: bool,
    pub requests_per_second: f64,
    /// Adaptive per-host limits, up to `ceiling` calls in flight per host, by
    /// the rules on.
    pub adaptive: bool,
    pub ceiling: usize,
    pub rules: Rules,
}

fn millis(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

impl Policy {
    pub(crate) fn new(c: &HttpConfig, engine: &AsyncUdfConfig) -> Self {
        Self {
            transport: Settings {
                timeout: millis(c.timeout_ms),
                max_body_bytes: c.max_body_bytes,
                allowed_hosts: AllowedHosts::parse(&c.allowed_hosts),
                max_redirects: c.max_redirects,
                client: ClientOptions {
                    connect_timeout: millis(c.connect_timeout_ms),
                    compression: c.compression,
                    proxy: c.proxy.clone(),
                    ca_file: c.ca_file.clone(),
                    client_cert: c.client_cert.clone(),
                    client_key: c.client_key.clone(),
                    tls_insecure: c.tls_insecure,
                    user_agent: c.user_agent.clone(),
                },
                secret_headers: SecretHeaders::new(&c.secret_headers),
            },
            retry: c
                .retry_policy(engine)
                .with_deadline(millis(c.total_timeout_ms)),
            retry_non_idempotent: c.retry_non_idempotent || c.retry_post,
            requests_per_second: c.requests_per_second,
            adaptive: c.adaptive,
            ceiling: engine.max_in_flight.get(),
            rules: Rules {
                advertised: c.rate_limit_headers,
                learn_rate: c.learn_rate,
                latency: c.latency_limit,
            },
        }
    }
}

/// The session's pieces a request uses: the HTTP client for the invocation's
/// settings and the session's rate limits.
#[derive(Debug)]
pub(crate) struct Session<'a> {
    pub client: reqwest::Client,
    pub rate: &'a RateLimits,
    pub adaptive: &'a Adaptive,
    /// The last service's adaptive limits (host, port, the limits of
    /// `host:port`): rows going to the same service as the row before reuse
    /// them, without a look-up.
    last_service: Mutex<Option<(String, u16, Arc<AdaptiveKey>)>>,
}

impl<'a> Session<'a> {
    /// The pieces of `runtime` for `policy`, or a query error when the client
    /// settings cannot make a client (a file that cannot be read, a bad proxy).
    pub(crate) fn new(runtime: &'a AsyncRuntime, policy: &Policy) -> Result<Self> {
        let client = runtime
            .http()
            .client(&policy.transport.client)
            .map_err(datafusion::common::DataFusionError::Execution)?;
        Ok(Self {
            client,
            rate: runtime.rate(),
            adaptive: runtime.adaptive(),
            last_service: Mutex::new(None),
        })
    }

    /// The adaptive limits of `url`'s service (key `host:port`; `ceiling`: the
    /// most calls it may ever have in flight).
    fn service(&self, url: &Url, ceiling: usize) -> Arc<AdaptiveKey> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or_default();
        let mut last = self.last_service.lock();
        match last.as_ref() {
            Some((h, p, key)) if h == host && *p == port => Arc::clone(key),
            _ => {
                let key = self.adaptive.entry(&format!("{host}:{port}"), ceiling);
                *last = Some((host.to_string(), port, Arc::clone(&key)));
                key
            }
        }
    }
}

/// What an answer says about the host's load.
fn signal(outcome: &Outcome) -> Signal {
    match (outcome.status, outcome.kind) {
        (Some(429), _) => Signal::Throttled,
        (Some(502..=504), _) | (None, ErrorKind::Connect | ErrorKind::Timeout) => {
            Signal::Overloaded
        }
        _ => Signal::Clean,
    }
}

/// Sends `request` with retries (transient failures; a method that is not
/// idempotent only with `http.retry_non_idempotent`), the per-host rate limit,
/// and the host's adaptive limits (without them, a pause of the host when most
/// of its recent answers were 429). Never panics; every failure is described
/// in the outcome.
///
/// Takes the request by value: boxed, the exchange and its request are one
/// allocation, and the caller's own future holds only the box.
pub(crate) async fn send(session: &Session<'_>, request: Request, policy: &Policy) -> Box<Outcome> {
    let request = &request;
    let start = Instant::now();
    let host = request.url.host_str().unwrap_or_default();
    let retries = if may_retry(&request.method, policy.retry_non_idempotent) {
        policy.retry
    } else {
        policy.retry.with_max_retries(0)
    };
    let settings = &policy.transport;
    let client = &session.client;
    // the adaptive limits are per service: host and port
    let service = policy
        .adaptive
        .then(|| session.service(&request.url, policy.ceiling));
    let service = service.as_ref();
    let done = retry(
        retries,
        // not boxed: the row's exchange is one box, the attempt's future in it
        |_, left| {
            async move {
                let slot = match service {
                    Some(key) => Some(key.acquire(policy.ceiling).await),
                    None => None,
                };
                // what the limits made it wait (no clock read when nothing did)
                let waited = if session.rate.open(policy.requests_per_second) {
                    Duration::ZERO
                } else {
                    // boxed: rare, and kept out of every attempt's future
                    Box::pin(session.rate.acquire(host, policy.requests_per_second)).await
                };
                metrics::rate_waited(
                    waited + slot.as_ref().map_or(Duration::ZERO, KeySlot::waited),
                );
                let tried = attempt(client, request, settings, left).await;
                let throttled = tried.outcome.status == Some(429);
                if throttled {
                    metrics::throttled();
                }
                if let Some(slot) = slot {
                    // the host's pace follows its advertised quotas, else its
                    // 429s (and waits their Retry-After)
                    let signal = signal(&tried.outcome);
                    slot.answered_after(signal, tried.retry_after, &tried.advertised, policy.rules);
                } else {
                    // this request waits what the service asked (its retry's
                    // delay); the whole host only when the service keeps asking
                    let wait = tried.retry_after.unwrap_or(Duration::from_secs(1));
                    session
                        .rate
                        .answered(host, throttled, wait.min(policy.retry.max));
                }
                tried
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_to_one_service_share_its_key_and_others_get_theirs() {
        let runtime = AsyncRuntime::new();
        let policy = Policy::new(&HttpConfig::default(), &AsyncUdfConfig::default());
        let session = Session::new(&runtime, &policy).unwrap();
        let key = |url: &str| session.service(&Url::parse(url).unwrap(), 64);
        let named = |name: &str| runtime.adaptive().entry(name, 64);
        let first = key("http://a:1/x");
        assert!(Arc::ptr_eq(&first, &named("a:1")));
        assert!(Arc::ptr_eq(&first, &key("http://a:1/y?id=2")), "reused");
        assert!(Arc::ptr_eq(&key("http://a:2/x"), &named("a:2")));
        assert!(Arc::ptr_eq(&key("https://a/x"), &named("a:443")));
        assert!(Arc::ptr_eq(&key("http://b/x"), &named("b:80")));
        assert!(!Arc::ptr_eq(&key("http://a:1/x"), &named("a:2")));
        assert!(Arc::ptr_eq(&key("http://a:1/x"), &named("a:1")));
    }
}
