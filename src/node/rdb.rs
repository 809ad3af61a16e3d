//! Redis's RDB object serialization, as DUMP/RESTORE carry it and as replication and persistence
//! will: a type byte, the value, and (for a DUMP payload) the RDB version and a CRC-64.
//!
//! Writing follows what Redis 7.0 writes for each encoding; reading also takes the older
//! encodings a 7.0 server may still be handed (ziplists, quicklist v1, text scores). Decoded
//! values are built through the type modules' own operations, so they end up in the encoding
//! the rest of the node would give them under the current configuration.

pub mod crc64;
pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod ziplist;

use super::config::Config;
use super::types::hash::Hash;
use super::types::list::{End, List};
use super::types::set::{Member, Set, SlotTable};
use super::types::zset::{self, AddFlags, Added, ZSet};
use super::types::Value;
use crate::resp::request::parse_i64;

/// The RDB version Redis 7.0 writes; payloads claiming a newer one are refused.
pub const RDB_VERSION: u16 = 10;

pub const TYPE_STRING: u8 = 0;
pub const TYPE_LIST: u8 = 1;
pub const TYPE_SET: u8 = 2;
pub const TYPE_ZSET: u8 = 3;
pub const TYPE_HASH: u8 = 4;
pub const TYPE_ZSET_2: u8 = 5;
pub const TYPE_LIST_ZIPLIST: u8 = 10;
pub const TYPE_SET_INTSET: u8 = 11;
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
pub const TYPE_HASH_ZIPLIST: u8 = 13;
pub const TYPE_LIST_QUICKLIST: u8 = 14;
pub const TYPE_HASH_LISTPACK: u8 = 16;
pub const TYPE_ZSET_LISTPACK: u8 = 17;
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;

const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

const QUICKLIST_NODE_PLAIN: u64 = 1;
const QUICKLIST_NODE_PACKED: u64 = 2;

/// Malformed input: Redis's "Bad data format".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadData;

type Result<T> = std::result::Result<T, BadData>;

/// The encoding thresholds a decoded value is shaped by.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub hash_entries: usize,
    pub hash_value: usize,
    pub zset_entries: usize,
    pub zset_value: usize,
    pub set_intset: usize,
    pub list_size: i64,
}

