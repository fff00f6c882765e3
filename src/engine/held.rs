//! Bytes a partition's window holds, and the gate that keeps them bounded.
//!
//! The pipeline gives every running chunk a counter, inside a partition-wide
//! [`WindowBytes`]; calls that finish inside the chunk (an HTTP answer's body,
//! say) add what they now hold with [`hold`]. Before a call starts, [`room`]
//! waits while the partition holds `max` bytes or more, unless the call belongs
//! to the oldest chunk (which must progress for anything to be emitted). A call
//! in flight counts from its start with what a row held on average so far
//! ([`expect`]), replaced by what it holds once it finishes. So about `max`
//! bytes are held, whatever the rows admitted and the calls in flight.
//!
//! Calls also report that they ended ([`call_done`]): the pipeline counts the
//! rows of running chunks that are finished (held, waiting for an earlier row)
//! apart from those still to be called, in flight or waiting to retry. And a
//! chunk's calls queue for budget slots in the order the chunk was admitted
//! ([`order`]): rows are called about in input order, so few finished rows
//! wait for a late one of an earlier chunk.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The bytes one partition's window holds, and its limit.
#[derive(Debug)]
pub(crate) struct WindowBytes {
    held: AtomicUsize,
    max: usize,
    /// Index of the oldest chunk not yet finished (`usize::MAX`: none).
    head: AtomicUsize,
    freed: Notify,
    /// What finished calls and chunks held, and over how many rows: the
    /// estimate the pipeline sizes its chunks by.
    seen_bytes: AtomicUsize,
    seen_rows: AtomicUsize,
    /// Calls of running chunks that ended.
    done: AtomicUsize,
    /// A call of a running chunk ended (a permit is kept when none waits).
    ended: Notify,
}

impl WindowBytes {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            held: AtomicUsize::new(0),
            max,
            head: AtomicUsize::new(usize::MAX),
            freed: Notify::new(),
            seen_bytes: AtomicUsize::new(0),
            seen_rows: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            ended: Notify::new(),
        }
    }

    /// Calls of running chunks that ended.
    pub(crate) fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// A chunk that ended had `calls` ended calls: they leave the count.
    pub(crate) fn forget_done(&self, calls: usize) {
        self.done.fetch_sub(calls, Ordering::SeqCst);
    }

    /// Waits until a call of a running chunk ends (at once if one ended since
    /// the last wait).
    pub(crate) async fn call_ended(&self) {
        self.ended.notified().await;
    }

    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    pub(crate) fn add(&self, bytes: usize) {
        self.held.fetch_add(bytes, Ordering::SeqCst);
    }

    /// `bytes` are no longer held: waiting calls may start.
    pub(crate) fn release(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::SeqCst);
        self.freed.notify_waiters();
    }

    /// `rows` rows held `bytes` (a finished call, a finished chunk).
    pub(crate) fn observe(&self, bytes: usize, rows: usize) {
        self.seen_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.seen_rows.fetch_add(rows, Ordering::Relaxed);
    }

    /// The mean bytes a row held so far (`None` before the first is known).
    pub(crate) fn bytes_per_row(&self) -> Option<usize> {
        let rows = self.seen_rows.load(Ordering::Relaxed);
        (rows > 0).then(|| self.seen_bytes.load(Ordering::Relaxed) / rows)
    }

    pub(crate) fn set_head(&self, chunk: usize) {
        self.head.store(chunk, Ordering::SeqCst);
        self.freed.notify_waiters();
    }
}

/// What the calls of one running chunk see.
#[derive(Debug, Clone)]
pub(crate) struct ChunkBytes {
    pub window: Arc<WindowBytes>,
    /// Bytes held by this chunk's finished calls.
    pub held: Arc<AtomicUsize>,
    /// This chunk's calls that ended.
    pub done: Arc<AtomicUsize>,
    pub chunk: usize,
    /// Where its calls stand in the queue for budget slots ([`order`]).
    pub order: u64,
}

impl ChunkBytes {
    /// The counters of chunk `chunk`, admitted now, in `window`.
    pub(crate) fn new(window: &Arc<WindowBytes>, chunk: usize) -> Self {
        Self {
            window: Arc::clone(window),
            held: Arc::new(AtomicUsize::new(0)),
            done: Arc::new(AtomicUsize::new(0)),
            chunk,
            order: next_order(),
        }
    }
}

static NEXT_ORDER: AtomicU64 = AtomicU64::new(0);

fn next_order() -> u64 {
    NEXT_ORDER.fetch_add(1, Ordering::Relaxed)
}

/// Where a call asking for a budget slot stands in its query's queue (lower
/// first): a pipeline chunk's calls stand where the chunk was admitted, among
/// the calls of chunks admitted before and after it in any partition; any
/// other request where it arrives.
pub(crate) fn order() -> u64 {
    CURRENT
        .try_with(|c| c.order)
        .unwrap_or_else(|_| next_order())
}

