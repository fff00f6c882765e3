//! Handlers: what `map_in_batches` calls for each chunk of rows.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::common::{Result, ScalarValue, plan_datafusion_err, plan_err};
use datafusion::config::ConfigOptions;
use datafusion::execution::context::SessionConfig;
use parking_lot::RwLock;

use crate::engine::ChunkContext;

/// What a handler gets besides the chunk: the SQL arguments after the input, and
/// the session settings in force for the query.
#[derive(Debug, Clone)]
pub struct HandlerArgs {
    /// `map_in_batches('h', input, arg1, arg2, …)`: the literals `arg1, arg2, …`.
    pub values: Vec<ScalarValue>,
    /// The query's settings (`http.*`, `async_udf.*`, …).
    pub config: Arc<ConfigOptions>,
}

/// DataFrame in, DataFrame out, one chunk at a time, asynchronously.
#[async_trait]
pub trait BatchHandler: Send + Sync + fmt::Debug {
    /// The output schema for this input schema and these SQL arguments; called at
    /// plan time, so a bad argument is a plan error.
    fn output_schema(&self, input: &SchemaRef, args: &[ScalarValue]) -> Result<SchemaRef>;

    /// Processes one chunk of up to `async_udf.chunk_size` rows; returns zero or
    /// more batches of the output schema.
    async fn call(
        &self,
        chunk: RecordBatch,
        cx: ChunkContext,
        args: &HandlerArgs,
    ) -> Result<Vec<RecordBatch>>;
}

/// A handler from a closure with a fixed output schema.
pub struct FnHandler<F> {
    schema: SchemaRef,
    f: F,
}

impl<F> FnHandler<F> {
    /// `f(chunk, context)` returns the output batches of `schema` for one chunk.
    pub fn new(schema: SchemaRef, f: F) -> Self {
        Self { schema, f }
    }
}

impl<F> fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FnHandler({})", self.schema)
    }
}

#[async_trait]
impl<F, Fut> BatchHandler for FnHandler<F>
where
    F: Fn(RecordBatch, ChunkContext) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Vec<RecordBatch>>> + Send,
{
    fn output_schema(&self, _input: &SchemaRef, args: &[ScalarValue]) -> Result<SchemaRef> {
        if !args.is_empty() {
            return plan_err!(
                "this handler takes no arguments after the input, got {}",
                args.len()
            );
        }
        Ok(Arc::clone(&self.schema))
    }

    async fn call(
        &self,
        chunk: RecordBatch,
        cx: ChunkContext,
        _args: &HandlerArgs,
    ) -> Result<Vec<RecordBatch>> {
        (self.f)(chunk, cx).await
    }
}

/// The handlers of one session, by name, kept in its config (like the
/// session's [`AsyncRuntime`](crate::AsyncRuntime)).
#[derive(Debug, Default)]
pub struct Handlers(RwLock<BTreeMap<String, Arc<dyn BatchHandler>>>);

impl Handlers {
    /// The handlers of the session with `config`, installed there if missing.
    pub fn install(config: &mut SessionConfig) -> Arc<Self> {
        if let Some(handlers) = config.get_extension::<Self>() {
            return handlers;
        }
        let handlers = Arc::new(Self::default());
        config.set_extension(Arc::clone(&handlers));
        handlers
    }

    /// The handlers of the session with `config`, or a plan error saying to
    /// call `register_all`.
    pub fn of(config: &SessionConfig) -> Result<Arc<Self>> {
        config.get_extension::<Self>().ok_or_else(|| {
            plan_datafusion_err!(
                "call datafusion_async_udf::register_all(&ctx) before using map_in_batches"
            )
        })
    }

    pub fn insert(&self, name: &str, handler: Arc<dyn BatchHandler>) {
        self.0.write().insert(name.to_string(), handler);
    }

    /// The handler called `name`, or a plan error listing the registered ones.
    pub fn get(&self, name: &str) -> Result<Arc<dyn BatchHandler>> {
        let map = self.0.read();
        if let Some(h) = map.get(name) {
            Ok(Arc::clone(h))
        } else {
            let known: Vec<&str> = map.keys().map(String::as_str).collect();
            plan_err!(
                "map_in_batches: no handler named '{name}'; registered handlers: [{}]",
                known.join(", ")
            )
        }
    }
}
