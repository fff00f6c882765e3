//! Typed async column functions from Rust closures.
//!
//! Four shapes, one API: the input and output types decide the shape.
//!
//! | input → output | example |
//! |---|---|
//! | scalar → scalar | `\|id: i64\| async move { Ok::<_, String>(id * 2) }` |
//! | scalar → struct | `\|addr: String\| async move { geocode(addr).await }` → `Geo { lat, lon }` |
//! | struct → scalar | `\|p: Person\| async move { score(p).await }` → `f64` |
//! | struct → struct | `\|a: Address\| async move { standardize(a).await }` → `Address` |
//!
//! Scalars are Arrow primitives and strings (`i32`, `i64`, `f64`, `bool`, `String`,
//! …); structs are `#[derive(Serialize, Deserialize)]` Rust types, converted by
//! [serde_arrow](https://docs.rs/serde_arrow), their Arrow type traced from the Rust
//! type once at registration (or declared with [`AsyncFn::returns`]). In SQL a
//! struct argument is built with `named_struct('street', s, 'city', c)` or comes
//! from a struct column; field names must match.
//!
//! Two forms: [`AsyncFn::per_row`] calls the closure once per row;
//! [`AsyncFn::per_chunk`] once per chunk of up to `async_udf.chunk_size` rows with a
//! [`ChunkContext`], returning one value per row (another length fails the query).
//! Both run on the [engine](crate::engine) like `http_get`: at most
//! `async_udf.max_in_flight` calls in flight per session, output in row order,
//! NULL input rows give NULL without a call, dropping the query cancels the calls.
//!
//! A failure (`Err`) follows `async_udf.on_error`: `'row'` makes that row NULL (only
//! that row, or that chunk's rows for a failed chunk), or, with
//! [`AsyncFn::with_error_field`], a struct whose `error` field says why; `'fail'`
//! fails the query naming the function and the row.
//!
//! A call failing with a transient [`CallError`] is retried (exponential backoff,
//! full jitter, its `retry_after` honoured): `async_udf.max_retries`,
//! `async_udf.retry_initial_ms`, `async_udf.retry_max_ms`. A per-chunk call is
//! retried whole. Inputs are cloned for each attempt, hence `I: Clone`.

mod convert;
mod error;
mod func;
mod kernel;

use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::async_udf::AsyncScalarUDF;
use datafusion::logical_expr::{Documentation, ScalarUDF};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::engine::ChunkContext;
pub use convert::arrow_type;
pub use error::CallError;

use func::TypedFunc;
use kernel::{ChunkKernel, Kernel, RowKernel};

use crate::documented;
use crate::runtime::AsyncRuntime;

/// A typed async function, ready to register.
pub struct AsyncFn {
    name: String,
    description: Option<String>,
    input: DataType,
    output: DataType,
    error_field: bool,
    pure: bool,
    kernel: Arc<dyn Kernel>,
}

impl std::fmt::Debug for AsyncFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AsyncFn({}: {} -> {})",
            self.name, self.input, self.output
        )
    }
}

