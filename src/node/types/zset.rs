//! Sorted sets: Redis's skiplist with spans (so rank lookups and rank ranges are O(log n)) plus a
//! member index, both living in one arena of nodes addressed by `u32` so the whole thing is safe
//! Rust. Order is (score, member bytes), `-0` equal to `0` as in C.
//!
//! Redis keeps small sets in a listpack and converts them to a skiplist past
//! `zset-max-listpack-entries` / `zset-max-listpack-value`, never back. We always use the skiplist
//! but track which encoding Redis would report, because it shows in OBJECT ENCODING, in ZSCAN
//! (a listpack is returned whole) and in scores (a listpack stores `-0` as `0`).
//!
//! The member index is a chained hash table with power-of-two buckets, so ZSCAN can use Redis's
//! reverse-binary cursor and keep its guarantee across resizes.

use smallvec::SmallVec;
use std::cell::Cell;
use std::hash::BuildHasher;

const MAX_LEVEL: usize = 32;
const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
const MIN_BUCKETS: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Level {
    next: u32,
    /// Nodes crossed by following `next` (Redis's span): what makes ranks O(log n).
    span: u32,
}

#[derive(Debug, Clone)]
struct Node {
    member: Box<[u8]>,
    score: f64,
    back: u32,
    /// Next node in the same hash bucket.
    chain: u32,
    hash: u32,
    levels: SmallVec<[Level; 2]>,
}

/// A position in the set (a node), valid until the set is next modified.
pub type Pos = u32;

/// Score interval of ZRANGEBYSCORE and friends (`(` makes a bound exclusive).
#[derive(Debug, Clone, Copy)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl ScoreRange {
    pub fn gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }
    pub fn lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }
    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One end of a ZRANGEBYLEX interval: `-`, `+`, or a string (`[` inclusive, `(` exclusive).
#[derive(Debug, Clone, PartialEq)]
pub enum LexBound {
    Min,
    Max,
    Str(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
    pub minex: bool,
    pub maxex: bool,
}

/// Redis's `sdscmplex` between two bounds: `-`/`+` compare equal only to themselves.
fn cmp_bounds(a: &LexBound, b: &LexBound) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (LexBound::Min, LexBound::Min) | (LexBound::Max, LexBound::Max) => Equal,
        (LexBound::Min, _) | (_, LexBound::Max) => Less,
        (LexBound::Max, _) | (_, LexBound::Min) => Greater,
        (LexBound::Str(x), LexBound::Str(y)) => x.as_slice().cmp(y.as_slice()),
    }
}

fn cmp_value(v: &[u8], b: &LexBound) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match b {
        LexBound::Min => Greater,
        LexBound::Max => Less,
        LexBound::Str(s) => v.cmp(s.as_slice()),
    }
}

impl LexRange {
    pub fn gte_min(&self, v: &[u8]) -> bool {
        let c = cmp_value(v, &self.min);
        if self.minex {
            c.is_gt()
        } else {
            c.is_ge()
        }
    }
    pub fn lte_max(&self, v: &[u8]) -> bool {
        let c = cmp_value(v, &self.max);
        if self.maxex {
            c.is_lt()
        } else {
            c.is_le()
        }
    }
    fn is_empty(&self) -> bool {
        let c = cmp_bounds(&self.min, &self.max);
        c.is_gt() || (c.is_eq() && (self.minex || self.maxex))
    }
}

/// ZADD's input flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub incr: bool,
}

/// What one ZADD element did (Redis's `ZADD_OUT_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Added {
    /// Skipped because of NX/XX/GT/LT.
    Nop,
    Added(f64),
    Updated(f64),
    /// Processed, score unchanged.
    Same(f64),
    /// INCR produced NaN; nothing changed.
    Nan,
}

/// The limits that decide when Redis leaves the listpack encoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub entries: usize,
    pub value: usize,
}

