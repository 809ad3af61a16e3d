//! Lists. Redis 7.0 reports every list as `quicklist`; order is all that is observable.

use std::collections::VecDeque;

#[derive(Debug, Clone, Default)]
pub struct List {
    pub items: VecDeque<Box<[u8]>>,
}

impl List {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
