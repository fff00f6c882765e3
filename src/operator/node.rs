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

/// Evaluates `calls` (async function calls over `input`'s columns) once per row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AsyncCalls {
    input: Arc<LogicalPlan>,
    /// `(call, output column name)`.
    calls: Vec<(Expr, String)>,
    schema: DFSchemaRef,
}

/// The prefix of the output column names.
pub(crate) const PREFIX: &str = "__async_";

impl AsyncCalls {
    pub(crate) fn try_new(input: Arc<LogicalPlan>, calls: Vec<(Expr, String)>) -> Result<Self> {
        let input_schema = input.schema();
        let mut fields: Vec<_> = input_schema
            .iter()
            .map(|(q, f)| (q.cloned(), Arc::clone(f)))
            .collect();
        for (call, name) in &calls {
            let field = call.to_field(input_schema)?.1;
            fields.push((None, Arc::new(field.as_ref().clone().with_name(name))));
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

    pub(crate) fn calls(&self) -> &[(Expr, String)] {
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

    fn expressions(&self) -> Vec<Expr> {
        self.calls.iter().map(|(e, _)| e.clone()).collect()
    }

    /// Filters on the input's columns may go below (fewer calls); filters on a
    /// call's result may not.
    fn prevent_predicate_push_down_columns(&self) -> HashSet<String> {
        self.calls.iter().map(|(_, name)| name.clone()).collect()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let calls: Vec<String> = self
            .calls
            .iter()
            .map(|(e, name)| format!("{name} := {e}"))
            .collect();
        write!(f, "AsyncCalls: {}", calls.join(", "))
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        if inputs.len() != 1 || exprs.len() != self.calls.len() {
            return internal_err!("AsyncCalls takes one input and its calls");
        }
        let calls = exprs
            .into_iter()
            .zip(&self.calls)
            .map(|(e, (_, name))| (e, name.clone()))
            .collect();
        Self::try_new(Arc::new(inputs.swap_remove(0)), calls)
    }

    /// Input columns passed through, plus every column a call reads.
    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let input = self.input.schema();
        let width = input.fields().len();
        let mut needed: Vec<usize> = output_columns
            .iter()
            .copied()
            .filter(|&i| i < width)
            .collect();
        for (call, _) in &self.calls {
            for column in call.column_refs() {
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
