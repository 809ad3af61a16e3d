//! A Redis-style hash table: separate chaining over a power-of-two bucket array.
//!
//! Why not `HashMap`: Redis clients rely on SCAN's guarantee (every key present for the whole scan
//! is returned at least once, even across resizes) and on O(1) random sampling (RANDOMKEY, SPOP,
//! active expiry). Both need bucket-level access, which std/hashbrown do not expose. Chaining also
//! keeps memory at one pointer per bucket plus one node per entry, close to Redis's `dict`.
//!
//! The table doubles when it holds as many entries as buckets and halves when it falls under 1/8
//! full. Resizing is done at once; Redis rehashes incrementally, which matters only for tables of
//! many millions of keys (noted in docs/node.md).

use rand::Rng;
use std::hash::BuildHasher;

type Link<V> = Option<Box<Node<V>>>;

struct Node<V> {
    key: Box<[u8]>,
    val: V,
    next: Link<V>,
}

pub struct Dict<V> {
    table: Vec<Link<V>>,
    len: usize,
    hasher: hashbrown::DefaultHashBuilder,
}

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Dict { table: Vec::new(), len: 0, hasher: Default::default() }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for Dict<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter().map(|(k, v)| (String::from_utf8_lossy(k), v))).finish()
    }
}

impl<V: Clone> Clone for Dict<V> {
    fn clone(&self) -> Self {
        let mut d = Dict::with_capacity(self.len);
        for (k, v) in self.iter() {
            d.insert(k.into(), v.clone());
        }
        d
    }
}

impl<V> Drop for Dict<V> {
    fn drop(&mut self) {
        // Unlink chains iteratively: dropping a long Box chain recursively could overflow the stack.
        for slot in self.table.iter_mut() {
            let mut cur = slot.take();
            while let Some(mut n) = cur {
                cur = n.next.take();
            }
        }
    }
}

