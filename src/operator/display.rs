//! Plans show header maps without secret values.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, MapArray, StringArray, StructArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;

use crate::transport::SecretHeaders;

/// How plans show the calls: values of the secret header names (the
/// transport's one list: built-in names and `http.secret_headers`) in literal
/// maps hidden, and a warning when certificates are not verified.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secret: SecretHeaders,
    insecure: bool,
}

impl Redactor {
    pub fn new(extra: &str, tls_insecure: bool) -> Self {
        Self {
            secret: SecretHeaders::new(extra),
            insecure: tls_insecure,
        }
    }

    /// What the plan adds after the calls: the `http.tls_insecure` warning.
    pub fn note(&self) -> &'static str {
        if self.insecure {
            ", http.tls_insecure=true (server certificates are NOT verified)"
        } else {
            ""
        }
    }

    pub fn is_secret(&self, header: &str) -> bool {
        self.secret.is_secret(header)
    }

    /// `expr` as text, secret header values replaced by `***`.
    pub fn show(&self, expr: &Arc<dyn PhysicalExpr>) -> String {
        let hidden = Arc::clone(expr).transform(|e| {
            let Some(lit) = e.downcast_ref::<Literal>() else {
                return Ok(Transformed::no(e));
            };
            let ScalarValue::Map(map) = lit.value() else {
                return Ok(Transformed::no(e));
            };
            match self.hide(map) {
                Some(map) => Ok(Transformed::yes(
                    Arc::new(Literal::new(ScalarValue::Map(Arc::new(map)))) as _,
                )),
                None => Ok(Transformed::no(e)),
            }
        });
        match hidden {
            Ok(t) => t.data.to_string(),
            Err(_) => "<expression>".to_string(),
        }
    }

    /// The map with secret values replaced, or `None` if it holds none.
    fn hide(&self, map: &MapArray) -> Option<MapArray> {
        let entries = map.entries();
        let keys = cast(entries.column(0), &DataType::Utf8).ok()?;
        let keys = keys.as_any().downcast_ref::<StringArray>()?;
        let secret: Vec<bool> = keys
            .iter()
            .map(|k| k.is_some_and(|k| self.is_secret(k)))
            .collect();
        if !secret.contains(&true) {
            return None;
        }
        let values = cast(entries.column(1), &DataType::Utf8).ok()?;
        let values = values.as_any().downcast_ref::<StringArray>()?;
        let hidden: StringArray = values
            .iter()
            .zip(&secret)
            .map(|(v, &s)| if s { v.map(|_| "***") } else { v })
            .collect();
        let hidden = cast(&hidden, entries.column(1).data_type()).ok()?;
        let entries = StructArray::try_new(
            entries.fields().clone(),
            vec![Arc::clone(entries.column(0)), hidden as ArrayRef],
            entries.nulls().cloned(),
        )
        .ok()?;
        let DataType::Map(field, sorted) = map.data_type() else {
            return None;
        };
        MapArray::try_new(
            Arc::clone(field),
            map.offsets().clone(),
            entries,
            map.nulls().cloned(),
            *sorted,
        )
        .ok()
    }
}
