//! The engine: runs one async call per row or per chunk of rows, many at once.
//!
//! It knows nothing of HTTP. A client (an HTTP function, a user closure,
//! `map_in_batches`) hands it a list of work items and an async function; the
//! engine admits items lazily while the shared [`Budget`] has room, and returns
//! the results in input order.
//!
//! * **Budget scope.** One [`Budget`] per [`crate::register_all`] call, i.e. per
//!   `SessionContext`. It bounds the calls in flight at once over *all* async
//!   functions of this crate, all partitions of a query and all queries running
//!   concurrently on that context. Its size is `async_udf.max_in_flight`, read at
//!   execution time.
//! * **Fair shares** ([`share`]): the queries running at once share the budget
//!   by weight (each query's calls are one [`Flow`]); one query alone gets all of it.
//! * **Order.** Results are returned in input order whatever order calls finish in.
//! * **Memory.** At most `max_in_flight` calls exist at a time: items not yet
//!   admitted are not turned into futures.
//! * **Retries** ([`retry`]): exponential backoff with full jitter, a service's hint
//!   (HTTP `Retry-After`) honoured and capped, an overall deadline; a call
//!   waiting to retry gives its budget slot back for the wait ([`lend`]).
//! * **Rate limits** ([`RateLimits`]): requests per second per key, shared by the
//!   session, and pauses per key; adaptive limits per key ([`Adaptive`]: calls in
//!   flight and send rate following the answers' signals).
//! * **Pipelining** ([`pipeline`]): chunks of a partition's batches admitted as the
//!   window frees, across batch boundaries, output in input order.
//! * **Metrics** ([`metrics`]): calls, retries, throttled answers, errors by kind, calls in
//!   flight (peak, mean), latency percentiles, rate-limiter wait.
//! * **Journal** ([`journal`]): final answers recorded under keys the functions
//!   give, replayed by a rerun; identical idempotent calls in flight merged.
//! * **Cancellation.** Nothing is spawned: dropping the returned future (a
//!   cancelled query, a satisfied `LIMIT`) drops every call in flight, and the
//!   first `Err` drops the rest.

mod adaptive;
pub(crate) mod adaptive_view;
mod budget;
mod chunks;
mod context;
mod flight;
pub(crate) mod held;
pub(crate) mod journal;
mod lend;
mod metric_view;
pub mod metrics;
mod ordered;
mod pipeline;
mod rate;
mod retry;
mod share;
mod window;

pub use adaptive::{Adaptive, Key as AdaptiveKey, KeyReport, KeySlot, Reason, Rules, Signal};
pub use budget::Budget;
pub use chunks::Counted;
pub use chunks::chunk_ranges;
pub use context::{ChunkContext, current_chunk};
pub use metrics::CallStats;
pub use ordered::map_ordered;
pub use pipeline::{Accounts, pipeline};
pub use rate::RateLimits;
pub use retry::{GaveUp, RetryPolicy, Verdict, retry};
pub use share::{Flow, Slot, Slots, current_flow};
pub use window::Window;
