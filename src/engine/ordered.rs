//! Ordered, bounded, lazily admitted concurrent map.

use std::future::Future;
use std::sync::Arc;

use datafusion::common::{Result, internal_datafusion_err};
use futures::future::{Fuse, FusedFuture};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use super::share::current_flow;
use super::{Flow, Slot, Slots, held, lend, metrics};

/// A budget slot for the next call, once its partition's window has room (checked
/// again once the slot is ours: the window may have filled while it waited).
async fn slot(slots: &Arc<Slots>, flow: Option<&Flow>) -> Slot {
    loop {
        held::room().await;
        let slot = slots.acquire(flow).await;
        if held::has_room() {
            return slot;
        }
    }
}

/// Calls `call` on every item with at most as many calls in flight as `slots`
/// has (shared with every other user of those slots, in fair shares between the
/// flows of the queries running), and returns the results in input order.
///
/// An item is only turned into a future once a slot is held, so memory is bounded
/// by the budget rather than by the number of items. The slot is released as soon
/// as its call finishes, and lent back while the call waits to retry (see
/// [`lend`]); finished results waiting for a slower earlier item do not
/// hold one. The first `Err` is returned at once and every other call in
/// flight is dropped (cancelled).
pub async fn map_ordered<I, T, F, Fut>(
    slots: Arc<Slots>,
    items: impl IntoIterator<Item = I>,
    mut call: F,
) -> Result<Vec<T>>
where
    F: FnMut(I) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    // the query these calls serve (set by its operator)
    let flow = current_flow();
    let mut items = items.into_iter().enumerate();
    let mut next = items.next();
    // sized for the items when their number is known (a chunk's rows)
    let mut results: Vec<Option<T>> =
        Vec::with_capacity(items.size_hint().1.unwrap_or(0).min(4096));
    let mut in_flight = FuturesUnordered::new();
    // the next item's place in the queue for a slot, kept while calls finish
    // (a new request on every finished call would queue it again, at the end)
    let asking = Fuse::terminated();
    tokio::pin!(asking);

    while next.is_some() || !in_flight.is_empty() {
        if next.is_some() && asking.is_terminated() {
            asking.set(slot(&slots, flow.as_deref()).fuse());
        }
        tokio::select! {
            biased;
            Some((index, result)) = in_flight.next(), if !in_flight.is_empty() => {
                results[index] = Some(result?);
            }
            permit = &mut asking, if next.is_some() => {
                if let Some((index, item)) = next.take() {
                    results.push(None);
                    // boxed at once: a call's future (a whole HTTP exchange) is
                    // kilobytes, and every move below would copy it; the call
                    // holds its slot (given back while it waits to retry)
                    let call = Box::pin(lend::holding(flow.clone(), permit, call(item)));
                    let guard = metrics::start_call();
                    let expected = held::expect();
                    in_flight.push(async move {
                        let result = call.await;
                        guard.finish();
                        drop(expected);
                        held::call_done();
                        (index, result)
                    });
                }
                next = items.next();
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| internal_datafusion_err!("missing result")))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use datafusion::common::exec_err;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keeps_order_and_bounds_concurrency() {
        let sem = Slots::new(3);
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let out = map_ordered(sem, 0..20u64, |i| {
            let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
            async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                // later items finish sooner: completion order is reversed
                tokio::time::sleep(Duration::from_millis(100 - i * 5)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(i * 10)
            }
        })
        .await
        .unwrap();
        assert_eq!(out, (0..20).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn first_error_stops_admission() {
        let sem = Slots::new(2);
        let started = Arc::new(AtomicUsize::new(0));
        let err = map_ordered(sem, 0..100, |i| {
            let started = Arc::clone(&started);
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                if i == 3 {
                    exec_err!("row {i} failed")
                } else {
                    Ok(i)
                }
            }
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("row 3 failed"), "{err}");
        assert!(started.load(Ordering::SeqCst) <= 6);
    }

    #[tokio::test]
    async fn a_waiting_item_keeps_its_place_in_the_queue_when_a_call_ends() {
        use futures::FutureExt;
        use tokio::sync::oneshot;

        let slots = Slots::new(1);
        let (end_first, first_ends) = oneshot::channel::<()>();
        let (end_second, second_ends) = oneshot::channel::<()>();
        let ends = std::sync::Mutex::new(vec![Some(first_ends), Some(second_ends)]);
        let second_started = Arc::new(AtomicUsize::new(0));
        let started = Arc::clone(&second_started);
        let run = tokio::spawn(map_ordered(Arc::clone(&slots), 0..2usize, move |i| {
            let end = ends.lock().unwrap()[i].take().unwrap();
            let started = Arc::clone(&started);
            async move {
                started.fetch_add(i, Ordering::SeqCst);
                let _ = end.await;
                Ok(i)
            }
        }));
        // the first item holds the only slot, the second asks for it
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // another call asks after it
        let mut other = Box::pin(slots.acquire(None));
        assert!(other.as_mut().now_or_never().is_none());
        // the first call ends: its slot goes to the second item, not to the
        // later call (the item's request was not dropped and made again)
        end_first.send(()).unwrap();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(second_started.load(Ordering::SeqCst), 1);
        assert!(other.as_mut().now_or_never().is_none());
        end_second.send(()).unwrap();
        assert_eq!(run.await.unwrap().unwrap(), vec![0, 1]);
        assert!(other.as_mut().now_or_never().is_some());
    }

    #[tokio::test]
    async fn empty_input() {
        let out: Vec<u8> = map_ordered(Slots::new(1), Vec::<u8>::new(), |i| async move { Ok(i) })
            .await
            .unwrap();
        assert!(out.is_empty());
    }
}
