//! `AsyncPipelineExec`: evaluates async column functions with calls flowing
//! across batch boundaries.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::RecordBatch;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, Statistics, internal_err};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::async_scalar_function::AsyncFuncExpr;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::async_func::AsyncFuncExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, RecordOutput,
};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::future::try_join_all;
use futures::{FutureExt, StreamExt};

use super::call::{Guard, invoke};
use super::display::Redactor;
use crate::config::{self, AsyncUdfConfig};
use crate::engine::{Accounts, CallStats, ChunkContext, Counted, Window, pipeline};
use crate::runtime::AsyncRuntime;

/// Appends one column per async expression to its input, like DataFusion's
/// `AsyncFuncExec`, but pipelined: see the [module](super) documentation.
#[derive(Debug)]
pub struct AsyncPipelineExec {
    input: Arc<dyn ExecutionPlan>,
    async_exprs: Vec<Arc<AsyncFuncExpr>>,
    /// Each call's guard, if it has one (see [`super::guard`]).
    guards: Vec<Option<Guard>>,
    runtime: Arc<AsyncRuntime>,
    fan_out: bool,
    redactor: Redactor,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    stats: Arc<CallStats>,
    /// Rows no guard needed: not called.
    skipped: Count,
}

impl AsyncPipelineExec {
    pub(crate) fn try_new(
        async_exprs: Vec<Arc<AsyncFuncExpr>>,
        guards: Vec<Option<Guard>>,
        input: Arc<dyn ExecutionPlan>,
        runtime: Arc<AsyncRuntime>,
        fan_out: bool,
        redactor: Redactor,
    ) -> Result<Self> {
        // the same output schema and properties as the node it replaces
        let stock = AsyncFuncExec::try_new(async_exprs.clone(), Arc::clone(&input))?;
        let metrics = ExecutionPlanMetricsSet::new();
        // the HTTP functions' name for answers that asked to slow down
        let stats = CallStats::registered(&metrics, "http_429");
        let skipped = MetricBuilder::new(&metrics).global_counter("rows_skipped");
        crate::engine::adaptive_view::register(&metrics, runtime.adaptive());
        if guards.len() != async_exprs.len() {
            return internal_err!("AsyncPipelineExec: one guard (or none) per call");
        }
        Ok(Self {
            input,
            async_exprs,
            guards,
            runtime,
            fan_out,
            redactor,
            properties: Arc::clone(stock.properties()),
            metrics,
            stats,
            skipped,
        })
    }

    /// Whether DataFusion may spread its input over partitions.
    pub fn fans_out(&self) -> bool {
        self.fan_out
    }

    /// The calls, for a plan codec.
    #[cfg(feature = "ballista")]
    pub(crate) fn async_exprs(&self) -> &[Arc<AsyncFuncExpr>] {
        &self.async_exprs
    }

    /// The calls' guards, for a plan codec.
    #[cfg(feature = "ballista")]
    pub(crate) fn guards(&self) -> &[Option<Guard>] {
        &self.guards
    }

    /// For per-chunk functions: the rows they are called with (a non-NULL
    /// argument, the guard folded into it) are the ones that count toward
    /// `async_udf.chunk_size`.
    fn counted(&self) -> Option<Counted> {
        let args: Vec<Arc<dyn PhysicalExpr>> = self
            .async_exprs
            .iter()
            .filter_map(|e| {
                let f = e.func.downcast_ref::<ScalarFunctionExpr>()?;
                self.runtime
                    .per_chunk(f.fun())
                    .then(|| f.args().first().cloned())?
            })
            .collect();
        if args.is_empty() {
            return None;
        }
        Some(Counted(Arc::new(move |batch: &RecordBatch| {
            let n = batch.num_rows();
            let mut counted = vec![false; n];
            for arg in &args {
                let values = arg.evaluate(batch)?.into_array(n)?;
                for (row, c) in counted.iter_mut().enumerate() {
                    *c |= values.is_valid(row);
                }
            }
            Ok(counted)
        })))
    }
}

