//! Each call sent once: a call's key, its answer replayed from the journal,
//! identical idempotent calls in flight merged into one.
//!
//! * A function hashes what it would send into a [`Fingerprint`] and says
//!   whether identical calls may share one answer ([`Mode::Merge`]: GET,
//!   HEAD, …) or stay distinct ([`Mode::Distinct`]: POST, PATCH).
//! * A distinct call's key is its fingerprint and its occurrence: the k-th
//!   identical call of a query (counted by its [`Flow`]) is entry k, so a
//!   rerun replays as many copies as were answered and sends the rest.
//! * [`Once::steps`] looks the keys up in the journal (one read for the whole
//!   list) and gives each call a [`Step`]: replay the recorded answer, follow
//!   an identical call in flight, or lead (send it, then [`Lead::finish`]).

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::Result;
use futures::FutureExt;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{Journal, Key, Recorded};
use crate::engine::Flow;

/// The answer merged calls share, as the function built it.
pub type Value = Arc<dyn Any + Send + Sync>;

/// Whether identical calls may share one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each is its own call (the k-th identical call of a query its own entry).
    Distinct,
    /// Identical calls in flight share one; a recorded one answers them all.
    Merge,
}

/// The salt of secret parts when no journal is on.
const NO_JOURNAL: [u8; 32] = *b"datafusion-async-udf/fingerprint";

/// A hash of everything a call would send.
#[derive(Clone)]
pub struct Fingerprint(blake3::Hasher);

impl Fingerprint {
    /// The fingerprint of a call of `function`.
    pub fn new(function: &str) -> Self {
        let mut f = Self(blake3::Hasher::new());
        f.part(b"datafusion-async-udf/call/1");
        f.part(function.as_bytes());
        f
    }

    /// Adds `bytes` (length-prefixed: parts never run together).
    pub fn part(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// Adds secret bytes through a hash keyed by `salt`.
    pub fn secret(&mut self, salt: &[u8; 32], bytes: &[u8]) {
        self.part(blake3::keyed_hash(salt, bytes).as_bytes());
    }

    pub fn finish(&self) -> Key {
        *self.0.finalize().as_bytes()
    }
}

/// Identical idempotent calls of a session, in flight or answered and not
/// yet recorded.
#[derive(Default)]
pub struct Merger {
    calls: Mutex<HashMap<Key, Merged>>,
}

enum Merged {
    /// In flight: the calls waiting for its answer.
    Flying(Vec<oneshot::Sender<Value>>),
    Answered(Value),
}

impl std::fmt::Debug for Merger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merger")
            .field("calls", &self.calls.lock().len())
            .finish()
    }
}

impl Merger {
    /// Follow the call of `key` in flight, or lead it (`None`).
    fn join(&self, key: Key) -> Option<Follower> {
        let mut calls = self.calls.lock();
        match calls.get_mut(&key) {
            Some(Merged::Flying(waiting)) => {
                let (tx, rx) = oneshot::channel();
                waiting.push(tx);
                Some(Follower {
                    key,
                    flying: Some(rx),
                    answered: None,
                })
            }
            Some(Merged::Answered(value)) => Some(Follower {
                key,
                flying: None,
                answered: Some(Arc::clone(value)),
            }),
            None => {
                calls.insert(key, Merged::Flying(Vec::new()));
                None
            }
        }
    }

    /// Forgets `key`; the calls still waiting for it are told nothing (and
    /// send their own).
    fn remove(&self, key: &Key) {
        self.calls.lock().remove(key);
    }

    /// The calls waiting for `key` (none once it is answered).
    fn waiting(calls: &mut HashMap<Key, Merged>, key: &Key) -> Vec<oneshot::Sender<Value>> {
        match calls.get_mut(key) {
            Some(Merged::Flying(waiting)) => std::mem::take(waiting),
            _ => Vec::new(),
        }
    }
}

/// What to do for one call.
pub enum Step {
    /// Its answer was recorded (under this key): use it, send nothing.
    Replay(Key, Recorded),
    /// An identical call is in flight: wait for its answer.
    Follow(Follower),
    /// Send it, then [`Lead::finish`].
    Lead(Lead),
}

/// A call waiting for an identical one in flight.
pub struct Follower {
    key: Key,
    flying: Option<oneshot::Receiver<Value>>,
    answered: Option<Value>,
}

impl Follower {
    /// The answer, or the key when the call it followed was dropped (then it
    /// must be sent: see [`Once::lead_again`]).
    pub async fn wait(self) -> Result<Value, Key> {
        if let Some(value) = self.answered {
            return Ok(value);
        }
        match self.flying {
            Some(rx) => rx.await.map_err(|_| self.key),
            None => Err(self.key),
        }
    }
}

/// A call to send: its key, and what to tell when it is answered.
pub struct Lead {
    key: Key,
    journal: Option<Arc<Journal>>,
    merged: Option<Arc<Merger>>,
}

impl Lead {
    /// A token derived from the key, the same on every retry, rerun and
    /// executor, and for no other call (an `Idempotency-Key`).
    pub fn token(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(b"datafusion-async-udf/idempotency-key");
        h.update(&self.key);
        let hash = h.finalize();
        super::store::key_hex(hash.as_bytes())[..32].to_string()
    }

