//! SQL over the call journal: `SELECT * FROM async_journal()` lists its
//! entries, `SELECT async_journal_clear()` empties it (the journal
//! `async_udf.journal` names).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::config::{self, AsyncUdfConfig};
use crate::engine::journal::Journal;
use crate::runtime::{AsyncRuntime, Bound};

/// The journal `settings` name, or an error saying how to turn one on.
fn journal(
    runtime: &AsyncRuntime,
    settings: &AsyncUdfConfig,
    function: &str,
) -> Result<Arc<Journal>> {
    if let Some(journal) = runtime.journal(settings)? {
        Ok(journal)
    } else {
        plan_err!(
            "{function}: no journal is on; SET async_udf.journal = 'PATH' (or 'redis://host:port/db') first"
        )
    }
}

/// `async_journal()`.
#[derive(Debug)]
pub(crate) struct JournalTable;

impl TableFunctionImpl for JournalTable {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return plan_err!("async_journal() takes no arguments");
        }
        let session = args.session();
        let runtime = AsyncRuntime::from_config(&session.config().clone())?;
        let settings: AsyncUdfConfig = config::get(session.config_options());
        let journal = journal(&runtime, &settings, "async_journal")?;
        let mut entries = journal.entries_now()?;
        entries.sort_by_key(|e| e.recorded.as_ref().map(|r| r.recorded_at_ms));
        let schema = Arc::new(Schema::new(vec![
            Field::new("function", DataType::Utf8, true),
            Field::new("key", DataType::Utf8, false),
            Field::new("status", DataType::Int32, true),
            Field::new("bytes", DataType::Int64, false),
            Field::new(
                "recorded_at",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Field::new("replayed", DataType::Int64, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter(
                entries
                    .iter()
                    .map(|e| e.recorded.as_ref().map(|r| r.function.clone())),
            )),
            Arc::new(StringArray::from_iter_values(
                entries.iter().map(|e| e.key.clone()),
            )),
            Arc::new(Int32Array::from_iter(
                entries
                    .iter()
                    .map(|e| e.recorded.as_ref().map(|r| i32::from(r.status))),
            )),
            Arc::new(Int64Array::from_iter_values(
                entries.iter().map(|e| e.bytes as i64),
            )),
            Arc::new(
                TimestampMillisecondArray::from_iter(
                    entries
                        .iter()
                        .map(|e| e.recorded.as_ref().map(|r| r.recorded_at_ms as i64)),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from_iter_values(
                entries.iter().map(|e| e.replayed as i64),
            )),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// `async_journal_clear()`: removes every entry, returns how many there were.
#[derive(Debug)]
pub(crate) struct ClearJournal {
    signature: Signature,
    runtime: Bound,
}

impl ClearJournal {
    pub(crate) fn udf(runtime: &Arc<AsyncRuntime>) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            signature: Signature::nullary(Volatility::Volatile),
            runtime: Bound::new(runtime),
        })
    }
}

impl PartialEq for ClearJournal {
    fn eq(&self, other: &Self) -> bool {
        self.runtime.same(&other.runtime)
    }
}

impl Eq for ClearJournal {}

impl std::hash::Hash for ClearJournal {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl ScalarUDFImpl for ClearJournal {
    fn name(&self) -> &'static str {
        "async_journal_clear"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let runtime = self.runtime.get(self.name())?;
        let settings: AsyncUdfConfig = config::get(&args.config_options);
        let journal = journal(&runtime, &settings, self.name())?;
        let cleared = journal.clear_now()?;
        Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(
            cleared as i64,
        ))))
    }
}