impl Limits {
    pub fn from_config(c: &Config) -> Self {
        Limits {
            hash_entries: c.hash_max_listpack_entries,
            hash_value: c.hash_max_listpack_value,
            zset_entries: c.zset_max_listpack_entries,
            zset_value: c.zset_max_listpack_value,
            set_intset: c.set_max_intset_entries,
            list_size: c.list_max_listpack_size,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_config(&Config::default())
    }
}

// ---- payloads ------------------------------------------------------------------------------

/// DUMP's payload for a value.
pub fn dump_payload(v: &Value, lim: &Limits) -> Vec<u8> {
    let mut out = Vec::new();
    write_object(&mut out, v, lim);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// `verifyDumpPayload`: long enough, a version we read, and a matching checksum.
pub fn verify_payload(p: &[u8]) -> bool {
    if p.len() < 10 {
        return false;
    }
    let footer = p.len() - 10;
    let version = u16::from_le_bytes([p[footer], p[footer + 1]]);
    let crc = u64::from_le_bytes(p[footer + 2..].try_into().unwrap_or([0; 8]));
    version <= RDB_VERSION && crc64::crc64(0, &p[..p.len() - 8]) == crc
}

/// The value in a verified payload. Like Redis, the reader may run on into the footer: a body
/// that ends early borrows its bytes instead of failing.
pub fn load_payload(p: &[u8], lim: &Limits) -> Result<Value> {
    let mut r = Reader { buf: p, pos: 0 };
    let t = r.byte()?;
    read_object(&mut r, t, lim)
}

// ---- writing -------------------------------------------------------------------------------

/// The type byte and body Redis 7.0 writes for a value in its current encoding.
pub fn write_object(out: &mut Vec<u8>, v: &Value, lim: &Limits) {
    match v {
        Value::Str(s) => {
            out.push(TYPE_STRING);
            write_string(out, s);
        }
        Value::List(l) => {
            out.push(TYPE_LIST_QUICKLIST_2);
            write_quicklist(out, l, lim.list_size);
        }
        Value::Hash(h) => match &**h {
            Hash::Listpack(pairs) => {
                out.push(TYPE_HASH_LISTPACK);
                let mut b = listpack::Builder::new();
                for (f, v) in pairs {
                    b.push(f);
                    b.push(v);
                }
                write_string(out, &b.finish());
            }
            Hash::Table(_) => {
                out.push(TYPE_HASH);
                write_len(out, h.len() as u64);
                for (f, v) in h.iter() {
                    write_string(out, f);
                    write_string(out, v);
                }
            }
        },
        Value::Set(s) => match &**s {
            Set::Intset(ints) => {
                out.push(TYPE_SET_INTSET);
                write_string(out, &intset::build(ints));
            }
            Set::Table(_) => {
                out.push(TYPE_SET);
                write_len(out, s.len() as u64);
                for m in s.iter() {
                    m.with_bytes(|b| write_string(out, b));
                }
            }
        },
        Value::ZSet(z) => {
            if z.is_listpack() {
                out.push(TYPE_ZSET_LISTPACK);
                let mut b = listpack::Builder::new();
                for (m, score) in z.iter() {
                    b.push(m);
                    b.push(score_text(score).as_bytes());
                }
                write_string(out, &b.finish());
            } else {
                // Highest score first, as Redis writes it (so loading inserts at the head).
                out.push(TYPE_ZSET_2);
                write_len(out, z.len() as u64);
                let items: Vec<(&[u8], f64)> = z.iter().collect();
                for (m, score) in items.into_iter().rev() {
                    write_string(out, m);
                    out.extend_from_slice(&score.to_le_bytes());
                }
            }
        }
    }
}

/// Redis's `d2string`, which decides how a listpack score is stored.
fn score_text(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    if d > -4503599627370495.0 && d < 4503599627370496.0 && d == (d as i64) as f64 {
        return (d as i64).to_string();
    }
    crate::resp::reply::fmt_double(d)
}

/// Listpack nodes no bigger than `list-max-listpack-size` allows (bytes when negative, entries
/// when positive), each written as a packed quicklist node.
fn write_quicklist(out: &mut Vec<u8>, l: &List, size: i64) {
    let max_bytes = if size < 0 { 4096usize << ((-size).clamp(1, 5) - 1) } else { usize::MAX };
    let max_count = if size > 0 { size as usize } else { usize::MAX };
    let mut nodes = Vec::new();
    let mut b = listpack::Builder::new();
    for item in &l.items {
        if b.count() > 0 && (b.count() >= max_count || b.size() + item.len() + 11 > max_bytes) {
            nodes.push(std::mem::take(&mut b).finish());
        }
        b.push(item);
    }
    if b.count() > 0 {
        nodes.push(b.finish());
    }
    write_len(out, nodes.len() as u64);
    for n in nodes {
        write_len(out, QUICKLIST_NODE_PACKED);
        write_string(out, &n);
    }
}

pub fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// `rdbSaveRawString` without compression: short int-like strings as 8/16/32-bit integers.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(v) = parse_i64(s) {
            if let Ok(x) = i8::try_from(v) {
                out.push(0xC0 | ENC_INT8);
                out.push(x as u8);
                return;
            } else if let Ok(x) = i16::try_from(v) {
                out.push(0xC0 | ENC_INT16);
                out.extend_from_slice(&x.to_le_bytes());
                return;
            } else if let Ok(x) = i32::try_from(v) {
                out.push(0xC0 | ENC_INT32);
                out.extend_from_slice(&x.to_le_bytes());
                return;
            }
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

// ---- reading -------------------------------------------------------------------------------

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(BadData)?;
        let s = self.buf.get(self.pos..end).ok_or(BadData)?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// A length, or (with `true`) the id of a special string encoding.
    fn len_or_enc(&mut self) -> Result<(u64, bool)> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => ((b & 0x3f) as u64, false),
            1 => ((((b & 0x3f) as u64) << 8) | self.byte()? as u64, false),
            2 => match b {
                0x80 => (u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| BadData)?) as u64, false),
                0x81 => (u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| BadData)?), false),
                _ => return Err(BadData),
            },
            _ => ((b & 0x3f) as u64, true),
        })
    }

    pub fn length(&mut self) -> Result<u64> {
        match self.len_or_enc()? {
            (n, false) => Ok(n),
            _ => Err(BadData),
        }
    }

    fn usize_len(&mut self) -> Result<usize> {
        usize::try_from(self.length()?).map_err(|_| BadData)
    }

    pub fn string(&mut self) -> Result<Box<[u8]>> {
        let (n, encoded) = self.len_or_enc()?;
        if !encoded {
            return Ok(self.take(usize::try_from(n).map_err(|_| BadData)?)?.into());
        }
        let v = match n as u8 {
            ENC_INT8 => self.byte()? as i8 as i64,
            ENC_INT16 => i16::from_le_bytes([self.byte()?, self.byte()?]) as i64,
            ENC_INT32 => i32::from_le_bytes(self.take(4)?.try_into().map_err(|_| BadData)?) as i64,
            ENC_LZF => {
                let clen = self.usize_len()?;
                let len = self.usize_len()?;
                let data = self.take(clen)?;
                return lzf::decompress(data, len).map(Vec::into_boxed_slice).ok_or(BadData);
            }
            _ => return Err(BadData),
        };
        Ok(listpack::int_text(v))
    }

    /// `rdbLoadDoubleValue`: the text score of the old ZSET type.
    fn text_double(&mut self) -> Result<f64> {
        let n = self.byte()?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let s = self.take(n as usize)?;
                super::cmd::util::parse_f64(s).ok_or(BadData)
            }
        }
    }

    fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().map_err(|_| BadData)?))
    }
}

