//! Which rows need a call: the guards of the async calls written in an
//! expression, with SQL's evaluation rules.
//!
//! A call runs once for each row whose answer the query uses, never for a row
//! whose answer it does not use. Where a call is written under a construct
//! that evaluates some of its operands only for some rows, the call's *guard*
//! is what must hold for a row to need it (PostgreSQL's and DuckDB's rules):
//!
//! | written as | the call runs for the rows where |
//! |---|---|
//! | `CASE WHEN c1 THEN … WHEN ck THEN f(…) …` | `ck` is the first true condition |
//! | `CASE … WHEN ck …` (a call in a later condition) | no earlier condition is true |
//! | `CASE … ELSE f(…) END` | no condition is true |
//! | `CASE x WHEN v1 THEN … END` | the same, with `x = vk` for `ck` |
//! | `coalesce(a1, …, f(…), …)`, `nvl(a, f(…))`, `ifnull` | every earlier argument is NULL |
//! | `nvl2(a, f(…), g(…))` | `a` is not NULL (`f`), is NULL (`g`) |
//! | `l AND f(…)` / `l OR f(…)` | `l` is not false / not true (NULL decides nothing) |
//! | `agg(f(…)) FILTER (WHERE c)` | `c` is true |
//!
//! Guards compose (a call inside a CASE inside a COALESCE needs both), and a
//! call read in several places runs once for the union of their rows. Left
//! operands run before right ones: in `f(…) OR g(…)` the right call waits
//! for the left one's answers and runs only where they did not decide.
//!
//! Guards are built from the conditions as written, as boolean expressions
//! that are never NULL, so they evaluate lazily like the constructs they come
//! from (a later `WHEN` only where the earlier ones were not true): a guard
//! that fails for a row fails as the query would without the call. A guard
//! part that cannot be evaluated below the node (a subquery, an aggregate, the
//! other side of a join, a volatile function that was not computed once into a
//! column: see [`volatile_columns`]) is left out: the call then runs for more
//! rows than it needs, never for fewer.

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, Result};
use datafusion::logical_expr::expr::{AggregateFunction, Case};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, Volatility, lit};

/// An async call written in an expression, with what must hold for a row to
/// need it: the conjunction of `when` (empty: every row).
#[derive(Debug, Clone)]
pub(crate) struct Use {
    pub call: Expr,
    pub when: Vec<Expr>,
}

/// Whether `e` calls an async function.
pub(crate) fn is_async_call(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f) if f.func.as_async().is_some())
}

/// Whether `e` holds an async call anywhere.
pub(crate) fn holds_async(e: &Expr) -> bool {
    e.exists(|x| Ok(is_async_call(x))).unwrap_or(false)
}

/// The innermost async calls of `expr` (whose arguments hold none), each
/// where it is written, with its guard.
pub(crate) fn uses(expr: &Expr) -> Vec<Use> {
    let mut out = Vec::new();
    walk(expr, &mut Vec::new(), &mut out);
    out
}

