//! Runs every `sql/*.slt` file against a fresh `SessionContext` with everything
//! registered and the bundled mock API on 127.0.0.1:0.
//!
//! In the files, `control substitution on` makes `${MOCK}` the mock's base URL.
//! `cargo test --test sqllogictests -- NAME` runs only files whose name contains NAME.

use std::path::PathBuf;
use std::time::Duration;

use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use datafusion::common::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_async_udf::mock::{MockApi, MockConfig};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};

struct Db {
    ctx: SessionContext,
}

fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        DefaultColumnType::FloatingPoint
    } else if matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        DefaultColumnType::Text
    } else {
        DefaultColumnType::Any
    }
}

#[async_trait]
impl AsyncDB for Db {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        // RESET of our keys goes the way dfasync sends it
        let plan = self.ctx.state().create_logical_plan(sql).await?;
        if let Some(done) = datafusion_async_udf::config::reset_variable(&self.ctx, &plan) {
            done?;
            return Ok(DBOutput::StatementComplete(0));
        }
        let df = self.ctx.execute_logical_plan(plan).await?;
        let schema = df.schema().inner().clone();
        let batches = df.collect().await?;
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| {
                            let s = f.value(row).to_string();
                            if s.is_empty() {
                                "(empty)".to_string()
                            } else {
                                s
                            }
                        })
                        .collect(),
                );
            }
        }
        if is_explain(&schema) {
            rows = explain_rows(rows);
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &'static str {
        "datafusion-async-udf"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn is_explain(schema: &arrow::datatypes::Schema) -> bool {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names == ["plan_type", "plan"]
}

/// EXPLAIN output as DataFusion's own .slt files show it: the plan type on a line,
/// then one numbered line per plan node, indentation written as `-`.
fn explain_rows(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for row in rows {
        out.push(vec![row[0].clone()]);
        for (i, line) in row[1].lines().enumerate() {
            let indent = line.len() - line.trim_start().len();
            out.push(vec![format!(
                "{:02}){}{}",
                i + 1,
                "-".repeat(indent),
                line.trim_start()
            )]);
        }
    }
    out
}

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sql");
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("sql/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    files.sort();
    files
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mock = MockApi::start(MockConfig::default())
        .await
        .expect("mock API starts");
    let mut failures = Vec::new();
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files found under sql/");
    for path in files {
        let mut runner = Runner::new(|| async {
            let config = SessionConfig::new().with_information_schema(true);
            let ctx = SessionContext::new_with_config(config);
            datafusion_async_udf::register_all(&ctx)?;
            Ok::<_, DataFusionError>(Db { ctx })
        });
        runner.set_var("MOCK".to_string(), mock.base_url());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match runner.run_file_async(&path).await {
            Ok(()) => println!("ok   {name}"),
            Err(e) => {
                println!("FAIL {name}\n{e}");
                failures.push(name);
            }
        }
    }
    if !failures.is_empty() {
        eprintln!(
            "{} sqllogictest file(s) failed: {failures:?}",
            failures.len()
        );
        std::process::exit(1);
    }
}
