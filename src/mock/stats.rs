//! Request counters of the mock API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::engine::metrics::Flight;

/// Live counters, updated by the handlers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    completed: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    throttled: AtomicU64,
    refused: AtomicU64,
    max_overtaken: AtomicU64,
    proxied: AtomicU64,
    connections: AtomicU64,
    open_connections: AtomicU64,
    served: AtomicU64,
    served_us: AtomicU64,
    flight: Mutex<Flight>,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct MockStats {
    /// Requests received.
    pub requests: u64,
    /// Requests whose response was produced (not cut off by the client).
    pub completed: u64,
    /// Requests being handled now.
    pub in_flight: u64,
    /// Largest number of requests handled at once since start or the last reset.
    pub peak_in_flight: u64,
    /// 2xx answers sent by the fault-injecting routes.
    pub successes: u64,
    /// Distinct request ids among those 2xx answers.
    pub distinct_successes: u64,
    /// 429 answers sent.
    pub throttled: u64,
    /// 503 answers of a server over its `max_in_flight`.
    pub refused: u64,
    /// The most requests that arrived while one request was being handled: how far
    /// a client kept calling past its slowest call.
    pub max_overtaken: u64,
    /// Time-weighted mean of the requests handled at once, from the first request
    /// (since start or the last reset) to the last change.
    pub mean_in_flight: f64,
    /// The same mean up to the last request's arrival: how busy clients kept the
    /// server while they still had requests to send.
    pub admitting_in_flight: f64,
    /// Requests to `/echo` that arrived as to a forward proxy (an absolute URI).
    pub proxied: u64,
    /// Connections accepted since start or the last reset.
    pub connections: u64,
    /// Connections open now (kept across resets).
    pub open_connections: u64,
    /// Mean time from arrival to answer of the requests `/limited` and
    /// `/queue` served (waiting in line included), in ms.
    pub mean_served_ms: f64,
}

/// Marks one request in flight until dropped (also when the client goes away).
pub(crate) struct InFlight<'a>(&'a Counters, u64);

impl Counters {
    pub(crate) fn begin(&self) -> InFlight<'_> {
        let arrived = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        self.flight.lock().start(Instant::now());
        InFlight(self, arrived)
    }

    pub(crate) fn snapshot(&self) -> MockStats {
        let flight = self.flight.lock().snapshot();
        MockStats {
            mean_in_flight: flight.mean,
            admitting_in_flight: flight.admitting,
            requests: self.requests.load(Ordering::SeqCst),
            completed: self.completed.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            peak_in_flight: self.peak_in_flight.load(Ordering::SeqCst),
            throttled: self.throttled.load(Ordering::SeqCst),
            refused: self.refused.load(Ordering::SeqCst),
            max_overtaken: self.max_overtaken.load(Ordering::SeqCst),
            proxied: self.proxied.load(Ordering::SeqCst),
            connections: self.connections.load(Ordering::SeqCst),
            open_connections: self.open_connections.load(Ordering::SeqCst),
            mean_served_ms: {
                let n = self.served.load(Ordering::SeqCst);
                let us = self.served_us.load(Ordering::SeqCst);
                if n == 0 {
                    0.0
                } else {
                    us as f64 / n as f64 / 1000.0
                }
            },
            ..MockStats::default()
        }
    }

    /// Zeroes the totals; the peak restarts from the requests in flight now,
    /// and open connections stay counted.
    pub(crate) fn reset(&self) {
        self.requests.store(0, Ordering::SeqCst);
        self.completed.store(0, Ordering::SeqCst);
        self.throttled.store(0, Ordering::SeqCst);
        self.refused.store(0, Ordering::SeqCst);
        self.max_overtaken.store(0, Ordering::SeqCst);
        self.proxied.store(0, Ordering::SeqCst);
        self.connections.store(0, Ordering::SeqCst);
        self.served.store(0, Ordering::SeqCst);
        self.served_us.store(0, Ordering::SeqCst);
        *self.flight.lock() = Flight::default();
        self.peak_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

impl Counters {
    pub(crate) fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::SeqCst);
    }

    /// A request of `/limited` or `/queue` was served `took` after it arrived.
    pub(crate) fn served(&self, took: std::time::Duration) {
        self.served.fetch_add(1, Ordering::SeqCst);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.served_us.fetch_add(us, Ordering::SeqCst);
    }

    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::SeqCst);
    }

    /// Requests being handled now.
    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub(crate) fn proxied(&self) {
        self.proxied.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::SeqCst);
        self.open_connections.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::SeqCst);
    }
}

impl InFlight<'_> {
    /// The response is ready.
    pub(crate) fn complete(self) {
        self.0.completed.fetch_add(1, Ordering::SeqCst);
        let overtaken = self
            .0
            .requests
            .load(Ordering::SeqCst)
            .saturating_sub(self.1);
        self.0.max_overtaken.fetch_max(overtaken, Ordering::SeqCst);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.flight.lock().end(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_and_in_flight() {
        let c = Counters::default();
        let a = c.begin();
        let b = c.begin();
        assert_eq!(c.snapshot().peak_in_flight, 2);
        a.complete();
        assert_eq!(c.snapshot().max_overtaken, 1, "b arrived while a ran");
        drop(b);
        let s = c.snapshot();
        assert_eq!(
            (s.requests, s.completed, s.in_flight, s.peak_in_flight),
            (2, 1, 0, 2)
        );
        c.reset();
        assert_eq!(c.snapshot(), MockStats::default());
    }
}
