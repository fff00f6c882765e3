//! `MapInBatches`: the logical node of `map_in_batches(handler, input, args…)`,
//! and its physical planning into [`MapInBatchesExec`].
//!
//! The input is an ordinary child: the optimizer sees it once, `EXPLAIN` shows it,
//! and the analyzer gives its async calls their own nodes like anywhere else. No
//! filter, limit or projection is pushed through the node (a handler may drop,
//! add or reorder rows, and reads every input column).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, DFSchemaRef, Result, ScalarValue, internal_err};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};

use super::exec::MapInBatchesExec;
use super::handler::BatchHandler;
use crate::runtime::AsyncRuntime;

/// The qualifier of the output columns (`map_in_batches.status`).
const QUALIFIER: &str = "map_in_batches";

/// Runs the handler registered as `name` over `input`, chunk by chunk.
#[derive(Debug, Clone)]
pub(crate) struct MapInBatches {
    input: Arc<LogicalPlan>,
    name: String,
    handler: Arc<dyn BatchHandler>,
    args: Vec<ScalarValue>,
    schema: DFSchemaRef,
}

impl MapInBatches {
    /// The plan `map_in_batches(name, input, args…)`; a plan error when the
    /// handler rejects the input or the arguments.
    pub(crate) fn plan(
        input: LogicalPlan,
        name: &str,
        handler: Arc<dyn BatchHandler>,
        args: Vec<ScalarValue>,
    ) -> Result<LogicalPlan> {
        let node = Self::try_new(Arc::new(input), name.to_string(), handler, args)?;
        Ok(LogicalPlan::Extension(Extension {
            node: Arc::new(node),
        }))
    }

    pub(crate) fn try_new(
        input: Arc<LogicalPlan>,
        name: String,
        handler: Arc<dyn BatchHandler>,
        args: Vec<ScalarValue>,
    ) -> Result<Self> {
        let output = handler.output_schema(input.schema().inner(), &args)?;
        let schema = DFSchema::try_from_qualified_schema(QUALIFIER, &output)?;
        Ok(Self {
            input,
            name,
            handler,
            args,
            schema: Arc::new(schema),
        })
    }
}

/// Two nodes are equal when they run the same handler name with the same
/// arguments over equal inputs (a name stands for one handler per session).
impl PartialEq for MapInBatches {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.args == other.args && self.input == other.input
    }
}

impl Eq for MapInBatches {}

impl Hash for MapInBatches {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.args.hash(state);
        self.input.hash(state);
    }
}

impl PartialOrd for MapInBatches {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.name.cmp(&other.name) {
            Ordering::Equal => match self.args.partial_cmp(&other.args) {
                Some(Ordering::Equal) => self.input.partial_cmp(&other.input),
                o => o,
            },
            o => Some(o),
        }
    }
}

#[cfg(feature = "ballista")]
impl MapInBatches {
    /// The handler's registered name and its arguments, for a plan codec.
    pub(crate) fn call(&self) -> (&str, &[ScalarValue]) {
        (&self.name, &self.args)
    }
}

impl UserDefinedLogicalNodeCore for MapInBatches {
    fn name(&self) -> &'static str {
        "MapInBatches"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "MapInBatches: handler={}", self.name)?;
        if !self.args.is_empty() {
            let args: Vec<String> = self.args.iter().map(ToString::to_string).collect();
            write!(f, ", args=[{}]", args.join(", "))?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        if inputs.len() != 1 || !exprs.is_empty() {
            return internal_err!("MapInBatches takes one input and no expressions");
        }
        Self::try_new(
            Arc::new(inputs.swap_remove(0)),
            self.name.clone(),
            Arc::clone(&self.handler),
            self.args.clone(),
        )
    }
}

/// Plans [`MapInBatches`] nodes into [`MapInBatchesExec`] on the session's
/// budget.
#[derive(Debug)]
pub(crate) struct MapInBatchesPlanner {
    runtime: Arc<AsyncRuntime>,
}

impl MapInBatchesPlanner {
    pub(crate) fn new(runtime: Arc<AsyncRuntime>) -> Self {
        Self { runtime }
    }
}

#[async_trait]
impl ExtensionPlanner for MapInBatchesPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session_state: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<MapInBatches>() else {
            return Ok(None);
        };
        let [input] = physical_inputs else {
            return internal_err!("MapInBatches takes one input");
        };
        Ok(Some(Arc::new(MapInBatchesExec::new(
            Arc::clone(input),
            node.name.clone(),
            Arc::clone(&node.handler),
            node.args.clone(),
            Arc::clone(node.schema.inner()),
            Arc::clone(&self.runtime),
        ))))
    }
}
