//! Sets: a sorted integer array while every member is an integer (Redis's intset, so SMEMBERS
//! comes out sorted), a hash table otherwise. Redis 7.0 has no listpack sets.
//!
//! The hash-table variant is a [`SlotTable`], also used by big hashes.

use hashbrown::{DefaultHashBuilder, HashTable};
use rand::Rng;
use std::hash::BuildHasher;

/// How an element of a [`SlotTable`] exposes its lookup key.
pub trait Keyed {
    fn key(&self) -> &[u8];
}

impl Keyed for Box<[u8]> {
    fn key(&self) -> &[u8] {
        self
    }
}

impl Keyed for (Box<[u8]>, Box<[u8]>) {
    fn key(&self) -> &[u8] {
        &self.0
    }
}

/// Slots that stay empty before a compaction is considered; small tables never compact.
const COMPACT_MIN_HOLES: usize = 32;

/// The hashtable encoding of sets and hashes: elements live in a vector of slots and a
/// `hashbrown::HashTable` maps each key's hash to its slot.
///
/// Why not a plain `HashSet` or an `IndexMap`: SPOP, SRANDMEMBER and HRANDFIELD need an O(1)
/// uniformly random element, and SSCAN/HSCAN need a cursor that never skips an element present for
/// the whole scan. A slot index does both: a removal leaves a hole (reused by a later insert)
/// instead of moving another element into it, so an element never changes slot while it lives
/// (an `IndexMap` `swap_remove` would move the last element behind a scan's cursor). Random picks
/// probe random slots; holes are kept below half of the slots by a stable compaction, which bumps
/// `generation`. Cursors carry the generation, and a scan whose generation is stale starts over:
/// SCAN may return an element twice, it must never miss one.
#[derive(Clone)]
pub struct SlotTable<E> {
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    generation: u32,
}

impl<E> std::fmt::Debug for SlotTable<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotTable").field("len", &self.index.len()).field("slots", &self.slots.len()).finish()
    }
}

/// Cursor layout: the low 40 bits are the next slot, the bits above a generation tag.
const CURSOR_SLOT_BITS: u32 = 40;
const CURSOR_SLOT_MASK: u64 = (1 << CURSOR_SLOT_BITS) - 1;
const CURSOR_GEN_MASK: u32 = (1 << 20) - 1;

