//! Command-line flags of `dfasync`: datafusion-cli's (same names and meaning) plus
//! the `mock-api` subcommand.

use std::path::Path;

use clap::{Parser, Subcommand};
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
        /// Seed of the injected faults.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
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

fn non_empty(command: &str) -> Result<String, String> {
    if command.is_empty() {
        Err("-c flag expects only non empty commands".to_string())
    } else {
        Ok(command.to_string())
    }
}
