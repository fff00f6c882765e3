//! SQL: `SELECT … FROM map_in_batches('handler', (SELECT …) [, arg …])`.

use std::sync::Arc;

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DFSchema, Result, ScalarValue, plan_err};
use datafusion::execution::SessionState;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::sql::sqlparser::ast::{self, FunctionArg, FunctionArgExpr, TableFactor};

use super::Handlers;

/// Plans `map_in_batches(…)` in `FROM`.
#[derive(Debug)]
pub struct MapInBatchesRelation {
    handlers: Arc<Handlers>,
}

impl MapInBatchesRelation {
    pub fn new(handlers: Arc<Handlers>) -> Self {
        Self { handlers }
    }
}

/// Lists `map_in_batches` among the session's table functions (`SHOW FUNCTIONS`,
/// `information_schema.routines`); the relation planner plans every call, so
/// this entry is only reached in a session without it.
#[derive(Debug)]
struct Listed;

impl TableFunctionImpl for Listed {
    fn call_with_args(&self, _args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        plan_err!("map_in_batches is planned by datafusion_async_udf::register_all; usage: {USAGE}")
    }
}

/// Lists `map_in_batches` among `state`'s table functions.
pub(crate) fn list(state: &mut SessionState) {
    state.register_udtf("map_in_batches", Arc::new(Listed));
}

const USAGE: &str = "map_in_batches('handler', (SELECT …) [, argument, …])";

fn literal(
    arg: ast::Expr,
    context: &mut dyn RelationPlannerContext,
    what: &str,
) -> Result<ScalarValue> {
    match context.sql_to_expr(arg, &DFSchema::empty())? {
        Expr::Literal(value, _) => Ok(value),
        other => plan_err!("map_in_batches: {what} must be a literal, got {other}"),
    }
}

fn string(value: &ScalarValue, what: &str) -> Result<String> {
    if let Some(Some(s)) = value.try_as_str() {
        Ok(s.to_string())
    } else {
        plan_err!("map_in_batches: {what} must be a string, got {value}; usage: {USAGE}")
    }
}

impl RelationPlanner for MapInBatchesRelation {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let TableFactor::Table {
            name,
            args: Some(args),
            alias,
            ..
        } = &relation
        else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let is_ours = name.0.len() == 1
            && name.0[0]
                .as_ident()
                .is_some_and(|i| context.normalize_ident(i.clone()) == "map_in_batches");
        if !is_ours {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        }
        let mut exprs = Vec::with_capacity(args.args.len());
        for arg in &args.args {
            match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => exprs.push(e.clone()),
                other => {
                    return plan_err!(
                        "map_in_batches: unsupported argument {other}; usage: {USAGE}"
                    );
                }
            }
        }
        if exprs.len() < 2 {
            return plan_err!(
                "map_in_batches expects at least 2 arguments, got {}; usage: {USAGE}",
                exprs.len()
            );
        }
        let mut exprs = exprs.into_iter();
        let handler = string(
            &literal(
                exprs.next().unwrap_or_else(|| unreachable!()),
                context,
                "the handler",
            )?,
            "argument 1 (handler)",
        )?;
        let input = match exprs.next().unwrap_or_else(|| unreachable!()) {
            ast::Expr::Subquery(query) => context.plan(TableFactor::Derived {
                lateral: false,
                subquery: query,
                alias: None,
                sample: None,
            })?,
            other => {
                return plan_err!(
                    "map_in_batches: argument 2 (input) must be a subquery, got {other}; \
                     for a table t write map_in_batches('{handler}', (SELECT * FROM t)); \
                     usage: {USAGE}"
                );
            }
        };
        let values = exprs
            .enumerate()
            .map(|(i, e)| literal(e, context, &format!("argument {}", i + 3)))
            .collect::<Result<Vec<_>>>()?;
        let plan: LogicalPlan = super::relation(input, &handler, values, &self.handlers)?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan,
            alias.clone(),
        ))))
    }
}
