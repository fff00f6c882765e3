//! Sessions for a Ballista cluster: the client's, the scheduler's and each
//! executor's, all built by one [`ClusterSetup`].

use std::fmt;
use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_executor::executor_process::ExecutorProcessConfig;
use ballista_scheduler::config::SchedulerConfig;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::{AsyncLogicalCodec, AsyncPhysicalCodec};
use crate::config;
use crate::register::register_all;

/// An application's own registrations (typed functions, handlers), run on
/// every session the setup builds.
type Registration = Arc<dyn Fn(&mut SessionState) -> Result<()> + Send + Sync>;

/// Builds the sessions of a Ballista cluster with this crate on them: the
/// client's (planning), the scheduler's (physical planning) and each
/// executor's (running the calls), with this crate's functions, settings,
/// codecs, and the application's own registrations.
///
/// Typed functions ([`AsyncFn`](crate::AsyncFn)) and handlers are Rust code,
/// so the client and every executor must register the same ones: give them to
/// [`with_registration`](Self::with_registration) in code both sides run.
///
/// ```no_run
/// # async fn demo() -> datafusion::common::Result<()> {
/// use datafusion_async_udf::AsyncFn;
/// use datafusion_async_udf::cluster::ClusterSetup;
///
/// let setup = ClusterSetup::new().with_registration(|state| {
///     AsyncFn::per_row("shout", |s: String| async move { Ok::<_, String>(s.to_uppercase()) })?
///         .register(state)
/// });
/// // an in-process scheduler with two executors, and a client of it
/// let ctx = setup.standalone(2, 2).await?;
/// ctx.sql("SELECT shout('hi')").await?.show().await?;
/// # Ok(())
/// # }
/// ```
///
/// Each session the setup builds has its own
/// [`AsyncRuntime`](crate::AsyncRuntime): `async_udf.max_in_flight`, the rate
/// limits and `Retry-After` pauses hold per executor process.
#[derive(Clone, Default)]
pub struct ClusterSetup {
    registrations: Vec<Registration>,
}

impl fmt::Debug for ClusterSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSetup")
            .field("registrations", &self.registrations.len())
            .finish()
    }
}

impl ClusterSetup {
    /// A setup with this crate's functions only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also runs `f` on every session: register typed functions and handlers
    /// here (`AsyncFn::register(state)`, `register_handler(state, …)`).
    pub fn with_registration(
        mut self,
        f: impl Fn(&mut SessionState) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.registrations.push(Arc::new(f));
        self
    }

    /// A session config with Ballista's settings, this crate's codecs and its
    /// `async_udf.` and `http.` namespaces (so that a scheduler and executors
    /// take the client's `SET`s).
    pub fn config(&self) -> SessionConfig {
        let mut config = SessionConfig::new_with_ballista()
            .with_ballista_logical_extension_codec(Arc::new(AsyncLogicalCodec::default()))
            .with_ballista_physical_extension_codec(Arc::new(AsyncPhysicalCodec::default()));
        config::install(config.options_mut());
        config
    }

    /// A new session state on `config`, with everything registered: what a
    /// scheduler plans with and an executor runs with (each call makes a new
    /// runtime, so call it once per process).
    pub fn state_with(&self, config: SessionConfig) -> Result<SessionState> {
        let mut state = SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .build();
        self.register(&mut state)?;
        Ok(state)
    }

    /// [`state_with`](Self::state_with) on [`config`](Self::config).
    pub fn state(&self) -> Result<SessionState> {
        self.state_with(self.config())
    }

    fn register(&self, state: &mut SessionState) -> Result<()> {
        register_all(&mut *state)?;
        for f in &self.registrations {
            f(state)?;
        }
        Ok(())
    }

    /// A client of the scheduler at `url` (`df://host:port`; port 50050 when
    /// left out).
    pub async fn remote(&self, url: &str) -> Result<SessionContext> {
        let ctx = SessionContext::remote_with_state(url, self.state()?).await?;
        self.client(ctx)
    }

    /// Ballista's client state keeps only its own functions: ours go back on
    /// (the session's runtime and settings stay; the client plans, never calls).
    fn client(&self, ctx: SessionContext) -> Result<SessionContext> {
        self.register(&mut ctx.state_ref().write())?;
        Ok(ctx)
    }

    /// `config` with what a Ballista scheduler process needs from this crate:
    /// sessions built by [`state_with`](Self::state_with) on the client's
    /// settings, and the codecs. Ballista's default failure detection (an
    /// executor dead after 180 s without a heartbeat, checked every 15 s)
    /// becomes 6 s, checked every 2 s, so a lost executor's tasks run again
    /// elsewhere within about 8 s (their recorded calls replayed from a
    /// `redis://` journal); values the caller changed are kept.
    pub fn scheduler_config(&self, config: SchedulerConfig) -> SchedulerConfig {
        let setup = self.clone();
        let sessions = self.clone();
        let stock = SchedulerConfig::default();
        let mut config = config;
        if config.executor_timeout_seconds == stock.executor_timeout_seconds {
            config.executor_timeout_seconds = EXECUTOR_TIMEOUT_SECONDS;
            if config.no_executors_grace_period_seconds == stock.no_executors_grace_period_seconds {
                config.no_executors_grace_period_seconds = EXECUTOR_TIMEOUT_SECONDS;
            }
        }
        if config.expire_dead_executor_interval_seconds
            == stock.expire_dead_executor_interval_seconds
        {
            config.expire_dead_executor_interval_seconds = EXPIRE_CHECK_SECONDS;
        }
        SchedulerConfig {
            override_config_producer: Some(Arc::new(move || setup.config())),
            override_session_builder: Some(Arc::new(move |config| sessions.state_with(config))),
            override_logical_codec: Some(Arc::new(AsyncLogicalCodec::default())),
            override_physical_codec: Some(Arc::new(AsyncPhysicalCodec::default())),
            ..config
        }
    }

