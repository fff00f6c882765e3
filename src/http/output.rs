//! The result struct of the HTTP functions.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, MapBuilder, MapFieldNames,
    StringBuilder, StructArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Fields};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

use crate::transport::{Body, Outcome};

/// `STRUCT<status INT, body VARCHAR (BINARY when binary), error VARCHAR,
/// attempts INT, elapsed_ms BIGINT, headers MAP(VARCHAR, VARCHAR), content_type
/// VARCHAR, reason VARCHAR, size BIGINT>` (`size`: the body's length in bytes).
pub fn return_type(binary: bool) -> DataType {
    DataType::Struct(fields(binary))
}

fn names() -> MapFieldNames {
    MapFieldNames {
        entry: "entries".into(),
        key: "key".into(),
        value: "value".into(),
    }
}

fn headers_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

fn fields(binary: bool) -> Fields {
    let body = if binary {
        DataType::Binary
    } else {
        DataType::Utf8
    };
    Fields::from(vec![
        Field::new("status", DataType::Int32, true),
        Field::new("body", body, true),
        Field::new("error", DataType::Utf8, true),
        Field::new("attempts", DataType::Int32, true),
        Field::new("elapsed_ms", DataType::Int64, true),
        Field::new("headers", headers_type(), true),
        Field::new("content_type", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("size", DataType::Int64, true),
    ])
}

/// Builds the result column; `None` rows (NULL url) are NULL structs.
///
/// Takes the outcomes by value and drops each body once copied, with the
/// body buffer sized up front: building never holds much more than the
/// bodies once (a growing builder next to the outcomes would hold them up to
/// three times).
pub fn build(rows: Vec<Option<Box<Outcome>>>, binary: bool) -> ArrayRef {
    let body_bytes = rows
        .iter()
        .flatten()
        .filter_map(|o| o.body.as_ref())
        .map(Body::len)
        .sum();
    let error_bytes = rows
        .iter()
        .flatten()
        .filter_map(|o| o.error.as_ref())
        .map(String::len)
        .sum();
    let mut text = StringBuilder::with_capacity(if binary { 0 } else { rows.len() }, body_bytes);
    let mut bytes = BinaryBuilder::with_capacity(if binary { rows.len() } else { 0 }, body_bytes);
    let mut error = StringBuilder::with_capacity(rows.len(), error_bytes);
    let mut status = Int32Builder::with_capacity(rows.len());
    let mut attempts = Int32Builder::with_capacity(rows.len());
    let mut elapsed = Int64Builder::with_capacity(rows.len());
    let mut headers = MapBuilder::new(Some(names()), StringBuilder::new(), StringBuilder::new())
        .with_values_field(Field::new("value", DataType::Utf8, true));
    let mut content_type = StringBuilder::new();
    let mut reason = StringBuilder::new();
    let mut size = Int64Builder::with_capacity(rows.len());
    let nulls = NullBuffer::from_iter(rows.iter().map(Option::is_some));
    for row in rows {
        let o = row.as_ref();
        let code = o.and_then(|o| o.status);
        status.append_option(code.map(i32::from));
        let body = o.and_then(|o| o.body.as_ref());
        size.append_option(body.map(|b| i64::try_from(b.len()).unwrap_or(i64::MAX)));
        if binary {
            bytes.append_option(body.map(Body::bytes));
        } else {
            text.append_option(body.and_then(Body::text));
        }
        error.append_option(o.and_then(|o| o.error.as_deref()));
        attempts.append_option(o.map(|o| i32::try_from(o.attempts).unwrap_or(i32::MAX)));
        elapsed.append_option(o.map(|o| i64::try_from(o.elapsed_ms).unwrap_or(i64::MAX)));
        reason.append_option(
            code.and_then(|c| StatusCode::from_u16(c).ok())
                .and_then(|c| c.canonical_reason()),
        );
        if let Some(o) = o.filter(|o| o.status.is_some()) {
            let mut kind = None;
            for (name, value) in o.headers.iter() {
                if name == CONTENT_TYPE.as_str() {
                    kind = Some(value);
                }
                headers.keys().append_value(name);
                headers.values().append_value(value);
            }
            content_type.append_option(kind);
            let _ = headers.append(true);
        } else {
            content_type.append_null();
            let _ = headers.append(false);
        }
    }
    let body: ArrayRef = if binary {
        Arc::new(bytes.finish())
    } else {
        Arc::new(text.finish())
    };
    debug_assert_eq!(headers.len(), status.len());
    Arc::new(StructArray::new(
        fields(binary),
        vec![
            Arc::new(status.finish()),
            body,
            Arc::new(error.finish()),
            Arc::new(attempts.finish()),
            Arc::new(elapsed.finish()),
            Arc::new(headers.finish()),
            Arc::new(content_type.finish()),
            Arc::new(reason.finish()),
            Arc::new(size.finish()),
        ],
        Some(nulls),
    ))
}
