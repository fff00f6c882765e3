//! Copies of one subplan: a CTE (or view) referenced twice, inlined by
//! DataFusion at each use, holds two copies of each of its calls; they are
//! found here and computed once (see [`super::shared`]).

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, Extension, LogicalPlan};

use super::lift::as_async_node;
use super::node::AsyncCalls;
use super::shared::{self, Shared};

/// The table sources an input reads, by identity. The copies of an inlined CTE
/// share them; two subqueries written alike resolve their tables anew, and plan
/// equality alone cannot tell them apart (`generate_series(1, 10)` and
/// `generate_series(11, 20)` scan "the same" table).
fn sources(plan: &LogicalPlan) -> Vec<usize> {
    let mut found = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            found.push(Arc::as_ptr(&scan.source).cast::<()>() as usize);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// What identifies a copy of a subplan: the calls, the input, and the table
/// sources read (by identity).
type Key = (Vec<Expr>, Arc<LogicalPlan>, Vec<usize>);

fn key(calls: &AsyncCalls) -> Option<Key> {
    let read = sources(calls.input());
    let exprs = calls.calls().iter().map(|c| c.expr.clone()).collect();
    (!read.is_empty()).then(|| (exprs, Arc::clone(calls.input()), read))
}

/// Wraps every `AsyncCalls` node that has copies — same calls over the same
/// input, read from the same table sources: a CTE (or view) referenced twice,
/// inlined by DataFusion at each use — in a [`Shared`] node, so the copies are
/// computed once.
pub(super) fn share_copies(plan: LogicalPlan) -> Result<LogicalPlan> {
    let mut seen: Vec<(Key, usize)> = Vec::new();
    plan.apply_with_subqueries(|node| {
        if let Some(k) = as_async_node(node).and_then(key) {
            match seen.iter_mut().find(|(s, _)| *s == k) {
                Some((_, n)) => *n += 1,
                None => seen.push((k, 1)),
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let copied: Vec<(Key, u64)> = seen
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| (k, shared::next_id()))
        .collect();
    if copied.is_empty() {
        return Ok(plan);
    }
    plan.transform_up_with_subqueries(|node| {
        let id = as_async_node(&node)
            .and_then(key)
            .and_then(|k| copied.iter().find(|(c, _)| *c == k).map(|(_, id)| *id));
        Ok(match id {
            Some(id) => Transformed::yes(LogicalPlan::Extension(Extension {
                node: Arc::new(Shared {
                    id,
                    input: Arc::new(node),
                }),
            })),
            None => Transformed::no(node),
        })
    })
    .map(|t| t.data)
}
