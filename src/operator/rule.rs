//! The physical optimizer rule that keeps a single-partition input's row order
//! through the pipelined operator.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, Partitioning};

use super::exec::AsyncPipelineExec;

/// Runs after `EnsureRequirements`: unless `async_udf.fan_out` is on, removes the
/// round-robin repartition DataFusion puts right above the operator (to spread
/// the CPU work of the projections above), so rows keep their input order.
#[derive(Debug, Default)]
pub struct KeepOrderRule;

/// Whether `plan` is, through projections only, a single-partition
/// [`AsyncPipelineExec`] that may not fan out.
fn over_unspread_pipeline(plan: &Arc<dyn ExecutionPlan>) -> bool {
    if plan.output_partitioning().partition_count() != 1 {
        return false;
    }
    if let Some(exec) = plan.downcast_ref::<AsyncPipelineExec>() {
        return !exec.fans_out();
    }
    plan.downcast_ref::<ProjectionExec>()
        .is_some_and(|p| over_unspread_pipeline(p.input()))
}

impl PhysicalOptimizerRule for KeepOrderRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _options: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(repartition) = node.downcast_ref::<RepartitionExec>() else {
                return Ok(Transformed::no(node));
            };
            if matches!(repartition.partitioning(), Partitioning::RoundRobinBatch(_))
                && over_unspread_pipeline(repartition.input())
            {
                return Ok(Transformed::yes(Arc::clone(repartition.input())));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &'static str {
        "async_pipeline_keep_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
