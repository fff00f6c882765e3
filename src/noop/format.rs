//! `STORED AS NOOP` for `COPY`: a write-only file format.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{GetExt, Result, Statistics, not_impl_err};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::{FileFormat, FileFormatFactory};
use datafusion::datasource::physical_plan::{
    FileOpener, FileScanConfig, FileSinkConfig, FileSource,
};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::object_store::{ObjectMeta, ObjectStore};
use datafusion::physical_expr::{LexRequirement, PhysicalExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;

use super::{FORMAT_NAME, NoopSink};

/// Creates [`NoopFormat`]; register it on a session to enable `STORED AS NOOP`.
#[derive(Debug, Default)]
pub struct NoopFormatFactory;

impl GetExt for NoopFormatFactory {
    fn get_ext(&self) -> String {
        FORMAT_NAME.to_string()
    }
}

impl FileFormatFactory for NoopFormatFactory {
    fn create(
        &self,
        _state: &dyn Session,
        format_options: &HashMap<String, String>,
    ) -> Result<Arc<dyn FileFormat>> {
        if let Some(key) = format_options.keys().next() {
            return not_impl_err!("the NOOP format takes no options, got '{key}'");
        }
        Ok(Arc::new(NoopFormat))
    }

    fn default(&self) -> Arc<dyn FileFormat> {
        Arc::new(NoopFormat)
    }
}

/// A format that writes nothing and cannot be read.
#[derive(Debug, Default)]
pub struct NoopFormat;

fn unreadable<T>() -> Result<T> {
    not_impl_err!("the NOOP format is write-only: it cannot be read")
}

#[async_trait]
impl FileFormat for NoopFormat {
    fn get_ext(&self) -> String {
        FORMAT_NAME.to_string()
    }

    fn get_ext_with_compression(&self, _c: &FileCompressionType) -> Result<String> {
        Ok(FORMAT_NAME.to_string())
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        None
    }

    async fn infer_schema(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        _objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        unreadable()
    }

    async fn infer_stats(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        _table_schema: SchemaRef,
        _object: &ObjectMeta,
    ) -> Result<Statistics> {
        unreadable()
    }

    async fn create_physical_plan(
        &self,
        _state: &dyn Session,
        _conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        unreadable()
    }

    async fn create_writer_physical_plan(
        &self,
        input: Arc<dyn ExecutionPlan>,
        _state: &dyn Session,
        conf: FileSinkConfig,
        _order_requirements: Option<LexRequirement>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let sink = Arc::new(NoopSink::new(Arc::clone(conf.output_schema())));
        Ok(Arc::new(DataSinkExec::new(input, sink, None)))
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        Arc::new(NoopSource {
            table_schema,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

/// The read side DataFusion asks every format for; it refuses to open files.
struct NoopSource {
    table_schema: TableSchema,
    metrics: ExecutionPlanMetricsSet,
}

impl FileSource for NoopSource {
    fn create_file_opener(
        &self,
        _store: Arc<dyn ObjectStore>,
        _config: &FileScanConfig,
        _partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        unreadable()
    }

    fn table_schema(&self) -> &TableSchema {
        &self.table_schema
    }

    fn with_batch_size(&self, _batch_size: usize) -> Arc<dyn FileSource> {
        Arc::new(Self {
            table_schema: self.table_schema.clone(),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn file_type(&self) -> &str {
        FORMAT_NAME
    }
}

impl fmt::Debug for NoopSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoopSource")
    }
}
