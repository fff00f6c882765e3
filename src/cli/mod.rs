//! `dfasync`: datafusion-cli (REPL, `-c`, `-f`, `--format`, `-q`, `--maxrows`) with
//! everything of this crate registered, a progress line for long-running calls
//! (`progress`), statements in the background (`jobs`), plus `dfasync mock-api`.

mod args;
#[cfg(feature = "ballista")]
mod cluster;
mod jobs;
mod progress;
mod repl;

use std::env;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use datafusion::common::config::ConfigNonZeroUsize;
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::dataframe::DataFrame;
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionConfig;
use datafusion::execution::context::SessionState;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, GreedyMemoryPool, MemoryPool, TrackConsumersPool,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::ExplainFormat;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::object_store::ObjectStore;
use datafusion::prelude::SessionContext;
use datafusion_cli::catalog::DynamicObjectStoreCatalog;
use datafusion_cli::cli_context::CliSessionContext;
use datafusion_cli::exec;
use datafusion_cli::object_storage::instrumented::InstrumentedObjectStoreRegistry;
use datafusion_cli::pool_type::PoolType;
use datafusion_cli::print_options::PrintOptions;
use indicatif::ProgressDrawTarget;
use std::num::NonZeroUsize;

use args::{Args, Sub};

use crate::mock::{Faults, MockApi, MockConfig};

/// Entry point of the `dfasync` binary.
pub fn main() -> ExitCode {
    let args = Args::parse();
    // quiet by default; `RUST_LOG=datafusion_async_udf=debug` shows the spans
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    #[cfg(feature = "ballista")]
    match args.subcommand {
        Some(Sub::Scheduler {
            bind_host,
            bind_port,
        }) => return cluster::scheduler(bind_host, bind_port).await,
        Some(Sub::Executor(executor)) => return cluster::executor(executor).await,
        _ => {}
    }
    if let Some(Sub::MockApi {
        port,
        latency_ms,
        error_rate,
        throttle_rate,
        reset_rate,
        slow_rate,
        slow_ms,
        per_minute,
        per_second,
        max_in_flight,
        seed,
    }) = args.subcommand
    {
        let faults = Faults {
            seed,
            error_rate,
            throttle_rate,
            reset_rate,
            slow_rate,
            slow: Duration::from_millis(slow_ms),
            per_minute,
            per_second,
            max_in_flight,
        };
        let config =
            MockConfig::with_latency(Duration::from_millis(latency_ms)).with_faults(faults);
        let api = MockApi::start_on(port, config).await?;
        println!(
            "mock API listening on {} (latency {latency_ms} ms); Ctrl-C stops it",
            api.base_url()
        );
        return Ok(api.run_until_ctrl_c().await?);
    }
    if !args.quiet {
        println!("dfasync v{}", env!("CARGO_PKG_VERSION"));
    }
    if let Some(path) = &args.data_path {
        env::set_current_dir(path)?;
    }
    let registry = Arc::new(
        InstrumentedObjectStoreRegistry::new().with_profile_mode(args.object_store_profiling),
    );
    #[cfg(feature = "ballista")]
    let ctx = match (&args.host, args.port) {
        (Some(host), Some(port)) => cluster::remote(host, port).await?,
        _ => session(&args, Arc::clone(&registry)).await?,
    };
    #[cfg(not(feature = "ballista"))]
    let ctx = session(&args, Arc::clone(&registry)).await?;
    if let Some(journal) = &args.journal {
        use_journal(&ctx, journal)?;
    }
    let progress = crate::AsyncRuntime::of(&ctx)
        .ok()
        .filter(|_| progress::wanted(args.quiet))
        .map(|runtime| {
            progress::Progress::new(&Arc::default(), ProgressDrawTarget::stderr)
                .with_limits(Arc::clone(runtime.adaptive()))
        });
    let drawing = progress.clone().map(progress::spawn);
    let shell = Shell {
        ctx,
        jobs: jobs::ShellJobs::default(),
        progress,
    };
    let result = queries(&shell, args, registry).await;
    if let Some(task) = drawing {
        task.abort();
    }
    result
}

/// The session as datafusion-cli sees it: each statement it executes is a query
/// of its own (its fair share of the budget, its own progress line); `RESET` of
/// our keys restores their defaults (DataFusion's own RESET only knows the
/// `datafusion.` namespace).
pub(crate) struct Shell {
    ctx: SessionContext,
    jobs: jobs::ShellJobs,
    progress: Option<progress::Progress>,
}

#[async_trait::async_trait]
impl CliSessionContext for Shell {
    /// datafusion-cli executes each statement with a task context of its own
    /// asking: marked as a new query, whose calls the progress line follows.
    fn task_ctx(&self) -> Arc<TaskContext> {
        let mut state = self.ctx.state();
        let flow = crate::jobs::QueryTag::mark(state.config_mut());
        if let Some(progress) = &self.progress {
            progress.follow(Arc::clone(flow.stats()));
        }
        state.task_ctx()
    }

    fn session_state(&self) -> SessionState {
        self.ctx.state()
    }

