//! Arguments of `http_get(url [, headers])` and `http_post(url, body [, headers])`:
//! checked at plan time, read row by row at execution time.

use arrow::array::{Array, ArrayRef, AsArray, MapArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::ColumnarValue;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::Kind;
use crate::secret::{Secrets, first_marker};
use crate::transport::{Request, parse_url};

/// The parameter names, in order, for error messages.
fn params(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Get => &["url", "headers"],
        Kind::Post => &["url", "body", "headers"],
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

fn is_string_map(t: &DataType) -> bool {
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

/// Plan-time check of argument count and types; the error names the function and
/// the argument.
pub fn check(kind: Kind, arg_types: &[DataType]) -> Result<()> {
    let names = params(kind);
    let required = names.len() - 1;
    let fname = kind.name();
    if arg_types.len() < required || arg_types.len() > names.len() {
        let signature = match kind {
            Kind::Get => "http_get(url [, headers])",
            Kind::Post => "http_post(url, body [, headers])",
        };
        return plan_err!(
            "{fname} expects {signature}, got {} argument(s)",
            arg_types.len()
        );
    }
    for (i, (t, name)) in arg_types.iter().zip(names).enumerate() {
        let ok = if *name == "headers" {
            is_string_map(t)
        } else {
            is_string(t)
        };
        if !ok {
            let want = if *name == "headers" {
                "MAP(VARCHAR, VARCHAR), e.g. MAP {'Authorization': 'Bearer x'}"
            } else {
                "VARCHAR"
            };
            return plan_err!(
                "{fname}: argument {} ({name}) must be {want}, got {t}",
                i + 1
            );
        }
    }
    Ok(())
}

/// The arguments of one invocation, as arrays of `number_rows` rows.
pub struct RowArgs {
    kind: Kind,
    urls: StringArray,
    bodies: Option<StringArray>,
    headers: Option<MapArray>,
}

fn to_strings(value: &ColumnarValue, rows: usize) -> Result<StringArray> {
    let array: ArrayRef = cast(&value.to_array(rows)?, &DataType::Utf8)?;
    Ok(array.as_string::<i32>().clone())
}

impl RowArgs {
    pub fn new(kind: Kind, args: &[ColumnarValue], rows: usize) -> Result<Self> {
        let types: Vec<DataType> = args.iter().map(ColumnarValue::data_type).collect();
        check(kind, &types)?;
        let urls = to_strings(&args[0], rows)?;
        let (bodies, headers) = match kind {
            Kind::Get => (None, args.get(1)),
            Kind::Post => (Some(to_strings(&args[1], rows)?), args.get(2)),
        };
        let headers = match headers {
            Some(h) if h.data_type() != DataType::Null => Some(h.to_array(rows)?.as_map().clone()),
            _ => None,
        };
        if urls.len() != rows {
            return exec_err!("{}: expected {rows} rows, got {}", kind.name(), urls.len());
        }
        Ok(Self {
            kind,
            urls,
            bodies,
            headers,
        })
    }

    /// Rows with a non-NULL url: the only rows that are called.
    pub fn called_rows(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.urls.len()).filter(|&i| self.urls.is_valid(i))
    }

    /// The raw url of row `i` (for error messages).
    pub fn url(&self, i: usize) -> &str {
        self.urls.value(i)
    }

    /// The request of row `i`, or why it cannot be made. Secret markers are
    /// resolved in header values (for the URL's host) and refused elsewhere.
    pub fn request(&self, i: usize, secrets: &Secrets) -> Result<Request, String> {
        let raw = self.urls.value(i);
        refuse_secret(raw, "the URL")?;
        let url = parse_url(raw)?;
        let body = self.bodies.as_ref().map(|b| {
            if b.is_valid(i) {
                b.value(i).to_string()
            } else {
                String::new()
            }
        });
        if let Some(body) = &body {
            refuse_secret(body, "the body")?;
        }
        let host = url.host_str().unwrap_or_default().to_string();
        let (headers, secret_headers) = self.headers(i, secrets, &host)?;
        Ok(Request {
            method: self.kind.method(),
            url,
            headers,
            body,
            secret_headers,
        })
    }

    /// The headers of row `i`, and the names of those that carry a secret.
    fn headers(
        &self,
        i: usize,
        secrets: &Secrets,
        host: &str,
    ) -> Result<(HeaderMap, Vec<HeaderName>), String> {
        let mut out = HeaderMap::new();
        let mut secret = Vec::new();
        let Some(map) = self.headers.as_ref().filter(|m| m.is_valid(i)) else {
            return Ok((out, secret));
        };
        let entries = map.value(i);
        let keys = cast(entries.column(0), &DataType::Utf8).map_err(|e| e.to_string())?;
        let values = cast(entries.column(1), &DataType::Utf8).map_err(|e| e.to_string())?;
        let (keys, values) = (keys.as_string::<i32>(), values.as_string::<i32>());
        for j in 0..keys.len() {
            if values.is_null(j) {
                continue;
            }
            let name = HeaderName::from_bytes(keys.value(j).as_bytes())
                .map_err(|_| format!("invalid header name '{}'", keys.value(j)))?;
            let raw = values.value(j);
            let value = if first_marker(raw).is_some() {
                secret.push(name.clone());
                secrets.resolve(raw, host)?
            } else {
                raw.to_string()
            };
            let value = HeaderValue::from_str(&value)
                .map_err(|_| format!("invalid value for header '{name}'"))?;
            out.append(name, value);
        }
        Ok((out, secret))
    }
}

/// A row error if `text` holds a secret marker: secrets go only into headers.
fn refuse_secret(text: &str, place: &str) -> Result<(), String> {
    match first_marker(text) {
        Some(name) => Err(format!(
            "secret('{name}') may only be used in a header value, not in {place}"
        )),
        None => Ok(()),
    }
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

    #[test]
    fn plan_errors_name_function_and_argument() {
        assert!(check(Kind::Get, &[DataType::Utf8]).is_ok());
        assert!(
            check(
                Kind::Get,
                &[DataType::Utf8View, map_of(DataType::Utf8, DataType::Utf8)]
            )
            .is_ok()
        );
        assert!(check(Kind::Post, &[DataType::Utf8, DataType::Null]).is_ok());

        let e = check(Kind::Get, &[]).unwrap_err().to_string();
        assert!(
            e.contains("http_get expects http_get(url [, headers]), got 0"),
            "{e}"
        );
        let e = check(Kind::Get, &[DataType::Int64])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http_get: argument 1 (url) must be VARCHAR, got Int64"),
            "{e}"
        );
        let e = check(Kind::Get, &[DataType::Utf8, DataType::Utf8])
            .unwrap_err()
            .to_string();
        assert!(e.contains("argument 2 (headers) must be MAP"), "{e}");
        let e = check(Kind::Post, &[DataType::Utf8])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http_post expects http_post(url, body [, headers]), got 1"),
            "{e}"
        );
        let e = check(Kind::Post, &[DataType::Utf8, DataType::Int32])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http_post: argument 2 (body) must be VARCHAR"),
            "{e}"
        );
        let e = check(
            Kind::Post,
            &[
                DataType::Utf8,
                DataType::Utf8,
                map_of(DataType::Utf8, DataType::Int32),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("argument 3 (headers)"), "{e}");
    }
}
