//! Servers that limit their clients, as real APIs do:
//!
//! * `GET /limited/{style}?id=X&limit=N&window_ms=W[&sliding=1]` — at most `N`
//!   requests per window of `W` ms (fixed windows, aligned to whole seconds of
//!   the clock when `W` is whole seconds, or a sliding window); more are
//!   refused at once with 429. Every answer advertises the quota in the
//!   headers of `style`: `none` (nothing, not even `Retry-After`), `ietf`
//!   (`RateLimit-Policy` and `RateLimit` structured fields), `ietf-fields`
//!   (`RateLimit-Limit`, `-Remaining`, `-Reset`), `github` (`x-ratelimit-*`,
//!   reset as epoch seconds), `openai` (`x-ratelimit-*-requests`, reset as a
//!   duration such as `1.5s`) or `anthropic` (`anthropic-ratelimit-requests-*`,
//!   RFC 3339 resets). Accepted requests wait `latency_ms` (default the
//!   mock's latency). One limiter per style, limit, window and kind.
//! * `GET /queue?id=X&servers=S&latency_ms=L` — serves `S` requests at a time,
//!   `L` ms each; the others wait in line (a server that slows down instead of
//!   refusing). One line per `S`.
//!
//! Both count in [`super::MockStats`]: refusals in `throttled`, the time from
//! arrival to answer of served requests in `mean_served_ms`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::Semaphore;

use super::state::State;

/// The limiters and lines of one mock.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    windows: Mutex<HashMap<String, Window>>,
    lines: Mutex<HashMap<u32, Arc<Semaphore>>>,
}

/// One limiter: the requests it accepted in the current window.
#[derive(Debug)]
struct Window {
    limit: u32,
    length: Duration,
    sliding: bool,
    /// Fixed: when the current window ends, and its count.
    ends: Instant,
    count: u32,
    /// Sliding: when the accepted requests of the last window arrived.
    accepted: VecDeque<Instant>,
}

/// What a limiter said of one request.
struct Verdict {
    accepted: bool,
    remaining: u32,
    /// Until the quota is restored (fixed: the window's end; sliding: until
    /// the oldest accepted request leaves it).
    reset: Duration,
}

impl Window {
    fn new(limit: u32, length: Duration, sliding: bool, now: Instant) -> Self {
        // whole-second windows end on whole seconds of the clock, as the
        // services that advertise epoch seconds count them
        let ends = if length.subsec_nanos() == 0 && !sliding {
            let epoch = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let into = epoch.as_nanos() % length.as_nanos();
            now + length.saturating_sub(Duration::from_nanos(into as u64))
        } else {
            now + length
        };
        Self {
            limit,
            length,
            sliding,
            ends,
            count: 0,
            accepted: VecDeque::new(),
        }
    }

    fn ask(&mut self, now: Instant) -> Verdict {
        if self.sliding {
            while self
                .accepted
                .front()
                .is_some_and(|t| now - *t >= self.length)
            {
                self.accepted.pop_front();
            }
            let accepted = (self.accepted.len() as u32) < self.limit;
            if accepted {
                self.accepted.push_back(now);
            }
            let reset = self.accepted.front().map_or(Duration::ZERO, |t| {
                (*t + self.length).saturating_duration_since(now)
            });
            return Verdict {
                accepted,
                remaining: self.limit - self.accepted.len() as u32,
                reset,
            };
        }
        while now >= self.ends {
            self.ends += self.length;
            self.count = 0;
        }
        let accepted = self.count < self.limit;
        if accepted {
            self.count += 1;
        }
        Verdict {
            accepted,
            remaining: self.limit - self.count,
            reset: self.ends - now,
        }
    }
}

type Params = Query<HashMap<String, String>>;

fn number(query: &HashMap<String, String>, key: &str, default: u64) -> u64 {
    query
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `GET /limited/{style}`.
pub(crate) async fn limited(
    Extract(state): Extract<Arc<State>>,
    Path(style): Path<String>,
    Query(query): Params,
) -> Response {
    let arrived = Instant::now();
    let guard = state.counters.begin();
    let id = query.get("id").cloned().unwrap_or_default();
    state.count_id(&id);
    let limit = number(&query, "limit", 10).clamp(1, 1_000_000) as u32;
    let length = Duration::from_millis(number(&query, "window_ms", 1000).clamp(1, 3_600_000));
    let sliding = query
        .get("sliding")
        .is_some_and(|v| v == "1" || v == "true");
    let verdict = {
        let mut windows = state.limits.windows.lock();
        let key = format!("{style}/{limit}/{}/{sliding}", length.as_millis());
        windows
            .entry(key)
            .or_insert_with(|| Window::new(limit, length, sliding, arrived))
            .ask(arrived)
    };
    let headers = advertise(&style, limit, length, &verdict);
    if !verdict.accepted {
        state.counters.throttled();
        guard.complete();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            headers,
            "rate limit exceeded",
        )
            .into_response();
    }
    state.delay(&query).await;
    state.faults.succeeded(&id);
    state.counters.served(arrived.elapsed());
    guard.complete();
    (headers, axum::Json(json!({ "id": id }))).into_response()
}

