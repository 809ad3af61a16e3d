//! Hashes: insertion-ordered while small (Redis's listpack), a hash table once past
//! `hash-max-listpack-entries` / `hash-max-listpack-value`.

pub type Pairs = Vec<(Box<[u8]>, Box<[u8]>)>;

#[derive(Debug, Clone)]
pub enum Hash {
    Listpack(Pairs),
    Table(hashbrown::HashMap<Box<[u8]>, Box<[u8]>>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Listpack(Vec::new())
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
}
