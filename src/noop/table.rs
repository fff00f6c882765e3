//! `CREATE EXTERNAL TABLE … STORED AS NOOP`: a table that accepts `INSERT INTO`.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::common::{Result, project_schema};
use datafusion::datasource::TableType;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{CreateExternalTable, Expr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;

use super::NoopSink;

/// Creates [`NoopTable`]s for `STORED AS NOOP`; the location is ignored.
#[derive(Debug, Default)]
pub struct NoopTableFactory;

#[async_trait]
impl TableProviderFactory for NoopTableFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        Ok(Arc::new(NoopTable::new(Arc::clone(cmd.schema.inner()))))
    }
}

/// A table whose inserts run the input to the end and keep nothing; it reads as empty.
#[derive(Debug)]
pub struct NoopTable {
    schema: SchemaRef,
}

impl NoopTable {
    pub fn new(schema: SchemaRef) -> Self {
        Self { schema }
    }
}

#[async_trait]
impl TableProvider for NoopTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(EmptyExec::new(project_schema(
            &self.schema,
            projection,
        )?)))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        _insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let sink = Arc::new(NoopSink::new(Arc::clone(&self.schema)));
        Ok(Arc::new(DataSinkExec::new(input, sink, None)))
    }
}