#[derive(Debug, Clone)]
pub struct ZSet {
    nodes: Vec<Node>,
    free: Vec<u32>,
    tail: u32,
    len: usize,
    buckets: Vec<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    listpack: bool,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new(true)
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(rand::random::<u64>() | 1);
}

/// Level for a new node: 1 + geometric(1/4), capped like Redis's `zslRandomLevel`.
fn random_level() -> usize {
    RNG.with(|r| {
        let mut level = 1;
        let mut x = r.get();
        loop {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if level >= MAX_LEVEL || (x >> 62) != 0 {
                break;
            }
            level += 1;
        }
        r.set(x);
        level
    })
}

/// A uniformly random index below `n` (n > 0).
fn random_below(n: usize) -> usize {
    use rand::Rng;
    rand::thread_rng().gen_range(0..n)
}

impl ZSet {
    /// An empty set reported as `listpack` (or `skiplist` when `listpack` is false).
    pub fn new(listpack: bool) -> Self {
        let head = Node {
            member: Box::default(),
            score: 0.0,
            back: NIL,
            chain: NIL,
            hash: 0,
            levels: smallvec::smallvec![Level { next: NIL, span: 0 }],
        };
        ZSet {
            nodes: vec![head],
            free: Vec::new(),
            tail: NIL,
            len: 0,
            buckets: Vec::new(),
            hasher: Default::default(),
            listpack,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn encoding(&self) -> &'static str {
        if self.listpack {
            "listpack"
        } else {
            "skiplist"
        }
    }
    pub fn is_listpack(&self) -> bool {
        self.listpack
    }

    /// ZUNIONSTORE & co build their result as a skiplist, then shrink it like
    /// `zsetConvertToListpackIfNeeded`; a listpack stores `-0` as `0`.
    pub fn convert_to_listpack_if_fits(&mut self, lim: Limits) {
        if self.listpack || self.len > lim.entries {
            return;
        }
        let mut p = self.first();
        while p != NIL {
            if self.nodes[p as usize].member.len() > lim.value {
                return;
            }
            p = self.next(p);
        }
        self.listpack = true;
        let mut p = self.first();
        while p != NIL {
            self.nodes[p as usize].score += 0.0;
            p = self.next(p);
        }
    }

    // ---- node access -------------------------------------------------------------------------

    fn level(&self) -> usize {
        self.nodes[HEAD as usize].levels.len()
    }
    fn lv(&self, x: u32, i: usize) -> Level {
        self.nodes[x as usize].levels[i]
    }
    fn lv_mut(&mut self, x: u32, i: usize) -> &mut Level {
        &mut self.nodes[x as usize].levels[i]
    }

    /// The member and score at a position.
    pub fn at(&self, p: Pos) -> (&[u8], f64) {
        let n = &self.nodes[p as usize];
        (&n.member, n.score)
    }
    /// Lowest element, or `None`.
    pub fn first_pos(&self) -> Option<Pos> {
        some(self.first())
    }
    pub fn last_pos(&self) -> Option<Pos> {
        some(self.tail)
    }
    pub fn next_pos(&self, p: Pos) -> Option<Pos> {
        some(self.next(p))
    }
    pub fn prev_pos(&self, p: Pos) -> Option<Pos> {
        some(self.nodes[p as usize].back)
    }
    /// Steps one position forward (or backward when `reverse`).
    pub fn step(&self, p: Pos, reverse: bool) -> Option<Pos> {
        if reverse {
            self.prev_pos(p)
        } else {
            self.next_pos(p)
        }
    }
    fn first(&self) -> u32 {
        self.lv(HEAD, 0).next
    }
    fn next(&self, p: u32) -> u32 {
        self.lv(p, 0).next
    }

    /// Elements in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        let mut p = self.first();
        std::iter::from_fn(move || {
            if p == NIL {
                return None;
            }
            let n = &self.nodes[p as usize];
            p = n.levels[0].next;
            Some((&*n.member, n.score))
        })
    }

    // ---- member index ------------------------------------------------------------------------

