//! `MapInBatchesExec`: the physical operator of `map_in_batches`.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};

use super::handler::{BatchHandler, HandlerArgs};
use super::stream::{Keep, map_stream};
use crate::config::{self, AsyncUdfConfig};
use crate::engine::{Accounts, Window};
use crate::runtime::AsyncRuntime;

/// Runs a handler over every chunk of its input, one output partition per input
/// partition, output in input order within a partition.
#[derive(Debug, Clone)]
pub struct MapInBatchesExec {
    input: Arc<dyn ExecutionPlan>,
    name: String,
    handler: Arc<dyn BatchHandler>,
    args: Vec<datafusion::common::ScalarValue>,
    schema: SchemaRef,
    runtime: Arc<AsyncRuntime>,
    properties: Arc<PlanProperties>,
}

impl MapInBatchesExec {
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        name: String,
        handler: Arc<dyn BatchHandler>,
        args: Vec<datafusion::common::ScalarValue>,
        schema: SchemaRef,
        runtime: Arc<AsyncRuntime>,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Incremental,
            input.boundedness(),
        );
        Self {
            input,
            name,
            handler,
            args,
            schema,
            runtime,
            properties: Arc::new(properties),
        }
    }
}

#[cfg(feature = "ballista")]
impl MapInBatchesExec {
    /// The handler's registered name and its arguments, for a plan codec.
    pub(crate) fn call(&self) -> (&str, &[datafusion::common::ScalarValue]) {
        (&self.name, &self.args)
    }
}

impl DisplayAs for MapInBatchesExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MapInBatchesExec: handler={}", self.name)?;
        if !self.args.is_empty() {
            let args: Vec<String> = self.args.iter().map(ToString::to_string).collect();
            write!(f, ", args=[{}]", args.join(", "))?;
        }
        Ok(())
    }
}

impl ExecutionPlan for MapInBatchesExec {
    fn name(&self) -> &'static str {
        "MapInBatchesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    /// Rows keep their order, but the handler's columns are not the input's:
    /// an ordering required above cannot be pushed below (an `ORDER BY` over
    /// `map_in_batches` sorts its output).
    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let me = Self::clone(&self);
        Ok(Arc::new(Self::new(
            children.swap_remove(0),
            me.name,
            me.handler,
            me.args,
            me.schema,
            me.runtime,
        )))
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

    fn with_new_children_and_same_properties(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let options = Arc::clone(context.session_config().options());
        let settings: AsyncUdfConfig = config::get(&options);
        let max_in_flight = settings.max_in_flight.get();
        let window = Window {
            chunk_size: settings.chunk_size.get(),
            counted: None,
            // a handler gets the chunks it was promised
            by_bytes: false,
            max_chunks: max_in_flight,
            max_rows: usize::MAX,
            // one call per chunk, no per-row ends to count
            calls_per_row: 0,
            max_bytes: settings.window_bytes,
            batch_size: options.execution.batch_size.get(),
            permits: Some(
                self.runtime
                    .budget()
                    .slots(max_in_flight, settings.fair_share),
            ),
        };
        let reservation = MemoryConsumer::new(format!("MapInBatchesExec[{partition}]"))
            .register(context.memory_pool());
        let args = Arc::new(HandlerArgs {
            values: self.args.clone(),
            config: options,
        });
        let flow = Some(self.runtime.queries().flow_of(&context));
        let keep = Keep {
            function: format!("map_in_batches({})", self.name),
            journal: self.runtime.journal(&settings)?,
            merger: Arc::clone(self.runtime.merger()),
        };
        Ok(map_stream(
            partition,
            self.input.execute(partition, context)?,
            Arc::clone(&self.handler),
            args,
            Arc::clone(&self.schema),
            window,
            Accounts {
                sinks: Vec::new(),
                flow,
                reservation,
            },
            keep,
        ))
    }
}
