//! The logical codec: `AsyncCalls` and `MapInBatches` nodes, the `NOOP` file
//! format (`COPY … STORED AS NOOP`) and NOOP tables (`INSERT INTO`); Ballista's
//! own codec for the rest.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::catalog::TableProvider;
use datafusion::common::{Result, TableReference, not_impl_err};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::logical_plan::from_proto::parse_exprs;
use datafusion_proto::logical_plan::to_proto::serialize_exprs;
use datafusion_proto::protobuf;
use prost::Message;

use super::wire::{HandlerCall, Kind, decode, encode, header, ours};
use crate::batches::Handlers;
use crate::batches::node::MapInBatches;
use crate::noop::{NoopFormatFactory, NoopTable};
use crate::operator::node::{AsyncCalls, Call};
use crate::operator::shared::Shared;

/// The async calls of an `AsyncCalls` node: names, expressions, and the
/// guards of those that have one.
#[derive(Clone, PartialEq, Message)]
struct CallNames {
    #[prost(string, repeated, tag = "1")]
    names: Vec<String>,
    #[prost(message, optional, tag = "2")]
    exprs: Option<protobuf::LogicalExprNodeCollection>,
    /// The calls (by position) that have a guard, in the order of `guards`.
    #[prost(uint32, repeated, tag = "3")]
    guarded: Vec<u32>,
    #[prost(message, optional, tag = "4")]
    guards: Option<protobuf::LogicalExprNodeCollection>,
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
                let CallNames {
                    names,
                    exprs,
                    guarded,
                    guards,
                } = decode(payload)?;
                let exprs = parse_exprs(&exprs.unwrap_or_default().logical_expr_nodes, ctx, self)?;
                let guards =
                    parse_exprs(&guards.unwrap_or_default().logical_expr_nodes, ctx, self)?;
                let mut calls: Vec<Call> = exprs
                    .into_iter()
                    .zip(names)
                    .map(|(e, name)| Call::new(e, name, None))
                    .collect();
                for (i, guard) in guarded.into_iter().zip(guards) {
                    let Some(call) = calls.get_mut(i as usize) else {
                        return not_impl_err!("AsyncCalls: a guard for call {i}, which is missing");
                    };
                    call.guard = Some(guard);
                }
                Arc::new(AsyncCalls::try_new(input, calls)?)
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
            let exprs: Vec<_> = calls.calls().iter().map(|c| c.expr.clone()).collect();
            let (guarded, guards): (Vec<u32>, Vec<Expr>) = calls
                .calls()
                .iter()
                .enumerate()
                .filter_map(|(i, c)| Some((i as u32, c.guard.clone()?)))
                .unzip();
            let message = CallNames {
                names: calls.calls().iter().map(|c| c.name.clone()).collect(),
                exprs: Some(protobuf::LogicalExprNodeCollection {
                    logical_expr_nodes: serialize_exprs(&exprs, self)?,
                }),
                guarded,
                guards: Some(protobuf::LogicalExprNodeCollection {
                    logical_expr_nodes: serialize_exprs(&guards, self)?,
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
