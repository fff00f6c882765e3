//! Handlers of the mock API.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use super::MockConfig;
use super::stats::Counters;

pub(crate) struct State {
    config: MockConfig,
    pub(crate) counters: Counters,
    next_id: AtomicU64,
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
            next_id: AtomicU64::new(0),
        }
    }

    /// Waits the configured latency, or `latency_ms` from the query string.
    async fn delay(&self, query: &HashMap<String, String>) {
        let latency = query
            .get("latency_ms")
            .and_then(|v| v.parse().ok())
            .map_or(self.config.latency, Duration::from_millis);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
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
        .route("/stats", get(stats))
        .with_state(state)
}

/// A deterministic small hash, for image sizes.
fn spread(id: &str, modulo: u64) -> u64 {
    id.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1099511628211)
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
    let guard = state.counters.begin();
    state.delay(&query).await;
    let limit: usize = query
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .clamp(1, 100);
    let images: Vec<Value> = (0..limit)
        .map(|k| {
            let id = match query.get("id") {
                Some(id) if limit == 1 => id.clone(),
                Some(id) => format!("{id}-{k}"),
                None => format!(
                    "{:x}",
                    state.next_id.fetch_add(1, Ordering::Relaxed) + 0x1000
                ),
            };
            image(&id)
        })
        .collect();
    guard.complete();
    axum::Json(images).into_response()
}

async fn echo(
    Extract(state): Shared,
    Query(query): Params,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let guard = state.counters.begin();
    state.delay(&query).await;
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
        "method": method.as_str(),
        "path": uri.path(),
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    guard.complete();
    axum::Json(reply).into_response()
}

async fn status(Extract(state): Shared, Query(query): Params, Path(code): Path<u16>) -> Response {
    let guard = state.counters.begin();
    state.delay(&query).await;
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    guard.complete();
    (code, format!("status {}", code.as_u16())).into_response()
}

/// `POST /v1/batch`: a JSON array in, `[{"i": index, "row": element}, …]` out.
async fn batch(Extract(state): Shared, Query(query): Params, body: Bytes) -> Response {
    let guard = state.counters.begin();
    state.delay(&query).await;
    let reply = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(rows)) => {
            let out: Vec<Value> = rows
                .into_iter()
                .enumerate()
                .map(|(i, row)| json!({"i": i, "row": row}))
                .collect();
            axum::Json(out).into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "expected a JSON array").into_response(),
    };
    guard.complete();
    reply
}

async fn stats(Extract(state): Shared) -> Response {
    axum::Json(state.counters.snapshot()).into_response()
}
