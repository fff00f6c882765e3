//! Exactly once, by construction: every async call written in a query gets its
//! own [`AsyncCalls`] node, before the optimizer runs.
//!
//! DataFusion 55's optimizer copies expressions freely: `extract_leaf_expressions`
//! and `push_down_leaf_projections` move `r['status']`, `r['attempts']` of one
//! `r = http_post(…)` into separate projections, `optimize_projections` inlines
//! them, and each copy became a call of its own (a record posted three times).
//! Wrapping those rules one by one does not hold: the next release adds another.
//!
//! So this analyzer rule, which runs after type coercion and before every
//! optimizer rule, gives each call an identity the optimizer cannot undo: it moves
//! the call out of the node where it is written into an [`AsyncCalls`] node
//! inserted right below, which computes it once per input row into a column
//! `__async_N`; the node where it was written reads that column. What the
//! optimizer then copies, moves or inlines is a column reference. The node is an
//! extension node, so no rule looks inside it; it passes filters on its input's
//! columns down (fewer calls) and keeps those on a call's result above.
//!
//! * Any node: SELECT lists, WHERE, HAVING, aggregate arguments and their
//!   `FILTER`, GROUP BY, ORDER BY, window functions, join conditions, CASE
//!   branches, subqueries, UNION branches, `INSERT … SELECT`, `COPY`. The node
//!   keeps its output columns and names (an alias restores a renamed expression;
//!   a projection drops the new columns from nodes that pass their input through).
//! * Nested calls `f(g(x))`: the innermost calls are lifted first, into a node
//!   below the one of the calls that read them.
//! * The same call written twice in one clause is computed once (`at most once`).
//! * A call in a join condition goes below the side whose columns it reads; one
//!   that reads both sides is a plan error (compute it above the join instead).
//!
//! **CTEs.** DataFusion inlines a CTE at each reference, so a CTE referenced twice
//! holds two copies of each of its calls. The copies share their table sources
//! (the same `Arc`), which two subqueries written alike do not: identical
//! `AsyncCalls` nodes over the same sources are each wrapped in a
//! [`Shared`](super::shared) node, computed once and read by every reference,
//! as PostgreSQL materializes a CTE with volatile functions. A CTE that reads no
//! table (only `VALUES` or no `FROM`) cannot be told from two written copies and
//! is computed once per reference.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result, plan_err};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, Projection};
use datafusion::optimizer::AnalyzerRule;

use super::node::{AsyncCalls, PREFIX};
use super::shared::{self, Shared};
use crate::runtime::AsyncRuntime;

/// The analyzer rule (see the module documentation).
#[derive(Debug)]
pub(crate) struct LiftAsyncCalls {
    runtime: Arc<AsyncRuntime>,
}

impl LiftAsyncCalls {
    pub(crate) fn new(runtime: Arc<AsyncRuntime>) -> Self {
        Self { runtime }
    }
}

impl AnalyzerRule for LiftAsyncCalls {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let plan = plan
            .transform_up_with_subqueries(|node| {
                node.map_expressions(|e| e.transform_up(|e| Ok(rebind(e, &self.runtime))))
            })?
            .data;
        let mut next = first_free_index(&plan)?;
        let plan = plan
            .transform_up_with_subqueries(|node| lift(node, &mut next))?
            .data;
        share_copies(plan)
    }

    fn name(&self) -> &'static str {
        "lift_async_calls"
    }
}

/// A call of an async function that is not the session's own (an
/// [`expr_fn`](crate::expr_fn) call) made a call of the session's function of
/// that name.
fn rebind(e: Expr, runtime: &AsyncRuntime) -> Transformed<Expr> {
    let Expr::ScalarFunction(f) = &e else {
        return Transformed::no(e);
    };
    match runtime.rebound(&f.func) {
        Some(udf) => Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::new(udf),
            f.args.clone(),
        ))),
        None => Transformed::no(e),
    }
}

/// Whether `e` calls an async function.
fn is_async_call(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f) if f.func.as_async().is_some())
}

fn as_async_node(plan: &LogicalPlan) -> Option<&AsyncCalls> {
    match plan {
        LogicalPlan::Extension(Extension { node }) => node.as_any().downcast_ref(),
        _ => None,
    }
}

