//! Plan codecs for Ballista: this crate's logical nodes (`AsyncCalls`,
//! `MapInBatches`), physical operators (`AsyncPipelineExec`, `MapInBatchesExec`,
//! the NOOP sink), the `NOOP` file format and NOOP tables, each wrapping
//! Ballista's own codec for everything else.
//!
//! What is ours starts with [`MAGIC`] and a kind byte; a Ballista or DataFusion
//! encoding never does (a protobuf message starts with a small field tag). The
//! pieces DataFusion knows (expressions, scalars) are encoded as its protobuf
//! messages. Decoding takes the session's runtime and handlers from the decoding
//! side's config: an executor's calls run on the executor's own budget.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::catalog::TableProvider;
use datafusion::common::{
    Result, ScalarValue, TableReference, internal_datafusion_err, not_impl_err,
};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_expr::async_scalar_function::AsyncFuncExpr;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::logical_plan::from_proto::parse_exprs;
use datafusion_proto::logical_plan::to_proto::serialize_exprs;
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf;
use prost::Message;

use crate::batches::Handlers;
use crate::batches::exec::MapInBatchesExec;
use crate::batches::node::MapInBatches;
use crate::config::{self, AsyncUdfConfig, HttpConfig};
use crate::noop::{NoopFormatFactory, NoopSink, NoopTable};
use crate::operator::display::Redactor;
use crate::operator::exec::AsyncPipelineExec;
use crate::operator::node::AsyncCalls;
use crate::operator::shared::{Shared, SharedExec};
use crate::runtime::AsyncRuntime;

/// The first bytes of everything this codec encodes itself.
const MAGIC: &[u8] = b"\xffDFAU";

/// What follows [`MAGIC`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    AsyncCalls = 1,
    MapInBatches = 2,
    AsyncPipeline = 3,
    MapInBatchesExec = 4,
    NoopSink = 5,
    NoopFormat = 6,
    NoopTable = 7,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::AsyncCalls,
        Kind::MapInBatches,
        Kind::AsyncPipeline,
        Kind::MapInBatchesExec,
        Kind::NoopSink,
        Kind::NoopFormat,
        Kind::NoopTable,
    ];
}

fn header(kind: Kind, buf: &mut Vec<u8>) {
    buf.extend_from_slice(MAGIC);
    buf.push(kind as u8);
}

/// Ours: the kind and the payload after it.
fn ours(buf: &[u8]) -> Option<(Kind, &[u8])> {
    let rest = buf.strip_prefix(MAGIC)?;
    let (&k, payload) = rest.split_first()?;
    Kind::ALL
        .into_iter()
        .find(|x| *x as u8 == k)
        .map(|x| (x, payload))
}

fn encode(message: &impl Message, buf: &mut Vec<u8>) -> Result<()> {
    message
        .encode(buf)
        .map_err(|e| internal_datafusion_err!("datafusion-async-udf codec: {e}"))
}

fn decode<M: Message + Default>(payload: &[u8]) -> Result<M> {
    M::decode(payload).map_err(|e| internal_datafusion_err!("datafusion-async-udf codec: {e}"))
}

/// A handler call: its name and arguments.
#[derive(Clone, PartialEq, Message)]
struct HandlerCall {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, repeated, tag = "2")]
    args: Vec<datafusion_proto::protobuf::ScalarValue>,
}

impl HandlerCall {
    fn new(name: &str, args: &[ScalarValue]) -> Result<Self> {
        let args = args
            .iter()
            .map(|a| {
                protobuf::ScalarValue::try_from(a)
                    .map_err(|e| internal_datafusion_err!("map_in_batches argument {a}: {e}"))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            name: name.to_string(),
            args,
        })
    }

    fn args(&self) -> Result<Vec<ScalarValue>> {
        self.args
            .iter()
            .map(|a| {
                ScalarValue::try_from(a)
                    .map_err(|e| internal_datafusion_err!("map_in_batches argument: {e}"))
            })
            .collect()
    }
}

