//! A guarded call at execution: its function is given NULL in its key
//! argument (an HTTP function's url, a typed function's argument) for the
//! rows its guard does not need, and it sends nothing for them. One way for
//! both operators: the guard is folded into that argument at planning; the
//! pipelined operator also evaluates it to count the rows it skips.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::prep_null_mask_filter;
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::expr::{Case, ScalarFunction};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::async_scalar_function::AsyncFuncExpr;
use datafusion::physical_plan::metrics::Count;

use crate::engine::held;

/// The rows a call is needed for.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    pub when: Arc<dyn PhysicalExpr>,
}

impl Guard {
    pub(crate) fn new(when: Arc<dyn PhysicalExpr>) -> Self {
        Self { when }
    }

    /// The guard as part of the call: `f(CASE WHEN guard THEN key END, …)`.
    pub(crate) fn fold(call: Expr, when: &Expr, key_arg: usize) -> Expr {
        let Expr::ScalarFunction(mut f) = call else {
            return call;
        };
        if let Some(key) = f.args.get_mut(key_arg) {
            let arg = std::mem::replace(key, Expr::Literal(ScalarValue::Null, None));
            *key = Expr::Case(Case {
                expr: None,
                when_then_expr: vec![(Box::new(when.clone()), Box::new(arg))],
                else_expr: None,
            });
        }
        Expr::ScalarFunction(ScalarFunction::new_udf(f.func, f.args))
    }

    /// The rows of `batch` that need the call (a NULL guard needs none).
    pub(crate) fn needed(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let values = self.when.evaluate(batch)?.into_array(batch.num_rows())?;
        let Some(values) = values.as_boolean_opt() else {
            return internal_err!("a guard must be boolean, got {}", values.data_type());
        };
        // (Arrow's prep_null_mask_filter expects nulls to be there)
        Ok(if values.null_count() == 0 {
            values.clone()
        } else {
            prep_null_mask_filter(values)
        })
    }
}

/// Evaluates `call` (its guard folded in, see [`Guard::fold`]) over `batch`;
/// with `guard`, first counts the rows it skips in `skipped` and reports them
/// to the window as ended (the function sends nothing for them).
pub(crate) async fn invoke(
    call: &AsyncFuncExpr,
    guard: Option<&Guard>,
    batch: &RecordBatch,
    options: Arc<ConfigOptions>,
    skipped: &Count,
) -> Result<ArrayRef> {
    let n = batch.num_rows();
    if let Some(guard) = guard {
        let skip = n - guard.needed(batch)?.true_count();
        skipped.add(skip);
        held::calls_done(skip);
    }
    call.invoke_with_args(batch, options).await?.to_array(n)
}
