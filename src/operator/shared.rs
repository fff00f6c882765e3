//! Computed once, read several times: a CTE (or view) whose async calls are read
//! more than once.
//!
//! DataFusion inlines a CTE at every reference, so `WITH c AS (SELECT http_post(…)
//! …) SELECT … FROM c a JOIN c b …` would call every row twice. Like PostgreSQL
//! for a CTE with volatile functions, [`super::lift`] wraps each copy of such a
//! subplan in a [`Shared`] node with the same id; the physical operator
//! ([`SharedExec`]) runs the subplan once per partition, keeps its batches, and
//! gives every reference the same rows. The subplan is hidden from the optimizer
//! (the node has no children), which would otherwise push different filters and
//! projections into each copy; our planner optimizes and plans it once, apart.
//! What it keeps is reserved in the memory pool (`SharedExec[N]`) and lives until
//! the last reference is done; it is not spilled.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Weak};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::utils::memory::get_record_batch_memory_size;
use datafusion::common::{DFSchemaRef, DataFusionError, Result, internal_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::physical_plan::{ExecutionPlanProperties, Partitioning};
use futures::future::{BoxFuture, Shared as SharedFuture};
use futures::{FutureExt, StreamExt, TryStreamExt};
use parking_lot::Mutex;

/// A fresh id for one set of copies.
pub(crate) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, AtomicOrdering::Relaxed)
}

/// One reference to a subplan computed once for all references with its `id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Shared {
    pub id: u64,
    /// The subplan, kept out of the optimizer's sight.
    pub input: Arc<LogicalPlan>,
}

impl PartialOrd for Shared {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.id.partial_cmp(&other.id)
    }
}

impl UserDefinedLogicalNodeCore for Shared {
    fn name(&self) -> &'static str {
        "Shared"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        Vec::new()
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let first = self.input.display().to_string();
        write!(f, "Shared: computed once for every reference: {first}")
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        if !inputs.is_empty() {
            return internal_err!("Shared takes no input");
        }
        Ok(self.clone())
    }
}

/// A partition's batches, with their reservation in the memory pool.
type Batches =
    std::result::Result<Arc<(Vec<RecordBatch>, MemoryReservation)>, Arc<DataFusionError>>;

/// The subplan's physical plan, planned by the first reference, and the batches
/// of each partition, computed by whichever reference asks first; a reference
/// that stops early leaves the computation to the others.
pub(crate) struct SharedState {
    pub(crate) plan: tokio::sync::Mutex<Option<Arc<dyn ExecutionPlan>>>,
    partitions: Mutex<HashMap<usize, SharedFuture<BoxFuture<'static, Batches>>>>,
}

/// The states of the plans being planned or run, by id.
#[derive(Default)]
pub(crate) struct SharedStates(Mutex<HashMap<u64, Weak<SharedState>>>);

impl SharedStates {
    pub(crate) fn get(&self, id: u64) -> Arc<SharedState> {
        let mut states = self.0.lock();
        states.retain(|_, s| s.strong_count() > 0);
        if let Some(state) = states.get(&id).and_then(Weak::upgrade) {
            return state;
        }
        let state = Arc::new(SharedState {
            plan: tokio::sync::Mutex::new(None),
            partitions: Mutex::new(HashMap::new()),
        });
        states.insert(id, Arc::downgrade(&state));
        state
    }
}

impl fmt::Debug for SharedStates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedStates")
    }
}

/// One reference's operator: a leaf that reads the shared batches (`input` is
/// the subplan, run once for all references).
pub(crate) struct SharedExec {
    input: Arc<dyn ExecutionPlan>,
    state: Arc<SharedState>,
    /// This reference's schema: the copies' call columns have names of their own.
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl SharedExec {
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        state: Arc<SharedState>,
        schema: SchemaRef,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Final,
            input.boundedness(),
        );
        Self {
            input,
            state,
            schema,
            properties: Arc::new(properties),
        }
    }
}

impl fmt::Debug for SharedExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedExec")
    }
}

impl DisplayAs for SharedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedExec: computed once for every reference")
    }
}

impl ExecutionPlan for SharedExec {
    fn name(&self) -> &'static str {
        "SharedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let batches = {
            let mut partitions = self.state.partitions.lock();
            if let Some(f) = partitions.get(&partition) {
                f.clone()
            } else {
                let reservation = MemoryConsumer::new(format!("SharedExec[{partition}]"))
                    .register(context.memory_pool());
                let input = self.input.execute(partition, context)?;
                let f = input
                    .try_fold(
                        (Vec::new(), reservation),
                        |(mut kept, r), batch| async move {
                            r.try_grow(get_record_batch_memory_size(&batch))?;
                            kept.push(batch);
                            Ok((kept, r))
                        },
                    )
                    .map(|r| r.map(Arc::new).map_err(Arc::new))
                    .boxed()
                    .shared();
                partitions.insert(partition, f.clone());
                f
            }
        };
        let schema = Arc::clone(&self.schema);
        let stream = batches
            .map(move |r| match r {
                Ok(batches) => {
                    let renamed: Vec<Result<RecordBatch>> = batches
                        .0
                        .iter()
                        .map(|b| {
                            RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec())
                                .map_err(Into::into)
                        })
                        .collect();
                    futures::stream::iter(renamed).boxed()
                }
                Err(e) => {
                    futures::stream::once(async move { Err(DataFusionError::Shared(e)) }).boxed()
                }
            })
            .flatten_stream();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }
}
