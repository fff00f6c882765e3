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
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
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

/// `state` with the rule wrapped (in place, order kept), or `None` if the rule is
/// absent. Called once per session, by the first `register_all`.
pub(crate) fn guard(state: &SessionState) -> Option<SessionState> {
    let at = state.optimizers().iter().position(|r| r.name() == RULE)?;
    let mut rules = state.optimizers().to_vec();
    rules[at] = Arc::new(SkipVolatile(Arc::clone(&rules[at])));
    Some(
        SessionStateBuilder::new_from_existing(state.clone())
            .with_optimizer_rules(rules)
            .build(),
    )
}