/// Names of the async calls of an `AsyncCalls` node, beside its expressions.
#[derive(Clone, PartialEq, Message)]
struct CallNames {
    #[prost(string, repeated, tag = "1")]
    names: Vec<String>,
    #[prost(message, optional, tag = "2")]
    exprs: Option<protobuf::LogicalExprNodeCollection>,
}

fn runtime_of(ctx: &TaskContext) -> Result<Arc<AsyncRuntime>> {
    ctx.session_config()
        .get_extension::<AsyncRuntime>()
        .ok_or_else(|| {
            internal_datafusion_err!(
                "this process has no datafusion-async-udf runtime: build its session with \
             datafusion_async_udf::cluster::ClusterSetup"
            )
        })
}

/// A call decoded by name gets the registered (documented) function: the
/// operator calls the async function inside it, on this process's runtime.
fn rebind(
    runtime: &AsyncRuntime,
    func: Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Arc<dyn PhysicalExpr>> {
    let Some(f) = func.downcast_ref::<ScalarFunctionExpr>() else {
        return Ok(func);
    };
    let Some(udf) = runtime.rebound(f.fun()) else {
        return Ok(func);
    };
    Ok(Arc::new(ScalarFunctionExpr::new(
        f.name(),
        Arc::new(udf),
        f.args().to_vec(),
        f.return_field(schema)?,
        Arc::new(f.config_options().clone()),
    )))
}

/// The logical codec: our nodes, the NOOP format and tables; Ballista's for
/// the rest.
#[derive(Debug, Default)]
pub struct AsyncLogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for AsyncLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        let Some((kind, payload)) = ours(buf) else {
            return self.inner.try_decode(buf, inputs, ctx);
        };
        let [input] = inputs else {
            return not_impl_err!("datafusion-async-udf nodes take one input");
        };
        let input = Arc::new(input.clone());
        let node: Arc<dyn datafusion::logical_expr::UserDefinedLogicalNode> = match kind {
            Kind::AsyncCalls => {
                let calls: CallNames = decode(payload)?;
                let exprs = calls.exprs.unwrap_or_default();
                let exprs = parse_exprs(&exprs.logical_expr_nodes, ctx, self)?;
                Arc::new(AsyncCalls::try_new(
                    input,
                    exprs.into_iter().zip(calls.names).collect(),
                )?)
            }
            Kind::MapInBatches => {
                let call: HandlerCall = decode(payload)?;
                let handler = Handlers::of(ctx.session_config())?.get(&call.name)?;
                Arc::new(MapInBatches::try_new(
                    input,
                    call.name.clone(),
                    handler,
                    call.args()?,
                )?)
            }
            other => return not_impl_err!("not a logical node: {other:?}"),
        };
        Ok(Extension { node })
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        let any = node.node.as_any();
        if let Some(calls) = any.downcast_ref::<AsyncCalls>() {
            header(Kind::AsyncCalls, buf);
            let exprs: Vec<_> = calls.calls().iter().map(|(e, _)| e.clone()).collect();
            let message = CallNames {
                names: calls.calls().iter().map(|(_, n)| n.clone()).collect(),
                exprs: Some(protobuf::LogicalExprNodeCollection {
                    logical_expr_nodes: serialize_exprs(&exprs, self)?,
                }),
            };
            return encode(&message, buf);
        }
        if let Some(map) = any.downcast_ref::<MapInBatches>() {
            header(Kind::MapInBatches, buf);
            let (name, args) = map.call();
            return encode(&HandlerCall::new(name, args)?, buf);
        }
        if any.downcast_ref::<Shared>().is_some() {
            return not_impl_err!(
                "a CTE or view whose async calls are read more than once cannot run on \
                 Ballista yet (its rows would be computed once per reference); write the \
                 calls to a table first, or read the CTE once"
            );
        }
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match ours(buf) {
            Some((Kind::NoopTable, _)) => Ok(Arc::new(NoopTable::new(schema))),
            _ => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if node.is::<NoopTable>() {
            header(Kind::NoopTable, buf);
            return Ok(());
        }
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        match ours(buf) {
            Some((Kind::NoopFormat, _)) => Ok(Arc::new(NoopFormatFactory)),
            _ => self.inner.try_decode_file_format(buf, ctx),
        }
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        if node.is::<NoopFormatFactory>() {
            header(Kind::NoopFormat, buf);
            return Ok(());
        }
        self.inner.try_encode_file_format(buf, node)
    }
}