    fn register_object_store(
        &self,
        url: &url::Url,
        object_store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore + 'static>> {
        self.ctx.register_object_store(url, object_store)
    }

    fn register_table_options_extension_from_scheme(&self, scheme: &str) {
        CliSessionContext::register_table_options_extension_from_scheme(&self.ctx, scheme);
    }

    async fn execute_logical_plan(&self, plan: LogicalPlan) -> Result<DataFrame> {
        match crate::config::reset_variable(&self.ctx, &plan) {
            Some(done) => {
                done?;
                let empty = LogicalPlanBuilder::empty(false).build()?;
                Ok(DataFrame::new(self.ctx.state(), empty))
            }
            None => self.ctx.execute_logical_plan(plan).await,
        }
    }
}

/// Runs the `-f` files and `-c` commands, or the REPL.
async fn queries(
    ctx: &Shell,
    args: Args,
    registry: Arc<InstrumentedObjectStoreRegistry>,
) -> Result<()> {
    let mut print_options = PrintOptions {
        format: args.format,
        quiet: args.quiet,
        maxrows: args.maxrows,
        color: args.color,
        instrumented_registry: registry,
    };
    let rc = args.rc.unwrap_or_else(|| {
        env::home_dir()
            .map(|home| home.join(".datafusionrc"))
            .filter(|p| p.exists())
            .map(|p| p.to_string_lossy().into_owned())
            .into_iter()
            .collect()
    });
    if args.command.is_empty() && args.file.is_empty() {
        if !rc.is_empty() {
            exec::exec_from_files(ctx, rc, &print_options).await?;
        }
        return repl::repl(ctx, &mut print_options)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)));
    }
    let batch = async {
        if !args.file.is_empty() {
            exec::exec_from_files(ctx, args.file, &print_options).await?;
        }
        if !args.command.is_empty() {
            repl::commands(ctx, args.command, &print_options).await?;
        }
        Ok(())
    };
    // Ctrl-C ends the commands and drops their calls in flight, also when the
    // process was started with SIGINT ignored (a background job of a script)
    tokio::select! {
        done = batch => done,
        _ = tokio::signal::ctrl_c() => {
            Err(DataFusionError::Execution("interrupted (Ctrl-C)".into()))
        }
    }
}

/// Sets `async_udf.journal` and opens it: a journal that cannot be used is
/// an error before the first statement.
fn use_journal(ctx: &SessionContext, journal: &str) -> Result<()> {
    let state = ctx.state_ref();
    let mut state = state.write();
    let options = state.config_mut().options_mut();
    options.set("async_udf.journal", journal)?;
    let settings: crate::AsyncUdfConfig = crate::config::get(options);
    drop(state);
    crate::AsyncRuntime::of(ctx)?.journal(&settings)?;
    Ok(())
}

/// A session set up like datafusion-cli's, with everything of this crate registered.
pub async fn session(
    args: &Args,
    registry: Arc<InstrumentedObjectStoreRegistry>,
) -> Result<SessionContext> {
    let mut options = ConfigOptions::from_env()?;
    if let Some(size) = args.batch_size {
        options.execution.batch_size = ConfigNonZeroUsize::try_new(size as usize)?;
    }
    if env::var_os("DATAFUSION_EXPLAIN_FORMAT").is_none() {
        options.explain.format = ExplainFormat::Tree;
    }
    if env::var_os("DATAFUSION_FORMAT_NULL").is_none() {
        options.format.null = String::from("NULL");
    }
    let config = SessionConfig::from(options).with_information_schema(true);
    let mut runtime_env = RuntimeEnvBuilder::new().with_object_store_registry(registry);
    if let Some(limit) = args.memory_limit {
        let top = NonZeroUsize::new(args.top_memory_consumers);
        let pool: Arc<dyn MemoryPool> = match (&args.mem_pool_type, top) {
            (PoolType::Fair, None) => Arc::new(FairSpillPool::new(limit)),
            (PoolType::Fair, Some(n)) => {
                Arc::new(TrackConsumersPool::new(FairSpillPool::new(limit), n))
            }
            (PoolType::Greedy, None) => Arc::new(GreedyMemoryPool::new(limit)),
            (PoolType::Greedy, Some(n)) => {
                Arc::new(TrackConsumersPool::new(GreedyMemoryPool::new(limit), n))
            }
        };
        runtime_env = runtime_env.with_memory_pool(pool);
    }
    if let Some(limit) = args.disk_limit {
        runtime_env = runtime_env.with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::OsTmpDirectory)
                .with_max_temp_directory_size(limit as u64),
        );
    }
    let runtime_env = runtime_env.build_arc()?;
    let ctx = SessionContext::new_with_config_rt(config, runtime_env).enable_url_table();
    ctx.refresh_catalogs().await?;
    ctx.register_catalog_list(Arc::new(DynamicObjectStoreCatalog::new(
        ctx.state().catalog_list().clone(),
        ctx.state_weak_ref(),
    )));
    // the command line's user owns the environment: secret('NAME') may read it,
    // scoped to the hosts of NAME_HOSTS (any host without it)
    crate::register_all(&ctx)?.secrets().allow_env(true);
    Ok(ctx)
}
