//! One logical database: keys, their expiry times, and the clients watching them.
//!
//! Everything goes through this API so the table underneath can change (a Redis-style dict with
//! a reverse-binary SCAN cursor is planned) without touching commands. Expiry is lazy on every
//! lookup plus [`Db::active_expire`] sampling from the cron.

use super::types::Value;
use indexmap::IndexMap;
use rand::Rng;
use std::cell::Cell;
use std::rc::Rc;

pub type Key = Box<[u8]>;

#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    /// Last access, in seconds of the server's LRU clock (OBJECT IDLETIME).
    pub lru: u32,
    /// Logarithmic access counter (OBJECT FREQ).
    pub freq: u8,
}

/// Seconds since the epoch, truncated: the LRU clock.
pub fn lru_clock(now_ms: i64) -> u32 {
    (now_ms / 1000) as u32
}

/// One client's WATCH of one key.
pub struct Watcher {
    pub client: Rc<super::client::ClientShared>,
    /// The key was stored but already past its TTL when WATCHed. Redis 7.0 then treats the key's
    /// deletion as no change, and EXEC does not fail for it having expired.
    pub expired: Cell<bool>,
}

#[derive(Default)]
pub struct Db {
    map: IndexMap<Key, Entry, hashbrown::DefaultHashBuilder>,
    expires: IndexMap<Key, i64, hashbrown::DefaultHashBuilder>,
    /// Clients WATCHing a key, in WATCH order; their `dirty_cas` flag is set when it changes.
    pub watched: hashbrown::HashMap<Key, Vec<Watcher>>,
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
}

impl Db {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    fn is_expired(&self, key: &[u8], now: i64) -> bool {
        matches!(self.expires.get(key), Some(&at) if at <= now)
    }

    /// Deletes `key` if its time has passed. Returns true if it did.
    pub fn expire_if_needed(&mut self, key: &[u8], now: i64) -> bool {
        if self.is_expired(key, now) {
            self.remove(key);
            self.expired += 1;
            true
        } else {
            false
        }
    }

