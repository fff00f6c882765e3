//! The pace rules: advertised quotas spread until their reset, and a rate
//! learned from refusals, probed upward rarely.

use std::time::{Duration, Instant};

use super::state::{Answer, Gate, State};
use super::{Reason, Rules, Signal};
use crate::quota::Quota;

fn quota(remaining: u64, reset_ms: u64, limit: Option<u64>) -> Quota {
    Quota {
        name: String::new(),
        requests: true,
        remaining,
        reset: Duration::from_millis(reset_ms),
        limit,
        window: None,
    }
}

fn answer(signal: Signal, started: Instant, seq: u64) -> Answer {
    Answer {
        signal,
        started,
        level: 1,
        retry_after: None,
        seq,
    }
}

/// Starts a call at `now` (it must be allowed) and ends it at once.
fn start(s: &mut State, now: Instant) -> u64 {
    assert_eq!(s.try_start(now), Gate::Open(1), "{now:?}");
    s.in_flight -= 1;
    s.sent
}

#[test]
fn an_advertised_quota_is_spread_until_its_reset() {
    let t0 = Instant::now();
    let mut s = State::new(64, t0);
    let first = start(&mut s, t0);
    // three more started before the first answer: they count against it
    for _ in 0..3 {
        start(&mut s, t0);
    }
    s.answered(
        answer(Signal::Clean, t0, first),
        &[quota(10, 1000, Some(10))],
        Rules::default(),
        t0,
    );
    assert_eq!(s.pace(t0).1, Some(Reason::Advertised));
    // 10 − 3 = 7 left until the reset, spread evenly
    let starts = run_until(&mut s, t0, t0 + Duration::from_secs(1));
    assert_eq!(starts.len(), 7, "{starts:?}");
    assert!(
        starts[1] - starts[0] >= Duration::from_millis(100),
        "{starts:?}"
    );
    // none left: nothing until the reset, then the window's quota again
    let now = t0;
    let mut s = State::new(64, t0);
    let first = start(&mut s, t0);
    s.answered(
        answer(Signal::Clean, t0, first),
        &[quota(4, 1000, Some(5))],
        Rules::default(),
        t0,
    );
    let sent = run_until(&mut s, now, t0 + Duration::from_secs(1)).len();
    assert_eq!(sent, 4, "the quota left, no more");
    let next = run_until(
        &mut s,
        t0 + Duration::from_secs(1),
        t0 + Duration::from_secs(2),
    );
    assert_eq!(next.len(), 5, "the next window's whole quota");
}

/// Starts every call the key lets start from `from` until `to` (each ends at
/// once, unanswered); returns when they started.
fn run_until(s: &mut State, from: Instant, to: Instant) -> Vec<Instant> {
    let mut starts = Vec::new();
    let mut now = from;
    while now < to {
        match s.try_start(now) {
            Gate::Open(_) => {
                s.in_flight -= 1;
                starts.push(now);
            }
            Gate::Until(at) => now = at,
            other => panic!("{other:?}"),
        }
    }
    starts
}

#[test]
fn a_later_answer_of_a_window_only_lowers_what_is_left() {
    let t0 = Instant::now();
    let mut s = State::new(64, t0);
    let a = start(&mut s, t0);
    let b = start(&mut s, t0);
    // b's answer (counted later at the server) arrives first
    s.answered(
        answer(Signal::Clean, t0, b),
        &[quota(5, 1000, None)],
        Rules::default(),
        t0,
    );
    s.answered(
        answer(Signal::Clean, t0, a),
        &[quota(6, 1000, None)],
        Rules::default(),
        t0,
    );
    let sent = run_until(&mut s, t0, t0 + Duration::from_millis(999)).len();
    assert_eq!(sent, 5);
}

#[test]
fn an_exhausted_token_quota_holds_calls_until_its_reset() {
    let t0 = Instant::now();
    let mut s = State::new(64, t0);
    let first = start(&mut s, t0);
    let tokens = Quota {
        name: "tokens".into(),
        requests: false,
        ..quota(0, 300, None)
    };
    s.answered(
        answer(Signal::Clean, t0, first),
        &[tokens],
        Rules::default(),
        t0,
    );
    assert_eq!(
        s.try_start(t0),
        Gate::Until(t0 + Duration::from_millis(300))
    );
}

/// Runs a key against a server accepting `capacity` calls per second (a
/// sliding window of one second), offering as fast as the key lets it for
/// `secs`; returns the calls accepted and refused.
fn against_a_window(s: &mut State, capacity: usize, t0: Instant, secs: u64) -> (u64, u64) {
    let mut accepted = std::collections::VecDeque::<Instant>::new();
    let (mut ok, mut refused) = (0, 0);
    let mut now = t0;
    let end = t0 + Duration::from_secs(secs);
    while now < end {
        match s.try_start(now) {
            Gate::Open(_) => {
                let seq = s.sent;
                while accepted
                    .front()
                    .is_some_and(|t| now - *t >= Duration::from_secs(1))
                {
                    accepted.pop_front();
                }
                let signal = if accepted.len() < capacity {
                    accepted.push_back(now);
                    ok += 1;
                    Signal::Clean
                } else {
                    refused += 1;
                    Signal::Throttled
                };
                let later = now + Duration::from_millis(1);
                s.answered(answer(signal, now, seq), &[], Rules::default(), later);
                s.in_flight -= 1;
                now = later;
            }
            Gate::Until(at) => now = at.max(now),
            Gate::Freed | Gate::Step(_) => now += Duration::from_millis(1),
        }
    }
    (ok, refused)
}

