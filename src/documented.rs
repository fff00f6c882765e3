//! Documentation for the async functions a session lists.
//!
//! DataFusion 55's `AsyncScalarUDF` (the wrapper that makes a function async)
//! does not forward `documentation()`, so `information_schema.routines` and
//! `SHOW FUNCTIONS` would say nothing about `http_get` or a typed function. The
//! session's registry therefore holds each async function inside a
//! [`Documented`] function that forwards everything and adds the
//! documentation; the planner replaces it by the async function itself before
//! anything else sees the call ([`crate::AsyncRuntime`]'s rebinding), so
//! execution is unchanged.

use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};

/// The section our functions are listed under.
pub(crate) const SECTION: DocSection = DocSection {
    include: true,
    label: "Async functions (datafusion-async-udf)",
    description: None,
};

/// An async function and its documentation (see the module documentation).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Documented {
    inner: ScalarUDF,
    doc: Documentation,
}

/// `udf` (an async function) as the registry holds it, with `doc`.
pub(crate) fn documented(udf: ScalarUDF, doc: Documentation) -> ScalarUDF {
    ScalarUDF::new_from_impl(Documented { inner: udf, doc })
}

/// The async function inside `udf`, if `udf` is one made by [`documented`].
pub(crate) fn inner(udf: &ScalarUDF) -> Option<&ScalarUDF> {
    udf.inner().downcast_ref::<Documented>().map(|d| &d.inner)
}

impl ScalarUDFImpl for Documented {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.doc)
    }
}
