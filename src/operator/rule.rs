//! The physical optimizer rule: checks where async calls stand, and swaps
//! DataFusion's `AsyncFuncExec` for [`AsyncPipelineExec`] when every function in
//! it belongs to this crate's runtime.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, plan_err};
use datafusion::config::ConfigOptions;
use datafusion::physical_expr::async_scalar_function::AsyncFuncExpr;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::async_func::AsyncFuncExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, Partitioning};

use super::display::Redactor;
use super::exec::AsyncPipelineExec;
use crate::config::{self, AsyncUdfConfig, HttpConfig};
use crate::runtime::AsyncRuntime;

/// The rule of one session (it knows that session's runtime).
#[derive(Debug)]
pub struct AsyncPipelineRule {
    runtime: Arc<AsyncRuntime>,
}

impl AsyncPipelineRule {
    pub fn new(runtime: Arc<AsyncRuntime>) -> Self {
        Self { runtime }
    }
}

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

    fn name(&self) -> &str {
        "async_pipeline_keep_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The async function called by `e`, if `e` is an async call.
fn async_call(e: &Arc<dyn PhysicalExpr>) -> Option<&ScalarFunctionExpr> {
    e.downcast_ref::<ScalarFunctionExpr>()
        .filter(|f| f.fun().as_async().is_some())
}

/// The first async call within `e`.
fn find_async(e: &Arc<dyn PhysicalExpr>) -> Option<String> {
    let mut found = None;
    let _ = e.apply(|e| {
        Ok(match async_call(e) {
            Some(f) => {
                found = Some(f.name().to_string());
                TreeNodeRecursion::Stop
            }
            None => TreeNodeRecursion::Continue,
        })
    });
    found
}

/// Where in the query a node's expressions come from, for error messages.
fn clause(node: &str) -> &'static str {
    match node {
        n if n.contains("Sort") || n.contains("TopK") => "ORDER BY",
        n if n.contains("Aggregate") => "GROUP BY or an aggregate's FILTER",
        n if n.contains("Window") => "a window function (OVER …)",
        n if n.contains("Join") => "a join condition",
        n if n.contains("Filter") => "WHERE",
        _ => "this part of the query",
    }
}

/// An async call with another async call in its arguments: (outer, inner).
fn find_nested(e: &Arc<dyn PhysicalExpr>) -> Option<(String, String)> {
    let mut found = None;
    let _ = e.apply(|e| {
        let nested = async_call(e).and_then(|f| {
            let inner = f.args().iter().find_map(find_async)?;
            Some((f.name().to_string(), inner))
        });
        Ok(match nested {
            Some(pair) => {
                found = Some(pair);
                TreeNodeRecursion::Stop
            }
            None => TreeNodeRecursion::Continue,
        })
    });
    found
}

/// What is wrong with the async calls in one expression of `node`, if anything.
fn misplaced(node: &str, root: &Arc<dyn PhysicalExpr>) -> Option<String> {
    if let Some((outer, inner)) = find_nested(root) {
        return Some(format!(
            "{outer}: an argument calls the async function {inner}; async calls cannot be \
             nested. Compute the inner call in a subquery: \
             SELECT {outer}(r …) FROM (SELECT {inner}(…) AS r FROM …)"
        ));
    }
    if root.downcast_ref::<AsyncFuncExpr>().is_some() {
        return None;
    }
    let name = find_async(root)?;
    if node.contains("Projection") {
        // DataFusion extracts the inner call of f(g(x)) and leaves f here
        return Some(format!(
            "{name}: an argument is the result of another async call; async calls cannot be \
             nested. Compute the inner call in a subquery: \
             SELECT {name}(r['body'] …) FROM (SELECT http_get(…) AS r FROM …)"
        ));
    }
    Some(format!(
        "{name} cannot be called in {}: DataFusion runs async functions only in SELECT \
         lists, WHERE and aggregate arguments. Compute it in a subquery and refer to its \
         column: SELECT … FROM (SELECT {name}(…) AS r, … FROM …) … r['status'] …",
        clause(node)
    ))
}

/// DataFusion runs async functions only as whole SELECT-list, WHERE or aggregate
/// argument expressions; elsewhere they fail at run time with an internal error.
/// This turns those cases into plan errors that say what to write instead.
fn check_placement(plan: &Arc<dyn ExecutionPlan>) -> Result<()> {
    let mut error = None;
    plan.apply(|node| {
        node.apply_expressions(&mut |root| {
            error = misplaced(node.name(), root);
            Ok(if error.is_some() {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })
    })?;
    match error {
        Some(e) => plan_err!("{e}"),
        None => Ok(()),
    }
}

/// The async expressions of a stock node, if they are all ours.
fn ours(runtime: &AsyncRuntime, exec: &AsyncFuncExec) -> Option<Vec<Arc<AsyncFuncExpr>>> {
    let mut exprs = Vec::new();
    let mut all_ours = true;
    let _ = exec.apply_expressions(&mut |root| {
        let owned = root
            .downcast_ref::<AsyncFuncExpr>()
            .filter(|a| {
                a.func
                    .downcast_ref::<ScalarFunctionExpr>()
                    .is_some_and(|f| runtime.owns(f.fun()))
            })
            .cloned();
        match owned {
            Some(a) => exprs.push(Arc::new(a)),
            None => all_ours = false,
        }
        Ok(TreeNodeRecursion::Continue)
    });
    (all_ours && !exprs.is_empty()).then_some(exprs)
}

impl PhysicalOptimizerRule for AsyncPipelineRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        options: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        check_placement(&plan)?;
        let settings: AsyncUdfConfig = config::get(options);
        if !settings.pipelined {
            return Ok(plan);
        }
        let http: HttpConfig = config::get(options);
        let redactor = Redactor::new(&http.secret_headers);
        plan.transform_up(|node| {
            let Some(stock) = node.downcast_ref::<AsyncFuncExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(exprs) = ours(&self.runtime, stock) else {
                return Ok(Transformed::no(node));
            };
            let exec = AsyncPipelineExec::try_new(
                exprs,
                Arc::clone(stock.input()),
                Arc::clone(&self.runtime),
                settings.fan_out,
                redactor.clone(),
            )?;
            Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "async_pipeline"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