    /// Lookup for a read command: expires lazily, counts a keyspace hit or miss, touches LRU.
    pub fn get(&mut self, key: &[u8], now: i64) -> Option<&mut Entry> {
        self.expire_if_needed(key, now);
        match self.map.get_mut(key) {
            Some(e) => {
                self.hits += 1;
                e.lru = lru_clock(now);
                Some(e)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Lookup for a write command (or for internal use): no hit/miss accounting.
    pub fn get_mut(&mut self, key: &[u8], now: i64) -> Option<&mut Entry> {
        self.expire_if_needed(key, now);
        let e = self.map.get_mut(key)?;
        e.lru = lru_clock(now);
        Some(e)
    }

    /// Looks at a key without touching its access time (OBJECT IDLETIME, TYPE-free checks).
    pub fn peek(&mut self, key: &[u8], now: i64) -> Option<&Entry> {
        self.expire_if_needed(key, now);
        self.map.get(key)
    }

    /// True if the key is stored, even past its TTL (no lazy expiry): Redis's `dictFind`.
    pub fn has_entry(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    pub fn contains(&mut self, key: &[u8], now: i64) -> bool {
        self.peek(key, now).is_some()
    }

    /// Sets a key, dropping any TTL it had (SET semantics).
    pub fn set(&mut self, key: &[u8], value: Value, now: i64) {
        self.expires.swap_remove(key);
        self.set_keep_ttl(key, value, now);
    }

    /// Sets a key's value, keeping its TTL if it has one.
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value, now: i64) {
        let entry = Entry { value, lru: lru_clock(now), freq: 5 };
        match self.map.get_mut(key) {
            Some(e) => *e = entry,
            None => {
                self.map.insert(key.into(), entry);
            }
        }
    }

    /// Inserts an entry as it is (RESTORE-like paths keep lru/freq).
    pub fn insert_entry(&mut self, key: Key, entry: Entry) {
        self.map.insert(key, entry);
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.map.swap_remove(key)?;
        self.expires.swap_remove(key);
        Some(e)
    }

    /// Removes and returns a key's entry and TTL (RENAME/MOVE).
    pub fn take(&mut self, key: &[u8], now: i64) -> Option<(Entry, Option<i64>)> {
        self.expire_if_needed(key, now);
        let e = self.map.swap_remove(key)?;
        let ttl = self.expires.swap_remove(key);
        Some((e, ttl))
    }

    /// Absolute expiry in unix ms.
    pub fn ttl_of(&self, key: &[u8]) -> Option<i64> {
        self.expires.get(key).copied()
    }

    /// Sets the absolute expiry of an existing key.
    pub fn set_expire(&mut self, key: &[u8], at_ms: i64) {
        if let Some(slot) = self.expires.get_mut(key) {
            *slot = at_ms;
        } else if self.map.contains_key(key) {
            self.expires.insert(key.into(), at_ms);
        }
    }

    /// Removes a TTL; true if there was one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        self.expires.swap_remove(key).is_some()
    }

    pub fn clear(&mut self) {
        self.map = Default::default();
        self.expires = Default::default();
    }

    /// Every live key (KEYS); expired ones are skipped, not deleted.
    pub fn keys(&self, now: i64) -> impl Iterator<Item = &Key> + '_ {
        self.map.keys().filter(move |k| !self.is_expired(k, now))
    }

    /// One SCAN step: visits up to `count` slots from `cursor`; returns the next cursor (0 = done).
    /// The cursor is a position in the table; keys deleted during a scan can make a key that moves
    /// into a visited position be missed (to be fixed by the dict rewrite).
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&Key, &Entry)) -> u64 {
        let start = cursor as usize;
        let end = (start + count.max(1)).min(self.map.len());
        for i in start..end {
            let (k, e) = self.map.get_index(i).expect("index in range");
            f(k, e);
        }
        if end >= self.map.len() {
            0
        } else {
            end as u64
        }
    }

    /// A random live key, or None when the db is empty.
    pub fn random_key(&mut self, now: i64) -> Option<Key> {
        let mut rng = rand::thread_rng();
        // Bounded: like Redis, give up on finding a non-expired key after a while and return one.
        for _ in 0..100 {
            if self.map.is_empty() {
                return None;
            }
            let i = rng.gen_range(0..self.map.len());
            let key = self.map.get_index(i).expect("index in range").0.clone();
            if !self.expire_if_needed(&key, now) {
                return Some(key);
            }
        }
        None
    }

    /// Samples keys with a TTL and deletes the expired ones; repeats while more than a quarter of
    /// a sample was expired, up to `max_rounds`. Returns the deleted keys (for watchers).
    pub fn active_expire(&mut self, now: i64, max_rounds: usize) -> Vec<Key> {
        let mut deleted = Vec::new();
        let mut rng = rand::thread_rng();
        for _ in 0..max_rounds {
            let n = self.expires.len();
            if n == 0 {
                break;
            }
            let sample = 20.min(n);
            let mut found = 0;
            for _ in 0..sample {
                let n = self.expires.len();
                if n == 0 {
                    break;
                }
                let i = rng.gen_range(0..n);
                let (k, &at) = self.expires.get_index(i).expect("index in range");
                if at <= now {
                    let k = k.clone();
                    self.remove(&k);
                    self.expired += 1;
                    deleted.push(k);
                    found += 1;
                }
            }
            if found * 4 <= sample {
                break;
            }
        }
        deleted
    }

    /// Average remaining TTL in ms over keys with one (INFO keyspace `avg_ttl`), sampled.
    pub fn avg_ttl(&self, now: i64) -> i64 {
        let n = self.expires.len().min(100);
        if n == 0 {
            return 0;
        }
        let sum: i64 = self.expires.values().take(n).map(|&at| (at - now).max(0)).sum();
        sum / n as i64
    }
}
