//! The adaptive limits' rules, one by one.

use futures::FutureExt;

use super::*;

#[tokio::test]
async fn overload_cuts_to_what_was_in_flight_once_per_round() {
    let a = Adaptive::default();
    let mut slots = Vec::new();
    for _ in 0..40 {
        slots.push(a.acquire("h", 64).await);
    }
    // a burst of refusals: the key is held, then cut once at the 10th (when
    // the share is known) to 0.9 × the 31 then in flight
    for slot in slots.drain(..10) {
        slot.answered(Signal::Overloaded);
    }
    let r = &a.report()[0];
    assert_eq!((r.limit, r.lowest, r.overloaded), (27, 27, 10));
    // 30 in flight, over the limit: nothing more starts
    assert!(Box::pin(a.acquire("h", 64)).now_or_never().is_none());
    // clean answers grow it back by about one per round (30 at ~1/27)
    for slot in slots.drain(..) {
        slot.answered(Signal::Clean);
    }
    let r = &a.report()[0];
    assert_eq!((r.limit, r.lowest, r.ceiling), (28, 27, 64));
}

#[tokio::test]
async fn a_throttled_key_gets_a_rate() {
    let a = Adaptive::default();
    // 10 clean answers (the start's window grows to the ceiling), then 429s
    for _ in 0..10 {
        a.acquire("h", 16).await.answered(Signal::Clean);
    }
    // 2 of 12 answers 429: below the share that caps
    for _ in 0..2 {
        a.acquire("h", 16).await.answered(Signal::Throttled);
    }
    assert_eq!(a.report()[0].rate, None);
    let slot = a.acquire("h", 16).await;
    slot.answered(Signal::Throttled);
    let slot = a.acquire("h", 16).await;
    let start = Instant::now();
    slot.answered_after(
        Signal::Throttled,
        Some(Duration::from_millis(100)),
        &[],
        Rules::default(),
    );
    // 4 of 14: paced at 0.97 × the 10 clean answers of the last second
    assert_eq!(a.report()[0].rate.map(|r| (r * 10.0).round()), Some(97.0));
    for _ in 0..2 {
        a.acquire("h", 16).await.answered(Signal::Clean);
    }
    // the first call waited the Retry-After, the next 1/9.7 s more
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    // other keys are not limited
    assert!(Box::pin(a.acquire("other", 64)).now_or_never().is_some());
}

#[tokio::test]
async fn a_few_random_429s_cap_nothing() {
    let a = Adaptive::default();
    for i in 0..200 {
        let signal = if i % 25 == 24 {
            Signal::Throttled
        } else {
            Signal::Clean
        };
        a.acquire("h", 64).await.answered(signal);
    }
    let r = &a.report()[0];
    assert_eq!((r.rate, r.throttled), (None, 8));
}

/// `n` slots of `key`, taken one after the other.
async fn take(a: &Adaptive, key: &str, n: usize) -> Vec<KeySlot> {
    let mut slots = Vec::new();
    for _ in 0..n {
        slots.push(a.acquire(key, 64).await);
    }
    slots
}

#[tokio::test]
async fn a_new_key_ramps_up_until_its_first_answer() {
    let a = Adaptive::default();
    let start = Instant::now();
    let mut slots = take(&a, "h", START_WINDOW + 1).await;
    // the window doubles every step: the fifth call waited for the first
    assert!(start.elapsed() >= FIRST_STEP, "{:?}", start.elapsed());
    // a clean first answer: the window grows from the start's, by one per
    // clean answer (doubling each round trip), and is free at the ceiling
    slots.pop().expect("a slot").answered(Signal::Clean);
    let window = |a: &Adaptive| a.keys.lock()["h"].state.lock().limit(Instant::now());
    assert_eq!(window(&a), 2 * START_WINDOW);
    assert_eq!(a.report()[0].limit, 64, "growing is not held");
    let mut answered = 1;
    while window(&a) < 64 {
        while let Some(slot) = Box::pin(a.acquire("h", 64)).now_or_never() {
            slots.push(slot);
        }
        assert_eq!(slots.len(), window(&a), "the window is full");
        slots.remove(0).answered(Signal::Clean);
        answered += 1;
    }
    assert!(answered <= 64 - 2 * START_WINDOW + 1, "{answered}");
    for _ in slots.len()..64 {
        let slot = Box::pin(a.acquire("h", 64)).now_or_never();
        slots.push(slot.expect("no limit at the ceiling"));
    }
}