#[test]
fn a_window_without_headers_is_learned_then_probed_rarely() {
    let t0 = Instant::now();
    let mut s = State::new(64, t0);
    let (ok, refused) = against_a_window(&mut s, 20, t0, 60);
    let (rate, why) = s.pace(t0 + Duration::from_secs(60));
    assert_eq!(why, Some(Reason::Learned));
    let rate = rate.unwrap_or_default();
    assert!((18.0..=21.0).contains(&rate), "paced at {rate}");
    // ≥ 0.95 of the rate, ≤ 3 % refused
    assert!(ok as f64 >= 0.95 * 20.0 * 60.0, "{ok} accepted in 60 s");
    assert!(
        refused as f64 <= 0.03 * ok as f64,
        "{refused} refused of {ok}"
    );
}

/// A fixed window of 20 per 2 s whose answers tell what is left and the reset
/// in whole seconds rounded up (the IETF fields), answered 1–150 ms after
/// each call starts, offered as fast as the key lets it for 20 s: no refusal
/// after the first answer.
#[test]
fn a_window_told_in_whole_seconds_is_never_overrun() {
    for offset_ms in [0, 300, 900, 1500] {
        let t0 = Instant::now();
        let mut s = State::new(256, t0);
        // the server's windows end every 2 s from t0 + offset
        let first_end = t0 + Duration::from_millis(offset_ms);
        let (mut ends, mut count) = (first_end, 0u64);
        let mut refused = 0;
        let mut now = t0;
        let mut pending: Vec<(Instant, Answer, Vec<Quota>)> = Vec::new();
        let mut answered_once = false;
        let mut rng = fastrand::Rng::with_seed(offset_ms);
        while now < t0 + Duration::from_secs(20) {
            // answers due
            pending.sort_by_key(|p| p.0);
            while pending.first().is_some_and(|p| p.0 <= now) {
                let (at, a, q) = pending.remove(0);
                answered_once = true;
                s.answered(a, &q, Rules::default(), at);
                s.in_flight -= 1;
            }
            match s.try_start(now) {
                Gate::Open(_) => {
                    let seq = s.sent;
                    while now >= ends {
                        ends += Duration::from_secs(2);
                        count = 0;
                    }
                    let ok = count < 20;
                    if ok {
                        count += 1;
                    } else if answered_once {
                        refused += 1;
                    }
                    let left = ends - now;
                    let t = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                    let quota = Quota {
                        name: "default".into(),
                        requests: true,
                        remaining: 20 - count,
                        reset: Duration::from_secs(t),
                        limit: Some(20),
                        window: Some(Duration::from_secs(2)),
                    };
                    let signal = if ok { Signal::Clean } else { Signal::Throttled };
                    // answered 1–150 ms later, in any order (a loaded client)
                    let at = now + Duration::from_millis(rng.u64(1..150));
                    pending.push((at, answer(signal, now, seq), vec![quota]));
                }
                Gate::Until(at) => {
                    let next = pending.iter().map(|p| p.0).min();
                    now = next
                        .map_or(at, |n| n.min(at))
                        .max(now + Duration::from_micros(100));
                }
                Gate::Freed => {
                    let next = pending.iter().map(|p| p.0).min();
                    now = next.unwrap_or(now + Duration::from_millis(1));
                }
                Gate::Step(at) => {
                    s.stepped();
                    now = at.max(now);
                }
            }
        }
        assert_eq!(refused, 0, "offset {offset_ms} ms");
    }
}

/// A host whose latency has a heavy tail (median 50 ms, p99 1 s) at any load
/// is never held below its budget by the latency limit; one that queues (16
/// served at a time, 50 ms each) is.
#[test]
fn a_heavy_tail_is_no_queue() {
    for queueing in [false, true] {
        let t0 = Instant::now();
        let mut s = State::new(256, t0);
        let mut rng = fastrand::Rng::with_seed(7);
        let sigma = 20f64.ln() / 2.326;
        let mut pending: Vec<(Instant, Answer)> = Vec::new();
        let mut now = t0;
        let mut busy_until: Vec<Instant> = vec![t0; 16];
        while now < t0 + Duration::from_secs(30) {
            while let Gate::Open(level) = s.try_start(now) {
                let rtt = if queueing {
                    // the server that frees first takes it
                    let (i, free) = busy_until
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, t)| **t)
                        .unwrap();
                    let done = (*free).max(now) + Duration::from_millis(50);
                    busy_until[i] = done;
                    done - now
                } else {
                    let z = (-2.0 * rng.f64().max(1e-12).ln()).sqrt()
                        * (2.0 * std::f64::consts::PI * rng.f64()).cos();
                    Duration::from_secs_f64(0.05 * (sigma * z).exp().min(1200.0))
                };
                let a = Answer {
                    level,
                    ..answer(Signal::Clean, now, s.sent)
                };
                pending.push((now + rtt, a));
            }
            pending.sort_by_key(|p| std::cmp::Reverse(p.0));
            let (at, a) = pending.pop().expect("calls in flight");
            now = at;
            s.answered(a, &[], Rules::default(), now);
            s.in_flight -= 1;
        }
        let limit = s.limit(now).min(256);
        if queueing {
            assert!((16..=40).contains(&limit), "a queue: {limit}");
        } else {
            assert_eq!(limit, 256, "a heavy tail");
        }
    }
}
