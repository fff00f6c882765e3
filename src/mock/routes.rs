//! Handlers of the mock API.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use super::MockConfig;
use super::faults::{Fault, FaultState};
use super::stats::{Counters, MockStats};

pub(crate) struct State {
    config: MockConfig,
    pub(crate) counters: Counters,
    pub(crate) faults: FaultState,
    next_id: AtomicU64,
    /// Requests received per id (the `id` query parameter or the route's key).
    pub(crate) per_id: parking_lot::Mutex<HashMap<String, u64>>,
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
            next_id: AtomicU64::new(0),
            per_id: parking_lot::Mutex::default(),
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
    async fn delay(&self, query: &HashMap<String, String>) {
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
    async fn answer(
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

type Shared = Extract<Arc<State>>;
type Params = Query<HashMap<String, String>>;

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/images/search", get(search))
        .route("/echo", any(echo))
        .route("/v1/batch", post(batch))
        .route("/status/{code}", any(status))
        .route("/bytes/{n}", get(bytes))
        .route("/invalid-utf8", get(invalid_utf8))
        .route("/redirect/{n}", get(redirect))
        .route("/redirect-loop", get(redirect_loop))
        .route("/redirect-to", get(redirect_to))
        .route("/stats", get(stats))
        .route("/flaky/{id}", any(flaky))
        .merge(super::web::routes())
        .with_state(state)
}

/// A deterministic small hash, for image sizes.
fn spread(id: &str, modulo: u64) -> u64 {
    id.bytes().fold(1_469_598_103_934_665_603_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211)
    }) % modulo
}

fn image(id: &str) -> Value {
    json!({
        "breeds": [],
        "id": id,
        "url": format!("https://cdn2.thecatapi.com/images/{id}.jpg"),
        "width": 300 + spread(id, 900),
        "height": 200 + spread(&format!("{id}h"), 800),
    })
}

async fn search(Extract(state): Shared, Query(query): Params) -> Response {
    let key = query.get("id").cloned().unwrap_or_else(|| {
        format!(
            "{:x}",
            state.next_id.fetch_add(1, Ordering::Relaxed) + 0x1000
        )
    });
    let limit: usize = query
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .clamp(1, 100);
    let id = key.clone();
    state
        .answer(&query, &key, move || {
            let images: Vec<Value> = (0..limit)
                .map(|k| {
                    if limit == 1 {
                        image(&id)
                    } else {
                        image(&format!("{id}-{k}"))
                    }
                })
                .collect();
            axum::Json(images).into_response()
        })
        .await
}

async fn echo(
    Extract(state): Shared,
    Query(query): Params,
    version: axum::http::Version,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.authority().is_some() {
        // asked as a forward proxy is asked: with an absolute URI
        state.counters.proxied();
    }
    let key = query.get("id").cloned().unwrap_or_else(|| uri.to_string());
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let reply = json!({
        "version": format!("{version:?}"),
        "method": method.as_str(),
        "path": uri.path(),
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    state
        .answer(&query, &key, || axum::Json(reply).into_response())
        .await
}

/// `ANY /flaky/{id}[?fail=N]`: 503 to the first `N` requests for `id`, then
/// `{"id": id, "method": …, "body": …}`; every request is counted for `id`.
async fn flaky(
    Extract(state): Shared,
    Query(mut query): Params,
    Path(id): Path<String>,
    method: Method,
    body: Bytes,
) -> Response {
    query.insert("id".into(), id.clone());
    let reply = json!({
        "id": id,
        "method": method.as_str(),
        "body": String::from_utf8_lossy(&body),
    });
    state
        .answer(&query, &id, || axum::Json(reply).into_response())
        .await
}

/// `POST /v1/batch`: a JSON array in, `[{"i": index, "row": element}, …]` out.
async fn batch(Extract(state): Shared, Query(query): Params, body: Bytes) -> Response {
    let key = format!("batch:{}", String::from_utf8_lossy(&body));
    state
        .answer(&query, &key, || {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Array(rows)) => {
                    let out: Vec<Value> = rows
                        .into_iter()
                        .enumerate()
                        .map(|(i, row)| json!({"i": i, "row": row}))
                        .collect();
                    axum::Json(out).into_response()
                }
                _ => (StatusCode::BAD_REQUEST, "expected a JSON array").into_response(),
            }
        })
        .await
}

async fn status(Extract(state): Shared, Query(query): Params, Path(code): Path<u16>) -> Response {
    let guard = state.counters.begin();
    state.delay(&query).await;
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (code, format!("status {}", code.as_u16())).into_response();
    if let Some(Ok(value)) = query.get("retry_after").map(|a| a.parse()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    guard.complete();
    response
}

/// `n` bytes of `x` (capped at 100 MB), streamed without a length.
async fn bytes(Extract(state): Shared, Path(n): Path<u64>) -> Response {
    let guard = state.counters.begin();
    guard.complete();
    Response::new(streamed(b'x', n.min(100 << 20)))
}

/// A body of `n` bytes `byte`, streamed in 64 KiB chunks (never held whole).
pub(crate) fn streamed(byte: u8, n: u64) -> Body {
    let chunk = Bytes::from(vec![byte; 64 * 1024]);
    let chunks = (0..n.div_ceil(64 * 1024)).map(move |i| {
        let len = (n - i * 64 * 1024).min(64 * 1024) as usize;
        Ok::<_, std::io::Error>(chunk.slice(..len))
    });
    Body::from_stream(futures::stream::iter(chunks))
}

async fn invalid_utf8(Extract(state): Shared) -> Response {
    let guard = state.counters.begin();
    guard.complete();
    (StatusCode::OK, vec![b'o', b'k', 0xff, 0xfe, b'!']).into_response()
}

async fn redirect(Extract(state): Shared, Path(n): Path<u32>) -> Response {
    let guard = state.counters.begin();
    guard.complete();
    if n == 0 {
        return (StatusCode::OK, "arrived").into_response();
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/redirect/{}", n - 1))],
    )
        .into_response()
}

async fn redirect_loop(Extract(state): Shared) -> Response {
    let guard = state.counters.begin();
    guard.complete();
    (StatusCode::FOUND, [(header::LOCATION, "/redirect-loop")]).into_response()
}

/// A redirect to `?url=…`, anywhere.
async fn redirect_to(Extract(state): Shared, Query(query): Params) -> Response {
    let guard = state.counters.begin();
    guard.complete();
    let target = query.get("url").cloned().unwrap_or_default();
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

async fn stats(Extract(state): Shared) -> Response {
    axum::Json(state.stats()).into_response()
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
