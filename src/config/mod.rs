//! Session configuration: the `async_udf.` and `http.` namespaces.
//!
//! Both are DataFusion [`ConfigExtension`]s, so `SET async_udf.max_in_flight = 128`
//! and `SHOW ALL` work, and values are read when a query *executes*: a `SET`
//! between two queries takes effect for the second one.

use std::any::Any;
use std::fmt;
use std::time::Duration;

use datafusion::common::config::{
    ConfigEntry, ConfigExtension, ConfigField, ConfigNonZeroUsize, ExtensionOptions, Visit,
};
use datafusion::common::{Result, config_datafusion_err, config_err};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{LogicalPlan, Statement};
use datafusion::prelude::SessionContext;

use crate::engine::RetryPolicy;

/// `ConfigNonZeroUsize` from a literal default.
fn non_zero(value: usize) -> ConfigNonZeroUsize {
    ConfigNonZeroUsize::try_new(value).expect("defaults are non-zero")
}

/// Collects entries for `SHOW ALL` / `information_schema.df_settings`.
struct Entries(Vec<ConfigEntry>);

impl Visit for Entries {
    fn some<V: fmt::Display>(&mut self, key: &str, value: V, description: &'static str) {
        self.0.push(ConfigEntry {
            key: key.to_string(),
            value: Some(value.to_string()),
            description: description.trim(),
        });
    }

    fn none(&mut self, key: &str, description: &'static str) {
        self.0.push(ConfigEntry {
            key: key.to_string(),
            value: None,
            description: description.trim(),
        });
    }
}

