//! `df.write_noop()`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::UInt64Type;
use async_trait::async_trait;
use datafusion::common::{Result, internal_err};
use datafusion::datasource::file_format::format_as_file_type;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::prelude::DataFrame;

use super::NoopFormatFactory;

/// Adds [`write_noop`](DataFrameNoopExt::write_noop) to [`DataFrame`].
#[async_trait]
pub trait DataFrameNoopExt {
    /// Runs the whole query (every partition), discards the rows and returns how
    /// many there were. Same plan as `COPY (…) TO 'noop://' STORED AS NOOP`.
    async fn write_noop(self) -> Result<u64>;
}

#[async_trait]
impl DataFrameNoopExt for DataFrame {
    async fn write_noop(self) -> Result<u64> {
        let (state, plan) = self.into_parts();
        let file_type = format_as_file_type(Arc::new(NoopFormatFactory));
        let plan = LogicalPlanBuilder::copy_to(
            plan,
            "noop://".to_string(),
            file_type,
            HashMap::new(),
            vec![],
        )?
        .build()?;
        let batches = DataFrame::new(state, plan).collect().await?;
        let mut rows = 0;
        for batch in &batches {
            let Some(count) = batch.column(0).as_primitive_opt::<UInt64Type>() else {
                return internal_err!("noop sink returned {:?}", batch.schema());
            };
            rows += count.iter().flatten().sum::<u64>();
        }
        Ok(rows)
    }
}
