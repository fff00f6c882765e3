//! `SELECT * FROM async_hosts()`: each host's limits for the session — the
//! calls it may have in flight, the pace in force and why, what it refused and
//! how long calls waited for it.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, plan_err};
use datafusion::datasource::MemTable;

use crate::runtime::AsyncRuntime;

/// `async_hosts()`.
#[derive(Debug)]
pub(crate) struct HostsTable;

impl TableFunctionImpl for HostsTable {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return plan_err!("async_hosts() takes no arguments");
        }
        let runtime = AsyncRuntime::from_config(&args.session().config().clone())?;
        let hosts = runtime.adaptive().report();
        let schema = Arc::new(Schema::new(vec![
            Field::new("host", DataType::Utf8, false),
            Field::new("in_flight_limit", DataType::Int64, true),
            Field::new("lowest_limit", DataType::Int64, false),
            Field::new("ceiling", DataType::Int64, false),
            Field::new("limited_by", DataType::Utf8, true),
            Field::new("pace", DataType::Float64, true),
            Field::new("reason", DataType::Utf8, true),
            Field::new("refused", DataType::Int64, false),
            Field::new("overloaded", DataType::Int64, false),
            Field::new("waited_ms", DataType::Int64, false),
        ]));
        let int = |f: &dyn Fn(&crate::engine::KeyReport) -> u64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(
                hosts
                    .iter()
                    .map(|h| i64::try_from(f(h)).unwrap_or(i64::MAX)),
            ))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                hosts.iter().map(|h| h.key.clone()),
            )),
            // no limit: none below the ceiling
            Arc::new(Int64Array::from_iter(hosts.iter().map(|h| {
                (h.limit < h.ceiling).then(|| i64::try_from(h.limit).unwrap_or(i64::MAX))
            }))),
            int(&|h| h.lowest as u64),
            int(&|h| h.ceiling as u64),
            Arc::new(StringArray::from_iter(
                hosts.iter().map(|h| h.limited_by.map(|r| r.to_string())),
            )),
            Arc::new(Float64Array::from_iter(hosts.iter().map(|h| h.rate))),
            Arc::new(StringArray::from_iter(
                hosts.iter().map(|h| h.reason.map(|r| r.to_string())),
            )),
            int(&|h| h.throttled),
            int(&|h| h.overloaded),
            int(&|h| u64::try_from(h.waited.as_millis()).unwrap_or(u64::MAX)),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
