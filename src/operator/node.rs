//! `AsyncCalls`: the logical node that evaluates async calls, once per input row.
//!
//! Its output is its input's columns followed by one column per call, named
//! `__async_N`. Everything above reads a call's result through that column, so no
//! optimizer rule can copy the call itself: rules that inline projections, extract
//! struct fields or eliminate common subexpressions see a column, and an extension
//! node they cannot look into. See [`super::lift`] for how calls get here.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use datafusion::common::{DFSchema, DFSchemaRef, Result, internal_err};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, UserDefinedLogicalNodeCore};

/// Evaluates `calls` (async function calls over `input`'s columns) once per
/// row that needs them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AsyncCalls {
    input: Arc<LogicalPlan>,
    calls: Vec<Call>,
    schema: DFSchemaRef,
}

/// One call of an [`AsyncCalls`] node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub(crate) struct Call {
    pub expr: Expr,
    /// The output column's name.
    pub name: String,
    /// The rows that need the call (see [`super::guard`]); the others get
    /// NULL and send nothing. `None`: every row.
    pub guard: Option<Expr>,
}

impl Call {
    pub(crate) fn new(expr: Expr, name: String, guard: Option<Expr>) -> Self {
        Self { expr, name, guard }
    }
}

impl fmt::Display for Call {
    /// `__async_0 := http_post(…) WHEN value % 2 = 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} := {}", self.name, self.expr)?;
        let Some(guard) = &self.guard else {
            return Ok(());
        };
        // `WHEN c` reads as "where c is true"
        let shown = match guard {
            Expr::IsTrue(c) => c.as_ref(),
            g => g,
        };
        write!(f, " WHEN {shown}")
    }
}

/// The prefix of the output column names.
pub(crate) const PREFIX: &str = "__async_";

impl AsyncCalls {
    pub(crate) fn try_new(input: Arc<LogicalPlan>, calls: Vec<Call>) -> Result<Self> {
        let input_schema = input.schema();
        let mut fields: Vec<_> = input_schema
            .iter()
            .map(|(q, f)| (q.cloned(), Arc::clone(f)))
            .collect();
        for call in &calls {
            let field = call.expr.to_field(input_schema)?.1;
            // a row skipped by the guard is NULL
            let field = field
                .as_ref()
                .clone()
                .with_name(&call.name)
                .with_nullable(field.is_nullable() || call.guard.is_some());
            fields.push((None, Arc::new(field)));
        }
        let schema = DFSchema::new_with_metadata(fields, input_schema.metadata().clone())?;
        Ok(Self {
            input,
            calls,
            schema: Arc::new(schema),
        })
    }

    pub(crate) fn input(&self) -> &Arc<LogicalPlan> {
        &self.input
    }

    pub(crate) fn calls(&self) -> &[Call] {
        &self.calls
    }
}

impl PartialOrd for AsyncCalls {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.input.partial_cmp(&other.input) {
            Some(Ordering::Equal) => self.calls.partial_cmp(&other.calls),
            o => o,
        }
    }
}

impl UserDefinedLogicalNodeCore for AsyncCalls {
    fn name(&self) -> &'static str {
        "AsyncCalls"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    /// The calls, then the guards of those that have one.
    fn expressions(&self) -> Vec<Expr> {
        let calls = self.calls.iter().map(|c| c.expr.clone());
        calls
            .chain(self.calls.iter().filter_map(|c| c.guard.clone()))
            .collect()
    }

    /// Filters on the input's columns may go below (fewer calls); filters on a
    /// call's result may not.
    fn prevent_predicate_push_down_columns(&self) -> HashSet<String> {
        self.calls.iter().map(|c| c.name.clone()).collect()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let calls: Vec<String> = self.calls.iter().map(ToString::to_string).collect();
        write!(f, "AsyncCalls: {}", calls.join(", "))
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let guards = self.calls.iter().filter(|c| c.guard.is_some()).count();
        if inputs.len() != 1 || exprs.len() != self.calls.len() + guards {
            return internal_err!("AsyncCalls takes one input, its calls and their guards");
        }
        let mut exprs = exprs.into_iter();
        let mut calls: Vec<Call> = self
            .calls
            .iter()
            .zip(exprs.by_ref())
            .map(|(c, e)| Call::new(e, c.name.clone(), c.guard.clone()))
            .collect();
        for call in calls.iter_mut().filter(|c| c.guard.is_some()) {
            call.guard = exprs.next();
        }
        Self::try_new(Arc::new(inputs.swap_remove(0)), calls)
    }

    /// Input columns passed through, plus every column a call or guard reads.
    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let input = self.input.schema();
        let width = input.fields().len();
        let mut needed: Vec<usize> = output_columns
            .iter()
            .copied()
            .filter(|&i| i < width)
            .collect();
        for call in &self.calls {
            let guard = call.guard.iter().flat_map(Expr::column_refs);
            for column in call.expr.column_refs().into_iter().chain(guard) {
                needed.push(input.index_of_column(column).ok()?);
            }
        }
        needed.sort_unstable();
        needed.dedup();
        Some(vec![needed])
    }

    /// One output row per input row, in order.
    fn supports_limit_pushdown(&self) -> bool {
        true
    }
}
