//! Tests of the fair shares of the budget.

use std::collections::HashMap;

use futures::FutureExt;

use super::*;

/// Holds `n` slots of `flow`.
async fn hold(slots: &Arc<Slots>, flow: &Flow, n: usize) -> Vec<Slot> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(slots.acquire_for(flow).await);
    }
    held
}

#[tokio::test]
async fn a_newcomer_gets_every_freed_slot_until_its_share() {
    let slots = Slots::new(8);
    let (big, small) = (Flow::new(1), Flow::new(1));
    let mut big_held = hold(&slots, &big, 8).await;
    // both wait: big for 8 more, small for 4
    let mut big_wait: Vec<_> = (0..8).map(|_| Box::pin(slots.acquire_for(&big))).collect();
    let mut small_wait: Vec<_> = (0..4)
        .map(|_| Box::pin(slots.acquire_for(&small)))
        .collect();
    for w in big_wait.iter_mut().chain(&mut small_wait) {
        assert!(w.as_mut().now_or_never().is_none());
    }
    // four slots freed by big: all four go to small (it holds fewer)
    big_held.truncate(4);
    let small_held: Vec<Slot> = small_wait
        .iter_mut()
        .filter_map(|w| w.as_mut().now_or_never())
        .collect();
    assert_eq!(small_held.len(), 4);
    assert_eq!(slots.available(), 0);
    assert!(
        big_wait
            .iter_mut()
            .all(|w| w.as_mut().now_or_never().is_none())
    );
    // small ends, then big's first calls: big gets the whole budget back
    drop(small_held);
    drop(big_held);
    let again = big_wait
        .iter_mut()
        .filter_map(|w| w.as_mut().now_or_never())
        .count();
    assert_eq!(again, 8);
}

#[tokio::test]
async fn weights_divide_the_budget() {
    let slots = Slots::new(6);
    let (heavy, light) = (Flow::new(2), Flow::new(1));
    let held = hold(&slots, &heavy, 6).await;
    let mut waiting = Vec::new();
    for flow in [&heavy, &light] {
        for _ in 0..6 {
            waiting.push((flow.id(), Box::pin(slots.acquire_for(flow))));
        }
    }
    for w in &mut waiting {
        assert!(w.1.as_mut().now_or_never().is_none());
    }
    drop(held);
    let mut got: HashMap<u64, usize> = HashMap::new();
    let mut slots_now = Vec::new();
    for (id, mut w) in waiting {
        if let Some(slot) = w.as_mut().now_or_never() {
            *got.entry(id).or_default() += 1;
            slots_now.push(slot);
        }
    }
    assert_eq!(got[&heavy.id()], 4, "{got:?}");
    assert_eq!(got[&light.id()], 2, "{got:?}");
}

#[tokio::test]
async fn first_come_first_served_without_fairness() {
    let slots = Slots::new(2);
    slots.set_fair(false);
    let (a, b) = (Flow::new(1), Flow::new(1));
    let mut held = hold(&slots, &a, 2).await;
    let mut a_more = Box::pin(slots.acquire_for(&a));
    let mut b_first = Box::pin(slots.acquire_for(&b));
    assert!(a_more.as_mut().now_or_never().is_none());
    assert!(b_first.as_mut().now_or_never().is_none());
    held.pop();
    // a asked first and gets it, though it holds more
    let a_got = a_more.as_mut().now_or_never();
    assert!(a_got.is_some());
    assert!(b_first.as_mut().now_or_never().is_none());
}

#[tokio::test]
async fn dropped_waiters_lose_nothing() {
    let slots = Slots::new(1);
    let flow = Flow::new(1);
    let held = slots.acquire_for(&flow).await;
    let mut gone = Box::pin(slots.acquire_for(&flow));
    assert!(gone.as_mut().now_or_never().is_none());
    drop(gone);
    drop(held);
    assert_eq!(slots.available(), 1);
    // a slot sent to a waiter that is dropped before it looks comes back
    let held = slots.acquire_for(&flow).await;
    let mut late = Box::pin(slots.acquire_for(&flow));
    assert!(late.as_mut().now_or_never().is_none());
    drop(held);
    drop(late);
    assert_eq!(slots.available(), 1);
    assert!(slots.state.lock().lanes.is_empty());
}
