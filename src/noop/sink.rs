//! The sink that counts rows and drops them.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::common::Result;
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;

/// A [`DataSink`] that consumes its whole input and returns the number of rows.
#[derive(Debug)]
pub struct NoopSink {
    schema: SchemaRef,
}

impl NoopSink {
    pub fn new(schema: SchemaRef) -> Self {
        Self { schema }
    }
}

impl DisplayAs for NoopSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoopSink")
    }
}

#[async_trait]
impl DataSink for NoopSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let mut rows = 0u64;
        while let Some(batch) = data.next().await {
            rows += batch?.num_rows() as u64;
        }
        Ok(rows)
    }
}
