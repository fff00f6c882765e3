//! Handlers of the mock API.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use super::state::State;

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
        .route("/limited/{style}", get(super::limits::limited))
        .route("/queue", get(super::limits::queue))
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
    state.keyed(&key, &headers);
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
async fn batch(
    Extract(state): Shared,
    Query(query): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = format!("batch:{}", String::from_utf8_lossy(&body));
    state.keyed(&key, &headers);
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