impl<E: Keyed> SlotTable<E> {
    pub fn with_capacity(n: usize) -> Self {
        SlotTable {
            slots: Vec::with_capacity(n),
            free: Vec::new(),
            index: HashTable::with_capacity(n),
            hasher: DefaultHashBuilder::default(),
            generation: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find_hashed(&self, h: u64, key: &[u8]) -> Option<usize> {
        let slots = &self.slots;
        self.index.find(h, |&i| slots[i as usize].as_ref().is_some_and(|e| e.key() == key)).map(|&i| i as usize)
    }

    /// The slot holding `key`.
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        self.find_hashed(self.hash(key), key)
    }

    pub fn get(&self, key: &[u8]) -> Option<&E> {
        self.find(key).and_then(|i| self.slots[i].as_ref())
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut E> {
        let i = self.find(key)?;
        self.slots[i].as_mut()
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.find(key).is_some()
    }

    /// The element in slot `i`, if the slot is live.
    pub fn at(&self, i: usize) -> Option<&E> {
        self.slots.get(i).and_then(|s| s.as_ref())
    }

    fn insert_hashed(&mut self, h: u64, e: E) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(e);
                s
            }
            None => {
                self.slots.push(Some(e));
                (self.slots.len() - 1) as u32
            }
        };
        let Self { slots, index, hasher, .. } = self;
        index.insert_unique(h, slot, |&i| {
            hasher.hash_one(slots[i as usize].as_ref().map(|e| e.key()).unwrap_or_default())
        });
    }

    /// Adds `e` unless its key is present; returns whether it was added.
    pub fn insert(&mut self, e: E) -> bool {
        let h = self.hash(e.key());
        if self.find_hashed(h, e.key()).is_some() {
            return false;
        }
        self.insert_hashed(h, e);
        true
    }

    /// Adds the element built by `make` if `key` is absent; otherwise hands the present element
    /// to `update`. Returns true when it inserted. Hashes the key once.
    pub fn upsert(&mut self, key: &[u8], make: impl FnOnce() -> E, update: impl FnOnce(&mut E)) -> bool {
        let h = self.hash(key);
        match self.find_hashed(h, key) {
            Some(i) => {
                if let Some(e) = self.slots[i].as_mut() {
                    update(e);
                }
                false
            }
            None => {
                self.insert_hashed(h, make());
                true
            }
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<E> {
        let h = self.hash(key);
        let slots = &self.slots;
        let entry = self.index.find_entry(h, |&i| slots[i as usize].as_ref().is_some_and(|e| e.key() == key)).ok()?;
        let (slot, _) = entry.remove();
        self.vacate(slot)
    }

    /// Removes the element in slot `i`.
    pub fn remove_at(&mut self, i: usize) -> Option<E> {
        let e = self.unlink(i)?;
        self.tidy();
        Some(e)
    }

    /// Removes the elements in the given slots; the slots stay valid until all are removed
    /// (no compaction in between).
    pub fn remove_slots(&mut self, slots: &[usize]) -> Vec<E> {
        let out = slots.iter().filter_map(|&i| self.unlink(i)).collect();
        self.tidy();
        out
    }

    fn unlink(&mut self, i: usize) -> Option<E> {
        let h = self.hash(self.slots.get(i)?.as_ref()?.key());
        let entry = self.index.find_entry(h, |&s| s as usize == i).ok()?;
        entry.remove();
        let e = self.slots[i].take();
        if i + 1 == self.slots.len() {
            self.slots.pop();
        } else {
            self.free.push(i as u32);
        }
        e
    }

    fn vacate(&mut self, slot: u32) -> Option<E> {
        let e = self.slots[slot as usize].take();
        if slot as usize + 1 == self.slots.len() {
            self.slots.pop();
        } else {
            self.free.push(slot);
        }
        self.tidy();
        e
    }

    /// Resets an empty table, compacts one that is mostly holes.
    fn tidy(&mut self) {
        if self.index.is_empty() {
            self.slots.clear();
            self.free.clear();
            self.generation = self.generation.wrapping_add(1);
        } else if self.free.len() > COMPACT_MIN_HOLES && self.free.len() * 2 > self.slots.len() {
            self.compact();
        }
    }

    /// Drops the holes, keeping the order of the live elements (so a restarted scan and the
    /// iteration order stay sensible), and invalidates outstanding cursors.
    fn compact(&mut self) {
        let live: Vec<E> = std::mem::take(&mut self.slots).into_iter().flatten().collect();
        self.free.clear();
        self.index.clear();
        self.index.shrink_to(live.len(), |_| 0);
        self.slots = Vec::with_capacity(live.len());
        for e in live {
            let h = self.hash(e.key());
            self.insert_hashed(h, e);
        }
        self.generation = self.generation.wrapping_add(1);
    }

    pub fn iter(&self) -> impl Iterator<Item = &E> + '_ {
        self.slots.iter().flatten()
    }

    /// Live slot indexes, in iteration order.
    pub fn live_slots(&self) -> Vec<usize> {
        self.slots.iter().enumerate().filter(|(_, s)| s.is_some()).map(|(i, _)| i).collect()
    }

    pub fn into_iter_elements(self) -> impl Iterator<Item = E> {
        self.slots.into_iter().flatten()
    }

    /// A uniformly random live slot.
    pub fn random_slot(&self, rng: &mut impl Rng) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        // Holes are under half of the slots once the table is big, so probing ends fast; the
        // bounded fallback covers a small table that is mostly holes.
        for _ in 0..64 {
            let i = rng.gen_range(0..self.slots.len());
            if self.slots[i].is_some() {
                return Some(i);
            }
        }
        let live = self.live_slots();
        Some(live[rng.gen_range(0..live.len())])
    }

    /// One SCAN step from `cursor`: calls `f` for live elements until `f` has reported `count`
    /// units of work (it returns how much each element was) or `count * 10` slots were visited.
    /// Returns the next cursor, 0 when done.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a E) -> usize) -> u64 {
        let gen = self.generation & CURSOR_GEN_MASK;
        let mut i = if cursor == 0 || (cursor >> CURSOR_SLOT_BITS) as u32 != gen {
            0
        } else {
            (cursor & CURSOR_SLOT_MASK) as usize
        };
        let mut done = 0;
        let mut visited = 0;
        let max_visits = count.saturating_mul(10);
        while i < self.slots.len() && done < count && visited < max_visits {
            if let Some(e) = &self.slots[i] {
                done += f(e);
            }
            i += 1;
            visited += 1;
        }
        if i >= self.slots.len() {
            0
        } else {
            ((gen as u64) << CURSOR_SLOT_BITS) | i as u64
        }
    }
}