impl AsyncFn {
    /// A function called once per row: `f(row) -> Result<output, error>`.
    pub fn per_row<I, O, E, F, Fut>(name: impl Into<String>, f: F) -> Result<Self>
    where
        I: DeserializeOwned + Clone + Send + Sync + 'static,
        O: Serialize + DeserializeOwned + Send + 'static,
        E: Display + Send + 'static,
        F: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        let (input, output) = (arrow_type::<I>()?, arrow_type::<O>()?);
        let kernel = RowKernel {
            f,
            input: input.clone(),
            types: PhantomData,
        };
        Ok(Self::new(name.into(), input, output, Arc::new(kernel)))
    }

    /// A function called once per chunk of up to `async_udf.chunk_size` non-NULL
    /// rows: `f(rows, context) -> Result<one output per row, error>`.
    pub fn per_chunk<I, O, E, F, Fut>(name: impl Into<String>, f: F) -> Result<Self>
    where
        I: DeserializeOwned + Clone + Send + Sync + 'static,
        O: Serialize + DeserializeOwned + Send + 'static,
        E: Display + Send + 'static,
        F: Fn(Vec<I>, ChunkContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>, E>> + Send + 'static,
    {
        let (input, output) = (arrow_type::<I>()?, arrow_type::<O>()?);
        let kernel = ChunkKernel {
            f,
            input: input.clone(),
            types: PhantomData,
        };
        Ok(Self::new(name.into(), input, output, Arc::new(kernel)))
    }

    fn new(name: String, input: DataType, output: DataType, kernel: Arc<dyn Kernel>) -> Self {
        Self {
            name,
            description: None,
            input,
            output,
            error_field: false,
            pure: false,
            kernel,
        }
    }

    /// Declares the Arrow output type instead of the traced one, e.g.
    /// `DataType::LargeUtf8` for a `String` output. The values are written as that
    /// type (serde_arrow must be able to write the Rust output type as it: a row
    /// that cannot be written fails the query naming the type).
    pub fn returns(mut self, data_type: DataType) -> Self {
        self.output = data_type;
        self
    }

    /// For struct outputs: add an `error VARCHAR` field; a failed row (under
    /// `async_udf.on_error = 'row'`) is then a struct with NULL values and the error.
    pub fn with_error_field(mut self) -> Result<Self> {
        if !matches!(self.output, DataType::Struct(_)) {
            return plan_err!(
                "{}: with_error_field needs a struct output, the output is {}",
                self.name,
                self.output
            );
        }
        self.error_field = true;
        Ok(self)
    }

    /// Declares the function pure: identical inputs give identical outputs
    /// and a call changes nothing. Identical calls in flight in the session
    /// then share one call and, with `async_udf.journal` on, a recorded answer
    /// answers identical calls for `async_udf.journal_ttl`. A function not
    /// declared pure is called once per row (per chunk) even for identical
    /// inputs: with the journal on, the k-th identical call of a query is its
    /// own entry.
    pub fn pure(mut self) -> Self {
        self.pure = true;
        self
    }

    /// The Arrow type of the argument.
    pub fn input_type(&self) -> &DataType {
        &self.input
    }

    /// The SQL return type.
    pub fn return_type(&self) -> DataType {
        TypedFunc::return_type(&self.output, self.error_field)
    }

    /// What `information_schema.routines` and `SHOW FUNCTIONS` say the
    /// function does (by default: its name and types).
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    fn documentation(&self) -> Documentation {
        let description = self.description.clone().unwrap_or_else(|| {
            format!(
                "Typed async function: {} -> {}",
                self.input,
                self.return_type()
            )
        });
        let per = if self.kernel.per_chunk() {
            "called once per chunk of up to async_udf.chunk_size non-NULL rows"
        } else {
            "called once per non-NULL row"
        };
        Documentation::builder(
            documented::SECTION,
            description,
            format!("{}(arg)", self.name),
        )
        .with_argument("arg", format!("{} ({per})", self.input))
        .build()
    }

    /// The function bound to `runtime`, as the session's registry holds it.
    fn into_udf(self, runtime: &Arc<AsyncRuntime>) -> ScalarUDF {
        let doc = self.documentation();
        let per_chunk = self.kernel.per_chunk();
        let func = TypedFunc::new(
            self.name,
            self.input,
            self.output,
            self.error_field,
            self.pure,
            self.kernel,
            crate::runtime::Bound::new(runtime),
        );
        let udf = AsyncScalarUDF::new(Arc::new(func)).into_scalar_udf();
        // one argument: a NULL one is not called
        runtime.adopt(
            &udf,
            crate::runtime::Calling {
                per_chunk,
                key_arg: 0,
            },
        );
        documented::documented(udf, doc)
    }

    /// Registers the function on `session` (`&ctx` or `&mut state`), sharing
    /// the budget of everything [`crate::register_all`] registered there.
    pub fn register(self, session: impl crate::SessionLike) -> Result<()> {
        session.with_state(|state| {
            let runtime = AsyncRuntime::from_config(state.config())?;
            datafusion::execution::FunctionRegistry::register_udf(
                state,
                Arc::new(self.into_udf(&runtime)),
            )?;
            Ok(())
        })
    }
}