    /// `config` with what a Ballista executor process needs from this crate:
    /// one session state for the process (its runtime: budget, rate limits,
    /// secrets), whose functions, settings and codecs every task uses.
    /// `prepare` runs on that state first (`dfasync executor` lets `secret()`
    /// read the executor's environment there).
    pub fn executor_config(
        &self,
        config: ExecutorProcessConfig,
        prepare: impl FnOnce(&SessionState) -> Result<()>,
    ) -> Result<ExecutorProcessConfig> {
        let state = self.state()?;
        prepare(&state)?;
        let session_config = state.config().clone().upgrade_for_ballista();
        let mut config = config;
        // Ballista's default heartbeat (60 s) would outlast the scheduler's
        // timeout above
        if config.executor_heartbeat_interval_seconds
            == ExecutorProcessConfig::default().executor_heartbeat_interval_seconds
        {
            config.executor_heartbeat_interval_seconds = HEARTBEAT_SECONDS;
        }
        Ok(ExecutorProcessConfig {
            override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&state))),
            override_config_producer: Some(Arc::new(move || session_config.clone())),
            override_logical_codec: Some(Arc::new(AsyncLogicalCodec::default())),
            override_physical_codec: Some(Arc::new(AsyncPhysicalCodec::default())),
            ..config
        })
    }

    /// An in-process cluster — a scheduler and `executors` executors of
    /// `vcores` task slots each, every executor with its own runtime (budget,
    /// rate limits) — and a client of it. For tests and trials of a cluster
    /// set-up on one machine.
    pub async fn standalone(&self, executors: usize, vcores: usize) -> Result<SessionContext> {
        let setup = self.clone();
        let codec = BallistaCodec::new(
            Arc::new(AsyncLogicalCodec::default()),
            Arc::new(AsyncPhysicalCodec::default()),
        );
        let builder = Arc::new(move |config: SessionConfig| setup.state_with(config));
        let config = self.config();
        let producer = Arc::new(move || config.clone());
        let addr = ballista_scheduler::standalone::new_standalone_scheduler_with_builder(
            builder, producer, codec,
        )
        .await
        .map_err(|e| DataFusionError::Configuration(e.to_string()))?;
        let url = format!("http://localhost:{}", addr.port());
        let scheduler = connect(&url).await?;
        for _ in 0..executors.max(1) {
            let state = self.state()?;
            ballista_executor::new_standalone_executor_from_state(
                scheduler.clone(),
                vcores.max(1),
                &state,
            )
            .await
            .map_err(|e| DataFusionError::Configuration(e.to_string()))?;
        }
        self.remote(&format!("df://localhost:{}", addr.port()))
            .await
    }
}

/// How often an executor tells the scheduler it is alive (Ballista: 60 s).
const HEARTBEAT_SECONDS: u64 = 2;
/// How long the scheduler waits for a heartbeat before it declares an
/// executor dead (Ballista: 180 s).
const EXECUTOR_TIMEOUT_SECONDS: u64 = 6;
/// How often the scheduler looks for dead executors (Ballista: 15 s).
const EXPIRE_CHECK_SECONDS: u64 = 2;

/// The scheduler's gRPC client, once the scheduler listens.
async fn connect(url: &str) -> Result<SchedulerGrpcClient<tonic::transport::Channel>> {
    let mut last = None;
    for _ in 0..100 {
        match SchedulerGrpcClient::connect(url.to_string()).await {
            Ok(client) => return Ok(client),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(DataFusionError::Configuration(format!(
        "no Ballista scheduler at {url}: {}",
        last.map_or_else(String::new, |e| e.to_string())
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_executor_is_found_within_seconds_unless_the_caller_chose() {
        let setup = ClusterSetup::new();
        let config = setup.scheduler_config(SchedulerConfig::default());
        assert_eq!(config.executor_timeout_seconds, EXECUTOR_TIMEOUT_SECONDS);
        assert_eq!(
            config.expire_dead_executor_interval_seconds,
            EXPIRE_CHECK_SECONDS
        );
        assert_eq!(
            config.no_executors_grace_period_seconds,
            EXECUTOR_TIMEOUT_SECONDS
        );
        const { assert!(EXECUTOR_TIMEOUT_SECONDS + EXPIRE_CHECK_SECONDS <= 10) };
        // two heartbeats per timeout
        const { assert!(HEARTBEAT_SECONDS * 2 < EXECUTOR_TIMEOUT_SECONDS) };
        let chosen = setup.scheduler_config(SchedulerConfig {
            executor_timeout_seconds: 30,
            ..SchedulerConfig::default()
        });
        assert_eq!(chosen.executor_timeout_seconds, 30);
        let executor = setup
            .executor_config(ExecutorProcessConfig::default(), |_| Ok(()))
            .unwrap();
        assert_eq!(
            executor.executor_heartbeat_interval_seconds,
            HEARTBEAT_SECONDS
        );
    }
}
