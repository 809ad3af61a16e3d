//! Lists. Redis 7.0 reports every list as `quicklist`; order is all that is observable, so a
//! ring buffer of owned elements gives O(1) pushes and pops at both ends and O(1) indexing.

use std::collections::VecDeque;

/// Which end of a list a push or pop works on (Redis's `LIST_HEAD` / `LIST_TAIL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

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

    pub fn push(&mut self, end: End, v: Box<[u8]>) {
        match end {
            End::Left => self.items.push_front(v),
            End::Right => self.items.push_back(v),
        }
    }

    pub fn pop(&mut self, end: End) -> Option<Box<[u8]>> {
        match end {
            End::Left => self.items.pop_front(),
            End::Right => self.items.pop_back(),
        }
    }

    /// Redis's index rule: negative counts from the tail; None when out of range.
    pub fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let i = if index < 0 { len.checked_add(index)? } else { index };
        if (0..len).contains(&i) {
            Some(i as usize)
        } else {
            None
        }
    }

    pub fn get(&self, index: i64) -> Option<&[u8]> {
        self.resolve(index).map(|i| &*self.items[i])
    }

    /// Replaces the element at `index`; false when out of range.
    pub fn set(&mut self, index: i64, v: Box<[u8]>) -> bool {
        match self.resolve(index) {
            Some(i) => {
                self.items[i] = v;
                true
            }
            None => false,
        }
    }

    /// LRANGE's clamping of `start`/`end`: the inclusive range of positions, or None if empty.
    pub fn range(&self, start: i64, end: i64) -> Option<(usize, usize)> {
        let len = self.items.len() as i64;
        let mut start = if start < 0 { len + start } else { start };
        let mut end = if end < 0 { len + end } else { end };
        if start < 0 {
            start = 0;
        }
        if start > end || start >= len {
            return None;
        }
        if end >= len {
            end = len - 1;
        }
        Some((start as usize, end as usize))
    }

    /// Keeps only `start..=end` (LTRIM rules).
    pub fn trim(&mut self, start: i64, end: i64) {
        match self.range(start, end) {
            None => self.items.clear(),
            Some((s, e)) => {
                self.items.truncate(e + 1);
                self.items.drain(..s);
            }
        }
    }

    /// Inserts `v` before or after the first `pivot`; false if `pivot` is absent.
    pub fn insert(&mut self, pivot: &[u8], after: bool, v: Box<[u8]>) -> bool {
        match self.items.iter().position(|e| &**e == pivot) {
            Some(i) => {
                self.items.insert(if after { i + 1 } else { i }, v);
                true
            }
            None => false,
        }
    }

    /// LREM: removes up to `count` occurrences (all when 0) from the head, or from the tail when
    /// `count` is negative. Returns how many went.
    pub fn remove(&mut self, v: &[u8], count: i64) -> usize {
        let limit = if count == 0 { usize::MAX } else { count.unsigned_abs().min(usize::MAX as u64) as usize };
        // One pass with `retain` (no quadratic shifting): from the tail, that means keeping the
        // first `matches - limit` matches and dropping the rest.
        let skip = if count >= 0 {
            0
        } else {
            let matches = self.items.iter().filter(|e| ***e == *v).count();
            matches.saturating_sub(limit)
        };
        let (mut seen, mut removed) = (0usize, 0usize);
        self.items.retain(|e| {
            if **e != *v || removed >= limit {
                return true;
            }
            seen += 1;
            if seen <= skip {
                return true;
            }
            removed += 1;
            false
        });
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> List {
        let mut l = List::new();
        for i in items {
            l.push(End::Right, i.as_bytes().into());
        }
        l
    }

    fn items(l: &List) -> Vec<String> {
        l.items.iter().map(|e| String::from_utf8_lossy(e).into_owned()).collect()
    }

    #[test]
    fn ranges_clamp_like_redis() {
        let l = list(&["a", "b", "c", "d"]);
        assert_eq!(l.range(0, -1), Some((0, 3)));
        assert_eq!(l.range(-100, 100), Some((0, 3)));
        assert_eq!(l.range(2, 1), None);
        assert_eq!(l.range(4, 10), None);
        assert_eq!(l.range(-2, -1), Some((2, 3)));
        assert_eq!(l.range(i64::MIN, i64::MAX), Some((0, 3)));
        assert_eq!(l.get(-1), Some(&b"d"[..]));
        assert_eq!(l.get(i64::MIN), None);
        assert_eq!(l.get(4), None);
    }

    #[test]
    fn trim_insert_remove() {
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(l.remove(b"a", -2), 2);
        assert_eq!(items(&l), ["a", "b", "c"]);
        assert!(l.insert(b"b", true, b"x"[..].into()));
        assert!(!l.insert(b"z", true, b"x"[..].into()));
        assert_eq!(items(&l), ["a", "b", "x", "c"]);
        l.trim(1, -2);
        assert_eq!(items(&l), ["b", "x"]);
        l.trim(5, 10);
        assert!(l.is_empty());
        let mut l = list(&["a", "a", "b", "a"]);
        assert_eq!(l.remove(b"a", 0), 3);
        assert_eq!(items(&l), ["b"]);
        let mut l = list(&["a", "a", "b", "a"]);
        assert_eq!(l.remove(b"a", 1), 1);
        assert_eq!(items(&l), ["a", "b", "a"]);
    }
}
