//! The embedded journal file: a redb database whose entries are a log.
//!
//! Entries are appended under increasing sequence numbers (a value is the
//! entry's key, then the entry), so a group commit writes a few sequential
//! pages and one fsync, whatever the keys: inserted by their random keys
//! instead, every entry dirtied a page of its own (here: 1.9 ms for a group
//! of 64 against 0.5 ms appended). The index from key to sequence number is
//! kept in memory (about 32 bytes an entry), built when the file opens by
//! reading the log once; there too entries past the TTL, and entries a later
//! one replaced, are removed.
//!
//! The index holds the first 8 bytes of each key; a look-up checks the full
//! key stored in the entry, so two keys sharing those bytes (about once in
//! 10^5 jobs of ten million calls) can only cost a call sent again, never a
//! wrong answer.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::Key;
use super::store::{Fallible, Stored, text};

/// Sequence number → entry key and recorded value.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Entry key → recorded value: the layout of the first files, moved into the
/// log when such a file opens.
const ENTRIES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("entries");
/// Entry key → times replayed.
const REPLAYS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("replays");
/// Name → value: the salt of keyed hashes.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Keys are hashes already: their first bytes are the hash.
#[derive(Default)]
struct Prefix(u64);

impl Hasher for Prefix {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Index = HashMap<u64, u64, BuildHasherDefault<Prefix>>;

fn short(key: &Key) -> u64 {
    u64::from_le_bytes(key[..8].try_into().expect("8 bytes"))
}

/// The open file and its index.
pub(crate) struct Embedded {
    db: Database,
    index: Mutex<Index>,
    next: Mutex<u64>,
}

impl Embedded {
    /// Opens `db`: moves entries of the first layout into the log, removes
    /// those `expired` says are past the TTL and those replaced, and indexes
    /// the rest.
    pub(crate) fn open(db: Database, expired: impl Fn(&[u8]) -> bool) -> Fallible<Self> {
        let txn = db.begin_write().map_err(text)?;
        let (index, next) = {
            let mut log = txn.open_table(LOG).map_err(text)?;
            let mut old = txn.open_table(ENTRIES).map_err(text)?;
            let mut replays = txn.open_table(REPLAYS).map_err(text)?;
            txn.open_table(META).map_err(text)?;
            let mut next = log.last().map_err(text)?.map_or(0, |(k, _)| k.value() + 1);
            let moved: Vec<(Key, Vec<u8>)> = old
                .iter()
                .map_err(text)?
                .map(|item| item.map(|(k, v)| (*k.value(), v.value().to_vec())))
                .collect::<Result<_, _>>()
                .map_err(text)?;
            for (key, value) in &moved {
                log.insert(next, [key.as_slice(), value].concat().as_slice())
                    .map_err(text)?;
                old.remove(key).map_err(text)?;
                next += 1;
            }
            let mut index = Index::default();
            let mut gone: Vec<(u64, Option<Key>)> = Vec::new();
            for item in log.iter().map_err(text)? {
                let (seq, value) = item.map_err(text)?;
                let (seq, value) = (seq.value(), value.value());
                let Some((key, entry)) = split(value) else {
                    gone.push((seq, None));
                    continue;
                };
                if expired(entry) {
                    gone.push((seq, Some(key)));
                } else if let Some(earlier) = index.insert(short(&key), seq)
                    && same_key(&log, earlier, &key)?
                {
                    gone.push((earlier, None));
                }
            }
            for (seq, key) in gone {
                log.remove(seq).map_err(text)?;
                if let Some(key) = key {
                    replays.remove(&key).map_err(text)?;
                }
            }
            (index, next)
        };
        txn.commit().map_err(text)?;
        Ok(Self {
            db,
            index: Mutex::new(index),
            next: Mutex::new(next),
        })
    }

