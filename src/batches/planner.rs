//! SQL: `SELECT … FROM map_in_batches('handler', (SELECT …) | 'table' [, arg …])`.

use std::sync::{Arc, Weak};

use datafusion::catalog::default_table_source::provider_as_source;
use datafusion::execution::SessionState;
use futures::FutureExt;
use parking_lot::RwLock;

use datafusion::common::{DFSchema, Result, ScalarValue, TableReference, plan_err};
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::sqlparser::ast::{self, FunctionArg, FunctionArgExpr, TableFactor};

use super::Handlers;
use crate::runtime::AsyncRuntime;

/// Plans `map_in_batches(…)` in `FROM`.
#[derive(Debug)]
pub struct MapInBatchesPlanner {
    runtime: Arc<AsyncRuntime>,
    handlers: Arc<Handlers>,
    /// The session, to find a table given by name (SQL planning only sees the
    /// tables named in `FROM` clauses, and a string argument is not one).
    state: Weak<RwLock<SessionState>>,
}

impl MapInBatchesPlanner {
    pub fn new(
        runtime: Arc<AsyncRuntime>,
        handlers: Arc<Handlers>,
        state: Weak<RwLock<SessionState>>,
    ) -> Self {
        Self {
            runtime,
            handlers,
            state,
        }
    }

    /// The scan of the table called `name`.
    fn table(&self, name: &str) -> Result<LogicalPlan> {
        let reference = TableReference::from(name);
        let Some(state) = self.state.upgrade() else {
            return plan_err!("map_in_batches: the session is gone");
        };
        let schema = state.read().schema_for_ref(reference.clone())?;
        let table = match schema.table(reference.table()).now_or_never() {
            Some(found) => found?,
            None => {
                return plan_err!(
                    "map_in_batches: table '{name}' is in a catalog that cannot be read while \
                     planning; use map_in_batches(handler, (SELECT * FROM {name}))"
                );
            }
        };
        let Some(table) = table else {
            return plan_err!("map_in_batches: table '{name}' not found");
        };
        LogicalPlanBuilder::scan(reference, provider_as_source(table), None)?.build()
    }
}

const USAGE: &str = "map_in_batches('handler', (SELECT …) or 'table_name' [, argument, …])";

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

impl RelationPlanner for MapInBatchesPlanner {
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
                let table = string(
                    &literal(other, context, "argument 2 (input)")?,
                    "argument 2 (input)",
                )?;
                self.table(&table)?
            }
        };
        let values = exprs
            .enumerate()
            .map(|(i, e)| literal(e, context, &format!("argument {}", i + 3)))
            .collect::<Result<Vec<_>>>()?;
        let plan: LogicalPlan = super::relation(
            input,
            &handler,
            values,
            &self.handlers,
            Arc::clone(&self.runtime),
        )?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan,
            alias.clone(),
        ))))
    }
}
