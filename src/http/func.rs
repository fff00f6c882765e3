//! The async scalar UDF behind `http_get` and `http_post`.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::datatypes::DataType;
use async_trait::async_trait;
use datafusion::common::{Result, exec_err, internal_err};
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::args::{RowArgs, check};
use super::policy::Settings;
use super::request::{Outcome, redact};
use super::{Kind, output};
use crate::config::{self, AsyncUdfConfig, HttpConfig, OnError};
use crate::engine::{held, map_ordered, metrics, within};
use crate::runtime::AsyncRuntime;

/// `http_get` or `http_post` bound to a session's [`AsyncRuntime`].
#[derive(Debug)]
pub struct HttpFunc {
    kind: Kind,
    signature: Signature,
    runtime: Arc<AsyncRuntime>,
}

impl HttpFunc {
    pub fn new(kind: Kind, runtime: Arc<AsyncRuntime>) -> Self {
        Self {
            kind,
            // argument types are checked in `return_type`, which names the argument
            signature: Signature::variadic_any(Volatility::Volatile),
            runtime,
        }
    }

    /// The function ready to register.
    pub fn udf(kind: Kind, runtime: Arc<AsyncRuntime>) -> ScalarUDF {
        AsyncScalarUDF::new(Arc::new(Self::new(kind, runtime))).into_scalar_udf()
    }
}

impl PartialEq for HttpFunc {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && Arc::ptr_eq(&self.runtime, &other.runtime)
    }
}

impl Eq for HttpFunc {}

impl Hash for HttpFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
    }
}

impl ScalarUDFImpl for HttpFunc {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check(self.kind, arg_types)?;
        Ok(output::return_type())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        internal_err!("{} must be invoked asynchronously", self.name())
    }
}

#[async_trait]
impl AsyncScalarUDFImpl for HttpFunc {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let engine: AsyncUdfConfig = config::get(&args.config_options);
        let http: HttpConfig = config::get(&args.config_options);
        let settings = &Settings::from(&http);
        let rows = RowArgs::new(self.kind, &args.args, args.number_rows)?;
        let semaphore = self.runtime.budget().semaphore(engine.max_in_flight.get());
        let client = self.runtime.http();
        let secrets = self.runtime.secrets();
        let on_error = http.on_error;
        let rows_ref = &rows;
        let calls = map_ordered(semaphore, rows.called_rows(), |i| async move {
            let outcome = match rows_ref.request(i, secrets) {
                Ok(request) => client.send(request, settings).await,
                Err(reason) => Outcome::failed(reason),
            };
            if outcome.error.is_some() {
                metrics::failed(outcome.error_kind());
            }
            held::hold(outcome.body.as_ref().map_or(0, String::len));
            match (&outcome.error, on_error) {
                (Some(error), OnError::Fail) => exec_err!(
                    "{}: row {i} of the batch, url '{}': {error}",
                    self.name(),
                    redact(rows_ref.url(i))
                ),
                _ => Ok((i, outcome)),
            }
        });
        let outcomes = within(Arc::clone(self.runtime.budget().stats()), calls).await?;

        let mut column = vec![None; args.number_rows];
        for (i, outcome) in outcomes {
            column[i] = Some(outcome);
        }
        Ok(ColumnarValue::Array(output::build(column)))
    }
}