    /// The salt of keyed hashes: the stored one, or `fresh`, stored now.
    pub(crate) fn salt(&self, fresh: [u8; 32]) -> Fallible<Vec<u8>> {
        let txn = self.db.begin_write().map_err(text)?;
        let value = {
            let mut meta = txn.open_table(META).map_err(text)?;
            let existing = meta.get("salt").map_err(text)?.map(|v| v.value().to_vec());
            if let Some(v) = existing {
                v
            } else {
                meta.insert("salt", fresh.as_slice()).map_err(text)?;
                fresh.to_vec()
            }
        };
        txn.commit().map_err(text)?;
        Ok(value)
    }

    pub(crate) fn get_many(&self, keys: &[Key]) -> Fallible<Vec<Option<Vec<u8>>>> {
        let seqs: Vec<Option<u64>> = {
            let index = self.index.lock();
            keys.iter().map(|k| index.get(&short(k)).copied()).collect()
        };
        let txn = self.db.begin_read().map_err(text)?;
        let log = txn.open_table(LOG).map_err(text)?;
        keys.iter()
            .zip(seqs)
            .map(|(key, seq)| {
                let Some(seq) = seq else { return Ok(None) };
                let value = log.get(seq).map_err(text)?;
                Ok(value.and_then(|v| match split(v.value()) {
                    Some((k, entry)) if &k == key => Some(entry.to_vec()),
                    _ => None,
                }))
            })
            .collect()
    }

    /// Appends `entries` durably, all or none.
    pub(crate) fn put_many(&self, entries: &[(Key, Vec<u8>)]) -> Fallible<()> {
        let mut next = self.next.lock();
        let txn = self.db.begin_write().map_err(text)?;
        let mut indexed = Vec::with_capacity(entries.len());
        {
            let mut log = txn.open_table(LOG).map_err(text)?;
            let index = self.index.lock();
            let mut value = Vec::new();
            for (seq, (key, entry)) in (*next..).zip(entries) {
                value.clear();
                value.extend_from_slice(key);
                value.extend_from_slice(entry);
                log.insert(seq, value.as_slice()).map_err(text)?;
                if let Some(&earlier) = index.get(&short(key))
                    && same_key(&log, earlier, key)?
                {
                    // recorded again (its TTL passed): the new one replaces it
                    log.remove(earlier).map_err(text)?;
                }
                indexed.push((short(key), seq));
            }
        }
        txn.commit().map_err(text)?;
        *next += entries.len() as u64;
        self.index.lock().extend(indexed);
        Ok(())
    }

    pub(crate) fn bump(&self, keys: &[Key]) -> Fallible<()> {
        let txn = self.db.begin_write().map_err(text)?;
        {
            let mut table = txn.open_table(REPLAYS).map_err(text)?;
            for k in keys {
                let n = table.get(k).map_err(text)?.map_or(0, |v| v.value());
                table.insert(k, n + 1).map_err(text)?;
            }
        }
        txn.commit().map_err(text)
    }

    pub(crate) fn list(&self) -> Fallible<Vec<Stored>> {
        let txn = self.db.begin_read().map_err(text)?;
        let log = txn.open_table(LOG).map_err(text)?;
        let replays = txn.open_table(REPLAYS).map_err(text)?;
        let mut out = Vec::new();
        for item in log.iter().map_err(text)? {
            let (_, v) = item.map_err(text)?;
            let Some((key, entry)) = split(v.value()) else {
                continue;
            };
            let replayed = replays.get(&key).map_err(text)?.map_or(0, |r| r.value());
            out.push(Stored {
                key,
                value: entry.to_vec(),
                replayed,
            });
        }
        Ok(out)
    }

