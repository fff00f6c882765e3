//! `urlencode(text)` and `urlencode(map)`, as in pgsql-http: text percent-encoded
//! for a URL (`a b&c` → `a+b%26c`), a map as a query string (`k=v&k2=v2`).

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_datafusion_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use url::form_urlencoded::{Serializer, byte_serialize};

use super::args::{is_string, is_string_map};
use super::rows::entries;
use crate::documented::SECTION;

/// The `urlencode` function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct UrlEncode {
    signature: Signature,
}

impl UrlEncode {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        SECTION,
        "Percent-encodes text for a URL (space as '+', like a form), or a MAP(VARCHAR, \
         VARCHAR) as a query string 'k=v&k2=v2' (NULL values left out).",
        "urlencode(text | map)",
    )
    .with_sql_example(
        "SELECT 'https://api.example.com/search?' || urlencode(MAP {'q': 'café & co'})",
    )
    .with_argument("value", "VARCHAR, or MAP(VARCHAR, VARCHAR)")
    .build()
});

impl ScalarUDFImpl for UrlEncode {
    fn name(&self) -> &'static str {
        "urlencode"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] if is_string(t) || is_string_map(t) => Ok(DataType::Utf8),
            [t] => plan_err!(
                "urlencode: argument 1 (value) must be VARCHAR or MAP(VARCHAR, VARCHAR), got {t}"
            ),
            _ => plan_err!("urlencode expects one argument, got {}", arg_types.len()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let input = args.args[0].to_array(rows)?;
        let mut out = StringBuilder::new();
        if let DataType::Map(..) = input.data_type() {
            let map = input.as_map();
            for i in 0..map.len() {
                if map.is_null(i) {
                    out.append_null();
                    continue;
                }
                let pairs =
                    entries(Some(map), i).map_err(|e| exec_datafusion_err!("urlencode: {e}"))?;
                let mut query = Serializer::new(String::new());
                query.extend_pairs(pairs);
                out.append_value(query.finish());
            }
        } else {
            let text = cast(&input, &DataType::Utf8)?;
            for value in text.as_string::<i32>() {
                out.append_option(value.map(|v| byte_serialize(v.as_bytes()).collect::<String>()));
            }
        }
        let array: ArrayRef = Arc::new(out.finish());
        Ok(ColumnarValue::Array(array))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
