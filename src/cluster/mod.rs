//! Running on a [Ballista] 55 cluster (feature `ballista`).
//!
//! Everything of this crate runs on the executors: the `http_*` functions,
//! typed [`AsyncFn`](crate::AsyncFn)s, `map_in_batches` with its handlers,
//! `secret()`, the NOOP sink. The client plans; the scheduler plans the
//! physical operators and cuts them into stages; each executor decodes its
//! tasks with this crate's [codecs](AsyncPhysicalCodec) and runs the calls on
//! its own [`AsyncRuntime`](crate::AsyncRuntime). `SET async_udf.*` /
//! `http.*` on the client travel with every task.
//!
//! **Budgets are per executor.** `async_udf.max_in_flight`,
//! `http.requests_per_second` and `Retry-After` pauses hold in one executor
//! process: a cluster of `E` executors has up to `E × max_in_flight` calls in
//! flight and sends up to `E × requests_per_second` requests per second to a
//! host. To keep a cluster-wide promise of `B` calls in flight and `R`
//! requests per second, set `max_in_flight = B / E` and
//! `requests_per_second = R / E`.
//!
//! [Ballista]: https://datafusion.apache.org/ballista/

mod logical;
mod physical;
mod setup;
mod wire;

pub use logical::AsyncLogicalCodec;
pub use physical::AsyncPhysicalCodec;
pub use setup::ClusterSetup;
