//! One logical database: keys, their expiry times, and the clients watching them.
//!
//! Keys live in a Redis-style [`Dict`] (SCAN guarantee, O(1) random sampling); TTLs in a second
//! dict, so keys without one pay nothing. Expiry is lazy on every lookup plus
//! [`Db::active_expire`] sampling from the cron.

use super::dict::Dict;
use super::types::Value;
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
    /// How Redis would have encoded this string, where its content alone does not tell.
    pub str_enc: StrEnc,
}

/// Redis decides a string's encoding by how it was written, not only by its bytes: SET/INCR pick
/// `int`/`embstr`/`raw` from the content, APPEND/SETRANGE/SETBIT/BITOP leave a `raw` string, and
/// INCRBYFLOAT makes an `embstr` even for "3". OBJECT ENCODING reports this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StrEnc {
    #[default]
    FromContent,
    Raw,
    /// `embstr` while it fits in 44 bytes, `raw` beyond.
    Embstr,
}

impl Entry {
    /// OBJECT ENCODING.
    pub fn encoding(&self) -> &'static str {
        match (&self.value, self.str_enc) {
            (Value::Str(_), StrEnc::Raw) => "raw",
            (Value::Str(s), StrEnc::Embstr) => {
                if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            (v, _) => v.encoding(),
        }
    }
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
    map: Dict<Entry>,
    expires: Dict<i64>,
    /// Clients WATCHing a key, in WATCH order; their `dirty_cas` flag is set when it changes.
    pub watched: hashbrown::HashMap<Key, Vec<Watcher>>,
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
    /// Cluster mode: the keys of each slot, for CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT, which
    /// resharding calls for every slot it moves (a scan of the whole keyspace each time would make
    /// a reshard quadratic). Redis 7.0 keeps the same index (`slot_to_keys`).
    slot_keys: Option<Box<SlotKeys>>,
}

/// Keys per slot, in insertion order: GETKEYSINSLOT lists the newest first, as Redis's per-slot
/// list does. A key's bytes are stored a second time here; only cluster-mode nodes pay that.
/// Removal shifts the slot's later keys (O(keys in the slot), about N/16384).
pub struct SlotKeys {
    sets: Vec<indexmap::IndexSet<Key>>,
}