impl<V> Dict<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        let mut d = Self::default();
        if n > 0 {
            d.rehash(n.next_power_of_two().max(4));
        }
        d
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bucket count (for tests and memory estimates).
    pub fn buckets(&self) -> usize {
        self.table.len()
    }

    fn bucket(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) & (self.table.len() - 1)
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        if self.table.is_empty() {
            return None;
        }
        let mut cur = &self.table[self.bucket(key)];
        while let Some(n) = cur {
            if &*n.key == key {
                return Some(&n.val);
            }
            cur = &n.next;
        }
        None
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        if self.table.is_empty() {
            return None;
        }
        let b = self.bucket(key);
        let mut cur = &mut self.table[b];
        while let Some(n) = cur {
            if &*n.key == key {
                return Some(&mut n.val);
            }
            cur = &mut n.next;
        }
        None
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: Box<[u8]>, val: V) -> Option<V> {
        if let Some(v) = self.get_mut(&key) {
            return Some(std::mem::replace(v, val));
        }
        if self.len >= self.table.len() {
            self.rehash((self.table.len() * 2).max(4));
        }
        let b = self.bucket(&key);
        let next = self.table[b].take();
        self.table[b] = Some(Box::new(Node { key, val, next }));
        self.len += 1;
        None
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<(Box<[u8]>, V)> {
        if self.table.is_empty() {
            return None;
        }
        let b = self.bucket(key);
        let mut cur = &mut self.table[b];
        loop {
            match cur {
                None => return None,
                Some(n) if &*n.key == key => {
                    let mut n = cur.take().expect("matched Some");
                    *cur = n.next.take();
                    self.len -= 1;
                    self.maybe_shrink();
                    return Some((n.key, n.val));
                }
                Some(n) => cur = &mut n.next,
            }
        }
    }

    fn maybe_shrink(&mut self) {
        let size = self.table.len();
        if size > 4 && self.len * 8 < size {
            self.rehash((self.len.next_power_of_two() * 2).max(4));
        }
    }

    fn rehash(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.table, (0..size).map(|_| None).collect());
        for mut slot in old {
            while let Some(mut n) = slot {
                slot = n.next.take();
                let b = self.bucket(&n.key);
                n.next = self.table[b].take();
                self.table[b] = Some(n);
            }
        }
        if self.len == 0 && size > 4 {
            self.table = Vec::new();
        }
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> + '_ {
        self.table.iter().flat_map(|slot| {
            let mut cur = slot.as_deref();
            std::iter::from_fn(move || {
                let n = cur?;
                cur = n.next.as_deref();
                Some((&*n.key, &n.val))
            })
        })
    }

    pub fn keys(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// One SCAN step: calls `f` for every entry of the bucket(s) at `cursor` and returns the next
    /// cursor (0 when done). Cursors advance in reverse-binary order (Redis's `dictScan`), so a
    /// table that grows or shrinks between calls neither skips an entry that was present the whole
    /// time nor restarts.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &V)) -> u64 {
        if self.table.is_empty() {
            return 0;
        }
        let mask = (self.table.len() - 1) as u64;
        let mut cur = self.table[(cursor & mask) as usize].as_deref();
        while let Some(n) = cur {
            f(&n.key, &n.val);
            cur = n.next.as_deref();
        }
        let mut v = cursor | !mask;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }

    /// A uniformly chosen bucket's random entry (Redis's `dictGetRandomKey` fairness).
    pub fn random(&self) -> Option<(&[u8], &V)> {
        if self.len == 0 {
            return None;
        }
        let mut rng = rand::thread_rng();
        let mask = self.table.len() - 1;
        // The table is at least 1/8 full, so this loop ends quickly; the bound is a safety net.
        let mut b = rng.gen_range(0..self.table.len());
        for _ in 0..10_000 {
            if self.table[b].is_some() {
                break;
            }
            b = rng.gen_range(0..self.table.len());
        }
        while self.table[b].is_none() {
            b = (b + 1) & mask;
        }
        let mut chain = Vec::new();
        let mut cur = self.table[b].as_deref();
        while let Some(n) = cur {
            chain.push(n);
            cur = n.next.as_deref();
        }
        let n = chain[rng.gen_range(0..chain.len())];
        Some((&n.key, &n.val))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn behaves_like_a_map() {
        let mut d = Dict::new();
        let mut m = HashMap::new();
        let mut rng = rand::thread_rng();
        for i in 0..20_000u32 {
            let k = format!("k{}", rng.gen_range(0..3000)).into_bytes();
            if i % 3 == 0 {
                assert_eq!(d.remove(&k).map(|(_, v)| v), m.remove(&k));
            } else {
                assert_eq!(d.insert(k.clone().into(), i), m.insert(k, i));
            }
            assert_eq!(d.len(), m.len());
        }
        for (k, v) in &m {
            assert_eq!(d.get(k), Some(v));
        }
        assert_eq!(d.iter().count(), m.len());
    }

    #[test]
    fn scan_sees_every_stable_key_across_resizes() {
        let mut d = Dict::new();
        for i in 0..1000 {
            d.insert(format!("stable{i}").into_bytes().into(), ());
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            cursor = d.scan(cursor, |k, _| {
                seen.insert(k.to_vec());
            });
            // Grow and shrink the table under the scan.
            step += 1;
            if step % 7 == 0 {
                for j in 0..300 {
                    d.insert(format!("tmp{step}-{j}").into_bytes().into(), ());
                }
            }
            if step % 11 == 0 {
                let tmp: Vec<Vec<u8>> = d.keys().filter(|k| k.starts_with(b"tmp")).map(|k| k.to_vec()).collect();
                for k in tmp {
                    d.remove(&k);
                }
            }
            if cursor == 0 {
                break;
            }
            assert!(step < 100_000);
        }
        for i in 0..1000 {
            assert!(seen.contains(format!("stable{i}").as_bytes()), "missed stable{i}");
        }
    }

    #[test]
    fn random_and_shrink() {
        let mut d = Dict::new();
        for i in 0..1024 {
            d.insert(i.to_string().into_bytes().into(), i);
        }
        for i in 10..1024 {
            d.remove(i.to_string().as_bytes());
        }
        assert!(d.buckets() <= 64, "shrunk to {}", d.buckets());
        for _ in 0..100 {
            let (_, v) = d.random().expect("non-empty");
            assert!(*v < 10);
        }
        assert!(Dict::<u8>::new().random().is_none());
    }
}
