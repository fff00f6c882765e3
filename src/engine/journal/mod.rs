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

mod each;
mod embedded;
mod once;
mod record;
mod rows;
mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::common::{DataFusionError, Result};
use parking_lot::Mutex;
use tokio::sync::oneshot;

pub use each::{Answer, each_once};
pub use once::{Fingerprint, Follower, Lead, Merger, Mode, Once, Step, Value};
pub use record::{Reader, Recorded, Writer};
pub use rows::{RowCodec, batch_rows, decode_batches, encode_batches};
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
    writes: Mutex<Option<mpsc::Sender<Write>>>,
    /// The writer thread, joined when the journal is dropped (its file is
    /// closed then, and can be opened again at once).
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    ttl: Arc<Mutex<Duration>>,
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.writes.lock().take();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
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
        let cutoff = now_ms().saturating_sub(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        // entries past the TTL: purged here from a file, expired by Redis itself
        let expired = |v: &[u8]| Recorded::recorded_at(v).is_none_or(|at| at < cutoff);
        let store = if redis {
            Store::redis(location).map_err(fail)?
        } else {
            Store::embedded(Path::new(location), expired).map_err(fail)?
        };
        let salt = store.salt().map_err(fail)?;
        let store = Arc::new(store);
        let (tx, rx) = mpsc::channel();
        let ttl = Arc::new(Mutex::new(ttl));
        let writer = {
            let (store, ttl) = (Arc::clone(&store), Arc::clone(&ttl));
            std::thread::Builder::new()
                .name("async-journal".into())
                .spawn(move || write_loop(&store, &rx, &ttl))
                .map_err(|e| fail(e.to_string()))?
        };
        let journal = Arc::new(Self {
            location: shown.clone(),
            store,
            salt,
            writes: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            ttl,
        });
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
                v.and_then(Recorded::decode)
                    .filter(|r| r.recorded_at_ms >= cutoff)
            })
            .collect())
    }

    /// Records `recorded` under `key`: a future of its commit (`Err` names
    /// the journal). `then` runs on the writer thread once it is committed
    /// (or failed).
    pub fn commit(
        self: &Arc<Self>,
        key: Key,
        recorded: &Recorded,
        then: impl FnOnce() + Send + 'static,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let done = Box::new(move |r| {
            then();
            let _ = tx.send(r);
        });
        let write = Write::Put(key, recorded.encode(), done);
        let sent = match self.writes.lock().as_ref() {
            Some(writer) => writer.send(write).map_err(|mpsc::SendError(w)| w),
            None => Err(write),
        };
        if let Err(Write::Put(_, _, done)) = sent {
            done(Err("its writer stopped".into()));
        }
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
        if let Some(tx) = self.writes.lock().as_ref().filter(|_| !keys.is_empty()) {
            let _ = tx.send(Write::Bump(keys));
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
                recorded: Recorded::decode(s.value),
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
fn write_loop(store: &Store, rx: &mpsc::Receiver<Write>, ttl: &Mutex<Duration>) {
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
        let ttl = *ttl.lock();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: u64) -> Recorded {
        Recorded {
            function: "f".into(),
            status: 200,
            recorded_at_ms: at,
            answer: bytes::Bytes::from_static(b"answer"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_older_than_the_ttl_are_not_replayed_and_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let location = path.to_str().unwrap();
        let hour = Duration::from_secs(3600);
        let journal = Journal::open(location, hour).unwrap();
        let now = now_ms();
        journal.commit([1; 32], &entry(now), || {}).await.unwrap();
        journal
            .commit([2; 32], &entry(now - 2 * 3_600_000), || {})
            .await
            .unwrap();
        let found = journal
            .lookup(vec![[1; 32], [2; 32], [3; 32]])
            .await
            .unwrap();
        assert_eq!(found[0].as_ref().map(|r| r.recorded_at_ms), Some(now));
        assert!(found[1].is_none(), "older than the TTL");
        assert!(found[2].is_none());
        assert_eq!(
            journal.entries_now().unwrap().len(),
            2,
            "kept until reopened"
        );
        journal.set_ttl(3 * hour);
        let found = journal.lookup(vec![[2; 32]]).await.unwrap();
        assert!(found[0].is_some(), "within a longer TTL");
        drop(journal);
        // reopened: the old entry is purged
        let journal = Journal::open(location, hour).unwrap();
        let listed = journal.entries_now().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, store::key_hex(&[1; 32]));
        assert_eq!(journal.clear_now().unwrap(), 1);
        assert!(journal.entries_now().unwrap().is_empty());
    }
}
