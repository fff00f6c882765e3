//! `dfasync`: datafusion-cli with async HTTP functions and the NOOP sink.

fn main() -> std::process::ExitCode {
    datafusion_async_udf::cli::main()
}
