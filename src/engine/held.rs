//! Bytes a partition's window holds, and the gate that keeps them bounded.
//!
//! The pipeline gives every running chunk a counter, inside a partition-wide
//! [`WindowBytes`]; calls that finish inside the chunk (an HTTP answer's body,
//! say) add what they now hold with [`hold`]. Before a call starts, [`room`]
//! waits while the partition holds `max` bytes or more, unless the call belongs
//! to the oldest chunk (which must progress for anything to be emitted). So no
//! more than `max` bytes plus the calls in flight are ever held, whatever the
//! rows admitted.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The bytes one partition's window holds, and its limit.
#[derive(Debug)]
pub(crate) struct WindowBytes {
    held: AtomicUsize,
    max: usize,
    /// Index of the oldest chunk not yet finished (`usize::MAX`: none).
    head: AtomicUsize,
    freed: Notify,
}

impl WindowBytes {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            held: AtomicUsize::new(0),
            max,
            head: AtomicUsize::new(usize::MAX),
            freed: Notify::new(),
        }
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
    pub chunk: usize,
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
    });
}

impl ChunkBytes {
    fn may_start(&self) -> bool {
        self.window.held() < self.window.max
            || self.window.head.load(Ordering::SeqCst) == self.chunk
    }
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
