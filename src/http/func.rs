//! The async scalar UDF behind every HTTP function.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use async_trait::async_trait;
use datafusion::common::{Result, exec_err, internal_err};
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::args::check;
use super::rows::RowArgs;
use super::{Kind, Policy, Session, journal, output, send};
use crate::config::{self, AsyncUdfConfig, HttpConfig, IdempotencyKey, OnError};
use crate::engine::journal::{Lead, Once, Value};
use crate::engine::{current_flow, held, map_ordered, metrics};
use crate::runtime::{AsyncRuntime, Bound};
use crate::transport::{ErrorKind, Outcome, Request, redact};
use futures::future::BoxFuture;

/// An HTTP function, bound to a session's [`AsyncRuntime`] (or not yet:
/// built by [`crate::expr_fn`], bound when the query is planned).
#[derive(Debug)]
pub(crate) struct HttpFunc {
    kind: Kind,
    signature: Signature,
    runtime: Option<Bound>,
}

impl HttpFunc {
    fn new(kind: Kind, runtime: Option<Bound>) -> Self {
        Self {
            kind,
            // argument types are checked in `return_type`, which names the argument
            signature: Signature::variadic_any(Volatility::Volatile),
            runtime,
        }
    }

    /// The function bound to `runtime`, ready to register.
    pub(crate) fn udf(kind: Kind, runtime: &Arc<AsyncRuntime>) -> ScalarUDF {
        AsyncScalarUDF::new(Arc::new(Self::new(kind, Some(Bound::new(runtime))))).into_scalar_udf()
    }

    /// The function bound to no session yet (see [`crate::expr_fn`]).
    pub(crate) fn unbound(kind: Kind) -> ScalarUDF {
        AsyncScalarUDF::new(Arc::new(Self::new(kind, None))).into_scalar_udf()
    }
}

impl PartialEq for HttpFunc {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && match (&self.runtime, &other.runtime) {
                (Some(a), Some(b)) => a.same(b),
                (a, b) => a.is_none() && b.is_none(),
            }
    }
}

impl Eq for HttpFunc {}

impl Hash for HttpFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
    }
}

impl HttpFunc {
    /// Tells the journal and the identical calls waiting that `lead` was
    /// answered with `outcome`; the commit to wait for, if it is recorded.
    fn finish(&self, lead: Lead, outcome: &Outcome) -> Option<BoxFuture<'static, Result<()>>> {
        let name = self.name();
        let entry = journal::is_final(outcome).then_some(|| journal::entry(name, outcome));
        lead.finish(|| Arc::new(outcome.clone()) as Value, entry)
    }
}

impl ScalarUDFImpl for HttpFunc {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check(self.kind, arg_types, &[])?;
        Ok(output::return_type(self.kind.binary()))
    }

    /// Checks a literal method too (`http_request('BREW', …)` is a plan error).
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        check(self.kind, &types, args.scalar_arguments)?;
        Ok(Arc::new(Field::new(
            self.name(),
            output::return_type(self.kind.binary()),
            true,
        )))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        internal_err!("{} must be invoked asynchronously", self.name())
    }
}

#[async_trait]
impl AsyncScalarUDFImpl for HttpFunc {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let engine: AsyncUdfConfig = config::get(&args.config_options);
        let http: HttpConfig = config::get(&args.config_options);
        let policy = &Policy::new(&http, &engine);
        let Some(bound) = &self.runtime else {
            return exec_err!(
                "{}: call datafusion_async_udf::register_all on the session that runs this query",
                self.name()
            );
        };
        let runtime = &bound.get(self.name())?;
        let rows = RowArgs::new(self.kind, &args.args, args.number_rows)?;
        let slots = runtime
            .budget()
            .slots(engine.max_in_flight.get(), engine.fair_share);
        let session = &Session::new(runtime, policy)?;
        let journal = runtime.journal(&engine)?;
        let flow = current_flow();
        let once = &Once {
            journal: journal.as_ref(),
            merger: runtime.merger(),
            flow: flow.as_deref(),
        };
        let called: Vec<usize> = rows.called_rows().collect();
        let requests: Vec<Result<Request, String>> = called
            .iter()
            .map(|&i| rows.request(i, runtime.secrets()))
            .collect();
        let secret = &policy.transport.secret_headers;
        let journal::Sorted {
            mut outcomes,
            to_send,
            followers,
        } = journal::sort(self.name(), once, secret, called, requests).await?;
        let on_error = http.row_errors(&engine);
        let keyed = http.idempotency_key == IdempotencyKey::Auto;
        let replayed = outcomes.len();
        held::calls_done(replayed);
        metrics::replayed(replayed);
        let rows = &rows;
        let exchange = &|i: usize, request: Result<Request, String>, lead: Option<Lead>| {
            // the exchange with its request in one box, made once: the row's
            // own future (moved a few times before it runs) holds the box only
            let exchange = request.map(|mut request| {
                if let Some(lead) = lead.as_ref().filter(|l| keyed && l.distinct()) {
                    journal::add_idempotency_key(&mut request, &lead.token());
                }
                Box::pin(send(session, request, policy))
            });
            async move {
                let outcome = match exchange {
                    Ok(exchange) => exchange.await,
                    Err(reason) => Box::new(Outcome::failed(ErrorKind::Invalid, reason)),
                };
                // the call holds its slot until its answer is recorded: the
                // calls not recorded are at most the budget
                if let Some(commit) = lead.and_then(|lead| self.finish(lead, &outcome)) {
                    commit.await?;
                }
                if outcome.error.is_some() {
                    metrics::failed(outcome.kind.label());
                }
                held::hold(outcome.held_bytes());
                match (&outcome.error, on_error) {
                    (Some(error), OnError::Fail) => exec_err!(
                        "{}: row {i} of the batch, url '{}': {error}",
                        self.name(),
                        redact(rows.url(i))
                    ),
                    _ => Ok((i, outcome)),
                }
            }
        };
        let sent = map_ordered(slots, to_send, |(i, request, lead)| {
            exchange(i, request, lead)
        });
        let followed = futures::future::join_all(followers.into_iter().map(|(i, request, f)| {
            async move {
                match f.wait().await.ok().and_then(|v| journal::shared(&v)) {
                    Some(outcome) => {
                        metrics::merged();
                        held::call_done();
                        held::hold(outcome.held_bytes());
                        Ok((i, outcome))
                    }
                    // the call it followed was dropped: its own
                    None => exchange(i, Ok(request), None).await,
                }
            }
        }));
        let (sent, followed) = futures::join!(sent, followed);
        outcomes.extend(sent?);
        for followed in followed {
            outcomes.push(followed?);
        }

        let mut column = vec![None; args.number_rows];
        for (i, outcome) in outcomes {
            column[i] = Some(outcome);
        }
        Ok(ColumnarValue::Array(output::build(
            column,
            self.kind.binary(),
        )))
    }
}
