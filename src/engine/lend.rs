//! A call's budget slot, given back while the call waits to retry.
//!
//! A call admitted by [`map_ordered`](super::map_ordered) runs inside
//! [`holding`] its slot. When it waits before a retry (a service's
//! `Retry-After`, a backoff), [`idle`] gives the slot back to the budget for
//! the wait, and queues for one again after it (in its query's fair share), so
//! a throttled row does not keep other rows from being called: 5 % of rows
//! waiting a second each would otherwise hold most of the budget.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{Flow, Slot};

tokio::task_local! {
    static HELD: Held;
}

/// The slot a call holds, and the query it asks for another one for.
struct Held {
    flow: Option<Arc<Flow>>,
    slot: Mutex<Option<Slot>>,
}

/// Runs `call` holding `slot` (taken for `flow`); the slot is released when
/// `call` finishes or is dropped.
pub(crate) fn holding<F: Future>(
    flow: Option<Arc<Flow>>,
    slot: Slot,
    call: F,
) -> impl Future<Output = F::Output> {
    let held = Held {
        flow,
        slot: Mutex::new(Some(slot)),
    };
    HELD.scope(held, call)
}

/// Waits `delay`. A call [`holding`] a slot gives it back meanwhile and waits
/// for one after (its turn in its query's share); elsewhere, just sleeps.
pub(crate) async fn idle(delay: Duration) {
    let lent = HELD
        .try_with(|h| {
            let slot = h.slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            slot.map(|slot| (Arc::clone(slot.slots()), h.flow.clone()))
        })
        .ok()
        .flatten();
    let Some((slots, flow)) = lent else {
        tokio::time::sleep(delay).await;
        return;
    };
    // out of the calls in flight while it holds no slot
    let slot = super::metrics::out_of_flight(async {
        tokio::time::sleep(delay).await;
        slots.acquire(flow.as_deref()).await
    })
    .await;
    {
        // the scope is this task's for as long as this call runs
        let _ = HELD.try_with(|h| {
            *h.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::Slots;
    use super::*;
    use futures::FutureExt;

    #[tokio::test(start_paused = true)]
    async fn a_waiting_call_gives_its_slot_back() {
        let slots = Slots::new(1);
        let first = slots.acquire(None).await;
        let waiting = {
            let slots = Arc::clone(&slots);
            tokio::spawn(holding(None, first, async move {
                idle(Duration::from_secs(1)).await;
                slots.available()
            }))
        };
        tokio::task::yield_now().await;
        // the slot is free while the call waits: another call takes it and ends
        let other = Box::pin(slots.acquire(None)).now_or_never();
        assert!(other.is_some(), "the waiting call's slot was free");
        drop(other);
        // the call has its slot again after the wait, and frees it at its end
        assert_eq!(waiting.await.unwrap(), 0, "the call held a slot again");
        assert_eq!(slots.available(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn outside_a_call_it_only_sleeps() {
        let start = tokio::time::Instant::now();
        idle(Duration::from_millis(300)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }
}
