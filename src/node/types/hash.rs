//! Hashes: insertion-ordered while small (Redis's listpack), a hash table once past
//! `hash-max-listpack-entries` / `hash-max-listpack-value`, never converted back.
//!
//! The listpack order is observable (HGETALL, HKEYS, HSCAN, HRANDFIELD with a big count): a new
//! field goes to the end, overwriting a field keeps its place, deleting one keeps the others'
//! order. A linear search is what Redis does too, and the list is at most 128 pairs by default.

use super::set::SlotTable;
use rand::Rng;

pub type Pair = (Box<[u8]>, Box<[u8]>);
pub type Pairs = Vec<Pair>;

#[derive(Debug, Clone)]
pub enum Hash {
    Listpack(Pairs),
    Table(SlotTable<Pair>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Listpack(Vec::new())
    }
}

/// Overwrites a stored value, reusing its allocation when the length matches (HSET of a
/// same-sized value is the benchmark's steady state).
fn overwrite(slot: &mut Box<[u8]>, value: &[u8]) {
    if slot.len() == value.len() {
        slot.copy_from_slice(value);
    } else {
        *slot = value.into();
    }
}

impl Hash {
    pub fn len(&self) -> usize {
        match self {
            Hash::Listpack(v) => v.len(),
            Hash::Table(m) => m.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Listpack(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    /// Converts a listpack to the table encoding (no-op on a table).
    pub fn convert(&mut self) {
        if let Hash::Listpack(v) = self {
            let mut t = SlotTable::with_capacity(v.len());
            for p in std::mem::take(v) {
                t.insert(p);
            }
            *self = Hash::Table(t);
        }
    }

    /// `hashTypeTryConversion`: a listpack turns into a table before a write if any of the
    /// strings about to be written is longer than `hash-max-listpack-value`.
    pub fn convert_for<'a>(&mut self, strings: impl IntoIterator<Item = &'a [u8]>, max_value: usize) {
        if matches!(self, Hash::Listpack(_)) && strings.into_iter().any(|s| s.len() > max_value) {
            self.convert();
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Listpack(v) => v.iter().find(|(f, _)| &**f == field).map(|(_, v)| &**v),
            Hash::Table(t) => t.get(field).map(|(_, v)| &**v),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// `hashTypeSet`: sets a field, converting to a table when the field or value is too long
    /// for a listpack or the listpack grows past `max_entries`. Returns true if the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], max_entries: usize, max_value: usize) -> bool {
        if let Hash::Listpack(_) = self {
            if field.len() > max_value || value.len() > max_value {
                self.convert();
            }
        }
        match self {
            Hash::Listpack(v) => {
                if let Some((_, old)) = v.iter_mut().find(|(f, _)| &**f == field) {
                    overwrite(old, value);
                    return false;
                }
                v.push((field.into(), value.into()));
                if v.len() > max_entries {
                    self.convert();
                }
                true
            }
            Hash::Table(t) => t.upsert(field, || (field.into(), value.into()), |(_, old)| overwrite(old, value)),
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Listpack(v) => match v.iter().position(|(f, _)| &**f == field) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            Hash::Table(t) => t.remove(field).is_some(),
        }
    }

    /// Pairs in Redis's iteration order for the encoding.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            Hash::Listpack(v) => Box::new(v.iter().map(|(f, v)| (&**f, &**v))),
            Hash::Table(t) => Box::new(t.iter().map(|(f, v)| (&**f, &**v))),
        }
    }

    /// A uniformly random pair; None when empty.
    pub fn random(&self, rng: &mut impl Rng) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Listpack(v) if v.is_empty() => None,
            Hash::Listpack(v) => {
                let (f, val) = &v[rng.gen_range(0..v.len())];
                Some((f, val))
            }
            Hash::Table(t) => t.random_slot(rng).and_then(|i| t.at(i)).map(|(f, v)| (&**f, &**v)),
        }
    }

    /// Up to `n` distinct random pairs, in storage order.
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> Vec<(&[u8], &[u8])> {
        let len = self.len();
        let mut idx: Vec<usize> = rand::seq::index::sample(rng, len, n.min(len)).into_vec();
        idx.sort_unstable();
        match self {
            Hash::Listpack(v) => idx.into_iter().map(|i| (&*v[i].0, &*v[i].1)).collect(),
            Hash::Table(t) => {
                let live = t.live_slots();
                idx.into_iter().filter_map(|i| t.at(live[i])).map(|(f, v)| (&**f, &**v)).collect()
            }
        }
    }

    /// One HSCAN step. A listpack answers everything at once with cursor 0, like Redis; a table
    /// step stops after about `count` strings (fields and values both count, as in Redis).
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a [u8], &'a [u8])) -> u64 {
        match self {
            Hash::Listpack(v) => {
                for (k, val) in v {
                    f(k, val);
                }
                0
            }
            Hash::Table(t) => t.scan(cursor, count, |(k, val)| {
                f(k, val);
                2
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(h: &Hash) -> Vec<&[u8]> {
        h.iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn listpack_keeps_order() {
        let mut h = Hash::default();
        assert!(h.set(b"a", b"1", 128, 64));
        assert!(h.set(b"b", b"2", 128, 64));
        assert!(h.set(b"c", b"3", 128, 64));
        assert!(!h.set(b"a", b"10", 128, 64));
        assert_eq!(fields(&h), vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(h.get(b"a"), Some(&b"10"[..]));
        assert!(h.remove(b"b"));
        assert!(!h.remove(b"b"));
        assert_eq!(fields(&h), vec![&b"a"[..], b"c"]);
        assert_eq!(h.encoding(), "listpack");
    }

    #[test]
    fn converts_on_size_and_length() {
        let mut h = Hash::default();
        for i in 0..3 {
            h.set(format!("f{i}").as_bytes(), b"v", 3, 64);
        }
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f3", b"v", 3, 64);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 4);
        assert_eq!(h.get(b"f2"), Some(&b"v"[..]));

        let mut h = Hash::default();
        h.set(b"f", &[b'x'; 65], 128, 64);
        assert_eq!(h.encoding(), "hashtable");

        let mut h = Hash::default();
        h.set(b"f", b"v", 128, 64);
        h.convert_for([&b"short"[..], &[b'y'; 65]], 64);
        assert_eq!(h.encoding(), "hashtable");
    }
}
