//! The integration tests, one binary (one link of DataFusion instead of one per
//! file): each module is one area, against the mock API on 127.0.0.1:0.

mod adaptive;
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "ballista")]
mod cluster;
#[cfg(all(feature = "cli", feature = "ballista"))]
mod cluster_cli;
#[allow(dead_code)]
mod common;
mod concurrency;
#[cfg(feature = "cli")]
mod ctrl_c;
mod exactly_once;
mod expr_fn;
mod guards;
mod jobs;
mod journal;
#[cfg(feature = "cli")]
mod journal_cli;
mod journal_typed;
mod map_in_batches;
mod memory;
mod noop;
mod pipeline;
#[cfg(feature = "cli")]
mod procs;
mod proxy;
mod readme;
mod register;
mod resilience;
mod retries;
mod secrets;
#[cfg(feature = "cli")]
mod shell_jobs;
mod throttling;
mod tls;
mod typed;
mod typed_chunks;