/// The first `N` for which no column `__async_N` exists yet (a plan analyzed
/// before, then extended through the DataFrame API, already has some).
fn first_free_index(plan: &LogicalPlan) -> Result<usize> {
    let mut next = 0;
    plan.apply_with_subqueries(|node| {
        for field in node.schema().fields() {
            if let Some(n) = field
                .name()
                .strip_prefix(PREFIX)
                .and_then(|n| n.parse::<usize>().ok())
            {
                next = next.max(n + 1);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(next)
}

/// The async calls of `exprs` whose arguments hold no async call, each once.
fn innermost_calls(exprs: &[Expr]) -> Vec<Expr> {
    let mut found: Vec<Expr> = Vec::new();
    for expr in exprs {
        let _ = expr.apply(|e| {
            if is_async_call(e) {
                let nested = match e {
                    Expr::ScalarFunction(f) => f
                        .args
                        .iter()
                        .any(|a| a.exists(|x| Ok(is_async_call(x))).unwrap_or(false)),
                    _ => false,
                };
                if !nested && !found.contains(e) {
                    found.push(e.clone());
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }
    found
}

/// Which input of a node a call belongs below: the one holding all its columns.
fn input_for(node: &LogicalPlan, call: &Expr) -> Result<usize> {
    let inputs = node.inputs();
    let columns = call.column_refs();
    let side = inputs
        .iter()
        .position(|input| columns.iter().all(|c| input.schema().has_column(c)));
    if let Some(i) = side {
        Ok(i)
    } else {
        plan_err!(
            "{call}: an async call cannot read columns of both sides of a join; \
         compute it above the join: SELECT …, {call} FROM (… JOIN …)"
        )
    }
}

/// Whether a node's output columns are named after its expressions.
fn names_from_exprs(node: &LogicalPlan) -> bool {
    matches!(
        node,
        LogicalPlan::Projection(_) | LogicalPlan::Aggregate(_) | LogicalPlan::Window(_)
    )
}

fn lift(node: LogicalPlan, next: &mut usize) -> Result<Transformed<LogicalPlan>> {
    if as_async_node(&node).is_some() {
        return Ok(Transformed::no(node));
    }
    let Some(call) = innermost_calls(&node.expressions()).into_iter().next() else {
        return Ok(Transformed::no(node));
    };
    if node.inputs().is_empty() {
        return plan_err!(
            "{call}: async functions cannot be called in {}; select from it instead: \
             SELECT {call} FROM (VALUES …) AS t(…)",
            node.display()
        );
    }
    let original = Arc::clone(node.schema());
    let preserver = if names_from_exprs(&node) {
        NamePreserver::new_for_projection()
    } else {
        NamePreserver::new(&node)
    };
    let saved: Vec<_> = node
        .expressions()
        .iter()
        .map(|e| preserver.save(e))
        .collect();
    let mut node = node;
    loop {
        let calls = innermost_calls(&node.expressions());
        if calls.is_empty() {
            break;
        }
        let mut below: Vec<Vec<(Expr, String)>> = vec![Vec::new(); node.inputs().len()];
        let mut columns: HashMap<Expr, String> = HashMap::new();
        for call in calls {
            let name = format!("{PREFIX}{next}");
            *next += 1;
            below[input_for(&node, &call)?].push((call.clone(), name.clone()));
            columns.insert(call, name);
        }
        let inputs = node
            .inputs()
            .into_iter()
            .zip(below)
            .map(|(input, calls)| {
                if calls.is_empty() {
                    return Ok(input.clone());
                }
                let calls = AsyncCalls::try_new(Arc::new(input.clone()), calls)?;
                Ok(LogicalPlan::Extension(Extension {
                    node: Arc::new(calls),
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        let exprs = node
            .expressions()
            .into_iter()
            .map(|e| {
                e.transform_down(|e| match columns.get(&e) {
                    Some(name) => Ok(Transformed::new(
                        Expr::Column(Column::new_unqualified(name)),
                        true,
                        TreeNodeRecursion::Jump,
                    )),
                    None => Ok(Transformed::no(e)),
                })
                .map(|t| t.data)
            })
            .collect::<Result<Vec<_>>>()?;
        node = node.with_new_exprs(exprs, inputs)?;
    }
    let exprs: Vec<Expr> = node
        .expressions()
        .into_iter()
        .zip(saved)
        .map(|(e, name)| name.restore(e))
        .collect();
    let inputs = node.inputs().into_iter().cloned().collect();
    let node = node.with_new_exprs(exprs, inputs)?;
    if node.schema().fields().len() == original.fields().len() {
        return Ok(Transformed::yes(node));
    }
    // the node passes its input through: drop the call columns again
    let keep = original
        .iter()
        .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())))
        .collect();
    Ok(Transformed::yes(LogicalPlan::Projection(
        Projection::try_new(keep, Arc::new(node))?,
    )))
}

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
    let exprs = calls.calls().iter().map(|(e, _)| e.clone()).collect();
    (!read.is_empty()).then(|| (exprs, Arc::clone(calls.input()), read))
}

/// Wraps every `AsyncCalls` node that has copies — same calls over the same
/// input, read from the same table sources: a CTE (or view) referenced twice,
/// inlined by DataFusion at each use — in a [`Shared`] node, so the copies are
/// computed once.
fn share_copies(plan: LogicalPlan) -> Result<LogicalPlan> {
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