    fn hash(&self, m: &[u8]) -> u32 {
        self.hasher.hash_one(m) as u32
    }

    fn find(&self, m: &[u8]) -> u32 {
        if self.buckets.is_empty() {
            return NIL;
        }
        let h = self.hash(m);
        let mut p = self.buckets[h as usize & (self.buckets.len() - 1)];
        while p != NIL {
            let n = &self.nodes[p as usize];
            if n.hash == h && *n.member == *m {
                return p;
            }
            p = n.chain;
        }
        NIL
    }

    fn index_add(&mut self, x: u32) {
        if self.buckets.is_empty() {
            self.buckets = vec![NIL; MIN_BUCKETS];
        }
        let b = self.nodes[x as usize].hash as usize & (self.buckets.len() - 1);
        self.nodes[x as usize].chain = self.buckets[b];
        self.buckets[b] = x;
        if self.len >= self.buckets.len() {
            self.rehash(self.buckets.len() * 2);
        }
    }

    fn index_remove(&mut self, x: u32) {
        let b = self.nodes[x as usize].hash as usize & (self.buckets.len() - 1);
        let next = self.nodes[x as usize].chain;
        if self.buckets[b] == x {
            self.buckets[b] = next;
            return;
        }
        let mut p = self.buckets[b];
        while p != NIL {
            let c = self.nodes[p as usize].chain;
            if c == x {
                self.nodes[p as usize].chain = next;
                return;
            }
            p = c;
        }
    }

    fn rehash(&mut self, size: usize) {
        let size = size.max(MIN_BUCKETS).next_power_of_two();
        self.buckets = vec![NIL; size];
        let mut p = self.first();
        while p != NIL {
            let b = self.nodes[p as usize].hash as usize & (size - 1);
            self.nodes[p as usize].chain = self.buckets[b];
            self.buckets[b] = p;
            p = self.next(p);
        }
    }

    /// After deletions: shrink the index like Redis's `htNeedsResize` (< 10% full), and the arena
    /// when most of it is free slots.
    fn maybe_shrink(&mut self) {
        if self.buckets.len() > MIN_BUCKETS && self.len * 10 < self.buckets.len() {
            self.rehash(self.len);
        }
        if self.free.len() > 64 && self.free.len() > self.nodes.len() / 2 {
            self.compact();
        }
    }

    /// Rebuilds the arena without free slots (same elements, same encoding).
    fn compact(&mut self) {
        let mut items = Vec::with_capacity(self.len);
        let mut p = self.first();
        while p != NIL {
            let n = &mut self.nodes[p as usize];
            items.push((std::mem::take(&mut n.member), n.score));
            p = n.levels[0].next;
        }
        // Same hasher: a ZSCAN in progress keeps its guarantees.
        let fresh = ZSet { hasher: self.hasher, ..ZSet::new(self.listpack) };
        *self = fresh;
        self.nodes.reserve(items.len());
        for (m, s) in items {
            self.insert(s, m);
        }
    }

    // ---- skiplist core (a port of Redis's zsl* functions) --------------------------------------

    fn alloc(&mut self, node: Node) -> u32 {
        if let Some(i) = self.free.pop() {
            self.nodes[i as usize] = node;
            i
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        }
    }

    fn release(&mut self, x: u32) -> Box<[u8]> {
        let n = &mut self.nodes[x as usize];
        n.levels = SmallVec::new();
        self.free.push(x);
        std::mem::take(&mut n.member)
    }

    fn before(&self, x: u32, score: f64, member: &[u8]) -> bool {
        let n = &self.nodes[x as usize];
        n.score < score || (n.score == score && *n.member < *member)
    }

