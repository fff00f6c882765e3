//! The built-in handler `post_json`: POST each chunk as a JSON array of row
//! objects, get a JSON array with one element per row back.
//!
//! ```sql
//! SELECT id, json_get_str(response, 'label') AS label, error
//! FROM map_in_batches('post_json', (SELECT id, name FROM people), 'http://host/score');
//! ```
//!
//! Output: the input columns, then `status INT`, `response VARCHAR` (that row's
//! element of the reply, as JSON text; parse it with `json_get_*`) and
//! `error VARCHAR`. A chunk whose call fails (non-2xx, timeout, a reply that is not
//! an array of one element per row, …) keeps its rows with `response` NULL and
//! the reason in `error`. Uses the session's HTTP client and `http.*` settings
//! (retries only with `http.retry_non_idempotent = true`, like `http_post`).
//! Each POST carries the chunk's `Idempotency-Key` (`http.idempotency_key`).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::json::ArrayWriter;
use async_trait::async_trait;
use datafusion::common::{Result, ScalarValue, exec_datafusion_err, plan_err};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, Url};

use super::handler::{BatchHandler, HandlerArgs};
use crate::config::{self, AsyncUdfConfig, HttpConfig, IdempotencyKey};
use crate::engine::ChunkContext;
use crate::http::{Policy, Session, send};
use crate::runtime::AsyncRuntime;
use crate::transport::{Body, Request, parse_url};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct PostJson {
    runtime: Arc<AsyncRuntime>,
}

impl PostJson {
    pub fn new(runtime: Arc<AsyncRuntime>) -> Self {
        Self { runtime }
    }
}

fn url_arg(args: &[ScalarValue]) -> Result<Url, String> {
    match args {
        [v] => match v.try_as_str() {
            Some(Some(s)) => parse_url(s),
            _ => Err(format!("argument 3 (url) must be a string, got {v}")),
        },
        _ => Err(format!(
            "expects one argument after the input (the url), got {}",
            args.len()
        )),
    }
}

/// One reply element per row, or why not.
fn split_reply(body: &str, rows: usize) -> Result<Vec<String>, String> {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(items)) if items.len() == rows => {
            Ok(items.iter().map(ToString::to_string).collect())
        }
        Ok(serde_json::Value::Array(items)) => Err(format!(
            "expected a JSON array of {rows} elements, got {}",
            items.len()
        )),
        Ok(_) => Err("expected a JSON array, got another JSON value".to_string()),
        Err(e) => Err(format!("reply is not JSON: {e}")),
    }
}

#[async_trait]
impl BatchHandler for PostJson {
    fn output_schema(&self, input: &SchemaRef, args: &[ScalarValue]) -> Result<SchemaRef> {
        if let Err(e) = url_arg(args) {
            return plan_err!("map_in_batches('post_json', input, url): {e}");
        }
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        for name in ["status", "response", "error"] {
            if fields.iter().any(|f| f.name() == name) {
                return plan_err!(
                    "map_in_batches('post_json'): the input already has a column '{name}'"
                );
            }
        }
        fields.push(Field::new("status", DataType::Int32, true));
        fields.push(Field::new("response", DataType::Utf8, true));
        fields.push(Field::new("error", DataType::Utf8, true));
        Ok(Arc::new(Schema::new(fields)))
    }

    async fn call(
        &self,
        chunk: RecordBatch,
        cx: ChunkContext,
        args: &HandlerArgs,
    ) -> Result<Vec<RecordBatch>> {
        let url = url_arg(&args.values).map_err(|e| exec_datafusion_err!("post_json: {e}"))?;
        let http: HttpConfig = config::get(&args.config);
        let engine: AsyncUdfConfig = config::get(&args.config);
        let mut writer = ArrayWriter::new(Vec::new());
        writer.write(&chunk)?;
        writer.finish()?;
        let body = writer.into_inner();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut request = Request {
            method: Method::POST,
            url,
            headers,
            body: Some(if chunk.num_rows() == 0 {
                bytes::Bytes::from_static(b"[]")
            } else {
                body.into()
            }),
            binary: false,
            secret_headers: Vec::new(),
        };
        if http.idempotency_key == IdempotencyKey::Auto && !cx.idempotency_key.is_empty() {
            crate::http::add_idempotency_key(&mut request, &cx.idempotency_key);
        }
        let policy = Policy::new(&http, &engine);
        let session = Session::new(&self.runtime, &policy)?;
        let outcome = send(&session, request, &policy).await;
        let rows = chunk.num_rows();
        let (responses, error): (Vec<Option<String>>, Option<String>) =
            match (&outcome.error, outcome.body.as_ref().and_then(Body::text)) {
                (None, Some(body)) => match split_reply(body, rows) {
                    Ok(items) => (items.into_iter().map(Some).collect(), None),
                    Err(e) => (vec![None; rows], Some(e)),
                },
                (error, _) => (vec![None; rows], error.clone().or(Some("no body".into()))),
            };
        let status = outcome.status.map(i32::from);
        let mut columns: Vec<ArrayRef> = chunk.columns().to_vec();
        columns.push(Arc::new(Int32Array::from(vec![status; rows])));
        columns.push(Arc::new(StringArray::from(responses)));
        columns.push(Arc::new(StringArray::from(vec![error; rows])));
        let schema = self.output_schema(&chunk.schema(), &args.values)?;
        Ok(vec![RecordBatch::try_new(schema, columns)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_split_per_row() {
        assert_eq!(
            split_reply(r#"[{"a":1},2]"#, 2).unwrap(),
            vec![r#"{"a":1}"#, "2"]
        );
        assert!(
            split_reply("[1]", 2)
                .unwrap_err()
                .contains("of 2 elements, got 1")
        );
        assert!(
            split_reply("{}", 1)
                .unwrap_err()
                .contains("expected a JSON array")
        );
        assert!(split_reply("nope", 1).unwrap_err().contains("not JSON"));
    }
}