/// Reads the body of an object of type `t`.
pub fn read_object(r: &mut Reader, t: u8, lim: &Limits) -> Result<Value> {
    let v = match t {
        TYPE_STRING => Value::Str(r.string()?.into_vec()),
        TYPE_LIST => {
            let n = r.length()?;
            let mut l = List::new();
            for _ in 0..n {
                l.push(End::Right, r.string()?);
            }
            Value::List(Box::new(l))
        }
        TYPE_LIST_ZIPLIST => list_from(ziplist::parse(&r.string()?).ok_or(BadData)?),
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let nodes = r.length()?;
            let mut l = List::new();
            for _ in 0..nodes {
                let container = if t == TYPE_LIST_QUICKLIST_2 { r.length()? } else { QUICKLIST_NODE_PACKED };
                let blob = r.string()?;
                match container {
                    QUICKLIST_NODE_PLAIN => l.push(End::Right, blob),
                    QUICKLIST_NODE_PACKED => {
                        let items =
                            if t == TYPE_LIST_QUICKLIST { ziplist::parse(&blob) } else { listpack::parse(&blob) };
                        for i in items.ok_or(BadData)? {
                            l.push(End::Right, i);
                        }
                    }
                    _ => return Err(BadData),
                }
            }
            Value::List(Box::new(l))
        }
        TYPE_SET => {
            let n = r.length()?;
            let mut s =
                if n > lim.set_intset as u64 { Set::Table(SlotTable::with_capacity(0)) } else { Set::default() };
            for _ in 0..n {
                if !s.add(Member::Str(&r.string()?), lim.set_intset) {
                    return Err(BadData);
                }
            }
            Value::Set(Box::new(s))
        }
        TYPE_SET_INTSET => {
            let ints = intset::parse(&r.string()?).ok_or(BadData)?;
            let mut s = Set::default();
            for i in ints {
                if !s.add(Member::Int(i), lim.set_intset) {
                    return Err(BadData);
                }
            }
            Value::Set(Box::new(s))
        }
        TYPE_HASH => {
            let n = r.length()?;
            let mut h =
                if n > lim.hash_entries as u64 { Hash::Table(SlotTable::with_capacity(0)) } else { Hash::default() };
            for _ in 0..n {
                let f = r.string()?;
                let v = r.string()?;
                if !h.set(&f, &v, lim.hash_entries, lim.hash_value) {
                    return Err(BadData);
                }
            }
            Value::Hash(Box::new(h))
        }
        TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => {
            let blob = r.string()?;
            let items = if t == TYPE_HASH_ZIPLIST { ziplist::parse(&blob) } else { listpack::parse(&blob) };
            let items = items.ok_or(BadData)?;
            if items.len() % 2 != 0 {
                return Err(BadData);
            }
            let mut h = Hash::default();
            for p in items.chunks_exact(2) {
                if !h.set(&p[0], &p[1], lim.hash_entries, lim.hash_value) {
                    return Err(BadData);
                }
            }
            Value::Hash(Box::new(h))
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.length()?;
            let mut z = ZSet::new(false);
            let no_limit = zset::Limits { entries: usize::MAX, value: usize::MAX };
            for _ in 0..n {
                let m = r.string()?;
                let score = if t == TYPE_ZSET { r.text_double()? } else { r.binary_double()? };
                zset_add(&mut z, score, &m, no_limit)?;
            }
            z.convert_to_listpack_if_fits(zset::Limits { entries: lim.zset_entries, value: lim.zset_value });
            Value::ZSet(Box::new(z))
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let blob = r.string()?;
            let items = if t == TYPE_ZSET_ZIPLIST { ziplist::parse(&blob) } else { listpack::parse(&blob) };
            let items = items.ok_or(BadData)?;
            if items.len() % 2 != 0 {
                return Err(BadData);
            }
            let mut z = ZSet::new(true);
            let lim = zset::Limits { entries: lim.zset_entries, value: usize::MAX };
            for p in items.chunks_exact(2) {
                let score = super::cmd::util::parse_f64(&p[1]).ok_or(BadData)?;
                zset_add(&mut z, score, &p[0], lim)?;
            }
            Value::ZSet(Box::new(z))
        }
        _ => return Err(BadData),
    };
    let empty = match &v {
        Value::Str(_) => false,
        Value::List(l) => l.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::ZSet(z) => z.is_empty(),
    };
    if empty {
        return Err(BadData);
    }
    Ok(v)
}

fn zset_add(z: &mut ZSet, score: f64, member: &[u8], lim: zset::Limits) -> Result<()> {
    if score.is_nan() {
        return Err(BadData);
    }
    match z.add(score, member, AddFlags::default(), lim) {
        Added::Added(_) => Ok(()),
        _ => Err(BadData),
    }
}

fn list_from(items: Vec<Box<[u8]>>) -> Value {
    let mut l = List::new();
    for i in items {
        l.push(End::Right, i);
    }
    Value::List(Box::new(l))
}

#[cfg(test)]
mod tests;
