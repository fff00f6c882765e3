//! Routes that answer like real services do: compressed, binary, in another
//! charset, with chosen headers.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State as Extract};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get};
use tower_http::compression::CompressionLayer;

use super::routes::streamed;
use super::state::State;

/// The size of `GET /image/png` (httpbin's PNG is this long too).
pub const PNG_BYTES: usize = 8_090;

/// The routes of this module:
/// * `GET /compress/{n}` — `n` bytes of JSON text, compressed as the request's
///   `Accept-Encoding` asks (gzip, deflate, br, zstd); the reply names the
///   `Accept-Encoding` it got.
/// * `GET /gzip/{n}`, `/deflate/{n}`, `/brotli/{n}`, `/zstd/{n}` — the same,
///   always in that encoding (like httpbin's `/gzip`).
/// * `GET /zeros/{n}` — `n` zero bytes, gzip-compressed as they stream (a
///   compression bomb when `n` is large).
/// * `GET /image/png` — [`PNG_BYTES`] bytes of `image/png`.
/// * `GET /encoding/latin1` — `café` in ISO-8859-1, declared in `Content-Type`.
/// * `ANY /response-headers?name=value…` — those response headers (a name given
///   twice is sent twice).
pub(crate) fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/compress/{n}", get(text))
        .layer(CompressionLayer::new())
        .merge(forced("/gzip/{n}", "gzip", get(text)))
        .merge(forced("/deflate/{n}", "deflate", get(text)))
        .merge(forced("/brotli/{n}", "br", get(text)))
        .merge(forced("/zstd/{n}", "zstd", get(text)))
        .merge(forced("/zeros/{n}", "gzip", get(zeros)))
        .route("/image/png", get(png))
        .route("/encoding/latin1", get(latin1))
        .route("/response-headers", any(response_headers))
}

/// `route` at `path`, compressed with `encoding` whatever the client accepts.
fn forced(
    path: &str,
    encoding: &'static str,
    route: MethodRouter<Arc<State>>,
) -> Router<Arc<State>> {
    Router::new()
        .route(path, route)
        .layer(CompressionLayer::new())
        .layer(axum::middleware::map_request(
            move |mut request: Request| async move {
                request
                    .headers_mut()
                    .insert(header::ACCEPT_ENCODING, HeaderValue::from_static(encoding));
                request
            },
        ))
}

async fn text(
    Extract(state): Extract<Arc<State>>,
    Path(n): Path<usize>,
    headers: HeaderMap,
) -> Response {
    let guard = state.counters.begin();
    let asked = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let head = format!("{{\"accept_encoding\":\"{asked}\",\"text\":\"");
    let fill = n.saturating_sub(head.len() + 2).min(64 << 20);
    let body = format!("{head}{}\"}}", &"abcdefgh".repeat(fill / 8 + 1)[..fill]);
    guard.complete();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn zeros(Extract(state): Extract<Arc<State>>, Path(n): Path<u64>) -> Response {
    let guard = state.counters.begin();
    guard.complete();
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        streamed(0, n),
    )
        .into_response()
}

/// A PNG signature followed by bytes of every value (deterministic).
fn png_bytes() -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    bytes.extend((0..PNG_BYTES - 8).map(|i| (i * 7 % 256) as u8));
    bytes
}

async fn png(Extract(state): Extract<Arc<State>>) -> Response {
    let guard = state.counters.begin();
    guard.complete();
    ([(header::CONTENT_TYPE, "image/png")], png_bytes()).into_response()
}

async fn latin1(Extract(state): Extract<Arc<State>>) -> Response {
    let guard = state.counters.begin();
    guard.complete();
    (
        [(header::CONTENT_TYPE, "text/plain; charset=ISO-8859-1")],
        vec![b'c', b'a', b'f', 0xE9],
    )
        .into_response()
}

async fn response_headers(
    Extract(state): Extract<Arc<State>>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let guard = state.counters.begin();
    let mut headers = HeaderMap::new();
    for (name, value) in &pairs {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return (StatusCode::BAD_REQUEST, "bad header").into_response();
        };
        headers.append(name, value);
    }
    guard.complete();
    (headers, "headers set").into_response()
}
