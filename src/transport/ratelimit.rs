//! Rate limits a service advertises in its answers' headers, read into
//! [`Quota`]s:
//!
//! * the IETF httpapi draft's structured fields, `RateLimit-Policy: "p";q=20;w=2`
//!   and `RateLimit: "p";r=15;t=1` (parameters `q`, `w`, `r`, `t`, `qu`,
//!   `pk`), and their older forms (`RateLimit: limit=20, remaining=15,
//!   reset=1`; `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`);
//! * GitHub-style `x-ratelimit-limit`, `-remaining`, `-reset` (epoch seconds),
//!   `-used`, `-resource`;
//! * OpenAI-style `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`
//!   (resets as durations: `1.5s`, `6m0s`, `12ms`);
//! * Anthropic-style `anthropic-ratelimit-{requests,tokens,input-tokens,
//!   output-tokens}-{limit,remaining,reset}` (RFC 3339 resets).
//!
//! Malformed values are ignored (that quota is not read); `Retry-After` is read
//! apart ([`super::policy::retry_after`]) and wins over all of these.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use sfv::{BareItem, Dictionary, List, ListEntry, Parameters, Parser};

pub(crate) use crate::quota::Quota;

/// Epoch seconds are told from delta seconds by size (a delta of 30 years is
/// no rate-limit window).
const EPOCH_FROM: f64 = 1.0e9;

