//! Each call once, for functions whose answers are bytes they encode
//! themselves (typed functions, `map_in_batches` handlers): replayed from the
//! journal, taken from an identical call in flight, or sent — holding a
//! budget slot until its answer is recorded.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::common::Result;

use super::{Key, Lead, Mode, Once, Recorded, Step, Value};
use crate::engine::{Slots, held, map_ordered, metrics};

/// One call's answer: its encoding, or why it failed (a failure is not
/// recorded: a rerun calls again).
pub type Answer = std::result::Result<Bytes, String>;

fn shared(value: &Value) -> Option<Answer> {
    match value.downcast_ref::<Recorded>() {
        Some(r) => Some(Ok(r.answer.clone())),
        None => value.downcast_ref::<Answer>().cloned(),
    }
}

/// Tells the journal and the identical calls waiting that `lead` got
/// `answer`, and waits for its record's commit.
async fn finish(lead: Lead, function: &str, answer: &Answer) -> Result<()> {
    let recorded = answer
        .as_ref()
        .ok()
        .map(|bytes| || Recorded::new(function, 0, bytes.clone()));
    match lead.finish(|| Arc::new(answer.clone()) as Value, recorded) {
        Some(commit) => commit.await,
        None => Ok(()),
    }
}

/// The answer of every call of `calls` (an input and its key), in order.
/// `call(input, token)` makes a call; `token` is its idempotency key (see
/// [`Lead::token`]). `call` failing fails them all.
pub async fn each_once<T, F, Fut>(
    once: &Once<'_>,
    function: &str,
    slots: Arc<Slots>,
    calls: Vec<(T, Key, Mode)>,
    call: F,
) -> Result<Vec<Answer>>
where
    F: Fn(T, String) -> Fut,
    Fut: Future<Output = Result<Answer>>,
{
    let keys: Vec<Option<(Key, Mode)>> = calls.iter().map(|(_, k, m)| Some((*k, *m))).collect();
    let steps = once.steps(&keys).await?;
    let mut answers: Vec<Option<Answer>> = vec![None; calls.len()];
    let mut leads = Vec::new();
    let mut followers = Vec::new();
    for (i, ((input, key, _), step)) in calls.into_iter().zip(steps).enumerate() {
        match step {
            Some(Step::Replay(_, recorded)) => answers[i] = Some(Ok(recorded.answer)),
            Some(Step::Follow(follower)) => followers.push((i, key, input, follower)),
            Some(Step::Lead(lead)) => leads.push((i, input, lead)),
            None => {}
        }
    }
    let replayed = answers.iter().filter(|a| a.is_some()).count();
    held::calls_done(replayed);
    metrics::replayed(replayed);
    let call = &call;
    let sent = map_ordered(slots, leads, |(i, input, lead)| async move {
        let answer = call(input, lead.token()).await?;
        finish(lead, function, &answer).await?;
        Ok((i, answer))
    });
    let followed = futures::future::join_all(followers.into_iter().map(|(i, key, input, f)| {
        async move {
            if let Some(answer) = f.wait().await.ok().and_then(|v| shared(&v)) {
                metrics::merged();
                held::call_done();
                return Ok((i, answer));
            }
            // the call it followed was dropped: its own
            let again = once.lead_again(key);
            let answer = call(input, again.token()).await?;
            finish(again, function, &answer).await?;
            Ok((i, answer))
        }
    }));
    let (sent, followed) = futures::join!(sent, followed);
    for (i, answer) in sent?
        .into_iter()
        .chain(followed.into_iter().collect::<Result<Vec<_>>>()?)
    {
        answers[i] = Some(answer);
    }
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err("not called".to_string())))
        .collect())
}
