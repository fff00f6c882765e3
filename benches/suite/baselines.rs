//! The baselines measured beside this crate in the same run: a naive async UDF on
//! DataFusion's stock `AsyncFuncExec`, a plain tokio + reqwest loop (no DataFusion)
//! and, where installed, `wrk`.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, StringArray};
use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_datafusion_err};
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use futures::StreamExt;

/// What users write from DataFusion's async UDF example: for each batch, the
/// rows' requests `concurrency` at a time (1 = one row after another), then the
/// next batch.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NaiveGet {
    signature: Signature,
    concurrency: usize,
}

impl NaiveGet {
    /// The UDF `naive_get(url) -> body`.
    pub fn udf(concurrency: usize) -> ScalarUDF {
        AsyncScalarUDF::new(Arc::new(NaiveGet {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Volatile),
            concurrency: concurrency.max(1),
        }))
        .into_scalar_udf()
    }
}

impl ScalarUDFImpl for NaiveGet {
    fn name(&self) -> &'static str {
        "naive_get"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Err(exec_datafusion_err!("naive_get is async only"))
    }
}

#[async_trait]
impl AsyncScalarUDFImpl for NaiveGet {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let urls = args.args[0].to_array(args.number_rows)?;
        let urls = urls
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| exec_datafusion_err!("naive_get takes a string"))?
            .clone();
        let client = reqwest::Client::new();
        let bodies: Vec<Option<String>> = futures::stream::iter(0..urls.len())
            .map(|i| {
                let (client, url) = (client.clone(), urls.value(i).to_string());
                async move { client.get(url).send().await.ok()?.text().await.ok() }
            })
            .buffered(self.concurrency)
            .collect()
            .await;
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(bodies))))
    }
}

/// `n` GETs of `url?id=i` from a plain tokio + reqwest loop, `concurrency` at a time:
/// returns the wall time in seconds and the number of 2xx answers.
pub async fn reqwest_loop(url: &str, n: usize, concurrency: usize) -> (f64, usize) {
    let client = reqwest::Client::new();
    let start = Instant::now();
    let ok = futures::stream::iter(0..n)
        .map(|i| {
            let request = client.get(format!("{url}{}id={i}", sep(url)));
            async move {
                match request.send().await {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    (start.elapsed().as_secs_f64(), ok)
}

/// The separator to append a query parameter to `url`.
pub fn sep(url: &str) -> char {
    if url.contains('?') { '&' } else { '?' }
}

/// wrk's requests per second against `url` with `connections` connections for
/// `seconds`, or None when wrk is not installed.
pub fn wrk(url: &str, connections: usize, seconds: u64) -> Option<f64> {
    let out = Command::new("wrk")
        .args([
            "-t2".to_string(),
            format!("-c{connections}"),
            format!("-d{seconds}s"),
            url.to_string(),
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// CPU seconds (user + system) this process has used so far: every thread,
/// the in-process mock API's included.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &raw mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
