//! The wire format of this crate's plan pieces: what is ours starts with
//! [`MAGIC`] and a kind byte; a Ballista or DataFusion encoding never does (a
//! protobuf message starts with a small field tag). The pieces DataFusion knows
//! (expressions, scalars) are encoded as its protobuf messages. Decoding takes
//! the session's runtime and handlers from the decoding side's config: an
//! executor's calls run on the executor's own budget.

use std::sync::Arc;

use datafusion::common::{Result, ScalarValue, internal_datafusion_err};
use datafusion::execution::TaskContext;
use datafusion_proto::protobuf;
use prost::Message;

use crate::runtime::AsyncRuntime;

/// The first bytes of everything this codec encodes itself.
pub(super) const MAGIC: &[u8] = b"\xffDFAU";

/// What follows [`MAGIC`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Kind {
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

pub(super) fn header(kind: Kind, buf: &mut Vec<u8>) {
    buf.extend_from_slice(MAGIC);
    buf.push(kind as u8);
}

/// Ours: the kind and the payload after it.
pub(super) fn ours(buf: &[u8]) -> Option<(Kind, &[u8])> {
    let rest = buf.strip_prefix(MAGIC)?;
    let (&k, payload) = rest.split_first()?;
    Kind::ALL
        .into_iter()
        .find(|x| *x as u8 == k)
        .map(|x| (x, payload))
}

pub(super) fn encode(message: &impl Message, buf: &mut Vec<u8>) -> Result<()> {
    message
        .encode(buf)
        .map_err(|e| internal_datafusion_err!("datafusion-async-udf codec: {e}"))
}

pub(super) fn decode<M: Message + Default>(payload: &[u8]) -> Result<M> {
    M::decode(payload).map_err(|e| internal_datafusion_err!("datafusion-async-udf codec: {e}"))
}

/// A handler call: its name and arguments.
#[derive(Clone, PartialEq, Message)]
pub(super) struct HandlerCall {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, repeated, tag = "2")]
    args: Vec<datafusion_proto::protobuf::ScalarValue>,
}

impl HandlerCall {
    pub(super) fn new(name: &str, args: &[ScalarValue]) -> Result<Self> {
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

    pub(super) fn args(&self) -> Result<Vec<ScalarValue>> {
        self.args
            .iter()
            .map(|a| {
                ScalarValue::try_from(a)
                    .map_err(|e| internal_datafusion_err!("map_in_batches argument: {e}"))
            })
            .collect()
    }
}

pub(super) fn runtime_of(ctx: &TaskContext) -> Result<Arc<AsyncRuntime>> {
    ctx.session_config()
        .get_extension::<AsyncRuntime>()
        .ok_or_else(|| {
            internal_datafusion_err!(
                "this process has no datafusion-async-udf runtime: build its session with \
             datafusion_async_udf::cluster::ClusterSetup"
            )
        })
}
