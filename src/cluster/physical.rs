//! The physical codec: `AsyncPipelineExec`, `MapInBatchesExec` and the NOOP
//! sink; Ballista's own codec for the rest (its shuffle readers and writers).

use std::sync::Arc;

use arrow::datatypes::Schema;
use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::common::{Result, not_impl_err};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::async_scalar_function::AsyncFuncExpr;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf;
use prost::Message;

use super::wire::{HandlerCall, Kind, decode, encode, header, ours, runtime_of};
use crate::batches::Handlers;
use crate::batches::exec::MapInBatchesExec;
use crate::config::{self, AsyncUdfConfig, HttpConfig};
use crate::noop::NoopSink;
use crate::operator::call::Guard;
use crate::operator::display::Redactor;
use crate::operator::exec::AsyncPipelineExec;
use crate::operator::shared::SharedExec;
use crate::runtime::AsyncRuntime;

/// `AsyncPipelineExec`: DataFusion's message for its calls, and their guards.
#[derive(Clone, PartialEq, Message)]
struct PipelineNode {
    #[prost(message, optional, tag = "1")]
    calls: Option<protobuf::AsyncFuncExecNode>,
    #[prost(message, repeated, tag = "2")]
    guards: Vec<GuardNode>,
}

/// The guard of call `call` (by position).
#[derive(Clone, PartialEq, Message)]
struct GuardNode {
    #[prost(uint32, tag = "1")]
    call: u32,
    #[prost(message, optional, tag = "3")]
    when: Option<protobuf::PhysicalExprNode>,
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
                let PipelineNode { calls, guards } = decode(payload)?;
                let node = calls.unwrap_or_default();
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
                let mut guarded = vec![None; exprs.len()];
                for g in guards {
                    let when = g.when.unwrap_or_default();
                    let when =
                        proto_converter.proto_to_physical_expr(&when, &schema, &decode_ctx)?;
                    match guarded.get_mut(g.call as usize) {
                        Some(slot) => *slot = Some(Guard::new(when)),
                        None => {
                            return not_impl_err!("a guard for call {}, which is missing", g.call);
                        }
                    }
                }
                let options = ctx.session_config().options();
                let engine: AsyncUdfConfig = config::get(options);
                let http: HttpConfig = config::get(options);
                Ok(Arc::new(AsyncPipelineExec::try_new(
                    exprs,
                    guarded,
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
            let guards = exec
                .guards()
                .iter()
                .enumerate()
                .filter_map(|(i, g)| Some((i, g.as_ref()?)))
                .map(|(i, g)| {
                    Ok(GuardNode {
                        call: i as u32,
                        when: Some(proto_converter.physical_expr_to_proto(&g.when, self)?),
                    })
                })
                .collect::<Result<_>>()?;
            let calls = protobuf::AsyncFuncExecNode {
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
            let message = PipelineNode {
                calls: Some(calls),
                guards,
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
