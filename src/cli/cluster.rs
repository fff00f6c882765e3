//! `dfasync scheduler`, `dfasync executor` and `dfasync --host H --port P`
//! (feature `ballista`): a Ballista 55 cluster with this crate's functions,
//! settings and codecs, and the shell as its client. Flag names follow
//! ballista-scheduler, ballista-executor and ballista-cli.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::common::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use super::args::ExecutorArgs;
use crate::AsyncRuntime;
use crate::cluster::ClusterSetup;

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Runs a scheduler on `host:port` until the process is stopped.
pub(super) async fn scheduler(host: String, port: u16) -> Result<()> {
    let address: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| DataFusionError::Configuration(format!("--bind-host/--bind-port: {e}")))?;
    let config = ClusterSetup::new().scheduler_config(SchedulerConfig {
        bind_host: host,
        bind_port: port,
        ..SchedulerConfig::default()
    });
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(external)?;
    println!("Ballista scheduler listening on {address}; Ctrl-C stops it");
    tokio::select! {
        done = start_server(cluster, address, Arc::new(config)) => done.map_err(external),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Runs an executor until the process is stopped. `secret('NAME')` reads the
/// executor's environment, as it reads the shell's.
pub(super) async fn executor(args: ExecutorArgs) -> Result<()> {
    let config = ClusterSetup::new().executor_config(
        ExecutorProcessConfig {
            bind_host: args.bind_host.clone(),
            port: args.bind_port,
            grpc_port: args.bind_grpc_port,
            scheduler_host: args.scheduler_host.clone(),
            scheduler_port: args.scheduler_port,
            vcores: args.concurrent_tasks.max(1),
            ..ExecutorProcessConfig::default()
        },
        |state| {
            AsyncRuntime::from_config(state.config())?
                .secrets()
                .allow_env(true);
            Ok(())
        },
    )?;
    println!(
        "Ballista executor on {}:{} serving the scheduler at {}:{}; Ctrl-C stops it",
        args.bind_host, args.bind_port, args.scheduler_host, args.scheduler_port
    );
    start_executor_process(Arc::new(config))
        .await
        .map_err(external)
}

/// The shell's session as a client of the scheduler at `host:port`.
pub(super) async fn remote(host: &str, port: u16) -> Result<SessionContext> {
    let ctx = ClusterSetup::new()
        .remote(&format!("df://{host}:{port}"))
        .await?;
    Ok(ctx)
}
