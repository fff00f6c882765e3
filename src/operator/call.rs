//! A guarded call at execution: its function is given NULL in its key
//! argument (an HTTP function's url, a typed function's argument) for the
//! rows its guard does not need, and it sends nothing for them.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, new_null_array};
use arrow::compute::kernels::boolean::not;
use arrow::compute::{nullif, prep_null_mask_filter};
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::async_udf::AsyncScalarUDF;
use datafusion::logical_expr::expr::{Case, ScalarFunction};
use datafusion::logical_expr::{ColumnarValue, Expr, ScalarFunctionArgs};
use datafusion::physical_expr::async_scalar_function::AsyncFuncExpr;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::metrics::Count;

use crate::engine::held;

/// The rows a call is needed for, and the argument that skips the others.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    pub when: Arc<dyn PhysicalExpr>,
    pub key_arg: usize,
}

impl Guard {
    pub(crate) fn new(when: Arc<dyn PhysicalExpr>, key_arg: usize) -> Self {
        Self { when, key_arg }
    }

    /// The guard as part of the call (for DataFusion's own operator, which
    /// knows no guards): `f(CASE WHEN guard THEN key END, …)`.
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

/// Evaluates `call` over `batch`: for every row, or with `guard` only for the
/// rows it needs (the others NULL, counted in `skipped`, and reported to the
/// window as ended).
pub(crate) async fn invoke(
    call: &AsyncFuncExpr,
    guard: Option<&Guard>,
    batch: &RecordBatch,
    options: Arc<ConfigOptions>,
    skipped: &Count,
) -> Result<ArrayRef> {
    let n = batch.num_rows();
    let Some(guard) = guard else {
        return call.invoke_with_args(batch, options).await?.to_array(n);
    };
    let needed = guard.needed(batch)?;
    let skip = n - needed.true_count();
    skipped.add(skip);
    held::calls_done(skip);
    if skip == 0 {
        return call.invoke_with_args(batch, options).await?.to_array(n);
    }
    let schema = batch.schema();
    let return_field = call.func.return_field(&schema)?;
    if skip == n {
        return Ok(new_null_array(return_field.data_type(), n));
    }
    let Some(f) = call.func.downcast_ref::<ScalarFunctionExpr>() else {
        return internal_err!("an async call must be a scalar function");
    };
    let Some(udf) = f.fun().inner().downcast_ref::<AsyncScalarUDF>() else {
        return internal_err!("{} is not an async function", f.name());
    };
    let mut args = f
        .args()
        .iter()
        .map(|a| a.evaluate(batch))
        .collect::<Result<Vec<_>>>()?;
    let arg_fields = f
        .args()
        .iter()
        .map(|a| a.return_field(&schema))
        .collect::<Result<Vec<_>>>()?;
    let Some(key) = args.get_mut(guard.key_arg) else {
        return internal_err!("{}: no argument {}", f.name(), guard.key_arg);
    };
    let values = key.to_array(n)?;
    let cleared = if values.data_type() == &DataType::Null {
        values
    } else {
        nullif(&values, &not(&needed)?)?
    };
    *key = ColumnarValue::Array(cleared);
    udf.invoke_async_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows: n,
        return_field,
        config_options: options,
    })
    .await?
    .to_array(n)
}