    /// Its answer was found recorded: the identical calls waiting get it (as
    /// an `Arc<Recorded>`), and nothing is sent.
    fn replayed(mut self, recorded: &Recorded) {
        if let Some(merger) = self.merged.take() {
            let mut calls = merger.calls.lock();
            let waiting = Merger::waiting(&mut calls, &self.key);
            calls.remove(&self.key);
            drop(calls);
            if !waiting.is_empty() {
                let value = Arc::new(recorded.clone()) as Value;
                for tx in waiting {
                    let _ = tx.send(Arc::clone(&value));
                }
            }
        }
    }

    /// Whether it is a call of its own ([`Mode::Distinct`]).
    pub fn distinct(&self) -> bool {
        self.merged.is_none()
    }

    /// The call was answered: identical calls waiting get `value()`, and an
    /// answer to record (`recorded`: a final one) is recorded. The future
    /// resolves once it is committed: the row must wait for it.
    pub fn finish(
        mut self,
        value: impl FnOnce() -> Value,
        recorded: Option<impl FnOnce() -> Recorded>,
    ) -> Option<BoxFuture<'static, Result<()>>> {
        let key = self.key;
        let journal = self.journal.take();
        let recording = journal.is_some() && recorded.is_some();
        let merger = self.merged.take().inspect(|merger| {
            let mut calls = merger.calls.lock();
            let waiting = Merger::waiting(&mut calls, &key);
            if !waiting.is_empty() || recording {
                let value = value();
                for tx in waiting {
                    let _ = tx.send(Arc::clone(&value));
                }
                if recording {
                    // until it is committed, identical calls take it from here
                    calls.insert(key, Merged::Answered(value));
                }
            }
            if !recording {
                calls.remove(&key);
            }
            drop(calls);
        });
        let (Some(journal), Some(recorded)) = (journal, recorded) else {
            return None;
        };
        let then = move || {
            if let Some(m) = merger {
                m.remove(&key);
            }
        };
        Some(journal.commit(key, &recorded(), then).boxed())
    }
}

impl Drop for Lead {
    /// Dropped unanswered (cancelled): the calls following it send their own.
    fn drop(&mut self) {
        if let Some(merger) = self.merged.take() {
            merger.remove(&self.key);
        }
    }
}

/// A query's means of sending each call once.
pub struct Once<'a> {
    pub journal: Option<&'a Arc<Journal>>,
    pub merger: &'a Arc<Merger>,
    /// Counts identical distinct calls per query (none: per [`Once::steps`]).
    pub flow: Option<&'a Flow>,
}

impl Once<'_> {
    /// The salt of secret parts of fingerprints.
    pub fn salt(&self) -> &[u8; 32] {
        self.journal.map_or(&NO_JOURNAL, |j| j.salt())
    }

    fn key(&self, fingerprint: &Key, mode: Mode, local: &mut HashMap<u64, u32>) -> Key {
        if mode == Mode::Merge {
            return *fingerprint;
        }
        let short = u64::from_le_bytes(fingerprint[..8].try_into().expect("8 bytes"));
        let k = if let Some(flow) = self.flow {
            flow.occurrence(short)
        } else {
            let n = local.entry(short).or_default();
            *n += 1;
            *n - 1
        };
        let mut h = blake3::Hasher::new();
        h.update(fingerprint);
        h.update(&k.to_le_bytes());
        *h.finalize().as_bytes()
    }

    /// A step for each call (`None` for a call not made).
    ///
    /// Identical idempotent calls join the call in flight *before* the
    /// journal is read: a call in flight is answered, then recorded, then
    /// forgotten, so a call that finds none in flight finds its record.
    pub async fn steps(&self, calls: &[Option<(Key, Mode)>]) -> Result<Vec<Option<Step>>> {
        let mut local = HashMap::new();
        let steps: Vec<Option<Step>> = calls
            .iter()
            .map(|c| c.map(|(fp, mode)| self.step(self.key(&fp, mode, &mut local), mode)))
            .collect();
        let Some(journal) = self.journal else {
            return Ok(steps);
        };
        let wanted: Vec<Key> = steps
            .iter()
            .filter_map(|s| match s {
                Some(Step::Lead(lead)) => Some(lead.key),
                _ => None,
            })
            .collect();
        let mut recorded = journal.lookup(wanted).await?.into_iter();
        let mut replayed = Vec::new();
        let steps = steps
            .into_iter()
            .map(|step| match step {
                Some(Step::Lead(lead)) => match recorded.next().flatten() {
                    Some(r) => {
                        let key = lead.key;
                        replayed.push(key);
                        lead.replayed(&r);
                        Some(Step::Replay(key, r))
                    }
                    None => Some(Step::Lead(lead)),
                },
                other => other,
            })
            .collect();
        journal.replayed(replayed);
        Ok(steps)
    }

    fn step(&self, key: Key, mode: Mode) -> Step {
        let journal = self.journal.cloned();
        if mode == Mode::Distinct {
            return Step::Lead(Lead {
                key,
                journal,
                merged: None,
            });
        }
        match self.merger.join(key) {
            Some(follower) => Step::Follow(follower),
            None => Step::Lead(Lead {
                key,
                journal,
                merged: Some(Arc::clone(self.merger)),
            }),
        }
    }

    /// A lead for a call whose leader was dropped (not merged again).
    pub fn lead_again(&self, lead_key: Key) -> Lead {
        Lead {
            key: lead_key,
            journal: self.journal.cloned(),
            merged: None,
        }
    }
}
