//! Rust values ↔ Arrow arrays for typed functions, carried by serde_arrow.
//!
//! A value of any serde type `T` is one Arrow column: `String` is `Utf8`, `i64` is
//! `Int64`, `Option<T>` is nullable, a `#[derive(Serialize, Deserialize)]` struct is
//! a `Struct` with a field per member (nested structs, `Vec`s and `Option`s too).

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DataFusionError, Result, exec_datafusion_err};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_arrow::schema::{SchemaLike, TracingOptions};

/// One column named `value`: how a lone value travels through serde_arrow, which
/// works on records.
#[derive(Serialize, Deserialize)]
struct Item<T> {
    value: T,
}

fn external(e: serde_arrow::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The Arrow type of `T`, traced from its serde shape.
pub fn arrow_type<T: DeserializeOwned>() -> Result<DataType> {
    let options = TracingOptions::default()
        .allow_null_fields(true)
        .strings_as_large_utf8(false)
        .sequence_as_large_list(false)
        .bytes_as_large_binary(false)
        .enums_without_data_as_strings(true);
    let fields = Vec::<FieldRef>::from_type::<Item<T>>(options).map_err(external)?;
    Ok(fields[0].data_type().clone())
}

fn value_field(data_type: &DataType) -> FieldRef {
    Arc::new(Field::new("value", data_type.clone(), true))
}

/// Reads `array` (of `data_type`, no NULL rows) as Rust values.
pub fn from_array<T: DeserializeOwned>(array: &ArrayRef, data_type: &DataType) -> Result<Vec<T>> {
    let items: Vec<Item<T>> =
        serde_arrow::from_arrow(&[value_field(data_type)], std::slice::from_ref(array)).map_err(
            |e| exec_datafusion_err!("cannot read the input as the function's type: {e}"),
        )?;
    Ok(items.into_iter().map(|i| i.value).collect())
}

/// Writes values (`None` = NULL) as an array of `data_type`.
pub fn to_array<T: Serialize>(values: Vec<Option<T>>, data_type: &DataType) -> Result<ArrayRef> {
    let items: Vec<Item<Option<T>>> = values.into_iter().map(|value| Item { value }).collect();
    let mut arrays = serde_arrow::to_arrow(&[value_field(data_type)], &items)
        .map_err(|e| exec_datafusion_err!("cannot write the output as {data_type}: {e}"))?;
    Ok(arrays.remove(0))
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Whether an argument of type `from` may be cast to the function's input type
/// `to` without changing what it means: strings to strings, numbers to numbers,
/// structs with the same field names, lists of compatible items.
pub fn compatible(from: &DataType, to: &DataType) -> bool {
    use DataType::{LargeList, List, ListView, Null, Struct};
    match (from, to) {
        _ if from == to => true,
        (Null, _) => true,
        (f, t) if is_string(f) && is_string(t) => true,
        (f, t) if f.is_numeric() && t.is_numeric() => true,
        (Struct(f), Struct(t)) => {
            f.len() == t.len()
                && t.iter().all(|tf| {
                    f.iter()
                        .find(|ff| ff.name() == tf.name())
                        .is_some_and(|ff| compatible(ff.data_type(), tf.data_type()))
                })
        }
        (List(f) | LargeList(f) | ListView(f), List(t) | LargeList(t)) => {
            compatible(f.data_type(), t.data_type())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Address {
        street: String,
        number: Option<i32>,
        tags: Vec<String>,
    }

    #[test]
    fn types_are_traced() {
        assert_eq!(arrow_type::<i64>().unwrap(), DataType::Int64);
        assert_eq!(arrow_type::<String>().unwrap(), DataType::Utf8);
        assert_eq!(arrow_type::<Option<f64>>().unwrap(), DataType::Float64);
        let DataType::Struct(fields) = arrow_type::<Address>().unwrap() else {
            panic!()
        };
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[1].data_type(), &DataType::Int32);
        assert!(fields[1].is_nullable());
    }

    #[test]
    fn values_round_trip() {
        let t = arrow_type::<Address>().unwrap();
        let rows = vec![
            Some(Address {
                street: "Main".into(),
                number: Some(1),
                tags: vec!["a".into()],
            }),
            None,
            Some(Address {
                street: "Side".into(),
                number: None,
                tags: vec![],
            }),
        ];
        let array = to_array(rows, &t).unwrap();
        assert_eq!(array.len(), 3);
        assert!(array.is_null(1));
        let back: Vec<Option<Address>> = from_array(&array, &t).unwrap();
        assert_eq!(back[2].as_ref().unwrap().street, "Side");
        assert!(back[1].is_none());
    }

    #[test]
    fn compatibility() {
        use DataType::*;
        assert!(compatible(&Utf8View, &Utf8));
        assert!(compatible(&Int32, &Int64));
        assert!(!compatible(&Utf8, &Int64));
        assert!(!compatible(&Int64, &Utf8));
        let t = arrow_type::<Address>().unwrap();
        assert!(compatible(&t, &t));
        assert!(!compatible(&Utf8, &t));
    }
}
