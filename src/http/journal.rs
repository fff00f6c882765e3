//! The HTTP functions' side of the call journal (`crate::engine::journal`):
//! a request's fingerprint, which answers are final, an answer's encoding,
//! and the `Idempotency-Key` header.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};

use datafusion::common::Result;

use crate::engine::journal::{
    Fingerprint, Follower, Key, Lead, Mode, Once, Reader, Recorded, Step, Value, Writer,
};
use crate::transport::{Body, ErrorKind, Headers, Outcome, Request, SecretHeaders};

/// The `Idempotency-Key` header (IETF httpapi draft).
pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The key of `request` made by `function`, and whether identical requests may
/// share one answer (idempotent methods). Secret header values enter only
/// through a hash keyed by `salt`.
pub(crate) fn fingerprint(
    function: &str,
    request: &Request,
    salt: &[u8; 32],
    secret: &SecretHeaders,
) -> (Key, Mode) {
    let mut f = Fingerprint::new(function);
    f.part(request.method.as_str().as_bytes());
    f.part(request.url.as_str().as_bytes());
    match &request.body {
        Some(body) => f.part(body),
        None => f.part(b"\xff no body"),
    }
    let mut headers: Vec<(&str, &HeaderValue)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v))
        .collect();
    headers.sort_by(|a, b| {
        a.0.cmp(b.0)
            .then_with(|| a.1.as_bytes().cmp(b.1.as_bytes()))
    });
    for (name, value) in headers {
        f.part(name.as_bytes());
        let hidden = secret.is_secret(name) || request.secret_headers.iter().any(|h| h == name);
        if hidden {
            f.secret(salt, value.as_bytes());
        } else {
            f.part(value.as_bytes());
        }
    }
    (f.finish(), mode(&request.method))
}

/// Identical idempotent requests may share one answer; POST, PATCH and other
/// methods never.
fn mode(method: &Method) -> Mode {
    match *method {
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS => Mode::Merge,
        _ => Mode::Distinct,
    }
}

/// Adds `Idempotency-Key: "token"` (a structured-field string) unless the
/// request has one of its own.
pub(crate) fn add_idempotency_key(request: &mut Request, token: &str) {
    if request.headers.contains_key(&IDEMPOTENCY_KEY) {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&format!("\"{token}\"")) {
        request.headers.insert(IDEMPOTENCY_KEY, value);
    }
}

/// An invocation's rows by what they need: answered from the journal, to
/// send (a request, or why there is none), or to wait for an identical call.
pub(crate) struct Sorted {
    pub outcomes: Vec<(usize, Box<Outcome>)>,
    pub to_send: Vec<(usize, Result<Request, String>, Option<Lead>)>,
    pub followers: Vec<(usize, Request, Follower)>,
}

/// Sorts the rows `called` of `function` (their `requests`) with `once`.
pub(crate) async fn sort(
    function: &str,
    once: &Once<'_>,
    secret: &SecretHeaders,
    called: Vec<usize>,
    requests: Vec<Result<Request, String>>,
) -> Result<Sorted> {
    let keys: Vec<_> = requests
        .iter()
        .map(|r| {
            r.as_ref()
                .ok()
                .map(|r| fingerprint(function, r, once.salt(), secret))
        })
        .collect();
    let steps = once.steps(&keys).await?;
    let mut sorted = Sorted {
        outcomes: Vec::new(),
        to_send: Vec::new(),
        followers: Vec::new(),
    };
    for ((i, request), step) in called.into_iter().zip(requests).zip(steps) {
        match (request, step) {
            (Ok(request), Some(Step::Replay(key, r))) => match replay(r.answer) {
                Some(outcome) => sorted.outcomes.push((i, Box::new(outcome))),
                // an entry this version cannot read: sent again
                None => sorted
                    .to_send
                    .push((i, Ok(request), Some(once.lead_again(key)))),
            },
            (Ok(request), Some(Step::Follow(f))) => sorted.followers.push((i, request, f)),
            (Ok(request), Some(Step::Lead(lead))) => {
                sorted.to_send.push((i, Ok(request), Some(lead)));
            }
            (request, _) => sorted.to_send.push((i, request, None)),
        }
    }
    Ok(sorted)
}

/// The outcome an identical call shared: an answer in flight, or one its
/// leader found recorded.
pub(crate) fn shared(value: &Value) -> Option<Box<Outcome>> {
    match value.downcast_ref::<Recorded>() {
        Some(r) => replay(r.answer.clone()).map(Box::new),
        None => value.downcast_ref::<Outcome>().cloned().map(Box::new),
    }
}

/// Whether `outcome` is final, and recorded: an answer with 2xx, 3xx, or 4xx
/// other than 408 and 429; never a transient failure, a timeout, or a row
/// that was not sent.
pub(crate) fn is_final(outcome: &Outcome) -> bool {
    matches!(outcome.status, Some(200..=499)) && !matches!(outcome.status, Some(408 | 429))
}

