//! Physical planning of [`AsyncCalls`]: the pipelined operator when every call is
//! one of this session's functions (and `async_udf.pipelined` is on), DataFusion's
//! `AsyncFuncExec` otherwise.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{Result, internal_err};
use datafusion::execution::context::{QueryPlanner, SessionState};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_expr::async_scalar_function::AsyncFuncExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::async_func::AsyncFuncExec;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};

use super::call::Guard;
use super::display::Redactor;
use super::exec::AsyncPipelineExec;
use super::node::AsyncCalls;
use super::shared::{Shared, SharedExec, SharedStates};
use crate::config::{self, AsyncUdfConfig, HttpConfig};
use crate::runtime::AsyncRuntime;

/// Plans [`AsyncCalls`] and [`Shared`] nodes.
#[derive(Debug)]
pub(crate) struct AsyncCallsPlanner {
    runtime: Arc<AsyncRuntime>,
    shared: SharedStates,
}

impl AsyncCallsPlanner {
    pub(crate) fn new(runtime: Arc<AsyncRuntime>) -> Self {
        Self {
            runtime,
            shared: SharedStates::default(),
        }
    }
}

#[async_trait]
impl ExtensionPlanner for AsyncCallsPlanner {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session_state: &dyn Session,
        planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if let Some(shared) = node.as_any().downcast_ref::<Shared>() {
            let state = self.shared.get(shared.id);
            let mut plan = state.plan.lock().await;
            let input = if let Some(p) = plan.as_ref() {
                Arc::clone(p)
            } else {
                let Some(session) = session_state.as_any().downcast_ref::<SessionState>() else {
                    return internal_err!("a shared subplan needs a SessionState");
                };
                let optimized = session.optimize(&shared.input)?;
                let p = planner
                    .create_physical_plan(&optimized, session_state)
                    .await?;
                *plan = Some(Arc::clone(&p));
                p
            };
            drop(plan);
            // this reference's own copy names its call columns its own way
            let schema = Arc::clone(shared.input.schema().inner());
            return Ok(Some(Arc::new(SharedExec::new(input, state, schema))));
        }
        let Some(node) = node.as_any().downcast_ref::<AsyncCalls>() else {
            return Ok(None);
        };
        let input = Arc::clone(&physical_inputs[0]);
        let input_schema = input.schema();
        let logical_schema = logical_inputs[0].schema();
        let options = session_state.config_options();
        let settings: AsyncUdfConfig = config::get(options);
        let calling = |call: &Expr| match unaliased(call) {
            Expr::ScalarFunction(f) => self.runtime.calling(&f.func),
            _ => None,
        };
        let ours = node.calls().iter().all(|c| calling(&c.expr).is_some());
        let pipelined = settings.pipelined && ours;
        let mut exprs = Vec::with_capacity(node.calls().len());
        let mut guards = Vec::with_capacity(node.calls().len());
        for call in node.calls() {
            let mut expr = unaliased(&call.expr).clone();
            let mut guard = None;
            if let (Some(when), Some(calling)) = (&call.guard, calling(&call.expr)) {
                if pipelined {
                    let when = planner.create_physical_expr(
                        when,
                        logical_schema,
                        session_state,
                        planning_ctx,
                    )?;
                    guard = Some(Guard::new(when));
                }
                expr = Guard::fold(expr, when, calling.key_arg);
            }
            let physical =
                planner.create_physical_expr(&expr, logical_schema, session_state, planning_ctx)?;
            exprs.push(Arc::new(AsyncFuncExpr::try_new(
                call.name.clone(),
                physical,
                &input_schema,
            )?));
            guards.push(guard);
        }
        if !pipelined {
            // a foreign async function cannot be told to skip rows: it runs for
            // every row, as DataFusion runs it (README, Known gaps)
            return Ok(Some(Arc::new(AsyncFuncExec::try_new(exprs, input)?)));
        }
        let http: HttpConfig = config::get(options);
        Ok(Some(Arc::new(AsyncPipelineExec::try_new(
            exprs,
            guards,
            input,
            Arc::clone(&self.runtime),
            settings.fan_out,
            Redactor::new(&http.secret_headers, http.tls_insecure),
        )?)))
    }
}

/// `e` without the aliases the optimizer puts on an extension node's
/// rewritten expressions.
fn unaliased(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unaliased(&a.expr),
        e => e,
    }
}

/// DataFusion's physical planner with this crate's extension planners.
pub(crate) struct AsyncQueryPlanner {
    planner: DefaultPhysicalPlanner,
}

impl fmt::Debug for AsyncQueryPlanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AsyncQueryPlanner")
    }
}

impl AsyncQueryPlanner {
    /// The planner of async calls on `runtime`, then `others` (the SQL
    /// surface's own nodes).
    pub(crate) fn new(
        runtime: Arc<AsyncRuntime>,
        others: Vec<Arc<dyn ExtensionPlanner + Send + Sync>>,
    ) -> Self {
        let mut planners: Vec<Arc<dyn ExtensionPlanner + Send + Sync>> =
            vec![Arc::new(AsyncCallsPlanner::new(runtime))];
        planners.extend(others);
        Self {
            planner: DefaultPhysicalPlanner::with_extension_planners(planners),
        }
    }
}

#[async_trait]
impl QueryPlanner for AsyncQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.planner
            .create_physical_plan(logical_plan, session_state)
            .await
    }
}
