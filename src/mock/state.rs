//! The mock API's shared state: its settings, request counters and faults, and
//! how a fault-injecting route answers.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::MockConfig;
use super::faults::{Fault, FaultState};
use super::stats::{Counters, MockStats};

pub(crate) struct State {
    pub(super) config: MockConfig,
    pub(crate) counters: Counters,
    pub(crate) faults: FaultState,
    pub(crate) limits: super::limits::Limits,
    pub(super) next_id: AtomicU64,
    /// Requests received per id (the `id` query parameter or the route's key).
    pub(crate) per_id: parking_lot::Mutex<HashMap<String, u64>>,
    /// The `Idempotency-Key` each request to `/echo` (per id) and `/v1/batch`
    /// (per body) carried.
    pub(crate) keys_per_id: parking_lot::Mutex<HashMap<String, Vec<Option<String>>>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("config", &self.config)
            .finish()
    }
}

impl State {
    pub(crate) fn new(config: MockConfig) -> Self {
        Self {
            config,
            counters: Counters::default(),
            faults: FaultState::default(),
            limits: super::limits::Limits::default(),
            next_id: AtomicU64::new(0),
            per_id: parking_lot::Mutex::default(),
            keys_per_id: parking_lot::Mutex::default(),
        }
    }

    pub(crate) fn stats(&self) -> MockStats {
        let (successes, distinct_successes) = self.faults.successes();
        MockStats {
            successes,
            distinct_successes,
            ..self.counters.snapshot()
        }
    }

    /// Waits the configured latency, or `latency_ms` from the query string, or a
    /// heavy-tailed latency drawn for the request's `id` (see [`lognormal`]).
    pub(super) async fn delay(&self, query: &HashMap<String, String>) {
        let param = |k: &str| query.get(k).and_then(|v| v.parse::<f64>().ok());
        let latency = match (param("median_ms"), param("p99_ms")) {
            (Some(median), Some(p99)) => {
                let id = query.get("id").map(String::as_str).unwrap_or_default();
                Self::lognormal(id, median, p99)
            }
            _ => param("latency_ms")
                .map_or(self.config.latency, |ms| Duration::from_millis(ms as u64)),
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    /// A latency from the log-normal distribution with the given median and 99th
    /// percentile, drawn deterministically from `id` (the same id, the same latency),
    /// capped at 60 s.
    pub(crate) fn lognormal(id: &str, median_ms: f64, p99_ms: f64) -> Duration {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        let mut rng = fastrand::Rng::with_seed(h.finish());
        // Box-Muller; z(0.99) = 2.326
        let (u1, u2) = (rng.f64().max(f64::MIN_POSITIVE), rng.f64());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let sigma = (p99_ms.max(median_ms) / median_ms.max(0.001)).ln() / 2.326;
        let ms = (median_ms * (sigma * z).exp()).min(60_000.0);
        Duration::from_micros((ms * 1000.0) as u64)
    }

    /// Counts a request for `id`; returns how many arrived for it so far.
    pub(crate) fn count_id(&self, id: &str) -> u64 {
        let mut per_id = self.per_id.lock();
        let n = per_id.entry(id.to_string()).or_default();
        *n += 1;
        *n
    }

    /// Answers one request of a fault-injecting route: counts it, waits, injects
    /// the fault decided for `key`, or answers with `ok()`.
    /// Notes the `Idempotency-Key` (or its absence) of a request for `key`.
    pub(super) fn keyed(&self, key: &str, headers: &axum::http::HeaderMap) {
        let idempotency = headers
            .get("idempotency-key")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        self.keys_per_id
            .lock()
            .entry(key.to_string())
            .or_default()
            .push(idempotency);
    }

    pub(super) async fn answer(
        &self,
        query: &HashMap<String, String>,
        key: &str,
        ok: impl FnOnce() -> Response,
    ) -> Response {
        let guard = self.counters.begin();
        let seen = if query.contains_key("id") {
            self.count_id(key)
        } else {
            0
        };
        if let Some(fail) = query.get("fail").and_then(|f| f.parse::<u64>().ok())
            && seen <= fail
        {
            self.delay(query).await;
            guard.complete();
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "flaky: failing this attempt",
            )
                .into_response();
        }
        let max_in_flight = u64::from(self.config.faults.max_in_flight);
        if max_in_flight > 0 && self.counters.in_flight() > max_in_flight {
            self.counters.refused();
            guard.complete();
            return (StatusCode::SERVICE_UNAVAILABLE, "over capacity").into_response();
        }
        let fault = self.faults.decide(&self.config.faults, key);
        if fault == Fault::OverRate {
            self.counters.throttled();
            guard.complete();
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "rate limit exceeded",
            )
                .into_response();
        }
        if fault == Fault::Slow {
            tokio::time::sleep(self.config.faults.slow).await;
        }
        self.delay(query).await;
        let response = match fault {
            Fault::Error => (StatusCode::SERVICE_UNAVAILABLE, "injected 503").into_response(),
            Fault::Throttle { retry_after_s } => {
                self.counters.throttled();
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, retry_after_s.to_string())],
                    "rate limit exceeded",
                )
                    .into_response()
            }
            Fault::Reset => {
                // the status line goes out, then the connection breaks mid-body
                let broken = futures::stream::once(async {
                    Err::<Bytes, _>(std::io::Error::other("injected connection reset"))
                });
                Response::new(Body::from_stream(broken))
            }
            Fault::None | Fault::Slow | Fault::OverRate => {
                let response = ok();
                if response.status().is_success() {
                    self.faults.succeeded(key);
                }
                response
            }
        };
        guard.complete();
        response
    }
}

#[cfg(test)]
mod latency_tests {
    use super::*;

    #[test]
    fn lognormal_has_the_asked_median_and_p99() {
        let mut ms: Vec<f64> = (0..20_000)
            .map(|i| State::lognormal(&i.to_string(), 50.0, 1000.0).as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        let (median, p99) = (ms[10_000], ms[19_800]);
        assert!((45.0..55.0).contains(&median), "median {median}");
        assert!((850.0..1150.0).contains(&p99), "p99 {p99}");
        assert_eq!(
            State::lognormal("7", 50.0, 1000.0),
            State::lognormal("7", 50.0, 1000.0)
        );
    }
}