/// The physical codec: our operators and the NOOP sink; Ballista's for the
/// rest (its shuffle readers and writers).
#[derive(Debug, Default)]
pub struct AsyncPhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for AsyncPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some((kind, payload)) = ours(buf) else {
            return self.inner.try_decode(buf, inputs, ctx, proto_converter);
        };
        let [input] = inputs else {
            return not_impl_err!("datafusion-async-udf operators take one input");
        };
        let input = Arc::clone(input);
        match kind {
            Kind::AsyncPipeline => {
                let node: protobuf::AsyncFuncExecNode = decode(payload)?;
                let schema = input.schema();
                let decode_ctx = PhysicalPlanDecodeContext::new(ctx, self);
                let runtime = runtime_of(ctx)?;
                let exprs = node
                    .async_exprs
                    .iter()
                    .zip(node.async_expr_names)
                    .map(|(e, name)| {
                        let func =
                            proto_converter.proto_to_physical_expr(e, &schema, &decode_ctx)?;
                        let func = rebind(&runtime, func, &schema)?;
                        Ok(Arc::new(AsyncFuncExpr::try_new(name, func, &schema)?))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let options = ctx.session_config().options();
                let engine: AsyncUdfConfig = config::get(options);
                let http: HttpConfig = config::get(options);
                Ok(Arc::new(AsyncPipelineExec::try_new(
                    exprs,
                    input,
                    runtime,
                    engine.fan_out,
                    Redactor::new(&http.secret_headers, http.tls_insecure),
                )?))
            }
            Kind::MapInBatchesExec => {
                let call: HandlerCall = decode(payload)?;
                let args = call.args()?;
                let handler = Handlers::of(ctx.session_config())?.get(&call.name)?;
                let schema = handler.output_schema(&input.schema(), &args)?;
                Ok(Arc::new(MapInBatchesExec::new(
                    input,
                    call.name,
                    handler,
                    args,
                    schema,
                    runtime_of(ctx)?,
                )))
            }
            Kind::NoopSink => {
                let sink = Arc::new(NoopSink::new(input.schema()));
                Ok(Arc::new(DataSinkExec::new(input, sink, None)))
            }
            other => not_impl_err!("not a physical operator: {other:?}"),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(exec) = node.downcast_ref::<AsyncPipelineExec>() {
            header(Kind::AsyncPipeline, buf);
            let message = protobuf::AsyncFuncExecNode {
                input: None,
                async_exprs: exec
                    .async_exprs()
                    .iter()
                    .map(|e| proto_converter.physical_expr_to_proto(&e.func, self))
                    .collect::<Result<_>>()?,
                async_expr_names: exec
                    .async_exprs()
                    .iter()
                    .map(|e| e.name().to_string())
                    .collect(),
            };
            return encode(&message, buf);
        }
        if let Some(exec) = node.downcast_ref::<MapInBatchesExec>() {
            header(Kind::MapInBatchesExec, buf);
            let (name, args) = exec.call();
            return encode(&HandlerCall::new(name, args)?, buf);
        }
        if let Some(sink) = node.downcast_ref::<DataSinkExec>()
            && sink.sink().is::<NoopSink>()
        {
            header(Kind::NoopSink, buf);
            return Ok(());
        }
        if node.downcast_ref::<SharedExec>().is_some() {
            return not_impl_err!("a subplan read more than once cannot run on Ballista yet");
        }
        self.inner.try_encode(node, buf, proto_converter)
    }
}
