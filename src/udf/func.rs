//! The async scalar UDF behind a typed function.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, StringArray, StructArray, UInt32Array};
use arrow::buffer::NullBuffer;
use arrow::compute::{cast, nullif, take};
use arrow::datatypes::{DataType, Field, Fields};
use async_trait::async_trait;
use datafusion::common::{Result, internal_err, plan_err};
use datafusion::logical_expr::async_udf::AsyncScalarUDFImpl;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::convert::compatible;
use super::kernel::{Kernel, Run};
use crate::config::{self, AsyncUdfConfig};
use crate::engine::journal::Once;
use crate::engine::{current_chunk, current_flow};
use crate::runtime::Bound;

/// A typed async function bound to a session's runtime.
pub(crate) struct TypedFunc {
    pub name: String,
    pub signature: Signature,
    pub input: DataType,
    /// The output type of the Rust function.
    pub output: DataType,
    /// Add an `error` field to the (struct) output.
    pub error_field: bool,
    /// Identical calls share one answer (see `AsyncFn::pure`).
    pub pure: bool,
    pub kernel: Arc<dyn Kernel>,
    pub runtime: Bound,
}

impl TypedFunc {
    pub fn new(
        name: String,
        input: DataType,
        output: DataType,
        error_field: bool,
        pure: bool,
        kernel: Arc<dyn Kernel>,
        runtime: Bound,
    ) -> Self {
        Self {
            name,
            signature: Signature::any(1, Volatility::Volatile),
            input,
            output,
            error_field,
            pure,
            kernel,
            runtime,
        }
    }

    /// The SQL return type: the output, with every field nullable and an `error`
    /// field added when the error field is on.
    pub fn return_type(output: &DataType, error_field: bool) -> DataType {
        match (output, error_field) {
            (DataType::Struct(fields), true) => DataType::Struct(with_error(fields)),
            _ => output.clone(),
        }
    }
}

fn with_error(fields: &Fields) -> Fields {
    fields
        .iter()
        .map(|f| Arc::new(f.as_ref().clone().with_nullable(true)))
        .chain(std::iter::once(Arc::new(Field::new(
            "error",
            DataType::Utf8,
            true,
        ))))
        .collect()
}

impl std::fmt::Debug for TypedFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedFunc")
            .field("name", &self.name)
            .field("input", &self.input)
            .field("output", &self.output)
            .finish()
    }
}

impl PartialEq for TypedFunc {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.kernel, &other.kernel)
    }
}

impl Eq for TypedFunc {}

impl Hash for TypedFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for TypedFunc {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let [arg] = arg_types else {
            return plan_err!("{} takes 1 argument, got {}", self.name, arg_types.len());
        };
        if !compatible(arg, &self.input) {
            return plan_err!(
                "{}: argument 1 must be {} (or convertible to it), got {arg}",
                self.name,
                self.input
            );
        }
        Ok(Self::return_type(&self.output, self.error_field))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        internal_err!("{} must be invoked asynchronously", self.name)
    }
}

#[async_trait]
impl AsyncScalarUDFImpl for TypedFunc {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let settings: AsyncUdfConfig = config::get(&args.config_options);
        let array = cast(&args.args[0].to_array(n)?, &self.input)?;
        let positions: Vec<usize> = (0..n).filter(|&i| array.is_valid(i)).collect();
        let rows = if positions.len() == n {
            array
        } else {
            let idx = UInt32Array::from_iter_values(positions.iter().map(|&i| i as u32));
            take(&array, &idx, None)?
        };
        let runtime = self.runtime.get(&self.name)?;
        let journal = runtime.journal(&settings)?;
        let flow = current_flow();
        let outputs = self.kernel.run(
            rows,
            Run {
                name: &self.name,
                slots: runtime
                    .budget()
                    .slots(settings.max_in_flight.get(), settings.fair_share),
                chunk_size: settings.chunk_size.get(),
                on_error: settings.on_error,
                positions: &positions,
                retry: settings.retry_policy(),
                input_type: &self.input,
                output: &self.output,
                partition_offset: current_chunk()
                    .filter(|cx| cx.partition_index.is_some())
                    .map(|cx| cx.rows.start),
                once: Once {
                    journal: journal.as_ref(),
                    merger: runtime.merger(),
                    flow: flow.as_deref(),
                },
                pure: self.pure,
            },
        );
        let outputs = outputs.await?;

        // back to batch rows: NULL input rows get NULL
        let mut slot = vec![None; n];
        for (k, &i) in positions.iter().enumerate() {
            slot[i] = Some(k as u32);
        }
        let slot = UInt32Array::from(slot);
        let values = take(&outputs.values, &slot, None)?;
        if !self.error_field {
            return Ok(ColumnarValue::Array(values));
        }
        let errors: StringArray = slot
            .iter()
            .map(|k| k.and_then(|k| outputs.errors[k as usize].as_deref()))
            .collect();
        Ok(ColumnarValue::Array(attach_errors(&values, errors)?))
    }
}

/// Appends the `error` field: a failed row is a struct whose value fields are NULL
/// and whose `error` says why.
fn attach_errors(values: &ArrayRef, errors: StringArray) -> Result<ArrayRef> {
    let Some(values) = values.as_any().downcast_ref::<StructArray>() else {
        return internal_err!("the error field needs a struct output");
    };
    let failed = BooleanArray::from_iter((0..errors.len()).map(|i| Some(errors.is_valid(i))));
    let mut columns = values
        .columns()
        .iter()
        .map(|c| nullif(c.as_ref(), &failed))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let valid =
        NullBuffer::from_iter((0..errors.len()).map(|i| values.is_valid(i) || errors.is_valid(i)));
    columns.push(Arc::new(errors) as ArrayRef);
    Ok(Arc::new(StructArray::try_new(
        with_error(values.fields()),
        columns,
        Some(valid),
    )?))
}
