//! The result struct of the HTTP functions.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder, Int64Builder, StringBuilder, StructArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Fields};

use crate::transport::Outcome;

/// `STRUCT<status INT, body VARCHAR, error VARCHAR, attempts INT, elapsed_ms BIGINT>`.
pub fn return_type() -> DataType {
    DataType::Struct(fields())
}

fn fields() -> Fields {
    Fields::from(vec![
        Field::new("status", DataType::Int32, true),
        Field::new("body", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, true),
        Field::new("attempts", DataType::Int32, true),
        Field::new("elapsed_ms", DataType::Int64, true),
    ])
}

/// Builds the result column; `None` rows (NULL url) are NULL structs.
///
/// Takes the outcomes by value and drops each body once copied, with the
/// string buffers sized up front: building never holds much more than the
/// bodies once (a growing builder next to the outcomes would hold them up to
/// three times).
pub fn build(rows: Vec<Option<Outcome>>) -> ArrayRef {
    let bytes = |f: fn(&Outcome) -> Option<&String>| -> usize {
        rows.iter().flatten().filter_map(f).map(String::len).sum()
    };
    let mut body = StringBuilder::with_capacity(rows.len(), bytes(|o| o.body.as_ref()));
    let mut error = StringBuilder::with_capacity(rows.len(), bytes(|o| o.error.as_ref()));
    let mut status = Int32Builder::with_capacity(rows.len());
    let mut attempts = Int32Builder::with_capacity(rows.len());
    let mut elapsed = Int64Builder::with_capacity(rows.len());
    let nulls = NullBuffer::from_iter(rows.iter().map(Option::is_some));
    for row in rows {
        let o = row.as_ref();
        status.append_option(o.and_then(|o| o.status).map(i32::from));
        body.append_option(o.and_then(|o| o.body.as_deref()));
        error.append_option(o.and_then(|o| o.error.as_deref()));
        attempts.append_option(o.map(|o| i32::try_from(o.attempts).unwrap_or(i32::MAX)));
        elapsed.append_option(o.map(|o| i64::try_from(o.elapsed_ms).unwrap_or(i64::MAX)));
    }
    Arc::new(StructArray::new(
        fields(),
        vec![
            Arc::new(status.finish()),
            Arc::new(body.finish()),
            Arc::new(error.finish()),
            Arc::new(attempts.finish()),
            Arc::new(elapsed.finish()),
        ],
        Some(nulls),
    ))
}
