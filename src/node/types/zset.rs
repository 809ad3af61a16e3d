//! Sorted sets, ordered by (score, member) like Redis's skiplist; reported as `listpack` while
//! small, `skiplist` after.

#[derive(Debug, Clone, Default)]
pub struct ZSet {
    /// (score, member), kept sorted.
    pub items: Vec<(f64, Box<[u8]>)>,
    pub big: bool,
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn encoding(&self) -> &'static str {
        if self.big {
            "skiplist"
        } else {
            "listpack"
        }
    }
}
