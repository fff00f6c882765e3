//! The relation `map_in_batches(…)` stands for: a table over a logical input plan.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;

use super::exec::MapInBatchesExec;
use super::handler::BatchHandler;
use crate::runtime::AsyncRuntime;

/// `map_in_batches(handler, input, args…)` as a table: scanning it plans the input
/// and puts a [`MapInBatchesExec`] on top.
#[derive(Debug)]
pub struct MapInBatchesTable {
    input: LogicalPlan,
    name: String,
    handler: Arc<dyn BatchHandler>,
    args: Vec<ScalarValue>,
    schema: SchemaRef,
    runtime: Arc<AsyncRuntime>,
}

impl MapInBatchesTable {
    pub(crate) fn try_new(
        input: LogicalPlan,
        name: &str,
        handler: Arc<dyn BatchHandler>,
        args: Vec<ScalarValue>,
        runtime: Arc<AsyncRuntime>,
    ) -> Result<Self> {
        let input_schema = Arc::clone(input.schema().inner());
        let schema = handler.output_schema(&input_schema, &args)?;
        Ok(Self {
            input,
            name: name.to_string(),
            handler,
            args,
            schema,
            runtime,
        })
    }
}

#[async_trait]
impl TableProvider for MapInBatchesTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = state.create_physical_plan(&self.input).await?;
        let exec: Arc<dyn ExecutionPlan> = Arc::new(MapInBatchesExec::new(
            input,
            self.name.clone(),
            Arc::clone(&self.handler),
            self.args.clone(),
            Arc::clone(&self.schema),
            Arc::clone(&self.runtime),
        ));
        let Some(projection) = projection else {
            return Ok(exec);
        };
        let exprs: Vec<(Arc<dyn datafusion::physical_expr::PhysicalExpr>, String)> = projection
            .iter()
            .map(|&i| {
                let name = self.schema.field(i).name().clone();
                (Arc::new(Column::new(&name, i)) as _, name)
            })
            .collect();
        Ok(Arc::new(ProjectionExec::try_new(exprs, exec)?))
    }
}