fn walk(e: &Expr, when: &mut Vec<Expr>, out: &mut Vec<Use>) {
    if let Expr::ScalarFunction(f) = e
        && is_async_call(e)
        && !f.args.iter().any(holds_async)
    {
        out.push(Use {
            call: e.clone(),
            when: when.clone(),
        });
        return;
    }
    let mut under = |child: &Expr, guard: Option<Expr>, when: &mut Vec<Expr>| {
        let pushed = guard.map(|g| when.push(g)).is_some();
        walk(child, when, out);
        if pushed {
            when.pop();
        }
    };
    match e {
        Expr::Case(case) => {
            if let Some(base) = &case.expr {
                under(base, None, when);
            }
            let conds: Vec<Expr> = case
                .when_then_expr
                .iter()
                .map(|(w, _)| (**w).clone())
                .collect();
            for (k, (w, t)) in case.when_then_expr.iter().enumerate() {
                under(w, (k > 0).then(|| reached(case, &conds[..k])), when);
                under(t, Some(taken(case, &conds, k)), when);
            }
            if let Some(other) = &case.else_expr {
                under(other, Some(reached(case, &conds)), when);
            }
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(op, Operator::And | Operator::Or) =>
        {
            under(left, None, when);
            let l = (**left).clone();
            let guard = if *op == Operator::And {
                Expr::IsNotFalse(Box::new(l))
            } else {
                Expr::IsNotTrue(Box::new(l))
            };
            under(right, Some(guard), when);
        }
        Expr::ScalarFunction(f) if lazy_function(f.func.name()).is_some() => {
            for (k, arg) in f.args.iter().enumerate() {
                under(arg, argument_guard(f.func.name(), &f.args, k), when);
            }
        }
        Expr::AggregateFunction(AggregateFunction { params, .. }) if params.filter.is_some() => {
            let Some(filter) = params.filter.as_deref() else {
                return;
            };
            under(filter, None, when);
            let keep = Expr::IsTrue(Box::new(filter.clone()));
            for arg in &params.args {
                under(arg, Some(keep.clone()), when);
            }
            for sort in &params.order_by {
                under(&sort.expr, Some(keep.clone()), when);
            }
        }
        _ => {
            let _ = e.apply_children(|c| {
                walk(c, when, out);
                Ok(TreeNodeRecursion::Continue)
            });
        }
    }
}

/// The functions that evaluate some arguments only for some rows.
fn lazy_function(name: &str) -> Option<()> {
    matches!(name, "coalesce" | "nvl" | "ifnull" | "nvl2").then_some(())
}

/// What must hold for argument `k` of a lazy function to be evaluated.
fn argument_guard(name: &str, args: &[Expr], k: usize) -> Option<Expr> {
    if k == 0 {
        return None;
    }
    if name == "nvl2" {
        let test = Box::new(args[0].clone());
        return Some(if k == 1 {
            Expr::IsNotNull(test)
        } else {
            Expr::IsNull(test)
        });
    }
    // coalesce, nvl, ifnull: every earlier argument is NULL
    if k == 1 {
        return Some(Expr::IsNull(Box::new(args[0].clone())));
    }
    let earlier: Vec<Expr> = args[..k]
        .iter()
        .map(|a| Expr::IsNotNull(Box::new(a.clone())))
        .collect();
    Some(first_of(None, &earlier, None))
}

/// A row reaches the condition after `earlier`: none of them is true.
fn reached(case: &Case, earlier: &[Expr]) -> Expr {
    match (&case.expr, earlier) {
        (None, [only]) => Expr::IsNotTrue(Box::new(only.clone())),
        (base, _) => first_of(base.as_deref(), earlier, None),
    }
}

/// A row takes branch `k`: condition `k` is the first true one.
fn taken(case: &Case, conds: &[Expr], k: usize) -> Expr {
    match (&case.expr, k) {
        (None, 0) => Expr::IsTrue(Box::new(conds[0].clone())),
        (base, _) => first_of(base.as_deref(), &conds[..=k], Some(k)),
    }
}

/// `CASE [base] WHEN c0 THEN false … ELSE true END`, or with `pick = Some(k)`
/// true for `ck` and false otherwise: lazy like the CASE it comes from, and
/// never NULL.
fn first_of(base: Option<&Expr>, conds: &[Expr], pick: Option<usize>) -> Expr {
    let when_then_expr = conds
        .iter()
        .enumerate()
        .map(|(i, c)| (Box::new(c.clone()), Box::new(lit(pick == Some(i)))))
        .collect();
    Expr::Case(Case {
        expr: base.map(|b| Box::new(b.clone())),
        when_then_expr,
        else_expr: Some(Box::new(lit(pick.is_none()))),
    })
}

/// Whether `e` calls a volatile function that is not an async one.
fn volatile_call(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f)
        if f.func.signature().volatility == Volatility::Volatile && f.func.as_async().is_none())
}

/// Whether `e` holds a volatile function that is not an async one.
pub(crate) fn holds_volatile(e: &Expr) -> bool {
    e.exists(|x| Ok(volatile_call(x))).unwrap_or(false)
}

/// Whether a guard part can be evaluated over `input`, once per row, with the
/// value the expression above will see.
pub(crate) fn evaluable(part: &Expr, input: &DFSchema) -> bool {
    let foreign = part
        .exists(|x| {
            Ok(matches!(
                x,
                Expr::ScalarSubquery(_)
                    | Expr::Exists(_)
                    | Expr::InSubquery(_)
                    | Expr::SetComparison(_)
                    | Expr::OuterReferenceColumn(..)
                    | Expr::AggregateFunction(_)
                    | Expr::WindowFunction(_)
                    | Expr::Placeholder(_)
                    | Expr::Unnest(_)
                    | Expr::LambdaVariable(_)
            ) || volatile_call(x))
        })
        .unwrap_or(true);
    !foreign && part.column_refs().iter().all(|c| input.has_column(c))
}

/// The guard of a call from its uses: `None` when some use needs every row,
/// otherwise the union of the uses' conjunctions.
pub(crate) fn union(uses: &[Vec<Expr>]) -> Option<Expr> {
    let mut any: Vec<Expr> = Vec::new();
    for when in uses {
        let all = when.iter().cloned().reduce(Expr::and)?;
        if !any.contains(&all) {
            any.push(all);
        }
    }
    any.into_iter().reduce(Expr::or)
}

/// Each volatile (non-async) function call of `expr` whose arguments hold no
/// async call, replaced, where it stands, by a column computed below the node
/// (`name(i)` for the `i`-th): a guard and the expression above then read one
/// value per row, as if the function had been evaluated once. Returns the
/// expression and the replaced calls.
pub(crate) fn volatile_columns(
    expr: Expr,
    name: &mut impl FnMut() -> String,
) -> Result<(Expr, Vec<(Expr, String)>)> {
    let mut taken = Vec::new();
    let expr = expr
        .transform_down(|e| {
            if volatile_call(&e) && !holds_async(&e) {
                let column = name();
                taken.push((e, column.clone()));
                // the outermost volatile call: what it reads is computed with it
                return Ok(Transformed::new(
                    Expr::Column(Column::new_unqualified(column)),
                    true,
                    TreeNodeRecursion::Jump,
                ));
            }
            Ok(Transformed::no(e))
        })?
        .data;
    Ok((expr, taken))
}