    /// Removes the entries `drop` picks (with their replay counts); how many.
    pub(crate) fn remove_where(&self, mut drop: impl FnMut(&[u8]) -> bool) -> Fallible<usize> {
        let txn = self.db.begin_write().map_err(text)?;
        let gone = {
            let mut log = txn.open_table(LOG).map_err(text)?;
            let mut replays = txn.open_table(REPLAYS).map_err(text)?;
            let mut gone = Vec::new();
            for item in log.iter().map_err(text)? {
                let (seq, v) = item.map_err(text)?;
                if let Some((key, entry)) = split(v.value())
                    && drop(entry)
                {
                    gone.push((seq.value(), key));
                }
            }
            for (seq, key) in &gone {
                log.remove(*seq).map_err(text)?;
                replays.remove(key).map_err(text)?;
            }
            gone
        };
        txn.commit().map_err(text)?;
        let mut index = self.index.lock();
        for (seq, key) in &gone {
            if index.get(&short(key)) == Some(seq) {
                index.remove(&short(key));
            }
        }
        Ok(gone.len())
    }
}

/// Whether the entry `seq` of `log` is one of `key` (not another key with
/// the same first bytes).
fn same_key(log: &impl ReadableTable<u64, &'static [u8]>, seq: u64, key: &Key) -> Fallible<bool> {
    let value = log.get(seq).map_err(text)?;
    Ok(value.is_some_and(|v| split(v.value()).is_some_and(|(k, _)| &k == key)))
}

/// A log value's key and entry.
fn split(value: &[u8]) -> Option<(Key, &[u8])> {
    let key: Key = value.get(..32)?.try_into().ok()?;
    Some((key, &value[32..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(first: u8, last: u8) -> Key {
        let mut k = [0u8; 32];
        k[0] = first;
        k[31] = last;
        k
    }

    fn open(path: &std::path::Path) -> Embedded {
        Embedded::open(Database::create(path).unwrap(), |e| e == b"old").unwrap()
    }

    #[test]
    fn the_index_is_rebuilt_from_the_log_and_a_later_entry_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let db = open(&path);
        db.put_many(&[(key(1, 1), b"a".to_vec()), (key(2, 0), b"old".to_vec())])
            .unwrap();
        db.put_many(&[(key(1, 1), b"a2".to_vec())]).unwrap();
        let found = db.get_many(&[key(1, 1), key(3, 0)]).unwrap();
        assert_eq!(found[0].as_deref(), Some(&b"a2"[..]));
        assert_eq!(found[1], None);
        let listed = |db: &Embedded| -> Vec<Vec<u8>> {
            db.list().unwrap().into_iter().map(|s| s.value).collect()
        };
        assert_eq!(
            listed(&db),
            vec![b"old".to_vec(), b"a2".to_vec()],
            "replaced"
        );
        drop(db);
        // reopened: the expired entry is purged, the index read from the log
        let db = open(&path);
        assert_eq!(listed(&db), vec![b"a2".to_vec()]);
        assert_eq!(
            db.get_many(&[key(1, 1)]).unwrap()[0].as_deref(),
            Some(&b"a2"[..])
        );
        assert_eq!(db.remove_where(|e| e == b"a2").unwrap(), 1);
        assert_eq!(db.get_many(&[key(1, 1)]).unwrap()[0], None);
    }

    #[test]
    fn keys_sharing_their_first_bytes_never_answer_for_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let db = open(&path);
        db.put_many(&[(key(1, 1), b"a".to_vec()), (key(1, 2), b"b".to_vec())])
            .unwrap();
        let check = |db: &Embedded| {
            let found = db.get_many(&[key(1, 1), key(1, 2)]).unwrap();
            // the prefix points at the later one: the other is a miss, no
            // wrong answer, and both entries are kept
            assert_eq!(found[0], None);
            assert_eq!(found[1].as_deref(), Some(&b"b"[..]));
            assert_eq!(db.list().unwrap().len(), 2);
        };
        check(&db);
        drop(db);
        check(&open(&path));
    }

    #[test]
    fn a_file_of_the_first_layout_is_moved_into_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(ENTRIES).unwrap();
                t.insert(&key(7, 7), &b"kept"[..]).unwrap();
                t.insert(&key(8, 8), &b"old"[..]).unwrap();
            }
            txn.commit().unwrap();
        }
        let db = open(&path);
        let found = db.get_many(&[key(7, 7), key(8, 8)]).unwrap();
        assert_eq!(found[0].as_deref(), Some(&b"kept"[..]));
        assert_eq!(found[1], None, "past the TTL");
        drop(db);
        let db = open(&path);
        assert_eq!(db.list().unwrap().len(), 1);
    }
}