/// A set member as stored: intsets hold integers, tables hold bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Member<'_> {
    /// The member's bytes (integers in canonical decimal form) handed to `f`.
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Int(i) => {
                let mut b = itoa::Buffer::new();
                f(b.format(i).as_bytes())
            }
            Member::Str(s) => f(s),
        }
    }

    pub fn to_boxed(self) -> Box<[u8]> {
        self.with_bytes(|b| b.into())
    }

    /// The integer an intset would store for this member (`isSdsRepresentableAsLongLong`).
    pub fn as_int(self) -> Option<i64> {
        match self {
            Member::Int(i) => Some(i),
            Member::Str(s) => crate::resp::request::parse_i64(s),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Set {
    /// Sorted ascending, no duplicates.
    Intset(Vec<i64>),
    Table(SlotTable<Box<[u8]>>),
}

impl Default for Set {
    fn default() -> Self {
        Set::Intset(Vec::new())
    }
}

/// Redis caps `set-max-intset-entries` at 2^30 whatever the configuration says.
fn intset_limit(max: usize) -> usize {
    max.min(1 << 30)
}

impl Set {
    /// An empty set of the encoding Redis picks for a set whose first member is `first`
    /// (`setTypeCreate`).
    pub fn for_first(first: Member) -> Set {
        if first.as_int().is_some() {
            Set::Intset(Vec::new())
        } else {
            Set::Table(SlotTable::with_capacity(0))
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Intset(v) => v.len(),
            Set::Table(m) => m.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Intset(_) => "intset",
            Set::Table(_) => "hashtable",
        }
    }

    fn make_table(&mut self) -> &mut SlotTable<Box<[u8]>> {
        if let Set::Intset(v) = self {
            let mut t = SlotTable::with_capacity(v.len() + 1);
            let mut b = itoa::Buffer::new();
            for &i in v.iter() {
                t.insert(b.format(i).as_bytes().into());
            }
            *self = Set::Table(t);
        }
        match self {
            Set::Table(t) => t,
            Set::Intset(_) => unreachable!("just converted"),
        }
    }

    /// Adds a member (`setTypeAdd`); `max_intset` is `set-max-intset-entries`. Returns whether it
    /// was new.
    pub fn add(&mut self, m: Member, max_intset: usize) -> bool {
        match self {
            Set::Intset(v) => match m.as_int() {
                Some(i) => match v.binary_search(&i) {
                    Ok(_) => false,
                    Err(pos) => {
                        v.insert(pos, i);
                        if v.len() > intset_limit(max_intset) {
                            self.make_table();
                        }
                        true
                    }
                },
                None => self.make_table().insert(m.to_boxed()),
            },
            Set::Table(t) => match m {
                Member::Str(s) => {
                    let h = t.hash(s);
                    if t.find_hashed(h, s).is_some() {
                        return false;
                    }
                    t.insert_hashed(h, s.into());
                    true
                }
                Member::Int(_) => t.insert(m.to_boxed()),
            },
        }
    }

    pub fn add_bytes(&mut self, m: &[u8], max_intset: usize) -> bool {
        self.add(Member::Str(m), max_intset)
    }

    pub fn remove(&mut self, m: Member) -> bool {
        match self {
            Set::Intset(v) => match m.as_int() {
                Some(i) => match v.binary_search(&i) {
                    Ok(pos) => {
                        v.remove(pos);
                        true
                    }
                    Err(_) => false,
                },
                None => false,
            },
            Set::Table(t) => m.with_bytes(|b| t.remove(b).is_some()),
        }
    }

    pub fn contains(&self, m: Member) -> bool {
        match self {
            Set::Intset(v) => m.as_int().is_some_and(|i| v.binary_search(&i).is_ok()),
            Set::Table(t) => m.with_bytes(|b| t.contains(b)),
        }
    }

    pub fn contains_bytes(&self, m: &[u8]) -> bool {
        self.contains(Member::Str(m))
    }

    /// Members in Redis's iteration order for the encoding (ascending for an intset).
    pub fn iter(&self) -> Box<dyn Iterator<Item = Member<'_>> + '_> {
        match self {
            Set::Intset(v) => Box::new(v.iter().map(|&i| Member::Int(i))),
            Set::Table(t) => Box::new(t.iter().map(|b| Member::Str(b))),
        }
    }

    /// A uniformly random member; None when empty.
    pub fn random(&self, rng: &mut impl Rng) -> Option<Member<'_>> {
        match self {
            Set::Intset(v) if v.is_empty() => None,
            Set::Intset(v) => Some(Member::Int(v[rng.gen_range(0..v.len())])),
            Set::Table(t) => t.random_slot(rng).and_then(|i| t.at(i)).map(|b| Member::Str(b)),
        }
    }

    /// Removes and returns a uniformly random member.
    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Option<Box<[u8]>> {
        match self {
            Set::Intset(v) if v.is_empty() => None,
            Set::Intset(v) => {
                let i = v.remove(rng.gen_range(0..v.len()));
                Some(Member::Int(i).to_boxed())
            }
            Set::Table(t) => {
                let i = t.random_slot(rng)?;
                t.remove_at(i)
            }
        }
    }

    /// Removes `n` distinct random members (n <= len) and returns them, in storage order.
    pub fn pop_many(&mut self, n: usize, rng: &mut impl Rng) -> Vec<Box<[u8]>> {
        let len = self.len();
        let n = n.min(len);
        match self {
            Set::Intset(v) => {
                let mut picked = vec![false; len];
                for i in rand::seq::index::sample(rng, len, n).into_iter() {
                    picked[i] = true;
                }
                let mut out = Vec::with_capacity(n);
                let mut k = 0;
                v.retain(|&x| {
                    let take = picked[k];
                    k += 1;
                    if take {
                        out.push(Member::Int(x).to_boxed());
                    }
                    !take
                });
                out
            }
            Set::Table(t) => {
                let live = t.live_slots();
                let mut idx: Vec<usize> = rand::seq::index::sample(rng, len, n).into_iter().map(|i| live[i]).collect();
                idx.sort_unstable();
                t.remove_slots(&idx)
            }
        }
    }

    /// Up to `n` distinct random members, in storage order.
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> Vec<Member<'_>> {
        let len = self.len();
        let n = n.min(len);
        let mut idx: Vec<usize> = rand::seq::index::sample(rng, len, n).into_vec();
        idx.sort_unstable();
        match self {
            Set::Intset(v) => idx.into_iter().map(|i| Member::Int(v[i])).collect(),
            Set::Table(t) => {
                let live = t.live_slots();
                idx.into_iter().filter_map(|i| t.at(live[i])).map(|b| Member::Str(b)).collect()
            }
        }
    }

    /// One SSCAN step. Intsets answer everything at once with cursor 0, like Redis.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(Member<'a>)) -> u64 {
        match self {
            Set::Intset(v) => {
                for &i in v {
                    f(Member::Int(i));
                }
                0
            }
            Set::Table(t) => t.scan(cursor, count, |b| {
                f(Member::Str(b));
                1
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &Set) -> Vec<Vec<u8>> {
        s.iter().map(|m| m.to_boxed().to_vec()).collect()
    }

    #[test]
    fn intset_stays_sorted_and_converts() {
        let mut s = Set::for_first(Member::Str(b"3"));
        assert!(s.add_bytes(b"3", 512));
        assert!(s.add_bytes(b"-1", 512));
        assert!(s.add_bytes(b"2", 512));
        assert!(!s.add_bytes(b"2", 512));
        assert_eq!(s.encoding(), "intset");
        assert_eq!(members(&s), vec![b"-1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
        // Not canonical: a string member.
        assert!(s.add_bytes(b"01", 512));
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains_bytes(b"2"));
        assert!(s.contains(Member::Int(3)));
        assert!(!s.contains_bytes(b"1"));
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn intset_limit_converts() {
        let mut s = Set::default();
        for i in 0..4 {
            s.add(Member::Int(i), 3);
        }
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn table_holes_compaction_and_scan() {
        let mut t: SlotTable<Box<[u8]>> = SlotTable::with_capacity(0);
        for i in 0..1000 {
            assert!(t.insert(format!("m{i}").into_bytes().into()));
        }
        // A scan in progress, then heavy deletions trigger a compaction.
        let mut seen = std::collections::HashSet::new();
        let mut cursor = t.scan(0, 10, |e| {
            seen.insert(e.to_vec());
            1
        });
        for i in 0..900 {
            assert!(t.remove(format!("m{i}").as_bytes()).is_some());
        }
        assert_eq!(t.len(), 100);
        let mut rounds = 0;
        while cursor != 0 && rounds < 10_000 {
            cursor = t.scan(cursor, 10, |e| {
                seen.insert(e.to_vec());
                1
            });
            rounds += 1;
        }
        for i in 900..1000 {
            assert!(seen.contains(format!("m{i}").as_bytes()), "m{i} missed");
        }
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            let i = t.random_slot(&mut rng).expect("non empty");
            assert!(t.at(i).is_some());
        }
        while !t.is_empty() {
            let i = t.random_slot(&mut rng).expect("non empty");
            assert!(t.remove_at(i).is_some());
        }
        assert!(t.random_slot(&mut rng).is_none());
    }

    #[test]
    fn big_pop_many_across_compaction() {
        let mut rng = rand::thread_rng();
        let mut s = Set::default();
        for i in 0..1000 {
            s.add(Member::Int(i), 0);
        }
        let popped = s.pop_many(900, &mut rng);
        assert_eq!(popped.len(), 900);
        assert_eq!(s.len(), 100);
        let mut all: Vec<Box<[u8]>> = popped;
        all.extend(s.iter().map(|m| m.to_boxed()));
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 1000);
    }

    #[test]
    fn pops_and_samples_are_distinct() {
        let mut rng = rand::thread_rng();
        for max in [512, 0] {
            let mut s = Set::default();
            for i in 0..50 {
                s.add(Member::Int(i), max);
            }
            let sample: std::collections::HashSet<Vec<u8>> =
                s.sample(20, &mut rng).into_iter().map(|m| m.to_boxed().to_vec()).collect();
            assert_eq!(sample.len(), 20);
            let popped = s.pop_many(30, &mut rng);
            let distinct: std::collections::HashSet<_> = popped.iter().collect();
            assert_eq!(distinct.len(), 30);
            assert_eq!(s.len(), 20);
            for p in &popped {
                assert!(!s.contains_bytes(p));
            }
        }
    }
}
