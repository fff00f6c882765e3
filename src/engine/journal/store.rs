//! Where journal entries live: an embedded crash-safe file (redb) or a Redis
//! server. Both are used synchronously, from the journal's writer thread and
//! from `spawn_blocking` look-ups.

use std::path::Path;
use std::time::Duration;

use parking_lot::Mutex;
use redb::Database;

use super::Key;
use super::embedded::Embedded;

/// How to recover from a damaged journal file.
const DAMAGED: &str = "If the file is damaged, move it away (its recorded answers are then not \
                       replayed: their calls are sent again) and rerun";

/// Every Redis key of the journal starts with this.
const PREFIX: &str = "async_udf:journal:";

/// An entry as stored, with the times it was replayed.
pub(crate) struct Stored {
    pub key: Key,
    pub value: Vec<u8>,
    pub replayed: u64,
}

/// One journal's storage (one per journal: the size of a variant is no matter).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Store {
    Embedded(Embedded),
    Redis {
        client: redis::Client,
        /// One connection for the writer thread, one for look-ups (made again
        /// after a failure).
        writer: Mutex<Option<redis::Connection>>,
        reader: Mutex<Option<redis::Connection>>,
    },
}

pub(crate) type Fallible<T> = Result<T, String>;

pub(crate) fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Store {
    /// Opens (or creates) the file at `path`, removing the entries `expired`
    /// says are past the TTL.
    pub(crate) fn embedded(path: &Path, expired: impl Fn(&[u8]) -> bool) -> Fallible<Self> {
        if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
        {
            return Err(format!("its directory {} does not exist", dir.display()));
        }
        // redb asserts on some damage (a file cut short) instead of failing
        let opened = std::panic::catch_unwind(|| Database::create(path))
            .map_err(|_| format!("it is damaged (cut short or overwritten). {DAMAGED}"))?;
        let db = opened.map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                "it is in use by another process (one process at a time may use a journal file; \
                 give each its own, or share a redis:// journal)"
                    .to_string()
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(io))
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                format!("{io}: check the path and its permissions")
            }
            other => format!("{other}. {DAMAGED}"),
        })?;
        Ok(Self::Embedded(Embedded::open(db, expired)?))
    }

    /// Connects to the Redis server of `url` (`redis://host:port/db`).
    pub(crate) fn redis(url: &str) -> Fallible<Self> {
        let client = redis::Client::open(url).map_err(text)?;
        let store = Self::Redis {
            client,
            writer: Mutex::new(None),
            reader: Mutex::new(None),
        };
        // fail at query start when the server is not there
        store.with_redis(false, |c| redis::cmd("PING").query::<String>(c))?;
        Ok(store)
    }

    fn with_redis<T>(
        &self,
        writer: bool,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Fallible<T> {
        let Self::Redis {
            client,
            writer: w,
            reader: r,
        } = self
        else {
            return Err("not a Redis journal".into());
        };
        let mut slot = if writer { w.lock() } else { r.lock() };
        if slot.is_none() {
            let connection = client
                .get_connection_with_timeout(Duration::from_secs(5))
                .map_err(|e| format!("Redis is unreachable: {e}"))?;
            let timeout = Some(Duration::from_secs(10));
            connection.set_read_timeout(timeout).map_err(text)?;
            connection.set_write_timeout(timeout).map_err(text)?;
            *slot = Some(connection);
        }
        let connection = slot.as_mut().expect("connected above");
        let result = f(connection);
        if result.is_err() {
            *slot = None;
        }
        result.map_err(|e| format!("Redis failed: {e}"))
    }

    /// The salt of keyed hashes, made at the first use of the store.
    pub(crate) fn salt(&self) -> Fallible<[u8; 32]> {
        let fresh: [u8; 32] = std::array::from_fn(|_| fastrand::u8(..));
        let stored: Vec<u8> = match self {
            Self::Embedded(db) => db.salt(fresh)?,
            Self::Redis { .. } => self.with_redis(true, |c| {
                let key = format!("{PREFIX}salt");
                redis::cmd("SET")
                    .arg(&key)
                    .arg(fresh.as_slice())
                    .arg("NX")
                    .exec(c)?;
                redis::cmd("GET").arg(&key).query(c)
            })?,
        };
        stored
            .try_into()
            .map_err(|_| "its salt is damaged (not 32 bytes)".to_string())
    }

    /// The values of `keys`, in order.
    pub(crate) fn get_many(&self, keys: &[Key]) -> Fallible<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Self::Embedded(db) => db.get_many(keys),
            Self::Redis { .. } => self.with_redis(false, |c| {
                let names: Vec<String> = keys.iter().map(entry_name).collect();
                redis::cmd("MGET").arg(names).query(c)
            }),
        }
    }

    /// Stores `entries` durably, all or none; each expires after `ttl` in Redis.
    pub(crate) fn put_many(&self, entries: &[(Key, Vec<u8>)], ttl: Duration) -> Fallible<()> {
        match self {
            Self::Embedded(db) => db.put_many(entries),
            Self::Redis { .. } => self.with_redis(true, |c| {
                let mut pipe = redis::pipe();
                pipe.atomic();
                for (k, v) in entries {
                    pipe.cmd("SET")
                        .arg(entry_name(k))
                        .arg(v.as_slice())
                        .arg("PX")
                        .arg(ttl_ms(ttl))
                        .ignore();
                }
                pipe.exec(c)
            }),
        }
    }

    /// Counts one more replay of each of `keys`.
    pub(crate) fn bump(&self, keys: &[Key], ttl: Duration) -> Fallible<()> {
        match self {
            Self::Embedded(db) => db.bump(keys),
            Self::Redis { .. } => self.with_redis(true, |c| {
                let mut pipe = redis::pipe();
                for k in keys {
                    let name = replay_name(k);
                    pipe.cmd("INCR").arg(&name).ignore();
                    pipe.cmd("PEXPIRE").arg(&name).arg(ttl_ms(ttl)).ignore();
                }
                pipe.exec(c)
            }),
        }
    }

    /// Every entry.
    pub(crate) fn list(&self) -> Fallible<Vec<Stored>> {
        match self {
            Self::Embedded(db) => db.list(),
            Self::Redis { .. } => self.with_redis(false, |c| {
                let names = scan(c, &format!("{PREFIX}e:*"))?;
                let mut out = Vec::with_capacity(names.len());
                for chunk in names.chunks(1000) {
                    let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(chunk).query(c)?;
                    let replay_names: Vec<String> =
                        chunk.iter().map(|n| n.replacen(":e:", ":r:", 1)).collect();
                    let replays: Vec<Option<u64>> =
                        redis::cmd("MGET").arg(replay_names).query(c)?;
                    for ((name, value), replayed) in chunk.iter().zip(values).zip(replays) {
                        let (Some(value), Some(key)) = (value, parse_name(name)) else {
                            continue;
                        };
                        out.push(Stored {
                            key,
                            value,
                            replayed: replayed.unwrap_or(0),
                        });
                    }
                }
                Ok(out)
            }),
        }
    }

    /// Removes the entries `keep` refuses (with their replay counts); how many.
    pub(crate) fn remove_where(&self, mut drop: impl FnMut(&[u8]) -> bool) -> Fallible<usize> {
        match self {
            Self::Embedded(db) => db.remove_where(drop),
            Self::Redis { .. } => {
                // Redis expires entries by itself: only a clear removes them
                let all = self.list()?;
                let gone: Vec<String> = all
                    .iter()
                    .filter(|s| drop(&s.value))
                    .flat_map(|s| [entry_name(&s.key), replay_name(&s.key)])
                    .collect();
                for chunk in gone.chunks(1000) {
                    self.with_redis(true, |c| redis::cmd("DEL").arg(chunk).exec(c))?;
                }
                Ok(gone.len() / 2)
            }
        }
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

pub(crate) fn key_hex(key: &[u8]) -> String {
    use std::fmt::Write;
    key.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn entry_name(key: &Key) -> String {
    format!("{PREFIX}e:{}", key_hex(key))
}

fn replay_name(key: &Key) -> String {
    format!("{PREFIX}r:{}", key_hex(key))
}

fn parse_name(name: &str) -> Option<Key> {
    let hex = name.rsplit(':').next()?;
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// Every key matching `pattern`.
fn scan(c: &mut redis::Connection, pattern: &str) -> redis::RedisResult<Vec<String>> {
    let mut cursor = 0u64;
    let mut out = Vec::new();
    loop {
        let (next, names): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(c)?;
        out.extend(names);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}
