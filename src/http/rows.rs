//! The arguments of one invocation of an HTTP function, read row by row into
//! requests.

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, MapArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use bytes::Bytes;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::ColumnarValue;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::args::check;
use super::{Kind, Param, method};
use crate::secret::{Secrets, first_marker};
use crate::transport::{Request, UrlParser};

/// The arguments of one invocation, as arrays of `number_rows` rows.
pub struct RowArgs {
    kind: Kind,
    methods: Option<StringArray>,
    urls: StringArray,
    bodies: Option<BinaryArray>,
    headers: Option<MapArray>,
    params: Option<MapArray>,
    form: Option<MapArray>,
    /// Rows mostly call one service: its origin is parsed once.
    parser: UrlParser,
}

fn to_strings(value: &ColumnarValue, rows: usize) -> Result<StringArray> {
    let array: ArrayRef = cast(&value.to_array(rows)?, &DataType::Utf8)?;
    Ok(array.as_string::<i32>().clone())
}

fn to_bytes(value: &ColumnarValue, rows: usize) -> Result<BinaryArray> {
    let array: ArrayRef = cast(&value.to_array(rows)?, &DataType::Binary)?;
    Ok(array.as_binary::<i32>().clone())
}

fn to_map(value: &ColumnarValue, rows: usize) -> Result<Option<MapArray>> {
    if value.data_type() == DataType::Null {
        return Ok(None);
    }
    Ok(Some(value.to_array(rows)?.as_map().clone()))
}

/// The `(key, value)` pairs of row `i` of `map` (NULL values skipped).
pub(crate) fn entries(map: Option<&MapArray>, i: usize) -> Result<Vec<(String, String)>, String> {
    let Some(map) = map.filter(|m| m.is_valid(i)) else {
        return Ok(Vec::new());
    };
    let entries = map.value(i);
    let keys = cast(entries.column(0), &DataType::Utf8).map_err(|e| e.to_string())?;
    let values = cast(entries.column(1), &DataType::Utf8).map_err(|e| e.to_string())?;
    let (keys, values) = (keys.as_string::<i32>(), values.as_string::<i32>());
    Ok((0..keys.len())
        .filter(|&j| values.is_valid(j))
        .map(|j| (keys.value(j).to_string(), values.value(j).to_string()))
        .collect())
}

impl RowArgs {
    pub fn new(kind: Kind, args: &[ColumnarValue], rows: usize) -> Result<Self> {
        let types: Vec<DataType> = args.iter().map(ColumnarValue::data_type).collect();
        check(kind, &types, &[])?;
        let (params, _) = kind.params();
        let arg = |p: Param| {
            params
                .iter()
                .position(|q| *q == p)
                .and_then(|i| args.get(i))
        };
        let urls = to_strings(arg(Param::Url).unwrap_or(&args[0]), rows)?;
        if urls.len() != rows {
            return exec_err!("{}: expected {rows} rows, got {}", kind.name(), urls.len());
        }
        Ok(Self {
            kind,
            methods: arg(Param::Method)
                .map(|m| to_strings(m, rows))
                .transpose()?,
            urls,
            bodies: arg(Param::Body).map(|b| to_bytes(b, rows)).transpose()?,
            headers: arg(Param::Headers)
                .map(|h| to_map(h, rows))
                .transpose()?
                .flatten(),
            params: arg(Param::Params)
                .map(|p| to_map(p, rows))
                .transpose()?
                .flatten(),
            form: arg(Param::Form)
                .map(|f| to_map(f, rows))
                .transpose()?
                .flatten(),
            parser: UrlParser::default(),
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
        let method = match (self.kind.method(), &self.methods) {
            (Some(m), _) => m,
            (None, Some(methods)) if methods.is_valid(i) => method(methods.value(i))?,
            (None, _) => return Err("the method is NULL".into()),
        };
        let raw = self.urls.value(i);
        refuse_secret(raw, "the URL")?;
        let mut url = self.parser.parse(raw)?;
        let params = entries(self.params.as_ref(), i)?;
        if !params.is_empty() {
            let mut query = url.query_pairs_mut();
            for (k, v) in &params {
                refuse_secret(v, "a query parameter")?;
                query.append_pair(k, v);
            }
        }
        let mut body = self.bodies.as_ref().map(|b| {
            if b.is_valid(i) {
                Bytes::copy_from_slice(b.value(i))
            } else {
                Bytes::new()
            }
        });
        if let Some(text) = body.as_ref().and_then(|b| std::str::from_utf8(b).ok()) {
            refuse_secret(text, "the body")?;
        }
        let (mut headers, secret_headers) =
            self.headers(i, secrets, url.host_str().unwrap_or_default())?;
        if self.form.is_some() {
            let fields = entries(self.form.as_ref(), i)?;
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &fields {
                refuse_secret(v, "a form field")?;
                form.append_pair(k, v);
            }
            body = Some(Bytes::from(form.finish()));
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
            }
        }
        Ok(Request {
            method,
            url,
            headers,
            body,
            binary: self.kind.binary(),
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
        for (key, raw) in entries(self.headers.as_ref(), i)? {
            let name = HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| format!("invalid header name '{key}'"))?;
            let value = if first_marker(&raw).is_some() {
                secret.push(name.clone());
                secrets.resolve(&raw, host)?
            } else {
                raw
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
