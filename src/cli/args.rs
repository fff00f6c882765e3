//! Command-line flags of `dfasync`: datafusion-cli's (same names and meaning) plus
//! the `mock-api` subcommand.

use std::path::Path;

use clap::{Parser, Subcommand};
use datafusion_cli::object_storage::instrumented::InstrumentedObjectStoreMode;
use datafusion_cli::pool_type::PoolType;
use datafusion_cli::print_format::PrintFormat;
use datafusion_cli::print_options::MaxRows;

#[derive(Debug, Parser)]
#[command(
    name = "dfasync",
    version,
    about = "datafusion-cli with async functions (http_get, http_post) and the NOOP sink",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    pub subcommand: Option<Sub>,

    #[arg(short = 'p', long, help = "Path to your data, default to current directory", value_parser = valid_dir)]
    pub data_path: Option<String>,

    #[arg(short = 'b', long, help = "The batch size of each query, or use DataFusion default", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: Option<u64>,

    #[arg(
        short = 'c',
        long,
        num_args = 0..,
        help = "Execute the given command string(s), then exit. Commands are expected to be non empty.",
        value_parser = non_empty
    )]
    pub command: Vec<String>,

    #[arg(short, long, num_args = 0.., help = "Execute commands from file(s), then exit", value_parser = valid_file)]
    pub file: Vec<String>,

    #[arg(
        short = 'r',
        long,
        num_args = 0..,
        help = "Run the provided files on startup instead of ~/.datafusionrc",
        value_parser = valid_file,
        conflicts_with = "file"
    )]
    pub rc: Option<Vec<String>>,

    #[arg(long, value_enum, default_value_t = PrintFormat::Automatic)]
    pub format: PrintFormat,

    #[arg(
        short,
        long,
        help = "Reduce printing other than the results and work quietly"
    )]
    pub quiet: bool,

    #[arg(
        long,
        help = "The max number of rows to display for 'Table' format\n[possible values: numbers(0/10/...), inf(no limit)]",
        default_value = "40"
    )]
    pub maxrows: MaxRows,

    #[arg(long, help = "Enables console syntax highlighting")]
    pub color: bool,

    #[arg(
        short = 'm',
        long,
        help = "The memory pool limitation (e.g. '10g'), default to None (no limit)",
        value_parser = memory_size
    )]
    pub memory_limit: Option<usize>,

    #[arg(
        long,
        help = "Specify the memory pool type 'greedy' or 'fair'",
        default_value_t = PoolType::Greedy
    )]
    pub mem_pool_type: PoolType,

    #[arg(
        long,
        help = "The number of top memory consumers to display when query fails due to memory exhaustion. To disable memory consumer tracking, set this value to 0",
        default_value = "3"
    )]
    pub top_memory_consumers: usize,

    #[arg(
        short = 'd',
        long,
        help = "Available disk space for spilling queries (e.g. '10g'), default to None (uses DataFusion's default value of '100g')",
        value_parser = memory_size
    )]
    pub disk_limit: Option<usize>,

    #[arg(
        long,
        help = "Specify the default object_store_profiling mode, defaults to 'disabled'.\n[possible values: disabled, summary, trace]",
        default_value_t = InstrumentedObjectStoreMode::Disabled
    )]
    pub object_store_profiling: InstrumentedObjectStoreMode,

    /// The call journal (`async_udf.journal`): a file path, or
    /// `redis://host:port/db` for a cluster.
    #[arg(
        long,
        help = "Record every call's final answer in this journal (a file, or redis://host:port/db) and replay answered calls on a rerun"
    )]
    pub journal: Option<String>,

    /// Run the statements on the Ballista scheduler at this host (with
    /// `--port`), as ballista-cli does.
    #[cfg(feature = "ballista")]
    #[arg(long, requires = "port", help = "Ballista scheduler host")]
    pub host: Option<String>,

    #[cfg(feature = "ballista")]
    #[arg(long, requires = "host", help = "Ballista scheduler port")]
    pub port: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Run the bundled mock API (TheCatAPI's `GET /v1/images/search`, `/echo`,
    /// `/status/{code}`, `/stats`) on 127.0.0.1 until Ctrl-C.
    MockApi {
        /// Port on 127.0.0.1 (0 = any free port).
        #[arg(long, default_value_t = 8089)]
        port: u16,
        /// Delay before every response, in milliseconds.
        #[arg(long, default_value_t = 350)]
        latency_ms: u64,
        /// Fraction of requests answered 503.
        #[arg(long, default_value_t = 0.0)]
        error_rate: f64,
        /// Fraction of requests answered 429 with `Retry-After: 1`.
        #[arg(long, default_value_t = 0.0)]
        throttle_rate: f64,
        /// Fraction of requests whose connection breaks mid-response.
        #[arg(long, default_value_t = 0.0)]
        reset_rate: f64,
        /// Fraction of requests answered after --slow-ms.
        #[arg(long, default_value_t = 0.0)]
        slow_rate: f64,
        /// Delay of slow answers, in milliseconds.
        #[arg(long, default_value_t = 60_000)]
        slow_ms: u64,
        /// Requests allowed per minute, 429 beyond (TheCatAPI's free tier: 120; 0 = no limit).
        #[arg(long, default_value_t = 0)]
        per_minute: u32,
        /// Requests allowed per second, 429 at once beyond (0 = no limit).
        #[arg(long, default_value_t = 0)]
        per_second: u32,
        /// Requests handled at once, 503 at once beyond (0 = no limit).
        #[arg(long, default_value_t = 0)]
        max_in_flight: u32,
        /// Seed of the injected faults.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// A Ballista scheduler with this crate's functions and codecs.
    #[cfg(feature = "ballista")]
    Scheduler {
        #[arg(long, default_value = "0.0.0.0")]
        bind_host: String,
        #[arg(long, default_value_t = 50050)]
        bind_port: u16,
    },
    /// A Ballista executor with this crate's functions, codecs and runtime.
    #[cfg(feature = "ballista")]
    Executor(ExecutorArgs),
}

/// Where an executor listens and which scheduler it serves (flags as
/// ballista-executor's).
#[cfg(feature = "ballista")]
#[derive(Debug, Clone, clap::Args)]
pub struct ExecutorArgs {
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_host: String,
    #[arg(long, default_value_t = 50051)]
    pub bind_port: u16,
    #[arg(long, default_value_t = 50052)]
    pub bind_grpc_port: u16,
    #[arg(long, default_value = "localhost")]
    pub scheduler_host: String,
    #[arg(long, default_value_t = 50050)]
    pub scheduler_port: u16,
    #[arg(long, default_value_t = 4)]
    pub concurrent_tasks: usize,
}

fn valid_file(path: &str) -> Result<String, String> {
    if Path::new(path).is_file() {
        Ok(path.to_string())
    } else {
        Err(format!("Invalid file '{path}'"))
    }
}

fn valid_dir(path: &str) -> Result<String, String> {
    if Path::new(path).is_dir() {
        Ok(path.to_string())
    } else {
        Err(format!("Invalid data directory '{path}'"))
    }
}

/// A size as datafusion-cli takes it: a number with an optional unit `b`, `k`,
/// `kb`, `m`, `mb`, `g`, `gb`, `t`, `tb` (powers of 1024, any case).
pub fn memory_size(size: &str) -> Result<usize, String> {
    let lower = size.trim().to_ascii_lowercase();
    let digits = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits);
    let number: usize = number
        .parse()
        .map_err(|_| format!("Invalid size '{size}' (e.g. 256m, 10g)"))?;
    let shift = match unit {
        "" | "b" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        "t" | "tb" => 40,
        _ => return Err(format!("Invalid size '{size}' (e.g. 256m, 10g)")),
    };
    number
        .checked_mul(1usize << shift)
        .ok_or_else(|| format!("size '{size}' is too large"))
}

fn non_empty(command: &str) -> Result<String, String> {
    if command.is_empty() {
        Err("-c flag expects only non empty commands".to_string())
    } else {
        Ok(command.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::memory_size;

    #[test]
    fn sizes_like_datafusion_cli() {
        assert_eq!(memory_size("256M"), Ok(256 << 20));
        assert_eq!(memory_size("10g"), Ok(10 << 30));
        assert_eq!(memory_size("1kb"), Ok(1024));
        assert_eq!(memory_size("42"), Ok(42));
        assert!(memory_size("lots").is_err());
        assert!(memory_size("5x").is_err());
        assert!(memory_size("99999999999t").is_err());
    }
}