impl DisplayAs for AsyncPipelineExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exprs: Vec<String> = self
            .async_exprs
            .iter()
            .zip(&self.guards)
            .map(|(e, guard)| {
                let when = guard
                    .as_ref()
                    .map(|g| format!(", when={}", self.redactor.show(&g.when)))
                    .unwrap_or_default();
                format!(
                    "async_expr(name={}, expr={}{when})",
                    e.name(),
                    self.redactor.show(&e.func)
                )
            })
            .collect();
        match t {
            DisplayFormatType::TreeRender => {
                write!(f, "async_expr={}{}", exprs.join(", "), self.redactor.note())
            }
            _ => write!(
                f,
                "AsyncPipelineExec: async_expr=[{}]{}",
                exprs.join(", "),
                self.redactor.note()
            ),
        }
    }
}

impl ExecutionPlan for AsyncPipelineExec {
    fn name(&self) -> &'static str {
        "AsyncPipelineExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![self.fan_out]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let guards = self.guards.iter().flatten().map(|g| Arc::clone(&g.when));
        for e in self
            .async_exprs
            .iter()
            .map(|e| Arc::clone(e) as Arc<dyn PhysicalExpr>)
            .chain(guards)
        {
            if f(&e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::try_new(
            self.async_exprs.clone(),
            self.guards.clone(),
            children.swap_remove(0),
            Arc::clone(&self.runtime),
            self.fan_out,
            self.redactor.clone(),
        )?))
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
        self.stats
            .budget
            .store(settings.max_in_flight.get(), Ordering::Relaxed);
        let counted = self.counted();
        let per_row = counted.is_none();
        let window = Window {
            chunk_size: settings.chunk_size.get(),
            // chunks of per-row functions are the engine's own: sized by bytes
            by_bytes: per_row,
            counted,
            max_chunks: usize::MAX,
            max_rows: settings.window_rows(),
            // every function of the operator is called once per row
            calls_per_row: if per_row { self.async_exprs.len() } else { 0 },
            max_bytes: settings.window_bytes,
            batch_size: options.execution.batch_size.get(),
            // the functions take one slot of the budget per call themselves
            permits: None,
        };
        let reservation = MemoryConsumer::new(format!("AsyncPipelineExec[{partition}]"))
            .register(context.memory_pool());
        let schema = self.schema();
        let calls: Arc<Vec<(Arc<AsyncFuncExpr>, Option<Guard>)>> = Arc::new(
            self.async_exprs
                .iter()
                .cloned()
                .zip(self.guards.iter().cloned())
                .collect(),
        );
        let out_schema = Arc::clone(&schema);
        let skipped = self.skipped.clone();
        let call = Arc::new(move |_cx: ChunkContext, chunk: RecordBatch| {
            let (calls, options, schema, skipped) = (
                Arc::clone(&calls),
                Arc::clone(&options),
                Arc::clone(&out_schema),
                skipped.clone(),
            );
            async move {
                let columns = try_join_all(calls.iter().map(|(e, guard)| {
                    invoke(e, guard.as_ref(), &chunk, Arc::clone(&options), &skipped)
                }))
                .await?;
                let mut arrays = chunk.columns().to_vec();
                arrays.extend(columns);
                Ok(vec![RecordBatch::try_new(schema, arrays)?])
            }
            .boxed()
        });
        let sinks = vec![Arc::clone(&self.stats)];
        let flow = Some(self.runtime.queries().flow_of(&context));
        let input = self.input.execute(partition, context)?;
        let accounts = Accounts {
            sinks,
            reservation,
            flow,
        };
        let stream = pipeline(
            partition,
            input,
            Arc::clone(&schema),
            window,
            call,
            accounts,
        );
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let stream = stream.map(move |b| b.map(|b| b.record_output(&baseline)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    /// One output row per input row; nothing known about the new columns.
    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let rows = input_stats
            .first()
            .map_or(Precision::Absent, |s| s.num_rows);
        Ok(Arc::new(
            Statistics::new_unknown(&self.schema()).with_num_rows(rows),
        ))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}