    /// Inserts a member known to be absent; returns its node.
    fn insert(&mut self, score: f64, member: Box<[u8]>) -> u32 {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0usize; MAX_LEVEL];
        let lvl = self.level();
        let mut x = HEAD;
        for i in (0..lvl).rev() {
            rank[i] = if i == lvl - 1 { 0 } else { rank[i + 1] };
            loop {
                let nx = self.lv(x, i).next;
                if nx != NIL && self.before(nx, score, &member) {
                    rank[i] += self.lv(x, i).span as usize;
                    x = nx;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let level = random_level();
        if level > lvl {
            for i in lvl..level {
                rank[i] = 0;
                update[i] = HEAD;
                let len = self.len as u32;
                self.nodes[HEAD as usize].levels.push(Level { next: NIL, span: len });
            }
        }
        let hash = self.hash(&member);
        let mut levels: SmallVec<[Level; 2]> = SmallVec::with_capacity(level);
        for i in 0..level {
            let u = self.lv(update[i], i);
            levels.push(Level { next: u.next, span: u.span - (rank[0] - rank[i]) as u32 });
        }
        let back = if update[0] == HEAD { NIL } else { update[0] };
        let x = self.alloc(Node { member, score, back, chain: NIL, hash, levels });
        for i in 0..level {
            *self.lv_mut(update[i], i) = Level { next: x, span: (rank[0] - rank[i]) as u32 + 1 };
        }
        for (i, &u) in update.iter().enumerate().take(self.level()).skip(level) {
            self.lv_mut(u, i).span += 1;
        }
        let next = self.next(x);
        if next != NIL {
            self.nodes[next as usize].back = x;
        } else {
            self.tail = x;
        }
        self.len += 1;
        self.index_add(x);
        x
    }

    /// Unlinks `x` from the skiplist (not the index); `update[i]` is its predecessor at level i.
    fn unlink(&mut self, x: u32, update: &[u32; MAX_LEVEL]) {
        for (i, &u) in update.iter().enumerate().take(self.level()) {
            if self.lv(u, i).next == x {
                let xl = self.lv(x, i);
                let ul = self.lv_mut(u, i);
                ul.span = ul.span + xl.span - 1;
                ul.next = xl.next;
            } else {
                self.lv_mut(u, i).span -= 1;
            }
        }
        let next = self.next(x);
        let back = self.nodes[x as usize].back;
        if next != NIL {
            self.nodes[next as usize].back = back;
        } else {
            self.tail = back;
        }
        while self.level() > 1 && self.lv(HEAD, self.level() - 1).next == NIL {
            self.nodes[HEAD as usize].levels.pop();
        }
        self.len -= 1;
    }

    /// Predecessors of (score, member) at every level.
    fn search(&self, score: f64, member: &[u8]) -> [u32; MAX_LEVEL] {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level()).rev() {
            loop {
                let nx = self.lv(x, i).next;
                if nx != NIL && self.before(nx, score, member) {
                    x = nx;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        update
    }

    /// Removes node `x` entirely; returns its member.
    fn delete_node(&mut self, x: u32) -> Box<[u8]> {
        let n = &self.nodes[x as usize];
        let update = self.search(n.score, &n.member);
        self.index_remove(x);
        self.unlink(x, &update);
        self.release(x)
    }

    /// 1-based rank of node `x` (Redis's `zslGetRank`).
    fn rank_of_node(&self, x: u32) -> usize {
        let (score, member) = {
            let n = &self.nodes[x as usize];
            (n.score, &n.member)
        };
        let mut rank = 0usize;
        let mut p = HEAD;
        for i in (0..self.level()).rev() {
            loop {
                let nx = self.lv(p, i).next;
                if nx == NIL {
                    break;
                }
                let n = &self.nodes[nx as usize];
                if n.score < score || (n.score == score && *n.member <= **member) {
                    rank += self.lv(p, i).span as usize;
                    p = nx;
                } else {
                    break;
                }
            }
            if p == x {
                return rank;
            }
        }
        rank
    }

    /// Node at 0-based `rank` (Redis's `zslGetElementByRank` with rank+1).
    fn node_at(&self, rank: usize) -> u32 {
        let target = rank + 1;
        let mut traversed = 0usize;
        let mut x = HEAD;
        for i in (0..self.level()).rev() {
            loop {
                let l = self.lv(x, i);
                if l.next != NIL && traversed + l.span as usize <= target {
                    traversed += l.span as usize;
                    x = l.next;
                } else {
                    break;
                }
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }

    /// Walks from the head while the next node satisfies `pred` (which must hold for a prefix of
    /// the order); returns how many nodes were passed and the last one (HEAD if none).
    fn walk(&self, pred: impl Fn(&Node) -> bool) -> (usize, u32) {
        let mut rank = 0usize;
        let mut x = HEAD;
        for i in (0..self.level()).rev() {
            loop {
                let l = self.lv(x, i);
                if l.next != NIL && pred(&self.nodes[l.next as usize]) {
                    rank += l.span as usize;
                    x = l.next;
                } else {
                    break;
                }
            }
        }
        (rank, x)
    }

    // ---- public operations -------------------------------------------------------------------

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        let p = self.find(member);
        (p != NIL).then(|| self.nodes[p as usize].score)
    }

    /// 0-based rank of a member, ascending.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let p = self.find(member);
        (p != NIL).then(|| self.rank_of_node(p) - 1)
    }

    /// Position of the element with 0-based `rank`.
    pub fn pos_at(&self, rank: usize) -> Option<Pos> {
        if rank >= self.len {
            return None;
        }
        some(self.node_at(rank))
    }

    /// 0-based rank of a position.
    pub fn rank_at(&self, p: Pos) -> usize {
        self.rank_of_node(p) - 1
    }

    /// Redis's `zsetAdd`: adds or updates one member under ZADD's flags, converting away from
    /// listpack when the set outgrows `lim`.
    pub fn add(&mut self, score: f64, member: &[u8], f: AddFlags, lim: Limits) -> Added {
        let p = self.find(member);
        if p != NIL {
            if f.nx {
                return Added::Nop;
            }
            let cur = self.nodes[p as usize].score;
            let mut score = score;
            if f.incr {
                score += cur;
                if score.is_nan() {
                    return Added::Nan;
                }
            }
            if (f.lt && score >= cur) || (f.gt && score <= cur) {
                return Added::Nop;
            }
            if score == cur {
                return Added::Same(score);
            }
            if self.listpack {
                score += 0.0;
            }
            self.update_score(p, score);
            return Added::Updated(score);
        }
        if f.xx {
            return Added::Nop;
        }
        if self.listpack && (self.len + 1 > lim.entries || member.len() > lim.value) {
            self.listpack = false;
        }
        let score = if self.listpack { score + 0.0 } else { score };
        self.insert(score, member.into());
        Added::Added(score)
    }

    /// Redis's `zslUpdateScore`: in place when the order does not change, else move the node.
    fn update_score(&mut self, x: u32, score: f64) {
        let back = self.nodes[x as usize].back;
        let next = self.next(x);
        if (back == NIL || self.nodes[back as usize].score < score)
            && (next == NIL || self.nodes[next as usize].score > score)
        {
            self.nodes[x as usize].score = score;
            return;
        }
        let member = self.delete_node(x);
        self.insert(score, member);
    }

    /// Removes a member; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let p = self.find(member);
        if p == NIL {
            return false;
        }
        self.delete_node(p);
        self.maybe_shrink();
        true
    }

    /// Removes and returns the lowest (or highest when `max`) element.
    pub fn pop(&mut self, max: bool) -> Option<(Box<[u8]>, f64)> {
        let p = if max { self.tail } else { self.first() };
        if p == NIL {
            return None;
        }
        let score = self.nodes[p as usize].score;
        let m = self.delete_node(p);
        self.maybe_shrink();
        Some((m, score))
    }

    /// Removes the elements with 0-based ranks `start..=end` (both in range); returns how many.
    pub fn remove_rank_range(&mut self, start: usize, end: usize) -> usize {
        if start > end || start >= self.len {
            return 0;
        }
        let end = end.min(self.len - 1);
        // Predecessors of rank `start`, then delete forward: the same `update` stays valid.
        let mut update = [HEAD; MAX_LEVEL];
        let mut traversed = 0usize;
        let mut x = HEAD;
        for i in (0..self.level()).rev() {
            loop {
                let l = self.lv(x, i);
                if l.next != NIL && traversed + (l.span as usize) < start + 1 {
                    traversed += l.span as usize;
                    x = l.next;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let mut x = self.next(x);
        let mut removed = 0;
        let mut rank = start;
        while x != NIL && rank <= end {
            let next = self.next(x);
            self.index_remove(x);
            self.unlink(x, &update);
            self.release(x);
            removed += 1;
            rank += 1;
            x = next;
        }
        self.maybe_shrink();
        removed
    }

    /// First element in a score range (last when `reverse`), with its 0-based rank
    /// (Redis's `zslFirstInRange` / `zslLastInRange`).
    pub fn score_start(&self, r: &ScoreRange, reverse: bool) -> Option<(usize, Pos)> {
        if r.is_empty() || self.tail == NIL {
            return None;
        }
        if !r.gte_min(self.nodes[self.tail as usize].score) || !r.lte_max(self.nodes[self.first() as usize].score) {
            return None;
        }
        if reverse {
            let (rank, x) = self.walk(|n| r.lte_max(n.score));
            if x == HEAD || !r.gte_min(self.nodes[x as usize].score) {
                return None;
            }
            Some((rank - 1, x))
        } else {
            let (rank, x) = self.walk(|n| !r.gte_min(n.score));
            let x = self.next(x);
            if x == NIL || !r.lte_max(self.nodes[x as usize].score) {
                return None;
            }
            Some((rank, x))
        }
    }

    /// First element in a lex range (last when `reverse`), with its 0-based rank. Lex ranges
    /// assume equal scores; when they are not, a listpack answers by a linear scan as Redis's
    /// `zzlFirstInLexRange` does.
    pub fn lex_start(&self, r: &LexRange, reverse: bool) -> Option<(usize, Pos)> {
        if r.is_empty() || self.tail == NIL {
            return None;
        }
        if !r.gte_min(&self.nodes[self.tail as usize].member) || !r.lte_max(&self.nodes[self.first() as usize].member) {
            return None;
        }
        if self.listpack {
            return self.lex_start_linear(r, reverse);
        }
        if reverse {
            let (rank, x) = self.walk(|n| r.lte_max(&n.member));
            if x == HEAD || !r.gte_min(&self.nodes[x as usize].member) {
                return None;
            }
            Some((rank - 1, x))
        } else {
            let (rank, x) = self.walk(|n| !r.gte_min(&n.member));
            let x = self.next(x);
            if x == NIL || !r.lte_max(&self.nodes[x as usize].member) {
                return None;
            }
            Some((rank, x))
        }
    }

    fn lex_start_linear(&self, r: &LexRange, reverse: bool) -> Option<(usize, Pos)> {
        if reverse {
            let mut p = self.tail;
            let mut rank = self.len;
            while p != NIL {
                rank -= 1;
                let m = &self.nodes[p as usize].member;
                if r.lte_max(m) {
                    return r.gte_min(m).then_some((rank, p));
                }
                p = self.nodes[p as usize].back;
            }
        } else {
            let mut p = self.first();
            let mut rank = 0;
            while p != NIL {
                let m = &self.nodes[p as usize].member;
                if r.gte_min(m) {
                    return r.lte_max(m).then_some((rank, p));
                }
                rank += 1;
                p = self.next(p);
            }
        }
        None
    }

    /// A uniformly random element (the set must not be empty).
    pub fn random(&self) -> Option<(&[u8], f64)> {
        if self.len == 0 {
            return None;
        }
        let p = self.node_at(random_below(self.len));
        some(p).map(|p| self.at(p))
    }

    /// One step of Redis's `dictScan` over the member index: visits one bucket, returns the next
    /// cursor (0 when done).
    pub fn scan_step(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        if self.len == 0 || self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let mut p = self.buckets[(cursor & mask) as usize];
        while p != NIL {
            let n = &self.nodes[p as usize];
            f(&n.member, n.score);
            p = n.chain;
        }
        let mut v = cursor | !mask;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }
}

fn some(p: u32) -> Option<Pos> {
    (p != NIL).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const LIM: Limits = Limits { entries: 128, value: 64 };

    fn naive_sorted(v: &mut [(f64, Vec<u8>)]) {
        v.sort_by(|a, b| a.0.partial_cmp(&b.0).expect("no NaN").then_with(|| a.1.cmp(&b.1)));
    }

    fn check(z: &ZSet, model: &[(f64, Vec<u8>)]) {
        assert_eq!(z.len(), model.len());
        let got: Vec<(f64, Vec<u8>)> = z.iter().map(|(m, s)| (s, m.to_vec())).collect();
        assert_eq!(got, model);
        // Backward links.
        let mut back = Vec::new();
        let mut p = z.last_pos();
        while let Some(x) = p {
            let (m, s) = z.at(x);
            back.push((s, m.to_vec()));
            p = z.prev_pos(x);
        }
        back.reverse();
        assert_eq!(back, model);
    }

    #[test]
    fn random_ops_match_a_sorted_vec() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..20 {
            let mut z = ZSet::new(false);
            let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
            let universe = if round % 2 == 0 { 50 } else { 600 };
            for step in 0..3000 {
                let member = format!("m{}", rng.gen_range(0..universe)).into_bytes();
                let score = rng.gen_range(-20..20) as f64 / 2.0;
                match rng.gen_range(0..10) {
                    0..=4 => {
                        let r = z.add(score, &member, AddFlags::default(), LIM);
                        match model.iter().position(|(_, m)| *m == member) {
                            Some(i) => {
                                if model[i].0 == score {
                                    assert_eq!(r, Added::Same(score));
                                } else {
                                    assert_eq!(r, Added::Updated(score));
                                    model[i].0 = score;
                                }
                            }
                            None => {
                                assert_eq!(r, Added::Added(score));
                                model.push((score, member.clone()));
                            }
                        }
                        naive_sorted(&mut model);
                    }
                    5 => {
                        let was = model.iter().position(|(_, m)| *m == member);
                        assert_eq!(z.remove(&member), was.is_some());
                        if let Some(i) = was {
                            model.remove(i);
                        }
                    }
                    6 => {
                        let max = rng.gen_bool(0.5);
                        let got = z.pop(max).map(|(m, s)| (s, m.to_vec()));
                        let want = if model.is_empty() {
                            None
                        } else if max {
                            model.pop()
                        } else {
                            Some(model.remove(0))
                        };
                        assert_eq!(got, want);
                    }
                    7 => {
                        if !model.is_empty() {
                            let a = rng.gen_range(0..model.len());
                            let b = (a + rng.gen_range(0..4)).min(model.len() - 1);
                            assert_eq!(z.remove_rank_range(a, b), b - a + 1);
                            model.drain(a..=b);
                        }
                    }
                    _ => {
                        // Ranks both ways.
                        let want = model.iter().position(|(_, m)| *m == member);
                        assert_eq!(z.rank(&member), want);
                        if let Some(i) = want {
                            let p = z.pos_at(i).expect("rank in range");
                            assert_eq!(z.at(p).0, &member[..]);
                            assert_eq!(z.rank_at(p), i);
                            assert_eq!(z.score(&member), Some(model[i].0));
                        }
                    }
                }
                if step % 97 == 0 {
                    check(&z, &model);
                    ranges_agree(&z, &model, &mut rng);
                }
            }
            check(&z, &model);
        }
    }

    fn ranges_agree(z: &ZSet, model: &[(f64, Vec<u8>)], rng: &mut impl Rng) {
        for _ in 0..5 {
            let a = rng.gen_range(-22..22) as f64 / 2.0;
            let b = rng.gen_range(-22..22) as f64 / 2.0;
            let r = ScoreRange { min: a, max: b, minex: rng.gen_bool(0.3), maxex: rng.gen_bool(0.3) };
            let inr: Vec<usize> =
                (0..model.len()).filter(|&i| r.gte_min(model[i].0) && r.lte_max(model[i].0)).collect();
            let first = z.score_start(&r, false).map(|(rank, p)| {
                assert_eq!(z.rank_at(p), rank);
                rank
            });
            let last = z.score_start(&r, true).map(|(rank, p)| {
                assert_eq!(z.rank_at(p), rank);
                rank
            });
            assert_eq!(first, inr.first().copied());
            assert_eq!(last, inr.last().copied());
        }
    }

    #[test]
    fn lex_ranges_on_equal_scores() {
        for listpack in [true, false] {
            let mut z = ZSet::new(listpack);
            for c in b'a'..=b'z' {
                z.add(0.0, &[c], AddFlags::default(), Limits { entries: 1000, value: 64 });
            }
            let r = LexRange {
                min: LexBound::Str(b"c".to_vec()),
                max: LexBound::Str(b"f".to_vec()),
                minex: true,
                maxex: false,
            };
            assert_eq!(z.lex_start(&r, false).map(|x| x.0), Some(3));
            assert_eq!(z.lex_start(&r, true).map(|x| x.0), Some(5));
            let all = LexRange { min: LexBound::Min, max: LexBound::Max, minex: true, maxex: true };
            assert_eq!(z.lex_start(&all, false).map(|x| x.0), Some(0));
            assert_eq!(z.lex_start(&all, true).map(|x| x.0), Some(25));
            let none = LexRange { min: LexBound::Max, max: LexBound::Min, minex: true, maxex: true };
            assert_eq!(z.lex_start(&none, false), None);
        }
    }

    #[test]
    fn encoding_follows_limits() {
        let lim = Limits { entries: 3, value: 4 };
        let mut z = ZSet::new(true);
        for m in ["a", "b", "c"] {
            z.add(-0.0, m.as_bytes(), AddFlags::default(), lim);
        }
        assert_eq!(z.encoding(), "listpack");
        assert!(z.score(b"a").expect("present").is_sign_positive());
        z.add(1.0, b"d", AddFlags::default(), lim);
        assert_eq!(z.encoding(), "skiplist");
        z.add(-0.0, b"e", AddFlags::default(), lim);
        assert!(z.score(b"e").expect("present").is_sign_negative());
        let mut y = ZSet::new(true);
        y.add(1.0, b"toolong", AddFlags::default(), lim);
        assert_eq!(y.encoding(), "skiplist");
    }

    #[test]
    fn scan_visits_everything_across_resizes() {
        let mut z = ZSet::new(false);
        for i in 0..1000 {
            z.add(i as f64, format!("k{i}").as_bytes(), AddFlags::default(), LIM);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0u64;
        let mut steps = 0;
        loop {
            cursor = z.scan_step(cursor, |m, _| {
                seen.insert(m.to_vec());
            });
            steps += 1;
            if steps == 100 {
                // Shrink the table mid-scan: survivors must still all be seen.
                for i in 0..990 {
                    z.remove(format!("k{i}").as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 990..1000 {
            assert!(seen.contains(format!("k{i}").as_bytes()));
        }
    }

    #[test]
    fn compaction_keeps_order() {
        let mut z = ZSet::new(false);
        for i in 0..5000 {
            z.add((i % 100) as f64, format!("{i}").as_bytes(), AddFlags::default(), LIM);
        }
        for i in 0..4900 {
            assert!(z.remove(format!("{i}").as_bytes()));
        }
        assert_eq!(z.len(), 100);
        assert!(z.nodes.len() < 1000);
        let v: Vec<f64> = z.iter().map(|(_, s)| s).collect();
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(z.rank(b"4999"), Some(99));
    }
}
