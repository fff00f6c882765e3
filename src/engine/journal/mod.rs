//! The call journal: answers recorded under a key each function gives, so a
//! rerun (after a kill, a failed query, a lost executor) replays them instead
//! of calling again.
//!
//! It knows nothing of HTTP: a function hashes what it would send into a
//! [`Fingerprint`], the journal keys the k-th identical call of a query
//! apart ([`once`]), and stores the function's own encoding of each final
//! answer. Records are committed in groups by one writer thread per journal
//! (an fsync per group for the embedded file), and a call's row waits for its
//! record's commit before it leaves the operator.
//!
//! Where it lives (`async_udf.journal`): a path is a redb file (pure Rust,
//! copy-on-write B-trees with checksums, crash-safe commits, one process per
//! file); `redis://host:port/db` is a Redis server a cluster shares.

mod once;
mod record;
mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::common::{DataFusionError, Result};
use parking_lot::Mutex;
use tokio::sync::oneshot;

pub use once::{Fingerprint, Follower, Lead, Merger, Mode, Once, Step, Value, recorded};
pub use record::{Reader, Recorded, Writer};
use store::Store;

/// A journal entry's key.
pub type Key = [u8; 32];

/// One row of `async_journal()`.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub recorded: Option<Recorded>,
    pub bytes: usize,
    pub replayed: u64,
}

enum Write {
    Put(Key, Vec<u8>, Box<dyn FnOnce(Result<(), String>) + Send>),
    Bump(Vec<Key>),
}

/// An open journal, shared by every session of the process that names it.
pub struct Journal {
    location: String,
    store: Arc<Store>,
    salt: [u8; 32],
    writes: Mutex<mpsc::Sender<Write>>,
    ttl: Mutex<Duration>,
}

