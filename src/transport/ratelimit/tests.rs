//! The header styles read, and malformed values ignored.

use reqwest::header::{HeaderName, HeaderValue};

use super::*;

fn read(pairs: &[(&str, &str)]) -> Vec<Quota> {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    advertised(&h)
}

fn quota(name: &str, remaining: u64, reset_s: f64) -> Quota {
    Quota {
        name: name.into(),
        requests: true,
        remaining,
        reset: Duration::from_secs_f64(reset_s),
        limit: None,
        window: None,
    }
}

#[test]
fn ietf_structured_fields() {
    let got = read(&[
        (
            "RateLimit-Policy",
            r#""burst";q=20;w=2, "day";q=1000;w=86400"#,
        ),
        ("RateLimit", r#""burst";r=15;t=1, "day";r=900;t=3600"#),
    ]);
    assert_eq!(
        got,
        vec![
            Quota {
                limit: Some(20),
                window: Some(Duration::from_secs(2)),
                ..quota("burst", 15, 1.0)
            },
            Quota {
                limit: Some(1000),
                window: Some(Duration::from_secs(86400)),
                ..quota("day", 900, 3600.0)
            },
        ]
    );
    // a partition key names its own quota; a unit other than requests
    let got = read(&[
        ("RateLimit-Policy", r#""b";q=100;w=60;qu="content-bytes""#),
        ("RateLimit", r#""b";r=5;t=9;pk=:AQI=:"#),
    ]);
    assert_eq!(got[0].name, "b/0102");
    assert!(!got[0].requests);
    // older drafts: a dictionary, and the three fields
    let got = read(&[("RateLimit", "limit=10, remaining=4, reset=3")]);
    assert_eq!(
        got,
        vec![Quota {
            limit: Some(10),
            ..quota("", 4, 3.0)
        }]
    );
    let got = read(&[
        ("RateLimit-Limit", "10, 10;w=1"),
        ("RateLimit-Remaining", "7"),
        ("RateLimit-Reset", "2"),
    ]);
    assert_eq!(
        got,
        vec![Quota {
            limit: Some(10),
            ..quota("", 7, 2.0)
        }]
    );
}

#[test]
fn malformed_values_are_ignored() {
    assert!(read(&[("RateLimit", r#""p";r=-1;t=1"#)]).is_empty());
    assert!(read(&[("RateLimit", "((")]).is_empty());
    assert!(read(&[("RateLimit", r#""p";r=1"#)]).is_empty());
    assert!(
        read(&[
            ("x-ratelimit-remaining", "many"),
            ("x-ratelimit-reset", "1")
        ])
        .is_empty()
    );
    assert!(
        read(&[
            ("x-ratelimit-remaining-requests", "5"),
            ("x-ratelimit-reset-requests", "soon")
        ])
        .is_empty()
    );
    assert!(
        read(&[
            ("anthropic-ratelimit-requests-remaining", "5"),
            ("anthropic-ratelimit-requests-reset", "tomorrow")
        ])
        .is_empty()
    );
    assert!(read(&[("content-type", "text/plain")]).is_empty());
}

#[test]
fn github_style() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let reset = (now + 30).to_string();
    let got = read(&[
        ("x-ratelimit-limit", "5000"),
        ("x-ratelimit-remaining", "4999"),
        ("x-ratelimit-used", "1"),
        ("x-ratelimit-reset", &reset),
        ("x-ratelimit-resource", "core"),
    ]);
    assert_eq!(got.len(), 1);
    let g = &got[0];
    assert_eq!(
        (g.name.as_str(), g.remaining, g.limit),
        ("core", 4999, Some(5000))
    );
    assert!((28..=30).contains(&g.reset.as_secs()), "{:?}", g.reset);
    // remaining from limit and used
    let got = read(&[
        ("x-ratelimit-limit", "60"),
        ("x-ratelimit-used", "59"),
        ("x-ratelimit-reset", "12"),
    ]);
    assert_eq!((got[0].remaining, got[0].reset.as_secs()), (1, 12));
}

#[test]
fn openai_style() {
    let got = read(&[
        ("x-ratelimit-limit-requests", "60"),
        ("x-ratelimit-remaining-requests", "59"),
        ("x-ratelimit-reset-requests", "1.5s"),
        ("x-ratelimit-limit-tokens", "150000"),
        ("x-ratelimit-remaining-tokens", "149984"),
        ("x-ratelimit-reset-tokens", "6m0s"),
    ]);
    assert_eq!(
        got,
        vec![
            Quota {
                limit: Some(60),
                ..quota("requests", 59, 1.5)
            },
            Quota {
                requests: false,
                limit: Some(150_000),
                ..quota("tokens", 149_984, 360.0)
            },
        ]
    );
    assert_eq!(go_duration("12ms"), Some(Duration::from_millis(12)));
    assert_eq!(go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
    assert_eq!(go_duration(""), None);
    assert_eq!(go_duration("5 s"), None);
}

#[test]
fn anthropic_style() {
    let at = chrono::DateTime::<chrono::Utc>::from(SystemTime::now() + Duration::from_secs(20));
    let got = read(&[
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "49"),
        ("anthropic-ratelimit-requests-reset", &at.to_rfc3339()),
        ("anthropic-ratelimit-output-tokens-remaining", "0"),
        ("anthropic-ratelimit-output-tokens-reset", &at.to_rfc3339()),
    ]);
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].remaining, got[0].limit, got[0].requests),
        (49, Some(50), true)
    );
    assert!((18..=20).contains(&got[0].reset.as_secs()));
    assert_eq!(
        (got[1].name.as_str(), got[1].requests),
        ("output-tokens", false)
    );
}
