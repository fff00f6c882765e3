//! Keeps DataFusion from calling a volatile function twice per row.
//!
//! DataFusion 55's `push_down_leaf_projections` rule moves `get_field` accesses
//! into the projection below, and `optimize_projections` then inlines that
//! projection: `SELECT r['status'], r['body'] FROM (SELECT http_get(u) AS r …)`
//! became two `http_get` calls per row. This wrapper runs the rule only on plans
//! without volatile expressions, so such queries call once per row and every
//! other query is optimized as before.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// The rule that duplicates volatile expressions.
const RULE: &str = "push_down_leaf_projections";

#[derive(Debug)]
struct SkipVolatile(Arc<dyn OptimizerRule + Send + Sync>);

fn has_volatile(plan: &LogicalPlan) -> bool {
    plan.exists(|node| Ok(node.expressions().iter().any(Expr::is_volatile)))
        .unwrap_or(true)
}

impl OptimizerRule for SkipVolatile {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        self.0.apply_order()
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if has_volatile(&plan) {
            Ok(Transformed::no(plan))
        } else {
            self.0.rewrite(plan, config)
        }
    }
}

/// `rules` with the rule wrapped (in place, order kept).
pub(crate) fn guarded(
    rules: &[Arc<dyn OptimizerRule + Send + Sync>],
) -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    rules
        .iter()
        .map(|r| {
            if r.name() == RULE {
                Arc::new(SkipVolatile(Arc::clone(r))) as _
            } else {
                Arc::clone(r)
            }
        })
        .collect()
}
