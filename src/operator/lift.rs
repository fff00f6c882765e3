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
//! * Guards: a call written under a CASE branch, a later COALESCE argument, the
//!   right side of AND/OR or an aggregate's argument with a FILTER runs only
//!   for the rows that need it ([`super::guard`]): the node computes it where
//!   its guard holds and gives the other rows NULL. A call whose guard reads
//!   another call's answer is lifted after it, into a node above.
//! * A guard that holds a volatile function (`random() < 0.1`): the node's
//!   volatile calls are computed once, into columns below it, which the guard
//!   and the expression above both read.
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

use super::copies::share_copies;
use super::guard::{self, holds_async, is_async_call};
use super::node::{AsyncCalls, Call, PREFIX};
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

pub(super) fn as_async_node(plan: &LogicalPlan) -> Option<&AsyncCalls> {
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

/// The calls of `node` to lift now, each once, with the guard parts of each
/// place it is written (see [`guard::uses`]): those whose guards read no
/// call still to be lifted. When every call's guard waits for another's, the
/// parts that read calls are left out (the calls then run for more rows).
fn ready_calls(node: &LogicalPlan) -> Vec<(Expr, Vec<Vec<Expr>>)> {
    let mut groups: Vec<(Expr, Vec<Vec<Expr>>)> = Vec::new();
    for expr in node.expressions() {
        for u in guard::uses(&expr) {
            match groups.iter_mut().find(|(c, _)| *c == u.call) {
                Some((_, whens)) => whens.push(u.when),
                None => groups.push((u.call, vec![u.when])),
            }
        }
    }
    for (call, whens) in &mut groups {
        // a place whose guard reads the call itself needs fewer rows than the
        // place in that guard: the guard's condition is only evaluated there
        let reads_itself = |w: &Vec<Expr>| {
            w.iter()
                .any(|p| p.exists(|x| Ok(x == call)).unwrap_or(false))
        };
        if whens.iter().any(|w| !reads_itself(w)) {
            whens.retain(|w| !reads_itself(w));
        }
    }
    let ready = |whens: &Vec<Vec<Expr>>| {
        whens.iter().any(Vec::is_empty) || whens.iter().flatten().all(|p| !holds_async(p))
    };
    if groups.iter().any(|(_, whens)| ready(whens)) {
        groups.retain(|(_, whens)| ready(whens));
        return groups;
    }
    for (_, whens) in &mut groups {
        for w in whens.iter_mut() {
            w.retain(|p| !holds_async(p));
        }
    }
    groups
}

/// The first async call written in `exprs`, for a message.
fn first_call(exprs: &[Expr]) -> Option<Expr> {
    let mut found = None;
    for e in exprs {
        let _ = e.apply(|x| {
            if is_async_call(x) {
                found = Some(x.clone());
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        if found.is_some() {
            break;
        }
    }
    found
}

/// When a guard of `node` holds a volatile function: its volatile calls
/// computed once per row into columns of a projection below it, read where
/// they stood (single-input nodes; elsewhere such guard parts are left out).
fn volatile_below(node: LogicalPlan, next: &mut usize) -> Result<LogicalPlan> {
    let [input] = node.inputs()[..] else {
        return Ok(node);
    };
    let exprs = node.expressions();
    let needed = exprs
        .iter()
        .flat_map(guard::uses)
        .any(|u| u.when.iter().any(guard::holds_volatile));
    if !needed {
        return Ok(node);
    }
    let mut columns: Vec<Expr> = input
        .schema()
        .iter()
        .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())))
        .collect();
    let mut name = || {
        *next += 1;
        format!("__volatile_{}", *next - 1)
    };
    let mut rewritten = Vec::with_capacity(exprs.len());
    for e in exprs {
        let (e, taken) = guard::volatile_columns(e, &mut name)?;
        rewritten.push(e);
        columns.extend(taken.into_iter().map(|(v, n)| v.alias(n)));
    }
    let below = Projection::try_new(columns, Arc::new(input.clone()))?;
    node.with_new_exprs(rewritten, vec![LogicalPlan::Projection(below)])
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
    let Some(call) = first_call(&node.expressions()) else {
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
    let mut node = volatile_below(node, next)?;
    loop {
        let calls = ready_calls(&node);
        if calls.is_empty() {
            break;
        }
        let mut below: Vec<Vec<Call>> = vec![Vec::new(); node.inputs().len()];
        let mut columns: HashMap<Expr, String> = HashMap::new();
        for (call, whens) in calls {
            let name = format!("{PREFIX}{next}");
            *next += 1;
            let side = input_for(&node, &call)?;
            let schema = node.inputs()[side].schema();
            let whens: Vec<Vec<Expr>> = whens
                .into_iter()
                .map(|w| {
                    w.into_iter()
                        .filter(|p| guard::evaluable(p, schema))
                        .collect()
                })
                .collect();
            below[side].push(Call::new(call.clone(), name.clone(), guard::union(&whens)));
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