#[tokio::test]
async fn a_first_refusal_by_chance_holds_the_key_only_until_the_answers_tell() {
    let a = Adaptive::default();
    let mut slots = take(&a, "h", 4).await;
    slots.pop().expect("a slot").answered(Signal::Overloaded);
    // held at the 3 calls still in flight
    assert_eq!(a.report()[0].limit, 3);
    assert!(Box::pin(a.acquire("h", 64)).now_or_never().is_none());
    for slot in slots.drain(..) {
        slot.answered(Signal::Clean);
    }
    // 1 refusal in 10 answers: chance, the key is free
    for _ in 0..6 {
        a.acquire("h", 64).await.answered(Signal::Clean);
    }
    let r = &a.report()[0];
    assert_eq!((r.limit, r.lowest, r.overloaded), (64, 64, 1));
}

#[tokio::test]
async fn a_bound_key_stays_below_the_level_it_was_refused_at() {
    let a = Adaptive::default();
    // bound: a burst of 10 refusals out of 40 calls
    let mut slots = take(&a, "h", 40).await;
    for (i, slot) in slots.drain(..).enumerate() {
        slot.answered(if i < 10 {
            Signal::Overloaded
        } else {
            Signal::Clean
        });
    }
    for _ in 0..40 {
        a.acquire("h", 64).await.answered(Signal::Clean);
    }
    let limit = a.report()[0].limit;
    assert!(limit < 64, "bound: {limit}");
    // a call sent at the limit is refused: the limit goes just below it
    let mut slots = take(&a, "h", limit).await;
    slots.pop().expect("a slot").answered(Signal::Overloaded);
    assert_eq!(a.report()[0].limit, limit - 1);
    // and does not grow past it while that refusal is recent
    for slot in slots.drain(..) {
        slot.answered(Signal::Clean);
    }
    for _ in 0..100 {
        a.acquire("h", 64).await.answered(Signal::Clean);
    }
    let r = &a.report()[0];
    assert_eq!((r.limit, r.overloaded), (limit - 1, 11));
}

#[tokio::test]
async fn a_new_key_held_for_a_429_is_decided_by_its_probe() {
    let a = Adaptive::default();
    // a first 429 holds the key at one call: nothing starts until the start's
    // calls have answered
    let mut slots = take(&a, "chance", 4).await;
    slots.pop().expect("a slot").answered(Signal::Throttled);
    assert!(Box::pin(a.acquire("chance", 64)).now_or_never().is_none());
    for slot in slots.drain(..) {
        slot.answered(Signal::Clean);
    }
    // then its probe: answered, the key is free (the 429 was chance)
    a.acquire("chance", 64).await.answered(Signal::Clean);
    let free = take(&a, "chance", 64).await;
    // a service at its rate limit refuses the probe too: the rate is capped
    // (at the floor of one call a second: no clean answer yet)
    for _ in 0..2 {
        a.acquire("limited", 64).await.answered(Signal::Throttled);
    }
    let r = a.report();
    assert_eq!((r[0].key.as_str(), r[0].rate), ("chance", None));
    assert_eq!((r[1].key.as_str(), r[1].rate), ("limited", Some(1.0)));
    drop(free);
}

fn answer(signal: Signal, started: Instant) -> super::state::Answer {
    super::state::Answer {
        signal,
        started,
        level: 1,
        retry_after: None,
        seq: 0,
    }
}

#[test]
fn a_rate_cut_before_any_clean_answer_grows_back_on_the_first_ones() {
    let now = Instant::now();
    let mut s = super::state::State::new(64, now);
    for _ in 0..10 {
        s.answered(answer(Signal::Throttled, now), &[], Rules::default(), now);
    }
    assert_eq!(s.rate, Some(1.0));
    // no clean rate was measured: none caps the growth
    for _ in 0..4 {
        s.answered(answer(Signal::Clean, now), &[], Rules::default(), now);
    }
    let rate = s.rate.unwrap_or_default();
    assert!(rate > 2.0, "{rate}");
}

#[test]
fn a_held_key_decides_on_what_came_within_a_second() {
    use super::state::{Phase, State};
    let now = Instant::now();
    let mut s = State::new(64, now);
    assert_eq!(s.try_start(now), Gate::Open(1));
    s.answered(answer(Signal::Throttled, now), &[], Rules::default(), now);
    s.in_flight = 0;
    assert!(
        matches!(s.phase, Phase::Hold { window: 1, .. }),
        "{:?}",
        s.phase
    );
    // a slow service: one answer more, but the hold began over a second ago
    if let Phase::Hold { since, .. } = &mut s.phase {
        *since -= HOLD_MAX;
    }
    assert_eq!(s.try_start(now), Gate::Open(1));
    s.answered(answer(Signal::Clean, now), &[], Rules::default(), now);
    assert_eq!((s.phase, s.rate), (Phase::Free, None));
}
