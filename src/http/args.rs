//! The arguments of the HTTP functions at plan time: count and types, and a
//! literal method; errors name the function and the argument.

use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};

use super::{Kind, Param, method};

pub(crate) fn is_string(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

fn is_bytes(t: &DataType) -> bool {
    is_string(t)
        || matches!(
            t,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        )
}

pub(crate) fn is_string_map(t: &DataType) -> bool {
    match t {
        DataType::Null => true,
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => {
                is_string(fields[0].data_type()) && is_string(fields[1].data_type())
            }
            _ => false,
        },
        _ => false,
    }
}

/// Plan-time check of argument count and types (and of a literal method, when
/// `literals` has it); the error names the function and the argument.
pub fn check(kind: Kind, arg_types: &[DataType], literals: &[Option<&ScalarValue>]) -> Result<()> {
    let (params, required) = kind.params();
    let fname = kind.name();
    if arg_types.len() < required || arg_types.len() > params.len() {
        return plan_err!(
            "{fname} expects {}, got {} argument(s)",
            kind.usage(),
            arg_types.len()
        );
    }
    for (i, (t, param)) in arg_types.iter().zip(params).enumerate() {
        let (ok, want) = match param {
            Param::Headers | Param::Params | Param::Form => (
                is_string_map(t),
                "MAP(VARCHAR, VARCHAR), e.g. MAP {'Authorization': 'Bearer x'}",
            ),
            Param::Body => (is_bytes(t), "VARCHAR or BINARY"),
            Param::Method | Param::Url => (is_string(t), "VARCHAR"),
        };
        if !ok {
            return plan_err!(
                "{fname}: argument {} ({}) must be {want}, got {t}",
                i + 1,
                param.name()
            );
        }
        if *param == Param::Method {
            let literal = literals.get(i).copied().flatten();
            if let Some(Some(Some(raw))) = literal.map(ScalarValue::try_as_str)
                && let Err(e) = method(raw)
            {
                return plan_err!("{fname}: argument {} (method): {e}", i + 1);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Fields};

    use super::*;

    fn map_of(k: DataType, v: DataType) -> DataType {
        let entries = Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("key", k, false),
                Field::new("value", v, true),
            ])),
            false,
        );
        DataType::Map(Arc::new(entries), false)
    }

    fn err(kind: Kind, types: &[DataType]) -> String {
        check(kind, types, &[]).unwrap_err().to_string()
    }

    #[test]
    fn usage() {
        assert_eq!(Kind::Get.usage(), "http_get(url [, headers [, params]])");
        assert_eq!(Kind::Post.usage(), "http_post(url, body [, headers])");
        assert_eq!(Kind::PostForm.usage(), "http_post_form(url, headers, form)");
        assert_eq!(
            Kind::Request.usage(),
            "http_request(method, url [, headers [, body]])"
        );
    }

    #[test]
    fn plan_errors_name_function_and_argument() {
        let map = map_of(DataType::Utf8, DataType::Utf8);
        assert!(check(Kind::Get, &[DataType::Utf8], &[]).is_ok());
        assert!(
            check(
                Kind::Get,
                &[DataType::Utf8View, map.clone(), map.clone()],
                &[]
            )
            .is_ok()
        );
        assert!(check(Kind::Post, &[DataType::Utf8, DataType::Null], &[]).is_ok());
        assert!(check(Kind::Put, &[DataType::Utf8, DataType::Binary], &[]).is_ok());

        let e = err(Kind::Get, &[]);
        assert!(
            e.contains("http_get expects http_get(url [, headers [, params]]), got 0"),
            "{e}"
        );
        let e = err(Kind::Get, &[DataType::Int64]);
        assert!(
            e.contains("http_get: argument 1 (url) must be VARCHAR, got Int64"),
            "{e}"
        );
        let e = err(Kind::Get, &[DataType::Utf8, DataType::Utf8]);
        assert!(e.contains("argument 2 (headers) must be MAP"), "{e}");
        let e = err(Kind::Get, &[DataType::Utf8, map.clone(), DataType::Utf8]);
        assert!(e.contains("argument 3 (params) must be MAP"), "{e}");
        let e = err(Kind::Post, &[DataType::Utf8]);
        assert!(
            e.contains("http_post expects http_post(url, body [, headers]), got 1"),
            "{e}"
        );
        let e = err(Kind::Post, &[DataType::Utf8, DataType::Int32]);
        assert!(
            e.contains("http_post: argument 2 (body) must be VARCHAR or BINARY"),
            "{e}"
        );
        let e = err(
            Kind::Post,
            &[
                DataType::Utf8,
                DataType::Utf8,
                map_of(DataType::Utf8, DataType::Int32),
            ],
        );
        assert!(e.contains("argument 3 (headers)"), "{e}");
        let e = err(Kind::PostForm, &[DataType::Utf8, map.clone()]);
        assert!(
            e.contains("http_post_form expects http_post_form(url, headers, form), got 2"),
            "{e}"
        );
    }

    #[test]
    fn a_literal_method_is_checked() {
        let types = [DataType::Utf8, DataType::Utf8];
        let get = ScalarValue::from("get");
        let brew = ScalarValue::from("BREW");
        assert!(check(Kind::Request, &types, &[Some(&get), None]).is_ok());
        let e = check(Kind::Request, &types, &[Some(&brew), None])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http_request: argument 1 (method): unknown HTTP method 'BREW' (one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)"),
            "{e}"
        );
        // a column: checked row by row
        assert!(check(Kind::Request, &types, &[None, None]).is_ok());
    }
}