/// A call of the current chunk ended (no-op outside a pipeline).
pub(crate) fn call_done() {
    calls_done(1);
}

/// `n` calls of the current chunk ended, or were never needed (rows a guard
/// skipped); no-op outside a pipeline.
pub(crate) fn calls_done(n: usize) {
    if n == 0 {
        return;
    }
    let _ = CURRENT.try_with(|c| {
        c.done.fetch_add(n, Ordering::SeqCst);
        c.window.done.fetch_add(n, Ordering::SeqCst);
        c.window.ended.notify_one();
    });
}

tokio::task_local! {
    static CURRENT: ChunkBytes;
}

/// Runs `f` as the calls of one chunk.
pub(crate) async fn holding<F: Future>(chunk: ChunkBytes, f: F) -> F::Output {
    CURRENT.scope(chunk, f).await
}

/// A finished call of the current chunk now holds `bytes` (no-op outside a
/// pipeline).
pub(crate) fn hold(bytes: usize) {
    let _ = CURRENT.try_with(|c| {
        c.held.fetch_add(bytes, Ordering::SeqCst);
        c.window.add(bytes);
        c.window.observe(bytes, 1);
    });
}

impl ChunkBytes {
    fn may_start(&self) -> bool {
        self.window.held() < self.window.max
            || self.window.head.load(Ordering::SeqCst) == self.chunk
    }
}

/// What a call in flight is expected to hold, counted in its window until it
/// ends (finished, failed or cancelled).
pub(crate) struct Expected {
    window: Arc<WindowBytes>,
    bytes: usize,
}

impl Drop for Expected {
    fn drop(&mut self) {
        self.window.release(self.bytes);
    }
}

/// A call of the current chunk starts: it counts with the mean bytes per row
/// seen so far until it ends (`None` outside a pipeline).
pub(crate) fn expect() -> Option<Expected> {
    CURRENT
        .try_with(|c| {
            let bytes = c.window.bytes_per_row().unwrap_or(0);
            c.window.add(bytes);
            Expected {
                window: Arc::clone(&c.window),
                bytes,
            }
        })
        .ok()
}

/// Whether a call of the current chunk may start now (always outside a pipeline).
pub(crate) fn has_room() -> bool {
    CURRENT.try_with(ChunkBytes::may_start).unwrap_or(true)
}

/// Waits until the current chunk's partition holds less than its limit, or the
/// chunk is the oldest one (returns at once outside a pipeline).
pub(crate) async fn room() {
    // the common case, on every call: room now, no clone, no waiter
    if has_room() {
        return;
    }
    let Ok(chunk) = CURRENT.try_with(Clone::clone) else {
        return;
    };
    loop {
        let freed = chunk.window.freed.notified();
        if chunk.may_start() {
            return;
        }
        freed.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(window: &Arc<WindowBytes>, index: usize) -> ChunkBytes {
        ChunkBytes::new(window, index)
    }

    #[tokio::test]
    async fn calls_of_older_chunks_get_freed_slots_first() {
        use futures::FutureExt;

        use super::super::{Flow, Slots};
        let window = Arc::new(WindowBytes::new(usize::MAX));
        let (older, newer) = (chunk(&window, 0), chunk(&window, 1));
        let (slots, flow) = (Slots::new(1), Flow::new(1));
        let held = slots.acquire_for(&flow).await;
        // the newer chunk's call asks first
        let mut late = Box::pin(holding(newer, slots.acquire_for(&flow)));
        let mut early = Box::pin(holding(older, slots.acquire_for(&flow)));
        assert!(late.as_mut().now_or_never().is_none());
        assert!(early.as_mut().now_or_never().is_none());
        drop(held);
        assert!(late.as_mut().now_or_never().is_none());
        assert!(early.as_mut().now_or_never().is_some());
        // ends reported inside a chunk are counted in its window
        holding(chunk(&window, 2), async { call_done() }).await;
        call_done();
        assert_eq!(window.done(), 1);
    }

    #[tokio::test]
    async fn calls_in_flight_count_with_the_mean_row_until_they_end() {
        let window = Arc::new(WindowBytes::new(250));
        window.set_head(0);
        holding(chunk(&window, 1), async {
            // nothing seen yet: a call counts nothing until it holds its answer
            let first = expect();
            assert_eq!(window.held(), 0);
            hold(100);
            drop(first);
            assert_eq!((window.held(), window.bytes_per_row()), (100, Some(100)));
            let (a, b) = (expect(), expect());
            assert_eq!(window.held(), 300);
            assert!(!has_room(), "over the limit, not the oldest chunk");
            drop((a, b));
            assert_eq!(window.held(), 100);
            assert!(has_room());
        })
        .await;
        // the oldest chunk may always start a call
        holding(chunk(&window, 0), async {
            let _calls = (expect(), expect(), expect());
            assert_eq!(window.held(), 400);
            assert!(has_room());
        })
        .await;
        assert!(expect().is_none(), "outside a pipeline nothing is counted");
        assert_eq!(window.held(), 100);
    }
}