/// `GET /queue`.
pub(crate) async fn queue(Extract(state): Extract<Arc<State>>, Query(query): Params) -> Response {
    let arrived = Instant::now();
    let guard = state.counters.begin();
    let id = query.get("id").cloned().unwrap_or_default();
    state.count_id(&id);
    let servers = number(&query, "servers", 16).clamp(1, 10_000) as u32;
    let line = {
        let mut lines = state.limits.lines.lock();
        Arc::clone(
            lines
                .entry(servers)
                .or_insert_with(|| Arc::new(Semaphore::new(servers as usize))),
        )
    };
    let Ok(_served) = line.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    state.delay(&query).await;
    state.faults.succeeded(&id);
    state.counters.served(arrived.elapsed());
    guard.complete();
    axum::Json(json!({ "id": id })).into_response()
}

/// Whole seconds, rounded up (a client told less would come back too early).
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The headers of `style` advertising `verdict`.
fn advertise(style: &str, limit: u32, window: Duration, verdict: &Verdict) -> HeaderMap {
    let reset = verdict.reset;
    let remaining = verdict.remaining;
    let reset_at = SystemTime::now() + reset;
    let epoch = |at: SystemTime| {
        let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        ceil_secs(d)
    };
    let pairs: Vec<(&str, String)> = match style {
        "ietf" => vec![
            (
                "ratelimit-policy",
                format!("\"default\";q={limit};w={}", ceil_secs(window)),
            ),
            (
                "ratelimit",
                format!("\"default\";r={remaining};t={}", ceil_secs(reset)),
            ),
        ],
        "ietf-fields" => vec![
            ("ratelimit-limit", limit.to_string()),
            ("ratelimit-remaining", remaining.to_string()),
            ("ratelimit-reset", ceil_secs(reset).to_string()),
        ],
        "github" => vec![
            ("x-ratelimit-limit", limit.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
            ("x-ratelimit-used", (limit - remaining).to_string()),
            ("x-ratelimit-reset", epoch(reset_at).to_string()),
            ("x-ratelimit-resource", "core".to_string()),
        ],
        "openai" => vec![
            ("x-ratelimit-limit-requests", limit.to_string()),
            ("x-ratelimit-remaining-requests", remaining.to_string()),
            (
                "x-ratelimit-reset-requests",
                format!("{}ms", reset.as_millis() + 1),
            ),
            ("x-ratelimit-limit-tokens", "1000000".to_string()),
            ("x-ratelimit-remaining-tokens", "999000".to_string()),
            ("x-ratelimit-reset-tokens", "6m0s".to_string()),
        ],
        "anthropic" => {
            let at = chrono::DateTime::<chrono::Utc>::from(
                UNIX_EPOCH + Duration::from_secs(epoch(reset_at)),
            );
            let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            vec![
                ("anthropic-ratelimit-requests-limit", limit.to_string()),
                (
                    "anthropic-ratelimit-requests-remaining",
                    remaining.to_string(),
                ),
                ("anthropic-ratelimit-requests-reset", at),
            ]
        }
        _ => Vec::new(),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers
}

impl Limits {
    pub(crate) fn reset(&self) {
        self.windows.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_and_sliding_windows() {
        let start = Instant::now();
        let mut fixed = Window::new(3, Duration::from_millis(100), false, start);
        let got: Vec<bool> = (0..4).map(|_| fixed.ask(start).accepted).collect();
        assert_eq!(got, [true, true, true, false]);
        let later = fixed.ask(start + Duration::from_millis(100));
        assert!(later.accepted && later.remaining == 2, "the next window");
        let mut sliding = Window::new(2, Duration::from_millis(100), true, start);
        assert!(sliding.ask(start).accepted);
        assert!(sliding.ask(start + Duration::from_millis(60)).accepted);
        let v = sliding.ask(start + Duration::from_millis(99));
        assert!(!v.accepted && v.reset == Duration::from_millis(1));
        assert!(sliding.ask(start + Duration::from_millis(100)).accepted);
        assert!(!sliding.ask(start + Duration::from_millis(150)).accepted);
    }

    #[test]
    fn every_style_is_read_back() {
        let verdict = Verdict {
            accepted: true,
            remaining: 7,
            reset: Duration::from_millis(1500),
        };
        for style in ["ietf", "ietf-fields", "github", "openai", "anthropic"] {
            let headers = advertise(style, 20, Duration::from_secs(2), &verdict);
            let read = crate::transport::read_advertised(&headers);
            let q = read.iter().find(|q| q.requests).expect(style);
            assert_eq!((q.remaining, q.limit), (7, Some(20)), "{style}");
            let reset = q.reset.as_millis();
            assert!((1400..=3000).contains(&reset), "{style}: {reset} ms");
        }
        assert!(advertise("none", 20, Duration::from_secs(2), &verdict).is_empty());
    }
}