/// `outcome` as its journal entry of `function`.
pub(crate) fn entry(function: &str, outcome: &Outcome) -> Recorded {
    let mut w = Writer::default();
    w.u16(outcome.status.unwrap_or(0));
    w.u8(kind_code(outcome.kind));
    match &outcome.error {
        Some(e) => {
            w.u8(1);
            w.str(e);
        }
        None => w.u8(0),
    }
    let pairs: Vec<(&str, &str)> = outcome.headers.iter().collect();
    w.u32(u32::try_from(pairs.len()).unwrap_or(u32::MAX));
    for (n, v) in pairs {
        w.str(n);
        w.str(v);
    }
    match &outcome.body {
        None => w.u8(0),
        Some(Body::Text(t)) => {
            w.u8(1);
            w.str(t);
        }
        Some(Body::Bytes(b)) => {
            w.u8(2);
            w.bytes(b);
        }
    }
    Recorded::new(function, outcome.status.unwrap_or(0), w.finish())
}

/// The outcome a recorded answer replays (`attempts` 0: nothing was sent),
/// or `None` when it cannot be read.
pub(crate) fn replay(answer: Bytes) -> Option<Outcome> {
    let mut r = Reader::new(answer);
    let status = r.u16()?;
    let kind = code_kind(r.u8()?);
    let error = match r.u8()? {
        0 => None,
        _ => Some(r.str()?),
    };
    let n = r.u32()?;
    let mut pairs = Vec::new();
    for _ in 0..n {
        pairs.push((r.str()?, r.str()?));
    }
    let body = match r.u8()? {
        0 => None,
        1 => Some(Body::Text(r.str()?)),
        _ => Some(Body::Bytes(r.bytes()?)),
    };
    Some(Outcome {
        status: (status > 0).then_some(status),
        body,
        headers: Headers::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
        error,
        kind,
        attempts: 0,
        elapsed_ms: 0,
    })
}

const KINDS: [ErrorKind; 7] = [
    ErrorKind::Invalid,
    ErrorKind::Connect,
    ErrorKind::Timeout,
    ErrorKind::Body,
    ErrorKind::Http4xx,
    ErrorKind::Http5xx,
    ErrorKind::Other,
];

fn kind_code(kind: ErrorKind) -> u8 {
    KINDS.iter().position(|k| *k == kind).unwrap_or(6) as u8
}

fn code_kind(code: u8) -> ErrorKind {
    KINDS.get(code as usize).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Headers;

    fn request(method: Method, auth: &str) -> Request {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(auth).unwrap());
        headers.insert("x-trace", HeaderValue::from_static("1"));
        Request {
            method,
            url: reqwest::Url::parse("http://h/p?id=1").unwrap(),
            headers,
            body: Some(Bytes::from_static(b"{}")),
            binary: false,
            secret_headers: Vec::new(),
        }
    }

    #[test]
    fn fingerprints_differ_by_what_is_sent_and_merge_only_idempotent_methods() {
        let secret = SecretHeaders::default();
        let salt = [7; 32];
        let (a, mode) = fingerprint(
            "http_post",
            &request(Method::POST, "Bearer x"),
            &salt,
            &secret,
        );
        assert_eq!(mode, Mode::Distinct);
        let (b, _) = fingerprint(
            "http_post",
            &request(Method::POST, "Bearer y"),
            &salt,
            &secret,
        );
        assert_ne!(a, b, "the secret enters the key");
        let (c, _) = fingerprint(
            "http_post",
            &request(Method::POST, "Bearer x"),
            &[8; 32],
            &secret,
        );
        assert_ne!(a, c, "through a keyed hash");
        let (d, mode) = fingerprint(
            "http_put",
            &request(Method::PUT, "Bearer x"),
            &salt,
            &secret,
        );
        assert_eq!(mode, Mode::Merge);
        assert_ne!(a, d);
        assert_eq!(
            a,
            fingerprint(
                "http_post",
                &request(Method::POST, "Bearer x"),
                &salt,
                &secret
            )
            .0
        );
    }

    #[test]
    fn answers_replay_as_they_came_with_no_attempt() {
        let outcome = Outcome {
            status: Some(404),
            body: Some(Body::Text("nope".into())),
            headers: Headers::from_pairs([("content-type", "text/plain"), ("x-id", "7")]),
            error: Some("HTTP 404 Not Found".into()),
            kind: ErrorKind::Http4xx,
            attempts: 2,
            elapsed_ms: 35,
        };
        assert!(is_final(&outcome));
        let recorded = entry("http_get", &outcome);
        assert_eq!(recorded.status, 404);
        let back = replay(recorded.answer).unwrap();
        assert_eq!(
            back,
            Outcome {
                attempts: 0,
                elapsed_ms: 0,
                ..outcome
            }
        );
        let bytes = Outcome {
            status: Some(200),
            body: Some(Body::Bytes(Bytes::from_static(b"\x00\xff"))),
            ..Outcome::default()
        };
        assert_eq!(replay(entry("f", &bytes).answer).unwrap().body, bytes.body);
        for status in [None, Some(408), Some(429), Some(500), Some(503)] {
            assert!(
                !is_final(&Outcome {
                    status,
                    ..Outcome::default()
                }),
                "{status:?}"
            );
        }
        assert!(is_final(&Outcome {
            status: Some(302),
            ..Outcome::default()
        }));
    }
}