static OPEN: LazyLock<Mutex<HashMap<String, Weak<Journal>>>> = LazyLock::new(Mutex::default);

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Journal {
    /// The journal at `location` (a path or a `redis://` URL), opened once per
    /// process; entries older than `ttl` are purged when it opens.
    pub fn open(location: &str, ttl: Duration) -> Result<Arc<Self>> {
        let mut open = OPEN.lock();
        if let Some(journal) = open.get(location).and_then(Weak::upgrade) {
            journal.set_ttl(ttl);
            return Ok(journal);
        }
        let shown = shown(location);
        let fail = |why: String| {
            DataFusionError::Execution(format!(
                "async_udf.journal: cannot use the journal {shown}: {why}"
            ))
        };
        let redis = location.starts_with("redis://") || location.starts_with("rediss://");
        let store = if redis {
            Store::redis(location).map_err(fail)?
        } else {
            Store::embedded(Path::new(location)).map_err(fail)?
        };
        let salt = store.salt().map_err(fail)?;
        let store = Arc::new(store);
        let cutoff = now_ms().saturating_sub(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        store
            .remove_where(|v| Recorded::recorded_at(v).is_none_or(|at| at < cutoff))
            .map_err(fail)?;
        let (tx, rx) = mpsc::channel();
        let journal = Arc::new(Self {
            location: shown.clone(),
            store: Arc::clone(&store),
            salt,
            writes: Mutex::new(tx),
            ttl: Mutex::new(ttl),
        });
        let weak = Arc::downgrade(&journal);
        std::thread::Builder::new()
            .name("async-journal".into())
            .spawn(move || write_loop(&store, &rx, &weak))
            .map_err(|e| fail(e.to_string()))?;
        open.insert(location.to_string(), Arc::downgrade(&journal));
        Ok(journal)
    }

    /// The key of secret bytes in a fingerprint: a hash keyed by this journal's
    /// salt, so no secret value is ever stored.
    pub fn salt(&self) -> &[u8; 32] {
        &self.salt
    }

    /// How long recorded answers are replayed from now on.
    pub fn set_ttl(&self, ttl: Duration) {
        *self.ttl.lock() = ttl;
    }

    fn ttl(&self) -> Duration {
        *self.ttl.lock()
    }

    fn failed(&self, why: impl std::fmt::Display) -> DataFusionError {
        DataFusionError::Execution(format!("async_udf.journal {}: {why}", self.location))
    }

    /// The recorded answers of `keys`, in order (`None`: not recorded, or
    /// older than the TTL).
    pub async fn lookup(&self, keys: Vec<Key>) -> Result<Vec<Option<Recorded>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let store = Arc::clone(&self.store);
        let values = tokio::task::spawn_blocking(move || store.get_many(&keys))
            .await
            .map_err(|e| self.failed(e))?
            .map_err(|e| self.failed(format!("cannot read it: {e}")))?;
        let cutoff = now_ms().saturating_sub(u64::try_from(self.ttl().as_millis()).unwrap_or(0));
        Ok(values
            .into_iter()
            .map(|v| {
                v.and_then(|v| Recorded::decode(&v))
                    .filter(|r| r.recorded_at_ms >= cutoff)
            })
            .collect())
    }

    /// Records `answer` under `key`; `done` runs on the writer thread once it
    /// is committed (or failed).
    pub fn record(
        &self,
        key: Key,
        recorded: &Recorded,
        done: impl FnOnce(Result<(), String>) + Send + 'static,
    ) {
        let sent = self
            .writes
            .lock()
            .send(Write::Put(key, recorded.encode(), Box::new(done)));
        if let Err(mpsc::SendError(Write::Put(_, _, done))) = sent {
            done(Err("its writer stopped".into()));
        }
    }

    /// A future of the commit of `recorded` under `key`: `Err` names the journal.
    pub fn commit(
        self: &Arc<Self>,
        key: Key,
        recorded: &Recorded,
        then: impl FnOnce() + Send + 'static,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        self.record(key, recorded, move |r| {
            then();
            let _ = tx.send(r);
        });
        let journal = Arc::clone(self);
        async move {
            match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(journal.failed(format!(
                    "cannot record an answer: {e}; the query stops so that no row leaves \
                     without its record (what was recorded is kept: rerun to resume)"
                ))),
                Err(_) => Err(journal.failed("its writer stopped")),
            }
        }
    }

    /// Counts a replay of each of `keys` (in the background).
    pub fn replayed(&self, keys: Vec<Key>) {
        if !keys.is_empty() {
            let _ = self.writes.lock().send(Write::Bump(keys));
        }
    }

    /// Every entry, for `async_journal()` (reads the store on this thread).
    pub fn entries_now(&self) -> Result<Vec<Listed>> {
        let stored = self.store.list().map_err(|e| self.failed(e))?;
        Ok(stored
            .into_iter()
            .map(|s| Listed {
                key: store::key_hex(&s.key),
                bytes: s.value.len(),
                recorded: Recorded::decode(&s.value),
                replayed: s.replayed,
            })
            .collect())
    }

    /// Removes every entry; how many there were (on this thread).
    pub fn clear_now(&self) -> Result<usize> {
        self.store
            .remove_where(|_| true)
            .map_err(|e| self.failed(e))
    }
}

/// `location` as errors show it: a URL without its password.
fn shown(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(mut url) if url.scheme().starts_with("redis") => {
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => format!("'{location}'"),
    }
}

/// The writer thread: takes every write waiting, commits them as one group,
/// then tells each; ends when the journal is dropped.
fn write_loop(store: &Store, rx: &mpsc::Receiver<Write>, journal: &Weak<Journal>) {
    while let Ok(first) = rx.recv() {
        let mut puts = Vec::new();
        let mut bumps = Vec::new();
        let mut next = Some(first);
        while let Some(w) = next.take() {
            match w {
                Write::Put(k, v, done) => puts.push((k, v, done)),
                Write::Bump(keys) => bumps.extend(keys),
            }
            if puts.len() < 4096 {
                next = rx.try_recv().ok();
            }
        }
        let ttl = journal
            .upgrade()
            .map_or(Duration::from_secs(86_400), |j| j.ttl());
        if !puts.is_empty() {
            let entries: Vec<(Key, Vec<u8>)> = puts
                .iter_mut()
                .map(|(k, v, _)| (*k, std::mem::take(v)))
                .collect();
            let result = store.put_many(&entries, ttl);
            for (_, _, done) in puts {
                done(result.clone());
            }
        }
        if let Err(e) = (!bumps.is_empty())
            .then(|| store.bump(&bumps, ttl))
            .transpose()
        {
            tracing::warn!("async_udf.journal: replays not counted: {e}");
        }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}
