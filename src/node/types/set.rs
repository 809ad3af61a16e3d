//! Sets: a sorted integer array while every member is an integer (Redis's intset, so SMEMBERS
//! comes out sorted), a hash table otherwise.

#[derive(Debug, Clone)]
pub enum Set {
    Intset(Vec<i64>),
    Table(hashbrown::HashSet<Box<[u8]>>),
}

impl Default for Set {
    fn default() -> Self {
        Set::Intset(Vec::new())
    }
}

impl Set {
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
}