/// Declares a config namespace. Unlike DataFusion's `extensions_options!`, its
/// entries carry the full key (`http.timeout_ms`), so `SHOW ALL` and
/// `information_schema.df_settings` list them under their prefix, and a bad value
/// is reported with its key.
macro_rules! namespace {
    (
        $(#[doc = $sd:literal])*
        $name:ident = $prefix:literal {
            $( $(#[doc = $d:literal])* $field:ident : $ty:ty = $default:expr, )*
        }
    ) => {
        $(#[doc = $sd])*
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub struct $name {
            $( $(#[doc = $d])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl ConfigExtension for $name {
            const PREFIX: &'static str = $prefix;
        }

        impl ExtensionOptions for $name {
            fn as_any(&self) -> &dyn Any {
                self
            }

            fn as_any_mut(&mut self) -> &mut dyn Any {
                self
            }

            fn cloned(&self) -> Box<dyn ExtensionOptions> {
                Box::new(self.clone())
            }

            fn set(&mut self, key: &str, value: &str) -> Result<()> {
                let result = match key {
                    // `SET key = DEFAULT` (DataFusion 55's RESET does not reach extensions)
                    $( stringify!($field) if value.eq_ignore_ascii_case("default") => {
                        self.$field = $default;
                        Ok(())
                    } )*
                    $( stringify!($field) => ConfigField::set(&mut self.$field, "", value), )*
                    _ => {
                        let known = [$( stringify!($field) ),*].join(", ");
                        return config_err!("unknown setting {}.{key} (known: {known})", $prefix);
                    }
                };
                result.map_err(|e| config_datafusion_err!("{}.{key}: {}", $prefix, e.strip_backtrace()))
            }

            fn entries(&self) -> Vec<ConfigEntry> {
                let mut entries = Entries(Vec::new());
                $( ConfigField::visit(
                    &self.$field,
                    &mut entries,
                    concat!($prefix, ".", stringify!($field)),
                    concat!($( $d ),*),
                ); )*
                entries.0
            }
        }
    };
}

mod http;
mod values;

pub use http::HttpConfig;
pub use values::{IdempotencyKey, OnError, Ttl};

namespace! {
    /// Engine settings shared by every async function (`async_udf.*`).
    AsyncUdfConfig = "async_udf" {
        /// Maximum number of calls in flight at once in this SessionContext, over all
        /// async functions of this crate, all partitions and all concurrent queries
        /// (on a Ballista cluster: per executor process).
        max_in_flight: ConfigNonZeroUsize = non_zero(64),
        /// Rows per call for functions that take chunks of rows (per-row functions
        /// such as http_get always use 1).
        chunk_size: ConfigNonZeroUsize = non_zero(100),
        /// What a failed row does: 'row' makes it NULL or fills its error field,
        /// 'fail' fails the query naming the function and row (http.on_error,
        /// when set, overrides it for the HTTP functions).
        on_error: OnError = OnError::Row,
        /// Run async column functions in this crate's pipelined operator (calls keep
        /// flowing across batch boundaries, metrics in EXPLAIN ANALYZE); false keeps
        /// DataFusion's AsyncFuncExec, which waits for each batch's slowest call.
        pipelined: bool = true,
        /// Rows a partition may have admitted and not finished: waiting for a
        /// budget slot, in flight or waiting to retry. Finished rows waiting for a
        /// slower earlier row count apart, bounded by window_bytes and by 8 × this
        /// in all (how far a straggler can be overtaken). 0 = 32 × max_in_flight.
        window_rows: usize = 0,
        /// Bytes a partition's window may hold: answers of finished calls and output
        /// not yet emitted, reserved in DataFusion's memory pool (admission stops at
        /// this size or when the pool is full). A call in flight counts with the
        /// mean answer so far until its own arrives. Per-row functions' chunks are
        /// cut to about window_bytes / 16 (fewer rows when answers are large).
        window_bytes: usize = 64 * 1024 * 1024,
        /// Let DataFusion spread a single-partition input of the async operator over
        /// target_partitions (round-robin, large inputs only), so CPU work on the
        /// results runs on every core. Row order then follows no input order.
        fan_out: bool = false,
        /// Share the budget fairly between the queries running at once: when it is
        /// full, a freed slot goes to the query holding the fewest per unit of
        /// weight (one query alone still gets all of it). false: first come,
        /// first served.
        fair_share: bool = true,
        /// This query's weight in the fair share (read when it starts): a query of
        /// weight 2 gets twice the slots of one of weight 1 while both wait.
        weight: ConfigNonZeroUsize = non_zero(1),
        /// Retries of a call that failed transiently: a user function's transient
        /// `CallError`, an HTTP function's 429, 5xx or broken connection (other
        /// errors are never retried). http.max_retries, retry_initial_ms and
        /// retry_max_ms, when set, override these three for the HTTP functions.
        max_retries: u32 = 3,
        /// Upper bound of the first backoff delay in ms (full jitter, doubling).
        retry_initial_ms: u64 = 100,
        /// Cap of every backoff delay in ms, retry_after hints included.
        retry_max_ms: u64 = 30_000,
        /// Where the call journal lives: empty = off; a file path = an embedded
        /// crash-safe store (one process at a time); redis://host:port/db = a
        /// Redis server a cluster shares. Final answers are recorded before
        /// their rows leave the operator, and a rerun replays them instead of
        /// calling again.
        journal: String = String::new(),
        /// How long a recorded answer is replayed (e.g. 90s, 30m, 24h, 7d);
        /// older entries are purged.
        journal_ttl: Ttl = Ttl::default(),
    }
}

impl AsyncUdfConfig {
    /// The reorder window in rows (`window_rows`, or its default).
    pub fn window_rows(&self) -> usize {
        match self.window_rows {
            0 => self.max_in_flight.get().saturating_mul(32),
            n => n,
        }
    }

    /// The retry policy of user functions.
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        retry_policy(self.max_retries, self.retry_initial_ms, self.retry_max_ms)
    }
}

pub(crate) fn retry_policy(max_retries: u32, initial_ms: u64, max_ms: u64) -> RetryPolicy {
    RetryPolicy::new()
        .with_max_retries(max_retries)
        .with_initial(Duration::from_millis(initial_ms))
        .with_max(Duration::from_millis(max_ms))
}

/// Adds both namespaces to `options` (keeping values already set).
pub(crate) fn install(options: &mut ConfigOptions) {
    if options.extensions.get::<AsyncUdfConfig>().is_none() {
        options.extensions.insert(AsyncUdfConfig::default());
    }
    if options.extensions.get::<HttpConfig>().is_none() {
        options.extensions.insert(HttpConfig::default());
    }
}

/// Reads an extension from the options in force, or its defaults if it was never installed.
pub(crate) fn get<T: ConfigExtension + Default + Clone>(options: &ConfigOptions) -> T {
    options.extensions.get::<T>().cloned().unwrap_or_default()
}

/// Runs `plan` if it is `RESET` of one of this crate's keys (restoring its
/// default) and returns `Some`; `None` for any other plan.
///
/// DataFusion 55's `RESET` only knows the `datafusion.` namespace: for any other
/// prefix `ConfigOptions::reset` fails with `Could not find config namespace`.
/// `dfasync` and the test harness route their statements through this function;
/// an application running `RESET` itself can do the same, or write
/// `SET http.timeout_ms = DEFAULT`, which works everywhere.
pub fn reset_variable(ctx: &SessionContext, plan: &LogicalPlan) -> Option<Result<()>> {
    let LogicalPlan::Statement(Statement::ResetVariable(reset)) = plan else {
        return None;
    };
    let key = reset.variable.as_str();
    let ours = [AsyncUdfConfig::PREFIX, HttpConfig::PREFIX]
        .iter()
        .any(|p| key.strip_prefix(p).is_some_and(|k| k.starts_with('.')));
    if !ours {
        return None;
    }
    let state = ctx.state_ref();
    let mut state = state.write();
    Some(state.config_mut().options_mut().set(key, "default"))
}