/// Every quota advertised in `headers` (none: the service advertises nothing
/// this reads; costs one pass over the header names).
pub(crate) fn advertised(headers: &HeaderMap) -> Vec<Quota> {
    let any = headers.keys().any(|k| {
        let k = k.as_str();
        k.starts_with("ratelimit") || k.starts_with("x-ratelimit") || k.starts_with("anthropic-")
    });
    if !any {
        return Vec::new();
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut out = ietf(text("ratelimit"), text("ratelimit-policy"));
    if out.is_empty() {
        out.extend(fields(
            String::new(),
            text("ratelimit-limit"),
            text("ratelimit-remaining"),
            text("ratelimit-reset").and_then(seconds),
        ));
    }
    let resource = text("x-ratelimit-resource").unwrap_or_default().to_string();
    let remaining = text("x-ratelimit-remaining")
        .map(str::to_string)
        .or_else(|| {
            let limit: u64 = text("x-ratelimit-limit")?.trim().parse().ok()?;
            let used: u64 = text("x-ratelimit-used")?.trim().parse().ok()?;
            Some(limit.saturating_sub(used).to_string())
        });
    out.extend(fields(
        resource,
        text("x-ratelimit-limit"),
        remaining.as_deref(),
        text("x-ratelimit-reset").and_then(seconds),
    ));
    for unit in ["requests", "tokens"] {
        out.extend(fields(
            unit.to_string(),
            text(&format!("x-ratelimit-limit-{unit}")),
            text(&format!("x-ratelimit-remaining-{unit}")),
            text(&format!("x-ratelimit-reset-{unit}")).and_then(go_duration),
        ));
    }
    for unit in ["requests", "tokens", "input-tokens", "output-tokens"] {
        let field = |part: &str| text(&format!("anthropic-ratelimit-{unit}-{part}"));
        out.extend(fields(
            unit.to_string(),
            field("limit"),
            field("remaining"),
            field("reset").and_then(rfc3339),
        ));
    }
    out
}

/// A quota from its three fields (`limit` may lead a list, as in
/// `RateLimit-Limit: 10, 10;w=1`); `None` unless remaining and reset read.
fn fields(
    name: String,
    limit: Option<&str>,
    remaining: Option<&str>,
    reset: Option<Duration>,
) -> Option<Quota> {
    let remaining = remaining?.trim().parse().ok()?;
    let reset = reset?;
    let limit = limit.and_then(|l| l.split([',', ';']).next()?.trim().parse().ok());
    let requests = !name.contains("tokens");
    Some(Quota {
        name,
        requests,
        remaining,
        reset,
        limit,
        window: None,
    })
}

/// The IETF draft's `RateLimit` and `RateLimit-Policy` (a list of named
/// items), or the older dictionary form of `RateLimit`.
fn ietf(limit: Option<&str>, policy: Option<&str>) -> Vec<Quota> {
    let Some(limit) = limit else {
        return Vec::new();
    };
    let policies: List = policy
        .and_then(|p| Parser::new(p).parse_list().ok())
        .unwrap_or_default();
    if let Ok(list) = Parser::new(limit).parse_list::<List>() {
        let found: Vec<Quota> = list
            .iter()
            .filter_map(|entry| named(entry, &policies))
            .collect();
        if !found.is_empty() {
            return found;
        }
    }
    let Ok(dict) = Parser::new(limit).parse_dictionary::<Dictionary>() else {
        return Vec::new();
    };
    let int = |key: &str| match dict.get(key) {
        Some(ListEntry::Item(item)) => whole(&item.bare_item),
        _ => None,
    };
    let (Some(remaining), Some(reset)) = (int("remaining"), int("reset")) else {
        return Vec::new();
    };
    // an old-style policy is a bare quota: `10;w=1`
    let window = policies.iter().find_map(|p| match p {
        ListEntry::Item(item) => param(&item.params, "w"),
        ListEntry::InnerList(_) => None,
    });
    vec![Quota {
        name: String::new(),
        requests: true,
        remaining,
        reset: Duration::from_secs(reset),
        limit: int("limit"),
        window: window.map(Duration::from_secs),
    }]
}

/// One `RateLimit` list member, `"name";r=…;t=…[;pk=…]`, with its policy's
/// `q`, `w` and `qu`.
fn named(entry: &ListEntry, policies: &List) -> Option<Quota> {
    let ListEntry::Item(item) = entry else {
        return None;
    };
    let name = label(&item.bare_item)?;
    let remaining = param(&item.params, "r")?;
    let reset = param(&item.params, "t")?;
    let partition = item.params.get("pk").and_then(BareItem::as_byte_sequence);
    let policy = policies.iter().find_map(|p| match p {
        ListEntry::Item(p) if label(&p.bare_item).as_deref() == Some(&name) => Some(&p.params),
        _ => None,
    });
    let unit = policy
        .and_then(|p| p.get("qu"))
        .and_then(|u| u.as_string().map(|s| s.as_str().to_string()));
    let name = match partition {
        Some(pk) => format!("{name}/{}", hex(pk)),
        None => name,
    };
    Some(Quota {
        name,
        requests: unit.is_none_or(|u| u == "requests"),
        remaining,
        reset: Duration::from_secs(reset),
        limit: policy.and_then(|p| param(p, "q")),
        window: policy.and_then(|p| param(p, "w")).map(Duration::from_secs),
    })
}

/// A policy's name: a string or a token.
fn label(item: &BareItem) -> Option<String> {
    item.as_string()
        .map(|s| s.as_str().to_string())
        .or_else(|| item.as_token().map(|t| t.as_str().to_string()))
}

fn param(params: &Parameters, key: &str) -> Option<u64> {
    whole(params.get(key)?)
}

/// A non-negative integer item.
fn whole(item: &BareItem) -> Option<u64> {
    u64::try_from(i64::from(item.as_integer()?)).ok()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Delta seconds (decimals allowed), or epoch seconds when that large.
fn seconds(value: &str) -> Option<Duration> {
    let n: f64 = value.trim().parse().ok()?;
    if !(n.is_finite() && n >= 0.0) {
        return None;
    }
    if n < EPOCH_FROM {
        return Some(Duration::from_secs_f64(n));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    Some(Duration::from_secs_f64(n).saturating_sub(now))
}

/// A Go-style duration: `1.5s`, `6m0s`, `12ms`, `1h2m3s`, `250us`.
fn go_duration(value: &str) -> Option<Duration> {
    let mut rest = value.trim();
    let mut total = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit..];
    }
    total.is_finite().then(|| Duration::from_secs_f64(total))
}

/// An RFC 3339 moment, as the time left until it.
fn rfc3339(value: &str) -> Option<Duration> {
    let at = chrono::DateTime::parse_from_rfc3339(value.trim()).ok()?;
    let at = SystemTime::from(at);
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests;