impl SlotKeys {
    fn add(&mut self, key: &[u8]) {
        self.sets[crate::cluster::key_slot(key) as usize].insert(key.into());
    }
    fn del(&mut self, key: &[u8]) {
        self.sets[crate::cluster::key_slot(key) as usize].shift_remove(key);
    }
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
        matches!(self.expires.get(key), Some(&at) if at < now)
    }

    /// Deletes `key` if its time has passed. Returns true if it did.
    pub fn expire_if_needed(&mut self, key: &[u8], now: i64) -> bool {
        if self.is_expired(key, now) {
            self.remove(key);
            self.expired += 1;
            // Redis signals the deletion: a WATCH of the key fails, unless the key was already
            // expired when watched.
            if !self.watched.is_empty() {
                crate::node::cmd::transactions::touch_watched_key(self, key);
            }
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

    pub fn contains(&mut self, key: &[u8], now: i64) -> bool {
        self.peek(key, now).is_some()
    }

    /// Sets a key, dropping any TTL it had (SET semantics).
    pub fn set(&mut self, key: &[u8], value: Value, now: i64) {
        self.expires.remove(key);
        self.set_keep_ttl(key, value, now);
    }

    /// Sets a key's value, keeping its TTL if it has one.
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value, now: i64) {
        let entry = Entry { value, lru: lru_clock(now), freq: 5, str_enc: StrEnc::FromContent };
        match self.map.get_mut(key) {
            Some(e) => *e = entry,
            None => {
                self.map.insert(key.into(), entry);
                if let Some(ix) = &mut self.slot_keys {
                    ix.add(key);
                }
            }
        }
    }

    /// Inserts an entry as it is (RESTORE-like paths keep lru/freq).
    pub fn insert_entry(&mut self, key: Key, entry: Entry) {
        if let Some(ix) = &mut self.slot_keys {
            ix.add(&key);
        }
        self.map.insert(key, entry);
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let (_, e) = self.map.remove(key)?;
        self.expires.remove(key);
        if let Some(ix) = &mut self.slot_keys {
            ix.del(key);
        }
        Some(e)
    }

    /// Removes and returns a key's entry and TTL (RENAME/MOVE).
    pub fn take(&mut self, key: &[u8], now: i64) -> Option<(Entry, Option<i64>)> {
        self.expire_if_needed(key, now);
        let (_, e) = self.map.remove(key)?;
        let ttl = self.expires.remove(key).map(|(_, t)| t);
        if let Some(ix) = &mut self.slot_keys {
            ix.del(key);
        }
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

    /// Records how a string was written (see [`StrEnc`]).
    pub fn set_str_enc(&mut self, key: &[u8], enc: StrEnc) {
        if let Some(e) = self.map.get_mut(key) {
            e.str_enc = enc;
        }
    }

    /// Removes a TTL; true if there was one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        self.expires.remove(key).is_some()
    }

    pub fn clear(&mut self) {
        self.map = Default::default();
        self.expires = Default::default();
        if self.slot_keys.is_some() {
            self.enable_slot_index();
        }
    }

    /// Starts keeping the per-slot key index (cluster mode), indexing the keys already here.
    pub fn enable_slot_index(&mut self) {
        let mut ix = SlotKeys { sets: (0..crate::cluster::SLOTS).map(|_| Default::default()).collect() };
        for k in self.map.keys() {
            ix.add(k);
        }
        self.slot_keys = Some(Box::new(ix));
    }

    /// Keys stored in `slot`, expired or not (CLUSTER COUNTKEYSINSLOT); 0 without the index.
    pub fn count_in_slot(&self, slot: u16) -> usize {
        self.slot_keys.as_ref().map_or(0, |ix| ix.sets[slot as usize].len())
    }

    /// Up to `max` keys stored in `slot` (CLUSTER GETKEYSINSLOT).
    pub fn keys_in_slot(&self, slot: u16, max: usize) -> Vec<Key> {
        self.slot_keys
            .as_ref()
            .map_or_else(Vec::new, |ix| ix.sets[slot as usize].iter().rev().take(max).cloned().collect())
    }

    /// Every live key (KEYS); expired ones are skipped, not deleted.
    pub fn keys(&self, now: i64) -> impl Iterator<Item = &[u8]> + '_ {
        self.map.keys().filter(move |k| !self.is_expired(k, now))
    }

    /// One SCAN call: visits buckets from `cursor` until about `count` keys were seen (at most
    /// 10 x count buckets, as Redis bounds empty-bucket walks); returns the next cursor (0 = done).
    /// Expired keys are passed too: the caller filters them, as Redis does after the scan.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &Entry)) -> u64 {
        let count = count.max(1);
        let mut seen = 0;
        let mut cursor = cursor;
        let mut budget = count.saturating_mul(10);
        loop {
            cursor = self.map.scan(cursor, |k, e| {
                seen += 1;
                f(k, e)
            });
            budget -= 1;
            if cursor == 0 || seen >= count || budget == 0 {
                return cursor;
            }
        }
    }

    /// True if `key` has a TTL that has passed (without deleting it: SCAN/KEYS filter with this).
    pub fn is_stale(&self, key: &[u8], now: i64) -> bool {
        self.is_expired(key, now)
    }

    /// A random live key, or None when the db is empty.
    pub fn random_key(&mut self, now: i64) -> Option<Key> {
        // Bounded: like Redis, give up after a while when nearly every key is expired.
        for _ in 0..100 {
            let key: Key = self.map.random()?.0.into();
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
        for _ in 0..max_rounds {
            let n = self.expires.len();
            if n == 0 {
                break;
            }
            let sample = 20.min(n);
            let mut found = 0;
            for _ in 0..sample {
                let Some((k, &at)) = self.expires.random() else { break };
                if at < now {
                    let k: Key = k.into();
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
        let sum: i64 = self.expires.iter().take(n).map(|(_, &at)| (at - now).max(0)).sum();
        sum / n as i64
    }
}

// --- added by strings/keys ---
impl Db {
    /// A read lookup that counts a keyspace hit or miss but leaves the access time alone
    /// (Redis's `LOOKUP_NOTOUCH`: EXISTS, TYPE, TTL, OBJECT).
    pub fn get_notouch(&mut self, key: &[u8], now: i64) -> Option<&Entry> {
        self.expire_if_needed(key, now);
        match self.map.get(key) {
            Some(e) => {
                self.hits += 1;
                Some(e)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Whether the table holds `key`, expired or not (what `dictFind` sees).
    pub fn holds(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    /// SWAPDB: exchanges the keys and their expiry times; watchers and stats stay with the index.
    pub fn swap_contents(&mut self, other: &mut Db) {
        std::mem::swap(&mut self.map, &mut other.map);
        std::mem::swap(&mut self.expires, &mut other.expires);
        std::mem::swap(&mut self.slot_keys, &mut other.slot_keys);
    }
}
