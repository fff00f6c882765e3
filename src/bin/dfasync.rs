//! `dfasync`: datafusion-cli with async HTTP functions and the NOOP sink.

// datafusion-cli's binary allocator: fewer instructions per call than the
// system allocator (the library leaves the choice to its embedder)
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    datafusion_async_udf::cli::main()
}
